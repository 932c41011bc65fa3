"""What Yosys and nextpnr say about a build: resources used, fmax, the phase a tool is in.

Shared by ``spikefab build`` (:mod:`spikefab.boards.build`) and ``bench/synth_core.py``.
The sources are the tools' own outputs: the Yosys netlist (``write_json``), nextpnr's log
(its "Device utilisation" block, printed after packing, also when placement then fails) and
nextpnr's ``--report`` JSON (the achieved frequency of each clock and its critical path).

Before any tool runs, :func:`bits_per_entry` says what a core's tables cost in block RAM: it
elaborates the core for the family, takes the shape of each of its memories and the block
RAM configurations the family offers (:data:`BLOCK_RAMS`), and shares each memory's blocks
among the entries it holds.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from math import ceil
from pathlib import Path

from spikefab.hdl.layouts import CoreConfig

__all__ = [
    "BELS",
    "BLOCK_RAMS",
    "CELLS",
    "RESOURCES",
    "BitsPerEntry",
    "BlockRam",
    "CoreMemory",
    "bits_per_entry",
    "core_memories",
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


def clock_fmax(report: Path) -> dict[str, tuple[float, float]]:
    """Return every clock of a build with ``(achieved, constrained)`` frequencies (MHz), from
    nextpnr's report; ``{}`` when there is none."""
    if not report.exists():
        return {}
    fmax = json.loads(report.read_text()).get("fmax", {})
    return {k: (float(v["achieved"]), float(v["constraint"])) for k, v in fmax.items()}


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


# block RAM per entry ----------------------------------------------------------------------


@dataclass(frozen=True)
class BlockRam:
    """A kind of block RAM: its cell, its bits, and the ``(depth, width)`` it can be set to.

    ``cost`` is Yosys's cost of one block (``memory_libmap``), against which it weighs LUT
    RAM for a small memory.
    """

    cell: str
    bits: int
    shapes: tuple[tuple[int, int], ...]
    cost: int

    def blocks(self, width: int, depth: int) -> int:
        """Return the fewest blocks that hold ``depth`` words of ``width`` bits."""
        return min(ceil(width / w) * ceil(depth / d) for d, w in self.shapes)


#: The block RAMs of each family, by the ``ram_style`` that asks for them (``"block"`` is
#: the default): the ECP5's 18 Kbit DP16KD (512 x 36 as a PDPW16KD, with one read and one
#: write port), the iCE40's 4 Kbit SB_RAM40_4K and, for the memories marked ``"huge"``, the
#: UP5K's 256 Kbit SPRAM. Shapes and costs are those of Yosys's ``brams*.txt`` and
#: ``spram.txt``.
BLOCK_RAMS = {
    "ecp5": {
        "block": BlockRam(
            "DP16KD",
            18432,
            ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
            128,
        ),
    },
    "ice40": {
        "block": BlockRam("SB_RAM40_4K", 4096, ((2048, 2), (1024, 4), (512, 8), (256, 16)), 64),
        "huge": BlockRam("SB_SPRAM256KA", 262144, ((16384, 16),), 2048),
    },
}

#: The ECP5's LUT RAM (``TRELLIS_DPR16X4``: 16 words of 4 bits, Yosys's cost 4), which
#: Yosys takes over block RAM for a memory it holds more cheaply (a FIFO, or a flag per
#: neuron of a small core).
_LUT_RAM = {"ecp5": (16, 4, 4)}

#: Yosys's cost of a memory bit in flip-flops (``memory_libmap -logic-cost-ram``): a FIFO of
#: a few words goes there.
_LOGIC_COST = 1

#: What each memory of a core holds, by its name in the design: rows of the synapse table,
#: of the axon table, or words of each neuron (the ring: ``delay_slots`` per neuron). A
#: synapse or axon memory deeper than its table holds the neurons' parameters after it (the
#: merged banks of ``hdl/core.py``). The core's other memories, its FIFOs of a few words,
#: are not counted.
HOLDS = {
    "syn_bank": "synapse",
    "axon_bank": "axon",
    "learning.x_mem": "axon",
    "learning.pre_flag": "axon",
    "state": "neuron",
    "params": "neuron",
    "ring": "neuron",
    "learning.y_mem": "neuron",
    "learning.post_flag": "neuron",
}


@dataclass(frozen=True)
class CoreMemory:
    """One memory of a core, as a family holds it.

    ``kind`` is the block RAM's cell (``DP16KD``, ``SB_RAM40_4K``, ``SB_SPRAM256KA``),
    ``"LUT RAM"`` or ``"flip-flops"``; ``bits`` are the bits of its blocks (0 outside block
    RAM).
    """

    name: str
    width: int
    depth: int
    kind: str
    blocks: int
    bits: int


class _Platform:
    # what the core asks of a platform: its family (hdl/core.py chooses its banks by it)
    def __init__(self, family: str):
        self.family = {"ice40": "iCE40", "ecp5": "ECP5"}[family]


