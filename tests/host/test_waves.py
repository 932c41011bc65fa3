"""Waveforms at a divergence: a core with a fault injected runs a network, and the report
and the FST window name the neuron and the step where it left the golden model."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import pywellen
import spikefab
import spikefab.hdl.core
import spikefab.hdl.lif
from spikefab.host.runtime import run_network
from spikefab.host.verilator import open_verilator
from spikefab.host.waves import first_divergence, trace_divergence, trace_run
from spikefab.mapping.network import NetworkBuilder
from spikefab.sim.golden import GoldenModel
from spikefab.sim.rtl import write_verilog
from spikefab.sim.verilator import TOP_NAME, build_harness

#: The fault: the refractory count a neuron reloads after a spike is one short (4 bits: a
#: neuron without a refractory period gets 15 steps of one).
FAULT_OLD = "u8_ref.eq(u7_pr.refractory)"
FAULT_NEW = "u8_ref.eq(u7_pr.refractory - 1)"


def network():
    b = NetworkBuilder("faulted")
    b.spike_source("drive", 8, poisson={"rate_hz": 300, "seed": 4})
    b.population("none", 6, du=400, dv=300, vth=120, refractory=0)
    b.population("some", 6, du=400, dv=300, vth=120, refractory=3)
    for post in ("none", "some"):
        connect = {"kind": "fixed_probability", "p": 0.6, "seed": 2}
        weight = {"kind": "uniform", "low": 20, "high": 90, "seed": 3}
        b.project("drive", post, connect=connect, weight=weight, delay=1)
    return b.build()


@pytest.fixture(scope="module")
def faulted(tmp_path_factory):
    """The image of the network and a traced harness whose cores carry the fault."""
    net = network()
    image = spikefab.image_for(net, "verilator")
    source = Path(spikefab.hdl.lif.__file__).read_text()
    assert source.count(FAULT_OLD) == 1, "the fault no longer applies to hdl/lif.py"
    mod = types.ModuleType("spikefab.hdl.lif_faulted")
    exec(compile(source.replace(FAULT_OLD, FAULT_NEW), "lif.py[faulted]", "exec"), mod.__dict__)
    from spikefab.sim.sdram_model import device_top

    path = tmp_path_factory.mktemp("faulted") / f"{TOP_NAME}.v"
    saved = spikefab.hdl.core.LIFDatapath
    spikefab.hdl.core.LIFDatapath = mod.LIFDatapath
    try:
        write_verilog(device_top(image.config)[0], TOP_NAME, path)
    finally:
        spikefab.hdl.core.LIFDatapath = saved
    program = build_harness(image.config, progress=False, trace=True, verilog=path)
    return net, image, program


def test_the_report_names_the_faulty_neuron_and_step(faulted, tmp_path):
    net, image, program = faulted
    steps = 150
    want = GoldenModel(net).run(steps)
    device = open_verilator(image.config, progress=False, program=program)
    try:
        got = run_network(net, image, device, steps, "verilator")
    finally:
        device.close()
    d = first_divergence(want, got)
    assert d is not None, "the fault changed nothing: the test proves nothing"
    report = trace_divergence(net, image, want, got, tmp_path, program=program, progress=False)
    assert report is not None
    # the report's divergence is the first spike golden and the faulted RTL disagree on ...
    assert (report.divergence.step, report.divergence.population) == (d.step, d.population)
    assert report.divergence.neuron == d.neuron
    # ... on its core and slot of the image
    assert report.core == image.core_of[d.population][d.neuron]
    assert report.slot == image.neuron_of[d.population][d.neuron]
    # the golden columns are the golden model's; the RTL's state first differs just after a
    # spike, by the fault: a refractory count one short
    s = report.first_state_step
    assert s is not None and s <= d.step
    row = next(r for r in report.rows if r["step"] == s)
    assert row["spike_golden"] and row["spike_rtl"]
    refractory = net.populations[d.population].neuron.refractory
    assert row["ref_golden"] == refractory
    assert row["ref_rtl"] == (refractory - 1) % 16
    text = (tmp_path / "divergence.txt").read_text()
    assert f"step {d.step}, population {d.population!r} neuron {d.neuron}" in text
    # the waveform holds the window, and the core's signals in it
    wave = pywellen.Waveform(str(report.fst))
    names = {v.full_name for v in wave.all_vars()}
    scope = report.scope
    assert f"{scope}.step" in names and f"{scope}.done" in names
    step_var = next(v for v in wave.all_vars() if v.full_name == f"{scope}.step")
    pulses = [t for t, x in step_var.tv if x == 1]
    a, b = report.window
    assert len(pulses) == b - a  # one step pulse per traced step, none outside the window


def test_a_window_of_a_correct_run(tmp_path):
    net = spikefab.load("synfire")
    image = spikefab.image_for(net, "verilator")
    fst = tmp_path / "w.fst"
    got, _ = trace_run(net, image, 60, fst, (20, 25), progress=False)
    cmp = spikefab.compare(spikefab.run(net, 60), got)
    assert cmp.equal, cmp.first
    wave = pywellen.Waveform(str(fst))
    step_var = next(v for v in wave.all_vars() if v.full_name.endswith("system.core0.step"))
    assert len([t for t, x in step_var.tv if x == 1]) == 5
    assert np.all(np.diff([t for t, _ in step_var.tv]) > 0)


def test_compare_traces_the_divergence(faulted, tmp_path, monkeypatch):
    """``spikefab compare`` on the faulted RTL: the mismatch, then the report and the FST."""
    from click.testing import CliRunner
    from spikefab.host import cli

    net, image, program = faulted
    image.save(tmp_path / "faulted.npz")
    # every Verilator simulation of this run is the faulted one
    monkeypatch.setattr("spikefab.host.verilator.build_harness", lambda *a, **k: program)
    out = tmp_path / "out"
    done = CliRunner().invoke(
        cli.main, ["compare", str(tmp_path / "faulted.npz"), "-n", "100", "-o", str(out)]
    )
    assert done.exit_code == 1, done.output
    d = first_divergence(GoldenModel(net).run(100), spikefab.load_result(out / "verilator.npz"))
    assert d is not None
    assert f"first divergence: step {d.step}, population {d.population!r}" in done.output
    assert (out / "divergence.fst").stat().st_size > 0
    assert "its state first differs after step" in (out / "divergence.txt").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "2:5"], "give --waves FILE"),
        (["--waves", "w.fst", "-b", "golden"], "-b verilator"),
        (["--waves", "w.fst", "-b", "verilator", "--window", "5:2"], "need 0 <= A < B"),
        (["--waves", "w.fst", "-b", "verilator", "--window", "5"], "is not A:B"),
        (["--waves", "w.fst", "-b", "verilator", "--window", "5:80", "-n", "50"], "ends after"),
    ],
)
def test_run_waves_usage(args, message, tmp_path):
    from click.testing import CliRunner
    from spikefab.host import cli

    done = CliRunner().invoke(cli.main, ["run", "synfire", "-o", str(tmp_path / "s.npz"), *args])
    assert done.exit_code == 2, done.output
    assert message in done.output
