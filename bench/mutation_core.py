"""Mutation run of the neuron core: does the core regression catch realistic faults?

The run tests the tests. Each *mutant* below is one realistic fault of the core, in one of
its parts (:data:`PARTS`: ``hdl/core.py`` and the components it is made of,
``hdl/lif.py``, ``hdl/delivery.py``, ``hdl/core_regs.py``, ``hdl/learning.py``), written as a
textual substitution (an ``old`` snippet of the part's source and the ``new`` text that
replaces it). For each mutant, one at a time, the run

1. checks that ``old`` occurs exactly once in the current source of its part (if the source
   has changed so that a mutant no longer applies, the run stops at once and names the
   mutant);
2. loads the mutated part as a separate in-memory module in place of the installed one
   while it loads the core (no source file is ever written), elaborates its
   ``NeuronCore`` to Verilog in
   ``sim_build/mutants/<name>/<config>/neuron_core.v`` and checks that this Verilog differs
   from the unmutated core's (a mutant that changes nothing is a bug of the run);
3. runs the core regression (``tests/hdl/core_cases.py``, ``run_regression``: random networks
   and named corner cases, each with and without idle cycles and backpressure) on that
   Verilog, in a subprocess, first on Icarus with the ``n16d4`` core, then, if the mutant
   survived, on Verilator ``n16d4``, then on Icarus ``n64d16``. The first run with a failing
   test *kills* the mutant; a mutant that passes all three has *survived*. A hang fails the
   testbench's wait limit and so counts as a kill too (the run also stops a regression after
   ``--timeout`` seconds and counts that as a hang).

Before the mutants, the unmutated core runs the first regression as a control: if it fails,
every "kill" would be meaningless, and the run stops.

The run ends with a table (mutant, description, result, the run that killed it, how many of
that run's tests failed, and the first ``AssertionError`` of its log) and the line
``killed K of M mutants``. The exit status is 0 only when every mutant was killed.
Everything a regression writes (case files, simulator builds, ``run.log``, ``results.xml``)
stays in ``sim_build/mutants/<name>/<config>/<simulator>/``.

Run it from the repository root::

    .venv/bin/python bench/mutation_core.py            # every mutant, 2 in parallel
    .venv/bin/python bench/mutation_core.py --list     # the mutants and what they do
    .venv/bin/python bench/mutation_core.py --only threshold_ge no_forwarding -j 1

Options: ``--only NAME ...`` runs the named mutants only, ``--list`` lists the mutants,
``-j N`` runs N mutants at once (default 2; each regression is one simulator process),
``--no-control`` skips the control run, ``--timeout S`` bounds one regression (default 1800).

Time: on a 2-core machine one Icarus ``n16d4`` regression takes 20-45 s, a Verilator
``n16d4`` one about 1.5 min (most of it compiling) and an Icarus ``n64d16`` one 3-4 min when
two run at once, so a mutant killed by the first run costs well under a minute and a survivor
about 6.5 minutes.

To add a mutant, append a :class:`Mutant` to :data:`MUTANTS`: a unique ``name`` (it names
the build directory), a one-line ``description`` of the fault, the ``old`` and ``new``
text, and the ``path`` of the part it is in. Copy ``old`` verbatim from that file
(whitespace included; it may span lines)
and make it long enough to occur only once. Prefer faults a designer could plausibly make
(an off-by-one, a missing term, a signed/unsigned slip, a forgotten handshake condition) to
ones that break everything at once. Check it with ``--only NAME``.

Result: every one of the 24 mutants is killed (``killed 24 of 24 mutants``, 454 s with
``-j 2``). Four of them survived the first version of the regression and showed what it
lacked; the regression now has each of these:

* a case in which every neuron of the core spikes every step (``all_spike``), so that the
  output FIFO fills under backpressure (kills ``spike_credit_ignores_inflight`` and
  ``spike_credit_off_by_one``);
* an event of the next step offered from the ``step`` cycle until ``done``, which the core
  must not take (contract 6.3; kills ``events_taken_with_step``);
* the registers ``NOW``, ``EVENTS``, ``SPIKES`` and ``STEPS`` read after every step and
  compared with what the case implies (contract 6.1; kills ``events_counter_counts_axons``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "hdl" / "core.py"
#: The parts of the core a mutant can be in, and their modules. The core imports the others.
PARTS = {
    "hdl/core.py": "spikefab.hdl.core",
    "hdl/lif.py": "spikefab.hdl.lif",
    "hdl/delivery.py": "spikefab.hdl.delivery",
    "hdl/core_regs.py": "spikefab.hdl.core_regs",
    "hdl/learning.py": "spikefab.hdl.learning",
}
TESTS = ROOT / "tests" / "hdl"
OUT = ROOT / "sim_build" / "mutants"

#: The regressions a mutant meets, in order, until one kills it: (simulator, core config).
STAGES = (("icarus", "n16d4"), ("verilator", "n16d4"), ("icarus", "n64d16"))
CONFIG_NAMES = tuple(dict.fromkeys(cfg for _, cfg in STAGES))

# The subprocess that runs one regression (argv: tests dir, simulator, config, build, verilog).
_RUNNER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from core_cases import run_regression
run_regression(sys.argv[2], sys.argv[3], Path(sys.argv[4]), verilog=Path(sys.argv[5]))
"""


