"""The host runtime on the in-process system model: images give the golden model's spikes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spikefab.hdl.layouts import CoreConfig, CoreMem, SystemConfig
from spikefab.host.link import DeviceError
from spikefab.host.runtime import check_device, run_network
from spikefab.mapping.core_image import FitError
from spikefab.mapping.image import load_image, place_sequential
from spikefab.mapping.loader import load
from spikefab.mapping.network import NetworkBuilder
from spikefab.sim.golden import GoldenModel
from spikefab.sim.system_model import SystemModel

EXAMPLES = Path(__file__).parents[2] / "examples"


def same(a, b) -> None:
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.population, b.population)
    np.testing.assert_array_equal(a.neuron, b.neuron)
    assert a.probes.keys() == b.probes.keys()
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k].values, b.probes[k].values)
        np.testing.assert_array_equal(a.probes[k].steps, b.probes[k].steps)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        (
            "synfire",
            SystemConfig(
                cores=2, core=CoreConfig(neurons=128, axons=256, synapses=4096, delay_slots=4)
            ),
        ),
        (
            "fi_sweep",
            SystemConfig(cores=1, core=CoreConfig(neurons=16, axons=2, synapses=2, delay_slots=1)),
        ),
        (
            "balanced",
            SystemConfig(
                cores=4,
                core=CoreConfig(neurons=256, axons=2048, synapses=65536, delay_slots=2),
                route_entries=8192,
            ),
        ),
    ],
)
def test_image_on_system_model_matches_golden(name, config):
    net = load(EXAMPLES / f"{name}.yaml")
    image = place_sequential(net, config)
    got = run_network(net, image, SystemModel(config), 200, "system")
    same(got, GoldenModel(net).run(200))


def _random_net(seed: int):
    rng = np.random.default_rng(seed)
    b = NetworkBuilder(f"r{seed}")
    b.spike_source("inp", 20, poisson={"rate_hz": 100, "seed": seed})
    sizes = [int(x) for x in rng.integers(5, 40, size=3)]

    def seeded(**kw):
        return {**kw, "seed": int(rng.integers(1_000_000))}

    for k, n in enumerate(sizes):
        b.population(
            f"p{k}",
            n,
            du=int(rng.integers(0, 4096)),
            dv=int(rng.integers(0, 800)),
            vth=int(rng.integers(50, 600)),
            refractory=int(rng.integers(0, 4)),
            reset=str(rng.choice(["zero", "subtract"])),
            initial_v=seeded(kind="uniform", low=-200, high=int(rng.integers(0, 40000))),
        )

    for pre in ["inp", "p0", "p1", "p2"]:
        for k in range(3):
            if rng.random() < 0.6:
                b.project(
                    pre,
                    f"p{k}",
                    connect=seeded(kind="fixed_probability", p=0.2),
                    weight=seeded(kind="uniform", low=-60, high=127),
                    weight_exp=int(rng.integers(0, 4)),
                    delay=seeded(kind="uniform", low=1, high=8),
                )
    b.probe("p1", "v", neurons=[0, 2])
    return b.build()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("neurons", [16, 32, 128])
def test_placement_does_not_change_spikes(seed, neurons):
    """The same network on cores of different sizes (so different placements, axons and
    routes) gives the golden model's spikes exactly."""
    net = _random_net(seed)
    cores = -(-net.n_neurons // neurons)
    cfg = SystemConfig(
        cores=cores,
        core=CoreConfig(neurons=neurons, axons=256, synapses=8192, delay_slots=8),
        route_entries=4096,
    )
    image = place_sequential(net, cfg)
    same(run_network(net, image, SystemModel(cfg), 120, "system"), GoldenModel(net).run(120))


def test_image_save_and_load(tmp_path):
    net = load(EXAMPLES / "synfire.yaml")
    cfg = SystemConfig(
        cores=2, core=CoreConfig(neurons=128, axons=256, synapses=4096, delay_slots=4)
    )
    image = place_sequential(net, cfg, network_yaml=(EXAMPLES / "synfire.yaml").read_text())
    image.save(tmp_path / "img.npz")
    back = load_image(tmp_path / "img.npz")
    assert back.config == cfg
    assert back.route_entries == image.route_entries
    assert back.core_words[1][CoreMem.SYNAPSES] == image.core_words[1][CoreMem.SYNAPSES]
    np.testing.assert_array_equal(back.neuron_of["group7"], image.neuron_of["group7"])
    assert "name: synfire" in back.network_yaml
    same(run_network(net, back, SystemModel(cfg), 100, "system"), GoldenModel(net).run(100))


def test_image_refuses_foreign_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a spikefab image"):
        load_image(tmp_path / "x.npz")


def test_placement_limits_are_named():
    net = load(EXAMPLES / "balanced.yaml")
    cfg = SystemConfig(cores=2, core=CoreConfig(neurons=256, axons=256, synapses=4096))
    with pytest.raises(
        FitError, match=r"needs 1000 neurons; 2 cores of 256 hold 512 \(488 too many\)"
    ):
        place_sequential(net, cfg)


def test_device_mismatch_is_reported():
    small = SystemConfig(cores=1, core=CoreConfig(neurons=16, axons=16, synapses=16))
    big = SystemConfig(cores=2, core=CoreConfig(neurons=16, axons=16, synapses=16))
    with pytest.raises(ValueError, match=r"cores 1 \(image: 2\)"):
        check_device(SystemModel(small), big)


def test_system_model_refuses_bad_requests():
    cfg = SystemConfig(
        cores=1, core=CoreConfig(neurons=16, axons=16, synapses=16), sources=4, inject_depth=3
    )
    dev = SystemModel(cfg)
    with pytest.raises(DeviceError, match="ADDRESS"):
        dev.write(0, CoreMem.PARAMS.value, 10, [0] * 7)
    with pytest.raises(DeviceError, match="ADDRESS"):
        dev.read(3, 0, 0, 1)
    with pytest.raises(DeviceError, match="FULL"):
        dev.inject([0, 1, 2, 3])
    with pytest.raises(DeviceError, match="ADDRESS"):
        dev.inject([4])


def test_load_by_writes_equals_a_full_load():
    """Clears of zero stretches + non-zero runs leave every memory as writing every word
    does, and write each word once."""
    from spikefab.hdl.layouts import SystemMem
    from spikefab.hdl.protocol import Target
    from spikefab.host.runtime import load as load_onto

    config = SystemConfig(
        cores=2, core=CoreConfig(neurons=128, axons=256, synapses=4096, delay_slots=4)
    )
    image = place_sequential(load(EXAMPLES / "synfire.yaml"), config)
    writes = image.writes()
    covered: dict[tuple[int, int], np.ndarray] = {}
    for w in writes[:-1]:
        if w.target != Target.SYSTEM and w.mem == CoreMem.REGS.value:
            continue  # the registers that the image sets, not a memory
        depth = (
            config.depth_of(SystemMem(w.mem))
            if w.target == Target.SYSTEM
            else config.core.depth_of(CoreMem(w.mem))
        )
        hits = covered.setdefault((w.target, w.mem), np.zeros(depth, dtype=int))
        hits[w.addr : w.addr + w.count] += 1
    assert all((hits == 1).all() for hits in covered.values())  # every word, once
    assert any(w.words is None for w in writes)
    runs = [w for w in writes[:-1] if w.words is not None and w.mem != CoreMem.REGS.value]
    assert runs and all(w.words[0] and w.words[-1] for w in runs)  # runs of non-zero words
    assert writes[-1].words == [0]  # STEP, last
    dirty, fast = SystemModel(config), SystemModel(config)
    for dev in (dirty, fast):  # both start from garbage
        for k in range(2):
            dev.write(k, CoreMem.SYNAPSES.value, 0, list(range(1, 4097)))
    load_onto(fast, image)
    full = SystemModel(config)
    for k, words in enumerate(image.core_words):
        for mem in (CoreMem.PARAMS, CoreMem.AXONS, CoreMem.SYNAPSES):
            ws = list(words.get(mem, []))
            full.write(k, mem.value, 0, ws + [0] * (config.core.depth_of(mem) - len(ws)))
    for k in range(2):
        for mem in (CoreMem.PARAMS, CoreMem.AXONS, CoreMem.SYNAPSES):
            depth = config.core.depth_of(mem)
            assert fast.read(k, mem.value, 0, depth) == full.read(k, mem.value, 0, depth)
    for mem in (SystemMem.ROUTE_POINTERS, SystemMem.ROUTE_ENTRIES):
        depth = config.depth_of(mem)
        want = list(
            image.route_pointers if mem == SystemMem.ROUTE_POINTERS else image.route_entries
        )
        assert fast.read(Target.SYSTEM, mem.value, 0, depth) == want + [0] * (depth - len(want))


class FailingModel(SystemModel):
    """A system model whose link dies after ``fail_at`` steps."""

    def __init__(self, config, fail_at: int):
        super().__init__(config)
        self.fail_at = fail_at

    def run(self, steps, on_spikes, on_step=None, inputs=(), wait=True):  # type: ignore[override]
        from spikefab.hdl.protocol import LinkError

        for k in range(steps):
            if self.step_count == self.fail_at:
                raise LinkError("the simulation has exited (exit status -9)")
            super().run(1, on_spikes, on_step, inputs=inputs[k : k + 1])


@pytest.mark.parametrize("probes", [False, True])
def test_a_failed_run_keeps_the_steps_received(probes):
    from spikefab.sim.results import RunAbortedError

    config = SystemConfig(
        cores=4,
        core=CoreConfig(neurons=256, axons=2048, synapses=65536, delay_slots=2),
        route_entries=8192,
    )
    net = load(EXAMPLES / "balanced.yaml")
    if not probes:
        net.probes.clear()
    image = place_sequential(net, config)
    with pytest.raises(RunAbortedError) as e:
        run_network(net, image, FailingModel(config, 37), 100, "system")
    partial = e.value.partial
    assert partial.complete_steps == 37 and "exit status -9" in partial.error
    assert "after step 36" in str(e.value) and "\n" not in str(e.value)
    assert "exit status -9" in str(e.value.cause)
    ref = GoldenModel(net).run(100)
    keep = ref.step < 37
    np.testing.assert_array_equal(np.sort(partial.step), np.sort(ref.step[keep]))
    assert partial.n_spikes == int(keep.sum()) > 0
    for k, tr in partial.probes.items():
        assert list(tr.steps) == list(range(37))
        np.testing.assert_array_equal(tr.values, ref.probes[k].values[:37])
    assert bool(partial.probes) == probes


def test_check_device_names_every_difference():
    want = SystemConfig(cores=2, inject_depth=64, core=CoreConfig(neurons=64, stats=False))
    with pytest.raises(ValueError, match=r"cores 1 \(image: 2\).*inject_depth 256 \(image: 64\)"):
        check_device(SystemModel(SystemConfig(cores=1, core=CoreConfig(neurons=64))), want)
