"""Every bundled example on the generated RTL (Verilator) equals the golden model.

This is ``spikefab compare`` on each example, run as users run it, for 200 steps.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from spikefab.host.cli import main

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_compare_example_on_verilator(path: Path) -> None:
    steps = 400 if path.stem == "stdp_pattern" else 200
    r = CliRunner().invoke(main, ["compare", str(path), "--steps", str(steps), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "spike mismatches:      0" in r.stdout
    assert "identical" in r.stdout
    # the device's own step cycles, and the real-time factor they give at a board's clock
    m = re.search(r"device: ([\d.]+) cycles per step on average, (\d+) in the longest", r.stdout)
    assert m is not None, r.stdout
    mean, longest = float(m[1]), int(m[2])
    assert 0 < mean <= longest
    dt_ms = float(re.search(r"real time at dt ([\d.]+) ms", r.stdout)[1])
    ulx3s = re.search(r"25 MHz \(ulx3s\) ([\d.e+]+)x \(longest step ([\d.e+]+)x\)", r.stdout)
    assert ulx3s is not None, r.stdout
    # printed to 3 significant figures: at most half a unit of the third digit, 5e-3 relative,
    # and the mean is itself rounded to 0.1 cycle
    assert float(ulx3s[1]) == pytest.approx(dt_ms / 1000 * 25e6 / mean, rel=5.1e-3)
    assert float(ulx3s[2]) == pytest.approx(dt_ms / 1000 * 25e6 / longest, rel=5.1e-3)
    if path.stem == "stdp_pattern":
        # learning on the cores: the weights read back over the run and at its end
        assert "final weights/plastic: 200 weights compared, 0 mismatches" in r.stdout
        assert "probe plastic/weights: " in r.stdout


def test_compare_with_icarus() -> None:
    """`--with icarus` runs the same device in Icarus Verilog, driven by the same host code."""
    r = CliRunner().invoke(
        main, ["compare", "fi_sweep", "--steps", "200", "--against", "system", "--with", "icarus"]
    )
    assert r.exit_code == 0, r.output
    assert "golden vs icarus" in r.stdout
    assert r.stdout.count("identical") == 2
    # the analytic rates of fi_sweep (1 to 250 Hz): the run is not trivially silent
    assert "spike events compared: 0 " not in r.stdout


@pytest.mark.parametrize("name", ["cuba", "balanced"])
def test_compare_on_the_ulx3s_system(name: str) -> None:
    """`spikefab compare NET --board ulx3s -n 1000`: the network mapped onto the ULX3S's
    system (one core of 4096 neurons, its synapse table in SDRAM) and run on its Verilator
    simulation, the SDRAM model included (which stops the run on any timing rule broken),
    is identical to golden; the device's step cycles give the real-time factor at the
    ULX3S's clock, faster than real time."""
    r = CliRunner().invoke(main, ["compare", name, "--board", "ulx3s", "-n", "1000"])
    assert r.exit_code == 0, r.output
    assert "spike mismatches:      0" in r.stdout
    assert "identical" in r.stdout
    m = re.search(r"device: ([\d.]+) cycles per step on average, (\d+) in the longest", r.stdout)
    assert m is not None, r.stdout
    mean = float(m[1])
    assert mean >= 4096 + 11  # at least the update of every neuron (contract 6.3)
    ulx3s = re.search(r"25 MHz \(ulx3s\) ([\d.e+]+)x", r.stdout)
    assert ulx3s is not None, r.stdout
    assert float(ulx3s[1]) == pytest.approx(1e-3 * 25e6 / mean, rel=5.1e-3)
    assert float(ulx3s[1]) > 1  # faster than real time at 1 ms steps
