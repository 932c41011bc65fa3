"""The bit-exact golden model of a whole network (``docs/contract.md``, sections 2 to 5).

Phases of step ``t`` (contract 4.1):

1. input: every neuron takes the exact sum of the events due at ``t`` from its dendrite
   ring slot ``t mod D`` and the slot is cleared;
2. update: every LIF neuron is updated, giving the spikes of step ``t``; spike sources
   emit their spikes of step ``t``;
3. delivery: every spike of step ``t`` is fanned out along its synapses, adding
   ``w << weight_exp`` to slot ``(t + delay) mod D`` of the target;
4. learning: traces decay, plastic weights change, traces are bumped by the spikes of ``t``.

:class:`GoldenModel` has two paths that give the same results bit for bit:

- the numba path (when numba is installed: ``pip install "spikefab[fast]"``) runs whole
  steps, or blocks of steps, in the compiled kernels of :mod:`spikefab.sim._kernels`, from
  compact tables (6 bytes per synapse), and with ``threads=K`` splits each step's neurons
  into ``K`` blocks on as many threads, with the same results bit for bit
  (``docs/golden.md``);
- the numpy path vectorizes each phase over neurons and synaptic events, with no Python loop
  over neurons or synapses.

The numba path is the default when numba can be imported; ``GoldenModel(net, numba=False)``
or the environment variable ``SPIKEFAB_NO_NUMBA=1`` selects the numpy path, and
``GoldenModel(net, numba=True)`` requires numba. ``tests/sim/test_fast_path.py`` holds the two
paths to each other at every step.

Spike sources are read a block of steps at a time (:class:`SourceStream` gives the same spikes
however the steps are split into blocks, contract 1).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
from spikefab.hdl import params as P
from spikefab.hdl.layouts import expand_ranges
from spikefab.mapping.network import Network, Probe, Projection, SourceStream
from spikefab.sim import arith
from spikefab.sim.results import ProbeTrace, RunResult

__all__ = ["NO_NUMBA_ENV", "GoldenModel", "StepModel", "fast_kernels", "numba_available"]

#: Set this environment variable (to anything but ``""`` or ``"0"``) to make
#: :class:`GoldenModel` take the numpy path unless ``numba=True`` is passed.
NO_NUMBA_ENV = "SPIKEFAB_NO_NUMBA"

#: Source spikes are drawn for at most this many steps at a time...
SOURCE_BLOCK_STEPS = 1000
#: ... and at most this many uniform numbers (steps times the largest source population).
SOURCE_BLOCK_DRAWS = 1 << 20
#: Largest number of ``u``/``v`` probe values one call of the kernel buffers.
PROBE_BUFFER = 1 << 21
#: The numba path's dendrite ring is ``int32`` when no neuron's incoming synapses can add up
#: to this much in one step, else ``int64``...
RING_INT32_LIMIT = 1 << 31
#: ... and its ring offsets (``delay * n + post``) are ``int32`` when ``(D + 1) * n`` is below
#: this, else ``int64``.
OFFSET_INT32_LIMIT = 1 << 31


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _load_kernels(numba: bool | None) -> ModuleType | None:
    """Return :mod:`spikefab.sim._kernels`, or ``None`` for the numpy path."""
    if numba is False:
        return None
    if numba is None and os.environ.get(NO_NUMBA_ENV, "") not in ("", "0"):
        return None
    try:
        kernels = importlib.import_module("spikefab.sim._kernels")
    except ImportError as e:
        if numba:
            raise ImportError(
                f"GoldenModel(numba=True) needs numba ({e}); install it with "
                "`pip install 'spikefab[fast]'`"
            ) from e
        return None
    return kernels


def fast_kernels() -> ModuleType | None:
    """Return the compiled kernels of the fast path (numba), or ``None`` without numba."""
    return _load_kernels(None)


def numba_available() -> bool:
    """Return whether numba imports, so that ``GoldenModel(net, numba=True)`` works."""
    try:
        _load_kernels(True)
    except ImportError:
        return False
    return True


@functools.cache
def _lfsr_step_table() -> np.ndarray:
    """Return the state of an LFSR after one learning phase, for every state (contract 5.4)."""
    return arith.lfsr_advance(np.arange(1 << P.LFSR_BITS, dtype=np.int64))


class _Sources:
    """The spikes of every source, drawn a block of steps at a time.

    ``ids[ptr[k] : ptr[k + 1]]`` are the global ids that spike at step ``t0 + k``, for
    ``t0 <= t < t1``. Blocks are read in order, as the model's steps are.
    """

    def __init__(self, streams: list[tuple[int, int, SourceStream]]):
        self.streams = streams
        largest = max((size for _, size, _ in streams), default=0)
        if streams:
            self.block = max(1, min(SOURCE_BLOCK_STEPS, SOURCE_BLOCK_DRAWS // max(largest, 1)))
        else:
            self.block = 1 << 16
        self.t0 = self.t1 = 0
        self.ptr = np.zeros(1, dtype=np.int64)
        self.ids = np.zeros(0, dtype=np.int64)

    def window(self, t: int) -> int:
        """Make the block hold step ``t``; return the index of ``t`` in ``ptr``."""
        if not self.t0 <= t < self.t1:
            if t != self.t1:
                raise RuntimeError(f"source spikes are read in order; step {t} after {self.t1}")
            self._refill(t)
        return t - self.t0

    def at(self, t: int) -> np.ndarray:
        """Return the global ids that spike at step ``t``."""
        k = self.window(t)
        return self.ids[self.ptr[k] : self.ptr[k + 1]]

    def _refill(self, t: int) -> None:
        k = self.block
        steps, ids = [], []
        for off, _, stream in self.streams:
            st, nr = stream.next(k)
            steps.append(np.asarray(st, dtype=np.int64))
            ids.append(np.asarray(nr, dtype=np.int64) + off)
        st, gid = _cat(steps), _cat(ids)
        order = np.argsort(st, kind="stable")
        self.ids = np.ascontiguousarray(gid[order])
        self.ptr = np.searchsorted(st[order], np.arange(t, t + k + 1)).astype(np.int64)
        self.t0, self.t1 = t, t + k


class _SpikeLog:
    """Spikes of a run: the ids of every step, end to end, and their count per step."""

    def __init__(self, steps: int, n: int):
        self.counts = np.zeros(steps, dtype=np.int64)
        self.ids = np.empty(max(min(steps * n, 1 << 16), n, 1), dtype=np.int64)
        self.pos = 0

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more ids."""
        need = self.pos + extra
        if need > self.ids.size:
            grown = np.empty(max(need, 2 * self.ids.size), dtype=np.int64)
            grown[: self.pos] = self.ids[: self.pos]
            self.ids = grown

    def add(self, k: int, ids: np.ndarray) -> None:
        """Record the spikes ``ids`` of the ``k``-th step of the run."""
        self.reserve(ids.size)
        self.ids[self.pos : self.pos + ids.size] = ids
        self.pos += ids.size
        self.counts[k] = ids.size


