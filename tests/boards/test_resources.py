"""The resource model (boards/resources.py) against the measured builds it is fitted on:
each build predicted by a model fitted on the others (leave one out)."""

from __future__ import annotations

import pytest
from spikefab.boards.resources import leave_one_out, predict_core
from spikefab.hdl.layouts import CoreConfig

#: Mean error on builds the model was not fitted to, at most (docs/estimate.md).
BOUNDS = {"lut": 0.08, "ff": 0.10, "fmax_mhz": 0.15}


@pytest.mark.parametrize("device", ["ecp5-85f", "up5k"])
def test_leave_one_out_error(device):
    rows = [r for r in leave_one_out() if r["device"] == device]
    assert len(rows) >= 5
    for figure, bound in BOUNDS.items():
        errors = [abs(p - m) / m for m, p in (r[figure] for r in rows if figure in r)]
        assert sum(errors) / len(errors) <= bound, (figure, errors)
    for r in rows:
        # block RAM comes from the memories' packing, not from a fit: exact
        measured, predicted = r["ebr"]
        assert predicted == measured, r["name"]


def test_a_bigger_core_needs_more():
    small = predict_core(CoreConfig(neurons=256), "ecp5-85f")
    big = predict_core(CoreConfig(neurons=4096, axons=4096, synapses=65536), "ecp5-85f")
    assert big.lut > small.lut and big.ebr > small.ebr and big.fmax_mhz < small.fmax_mhz
    learning = predict_core(CoreConfig(learning=True), "ecp5-85f")
    assert learning.lut > small.lut and learning.dsp > small.dsp


def test_what_the_model_does_not_cover_is_refused():
    with pytest.raises(ValueError, match="SDRAM"):
        predict_core(CoreConfig(neurons=4096, synapse_memory="sdram"), "ecp5-85f")
    with pytest.raises(ValueError, match="no resource model for 'gw1n'"):
        predict_core(CoreConfig(), "gw1n")