def core_memories(
    core: CoreConfig, family: str, merged_banks: bool | None = None
) -> list[CoreMemory]:
    """Return the memories of a core's tables elaborated for ``family`` (``"ice40"``, ``"ecp5"``).

    The tables are those of :data:`HOLDS`: the synapse and axon tables, the parameters, the
    state, the ring and the learning unit's traces.

    ``merged_banks`` chooses the core's memory arrangement as
    :class:`~spikefab.hdl.core.NeuronCore` does (``None``: the family's own).

    Raises
    ------
    ValueError
        For a family without block RAM figures.
    """
    from amaranth.hdl import Fragment
    from amaranth.lib.memory import Memory
    from spikefab.hdl.core import NeuronCore

    if family not in BLOCK_RAMS:
        raise ValueError(f"no block RAM figures for the family {family!r}")
    rams = BLOCK_RAMS[family]
    out: list[CoreMemory] = []

    def walk(frag: Fragment, path: tuple[str, ...]) -> None:
        for sub, name, _ in frag.subfragments:
            here = (*path, name if isinstance(name, str) else "")
            origins = getattr(sub, "origins", None) or ()
            for mem in (o for o in origins if isinstance(o, Memory)):
                if ".".join(here) in HOLDS:
                    out.append(_placed(".".join(here), mem, rams, family))
            walk(sub, here)

    walk(Fragment.get(NeuronCore(core, merged_banks=merged_banks), _Platform(family)), ())
    return out


def _placed(name: str, mem, rams: dict[str, BlockRam], family: str) -> CoreMemory:  # type: ignore[no-untyped-def]
    from amaranth.hdl import Shape

    width, depth = Shape.cast(mem.shape).width, mem.depth
    style = mem.attrs.get("ram_style", "block")
    ram = rams[style]
    blocks = ram.blocks(width, depth)
    if style == "huge":  # Yosys maps a memory to the SPRAM only when asked, and then always
        return CoreMemory(name, width, depth, ram.cell, blocks, blocks * ram.bits)
    # the cheapest of block RAM, LUT RAM and flip-flops, block RAM on a tie
    cost = blocks * ram.cost
    if family in _LUT_RAM:
        d, w, per = _LUT_RAM[family]
        if ceil(depth / d) * ceil(width / w) * per < min(cost, width * depth * _LOGIC_COST):
            return CoreMemory(name, width, depth, "LUT RAM", 0, 0)
    if width * depth * _LOGIC_COST < cost:
        return CoreMemory(name, width, depth, "flip-flops", 0, 0)
    return CoreMemory(name, width, depth, ram.cell, blocks, blocks * ram.bits)


@dataclass(frozen=True)
class BitsPerEntry:
    """Block RAM bits per synapse-table entry, per neuron and per axon of a core.

    Every bit of the core's tables is charged to an entry: a synapse entry's row of the
    synapse memory; a neuron's rows of the state, the parameters, the ring (``delay_slots``
    rows) and the learning unit's neuron traces; an axon's rows of the axon table and its
    traces. A memory's bits are shared equally among the rows entries use, so that the rows
    no entry uses (a block's rows past the table, the gap the merged banks of
    ``hdl/core.py`` leave between a table and the parameters after it) are paid for by
    those that are used: ``synapses x synapse + neurons x neuron + axons x axon`` is the bits
    of the memories. ``memories`` are the memories of the core's tables
    (:func:`core_memories`).
    """

    synapse: float
    neuron: float
    axon: float
    memories: tuple[CoreMemory, ...]
    #: SDRAM bits per synapse entry, for a core whose table is in SDRAM (else 0).
    sdram_synapse: float = 0.0

    def line(self) -> str:
        """Return the figures as one line of a report."""
        where = (
            f"none per synapse entry ({self.sdram_synapse:.0f} bits of SDRAM)"
            if self.sdram_synapse
            else f"{self.synapse:.1f} bits per synapse entry"
        )
        return f"{where}, {self.neuron:.0f} per neuron, {self.axon:.0f} per axon"


def bits_per_entry(core: CoreConfig, family: str, merged_banks: bool | None = None) -> BitsPerEntry:
    """Return the block RAM bits per synapse entry, neuron and axon of a core on a family.

    ``merged_banks`` as for :func:`core_memories`.

    Raises
    ------
    ValueError
        For a family without block RAM figures.
    """
    mems = core_memories(core, family, merged_banks)
    rows = {"synapse": core.synapses, "axon": core.axons, "neuron": core.neurons}
    # merged banks: the parameters are rows of the synapse and the axon bank
    merged = not any(m.name == "params" for m in mems)
    bits = dict.fromkeys(rows, 0.0)
    for m in mems:
        holds = HOLDS[m.name]
        if holds == "neuron":
            bits["neuron"] += m.bits
            continue
        params = core.neurons if merged and m.name in ("syn_bank", "axon_bank") else 0
        per_row = m.bits / (rows[holds] + params)
        bits[holds] += per_row * rows[holds]
        bits["neuron"] += per_row * params
    sdram = 0.0
    if core.synapse_memory == "sdram":
        from spikefab.hdl.sdram import SDRAM_DATA_BITS
        from spikefab.hdl.synapse_store import WORDS_PER_ENTRY

        sdram = float(WORDS_PER_ENTRY * SDRAM_DATA_BITS)
    return BitsPerEntry(
        synapse=bits["synapse"] / core.synapses,
        neuron=bits["neuron"] / core.neurons,
        axon=bits["axon"] / core.axons,
        memories=tuple(mems),
        sdram_synapse=sdram,
    )
