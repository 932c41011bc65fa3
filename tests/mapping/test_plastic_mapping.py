"""Plastic projections on learning cores: placement changes neither spikes nor weights.

Random networks with plastic projections are mapped with every placement onto systems of
learning cores and run on the system model (the contract's learning phase computed from the
cores' memories, contract 6.4); spikes, weight probes and final weights must equal the
golden model's, which learns on the logical network.
"""

from __future__ import annotations

import numpy as np
import pytest
from spikefab.hdl.layouts import CoreConfig, SystemConfig
from spikefab.host.runtime import run_network
from spikefab.mapping.core_image import FitError
from spikefab.mapping.mapper import map_network
from spikefab.mapping.network import NetworkBuilder
from spikefab.sim.golden import GoldenModel
from spikefab.sim.system_model import SystemModel


def rule(seed: int, **kw) -> dict:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    r = dict(
        a_plus=int(rng.integers(20, 128)),
        a_minus=int(rng.integers(20, 128)),
        d_pre=int(rng.integers(100, 1500)),
        d_post=int(rng.integers(100, 1500)),
        bump_pre=int(rng.integers(2000, 40000)),
        bump_post=int(rng.integers(2000, 40000)),
        shift=int(rng.integers(0, 10)),
        w_min=-40,
        w_max=100,
        stochastic_rounding=bool(seed % 2),
        seed=int(rng.integers(0, 1 << 16)),
    )
    r.update(kw)
    return r


def plastic_net(seed: int):  # type: ignore[no-untyped-def]
    """Sources onto a population through plastic synapses; a second population fed by the
    first through a static and a plastic projection (two axons per sender)."""
    rng = np.random.default_rng(seed)
    b = NetworkBuilder(f"plastic{seed}")
    b.spike_source("inp", 30, poisson={"rate_hz": 120.0, "seed": seed})
    lif = dict(du=700, dv=300, vth=220, refractory=1, reset="subtract")
    b.population("p0", int(rng.integers(20, 40)), **lif)
    b.population("p1", int(rng.integers(20, 40)), **lif)

    def seeded(**kw):  # type: ignore[no-untyped-def]
        return {**kw, "seed": int(rng.integers(1 << 30))}

    r = rule(seed)
    b.project("inp", "p0", connect=seeded(kind="fixed_probability", p=0.4),
              weight=seeded(kind="uniform", low=-40, high=100), weight_exp=3,
              delay=seeded(kind="uniform", low=1, high=4), stdp=r, name="inp_p0")  # fmt: skip
    b.project("p0", "p1", connect=seeded(kind="fixed_probability", p=0.3),
              weight=seeded(kind="uniform", low=0, high=90), weight_exp=4, delay=2)  # fmt: skip
    b.project("p0", "p1", connect=seeded(kind="fixed_probability", p=0.3),
              weight=seeded(kind="uniform", low=-40, high=100), weight_exp=3,
              delay=seeded(kind="uniform", low=1, high=3), stdp=r, name="p0_p1")  # fmt: skip
    b.probe("p0_p1", "weights", every=7)
    return b.build()


def learning_system(neurons: int, cores: int) -> SystemConfig:
    return SystemConfig(
        cores=cores,
        core=CoreConfig(neurons=neurons, axons=128, synapses=2048, delay_slots=8, learning=True),
        route_entries=2048,
        sources=32,
        inject_depth=64,
    )


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("method", ["greedy", "partition", "random"])
@pytest.mark.parametrize(("neurons", "cores"), [(64, 1), (16, 6)])
def test_placement_changes_neither_spikes_nor_weights(seed, method, neurons, cores) -> None:  # type: ignore[no-untyped-def]
    net = plastic_net(seed)
    cfg = learning_system(neurons, cores)
    m = map_network(net, cfg, method, seed=seed)
    image = m.image(cfg)
    got = run_network(net, image, SystemModel(cfg), 60, "system")
    want = GoldenModel(net).run(60)
    np.testing.assert_array_equal(got.step, want.step)
    np.testing.assert_array_equal(got.neuron, want.neuron)
    np.testing.assert_array_equal(got.population, want.population)
    for name in ("inp_p0", "p0_p1"):
        np.testing.assert_array_equal(got.weights[name], want.weights[name])
    key = "p0_p1/weights"
    np.testing.assert_array_equal(got.probes[key].steps, want.probes[key].steps)
    np.testing.assert_array_equal(got.probes[key].values, want.probes[key].values)
    # the run learned something, and the plastic entries are where the image says
    assert (want.weights["inp_p0"] != net.projection("inp_p0").weight).any()
    assert set(image.plastic_entries) == {"inp_p0", "p0_p1"}


def test_a_core_has_one_rule() -> None:
    b = NetworkBuilder("two_rules")
    b.spike_source("inp", 4, poisson={"rate_hz": 50.0, "seed": 1})
    b.population("out", 4, du=0, dv=0, vth=10)
    b.project("inp", "out", connect="all_to_all", weight=1, stdp=rule(1), name="a")
    b.project("inp", "out", connect="all_to_all", weight=1, stdp=rule(1, a_plus=3), name="b")
    with pytest.raises(FitError, match=r"'a' and 'b'.*differ in a_plus.*one learning rule"):
        map_network(b.build(), learning_system(16, 1))


@pytest.mark.parametrize("seed", [1, 2])
def test_a_long_run_delivers_the_weights_just_learnt(seed) -> None:  # type: ignore[no-untyped-def]
    """Without probes the whole run is one RUN of many steps: a weight learnt in one step
    is delivered with its new value from the next step on, inside the same RUN."""
    from dataclasses import replace

    net = replace(plastic_net(seed), probes=[])
    cfg = learning_system(64, 1)
    image = map_network(net, cfg, "greedy", seed=seed).image(cfg)
    got = run_network(net, image, SystemModel(cfg), 120, "system")
    want = GoldenModel(net).run(120)
    assert (want.weights["p0_p1"] != net.projection("p0_p1").weight).any()
    np.testing.assert_array_equal(got.step, want.step)
    np.testing.assert_array_equal(got.neuron, want.neuron)
    np.testing.assert_array_equal(got.population, want.population)
    for name in ("inp_p0", "p0_p1"):
        np.testing.assert_array_equal(got.weights[name], want.weights[name])
