"""Every bundled example on the generated RTL (Verilator) equals the golden model.

This is ``spikefab compare`` on each example, run as users run it, for 200 steps.
"""

from __future__ import annotations

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
