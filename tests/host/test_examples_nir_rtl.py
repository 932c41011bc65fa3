"""The NIR example on the generated RTL (Verilator) equals the golden model.

This is ``spikefab compare examples/nir_classifier.nir``, run as users run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from spikefab.host.cli import main

pytest.importorskip("nir", reason="the NIR example needs the `nir` package (spikefab[nir])")

EXAMPLE = Path(__file__).parents[2] / "examples" / "nir_classifier.nir"


def test_compare_nir_example_on_verilator() -> None:
    r = CliRunner().invoke(main, ["compare", str(EXAMPLE), "--steps", "200", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "golden vs verilator" in r.stdout
    assert "spike mismatches:      0" in r.stdout
    assert "probe readout/v: 600 values compared, 0 mismatches" in r.stdout
    assert "identical" in r.stdout
    # the classifier is not silent: its hidden layer and vote spike
    assert "spike events compared: 0 " not in r.stdout
