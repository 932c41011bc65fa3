"""`spikefab estimate`: fit, cycles, real time, link load, resources and energy before a
build (host/estimate.py), checked against the mapper, the RTL's own link bytes, the measured
builds and the docs that cite the energy sources."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import spikefab
from click.testing import CliRunner
from spikefab.boards import BOARDS
from spikefab.host.cli import main
from spikefab.host.estimate import ENERGY_SOURCES, link_bytes, parse_core
from spikefab.host.link import CountingTransport
from spikefab.host.runtime import load, run_network

DOCS = Path(__file__).resolve().parents[2] / "docs" / "estimate.md"


def cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["estimate", *args], catch_exceptions=False)


def test_balanced_on_the_ulx3s():
    r = cli("balanced", "--board", "ulx3s", "-n", "100")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "balanced on ulx3s: fits" in out
    mean = float(re.search(r"cycles per step: ([\d.]+) mean", out).group(1))
    rtf = float(re.search(r"on 25 MHz: ([\d.]+)x", out).group(1))
    # the real-time factor is the board's clock over the cycles of a 1 ms step
    assert rtf == pytest.approx(25e6 * 1e-3 / mean, rel=2e-3)
    assert "% of the UART (100 kB/s each way" in out  # 1 Mbaud, 8N1
    assert "LUT 8108 / 83640" in out  # the measured build
    energy = re.search(r"energy \(ESTIMATE.*: ([\d.]+) (\w?)J to ([\d.]+) (\w?)J per step", out)
    assert energy is not None, out
    assert out.count("source:") == 2 and "per synaptic event" in out


def test_a_network_that_does_not_fit_says_which_limit():
    r = cli("balanced", "--board", "icebreaker", "-n", "10")
    assert r.exit_code == 1
    assert "does not fit" in r.output and "744 too many" in r.output


def test_energy_sources_are_cited_in_the_docs():
    text = DOCS.read_text()
    for family, sources in ENERGY_SOURCES.items():
        for s in sources:
            assert s.source in text, (family, s.source)
    assert "estimate" in text.lower()


def test_energy_scales_with_the_cycles():
    a = spikefab.estimate("synfire", "icebreaker", steps=100)
    b = spikefab.estimate("fi_sweep", "icebreaker", steps=100)
    assert a.energy is not None and b.energy is not None
    for k in range(2):
        assert a.energy[k] / a.cycles.mean == pytest.approx(b.energy[k] / b.cycles.mean)
    assert a.energy[0] < a.energy[1]


@pytest.mark.parametrize("name", ["synfire", "balanced"])
def test_link_bytes_against_the_rtl(name):
    """The predicted bytes each way against those counted on the Verilator harness's pipe
    during the same run."""
    net = spikefab.load(name)
    net.probes[:] = [p for p in net.probes if p.variable == "spikes"]
    steps = 150
    image = spikefab.image_for(net, "verilator")
    with spikefab.open_system(image.config, "verilator", progress=False) as dev:
        load(dev, image)
        counting = CountingTransport(dev.transport)
        dev.transport = counting
        run_network(net, image, dev, steps, "verilator", load_image=False)
        sent, received = counting.sent, counting.received
    pred = spikefab.estimate(net, "verilator", steps=steps)
    c = pred.cycles
    with_inputs = np.flatnonzero(c.sources)
    marks = int(with_inputs[-1]) + 1 if with_inputs.size else 0
    inp, out = link_bytes(float(c.host_spikes.sum()), float(c.sources.sum()), steps, marks)
    assert (pred.link_in * steps, pred.link_out * steps) == pytest.approx((inp, out))
    # the run also reads the status and the cycle counters: a few frames more
    assert abs(inp - sent) <= 0.02 * sent + 64, (inp, sent)
    assert abs(out - received) <= 0.02 * received + 128, (out, received)
    assert received > 2 * steps  # the spike stream is most of it


def test_parse_core_names_what_is_wrong():
    assert parse_core("neurons=1024, axons=0x800,learning=1") == {
        "neurons": 1024,
        "axons": 2048,
        "learning": True,
    }
    with pytest.raises(ValueError, match=r"no core field 'neuron'.*neurons"):
        parse_core("neuron=1024")
    with pytest.raises(ValueError, match="not a whole number"):
        parse_core("neurons=many")
    with pytest.raises(ValueError, match="is not field=value"):
        parse_core("neurons")


def test_a_custom_core_gets_predicted_resources():
    r = cli("synfire", "--board", "orangecrab", "-n", "50", "--core", "neurons=1024,axons=2048")
    assert r.exit_code == 0, r.output
    assert "orangecrab with cores of neurons=1024, axons=2048: fits" in r.output
    assert "resources PREDICTED" in r.output and "mean error on builds" in r.output
    assert re.search(r"LUT (\d+) / 24288", r.output)
    # twice the neurons and axons: their memories outgrow the LFE5U-25F's 56 block RAMs
    ebr = int(re.search(r"EBR (\d+) / 56", r.output).group(1))
    assert ebr > BOARDS["orangecrab"].measured.resources["ebr"][0]
    assert "which does NOT fit the FPGA" in r.output
    assert f"needs {ebr} EBR, {ebr - 56} more than the 56" in r.output
    bad = cli("synfire", "--board", "orangecrab", "--core", "neurons=1000")
    assert bad.exit_code != 0 and "neurons" in bad.output


def test_the_map_report_on_a_board_has_the_estimate():
    r = CliRunner().invoke(main, ["map", "synfire", "--board", "orangecrab"])
    assert r.exit_code == 0, r.output
    assert "estimate (in full: spikefab estimate NET --board orangecrab)" in r.output
    assert re.search(r"real time at dt 1 ms on 48 MHz: [\d.]+x", r.output)
