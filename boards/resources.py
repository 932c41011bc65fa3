"""A resource model of a neuron core: logic, flip-flops, DSPs, block RAM and fmax of a core of
any size, before a build (``spikefab estimate --core``; ``docs/estimate.md``).

Block RAM is not fitted: it comes from the core's memories as the family packs them
(:func:`spikefab.boards.report.core_memories`). LUTs, flip-flops, DSPs and fmax are fitted by
least squares on measured builds of cores (``boards/resource_builds.json``, written by
``bench/resource_model.py --measure``: Yosys and nextpnr on each core behind shift chains),
per family, as linear functions of the address widths of the core's tables (log2 of
neurons, axons, synapse entries and delay slots) and whether it learns: the logic of a
table's address path, counters and comparators grows with its address bits, not with its
depth. ``bench/resource_model.py`` prints the model's error on builds it was not fitted to
(leave one out).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from spikefab.hdl.layouts import CoreConfig

__all__ = [
    "BUILDS_FILE",
    "FAMILY_OF",
    "FIGURES",
    "CorePrediction",
    "leave_one_out",
    "predict_core",
]

#: The measured builds the model is fitted on.
BUILDS_FILE = Path(__file__).resolve().parent / "resource_builds.json"
#: The family of each device the builds were made for.
FAMILY_OF = {"ecp5-85f": "ecp5", "ecp5-25f": "ecp5", "up5k": "ice40"}
#: The fitted figures, and ``ebr`` (from the memories' packing, not fitted).
FIGURES = ("lut", "ff", "dsp", "ebr", "fmax_mhz")
_FITTED = ("lut", "ff", "dsp", "fmax_mhz")


def _features(core: dict | CoreConfig, small: bool) -> list[float]:
    c = core if isinstance(core, CoreConfig) else CoreConfig(**core)
    bits = [math.log2(c.neurons), math.log2(c.axons), math.log2(c.synapses)]
    learn = float(c.learning)
    if small:  # few builds: one slope for all the address bits
        return [1.0, sum(bits), learn]
    return [1.0, *bits, math.log2(c.delay_slots), learn]


def _fit(builds: list[dict], figure: str) -> tuple[np.ndarray, bool]:
    builds = [b for b in builds if b.get(figure) is not None]  # fmax: placed builds only
    small = len(builds) < 9
    x = np.array([_features(b["core"], small) for b in builds])
    y = np.array([float(b[figure]) for b in builds])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef, small


@cache
def _builds() -> tuple[dict, ...]:
    if not BUILDS_FILE.exists():
        return ()
    return tuple(json.loads(BUILDS_FILE.read_text())["builds"])


def _ebr(core: dict | CoreConfig, family: str) -> int:
    from spikefab.boards.report import core_memories

    c = core if isinstance(core, CoreConfig) else CoreConfig(**core)
    block_ram = ("DP16KD", "SB_RAM40_4K")
    return sum(m.blocks for m in core_memories(c, family) if m.kind in block_ram)


@dataclass(frozen=True)
class CorePrediction:
    """Predicted resources of one core on a device."""

    device: str
    lut: float
    ff: float
    dsp: float
    ebr: int
    fmax_mhz: float
    builds: int  # the builds the model was fitted on

    def figures(self) -> dict[str, float]:
        return {f: float(getattr(self, f)) for f in FIGURES}


def predict_core(core: CoreConfig, device: str, builds: list[dict] | None = None) -> CorePrediction:
    """Predict a core's resources on ``device`` (a key of :data:`FAMILY_OF`) from the
    measured builds of that device (or ``builds``).

    Raises
    ------
    ValueError
        For a device without measured builds, or a core the model does not cover (its
        synapses in SDRAM: the controller is not in the builds).
    """
    if device not in FAMILY_OF:
        raise ValueError(f"no resource model for {device!r}; known: {', '.join(FAMILY_OF)}")
    if core.synapse_memory == "sdram":
        raise ValueError(
            "the resource model covers cores with their synapses in block RAM; the SDRAM "
            "core's controller is not in its builds (measure it with spikefab build)"
        )
    pool = [b for b in (builds if builds is not None else _builds()) if b["device"] == device]
    if len(pool) < 4:
        raise ValueError(
            f"the resource model has {len(pool)} measured builds for {device} (4 needed); "
            "run bench/resource_model.py --measure"
        )
    out = {}
    for figure in _FITTED:
        coef, small = _fit(pool, figure)
        out[figure] = float(np.dot(coef, _features(core, small)))
    return CorePrediction(
        device=device,
        lut=out["lut"],
        ff=out["ff"],
        dsp=max(0.0, round(out["dsp"])),
        ebr=_ebr(core, FAMILY_OF[device]),
        fmax_mhz=out["fmax_mhz"],
        builds=len(pool),
    )


def leave_one_out() -> list[dict]:
    """For every recorded build: the measured figures against those a model fitted on the
    other builds of its device predicts (``{figure: (measured, predicted)}``)."""
    rows = []
    builds = list(_builds())
    for i, b in enumerate(builds):
        others = builds[:i] + builds[i + 1 :]
        try:
            p = predict_core(CoreConfig(**b["core"]), b["device"], others)
        except ValueError:
            continue
        row: dict = {"name": b["name"], "device": b["device"]}
        for f in FIGURES:
            if b.get(f) is not None:
                row[f] = (float(b[f]), p.figures()[f])
        rows.append(row)
    return rows