@dataclass
class _ProbeRecord:
    """The samples of one state probe during a run."""

    probe: Probe
    index: np.ndarray
    #: global ids of the sampled neurons (``u`` and ``v`` probes)
    gidx: np.ndarray | None
    steps: list[int] = field(default_factory=list)
    blocks: list[np.ndarray] = field(default_factory=list)


class _Plastic:
    """Learning state of one plastic projection."""

    def __init__(
        self,
        proj: Projection,
        gsyn: np.ndarray,
        pre_off: int,
        post_off: int,
        n_pre: int,
        n_post: int,
    ):
        assert proj.stdp is not None
        self.proj = proj
        self.stdp = proj.stdp
        self.gsyn = gsyn
        self.pre_off, self.post_off = pre_off, post_off
        self.n_pre, self.n_post = n_pre, n_post
        self.pi = np.asarray(proj.pre_idx, dtype=np.int64)
        self.qi = np.asarray(proj.post_idx, dtype=np.int64)
        #: the post neurons' LFSR numbers (contract 5.4)
        self.numbers = np.arange(n_post, dtype=np.int64)


class _OrderedResult(RunResult):
    """A :class:`RunResult` made from spikes already in ``(step, population, neuron)`` order.

    A run lists each step's spiking ids in increasing order, step after step, so its spikes
    are in the order :class:`RunResult` sorts them into; checking that takes one pass, where
    the sort took longer than a step of a small network. Spikes out of order (there are
    none) would still be sorted.
    """

    def __post_init__(self) -> None:
        ds, dp, dn = np.diff(self.step), np.diff(self.population), np.diff(self.neuron)
        if np.all((ds > 0) | ((ds == 0) & ((dp > 0) | ((dp == 0) & (dn >= 0))))):
            self.step = np.asarray(self.step, dtype=np.int64)
            self.population = np.asarray(self.population, dtype=np.int64)
            self.neuron = np.asarray(self.neuron, dtype=np.int64)
        else:  # pragma: no cover - the runs make ordered spikes
            super().__post_init__()