class MutantError(RuntimeError):
    """A mutant does not apply to the current source, or applying it changes nothing."""


@dataclass(frozen=True)
class Mutant:
    """One fault of the core: replace ``old`` (which occurs once in the source) by ``new``.

    Parameters
    ----------
    name
        Short identifier; also the name of the mutant's build directory.
    description
        What the fault is, in one line.
    old
        Verbatim text of ``path``, occurring exactly once.
    new
        The text that replaces it.
    path
        The part of the core it is in (a key of :data:`PARTS`), relative to the repository.
    """

    name: str
    description: str
    old: str
    new: str
    path: str = "hdl/core.py"

    def apply(self, source: str) -> str:
        """Return ``source`` with the substitution made.

        Raises
        ------
        MutantError
            When ``old`` does not occur exactly once in ``source``.
        """
        count = source.count(self.old)
        if count != 1:
            raise MutantError(
                f"mutant {self.name!r}: its old snippet {self.old!r} occurs {count} times in "
                f"{self.path}, not once; the source has changed, update the mutant"
            )
        return source.replace(self.old, self.new)


MUTANTS: list[Mutant] = [
    # neuron arithmetic (contract 2) ---------------------------------------------------------
    Mutant(
        "decay_u_floor",
        "u decay rounds toward -inf: arithmetic shift of the signed product, not of |u|",
        "u5_u.eq(a6 + u4_du + u4_cu),",
        "u5_u.eq(a6 + u4_du),",
        path="hdl/lif.py",
    ),
    Mutant(
        "decay_v_floor",
        "v decay rounds toward -inf: the magnitude of a negative v is rounded up",
        "u5_vb.eq(u4_bias + u4_dv + u4_cv),",
        "u5_vb.eq(u4_bias + u4_dv),",
        path="hdl/lif.py",
    ),
    Mutant(
        "du_offset_missing",
        "u decays by du / 4096 instead of (du + 1) / 4096 (the ds offset is forgotten)",
        "one - P.DU_OFFSET - pr.du",
        "one - pr.du",
        path="hdl/lif.py",
    ),
    Mutant(
        "dv_gets_du_offset",
        "copy-paste slip: v decays by (dv + 1) / 4096, with u's offset",
        "one - P.DV_OFFSET - pr.dv",
        "one - P.DU_OFFSET - pr.dv",
        path="hdl/lif.py",
    ),
    Mutant(
        "u_saturates",
        "u saturates at -2^23 .. 2^23 - 1 instead of wrapping to 24 bits",
        "u5_u.eq(a6 + u4_du + u4_cu),",
        "u5_u.eq(_clip(m, a6 + u4_du + u4_cu, P.UV_MIN, P.UV_MAX, signed(P.UV_BITS))),",
        path="hdl/lif.py",
    ),
    Mutant(
        "v_clip_allows_min",
        "v is clipped to -2^23 .. 2^23 - 1 (the 24-bit range), not symmetrically",
        "Mux(u7_under, P.V_MIN, u7_vi_raw)",
        "Mux(u7_vi_raw < P.UV_MIN, P.UV_MIN, u7_vi_raw)",
        path="hdl/lif.py",
    ),
    Mutant(
        "threshold_ge",
        "a neuron spikes when vi >= vth << 6 instead of strictly greater",
        "u7_above.eq(vi_raw >= (theta | 1))",
        "u7_above.eq(vi_raw >= theta)",
        path="hdl/lif.py",
    ),
    Mutant(
        "refractory_load_plus_one",
        "the refractory counter is loaded with refractory + 1 on a spike",
        "u8_ref.eq(u7_pr.refractory),",
        "u8_ref.eq(u7_pr.refractory + 1),",
        path="hdl/lif.py",
    ),
    Mutant(
        "refractory_ends_early",
        "a neuron leaves refractoriness at ref == 1 instead of ref == 0 (one step short)",
        "refr.eq(u7_ref != 0)",
        "refr.eq(u7_ref > 1)",
        path="hdl/lif.py",
    ),
    Mutant(
        "reset_subtract_unshifted",
        "reset by subtraction computes vi - vth instead of vi - (vth << 6)",
        "u7_sub.eq(vi_raw - theta),\n            u7_max_sub.eq(P.V_MAX - theta),",
        "u7_sub.eq(vi_raw - u6_pr.vth),\n            u7_max_sub.eq(P.V_MAX - u6_pr.vth),",
        path="hdl/lif.py",
    ),
    Mutant(
        "bias_exp_ignored",
        "the bias is bias_mant, without the << bias_exp",
        "u2_bias.eq(pr.bias_mant << pr.bias_exp)",
        "u2_bias.eq(pr.bias_mant)",
        path="hdl/lif.py",
    ),
    # dendrite (contract 3, 6.3) -------------------------------------------------------------
    Mutant(
        "input_wraps_16",
        "the dendritic sum is wrapped to 16 bits instead of saturated",
        "a1 = _clip(m, acc, P.INPUT_MIN, P.INPUT_MAX, signed(P.INPUT_BITS))",
        "a1 = acc[: P.INPUT_BITS].as_signed()",
        path="hdl/lif.py",
    ),
    Mutant(
        "weight_unsigned",
        "the weight mantissa is zero-extended: negative weights add w + 256",
        "d3_val.eq(entry.weight << entry.weight_exp)",
        "d3_val.eq(entry.weight.as_unsigned() << entry.weight_exp)",
        path="hdl/delivery.py",
    ),
    Mutant(
        "delay_slot_plus_one",
        "an entry writes ring slot now + delay instead of now + delay - 1 (stored delay + 1)",
        "slot.eq(now[: len(slot)] + entry.delay)",
        "slot.eq(now[: len(slot)] + entry.delay + 1)",
        path="hdl/delivery.py",
    ),
    Mutant(
        "no_forwarding",
        "the forwarding path is removed: back-to-back updates of one accumulator lose one",
        "old.eq(Mux(d5_fwd, d6_sum, ring_q))",
        "old.eq(ring_q)",
        path="hdl/delivery.py",
    ),
    Mutant(
        "forwarding_ignores_valid",
        "forwarding matches a stale (not valid) previous write by address alone",
        "last_valid & (last_addr == d4_addr)",
        "last_addr == d4_addr",
        path="hdl/delivery.py",
    ),
    Mutant(
        "ring_slot_not_cleared",
        "the update reads ring slot now but does not clear it",
        "ring_wr.en.eq(valid[0]),",
        "ring_wr.en.eq(0),",
    ),
    # streams under backpressure (contract 6.2, 6.3) -----------------------------------------
    Mutant(
        "events_ready_ignores_room",
        "i_events is ready while the range FIFO is full: an event is lost",
        "self.i_events.ready.eq(self.allow & room)",
        "self.i_events.ready.eq(self.allow)",
        path="hdl/delivery.py",
    ),
    Mutant(
        "range_room_off_by_one",
        "the range FIFO credit check is off by one: the FIFO overflows by one event",
        "Mux(f1_valid, ranges < RANGE_FIFO_DEPTH - 1, ranges < RANGE_FIFO_DEPTH)",
        "Mux(f1_valid, ranges <= RANGE_FIFO_DEPTH - 1, ranges <= RANGE_FIFO_DEPTH)",
        path="hdl/delivery.py",
    ),
    Mutant(
        "spike_credit_ignores_inflight",
        "the update's credit check forgets the neurons in flight: the spike FIFO overflows",
        "Mux(issue, claimed <= SPIKE_FIFO_DEPTH - 2, claimed <= SPIKE_FIFO_DEPTH - 1)",
        "spike_level + 1 <= SPIKE_FIFO_DEPTH",
    ),
    Mutant(
        "spike_credit_off_by_one",
        "the update's credit check forgets the neuron it issues: one spike too many in flight",
        "Mux(issue, claimed <= SPIKE_FIFO_DEPTH - 2, claimed <= SPIKE_FIFO_DEPTH - 1)",
        "Mux(issue, claimed <= SPIKE_FIFO_DEPTH - 1, claimed <= SPIKE_FIFO_DEPTH)",
    ),
    Mutant(
        "done_before_spikes_left",
        "done pulses once the pipeline is empty, while spikes still wait in the FIFO",
        "& ~Cat(*valid, lif.busy).any()\n            & ~self.o_spikes.valid",
        "& ~Cat(*valid, lif.busy).any()",
    ),
    Mutant(
        "events_taken_with_step",
        "an event offered in the cycle step is pulsed is accepted into the finishing step",
        "accepting & ~self.step & ~(delivery_empty",
        "accepting & ~(delivery_empty",
    ),
    # registers (contract 6.1) ---------------------------------------------------------------
    Mutant(
        "events_counter_counts_axons",
        "the EVENTS register counts axon events instead of synaptic events",
        "self.event.eq(d6_valid),",
        "self.event.eq(take),",
        path="hdl/delivery.py",
    ),
]


