"""A system whose core keeps its synapse table in SDRAM, simulated by Verilator on the SDRAM
model (``sim/sdram_model.py``): random networks run through the host link give the golden
model's spikes and probes, and the model stops the simulation on any timing rule broken.
"""

from __future__ import annotations

import numpy as np
import pytest
from spikefab.hdl.layouts import CoreConfig, CoreMem, SystemConfig
from spikefab.host.runtime import run_network
from spikefab.host.verilator import open_verilator
from spikefab.mapping.image import place_sequential
from spikefab.sim.golden import GoldenModel
from test_runtime import _random_net, same

CONFIG = SystemConfig(
    cores=1,
    core=CoreConfig(neurons=128, axons=256, synapses=8192, delay_slots=8, synapse_memory="sdram"),
    sources=64,
    route_entries=512,
)
STEPS = 120


@pytest.fixture(scope="module")
def device():
    dev = open_verilator(CONFIG, timeout=60.0)
    yield dev
    dev.close()
    assert dev.transport.proc.returncode == 0


@pytest.mark.parametrize("seed", range(3))
def test_random_networks_equal_golden(device, seed: int) -> None:
    net = _random_net(seed)
    image = place_sequential(net, CONFIG)
    got = run_network(net, image, device, STEPS, "verilator")
    same(got, GoldenModel(net).run(STEPS))


def test_synapse_table_reads_back(device) -> None:
    """Words written to the SDRAM table read back (random addresses over the whole table)."""
    rng = np.random.default_rng(7)
    bits = CONFIG.core.synapse_layout.size
    addrs = rng.choice(CONFIG.core.synapses, size=64, replace=False)
    words = rng.integers(0, 1 << bits, size=64)
    for a, w in zip(addrs, words, strict=True):
        device.write(0, CoreMem.SYNAPSES.value, int(a), [int(w)])
    for a, w in zip(addrs, words, strict=True):
        assert device.read(0, CoreMem.SYNAPSES.value, int(a), 1) == [int(w)]
