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
    for k, n in enumerate(sizes):
        b.population(
            f"p{k}",
            n,
            du=int(rng.integers(0, 4096)),
            dv=int(rng.integers(0, 800)),
            vth=int(rng.integers(50, 600)),
            refractory=int(rng.integers(0, 4)),
            reset=str(rng.choice(["zero", "subtract"])),
        )

    def seeded(**kw):
        return {**kw, "seed": int(rng.integers(1_000_000))}

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