class StepModel:
    """What the golden model and the float reference share: layout, delivery and recording.

    Parameters
    ----------
    net
        The network.
    ring
        Number of dendrite ring slots ``D``; by default the longest delay.

    Attributes
    ----------
    offset
        First global id of every population (populations in file order).
    n, D
        Number of neurons (sources included) and of ring slots.
    ring
        ``(D, n)`` dendritic sums waiting to be read, in the model's dtype (on the golden
        model's numba path ``int32``, or ``int64`` where sums could overflow it).
    is_lif
        Boolean mask of the LIF neurons.
    plastic
        The learning state of every plastic projection.
    """

    backend = "abstract"
    dtype: type = np.int64

    def __init__(self, net: Network, ring: int | None = None):
        self.net = net
        pops = list(net.populations.values())
        self.offset = {}
        off = 0
        for p in pops:
            self.offset[p.name] = off
            off += p.size
        self.n = off
        self.D = max(net.max_delay, 1) if ring is None else ring
        if net.max_delay > self.D:
            raise ValueError(
                f"ring of {self.D} slots is shorter than the longest delay {net.max_delay}"
            )
        self.is_lif = np.zeros(self.n, dtype=bool)
        for p in pops:
            if not p.is_source:
                self.is_lif[self.offset[p.name] : self.offset[p.name] + p.size] = True
        src_pops = [p for p in pops if p.source is not None]
        self.sources: list[tuple[int, SourceStream]] = [
            (self.offset[p.name], p.source.stream(p.size, net.dt_ms))
            for p in src_pops
            if p.source is not None
        ]
        self._src = _Sources(
            [(off, p.size, st) for p, (off, st) in zip(src_pops, self.sources, strict=True)]
        )
        # the synapses in global ids, projection after projection
        g_pre = _cat([self.offset[pr.pre] + pr.pre_idx for pr in net.projections])
        g_post = _cat([self.offset[pr.post] + pr.post_idx for pr in net.projections])
        g_delay = _cat([pr.delay for pr in net.projections])
        #: number of outgoing synapses of every neuron
        self.syn_count = np.bincount(g_pre, minlength=self.n).astype(np.int64)
        # position of every synapse (projection after projection) in the delivery table
        inverse = self._build_synapses(g_pre, g_post, g_delay)
        del g_pre, g_post, g_delay
        self.plastic: list[_Plastic] = []
        base = 0
        for pr in net.projections:
            if pr.stdp is not None:
                gsyn = inverse[base : base + pr.n_synapses].copy()
                self.plastic.append(
                    _Plastic(
                        pr,
                        gsyn,
                        self.offset[pr.pre],
                        self.offset[pr.post],
                        net.populations[pr.pre].size,
                        net.populations[pr.post].size,
                    )
                )
                self.plastic[-1].numbers = net.populations[pr.post].lfsr_numbers()
            base += pr.n_synapses
        self.ring = np.zeros((self.D, self.n), dtype=self.dtype)
        self.t = 0
        self._reset_state()
        self._init_learning()

    def _build_synapses(
        self, g_pre: np.ndarray, g_post: np.ndarray, g_delay: np.ndarray
    ) -> np.ndarray:
        """Build the delivery table of the numpy path: the synapses sorted by pre id (CSR).

        Returns the position in the table of every synapse, projection after projection.
        """
        self.order = np.argsort(g_pre, kind="stable")
        self.inverse = np.empty_like(self.order)
        self.inverse[self.order] = np.arange(self.order.size)
        self.syn_post = g_post[self.order]
        self.syn_delay = g_delay[self.order]
        self.syn_start = np.searchsorted(g_pre[self.order], np.arange(self.n)).astype(np.int64)
        self.syn_val = np.ascontiguousarray(self._synapse_values()[self.order])
        # flat ring index of a synapse's event, less the slot's: (delay * n + post)
        self._syn_off = self.syn_delay * self.n + self.syn_post
        return self.inverse

    def synapse_values(self) -> np.ndarray:
        """Return the value every synapse adds now, projection after projection."""
        out = np.empty(self.syn_val.size, dtype=self.syn_val.dtype)
        out[self.order] = self.syn_val
        return out

    # hooks ---------------------------------------------------------------------------------
    def _synapse_values(self) -> np.ndarray:
        raise NotImplementedError

    def _reset_state(self) -> None:
        raise NotImplementedError

    def _update(self, acc: np.ndarray) -> np.ndarray:
        """Update the neurons with the step's dendritic sums; return the boolean spikes."""
        raise NotImplementedError

    def _init_learning(self) -> None:
        raise NotImplementedError

    def _learn(self, spiked: np.ndarray) -> None:
        raise NotImplementedError

    def state(self, variable: str) -> np.ndarray:
        """Return ``u`` or ``v`` of every neuron, in global order."""
        raise NotImplementedError

    def weights(self, name: str) -> np.ndarray:
        """Return the current weight of every synapse of a projection, in its own order."""
        raise NotImplementedError

    # the step ------------------------------------------------------------------------------
    def step(self) -> np.ndarray:
        """Advance one step; return the global ids that spiked, in increasing order."""
        t = self.t
        slot = t % self.D
        acc = self.ring[slot].copy()
        self.ring[slot] = 0
        spiked = self._update(acc)
        src = self._src.at(t)
        if src.size:
            spiked[src] = True
        ids = np.flatnonzero(spiked)
        if ids.size:
            syn = expand_ranges(self.syn_start[ids], self.syn_count[ids])
            if syn.size:
                where = self._syn_off[syn]
                where += slot * self.n
                size = self.ring.size
                np.subtract(where, size, out=where, where=where >= size)
                np.add.at(self.ring.reshape(-1), where, self.syn_val[syn])
        if self.plastic:
            self._learn(spiked)
        self.t += 1
        return ids

    def _run_chunk(self, steps: int, log: _SpikeLog, t_run: int, probes: list[_ProbeRecord]) -> int:
        """Run up to ``steps`` steps of a run started at ``t_run``; return the steps run.

        The spikes go to ``log``, the samples of the ``u`` and ``v`` probes to ``probes``.
        """
        for _ in range(steps):
            t = self.t
            log.add(t - t_run, self.step())
            for rec in probes:
                if t % rec.probe.every == 0:
                    assert rec.gidx is not None
                    rec.steps.append(t)
                    rec.blocks.append(self.state(rec.probe.variable)[rec.gidx][None])
        return steps

    def run(self, steps: int, progress: Callable[[int], None] | None = None) -> RunResult:
        """Run ``steps`` steps from the current state and return the spikes and probes.

        Parameters
        ----------
        steps
            Number of steps to run.
        progress
            Called with the number of steps done since the last call, every few steps.
        """
        if steps < 0:
            raise ValueError(f"steps must be >= 0, not {steps!r}")
        net = self.net
        pops = list(net.populations.values())
        starts = np.array([self.offset[p.name] for p in pops], dtype=np.int64)
        recorded = None
        spike_probes = [pb for pb in net.probes if pb.variable == "spikes"]
        if spike_probes:
            recorded = np.zeros(self.n, dtype=bool)
            for pb in spike_probes:
                off = self.offset[pb.target]
                idx = (
                    np.arange(net.populations[pb.target].size) if pb.neurons is None else pb.neurons
                )
                recorded[off + idx] = True
        records = []
        for pb in net.probes:
            if pb.variable == "spikes":
                continue
            if pb.variable == "weights":
                size = net.projection(pb.target).n_synapses
            else:
                size = net.populations[pb.target].size
            index = np.arange(size, dtype=np.int64) if pb.neurons is None else pb.neurons
            gidx = None if pb.variable == "weights" else self.offset[pb.target] + index
            records.append(_ProbeRecord(pb, index, gidx))
        state_recs = [r for r in records if r.gidx is not None]
        weight_recs = [r for r in records if r.gidx is None]
        log = _SpikeLog(steps, self.n)
        t0 = self.t
        end = t0 + steps
        chunk = max(1, min(1000, steps // 100 or 1))
        done = 0
        while self.t < end:
            stop = end
            if progress is not None:
                stop = min(stop, t0 + done + chunk)
            for rec in weight_recs:
                every = rec.probe.every
                stop = min(stop, -(-self.t // every) * every + 1)
            self._run_chunk(stop - self.t, log, t0, state_recs)
            last = self.t - 1
            for rec in weight_recs:
                if last % rec.probe.every == 0:
                    vals = self.weights(rec.probe.target)
                    if rec.probe.neurons is not None:
                        vals = vals[rec.probe.neurons]
                    rec.steps.append(last)
                    rec.blocks.append(np.array(vals, copy=True)[None])
            if progress is not None:
                while self.t - t0 - done >= chunk:
                    progress(chunk)
                    done += chunk
        if progress is not None and steps - done:
            progress(steps - done)
        ids = log.ids[: log.pos].copy()
        step_arr = np.repeat(np.arange(t0, end, dtype=np.int64), log.counts)
        if recorded is not None:
            keep = recorded[ids]
            ids, step_arr = ids[keep], step_arr[keep]
        pop = np.searchsorted(starts, ids, side="right") - 1
        neuron = ids - starts[pop] if ids.size else ids
        probes = {}
        for rec in records:
            pb = rec.probe
            if rec.blocks:
                values = np.concatenate(rec.blocks)
            else:
                values = np.zeros((0, rec.index.size), dtype=self.dtype)
            tr = ProbeTrace(
                pb.target, pb.variable, np.asarray(rec.steps, dtype=np.int64), rec.index, values
            )
            probes[tr.key] = tr
        weights = {pl.proj.name: self.weights(pl.proj.name) for pl in self.plastic}
        return _OrderedResult(
            network=net.name,
            backend=self.backend,
            dt_ms=net.dt_ms,
            steps=self.t,
            populations=[p.name for p in pops],
            population_sizes=[p.size for p in pops],
            step=step_arr,
            population=pop,
            neuron=neuron,
            probes=probes,
            weights=weights,
        )


class GoldenModel(StepModel):
    """The bit-exact model: integer state with the contract's widths.

    Parameters
    ----------
    net
        The network.
    ring
        Number of dendrite ring slots ``D``; by default the longest delay.
    numba
        ``None`` (default): the numba path when numba imports and ``SPIKEFAB_NO_NUMBA`` is not
        set, else the numpy path; ``True``: the numba path (``ImportError`` without numba);
        ``False``: the numpy path.
    threads
        Number of blocks of neurons the numba path splits every step into, each run by one
        of numba's threads (at most as many threads as numba has: ``NUMBA_NUM_THREADS``,
        by default the number of cores). The results are the same bit for bit whatever the
        number (``docs/golden.md``); the default 1 runs the serial kernel. The numpy path
        runs on one thread and ignores it.

    Attributes
    ----------
    u, v, ref
        State of every neuron in global order (zero for sources), updated in place by each
        step.
    path
        ``"numba"`` or ``"numpy"``: the path this model runs.
    threads
        Blocks of neurons of the numba path (1 on the numpy path).

    Examples
    --------
    >>> from spikefab.mapping.loader import load
    >>> result = GoldenModel(load("examples/synfire.yaml")).run(100)
    """

    backend = "golden"
    dtype = np.int64
    #: With ``threads > 1``, a step with fewer LIF neurons plus synaptic events to deliver
    #: than this runs its blocks on the calling thread (starting the threads costs about a
    #: microsecond on idle cores, much more on busy ones); it changes no result.
    parallel_min_work = 16384
    #: With ``threads > 1``, the blocks' edges are multiples of this many neurons, so that
    #: two blocks share no cache line of spike flags; it changes no result.
    block_align = 64

    def __init__(
        self,
        net: Network,
        ring: int | None = None,
        *,
        numba: bool | None = None,
        threads: int = 1,
    ):
        if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, not {threads!r}")
        self._kernels = _load_kernels(numba)
        self.path = "numpy" if self._kernels is None else "numba"
        self.threads = int(threads) if self._kernels is not None else 1
        super().__init__(net, ring)
        if self._kernels is not None:
            self._setup_kernel()

    # state ---------------------------------------------------------------------------------
    def _synapse_values(self) -> np.ndarray:
        vals = [pr.weight << pr.weight_exp for pr in self.net.projections]
        return np.concatenate(vals).astype(np.int64) if vals else np.zeros(0, np.int64)

    def _reset_state(self) -> None:
        n = self.n
        self.u = np.zeros(n, dtype=np.int64)
        self.v = np.zeros(n, dtype=np.int64)
        self.ref = np.zeros(n, dtype=np.int64)
        cols = {
            k: np.zeros(n, dtype=np.int64)
            for k in ("du", "dv", "vth", "bias_mant", "bias_exp", "refractory")
        }
        cols["vth"][:] = P.VTH_MAX
        self.subtract = np.zeros(n, dtype=bool)
        for p in self.net.populations.values():
            if p.neuron is None:
                continue
            sl = slice(self.offset[p.name], self.offset[p.name] + p.size)
            if p.v0 is not None:
                self.v[sl] = p.v0
            for k, col in cols.items():
                col[sl] = getattr(p.neuron, k)
            self.subtract[sl] = p.neuron.reset == "subtract"
        self.params = cols
        # Per-neuron constants of the update (rows of _kernels.NEURON_ROWS). Sources get
        # constants under which their zero state stays zero and never spikes.
        one = 1 << P.DECAY_SHIFT
        lif = self.is_lif
        self._neuron = np.zeros((6, n), dtype=np.int32)
        ku, kv, theta, bias, refractory, sub = self._neuron
        ku[lif] = one - (cols["du"][lif] + P.DU_OFFSET)
        kv[lif] = one - (cols["dv"][lif] + P.DV_OFFSET)
        theta[:] = cols["vth"] << P.VTH_SHIFT
        bias[lif] = cols["bias_mant"][lif] << cols["bias_exp"][lif]
        refractory[lif] = cols["refractory"][lif]
        sub[lif] = self.subtract[lif]

    def _update(self, acc: np.ndarray) -> np.ndarray:
        """The LIF update of contract 2.3 over every neuron, in place (the numpy path)."""
        ku, kv, theta, bias, refractory, sub = self._neuron
        u, v, ref = self.u, self.v, self.ref
        shift, mask = P.DECAY_SHIFT, (1 << P.DECAY_SHIFT) - 1
        half, wmask = 1 << (P.UV_BITS - 1), (1 << P.UV_BITS) - 1
        # a = clip(S) << 6
        np.maximum(acc, P.INPUT_MIN, out=acc)
        np.minimum(acc, P.INPUT_MAX, out=acc)
        acc <<= P.ACT_SHIFT
        # decay(x, d) = trunc(x * (4096 - d) / 4096): the arithmetic shift of the product
        # rounds down, so negative products get 4095 added first
        p = u * ku
        p += (p >> 63) & mask
        p >>= shift
        p += acc
        p += half
        p &= wmask
        p -= half
        u[:] = p
        q = v * kv
        q += (q >> 63) & mask
        q >>= shift
        q += u
        q += bias
        np.maximum(q, P.V_MIN, out=q)
        np.minimum(q, P.V_MAX, out=q)
        free = ref == 0
        spiked = q > theta
        spiked &= free
        reset = q - theta
        reset *= sub
        np.copyto(q, reset, where=spiked)
        np.copyto(v, q, where=free)
        ref -= ~free
        np.copyto(ref, refractory, where=spiked)
        return spiked

    def state(self, variable: str) -> np.ndarray:
        return {"u": self.u, "v": self.v}[variable]

    # learning ------------------------------------------------------------------------------
    def _init_learning(self) -> None:
        """Concatenate the traces, LFSRs and weights of the plastic projections.

        Each projection's ``x``, ``y``, ``lfsr`` and ``w`` are views into the concatenations,
        which both paths update in place.
        """
        pls = self.plastic
        self._px = np.zeros(sum(pl.n_pre for pl in pls), dtype=np.int64)
        self._py = np.zeros(sum(pl.n_post for pl in pls), dtype=np.int64)
        self._plfsr = np.zeros_like(self._py)
        self._pw = np.zeros(sum(pl.proj.n_synapses for pl in pls), dtype=np.int64)
        xs = ys = ws = 0
        for pl in pls:
            pl.x = self._px[xs : xs + pl.n_pre]
            pl.y = self._py[ys : ys + pl.n_post]
            pl.lfsr = self._plfsr[ys : ys + pl.n_post]
            pl.w = self._pw[ws : ws + pl.proj.n_synapses]
            pl.lfsr[:] = arith.lfsr_seed(pl.stdp.seed, pl.numbers)
            pl.w[:] = pl.proj.weight
            pl.starts = (xs, ys, ws)
            xs, ys, ws = xs + pl.n_pre, ys + pl.n_post, ws + pl.proj.n_synapses

    def _learn(self, spiked: np.ndarray) -> None:
        """The learning phase of contract 5.2 (the numpy path)."""
        for pl in self.plastic:
            s = pl.stdp
            pre_sp = spiked[pl.pre_off : pl.pre_off + pl.n_pre]
            post_sp = spiked[pl.post_off : pl.post_off + pl.n_post]
            pl.x[:] = arith.decay(pl.x, s.d_pre)
            pl.y[:] = arith.decay(pl.y, s.d_post)
            if s.stochastic_rounding:
                pl.lfsr[:] = _lfsr_step_table()[pl.lfsr]
            any_pre, any_post = pre_sp.any(), post_sp.any()
            if not (any_pre or any_post):
                continue
            pi, qi = pl.pi, pl.qi
            act = np.flatnonzero(pre_sp[pi] | post_sp[qi])
            pa, qa = pi[act], qi[act]
            rnd = arith.stdp_rnd(s.shift, s.stochastic_rounding, pl.lfsr[qa])
            dw = arith.stdp_dw(
                pl.x[pa], pl.y[qa], pre_sp[pa], post_sp[qa], s.a_plus, s.a_minus, s.shift, rnd
            )
            w = arith.stdp_weight(pl.w[act], dw, s.w_min, s.w_max)
            pl.w[act] = w
            self.syn_val[pl.gsyn[act]] = w << pl.proj.weight_exp
            if any_pre:
                pl.x[:] = arith.trace_bump(pl.x, s.bump_pre, pre_sp)
            if any_post:
                pl.y[:] = arith.trace_bump(pl.y, s.bump_post, post_sp)

    def weights(self, name: str) -> np.ndarray:
        for pl in self.plastic:
            if pl.proj.name == name:
                return pl.w.copy()
        return self.net.projection(name).weight.copy()

    def traces(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(pre, post)`` traces of a plastic projection."""
        for pl in self.plastic:
            if pl.proj.name == name:
                return pl.x.copy(), pl.y.copy()
        raise KeyError(f"projection {name!r} is not plastic")

    # the numba path ------------------------------------------------------------------------
    def _block_bounds(self, g_post: np.ndarray) -> np.ndarray:
        """Split the neurons into :attr:`threads` blocks of about the same work.

        The work of a neuron is its incoming synapses plus one (its update); block edges are
        multiples of :attr:`block_align` neurons. Returns the ``threads + 1`` edges.
        """
        k, n, a = self.threads, self.n, self.block_align
        if k == 1:
            return np.array([0, n], dtype=np.int64)
        work = np.cumsum(np.bincount(g_post, minlength=n) + self.is_lif)
        cuts = np.searchsorted(work, work[-1] * np.arange(1, k) / k) if n else np.zeros(k - 1)
        cuts = np.minimum((cuts.astype(np.int64) + a // 2) // a * a, n)
        return np.concatenate([[0], np.maximum.accumulate(cuts), [n]]).astype(np.int64)

    def _build_synapses(
        self, g_pre: np.ndarray, g_post: np.ndarray, g_delay: np.ndarray
    ) -> np.ndarray:
        """Build the kernel's compact tables (see :func:`spikefab.sim._kernels.advance`).

        Synapses are sorted by block of their target, then by pre id (a stable counting
        sort); a synapse is its ring offset ``delay * n + post`` (``int32``) and its value
        (``int16``). The ring is ``int32`` unless some neuron's incoming synapses could add
        up to a sum beyond it.
        """
        if self._kernels is None:
            return super()._build_synapses(g_pre, g_post, g_delay)
        k, n, D = self.threads, self.n, self.D
        bounds = self._block_bounds(g_post)
        self._bounds = bounds
        key = g_pre
        if k > 1:
            key = (np.searchsorted(bounds, g_post, side="right") - 1) * n + g_pre
        order, ptr = self._kernels.counting_order(key, k * n)
        del key
        self._syn_ptr = np.stack([ptr[b * n : b * n + n + 1] for b in range(k)])
        off_type = np.int32 if (D + 1) * n < OFFSET_INT32_LIMIT else np.int64
        vals = self._synapse_values()
        if vals.size and max(-vals.min(), vals.max()) >= 1 << 15:  # pragma: no cover
            raise AssertionError("a synapse value beyond 16 bits")
        # what a synapse can add to a step's sum: its value, or a plastic one's largest
        reach = np.abs(vals)
        base = 0
        plastic = False
        for pr in self.net.projections:
            if pr.stdp is not None:
                reach[base : base + pr.n_synapses] = -P.WEIGHT_MIN << pr.weight_exp
                plastic = True
            base += pr.n_synapses
        self._syn_off = np.empty(order.size, dtype=off_type)
        self.syn_val = np.empty(order.size, dtype=np.int16)
        worst = self._kernels.gather_synapses(
            order, g_post, g_delay, vals, reach, n, self._syn_off, self.syn_val
        )
        del vals, reach
        self._ring_type = np.int32 if worst < RING_INT32_LIMIT else np.int64
        inverse = np.empty(order.size if plastic else 0, dtype=np.int64)
        if plastic:
            inverse[order] = np.arange(order.size)
        return inverse

    def synapse_values(self) -> np.ndarray:
        if self._kernels is None:
            return super().synapse_values()
        g_pre = _cat([self.offset[pr.pre] + pr.pre_idx for pr in self.net.projections])
        g_post = _cat([self.offset[pr.post] + pr.post_idx for pr in self.net.projections])
        key = (np.searchsorted(self._bounds, g_post, side="right") - 1) * self.n + g_pre
        order, _ = self._kernels.counting_order(key, self.threads * self.n)
        out = np.empty(order.size, dtype=np.int64)
        out[order] = self.syn_val
        return out

    def table_bytes(self) -> dict[str, int]:
        """Return the bytes of the numba path's tables: ``synapses`` (every per-synapse
        array the kernel reads), ``pointers`` (the per-neuron pointers into them) and ``ring``.
        """
        syn = self._syn_off.nbytes + self.syn_val.nbytes if self._kernels else 0
        ptr = self._syn_ptr.nbytes if self._kernels else 0
        return {"synapses": syn, "pointers": ptr, "ring": self.ring.nbytes}

    def _setup_kernel(self) -> None:
        """Build the other tables the kernel reads (see :func:`spikefab.sim._kernels.advance`)."""
        k = self._kernels
        assert k is not None
        n = self.n
        self.ring = np.zeros((self.D, n), dtype=self._ring_type)
        # the ranges of LIF neurons, cut at the edges of the blocks
        edges = np.diff(np.concatenate([[0], self.is_lif.view(np.int8), [0]]))
        los, his = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        upd, upd_ptr = [], [0]
        for b in range(self.threads):
            blo, bhi = self._bounds[b], self._bounds[b + 1]
            lo, hi = np.maximum(los, blo), np.minimum(his, bhi)
            keep = lo < hi
            upd += [lo[keep], hi[keep]]
            upd_ptr.append(upd_ptr[-1] + int(keep.sum()))
        self._upd = np.ascontiguousarray(
            np.stack([_cat(upd[0::2]), _cat(upd[1::2])], axis=1), dtype=np.int64
        )
        self._upd_ptr = np.array(upd_ptr, dtype=np.int64)
        self._spiked = np.zeros((2, -(-n // 8) * 8), dtype=np.uint8)
        self._step_ids = np.empty(max(n, 1), dtype=np.int64)
        self._step_count = np.zeros(1, dtype=np.int64)
        self._no_probe = np.zeros((0, 3), dtype=np.int64)
        self._no_probe_idx = np.zeros((2, 0), dtype=np.int64)
        self._no_probe_out = np.zeros((1, 0), dtype=np.int64)
        one = 1 << P.DECAY_SHIFT
        pls = self.plastic
        table = np.zeros((len(pls), len(k.PLASTIC_COLUMNS)), dtype=np.int64)
        n_syn = self._pw.size
        psyn = np.zeros((3, n_syn), dtype=np.int64)
        porder = np.zeros((2, n_syn), dtype=np.int64)
        pptr = []
        n_ptr = 0
        for r, pl in enumerate(pls):
            s = pl.stdp
            xs, ys, ws = pl.starts
            we = ws + pl.proj.n_synapses
            psyn[0, ws:we], psyn[1, ws:we], psyn[2, ws:we] = pl.pi, pl.qi, pl.gsyn
            by_pre = np.argsort(pl.pi, kind="stable")
            by_post = np.argsort(pl.qi, kind="stable")
            porder[0, ws:we], porder[1, ws:we] = ws + by_pre, ws + by_post
            pre_ptr = ws + np.searchsorted(pl.pi[by_pre], np.arange(pl.n_pre + 1))
            post_ptr = ws + np.searchsorted(pl.qi[by_post], np.arange(pl.n_post + 1))
            pptr += [pre_ptr, post_ptr]
            row = dict(
                pre_off=pl.pre_off,
                post_off=pl.post_off,
                n_pre=pl.n_pre,
                n_post=pl.n_post,
                x_start=xs,
                y_start=ys,
                syn_lo=ws,
                syn_hi=we,
                pre_ptr=n_ptr,
                post_ptr=n_ptr + pl.n_pre + 1,
                a_plus=s.a_plus,
                a_minus=s.a_minus,
                kx=one - s.d_pre,
                ky=one - s.d_post,
                bump_pre=s.bump_pre,
                bump_post=s.bump_post,
                shift=s.shift,
                w_min=s.w_min,
                w_max=s.w_max,
                stochastic=int(s.stochastic_rounding),
                weight_exp=pl.proj.weight_exp,
            )
            table[r] = [row[c] for c in k.PLASTIC_COLUMNS]
            n_ptr += pl.n_pre + pl.n_post + 2
        self._plastic_args = (
            table,
            self._px,
            self._py,
            self._plfsr,
            self._pw,
            psyn,
            _cat(pptr),
            porder,
        )

    def _advance(
        self,
        steps: int,
        out_ids: np.ndarray,
        out_pos: int,
        counts: np.ndarray,
        count_base: int,
        probe: np.ndarray,
        probe_idx: np.ndarray,
        probe_out: np.ndarray,
    ) -> tuple[int, int]:
        """Run up to ``steps`` steps in the kernel (within one block of source spikes)."""
        k = self._kernels
        assert k is not None
        t = self.t
        base = self._src.window(t)
        steps = min(steps, self._src.t1 - t)
        args = (
            t,
            steps,
            self.ring,
            self.u,
            self.v,
            self.ref,
            self._neuron,
            self._upd,
            self._upd_ptr,
            k.CONSTS,
            self._src.ptr,
            self._src.ids,
            base,
            self._syn_ptr,
            self._syn_off,
            self.syn_val,
            *self._plastic_args,
            self._spiked,
            out_ids,
            out_pos,
            counts,
            count_base,
            probe,
            probe_idx,
            probe_out,
        )
        if self.threads == 1:
            done, pos = k.advance(*args)
        else:
            import numba

            before = numba.get_num_threads()
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
            try:
                done, pos = k.advance_parallel(*args, self.syn_count, self.parallel_min_work)
            finally:
                numba.set_num_threads(before)
        self.t += done
        return done, pos

    def step(self) -> np.ndarray:
        """Advance one step; return the global ids that spiked, in increasing order."""
        if self._kernels is None:
            return super().step()
        _, pos = self._advance(
            1,
            self._step_ids,
            0,
            self._step_count,
            0,
            self._no_probe,
            self._no_probe_idx,
            self._no_probe_out,
        )
        return self._step_ids[:pos].copy()

    def _run_chunk(self, steps: int, log: _SpikeLog, t_run: int, probes: list[_ProbeRecord]) -> int:
        if self._kernels is None:
            return super()._run_chunk(steps, log, t_run, probes)
        t = self.t
        if probes:
            gidx = [r.gidx for r in probes]
            assert all(g is not None for g in gidx)
            width = sum(g.size for g in gidx)
            steps = min(steps, max(1, PROBE_BUFFER // max(width, 1)))
            bounds = np.cumsum([0] + [g.size for g in gidx])
            table = np.array(
                [[bounds[k], bounds[k + 1], r.probe.every] for k, r in enumerate(probes)],
                dtype=np.int64,
            )
            var = [
                np.full(g.size, int(r.probe.variable == "v"))
                for g, r in zip(gidx, probes, strict=True)
            ]
            idx = np.ascontiguousarray(np.stack([_cat(gidx), _cat(var)]))
            out = np.empty((steps, width), dtype=np.int64)
        else:
            table, idx, out = self._no_probe, self._no_probe_idx, self._no_probe_out
        log.reserve(self.n)
        done, log.pos = self._advance(
            steps, log.ids, log.pos, log.counts, t - t_run, table, idx, out
        )
        for k, rec in enumerate(probes):
            every = rec.probe.every
            rows = np.flatnonzero((np.arange(t, t + done) % every) == 0)
            if rows.size:
                rec.steps.extend((t + rows).tolist())
                rec.blocks.append(out[rows, table[k, 0] : table[k, 1]])
        return done
