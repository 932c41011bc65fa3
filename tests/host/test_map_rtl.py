"""The RTL (in Verilator) gives the same spikes on two different placements of a network."""

from __future__ import annotations

import numpy as np
import pytest
from spikefab.hdl.layouts import CoreConfig, SystemConfig
from spikefab.host.runtime import run_network
from spikefab.host.verilator import open_verilator
from spikefab.mapping.mapper import map_network
from spikefab.mapping.network import NetworkBuilder
from spikefab.sim.golden import GoldenModel

#: The system of tests/host/test_verilator.py, so that one harness build serves both.
CONFIG = SystemConfig(
    cores=2,
    core=CoreConfig(neurons=16, axons=32, synapses=64, delay_slots=4),
    sources=8,
    route_entries=64,
)


def small_net():
    rng = np.random.default_rng(4)
    b = NetworkBuilder("small")
    b.spike_source("inp", 4, poisson={"rate_hz": 200, "seed": 3})
    b.population("a", 9, du=2000, dv=300, vth=60, refractory=1)
    b.population("b", 7, du=900, dv=100, vth=80, reset="subtract")
    for pre, post, p in [("inp", "a", 0.5), ("a", "b", 0.3), ("b", "a", 0.3), ("a", "a", 0.15)]:
        b.project(
            pre,
            post,
            connect={"kind": "fixed_probability", "p": p, "seed": int(rng.integers(1000))},
            weight={"kind": "uniform", "low": -40, "high": 120, "seed": int(rng.integers(1000))},
            weight_exp=1,
            delay={"kind": "uniform", "low": 1, "high": 4, "seed": int(rng.integers(1000))},
        )
    # identical rows (one weight, all to all): shared axons on the RTL too
    b.project("inp", "b", connect="all_to_all", weight=50, delay=2)
    b.probe("b", "v", neurons=[0, 5], every=3)
    return b.build()


@pytest.mark.slow
def test_two_placements_on_the_rtl():
    net = small_net()
    steps = 40
    ref = GoldenModel(net).run(steps)
    assert ref.n_spikes > 20
    results = {}
    places = {}
    for method, seed in [("greedy", 0), ("random", 5)]:
        m = map_network(net, CONFIG, method, seed=seed)
        places[method] = m.assignment.core * 16 + m.assignment.slot
        dev = open_verilator(CONFIG, timeout=60.0)
        try:
            results[method] = run_network(net, m.image(CONFIG), dev, steps, "verilator")
        finally:
            dev.close()
    assert not np.array_equal(places["greedy"], places["random"])
    for got in results.values():
        np.testing.assert_array_equal(got.step, ref.step)
        np.testing.assert_array_equal(got.population, ref.population)
        np.testing.assert_array_equal(got.neuron, ref.neuron)
        np.testing.assert_array_equal(got.probes["b/v"].values, ref.probes["b/v"].values)
