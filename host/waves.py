"""Waveforms of the RTL at a divergence: where, and why, the hardware left the golden model.

When a run on the RTL differs from the golden model, :func:`trace_divergence` runs the
network again on a Verilator harness built for tracing (``build_harness(trace=True)``,
cached beside the other), with the FST trace switched on only for a window of steps around
the first divergent step. In that window it runs one step at a time and reads, after each,
the state of the neuron that diverged (``u``, ``v`` and the refractory count, from the
core's ``STATE`` memory), and sets it beside the golden model's: the same values, the
dendritic sum ``S`` the golden model delivers to the neuron in the step (contract 3.3), and
whether each spiked. The report names the neuron (population, index, core and slot), the
first step its spikes differ and the first step its state differs, and where its core
sits in the waveform.

:func:`trace_run` is the same run without a divergence to look for: the whole run, with the
trace on for the steps asked for (``spikefab run --waves FILE --window A:B``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from spikefab.hdl.layouts import NEURON_STATE, CoreMem, field_of
from spikefab.mapping.image import Image
from spikefab.mapping.network import Network
from spikefab.sim.results import RunResult

__all__ = [
    "Divergence",
    "WaveReport",
    "first_divergence",
    "trace_divergence",
    "trace_run",
]

#: Steps traced before the first divergent step, and after it, by default.
BEFORE, AFTER = 8, 2
#: The variables of the report's table, golden beside RTL.
STATE = ("u", "v", "ref")


@dataclass(frozen=True)
class Divergence:
    """The first spike on which two runs differ: its step, population and neuron."""

    step: int
    population: str
    neuron: int
    which: str  # which run spiked


def first_divergence(want: RunResult, got: RunResult) -> Divergence | None:
    """Return the first spike in which ``got`` differs from ``want`` (the lowest step,
    then population, then neuron), or ``None`` when their spikes agree."""
    steps = min(want.run_steps, got.run_steps)

    def keys(r: RunResult) -> set[tuple[int, int, int]]:
        return {
            k
            for k in zip(r.step.tolist(), r.population.tolist(), r.neuron.tolist(), strict=True)
            if k[0] < steps
        }

    a, b = keys(want), keys(got)
    diff = sorted(a ^ b)
    if not diff:
        return None
    t, p, n = diff[0]
    which = want.backend if (t, p, n) in a else got.backend
    return Divergence(t, want.populations[p], n, which)


@dataclass
class WaveReport:
    """What :func:`trace_divergence` found, and the table of the window."""

    divergence: Divergence
    core: int
    slot: int
    window: tuple[int, int]
    fst: Path
    scope: str
    rows: list[dict[str, int]] = field(default_factory=list)

    @property
    def first_state_step(self) -> int | None:
        """The first step of the window after which the neuron's state differs."""
        for r in self.rows:
            if any(r[f"{k}_golden"] != r[f"{k}_rtl"] for k in STATE):
                return r["step"]
        return None

    def text(self) -> str:
        d = self.divergence
        a, b = self.window
        lines = [
            f"first divergence: step {d.step}, population {d.population!r} neuron {d.neuron} "
            f"(core {self.core}, neuron slot {self.slot}): {d.which} spiked, the other did not",
        ]
        s = self.first_state_step
        if s is None:
            lines.append(f"its state (u, v, ref) agrees with golden in every step {a}..{b - 1}")
        else:
            row = next(r for r in self.rows if r["step"] == s)
            what = ", ".join(k for k in STATE if row[f"{k}_golden"] != row[f"{k}_rtl"])
            lines.append(f"its state first differs after step {s} ({what})")
        lines += [
            f"waveform: {self.fst} (steps {a}..{b - 1}; the core is {self.scope})",
            "",
            f"{'step':>6} {'S':>8} | {'u golden':>9} {'u rtl':>9} | {'v golden':>9} "
            f"{'v rtl':>9} | {'ref':>3} {'rtl':>3} | spike",
        ]
        for r in self.rows:
            mark = " <" if any(r[f"{k}_golden"] != r[f"{k}_rtl"] for k in STATE) else ""
            spike = f"{'g' if r['spike_golden'] else '-'}{'r' if r['spike_rtl'] else '-'}"
            lines.append(
                f"{r['step']:>6} {r['S']:>8} | {r['u_golden']:>9} {r['u_rtl']:>9} | "
                f"{r['v_golden']:>9} {r['v_rtl']:>9} | {r['ref_golden']:>3} {r['ref_rtl']:>3} "
                f"| {spike:>5}{mark}"
            )
        lines.append("(S: the dendritic sum golden delivers in the step; spike g/r: golden/RTL)")
        return "\n".join(lines)


