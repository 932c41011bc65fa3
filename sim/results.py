"""The result of a run and the spike file it is saved as (``docs/spike-file.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SPIKE_FILE_VERSION", "ProbeTrace", "RunResult", "load_result"]

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

    def __post_init__(self) -> None:
        order = np.lexsort((self.neuron, self.population, self.step))
        self.step = np.asarray(self.step, dtype=np.int64)[order]
        self.population = np.asarray(self.population, dtype=np.int64)[order]
        self.neuron = np.asarray(self.neuron, dtype=np.int64)[order]

    @property
    def n_spikes(self) -> int:
        return int(self.step.size)

    def spikes_of(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(step, neuron)`` spikes of one population."""
        k = self.populations.index(population)
        sel = self.population == k
        return self.step[sel], self.neuron[sel]

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
        for pr in self.probes.values():
            arrays[f"probe/{pr.key}"] = pr.values
            arrays[f"probe/{pr.key}/steps"] = pr.steps
            arrays[f"probe/{pr.key}/index"] = pr.index
        for name, w in self.weights.items():
            arrays[f"weights/{name}"] = w
        np.savez_compressed(path, **arrays)


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
        )
