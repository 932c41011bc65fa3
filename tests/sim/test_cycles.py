"""The cycle model (sim/cycles.py) against the RTL's own counters (STEP_CYCLES, contract
7.2) on Verilator: the examples and random networks over several cores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import spikefab
from spikefab.mapping.network import NetworkBuilder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hdl"))
from learn_cases import random_plastic_network  # tests/hdl, not a package
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


def check(net, image, steps: int, pred=None, tolerance=TOLERANCE, board=None) -> None:
    pred = pred if pred is not None else predict_cycles(net, image, steps)
    got = spikefab.run(net, steps, "verilator", image=image, board=board, progress=False)
    assert got.step_cycles is not None
    # the model is not trivially right: delivery is a good share of the cycles
    idle = (image.config.core.neurons + 15) * steps
    assert got.step_cycles > 1.05 * idle
    assert abs(pred.total - got.step_cycles) <= tolerance * got.step_cycles, (
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


#: The learning term leaves out the cycle an axon's first entry may wait for (contract 6.4).
LEARN_TOLERANCE = 0.003
#: The SDRAM terms are measured averages, and refreshes land where the SDRAM's timer puts
#: them (sim/cycles.py).
SDRAM_TOLERANCE = 0.01


@pytest.mark.parametrize(("seed", "cores"), [(0, 1), (1, 3)])
def test_learning_networks(seed, cores):
    net = without_state_probes(random_plastic_network(seed, stochastic=bool(seed)))
    image = spikefab.image_for(net, "verilator", cores=cores, placement="random", seed=seed)
    pred = predict_cycles(net, image, 150)
    assert pred.learn.sum() > 0
    # the learning phases are a good share of the cycles, so the term is tested
    assert pred.learn.max() > 0.5 * image.config.core.neurons
    check(net, image, 150, pred=pred, tolerance=LEARN_TOLERANCE)


def sparse_net(p: float, seed: int):
    # short axon rows (a few entries each), in several SDRAM rows and banks
    b = NetworkBuilder(f"sparse{seed}")
    b.spike_source("inp", 300, poisson={"rate_hz": 300.0, "seed": seed})
    b.population("a", 1500, du=500, dv=200, vth=90, refractory=2)
    w = {"kind": "uniform", "low": 10, "high": 60, "seed": seed + 1}
    d = {"kind": "uniform", "low": 1, "high": 8, "seed": seed + 2}
    b.project("inp", "a", connect={"kind": "fixed_probability", "p": p, "seed": seed + 3},
              weight=w, delay=d)  # fmt: skip
    b.project("a", "a", connect={"kind": "fixed_probability", "p": p, "seed": seed + 4},
              weight={**w, "low": -30}, delay=d)  # fmt: skip
    return b.build()


@pytest.mark.parametrize("net", ["cuba", "balanced", ("sparse", 0.005), ("sparse", 0.03)], ids=str)
def test_sdram_system(net):
    net = spikefab.load(net) if isinstance(net, str) else sparse_net(net[1], 7)
    net = without_state_probes(net)
    image = spikefab.image_for(net, "verilator", board="ulx3s")
    assert image.config.core.synapse_memory == "sdram"
    check(net, image, 100, tolerance=SDRAM_TOLERANCE, board="ulx3s")
