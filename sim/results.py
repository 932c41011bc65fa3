"""The result of a run and the spike file it is saved as (``docs/spike-file.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "SPIKE_FILE_VERSION",
    "Comparison",
    "ProbeTrace",
    "RunAbortedError",
    "RunResult",
    "compare_results",
    "load_result",
]

SPIKE_FILE_VERSION = 1


@dataclass
class ProbeTrace:
    """Samples of one probe: ``values[k, i]`` is ``index[i]`` at step ``steps[k]``."""

    target: str
    variable: str
    steps: np.ndarray
    index: np.ndarray
    values: np.ndarray

    @property
    def key(self) -> str:
        return f"{self.target}/{self.variable}"


@dataclass
class RunResult:
    """Spikes (and probes) of a run, in population/index terms."""

    network: str
    backend: str
    dt_ms: float
    steps: int
    populations: list[str]
    population_sizes: list[int]
    step: np.ndarray
    population: np.ndarray
    neuron: np.ndarray
    probes: dict[str, ProbeTrace] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    #: Steps fully received when the run ended early (a failed device, Ctrl-C); ``None``
    #: when every one of ``steps`` was run. Spikes and probe samples of steps at or after
    #: it may be missing.
    complete_steps: int | None = None
    #: Why the run ended early (one line), or ``""``.
    error: str = ""
    #: Clock cycles the device spent in the run's steps and in its longest step (its
    #: STEP_CYCLES and MAX_STEP_CYCLES counters, contract 7.2); ``None`` where nothing
    #: counts cycles (the golden model, the system model, a device without counters).
    step_cycles: int | None = None
    max_step_cycles: int | None = None

    def __post_init__(self) -> None:
        order = np.lexsort((self.neuron, self.population, self.step))
        self.step = np.asarray(self.step, dtype=np.int64)[order]
        self.population = np.asarray(self.population, dtype=np.int64)[order]
        self.neuron = np.asarray(self.neuron, dtype=np.int64)[order]

    @property
    def partial(self) -> bool:
        """The run ended before all its ``steps`` (see :attr:`complete_steps`)."""
        return self.complete_steps is not None

    @property
    def n_spikes(self) -> int:
        return int(self.step.size)

    @property
    def run_steps(self) -> int:
        """The steps whose spikes are all here: ``steps``, or fewer for a partial run."""
        return self.steps if self.complete_steps is None else self.complete_steps

    def _index(self, population: str) -> int:
        try:
            return self.populations.index(population)
        except ValueError:
            raise KeyError(
                f"{population!r} is not a population of {self.network}; its populations: "
                f"{', '.join(self.populations)}"
            ) from None

    def spikes(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(step, neuron)`` spikes of one population, sorted by step.

        Raises
        ------
        KeyError
            For a population the run does not have, listing those it has.
        """
        sel = self.population == self._index(population)
        return self.step[sel], self.neuron[sel]

    spikes_of = spikes

    def spike_times_ms(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(time in ms, neuron)`` spikes of one population."""
        step, neuron = self.spikes(population)
        return step * self.dt_ms, neuron

    @property
    def cycles_per_step(self) -> float | None:
        """Mean clock cycles per step on the device (``None`` where none were counted)."""
        if self.step_cycles is None:
            return None
        return self.step_cycles / max(self.run_steps, 1)

    def real_time_factor(self, clock_hz: float, worst: bool = False) -> float | None:
        """How many times faster than real time the steps ran at ``clock_hz``: a step of
        ``dt_ms`` over its cycles' time, for the mean step (or the longest, ``worst``)."""
        cycles = self.max_step_cycles if worst else self.cycles_per_step
        if not cycles:
            return None
        return self.dt_ms / 1000.0 * clock_hz / cycles

    def rates(self) -> dict[str, np.ndarray]:
        """Return the mean firing rate of every neuron in Hz, per population, over the
        steps run (the complete ones of a partial run)."""
        seconds = max(self.run_steps, 1) * self.dt_ms / 1000.0
        return {name: c / seconds for name, c in self.counts().items()}

    def probe(self, target: str, variable: str | None = None) -> ProbeTrace:
        """Return a probe's samples: ``probe("exc", "v")`` or ``probe("exc/v")``.

        Raises
        ------
        KeyError
            For a probe the run does not have, listing those it has.
        """
        key = target if variable is None else f"{target}/{variable}"
        if key not in self.probes:
            raise KeyError(f"no probe {key!r}; the run's probes: {', '.join(self.probes) or '-'}")
        return self.probes[key]

    def plot(self, path: str | Path) -> None:
        """Draw the spike raster and the probe traces to a PNG (needs matplotlib)."""
        from spikefab.sim.plot import plot_result

        plot_result(self, path)

    def counts(self) -> dict[str, np.ndarray]:
        """Return the spike count of every neuron, per population."""
        return {
            name: np.bincount(self.neuron[self.population == k], minlength=self.population_sizes[k])
            for k, name in enumerate(self.populations)
        }

    def save(self, path: str | Path) -> None:
        """Write the spike file (``.npz``)."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(SPIKE_FILE_VERSION),
            "network": np.array(self.network),
            "backend": np.array(self.backend),
            "dt_ms": np.array(self.dt_ms),
            "steps": np.array(self.steps),
            "populations": np.array(self.populations, dtype=str),
            "population_sizes": np.array(self.population_sizes, dtype=np.int64),
            "step": self.step,
            "population": self.population,
            "neuron": self.neuron,
        }
        if self.partial:
            arrays["complete_steps"] = np.array(self.complete_steps)
            arrays["error"] = np.array(self.error)
        if self.step_cycles is not None:
            arrays["step_cycles"] = np.array(self.step_cycles)
            arrays["max_step_cycles"] = np.array(self.max_step_cycles)
        for pr in self.probes.values():
            arrays[f"probe/{pr.key}"] = pr.values
            arrays[f"probe/{pr.key}/steps"] = pr.steps
            arrays[f"probe/{pr.key}/index"] = pr.index
        for name, w in self.weights.items():
            arrays[f"weights/{name}"] = w
        np.savez_compressed(path, **arrays)


class RunAbortedError(RuntimeError):
    """A run ended early: the device failed, the link broke, or it was interrupted.

    ``str()`` is one line: what failed, after which step, and how to recover. ``partial`` is
    the result of everything received before (:attr:`RunResult.complete_steps` says how far
    it is exact); ``cause`` is the original exception.
    """

    def __init__(self, partial: RunResult, cause: BaseException | None = None):
        self.partial = partial
        self.cause = cause
        done = partial.complete_steps or 0
        after = f"after step {done - 1}" if done else "before its first step ended"
        super().__init__(
            f"the run of {partial.network} on {partial.backend} stopped {after} "
            f"({done} of {partial.steps} steps complete): {partial.error}; the steps "
            "received are kept, run again to get the rest"
        )


def load_result(path: str | Path) -> RunResult:
    """Read a spike file written by :meth:`RunResult.save`.

    Raises
    ------
    ValueError
        When the file is not a spike file of a supported version.
    """
    with np.load(path) as f:
        keys = set(f.files)
        need = {"format", "step", "population", "neuron", "populations"}
        if not need <= keys:
            raise ValueError(
                f"{path}: not a spikefab spike file; missing arrays {sorted(need - keys)}"
            )
        if int(f["format"]) != SPIKE_FILE_VERSION:
            raise ValueError(
                f"{path}: spike file format {int(f['format'])} is not supported; "
                f"accepted: {SPIKE_FILE_VERSION}"
            )
        probes = {}
        for k in keys:
            if k.startswith("probe/") and not k.endswith(("/steps", "/index")):
                _, target, variable = k.split("/", 2)
                probes[f"{target}/{variable}"] = ProbeTrace(
                    target, variable, f[k + "/steps"], f[k + "/index"], f[k]
                )
        weights = {k.split("/", 1)[1]: f[k] for k in keys if k.startswith("weights/")}
        return RunResult(
            network=str(f["network"]),
            backend=str(f["backend"]),
            dt_ms=float(f["dt_ms"]),
            steps=int(f["steps"]),
            populations=[str(x) for x in f["populations"]],
            population_sizes=[int(x) for x in f["population_sizes"]],
            step=f["step"],
            population=f["population"],
            neuron=f["neuron"],
            probes=probes,
            weights=weights,
            complete_steps=int(f["complete_steps"]) if "complete_steps" in keys else None,
            error=str(f["error"]) if "error" in keys else "",
            step_cycles=int(f["step_cycles"]) if "step_cycles" in keys else None,
            max_step_cycles=int(f["max_step_cycles"]) if "max_step_cycles" in keys else None,
        )


@dataclass
class Comparison:
    """The outcome of comparing two runs spike by spike (and probe by probe)."""

    events: int
    mismatches: int
    first: str | None
    probe_mismatches: dict[str, int] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return self.mismatches == 0 and not any(self.probe_mismatches.values())

    def summary(self) -> str:
        """Return one line: identical, or how many spikes and probe values differ."""
        if self.equal:
            return f"identical: {self.events} spike events"
        probes = sum(self.probe_mismatches.values())
        return f"{self.mismatches} spike mismatches, {probes} probe or weight mismatches"


def compare_results(a: RunResult, b: RunResult, context: int = 3) -> Comparison:
    """Compare two runs of one network: every spike, then every probe sample.

    ``first`` describes the first divergence: the step, population and neuron, what each
    run did there, and the spikes of the neighbouring steps for context.
    """
    if a.populations != b.populations or a.population_sizes != b.population_sizes:
        return Comparison(0, 1, f"different networks: {a.populations} vs {b.populations}")
    steps = min(a.run_steps, b.run_steps)
    key_a = set(zip(a.step.tolist(), a.population.tolist(), a.neuron.tolist(), strict=True))
    key_b = set(zip(b.step.tolist(), b.population.tolist(), b.neuron.tolist(), strict=True))
    key_a = {k for k in key_a if k[0] < steps}
    key_b = {k for k in key_b if k[0] < steps}
    diff = sorted(key_a ^ key_b)
    first = None
    if diff:
        t, p, n = diff[0]
        who = (
            f"{a.backend} spiked, {b.backend} did not"
            if (t, p, n) in key_a
            else f"{b.backend} spiked, {a.backend} did not"
        )
        lines = [f"first divergence at step {t}: population {a.populations[p]!r} neuron {n}: {who}"]
        for s in range(max(0, t - context), min(steps, t + context + 1)):
            sa = sorted(k for k in key_a if k[0] == s)
            sb = sorted(k for k in key_b if k[0] == s)
            mark = " <" if sa != sb else ""
            lines.append(f"  step {s:5d}  {a.backend:>8s}: {_names(a, sa)}")
            lines.append(f"  {'':10s} {b.backend:>8s}: {_names(a, sb)}{mark}")
        first = "\n".join(lines)
    probe_mm = {}
    for k in sorted(set(a.probes) & set(b.probes)):
        pa, pb = a.probes[k], b.probes[k]
        rows = min(int(np.searchsorted(pa.steps, steps)), int(np.searchsorted(pb.steps, steps)))
        bad = pa.values[:rows] != pb.values[:rows]
        probe_mm[k] = int(bad.sum())
        if bad.any() and first is None:
            r, c = np.argwhere(bad)[0]
            first = (
                f"first divergence in probe {k} at step {int(pa.steps[r])}, index "
                f"{int(pa.index[c])}: {a.backend} {pa.values[r, c]} vs {b.backend} "
                f"{pb.values[r, c]}"
            )
    # the final weights of plastic projections (a partial run has none to compare)
    finals = set() if a.partial or b.partial else set(a.weights) | set(b.weights)
    for name in sorted(finals):
        key = f"final weights/{name}"
        if name not in a.weights or name not in b.weights:
            has, lacks = (a, b) if name in a.weights else (b, a)
            probe_mm[key] = int(has.weights[name].size)
            if first is None:
                first = f"{lacks.backend} has no final weights of {name!r}; {has.backend} has"
            continue
        wa, wb = np.asarray(a.weights[name]), np.asarray(b.weights[name])
        bad = wa != wb if wa.shape == wb.shape else np.ones(max(wa.size, wb.size), dtype=bool)
        probe_mm[key] = int(bad.sum())
        if bad.any() and first is None:
            i = int(np.flatnonzero(bad)[0])
            first = (
                f"first divergence in the final weights of {name!r} at synapse {i}: "
                f"{a.backend} {wa.ravel()[i] if i < wa.size else '-'} vs "
                f"{b.backend} {wb.ravel()[i] if i < wb.size else '-'}"
            )
    return Comparison(len(key_a | key_b), len(diff), first, probe_mm)


def _names(r: RunResult, keys: list[tuple[int, int, int]]) -> str:
    return ", ".join(f"{r.populations[k[1]]}[{k[2]}]" for k in keys) or "-"
