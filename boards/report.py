"""What Yosys and nextpnr say about a build: resources used, fmax, the phase a tool is in.

Shared by ``spikefab build`` (:mod:`spikefab.boards.build`) and ``bench/synth_core.py``.
The sources are the tools' own outputs: the Yosys netlist (``write_json``), nextpnr's log
(its "Device utilisation" block, printed after packing, also when placement then fails) and
nextpnr's ``--report`` JSON (the achieved frequency of each clock and its critical path).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

__all__ = [
    "BELS",
    "CELLS",
    "RESOURCES",
    "netlist_cells",
    "phase_of",
    "read_report",
    "utilisation",
]

#: The resources reported, in order, with what they are called in a report.
RESOURCES = {
    "lut": "LUT",
    "ff": "FF",
    "ebr": "EBR",
    "spram": "SPRAM",
    "dsp": "DSP",
}

#: Cell types of the resources in a Yosys netlist, per family.
CELLS = {
    "ice40": {
        "lut": ("SB_LUT4",),
        "carry": ("SB_CARRY",),
        "ff": ("SB_DFF*",),
        "ebr": ("SB_RAM40_4K",),
        "spram": ("SB_SPRAM256KA",),
        "dsp": ("SB_MAC16",),
    },
    "ecp5": {
        "lut": ("LUT4",),
        "carry": ("CCU2C",),
        "ff": ("TRELLIS_FF",),
        "ebr": ("DP16KD", "PDPW16KD"),
        "spram": (),
        "dsp": ("MULT18X18D", "ALU54B"),
    },
}

#: nextpnr's names of the same resources (``None``: nextpnr does not count it separately).
#: An iCE40 logic cell (``ICESTORM_LC``) is a LUT4 with its flip-flop and carry.
BELS = {
    "ice40": {
        "lut": "ICESTORM_LC",
        "ff": None,
        "ebr": "ICESTORM_RAM",
        "spram": "ICESTORM_SPRAM",
        "dsp": "ICESTORM_DSP",
    },
    "ecp5": {
        "lut": "TRELLIS_COMB",
        "ff": "TRELLIS_FF",
        "ebr": "DP16KD",
        "spram": None,
        "dsp": "MULT18X18D",
    },
}

_PHASE = re.compile(
    r"^(\d+\.)+ Executing|^Info: (Running|Placing|Routing|Setting up|Packing|"
    r"Running main|Creating initial|Running simulated|HeAP|Router2|Running "
    r"router|Program finished)|^Info:\s+at (initial placer )?iteration #\d+|"
    r"^Info:\s+\d+ \||^Info:\s+iter=\d+"
)


def phase_of(log: Path) -> str:
    """Return the last line of a tool's log that names a phase (``""`` if none yet)."""
    try:
        lines = log.read_text(errors="replace").splitlines()[-400:]
    except OSError:
        return ""
    for line in reversed(lines):
        s = line.strip()
        if _PHASE.match(s):
            return s[:90]
    return ""


def netlist_cells(
    netlist: Path, family: str, top: str = "top", depth: int = 1
) -> tuple[dict[str, int], dict[str, int]]:
    """Return cell counts by resource, and block RAM cells by the memory they implement.

    A block RAM cell is named after its memory and its place in it (``core.ring.0.3``);
    the memory is named by the last ``depth`` components of the name before that place
    (``ring`` at depth 1, ``core.ring`` at 2), without instance numbers (``core0`` and
    ``core1`` both count as ``core``), with `` (SPRAM)`` for an SPRAM.
    """
    mod = json.loads(netlist.read_text())["modules"][top]
    counts = dict.fromkeys(CELLS[family], 0)
    per_memory: dict[str, int] = {}
    for name, cell in mod["cells"].items():
        for res, types in CELLS[family].items():
            if any(fnmatch.fnmatchcase(cell["type"], t) for t in types):
                counts[res] += 1
                if res in ("ebr", "spram"):
                    parts = name.split(".")
                    while len(parts) > 1 and parts[-1].isdigit():
                        parts.pop()
                    # the same memory of every core under one name: core0.ring -> core.ring
                    parts = [re.sub(r"(\$\d+|\d+)$", "", p) or p for p in parts[-depth:]]
                    key = ".".join(parts) + (" (SPRAM)" if res == "spram" else "")
                    per_memory[key] = per_memory.get(key, 0) + 1
    return counts, per_memory


def utilisation(log: Path) -> dict[str, tuple[int, int]]:
    """Return nextpnr's "Device utilisation" block: ``{bel: (used, available)}``."""
    util: dict[str, tuple[int, int]] = {}
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return util
    block = text.split("Device utilisation:", 1)
    if len(block) < 2:
        return util
    for line in block[1].splitlines()[1:]:
        m = re.match(r"Info:\s+(\S+):\s+(\d+)/\s*(\d+)", line)
        if not m:
            break
        util[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return util


def read_report(report: Path) -> tuple[float | None, list[dict]]:
    """Return the lowest achieved frequency over the clocks (MHz), and that clock's path.

    ``(None, [])`` when there is no report (nextpnr failed before timing analysis).
    """
    if not report.exists():
        return None, []
    rep = json.loads(report.read_text())
    fmax = rep.get("fmax", {})
    if not fmax:
        return None, []
    clock, worst = min(fmax.items(), key=lambda kv: kv[1]["achieved"])
    for cp in rep.get("critical_paths", []):
        if cp["from"] == cp["to"] and clock in cp["from"]:
            return worst["achieved"], cp["path"]
    return worst["achieved"], []
