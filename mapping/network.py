"""The validated network: populations, projections with explicit synapses, probes.

A :class:`Network` is what every backend consumes. It is made by :func:`resolve` from a
:class:`~spikefab.mapping.spec.NetworkSpec`, which comes either from a YAML file
(:mod:`spikefab.mapping.loader`) or from the Python :class:`NetworkBuilder`; both paths go
through the same checks and give the same object.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
from spikefab.hdl import params as P
from spikefab.mapping import quantize as Q
from spikefab.mapping import spec as S

__all__ = [
    "LIFParams",
    "Network",
    "NetworkBuilder",
    "NetworkError",
    "PhysicalLIF",
    "Population",
    "Probe",
    "Problem",
    "Projection",
    "RealLIF",
    "STDPParams",
    "SourceStream",
    "SpikeSource",
    "resolve",
]

Path_ = tuple[str | int, ...]


# --------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a network description, located by its path of keys."""

    path: Path_
    message: str

    @property
    def field(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or "(top level)"

    def format(self, source: str | None = None, lines: dict[Path_, int] | None = None) -> str:
        where = ""
        if source is not None:
            where = source
            line = _line_of(self.path, lines or {})
            if line is not None:
                where += f":{line}"
            where += ": "
        return f"{where}{self.field}: {self.message}"


def _line_of(path: Path_, lines: dict[Path_, int]) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


class NetworkError(ValueError):
    """A network description has problems; all of them are listed."""

    def __init__(
        self,
        problems: Sequence[Problem],
        source: str | None = None,
        lines: dict[Path_, int] | None = None,
    ):
        self.problems = list(problems)
        self.source = source
        self.lines = lines or {}

        def key(p: Problem) -> tuple[int, str]:
            line = _line_of(p.path, self.lines)
            return (line if line is not None else 0, p.field)

        self.problems.sort(key=key)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in network {source or 'description'}"
        body = "\n".join("  " + p.format(source, self.lines) for p in self.problems)
        super().__init__(f"{head}:\n{body}")


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        self.items.append(Problem(tuple(path), message))


# --------------------------------------------------------------------------------------------
# Resolved objects


@dataclass(frozen=True)
class LIFParams:
    """LIF parameters in the contract's fixed point (contract section 2).

    Attributes
    ----------
    du, dv
        12-bit decay constants of current and voltage; the current decays by
        ``(du + 1) / 4096`` and the voltage by ``dv / 4096`` each step.
    vth
        17-bit unsigned threshold; a spike is ``v > vth << 6``.
    bias_mant, bias_exp
        Bias ``bias_mant << bias_exp`` added to ``v`` every step (13-bit signed, 3-bit).
    refractory
        Steps after a spike during which ``v`` holds and no spike is emitted (0..15).
    reset
        ``"zero"``: ``v = 0`` after a spike; ``"subtract"``: ``v -= vth << 6``.
    """

    du: int
    dv: int
    vth: int
    bias_mant: int = 0
    bias_exp: int = 0
    refractory: int = 0
    reset: str = "zero"


@dataclass(frozen=True)
class PhysicalLIF:
    """LIF parameters in physical units, with NIR's names (``docs/network-format.md``)."""

    tau_syn_ms: float
    tau_mem_ms: float | None
    v_threshold: float
    bias: float = 0.0
    refractory_ms: float = 0.0
    reset: str = "zero"


@dataclass(frozen=True)
class RealLIF:
    """The same neuron in real arithmetic, for the float reference.

    ``u = alpha * u + sum(w)``; ``v = beta * v + u + bias``; spike when ``v > theta``.
    Units are the population's own: physical units, or raw fixed-point units for a
    population given in fixed point.
    """

    alpha: float
    beta: float
    theta: float
    bias: float
    refractory: int
    subtract: bool


@dataclass(frozen=True)
class SpikeSource:
    """Where a spike-source population's spikes come from.

    Explicit sources carry ``steps`` and ``neurons`` arrays; Poisson sources draw, for each
    step in order, one uniform number per neuron from ``numpy.random.default_rng(seed)``
    and spike where it is below ``rate_hz * dt_ms / 1000``.
    """

    kind: str  # "explicit" | "poisson"
    steps: np.ndarray | None = None
    neurons: np.ndarray | None = None
    rate_hz: float = 0.0
    seed: int = 0

    def spikes(self, size: int, n_steps: int, dt_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(step, neuron)`` arrays of spikes in steps ``0 .. n_steps - 1``."""
        return self.stream(size, dt_ms).next(n_steps)

    def stream(self, size: int, dt_ms: float) -> SourceStream:
        """Return a stream that yields this source's spikes a block of steps at a time."""
        return SourceStream(self, size, dt_ms)


class SourceStream:
    """The spikes of one source, read in consecutive blocks of steps.

    Reading ``n`` steps at once or in several blocks gives the same spikes.
    """

    def __init__(self, source: SpikeSource, size: int, dt_ms: float):
        self._src = source
        self._size = size
        self._prob = source.rate_hz * dt_ms / 1000.0
        self._rng = np.random.default_rng(source.seed) if source.kind == "poisson" else None
        self.step = 0

    def next(self, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(step, neuron)`` spikes of the next ``n_steps`` steps, sorted."""
        t0, t1 = self.step, self.step + n_steps
        self.step = t1
        if self._rng is None:
            steps, neurons = self._src.steps, self._src.neurons
            assert steps is not None and neurons is not None
            lo, hi = np.searchsorted(steps, [t0, t1])
            return steps[lo:hi], neurons[lo:hi]
        step, neuron = np.nonzero(self._rng.random((n_steps, self._size)) < self._prob)
        return step.astype(np.int64) + t0, neuron.astype(np.int64)


@dataclass(frozen=True)
class STDPParams:
    """Pair-based STDP of one projection (contract section 5)."""

    a_plus: int
    a_minus: int
    d_pre: int
    d_post: int
    bump_pre: int
    bump_post: int
    shift: int = 0
    w_min: int = P.WEIGHT_MIN
    w_max: int = P.WEIGHT_MAX
    stochastic_rounding: bool = False
    seed: int = 0
    tau_pre_ms: float | None = None
    tau_post_ms: float | None = None


@dataclass
class Population:
    """A population of LIF neurons or a spike source."""

    name: str
    index: int
    size: int
    neuron: LIFParams | None = None
    source: SpikeSource | None = None
    physical: PhysicalLIF | None = None
    real: RealLIF | None = None
    #: Fixed-point units of ``v`` per unit of the population's own voltage.
    scale: float = 1.0
    #: A spike source the network gives itself (a NIR bias), not one of its inputs.
    internal: bool = False
    #: ``v`` of each neuron before the first step, in fixed point (``initial_v``; 0 if None).
    v0: np.ndarray | None = None
    #: The same in the population's own units, for the float reference.
    v0_real: np.ndarray | None = None
    #: The numbers of these neurons in the population they were taken from, when the
    #: population is one device's share of a larger one (``mapping/devices.py``); the STDP
    #: rounding LFSRs are seeded by them (contract 5.4). ``None``: ``0 .. size - 1``.
    numbers: np.ndarray | None = None

    @property
    def is_source(self) -> bool:
        return self.source is not None

    def lfsr_numbers(self) -> np.ndarray:
        """The number of each neuron that seeds its STDP rounding LFSR (contract 5.4)."""
        if self.numbers is None:
            return np.arange(self.size, dtype=np.int64)
        return np.asarray(self.numbers, dtype=np.int64)

    @property
    def is_input(self) -> bool:
        """A spike source that recorded inputs may drive (not an internal one)."""
        return self.source is not None and not self.internal


@dataclass
class Projection:
    """Synapses from ``pre`` to ``post``, listed one by one.

    ``pre_idx[k] -> post_idx[k]`` carries ``weight[k] << weight_exp`` with ``delay[k]``.
    ``weight_unit`` is the real weight, in the post population's units, of one mantissa step.
    """

    name: str
    pre: str
    post: str
    pre_idx: np.ndarray
    post_idx: np.ndarray
    weight: np.ndarray
    weight_exp: int
    delay: np.ndarray
    stdp: STDPParams | None = None
    weight_real: np.ndarray | None = None
    weight_unit: float = 1.0

    @property
    def n_synapses(self) -> int:
        return int(self.pre_idx.size)


@dataclass(frozen=True)
class Probe:
    """A recorded variable: ``v``, ``u`` or ``spikes`` of a population, or ``weights``."""

    target: str
    variable: str
    neurons: np.ndarray | None = None
    every: int = 1

    @property
    def key(self) -> str:
        return f"{self.target}.{self.variable}"


@dataclass
class Network:
    """A validated network, the input of every backend."""

    name: str
    dt_ms: float
    populations: dict[str, Population]
    projections: list[Projection]
    probes: list[Probe] = field(default_factory=list)
    quantization: list[Q.Rounding] = field(default_factory=list)
    #: The description it was resolved from: the YAML text as written, or the plain data of
    #: a builder or an import (see :meth:`to_yaml`).
    source_text: str = field(default="", repr=False)
    source_doc: dict[str, Any] | None = field(default=None, repr=False)
    #: The folder relative ``file:`` sources of the description are read from.
    source_base: Path | None = field(default=None, repr=False)

    def to_yaml(self) -> str:
        """Return the description the network was resolved from, as YAML text.

        An image carries it, so that a backend that loads the network itself (Icarus) and a
        later ``spikefab run image.npz`` see the same network. Empty when the network was
        built without a description.
        """
        if self.source_text:
            return self.source_text
        if self.source_doc is None:
            return ""
        import yaml

        return yaml.safe_dump(self.source_doc, sort_keys=False, width=1 << 16)

    @property
    def max_delay(self) -> int:
        return max((int(p.delay.max()) for p in self.projections if p.n_synapses), default=1)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations.values() if not p.is_source)

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def population_names(self) -> list[str]:
        return list(self.populations)

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Resolution of a spec


_FIXED_NEURON_RANGES = {
    "du": (0, P.DECAY_MAX, f"{P.DECAY_BITS}-bit unsigned"),
    "dv": (0, P.DECAY_MAX, f"{P.DECAY_BITS}-bit unsigned"),
    "vth": (0, P.VTH_MAX, f"{P.VTH_BITS}-bit unsigned"),
    "bias_mant": (P.BIAS_MANT_MIN, P.BIAS_MANT_MAX, f"{P.BIAS_MANT_BITS}-bit signed"),
    "bias_exp": (0, P.BIAS_EXP_MAX, f"{P.BIAS_EXP_BITS}-bit unsigned"),
    "refractory": (0, P.REFRACTORY_MAX, f"{P.REFRACTORY_BITS}-bit unsigned, in steps"),
}


def _range(probs: _Problems, path: Path_, value: Any, lo: int, hi: int, what: str) -> bool:
    if value is None:
        return True
    if not lo <= value <= hi:
        probs.add(path, f"{value!r} is out of range; accepted: {lo}..{hi} ({what})")
        return False
    return True


def _resolve_neuron(
    probs: _Problems, path: Path_, n: S.NeuronSpec, dt_ms: float, notes: list[Q.Rounding], name: str
) -> tuple[LIFParams | None, PhysicalLIF | None, RealLIF | None, float]:
    given = n.model_dump(exclude_unset=True)
    fixed = [k for k in S.FIXED_NEURON_KEYS if k in given]
    phys = [k for k in S.PHYSICAL_NEURON_KEYS if k in given]
    if fixed and phys:
        probs.add(
            path,
            f"mixes fixed-point keys ({', '.join(fixed)}) with physical keys ({', '.join(phys)}); "
            "give the neuron in one of the two forms",
        )
        return None, None, None, 1.0
    subtract = n.reset == "subtract"
    if not phys:
        missing = [k for k in ("du", "dv", "vth") if k not in given]
        if missing:
            probs.add(
                path,
                f"missing {', '.join(missing)}; a fixed-point neuron needs du, dv and vth "
                "(or give tau_syn_ms, tau_mem_ms and v_threshold in physical units)",
            )
            return None, None, None, 1.0
        ok = True
        for k, (lo, hi, what) in _FIXED_NEURON_RANGES.items():
            ok &= _range(probs, (*path, k), given.get(k), lo, hi, what)
        if not ok:
            return None, None, None, 1.0
        lif = LIFParams(
            du=n.du,
            dv=n.dv,
            vth=n.vth,
            bias_mant=n.bias_mant or 0,
            bias_exp=n.bias_exp or 0,
            refractory=n.refractory or 0,
            reset=n.reset,
        )
        one = 1 << P.DECAY_SHIFT
        real = RealLIF(
            alpha=1 - (lif.du + P.DU_OFFSET) / one,
            beta=1 - (lif.dv + P.DV_OFFSET) / one,
            theta=float(lif.vth << P.VTH_SHIFT),
            bias=float(lif.bias_mant << lif.bias_exp),
            refractory=lif.refractory,
            subtract=subtract,
        )
        return lif, None, real, 1.0
    missing = [k for k in ("tau_syn_ms", "tau_mem_ms", "v_threshold") if k not in given]
    if missing:
        probs.add(
            path,
            f"missing {', '.join(missing)}; a physical neuron needs tau_syn_ms, tau_mem_ms (null "
            "for no leak) and v_threshold",
        )
        return None, None, None, 1.0
    ph = PhysicalLIF(
        tau_syn_ms=n.tau_syn_ms,
        tau_mem_ms=n.tau_mem_ms,
        v_threshold=n.v_threshold,
        bias=n.bias or 0.0,
        refractory_ms=n.refractory_ms or 0.0,
        reset=n.reset,
    )
    if not ph.v_threshold > 0:
        probs.add((*path, "v_threshold"), f"{ph.v_threshold!r} must be > 0 in physical units")
        return None, None, None, 1.0
    scale = (Q.PHYSICAL_VTH << P.VTH_SHIFT) / ph.v_threshold
    local: list[Q.Rounding] = []
    ok = True
    try:
        du, r = Q.decay_from_tau(ph.tau_syn_ms, dt_ms, P.DU_OFFSET, f"{name}.tau_syn_ms", "du")
        local.append(r)
    except Q.QuantizationError as e:
        probs.add((*path, "tau_syn_ms"), str(e))
        ok = False
    try:
        dv, r = Q.decay_from_tau(ph.tau_mem_ms, dt_ms, P.DV_OFFSET, f"{name}.tau_mem_ms", "dv")
        local.append(r)
    except Q.QuantizationError as e:
        probs.add((*path, "tau_mem_ms"), str(e))
        ok = False
    try:
        bm, be, r = Q.mantissa_exponent(
            ph.bias * scale, P.BIAS_MANT_BITS, P.BIAS_EXP_MAX, f"{name}.bias"
        )
        local.append(dataclasses.replace(r, given=f"{ph.bias} ({r.given} in fixed point)"))
    except Q.QuantizationError as e:
        probs.add((*path, "bias"), str(e))
        ok = False
    ref_steps = ph.refractory_ms / dt_ms
    ref = round(ref_steps)
    if ph.refractory_ms < 0 or ref > P.REFRACTORY_MAX:
        probs.add(
            (*path, "refractory_ms"),
            f"{ph.refractory_ms!r} is {ref_steps:g} steps at dt_ms {dt_ms}; accepted: 0.."
            f"{P.REFRACTORY_MAX} steps ({P.REFRACTORY_MAX * dt_ms:g} ms)",
        )
        ok = False
    elif ref != ref_steps:
        local.append(
            Q.Rounding(
                f"{name}.refractory_ms",
                f"{ph.refractory_ms}",
                f"refractory {ref}",
                f"{ref * dt_ms:g} ms",
                ref / ref_steps - 1,
            )
        )
    if not ok:
        return None, None, None, 1.0
    local.insert(
        0,
        Q.Rounding(
            f"{name}.v_threshold",
            f"{ph.v_threshold}",
            f"vth {Q.PHYSICAL_VTH}",
            f"scale {scale:.6g} per unit",
            0.0,
        ),
    )
    notes.extend(local)
    lif = LIFParams(
        du=du, dv=dv, vth=Q.PHYSICAL_VTH, bias_mant=bm, bias_exp=be, refractory=ref, reset=ph.reset
    )
    real = RealLIF(
        alpha=0.0 if ph.tau_syn_ms == 0 else math.exp(-dt_ms / ph.tau_syn_ms),
        beta=1.0 if ph.tau_mem_ms is None else math.exp(-dt_ms / ph.tau_mem_ms),
        theta=ph.v_threshold,
        bias=ph.bias,
        refractory=ref,
        subtract=subtract,
    )
    return lif, ph, real, scale


def _resolve_initial_v(
    probs: _Problems, path: Path_, spec: S.ValueSpec, pop: Population, notes: list[Q.Rounding]
) -> bool:
    """Set ``pop.v0`` (fixed point) and ``pop.v0_real`` from ``initial_v``, in the
    population's units (scaled like ``v_threshold`` for a physical neuron)."""
    physical = pop.physical is not None
    vals = _values(probs, path, spec, pop.size, not physical, f"population {pop.name}", "neuron")
    if vals is None:
        return False
    fixed = np.rint(vals * pop.scale) if physical else vals
    bad = (fixed < P.V_MIN) | (fixed > P.V_MAX)
    if bad.any():
        k = int(np.argmax(bad))
        lo, hi = P.V_MIN / pop.scale, P.V_MAX / pop.scale
        probs.add(
            (*path, k) if spec.kind == "list" else path,
            f"neuron {k}: v {float(vals[k]):g} is outside what v holds; accepted: "
            f"{lo:.6g} .. {hi:.6g}" + (" (the population's units)" if physical else ""),
        )
        return False
    pop.v0 = fixed.astype(np.int64)
    pop.v0_real = vals.astype(np.float64)
    if physical:
        err = np.abs(fixed / pop.scale - vals)
        k = int(np.argmax(err))
        notes.append(
            Q.Rounding(
                f"{pop.name}.initial_v",
                f"{spec.kind}",
                "v in fixed point",
                f"within {float(err[k]):.3g} of the values given",
                float(err[k] / abs(vals[k])) if vals[k] else 0.0,
            )
        )
    return True


def _resolve_source(
    probs: _Problems, path: Path_, p: S.PopulationSpec, dt_ms: float, base: Path | None
) -> SpikeSource | None:
    given = [k for k in ("times", "poisson", "file") if getattr(p, k) is not None]
    if p.neuron is not None:
        probs.add((*path, "neuron"), "a spike_source has no neuron parameters; remove the key")
    if len(given) != 1:
        probs.add(
            path,
            "a spike_source needs exactly one of times, poisson, file; found "
            + (", ".join(given) if given else "none"),
        )
        return None
    if p.times is not None:
        if len(p.times) != p.size:
            probs.add(
                (*path, "times"),
                f"has {len(p.times)} lists of spike steps but size is {p.size}; give one list "
                "per neuron (an empty list for a silent neuron)",
            )
            return None
        steps, neurons, ok = [], [], True
        for i, ts in enumerate(p.times):
            arr = np.asarray(ts, dtype=np.int64)
            if arr.size and arr.min() < 0:
                probs.add(
                    (*path, "times", i), f"step {int(arr.min())} is negative; steps start at 0"
                )
                ok = False
            if np.unique(arr).size != arr.size:
                probs.add(
                    (*path, "times", i), "lists a step twice; a neuron spikes at most once a step"
                )
                ok = False
            steps.append(arr)
            neurons.append(np.full(arr.size, i, dtype=np.int64))
        if not ok:
            return None
        return _explicit(
            np.concatenate(steps or [np.zeros(0, np.int64)]),
            np.concatenate(neurons or [np.zeros(0, np.int64)]),
        )
    if p.poisson is not None:
        prob = p.poisson.rate_hz * dt_ms / 1000.0
        if not 0 <= prob <= 1:
            probs.add(
                (*path, "poisson", "rate_hz"),
                f"{p.poisson.rate_hz!r} gives a spike probability of {prob:g} per step at dt_ms "
                f"{dt_ms}; accepted: 0..{1000.0 / dt_ms:g} Hz",
            )
            return None
        return SpikeSource("poisson", rate_hz=p.poisson.rate_hz, seed=p.poisson.seed)
    assert p.file is not None
    fpath = Path(p.file)
    if not fpath.is_absolute() and base is not None:
        fpath = base / fpath
    try:
        with np.load(fpath) as data:
            steps = np.asarray(data["step"], dtype=np.int64)
            neurons = np.asarray(data["neuron"], dtype=np.int64)
    except (OSError, KeyError, ValueError) as e:
        probs.add(
            (*path, "file"),
            f"cannot read spikes from {str(fpath)!r} ({e}); expected an .npz file with integer "
            "arrays 'step' and 'neuron'",
        )
        return None
    if steps.shape != neurons.shape or steps.ndim != 1:
        probs.add(
            (*path, "file"), f"{str(fpath)!r}: 'step' and 'neuron' must be 1-d arrays of one length"
        )
        return None
    bad = (neurons < 0) | (neurons >= p.size) | (steps < 0)
    if bad.any():
        k = int(np.argmax(bad))
        probs.add(
            (*path, "file"),
            f"{str(fpath)!r}: spike {k} is (step {steps[k]}, neuron {neurons[k]}); accepted "
            f"steps >= 0 and neurons 0..{p.size - 1}",
        )
        return None
    src = _explicit(steps, neurons)
    assert src.steps is not None
    if src.steps.size != steps.size:
        probs.add((*path, "file"), f"{str(fpath)!r} lists a neuron twice in one step")
        return None
    return src


def _explicit(steps: np.ndarray, neurons: np.ndarray) -> SpikeSource:
    key = np.unique(steps * (int(neurons.max(initial=0)) + 1) + neurons, return_index=True)[1]
    steps, neurons = steps[key], neurons[key]
    order = np.lexsort((neurons, steps))
    return SpikeSource("explicit", steps=steps[order], neurons=neurons[order])


def _connect(
    probs: _Problems, path: Path_, c: S.ConnectSpec, n_pre: int, n_post: int, same: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    def need(*keys: str) -> bool:
        missing = [k for k in keys if getattr(c, k) is None]
        if missing:
            probs.add(path, f"connect {c.kind} needs {', '.join(missing)}")
        extra = [k for k in ("p", "seed", "pairs") if k not in keys and getattr(c, k) is not None]
        if extra:
            probs.add(path, f"connect {c.kind} takes no {', '.join(extra)}")
        return not missing and not extra

    if c.kind == "all_to_all":
        if not need():
            return None
        pre, post = np.divmod(np.arange(n_pre * n_post, dtype=np.int64), n_post)
    elif c.kind == "one_to_one":
        if not need():
            return None
        if n_pre != n_post:
            probs.add(path, f"one_to_one needs equal sizes; pre has {n_pre}, post has {n_post}")
            return None
        pre = post = np.arange(n_pre, dtype=np.int64)
    elif c.kind == "fixed_probability":
        if not need("p", "seed"):
            return None
        assert c.p is not None and c.seed is not None
        if not 0 <= c.p <= 1:
            probs.add((*path, "p"), f"{c.p!r} is not a probability; accepted: 0..1")
            return None
        flat = _bernoulli_positions(n_pre * n_post, c.p, c.seed)
        pre, post = np.divmod(flat, n_post)
    else:
        if not need("pairs"):
            return None
        assert c.pairs is not None
        arr = (
            np.asarray(c.pairs, dtype=np.int64).reshape(-1, 2)
            if c.pairs
            else np.zeros((0, 2), np.int64)
        )
        if any(len(pair) != 2 for pair in c.pairs):
            k = next(i for i, pair in enumerate(c.pairs) if len(pair) != 2)
            probs.add((*path, "pairs", k), f"{c.pairs[k]!r} is not a [pre, post] pair")
            return None
        for col, n, what in ((0, n_pre, "pre"), (1, n_post, "post")):
            bad = (arr[:, col] < 0) | (arr[:, col] >= n)
            if bad.any():
                k = int(np.argmax(bad))
                probs.add(
                    (*path, "pairs", k),
                    f"{what} index {int(arr[k, col])} is out of range; the {what} population "
                    f"has neurons 0..{n - 1}",
                )
                return None
        pre, post = arr[:, 0].copy(), arr[:, 1].copy()
    if same and not c.allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return pre.astype(np.int64), post.astype(np.int64)


def _bernoulli_positions(total: int, p: float, seed: int) -> np.ndarray:
    """Return the sorted positions in ``0 .. total-1`` kept by independent Bernoulli(p) trials.

    The gaps between kept positions are drawn as geometric variables from
    ``numpy.random.default_rng(seed)``, so the cost grows with the number kept, not ``total``.
    """
    if p <= 0 or total == 0:
        return np.zeros(0, dtype=np.int64)
    if p >= 1:
        return np.arange(total, dtype=np.int64)
    rng = np.random.default_rng(seed)
    chunks, last = [], -1
    while True:
        n = int(max(1024, (total - last) * p * 1.05 + 64))
        pos = last + np.cumsum(rng.geometric(p, size=n))
        inside = pos[pos < total]
        chunks.append(inside)
        if inside.size < pos.size:
            break
        last = int(pos[-1])
    return np.concatenate(chunks).astype(np.int64)


def _values(
    probs: _Problems,
    path: Path_,
    v: S.ValueSpec,
    n: int,
    integer: bool,
    owner: str = "the projection",
    unit: str = "synapse",
) -> np.ndarray | None:
    """Expand a weight, delay or initial value spec into one value per synapse (or per
    ``unit`` of ``owner``)."""
    allowed = {
        "constant": ("value",),
        "list": ("values",),
        "uniform": ("low", "high", "seed"),
        "normal": ("mean", "std", "seed"),
    }[v.kind]
    given = {
        k
        for k in ("value", "values", "low", "high", "mean", "std", "seed")
        if getattr(v, k) is not None
    }
    missing = [k for k in allowed if k not in given]
    extra = sorted(given - set(allowed))
    if missing or extra:
        msg = f"a {v.kind} value"
        if missing:
            msg += f" needs {', '.join(missing)}"
        if extra:
            msg += f"{' and' if missing else ''} takes no {', '.join(extra)}"
        probs.add(path, msg)
        return None
    if v.kind == "constant":
        out = np.full(n, v.value, dtype=np.float64)
    elif v.kind == "list":
        assert v.values is not None
        if len(v.values) != n:
            probs.add(
                path,
                f"lists {len(v.values)} values but {owner} has {n} {unit}s; give one "
                f"value per {unit}"
                + (" in connection order" if unit == "synapse" else "")
                + ", or a scalar",
            )
            return None
        out = np.asarray(v.values, dtype=np.float64)
    elif v.kind == "uniform":
        rng = np.random.default_rng(v.seed)
        assert v.low is not None and v.high is not None
        if v.high < v.low:
            probs.add(path, f"uniform low {v.low} is above high {v.high}")
            return None
        if integer:
            if v.low != int(v.low) or v.high != int(v.high):
                probs.add(path, f"uniform bounds {v.low}, {v.high} must be integers here")
                return None
            out = rng.integers(int(v.low), int(v.high) + 1, size=n).astype(np.float64)
        else:
            out = rng.uniform(v.low, v.high, size=n)
    else:
        rng = np.random.default_rng(v.seed)
        out = rng.normal(v.mean, v.std, size=n)
        if integer:
            out = np.rint(out)
    if integer:
        frac = out != np.rint(out)
        if frac.any():
            k = int(np.argmax(frac))
            probs.add(
                (*path, k) if v.kind == "list" else path,
                f"{float(out[k]):g} is not an integer; fixed-point values here are integers",
            )
            return None
    return out


def _check_int_range(
    probs: _Problems,
    path: Path_,
    vals: np.ndarray,
    lo: int,
    hi: int,
    what: str,
    clip: bool,
    listed: bool,
) -> np.ndarray | None:
    bad = (vals < lo) | (vals > hi)
    if not bad.any():
        return vals
    if clip:
        return np.clip(vals, lo, hi)
    k = int(np.argmax(bad))
    if np.all(vals == vals[0]):
        probs.add(path, f"{vals[0]:g} is out of range; accepted: {lo}..{hi} ({what})")
        return None
    probs.add(
        (*path, k) if listed else path,
        f"{int(np.count_nonzero(bad))} value(s) out of range, first {vals[k]:g} (synapse {k}); "
        f"accepted: {lo}..{hi} ({what})" + ("" if listed else "; `clip: true` clips them"),
    )
    return None


def resolve(
    spec: S.NetworkSpec,
    base: Path | None = None,
    known_populations: set[str] | None = None,
    known_projections: set[str] | None = None,
) -> Network:
    """Check a network spec against the contract and expand it into a :class:`Network`.

    Parameters
    ----------
    spec
        A structurally valid description.
    base
        Folder against which relative spike-file paths are resolved.
    known_populations, known_projections
        Names that exist in the description but failed their structural checks; references
        to them are not reported again.

    Raises
    ------
    NetworkError
        Listing every problem found.
    """
    probs = _Problems()
    notes: list[Q.Rounding] = []
    all_pops = set(spec.populations) | (known_populations or set())
    if spec.spikefab != S.FORMAT_VERSION:
        probs.add(
            ("spikefab",),
            f"format version {spec.spikefab!r} is not supported; accepted: {S.FORMAT_VERSION}",
        )
    if not spec.dt_ms > 0:
        probs.add(("dt_ms",), f"{spec.dt_ms!r} must be > 0")
    if not all_pops:
        probs.add(("populations",), "a network needs at least one population")
    dt = spec.dt_ms if spec.dt_ms > 0 else 1.0

    pops: dict[str, Population] = {}
    broken: set[str] = set()
    for idx, (name, p) in enumerate(spec.populations.items()):
        path: Path_ = ("populations", name)
        if p.size < 1:
            probs.add((*path, "size"), f"{p.size!r} must be >= 1")
            continue
        pop = Population(name=name, index=idx, size=p.size)
        # A population with a problem is kept (and marked broken) so that the projections and
        # probes that use it are still checked; nothing broken leaves this function.
        pops[name] = pop
        if p.internal and p.kind != "spike_source":
            probs.add((*path, "internal"), "only a spike_source can be internal")
        pop.internal = p.internal
        if p.kind == "spike_source":
            if p.initial_v is not None:
                probs.add((*path, "initial_v"), "a spike_source has no v; remove the key")
            pop.source = _resolve_source(probs, path, p, dt, base)
            if pop.source is None:
                pop.source = SpikeSource("explicit", np.zeros(0, np.int64), np.zeros(0, np.int64))
                broken.add(name)
        else:
            extra = [k for k in ("times", "poisson", "file") if getattr(p, k) is not None]
            if extra:
                probs.add(
                    path,
                    f"{', '.join(extra)} belong to kind: spike_source, not to a lif population",
                )
            if p.neuron is None:
                probs.add(
                    path, "a lif population needs `neuron:` parameters (or `kind: spike_source`)"
                )
                broken.add(name)
                continue
            lif, ph, real, scale = _resolve_neuron(
                probs, (*path, "neuron"), p.neuron, dt, notes, name
            )
            if lif is None:
                broken.add(name)
                continue
            pop.neuron, pop.physical, pop.real, pop.scale = lif, ph, real, scale
            if p.initial_v is not None and not _resolve_initial_v(
                probs, (*path, "initial_v"), p.initial_v, pop, notes
            ):
                broken.add(name)

    projs: list[Projection] = []
    names: set[str] = set()
    for k, pr in enumerate(spec.projections):
        path = ("projections", k)
        pname = pr.name or f"{pr.pre}->{pr.post}"
        if pr.name is None and pname in names:
            pname += f"#{sum(1 for x in names if x.split('#')[0] == pname) + 1}"
        if pname in names:
            probs.add(
                (*path, "name"),
                f"{pname!r} is already the name of another projection; name them apart",
            )
        names.add(pname)
        ok = True
        for key in ("pre", "post"):
            ref = getattr(pr, key)
            if ref not in all_pops:
                probs.add(
                    (*path, key),
                    f"names population {ref!r}, which does not exist; "
                    f"populations: {', '.join(sorted(all_pops)) or '(none)'}",
                )
                ok = False
        if not ok or pr.pre not in pops or pr.post not in pops:
            continue
        pre, post = pops[pr.pre], pops[pr.post]
        if post.is_source:
            probs.add(
                (*path, "post"),
                f"{pr.post!r} is a spike_source; projections end on lif populations",
            )
            continue
        conn = _connect(
            probs, (*path, "connect"), pr.connect, pre.size, post.size, pr.pre == pr.post
        )
        if conn is None:
            continue
        pre_idx, post_idx = conn
        n = pre_idx.size
        post_spec = spec.populations[pr.post].neuron
        physical = post_spec is not None and any(
            k in post_spec.model_fields_set for k in S.PHYSICAL_NEURON_KEYS
        )
        delay = _values(probs, (*path, "delay"), pr.delay, n, integer=True)
        if delay is not None:
            delay = _check_int_range(
                probs,
                (*path, "delay"),
                delay,
                1,
                P.MAX_DELAY,
                "steps",
                pr.delay.clip,
                pr.delay.kind == "list",
            )
        wvals = _values(probs, (*path, "weight"), pr.weight, n, integer=not physical)
        if delay is None or wvals is None:
            continue
        stdp = None
        if pr.stdp is not None:
            stdp = _resolve_stdp(probs, (*path, "stdp"), pr.stdp, dt, notes, pname)
            if stdp is None:
                continue
        if pr.pre in broken or pr.post in broken:
            if not physical:
                _check_int_range(
                    probs,
                    (*path, "weight"),
                    wvals,
                    P.WEIGHT_MIN,
                    P.WEIGHT_MAX,
                    f"{P.WEIGHT_BITS}-bit signed mantissa",
                    pr.weight.clip,
                    pr.weight.kind == "list",
                )
            continue
        weight_real = None
        if physical:
            if pr.weight_exp is not None and not _range(
                probs,
                (*path, "weight_exp"),
                pr.weight_exp,
                0,
                P.WEIGHT_EXP_MAX,
                f"{P.WEIGHT_EXP_BITS}-bit unsigned",
            ):
                continue
            unit = post.scale / (1 << P.ACT_SHIFT)
            try:
                w, wexp, note = Q.quantize_weights(wvals, unit, pr.weight_exp, f"{pname}.weight")
            except Q.QuantizationError as e:
                probs.add((*path, "weight"), str(e))
                continue
            notes.append(note)
            weight_real = wvals
            weight_unit = (1 << wexp) / unit
        else:
            wexp = 0 if pr.weight_exp is None else pr.weight_exp
            if not _range(
                probs,
                (*path, "weight_exp"),
                wexp,
                0,
                P.WEIGHT_EXP_MAX,
                f"{P.WEIGHT_EXP_BITS}-bit unsigned",
            ):
                continue
            w = _check_int_range(
                probs,
                (*path, "weight"),
                wvals,
                P.WEIGHT_MIN,
                P.WEIGHT_MAX,
                f"{P.WEIGHT_BITS}-bit signed mantissa",
                pr.weight.clip,
                pr.weight.kind == "list",
            )
            if w is None:
                continue
            w = w.astype(np.int64)
            weight_unit = float((1 << wexp) << P.ACT_SHIFT)
            weight_real = w * weight_unit
        if stdp is not None:
            outside = (w < stdp.w_min) | (w > stdp.w_max)
            if outside.any():
                s = int(np.argmax(outside))
                probs.add(
                    (*path, "weight"),
                    f"initial weight mantissa {int(w[s])} (synapse {s}) is outside "
                    f"stdp w_min..w_max = {stdp.w_min}..{stdp.w_max}",
                )
                continue
        projs.append(
            Projection(
                name=pname,
                pre=pr.pre,
                post=pr.post,
                pre_idx=pre_idx,
                post_idx=post_idx,
                weight=np.asarray(w, dtype=np.int64),
                weight_exp=wexp,
                delay=delay.astype(np.int64),
                stdp=stdp,
                weight_real=np.asarray(weight_real, dtype=np.float64),
                weight_unit=weight_unit,
            )
        )

    probes: list[Probe] = []
    for k, pb in enumerate(spec.probes):
        path = ("probes", k)
        if pb.every < 1:
            probs.add((*path, "every"), f"{pb.every!r} must be >= 1 (steps between samples)")
        if pb.variable == "weights":
            if pb.projection is None or pb.population is not None:
                probs.add(path, "a weights probe names a `projection:` (and no population)")
                continue
            if pb.projection not in names | (known_projections or set()):
                probs.add(
                    (*path, "projection"),
                    f"names projection {pb.projection!r}, which does not "
                    f"exist; projections: {', '.join(sorted(names)) or '(none)'}",
                )
                continue
            proj = next((p for p in projs if p.name == pb.projection), None)
            if proj is None:
                continue
            size, target = proj.n_synapses, pb.projection
        else:
            if pb.population is None or pb.projection is not None:
                probs.add(path, f"a {pb.variable} probe names a `population:` (and no projection)")
                continue
            if pb.population not in all_pops:
                probs.add(
                    (*path, "population"),
                    f"names population {pb.population!r}, which does not "
                    f"exist; populations: {', '.join(sorted(all_pops))}",
                )
                continue
            pop = pops.get(pb.population)
            if pop is None:
                continue
            if pop.is_source and pb.variable in ("u", "v"):
                probs.add(
                    (*path, "variable"),
                    f"{pb.population!r} is a spike_source and has no {pb.variable}",
                )
                continue
            size, target = pop.size, pb.population
        neurons = None
        if pb.neurons is not None:
            neurons = np.asarray(pb.neurons, dtype=np.int64)
            bad = (neurons < 0) | (neurons >= size)
            if bad.any():
                what = "synapses" if pb.variable == "weights" else "neurons"
                probs.add(
                    (*path, "neurons", int(np.argmax(bad))),
                    f"{int(neurons[bad][0])} is out of range; {target} has {what} 0..{size - 1}",
                )
                continue
        probes.append(
            Probe(target=target, variable=pb.variable, neurons=neurons, every=max(pb.every, 1))
        )

    if probs.items:
        raise NetworkError(probs.items)
    return Network(
        name=spec.name,
        dt_ms=spec.dt_ms,
        populations=pops,
        projections=projs,
        probes=probes,
        quantization=notes,
    )


def _resolve_stdp(
    probs: _Problems, path: Path_, s: S.STDPSpec, dt_ms: float, notes: list[Q.Rounding], pname: str
) -> STDPParams | None:
    n0 = len(probs.items)
    for key, lo, hi, what in (
        ("a_plus", P.STDP_A_MIN, P.STDP_A_MAX, f"{P.STDP_A_BITS}-bit signed"),
        ("a_minus", P.STDP_A_MIN, P.STDP_A_MAX, f"{P.STDP_A_BITS}-bit signed"),
        ("bump_pre", 0, P.TRACE_MAX, f"{P.TRACE_BITS}-bit unsigned"),
        ("bump_post", 0, P.TRACE_MAX, f"{P.TRACE_BITS}-bit unsigned"),
        ("shift", 0, P.STDP_SHIFT_MAX, f"{P.STDP_SHIFT_BITS}-bit unsigned"),
        ("w_min", P.WEIGHT_MIN, P.WEIGHT_MAX, f"{P.WEIGHT_BITS}-bit signed mantissa"),
        ("w_max", P.WEIGHT_MIN, P.WEIGHT_MAX, f"{P.WEIGHT_BITS}-bit signed mantissa"),
        ("seed", 0, (1 << P.LFSR_BITS) - 1, f"{P.LFSR_BITS}-bit unsigned"),
    ):
        _range(probs, (*path, key), getattr(s, key), lo, hi, what)
    if s.w_min > s.w_max:
        probs.add((*path, "w_min"), f"w_min {s.w_min} is above w_max {s.w_max}")
    decays = {}
    for side in ("pre", "post"):
        d, tau = getattr(s, f"d_{side}"), getattr(s, f"tau_{side}_ms")
        if (d is None) == (tau is None):
            probs.add(path, f"give exactly one of d_{side} (fixed point) and tau_{side}_ms")
            continue
        if d is not None:
            _range(probs, (*path, f"d_{side}"), d, 0, P.DECAY_MAX, f"{P.DECAY_BITS}-bit unsigned")
            decays[side] = d
        else:
            try:
                decays[side], r = Q.decay_from_tau(
                    tau, dt_ms, 0, f"{pname}.stdp.tau_{side}_ms", f"d_{side}"
                )
                notes.append(r)
            except Q.QuantizationError as e:
                probs.add((*path, f"tau_{side}_ms"), str(e))
    if len(probs.items) > n0:
        return None
    return STDPParams(
        a_plus=s.a_plus,
        a_minus=s.a_minus,
        d_pre=decays["pre"],
        d_post=decays["post"],
        bump_pre=s.bump_pre,
        bump_post=s.bump_post,
        shift=s.shift,
        w_min=s.w_min,
        w_max=s.w_max,
        stochastic_rounding=s.stochastic_rounding,
        seed=s.seed,
        tau_pre_ms=s.tau_pre_ms,
        tau_post_ms=s.tau_post_ms,
    )


# --------------------------------------------------------------------------------------------
# Validation errors from pydantic, with did-you-mean


def pydantic_problems(err: pydantic.ValidationError, prefix: Path_ = ()) -> list[Problem]:
    """Turn pydantic's errors into :class:`Problem` objects with readable messages."""
    import difflib

    out = []
    for e in err.errors(include_url=False):
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        path = prefix + loc
        kind = e["type"]
        value = e.get("input")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            fields = _fields_at(path[:-1])
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6) or [
                f for f in fields if len(key) > 1 and (f.startswith(key) or key.startswith(f))
            ]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"unknown key {key!r}{hint}; accepted: {', '.join(fields)}"
        elif kind == "missing":
            msg = "is required but missing"
        elif kind == "literal_error":
            msg = f"{value!r} is not accepted; {e['msg'][0].lower()}{e['msg'][1:]}"
        elif kind in (
            "int_type",
            "float_type",
            "bool_type",
            "string_type",
            "list_type",
            "dict_type",
            "model_type",
            "int_from_float",
            "int_parsing",
        ):
            want = {
                "int_type": "an integer",
                "float_type": "a number",
                "bool_type": "true or false",
                "string_type": "a string",
                "list_type": "a list",
                "dict_type": "a mapping",
                "model_type": "a mapping",
                "int_from_float": "an integer",
                "int_parsing": "an integer",
            }[kind]
            msg = f"{value!r} ({type(value).__name__}) is not accepted; expected {want}"
        else:
            msg = f"{e['msg']} (found {value!r})"
        out.append(Problem(path, msg))
    return out


def _fields_at(loc: tuple) -> list[str]:
    """Return the accepted keys of the spec model at ``loc`` inside a NetworkSpec."""
    model: Any = S.NetworkSpec
    i = 0
    while i < len(loc):
        part = loc[i]
        if model is S.NetworkSpec and part == "populations":
            model, i = S.PopulationSpec, i + 2
            continue
        if model is S.NetworkSpec and part in ("projections", "probes"):
            model, i = (S.ProjectionSpec if part == "projections" else S.ProbeSpec), i + 2
            continue
        sub = {
            (S.PopulationSpec, "neuron"): S.NeuronSpec,
            (S.PopulationSpec, "poisson"): S.PoissonSpec,
            (S.PopulationSpec, "initial_v"): S.ValueSpec,
            (S.ProjectionSpec, "connect"): S.ConnectSpec,
            (S.ProjectionSpec, "weight"): S.ValueSpec,
            (S.ProjectionSpec, "delay"): S.ValueSpec,
            (S.ProjectionSpec, "stdp"): S.STDPSpec,
        }.get((model, part))
        if sub is None:
            break
        model, i = sub, i + 1
    return list(model.model_fields)


# --------------------------------------------------------------------------------------------
# Python builder


class NetworkBuilder:
    """Build a network in Python; :meth:`build` applies the same checks as a YAML file.

    Examples
    --------
    >>> b = NetworkBuilder("demo", dt_ms=1.0)
    >>> b.spike_source("inp", 2, times=[[0, 3], [5]])
    >>> b.population("exc", 4, du=4095, dv=200, vth=100)
    >>> b.project("inp", "exc", connect="all_to_all", weight=50, delay=1)
    >>> b.probe("exc", "v")
    >>> net = b.build()
    """

    def __init__(self, name: str, dt_ms: float = 1.0):
        self._doc: dict[str, Any] = {
            "spikefab": S.FORMAT_VERSION,
            "name": name,
            "dt_ms": dt_ms,
            "populations": {},
            "projections": [],
            "probes": [],
        }

    def population(
        self,
        name: str,
        size: int,
        neuron: Any = None,
        initial_v: Any = None,
        **neuron_keys: Any,
    ) -> str:
        """Add a LIF population, in fixed point (``du=...``) or physical units; ``initial_v``
        as in a YAML file (a scalar, an array, or a distribution's mapping)."""
        if neuron is not None:
            if isinstance(neuron, LIFParams | PhysicalLIF):
                neuron = dict(neuron.__dict__)
            neuron_keys = {**dict(neuron), **neuron_keys}
        self._doc["populations"][name] = {"size": size, "neuron": neuron_keys}
        if initial_v is not None:
            self._doc["populations"][name]["initial_v"] = _plain(initial_v)
        return name

    def spike_source(
        self,
        name: str,
        size: int,
        *,
        times: Iterable[Iterable[int]] | None = None,
        poisson: dict[str, Any] | None = None,
        file: str | None = None,
    ) -> str:
        """Add a spike-source population: explicit steps per neuron, Poisson, or a file."""
        pop: dict[str, Any] = {"kind": "spike_source", "size": size}
        if times is not None:
            pop["times"] = [[int(t) for t in ts] for ts in times]
        if poisson is not None:
            pop["poisson"] = dict(poisson)
        if file is not None:
            pop["file"] = str(file)
        self._doc["populations"][name] = pop
        return name

    def project(
        self,
        pre: str,
        post: str,
        *,
        connect: Any = "all_to_all",
        weight: Any,
        delay: Any = 1,
        weight_exp: int | None = None,
        stdp: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        """Add a projection; ``weight`` and ``delay`` are scalars, arrays or distribution dicts."""
        proj: dict[str, Any] = {
            "pre": pre,
            "post": post,
            "connect": _plain(connect),
            "weight": _plain(weight),
            "delay": _plain(delay),
        }
        if weight_exp is not None:
            proj["weight_exp"] = weight_exp
        if stdp is not None:
            proj["stdp"] = dict(stdp)
        if name is not None:
            proj["name"] = name
        self._doc["projections"].append(proj)
        return name or f"{pre}->{post}"

    def probe(
        self, target: str, variable: str, neurons: Iterable[int] | None = None, every: int = 1
    ) -> None:
        """Record ``v``, ``u`` or ``spikes`` of a population, or ``weights`` of a projection."""
        key = "projection" if variable == "weights" else "population"
        pb: dict[str, Any] = {key: target, "variable": variable}
        if neurons is not None:
            pb["neurons"] = [int(n) for n in neurons]
        if every != 1:
            pb["every"] = every
        self._doc["probes"].append(pb)

    def to_dict(self) -> dict[str, Any]:
        """Return the description as plain data, as it would be written in YAML."""
        import copy

        return copy.deepcopy(self._doc)

    def to_yaml(self) -> str:
        """Return the description as YAML text."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def build(self) -> Network:
        """Validate and resolve the network.

        Raises
        ------
        NetworkError
            Listing every problem, located by field path.
        """
        from spikefab.mapping.loader import from_dict

        return from_dict(self.to_dict())


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, list | tuple):
        return [_plain(i) for i in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x
