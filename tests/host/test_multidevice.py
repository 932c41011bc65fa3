"""One network over several devices, in one process on system models: the golden model's
spikes, probes and weights for any partition (contract section 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multi_cases import random_multi_net, random_partition
from spikefab.hdl.protocol import LinkError
from spikefab.host.multidevice import load_plan, map_devices, run_in_process, save_plan
from spikefab.mapping.devices import groups, partition_devices, split_network
from spikefab.mapping.loader import load
from spikefab.sim.golden import GoldenModel
from spikefab.sim.results import RunAbortedError, RunResult
from spikefab.sim.system_model import SystemModel

EXAMPLES = Path(__file__).parents[2] / "examples"
STEPS = 120


def same(got: RunResult, want: RunResult) -> None:
    np.testing.assert_array_equal(got.step, want.step)
    np.testing.assert_array_equal(got.population, want.population)
    np.testing.assert_array_equal(got.neuron, want.neuron)
    assert got.probes.keys() == want.probes.keys()
    for k in want.probes:
        np.testing.assert_array_equal(got.probes[k].steps, want.probes[k].steps)
        np.testing.assert_array_equal(got.probes[k].index, want.probes[k].index)
        np.testing.assert_array_equal(got.probes[k].values, want.probes[k].values)
    assert got.weights.keys() == want.weights.keys()
    for k in want.weights:
        np.testing.assert_array_equal(got.weights[k], want.weights[k])


def run_parts(net, devices: int, device_of=None, steps: int = STEPS) -> RunResult:  # type: ignore[no-untyped-def]
    dm = map_devices(net, devices, device_of=device_of)
    models = [SystemModel(img.config) for img in dm.images]
    return run_in_process(dm.plan, dm.images, models, steps, "system")


@pytest.mark.parametrize("seed", range(16))
def test_a_random_partition_equals_golden(seed: int) -> None:
    net = random_multi_net(seed, STEPS)
    devices = 2 + seed % 2
    device_of = random_partition(net, devices, seed)
    plan = split_network(net, device_of, devices)
    got = run_parts(net, devices, device_of)
    want = GoldenModel(net).run(STEPS)
    assert want.n_spikes > 0
    same(got, want)
    # spikes crossed devices where synapses do, and the plastic weights moved
    if plan.lag:
        assert got.exchange.spikes_sent > 0  # type: ignore[attr-defined]
    learnt = [k for k in want.weights if (want.weights[k] != net.projection(k).weight).any()]
    assert learnt or not want.weights


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), devices=st.integers(2, 4), cut=st.integers(0, 10_000))
def test_any_partition_equals_golden(seed: int, devices: int, cut: int) -> None:
    net = random_multi_net(seed, 60)
    device_of = random_partition(net, devices, cut)
    same(run_parts(net, devices, device_of, steps=60), GoldenModel(net).run(60))


def test_every_delay_crosses_devices() -> None:
    """A neuron on one device, 16 on the other, joined by a synapse of each delay from 1 to
    16: each spike lands at t + d (the lag is 1: rounds of one step, late sources)."""
    from spikefab.mapping.network import NetworkBuilder

    b = NetworkBuilder("delays")
    b.spike_source("kick", 1, times=[[0, 20, 41]])
    b.population("a", 1, du=4095, dv=0, vth=10)
    b.population("b", 16, du=4095, dv=0, vth=10)
    b.project("kick", "a", connect="all_to_all", weight=100, delay=1)
    b.project("a", "b", connect={"kind": "list", "pairs": [[0, j] for j in range(16)]},
              weight=100, delay=list(range(1, 17)))  # fmt: skip
    net = b.build()
    got = run_parts(net, 2, np.array([0] + [1] * 16), steps=80)
    want = GoldenModel(net).run(80)
    same(got, want)
    b_spikes = want.spikes("b")
    assert sorted(set((b_spikes[0] - b_spikes[1]).tolist())) == [2, 22, 43]


def test_metis_cut_of_balanced_equals_golden() -> None:
    net = load(EXAMPLES / "balanced.yaml")
    dm = map_devices(net, 2, rates=100)
    sizes = [sum(x.size for x in p.lif.values()) for p in dm.plan.parts]
    assert sum(sizes) == net.n_neurons and min(sizes) > 0.4 * net.n_neurons
    traffic = dm.traffic()
    assert traffic is not None and traffic[0, 1] > 0 and traffic[1, 0] > 0
    report = dm.report()
    assert "device 0 (sim)" in report and "spikes per step between devices" in report
    models = [SystemModel(img.config) for img in dm.images]
    got = run_in_process(dm.plan, dm.images, models, 150, "system")
    same(got, GoldenModel(net).run(150))


def test_delay_one_and_plastic_synapses_keep_their_neurons_together() -> None:
    net = next(
        n for n in (random_multi_net(s, STEPS) for s in range(20)) if np.unique(groups(n)).size > 4
    )
    g = groups(net)
    device_of = partition_devices(net, [1.0, 1.0], seed=1)
    # every group on one device
    for root in np.unique(g):
        assert np.unique(device_of[g == root]).size == 1
    # cutting a group is refused, naming the synapse
    tied = next(r for r in np.unique(g) if (g == r).sum() > 1)
    members = np.flatnonzero(g == tied)
    bad = np.zeros_like(device_of)
    bad[members[0]] = 1
    with pytest.raises(ValueError, match=r"projection \w+: synapse \d+ .* keeps its neurons"):
        split_network(net, bad, 2)


def test_a_group_larger_than_a_device_is_refused() -> None:
    from spikefab.mapping.network import NetworkBuilder

    b = NetworkBuilder("ring")
    b.population("n", 40, du=4095, dv=0, vth=10)
    rule = {"a_plus": 10, "a_minus": 10, "d_pre": 300, "d_post": 300, "bump_pre": 1000,
            "bump_post": 1000, "shift": 4}  # fmt: skip
    b.project("n", "n", connect={"kind": "list", "pairs": [[i, (i + 1) % 40] for i in range(40)]},
              weight=50, delay=3, stdp=rule)  # fmt: skip
    with pytest.raises(ValueError, match=r"40 neurons .* plastic .* largest device holds 32"):
        partition_devices(b.build(), [1.0, 1.0], capacity=[32, 16])


def test_a_multi_device_image_round_trips(tmp_path: Path) -> None:
    net = load(EXAMPLES / "balanced.yaml")
    dm = map_devices(net, 3, seed=2)
    save_plan(tmp_path / "img", dm.plan, dm.images, dm.names)
    plan, images, names = load_plan(tmp_path / "img")
    assert names == ["sim"] * 3 and plan.lag == dm.plan.lag
    for a, b in zip(plan.parts, dm.plan.parts, strict=True):
        assert a.lif.keys() == b.lif.keys()
        for k in a.lif:
            np.testing.assert_array_equal(a.lif[k], b.lif[k])
    models = [SystemModel(img.config) for img in images]
    same(run_in_process(plan, images, models, 60, "system"), GoldenModel(net).run(60))


class DyingModel(SystemModel):
    """A system model whose link dies when it reaches step ``fail_at``."""

    def __init__(self, config, fail_at: int):  # type: ignore[no-untyped-def]
        super().__init__(config)
        self.fail_at = fail_at

    def run(self, steps, on_spikes, on_step=None, inputs=(), wait=True):  # type: ignore[no-untyped-def,override]
        for k in range(steps):
            if self.step_count == self.fail_at:
                raise LinkError("the simulation has exited (exit status -9)")
            super().run(1, on_spikes, on_step, inputs=inputs[k : k + 1])


def test_a_failed_device_ends_the_run_with_the_rounds_before() -> None:
    net = random_multi_net(4, STEPS)
    dm = map_devices(net, 2, device_of=random_partition(net, 2, 4))
    assert dm.plan.lag >= 1
    models = [SystemModel(dm.images[0].config), DyingModel(dm.images[1].config, 50)]
    with pytest.raises(RunAbortedError) as e:
        run_in_process(dm.plan, dm.images, models, STEPS, "system", names=["sim a", "sim b"])
    partial = e.value.partial
    done = partial.complete_steps
    assert done is not None and done <= 50 and done > 50 - dm.plan.lag - 1
    assert "rank 1 (sim b) failed after step" in partial.error
    assert "exit status -9" in partial.error
    want = GoldenModel(net).run(STEPS)
    keep = want.step < done
    np.testing.assert_array_equal(partial.step, want.step[keep])
    np.testing.assert_array_equal(partial.neuron, want.neuron[keep])
    for k, tr in partial.probes.items():
        assert tr.steps.size and tr.steps.max() < done
        np.testing.assert_array_equal(tr.values, want.probes[k].values[: tr.steps.size])
