"""Bitstreams of the boards, built with the YoWASP tools as ``spikefab build`` builds them.

The iCEBreaker builds run in every test run (one to five minutes each on a 2-core machine);
the two ECP5 builds are slow (the OrangeCrab's about 4 minutes, the ULX3S's about 12) and
marked so. Each checks the report: the design fits, nextpnr's fmax is at or above the board's clock,
the bitstream exists. A system too large for its device fails with the resource named and
by how much.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import replace

import pytest
from click.testing import CliRunner
from spikefab.boards import BOARDS, get_board
from spikefab.boards.build import build, dfu_suffix
from spikefab.hdl.layouts import CoreConfig, SystemConfig
from spikefab.host.cli import main


def check_report(board_name: str, out) -> None:  # type: ignore[no-untyped-def]
    board = get_board(board_name)
    rep = json.loads((out / "report.json").read_text())
    assert rep["fits"] and rep["meets_timing"], (out / "report.txt").read_text()
    assert rep["fmax_mhz"] >= board.clock_hz / 1e6
    assert rep["neurons"] == board.neurons and rep["synapses"] == board.synapses
    for key in ("lut", "ff", "ebr", "dsp"):
        used, avail = rep["resources"][key]
        assert 0 < used <= avail, key
    # the figures `spikefab estimate` quotes as the board's measured build are this build's
    assert board.measured is not None
    for key, (used, _) in board.measured.resources.items():
        got = rep["resources"][key][0]
        assert abs(got - used) <= 0.1 * used, (key, got, used)
    if board.family == "ice40":
        assert 0 < rep["resources"]["spram"][0] <= rep["resources"]["spram"][1] == 4
    stem = out / board.design_name
    bitstream = stem.with_suffix(f".{board.bitstream_ext}")
    assert rep["bitstream"] == str(bitstream)
    assert bitstream.stat().st_size > 100_000
    text = (out / "report.txt").read_text()
    assert f"fmax:      {rep['fmax_mhz']:.1f} MHz (meets the {board.clock_hz / 1e6:g} MHz" in text
    assert f"capacity:  {board.neurons} neurons, {board.synapses} synapses" in text
    per_entry = board.bits_per_entry()
    assert rep["bits_per_entry"] == pytest.approx(
        {
            "synapse": per_entry.synapse,
            "neuron": per_entry.neuron,
            "axon": per_entry.axon,
            "sdram_synapse": per_entry.sdram_synapse,
        }
    )
    if board.system.core.synapse_memory == "sdram":
        # the synapses in SDRAM, on a clock of its own that the build meets too
        assert "block RAM per entry: none per synapse (SDRAM: 32 bits), " in text
        assert rep["sdram_clock_mhz"] == 2 * board.clock_hz / 1e6
        assert rep["sdram_fmax_mhz"] >= rep["sdram_clock_mhz"]
        assert f"SDRAM:     {rep['sdram_fmax_mhz']:.1f} MHz (meets its " in text
    else:
        assert f"block RAM per entry: {per_entry.synapse:.1f} bits per synapse, " in text
        assert rep["sdram_clock_mhz"] is None


def test_icebreaker_bitstream(tmp_path):
    """`spikefab build --board icebreaker`: a .bin, and a report that fits and meets 12 MHz.

    The UP5K is the tightest of the devices: its system is built without the statistics
    counters, which leaves the logic cells 99.6% used.
    """
    report = build(BOARDS["icebreaker"], tmp_path, say=lambda _: None)
    assert report.fits and report.meets_timing
    assert not BOARDS["icebreaker"].system.core.stats
    check_report("icebreaker", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ulx3s", "orangecrab"])
def test_ecp5_bitstreams(name, tmp_path):
    report = build(BOARDS[name], tmp_path, say=lambda _: None)
    assert report.fits and report.meets_timing
    check_report(name, tmp_path)
    if name == "orangecrab":
        dfu = (tmp_path / BOARDS[name].design_name).with_suffix(".dfu").read_bytes()
        bit = (tmp_path / BOARDS[name].design_name).with_suffix(".bit").read_bytes()
        assert dfu[: len(bit)] == bit and len(dfu) == len(bit) + 16


def test_a_system_too_large_for_the_device_fails_naming_the_resource(tmp_path, monkeypatch):
    """`spikefab build` of two default cores on the UP5K: their rings alone overflow its EBR."""
    big = replace(
        BOARDS["icebreaker"],
        system=SystemConfig(
            cores=2,
            core=CoreConfig(neurons=256, axons=256, synapses=4096, delay_slots=16),
            sources=256,
            route_entries=512,
        ),
    )
    monkeypatch.setitem(BOARDS, "icebreaker", big)
    r = CliRunner().invoke(main, ["build", "--board", "icebreaker", "-o", str(tmp_path)])
    assert r.exit_code == 1
    m = re.search(
        r"does not fit the iCE40UP5K-SG48: EBR \(ICESTORM_RAM\) (\d+) used of 30, (\d+) over",
        r.stderr,
    )
    assert m, r.stderr
    used, over = int(m.group(1)), int(m.group(2))
    assert used > 48 and over == used - 30  # two rings of 24 block RAMs each
    assert re.search(rf"EBR +{used} / 30 ", r.stderr)  # the report is shown too
    assert not list(tmp_path.glob("*.bin"))  # no bitstream of a failed build
    assert "FAILED: the design does not fit" in (tmp_path / "report.txt").read_text()


def test_dfu_suffix_is_what_dfu_util_checks(tmp_path):
    bit = tmp_path / "a.bit"
    bit.write_bytes(bytes(range(256)) * 5)
    dfu_suffix(bit, tmp_path / "a.dfu", 0x1209, 0x5AF0)
    data = (tmp_path / "a.dfu").read_bytes()
    bcd_device, pid, vid, bcd_dfu, sig, length, crc = struct.unpack("<HHHH3sBI", data[-16:])
    assert (bcd_device, pid, vid, bcd_dfu, sig, length) == (
        0xFFFF,
        0x5AF0,
        0x1209,
        0x100,
        b"UFD",
        16,
    )
    # dfu-util's CRC: the reflected CRC-32 from 0xFFFFFFFF without the final inversion,
    # over everything but the CRC itself
    c = 0xFFFFFFFF
    for b in data[:-4]:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
    assert crc == c