def _golden_rows(
    net: Network, population: str, neuron: int, a: int, b: int
) -> dict[int, dict[str, int]]:
    """The golden model's state of a neuron after each step of ``a .. b - 1``, the
    dendritic sum it received in the step and whether it spiked."""
    from spikefab.sim.golden import GoldenModel

    model = GoldenModel(net)
    gidx = int(model.offset[population]) + neuron
    rows = {}
    for t in range(b):
        s = int(model.ring[t % model.D][gidx])
        ids = model.step()
        if t >= a:
            rows[t] = {
                "S": s,
                "u_golden": int(model.u[gidx]),
                "v_golden": int(model.v[gidx]),
                "ref_golden": int(model.ref[gidx]),
                "spike_golden": int(gidx in set(ids.tolist())),
            }
    return rows


def trace_run(
    net: Network,
    image: Image,
    steps: int,
    waves: str | Path,
    window: tuple[int, int],
    *,
    focus: tuple[int, int] | None = None,
    program: str | Path | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> tuple[RunResult, list[dict[str, int]]]:
    """Run ``net`` for ``steps`` steps on the traced Verilator harness, the trace on for the
    steps ``window[0] .. window[1] - 1``; return the result and, for the core neuron
    ``focus`` (core, slot), its state after each step of the window.

    Raises
    ------
    ValueError
        For a window outside the run.
    """
    from spikefab.host.runtime import DeviceRun
    from spikefab.host.verilator import open_verilator

    a, b = window
    if not 0 <= a < b <= steps:
        raise ValueError(f"window {a}:{b} must lie within the run's steps 0:{steps}, a < b")
    waves = Path(waves)
    waves.parent.mkdir(parents=True, exist_ok=True)
    device = open_verilator(
        image.config, timeout=timeout, progress=progress, waves=waves, program=program
    )
    rows: list[dict[str, int]] = []
    try:
        run = DeviceRun(net, image, device, "verilator")
        run.start()
        if a:
            run.advance(a, wait=True)
        transport = device.transport
        transport.trace(True)  # type: ignore[attr-defined]
        for t in range(a, b):
            _, gids = run.advance(1, wait=True)
            if focus is not None:
                core, slot = focus
                words = np.asarray(device.read(core, CoreMem.STATE.value, slot, 1), np.uint64)
                n = image.config.core.neurons
                row = {f"{k}_rtl": int(field_of(words, NEURON_STATE, k)[0]) for k in STATE}
                row["spike_rtl"] = int(core * n + slot in set(gids.tolist()))
                row["step"] = t
                rows.append(row)
        transport.trace(False)  # type: ignore[attr-defined]
        if steps > b:
            run.advance(steps - b)
        result = run.finish()
    finally:
        device.close()
    return result, rows


def trace_divergence(
    net: Network,
    image: Image,
    want: RunResult,
    got: RunResult,
    out_dir: str | Path,
    *,
    before: int = BEFORE,
    after: int = AFTER,
    program: str | Path | None = None,
    progress: bool = True,
) -> WaveReport | None:
    """Trace the RTL around the first step where ``got`` (an RTL run of ``image``) differs
    from ``want`` (golden); write ``divergence.fst`` and ``divergence.txt`` to ``out_dir``
    and return the report (``None`` when the spikes agree).

    The neuron whose spike differs must be recorded by the run: its spikes come back to the
    host. A neuron that is not (spikes probes name only some) still gets its state read.
    """
    d = first_divergence(want, got)
    if d is None:
        return None
    out_dir = Path(out_dir)
    core = int(image.core_of[d.population][d.neuron])
    slot = int(image.neuron_of[d.population][d.neuron])
    a = max(0, d.step - before)
    b = min(d.step + 1 + after, got.run_steps)
    fst = out_dir / "divergence.fst"
    _, rtl = trace_run(
        net, image, b, fst, (a, b), focus=(core, slot), program=program, progress=progress
    )
    gold = _golden_rows(net, d.population, d.neuron, a, b)
    rows = [{**gold[r["step"]], **r} for r in rtl]
    scope = f"TOP.spikefab_top.link.system.core{core}"
    report = WaveReport(d, core, slot, (a, b), fst, scope, rows)
    (out_dir / "divergence.txt").write_text(report.text() + "\n")
    return report
