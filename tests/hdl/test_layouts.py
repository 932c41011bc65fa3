"""Core sizes, memory layouts, the single-core image and the generated Verilog."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from spikefab.hdl import params as P
from spikefab.hdl.layouts import NEURON_PARAMS, NEURON_STATE, CoreConfig, CoreMem, pack, unpack
from spikefab.host.cli import main
from spikefab.mapping.core_image import FitError, single_core_image
from spikefab.mapping.network import NetworkBuilder
from spikefab.sim.rtl import verilator_lint


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"neurons": 100}, "neurons must be a power of two from 2 to 4096, not 100"),
        ({"neurons": 8192}, "neurons must be a power of two from 2 to 4096, not 8192"),
        ({"axons": 3}, "axons must be a power of two from 2 to 65536, not 3"),
        ({"synapses": 0}, "synapses must be a power of two from 2 to 1048576, not 0"),
        ({"synapses": 1 << 21}, "synapses must be a power of two from 2 to 1048576, not 2097152"),
        ({"delay_slots": 128}, "delay_slots must be a power of two from 1 to 64, not 128"),
        ({"acc_bits": 16}, "acc_bits must be an integer from 17 to 40, not 16"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CoreConfig(**kwargs)


def test_config_type_error():
    with pytest.raises(TypeError, match=r"neurons must be an integer, not '64'"):
        CoreConfig(neurons="64")


def test_full_accumulator_width():
    # 4096 entries of at most 128 << 7 = 2**14 sum to 2**26 in magnitude: 27 bits + sign
    assert CoreConfig(synapses=4096, acc_bits=None).acc_bits == 28
    assert CoreConfig(acc_bits=24).acc_limit == 2**23 - 1


def test_layout_widths_follow_the_contract():
    assert NEURON_STATE.size == 2 * P.UV_BITS + P.REFRACTORY_BITS == 52
    assert NEURON_PARAMS.size == 12 + 12 + 17 + 13 + 3 + 4 + 1
    cfg = CoreConfig(neurons=256, axons=256, synapses=4096, delay_slots=16)
    assert cfg.synapse_layout.size == 8 + 8 + 3 + 4
    assert cfg.axon_layout.size == 12 + 13
    assert cfg.depth_of(CoreMem.RING) == 16 * 256


def test_pack_unpack_round_trip_and_signs():
    word = pack(NEURON_STATE, {"u": -1, "v": -(2**23 - 1), "ref": 15})
    # u = -1 is 24 ones at bit 0; v = -(2**23 - 1) = 0x800001 at bit 24; ref 15 at bit 48
    assert word == 0xFFFFFF | (0x800001 << 24) | (15 << 48)
    assert unpack(NEURON_STATE, word) == {"u": -1, "v": -(2**23 - 1), "ref": 15}


def test_pack_rejects_what_does_not_fit():
    with pytest.raises(ValueError, match=r"field u = 8388608 does not fit 24 signed bits"):
        pack(NEURON_STATE, {"u": 2**23, "v": 0, "ref": 0})
    with pytest.raises(ValueError, match=r"\['w'\] are not in the layout and \['v'\] are missing"):
        pack(NEURON_STATE, {"u": 0, "w": 0, "ref": 0})


def _net(n_lif: int, n_in: int, weight: int = 1, delay: int = 1, fan: str = "all_to_all"):
    b = NetworkBuilder("fit")
    b.spike_source("inp", n_in, times=[[0]] * n_in)
    b.population("exc", n_lif, du=1, dv=1, vth=1)
    b.project("inp", "exc", connect=fan, weight=weight, weight_exp=7, delay=delay)
    return b.build()


def test_image_places_neurons_axons_and_entries():
    cfg = CoreConfig(neurons=8, axons=8, synapses=64, delay_slots=4)
    img = single_core_image(_net(4, 3, weight=-5, delay=3), cfg)
    assert (img.n_neurons, img.n_axons, img.n_entries) == (4, 3, 12)
    axon1 = unpack(cfg.axon_layout, img.words[CoreMem.AXONS][1])
    assert axon1 == {"start": 4, "count": 4}
    entry = unpack(cfg.synapse_layout, img.words[CoreMem.SYNAPSES][5])
    assert entry == {"target": 1, "weight": -5, "weight_exp": 7, "delay": 2}


@pytest.mark.parametrize(
    ("net", "cfg", "message"),
    [
        (
            lambda: _net(20, 2),
            CoreConfig(neurons=16, axons=64, synapses=64),
            "needs 20 neurons; the core holds 16 (4 too many)",
        ),
        (
            lambda: _net(4, 40),
            CoreConfig(neurons=16, axons=32, synapses=1024),
            "needs 40 axons; the core has 32 (8 too many)",
        ),
        (
            lambda: _net(16, 16),
            CoreConfig(neurons=16, axons=32, synapses=128),
            "needs 256 synapse entries; the core holds 128 (128 too many)",
        ),
        (
            lambda: _net(4, 4, delay=9),
            CoreConfig(neurons=16, axons=32, delay_slots=8),
            "delays up to 9 steps; the core has 8 delay slots",
        ),
        (
            lambda: _net(2, 600, weight=127),
            CoreConfig(neurons=16, axons=1024, acc_bits=24),
            "neuron 0 of 'exc' can receive a sum of 9753600 in one step; the core's 24-bit "
            "accumulator holds 8388607 (use acc_bits >= 25)",
        ),
    ],
)
def test_image_refuses_what_does_not_fit(net, cfg, message):
    with pytest.raises(FitError, match=re.escape(message)):
        single_core_image(net(), cfg)


def test_verilog_command_passes_verilator_lint(tmp_path):
    out = tmp_path / "core.v"
    r = CliRunner().invoke(
        main,
        [
            "verilog",
            "--neurons",
            "16",
            "--axons",
            "32",
            "--synapses",
            "256",
            "--delay-slots",
            "4",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "module neuron_core(" in out.read_text()
    desc = json.loads(out.with_suffix(".json").read_text())
    ports = {p["name"]: p for p in desc["ports"]}
    assert ports["i_events__payload"]["width"] == 5
    assert ports["o_cfg__payload"]["direction"] == "out"
    mems = {m["name"]: m for m in desc["memories"]}
    assert mems["RING"]["depth"] == 4 * 16
    assert [f["name"] for f in mems["SYNAPSES"]["fields"]] == [
        "target",
        "weight",
        "weight_exp",
        "delay",
    ]
    lint = verilator_lint(out)
    assert lint.returncode == 0, lint.stderr
    assert "%Error" not in lint.stderr
    assert np.all([p["width"] > 0 for p in desc["ports"]])
