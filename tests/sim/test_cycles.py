"""The cycle model (sim/cycles.py) against the RTL's own counters (STEP_CYCLES, contract
7.2) on Verilator: the examples and random networks over several cores."""

from __future__ import annotations

import numpy as np
import pytest
import spikefab
from spikefab.mapping.network import NetworkBuilder
from spikefab.sim.cycles import predict_cycles

#: The model leaves out where the router's arbitration delays events past a core's update
#: (sim/cycles.py); on these networks that costs at most this share of the cycles.
TOLERANCE = 0.001


def without_state_probes(net):
    # probe reads that overlap a delivery are counted by the system (sim/cycles.py)
    net.probes[:] = [p for p in net.probes if p.variable == "spikes"]
    return net


def random_net(seed: int):
    rng = np.random.default_rng(seed)
    b = NetworkBuilder(f"cycles{seed}")
    b.spike_source("inp", 20, poisson={"rate_hz": float(rng.uniform(50, 400)), "seed": seed})
    sizes = rng.integers(20, 200, size=3)
    for k, n in enumerate(sizes):
        du, dv = int(rng.integers(100, 2000)), int(rng.integers(50, 800))
        vth, refractory = int(rng.integers(60, 300)), int(rng.integers(0, 4))
        b.population(f"p{k}", int(n), du=du, dv=dv, vth=vth, refractory=refractory)
    for pre in ["inp", "p0", "p1", "p2"]:
        for k in range(3):
            if rng.random() < 0.6:
                conn = {"kind": "fixed_probability", "p": float(rng.uniform(0.05, 0.3)),
                        "seed": int(rng.integers(1 << 20))}  # fmt: skip
                weight = {"kind": "uniform", "low": -40, "high": 90,
                          "seed": int(rng.integers(1 << 20))}  # fmt: skip
                delay = {"kind": "uniform", "low": 1, "high": 5, "seed": int(rng.integers(1 << 20))}
                b.project(pre, f"p{k}", connect=conn, weight=weight, delay=delay)
    return b.build()


def check(net, image, steps: int) -> None:
    pred = predict_cycles(net, image, steps)
    got = spikefab.run(net, steps, "verilator", image=image, progress=False)
    assert got.step_cycles is not None
    # the model is not trivially right: delivery is a good share of the cycles
    idle = (image.config.core.neurons + 15) * steps
    assert got.step_cycles > 1.05 * idle
    assert abs(pred.total - got.step_cycles) <= TOLERANCE * got.step_cycles, (
        pred.total,
        got.step_cycles,
    )


@pytest.mark.parametrize("name", ["synfire", "balanced"])
def test_examples(name):
    net = without_state_probes(spikefab.load(name))
    check(net, spikefab.image_for(net, "verilator"), 300)


@pytest.mark.parametrize("seed", range(3))
def test_random_networks_over_four_cores(seed):
    net = without_state_probes(random_net(seed))
    image = spikefab.image_for(net, "verilator", cores=4, placement="random", seed=seed)
    assert len(set(np.concatenate(list(image.core_of.values())).tolist())) > 1
    check(net, image, 200)


def test_an_idle_network_is_exact():
    net = without_state_probes(spikefab.load("fi_sweep"))
    image = spikefab.image_for(net, "verilator")
    pred = predict_cycles(net, image, 100)
    got = spikefab.run(net, 100, "verilator", image=image, progress=False)
    # no synapses: every step is the update and the controller, N + 15
    assert pred.total == got.step_cycles == 100 * (image.config.core.neurons + 15)


def test_learning_is_refused():
    net = spikefab.load("stdp_pattern")
    with pytest.raises(ValueError, match="learning phases"):
        predict_cycles(net, spikefab.image_for(net, "verilator"), 10)