# elaboration ----------------------------------------------------------------------------------


def _configs() -> dict:
    """The core sizes of the regression, from ``tests/hdl/core_cases.py``."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from core_cases import CONFIGS

    return CONFIGS


def load_core(sources: dict[str, str], tag: str) -> types.ModuleType:
    """Execute the core with the (mutated) sources of some of its parts.

    Each part in ``sources`` (a key of :data:`PARTS`) is executed as a fresh module that
    stands in for the installed one while ``hdl/core.py`` (from ``sources`` or from the
    tree) is executed, so that the core imports it; nothing stays in ``sys.modules``.
    """
    saved = {name: sys.modules.get(name) for name in PARTS.values()}
    try:
        for path, source in sources.items():
            if path == "hdl/core.py":
                continue
            name = PARTS[path]
            mod = types.ModuleType(name)
            mod.__file__ = str(ROOT / path)
            exec(compile(source, f"{path}[{tag}]", "exec"), mod.__dict__)
            sys.modules[name] = mod
        core = types.ModuleType(f"spikefab.hdl.core_{tag}")
        core.__file__ = str(CORE)
        source = sources.get("hdl/core.py", CORE.read_text())
        exec(compile(source, f"hdl/core.py[{tag}]", "exec"), core.__dict__)
        return core
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


def elaborate(sources: dict[str, str], tag: str, directory: Path) -> dict[str, Path]:
    """Write the Verilog of the core with ``sources`` for every config; return the paths."""
    from spikefab.sim.rtl import write_verilog

    configs = _configs()
    mod = load_core(sources, tag)
    return {
        name: write_verilog(
            mod.NeuronCore(configs[name]), "neuron_core", directory / name / "neuron_core.v"
        )
        for name in CONFIG_NAMES
    }


def prepare(mutants: list[Mutant]) -> tuple[dict[str, Path], dict[str, dict[str, Path]]]:
    """Apply and elaborate every mutant before any simulation, so a stale one fails at once.

    Returns
    -------
    original, mutated
        The Verilog paths of the unmutated core per config, and those of each mutant.

    Raises
    ------
    MutantError
        When a mutant does not apply, or its Verilog equals the unmutated core's.
    """
    original = elaborate({}, "original", OUT / "_original")
    mutated = {}
    for mutant in mutants:
        if mutant.path not in PARTS:
            raise MutantError(f"mutant {mutant.name!r}: {mutant.path} is not a part of the core")
        source = mutant.apply((ROOT / mutant.path).read_text())
        paths = elaborate({mutant.path: source}, mutant.name, OUT / mutant.name)
        for cfg, path in paths.items():
            if path.read_text() == original[cfg].read_text():
                raise MutantError(
                    f"mutant {mutant.name!r}: its Verilog ({cfg}) equals the unmutated core's; "
                    f"the substitution changes nothing"
                )
        mutated[mutant.name] = paths
    return original, mutated


# regressions ----------------------------------------------------------------------------------


@dataclass
class RunResult:
    """The outcome of one regression on one Verilog file.

    ``failed`` is the number of failing tests, ``total`` the number run; ``hung`` is set when
    the run exceeded its time limit; ``error`` holds a message when the run itself broke
    (build failure, no results file) rather than a test failing.
    """

    sim: str
    cfg: str
    failed: int = 0
    total: int = 0
    hung: bool = False
    error: str = ""
    message: str = ""
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return (self.failed > 0 or self.hung) and not self.error


_ASSERTION = re.compile(r"AssertionError: ?(.*)")


def _first_assertion(log: str) -> str:
    """The first ``AssertionError`` message of a cocotb log, or ``""``."""
    for line in log.splitlines():
        found = _ASSERTION.search(line)
        if found and not found.group(1).startswith("cocotb tests of"):
            return found.group(1).strip()
    return ""


def run_regression(sim: str, cfg: str, verilog: Path, build: Path, timeout: float) -> RunResult:
    """Run the core regression on ``verilog`` in a subprocess, logging to ``build/run.log``."""
    from cocotb_tools.runner import get_results

    build.mkdir(parents=True, exist_ok=True)
    results = build / "results.xml"
    results.unlink(missing_ok=True)
    log_path = build / "run.log"
    # a killed mutant needs no waveform: no traced second run
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SPIKEFAB_WAVES_ON_FAILURE="0")
    cmd = [sys.executable, "-c", _RUNNER, str(TESTS), sim, cfg, str(build), str(verilog)]
    result = RunResult(sim, cfg)
    start = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the regression's own process group
            proc.wait()
            result.hung = True
    result.seconds = time.monotonic() - start
    text = log_path.read_text(errors="replace")
    result.message = _first_assertion(text)
    if result.hung:
        result.message = f"no result after {timeout:.0f} s (hang); {result.message}".rstrip("; ")
        return result
    try:
        result.total, result.failed = get_results(results)
    except RuntimeError:
        tail = [line for line in text.splitlines() if line.strip()][-1:] or ["(empty log)"]
        result.error = f"no results.xml (exit {proc.returncode}): {tail[0].strip()}"
        return result
    if result.failed == 0 and proc.returncode != 0:
        result.error = f"exit {proc.returncode} without a failing test; see {log_path}"
    return result


@dataclass
class MutantResult:
    """Every regression one mutant met, the last one being the one that decided."""

    mutant: Mutant
    runs: list[RunResult]

    @property
    def last(self) -> RunResult:
        return self.runs[-1]

    @property
    def status(self) -> str:
        if self.last.error:
            return "ERROR"
        return "killed" if self.last.killed else "SURVIVED"


def run_mutant(mutant: Mutant, verilog: dict[str, Path], timeout: float) -> MutantResult:
    """Run the stages of :data:`STAGES` on one mutant until one kills it (or breaks)."""
    runs = []
    for sim, cfg in STAGES:
        build = OUT / mutant.name / cfg / sim
        run = run_regression(sim, cfg, verilog[cfg], build, timeout)
        runs.append(run)
        if run.killed or run.error:
            break
    return MutantResult(mutant, runs)


# report ---------------------------------------------------------------------------------------


def _cell(text: str, width: int) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= width else text[: width - 3] + "..."


def table(results: list[MutantResult]) -> str:
    """A Markdown table of the results."""
    head = "| mutant | description | result | failed tests | first failure |"
    lines = [head, "|---|---|---|---|---|"]
    for r in results:
        last = r.last
        if r.status == "killed":
            how = "hang" if last.hung else "killed"
            result = f"{how} ({last.sim} {last.cfg})"
            failed = "-" if last.hung else f"{last.failed}/{last.total}"
            message = last.message
        elif r.status == "SURVIVED":
            result = "SURVIVED"
            failed = "0/" + "+".join(str(run.total) for run in r.runs)
            message = ""
        else:
            result = f"ERROR ({last.sim} {last.cfg})"
            failed = "-"
            message = last.error
        lines.append(
            f"| {r.mutant.name} | {_cell(r.mutant.description, 90)} | {result} | {failed} "
            f"| {_cell(message, 110)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the mutation run; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("-j", type=int, default=2, metavar="N", help="mutants run at once")
    parser.add_argument("--no-control", action="store_true", help="skip the unmutated run")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, metavar="S", help="limit of one regression"
    )
    args = parser.parse_args(argv)

    names = [m.name for m in MUTANTS]
    if len(set(names)) != len(names):
        raise MutantError("two mutants have the same name")
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:30} {m.description}")
        return 0
    mutants = MUTANTS
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
        mutants = [m for m in MUTANTS if m.name in args.only]

    start = time.monotonic()
    print(f"elaborating the unmutated core and {len(mutants)} mutants ...", flush=True)
    original, verilog = prepare(mutants)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
        if not args.no_control:
            sim, cfg = STAGES[0]
            print(f"control: the unmutated core on {sim} {cfg} ...", flush=True)
            control = run_regression(
                sim, cfg, original[cfg], OUT / "_original" / cfg / sim, args.timeout
            )
            if control.killed or control.error or control.total == 0:
                print(
                    f"the unmutated core fails its own regression ({control.failed} of "
                    f"{control.total} tests; {control.error or control.message}); "
                    f"see {OUT / '_original' / cfg / sim / 'run.log'}",
                    file=sys.stderr,
                )
                return 2
            print(f"control passed: {control.total} tests in {control.seconds:.0f} s", flush=True)
        futures = {pool.submit(run_mutant, m, verilog[m.name], args.timeout): m for m in mutants}
        done: dict[str, MutantResult] = {}
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            done[r.mutant.name] = r
            runs = ", ".join(f"{run.sim} {run.cfg} {run.seconds:.0f} s" for run in r.runs)
            print(f"[{len(done):2}/{len(mutants)}] {r.mutant.name}: {r.status} ({runs})")
            sys.stdout.flush()

    results = [done[m.name] for m in mutants]
    print()
    print(table(results))
    killed = sum(r.status == "killed" for r in results)
    print()
    for r in results:
        if r.status != "killed":
            print(f"{r.status}: {r.mutant.name}: logs in {OUT / r.mutant.name}")
    print(f"wall time {time.monotonic() - start:.0f} s")
    print(f"killed {killed} of {len(results)} mutants")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
