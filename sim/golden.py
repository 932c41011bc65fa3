"""The bit-exact golden model of a whole network (``docs/contract.md``, sections 2 to 5).

Each step is vectorized over neurons and synaptic events; there is no Python loop over
neurons or synapses. Phases of step ``t`` (contract 4.1):

1. input: every neuron takes the exact sum of the events due at ``t`` from its dendrite
   ring slot ``t mod D`` and the slot is cleared;
2. update: every LIF neuron is updated, giving the spikes of step ``t``; spike sources
   emit their spikes of step ``t``;
3. delivery: every spike of step ``t`` is fanned out along its synapses, adding
   ``w << weight_exp`` to slot ``(t + delay) mod D`` of the target;
4. learning: traces decay, plastic weights change, traces are bumped by the spikes of ``t``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from spikefab.hdl import params as P
from spikefab.mapping.network import Network, Projection, SourceStream
from spikefab.sim import arith
from spikefab.sim.results import ProbeTrace, RunResult

__all__ = ["GoldenModel", "expand_ranges"]


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Return the concatenation of ``arange(s, s + c)`` for every pair, without a loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - counts), counts)
    return shift + np.arange(total, dtype=np.int64)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


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


class StepModel:
    """What the golden model and the float reference share: layout, delivery and recording."""

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
        self.sources: list[tuple[int, SourceStream]] = [
            (self.offset[p.name], p.source.stream(p.size, net.dt_ms))
            for p in pops
            if p.source is not None
        ]
        # synapses sorted by global pre id (CSR)
        pre = [self.offset[pr.pre] + pr.pre_idx for pr in net.projections]
        post = [self.offset[pr.post] + pr.post_idx for pr in net.projections]
        delay = [pr.delay for pr in net.projections]
        g_pre, g_post, g_delay = _cat(pre), _cat(post), _cat(delay)
        self.order = np.argsort(g_pre, kind="stable")
        self.inverse = np.empty_like(self.order)
        self.inverse[self.order] = np.arange(self.order.size)
        self.syn_post = g_post[self.order]
        self.syn_delay = g_delay[self.order]
        self.syn_start = np.searchsorted(g_pre[self.order], np.arange(self.n))
        self.syn_count = np.diff(np.append(self.syn_start, self.order.size))
        self.syn_val = self._synapse_values()[self.order]
        self.plastic: list[_Plastic] = []
        base = 0
        for pr in net.projections:
            if pr.stdp is not None:
                gsyn = self.inverse[base : base + pr.n_synapses]
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
            base += pr.n_synapses
        self.ring = np.zeros((self.D, self.n), dtype=self.dtype)
        self.t = 0
        self._reset_state()
        self._init_learning()

    # hooks ---------------------------------------------------------------------------------
    def _synapse_values(self) -> np.ndarray:
        raise NotImplementedError

    def _reset_state(self) -> None:
        raise NotImplementedError

    def _update(self, acc: np.ndarray) -> np.ndarray:
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
        """Advance one step; return the global ids that spiked."""
        t = self.t
        slot = t % self.D
        acc = self.ring[slot].copy()
        self.ring[slot] = 0
        spiked = self._update(acc)
        for off, stream in self.sources:
            _, neurons = stream.next(1)
            spiked[off + neurons] = True
        ids = np.flatnonzero(spiked)
        if ids.size:
            syn = expand_ranges(self.syn_start[ids], self.syn_count[ids])
            if syn.size:
                where = ((t + self.syn_delay[syn]) % self.D) * self.n + self.syn_post[syn]
                np.add.at(self.ring.reshape(-1), where, self.syn_val[syn])
        if self.plastic:
            self._learn(spiked)
        self.t += 1
        return ids

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
        starts = np.array([self.offset[p.name] for p in pops])
        recorded = np.ones(self.n, dtype=bool)
        spike_probes = [pb for pb in net.probes if pb.variable == "spikes"]
        if spike_probes:
            recorded[:] = False
            for pb in spike_probes:
                off = self.offset[pb.target]
                idx = (
                    np.arange(net.populations[pb.target].size) if pb.neurons is None else pb.neurons
                )
                recorded[off + idx] = True
        samples: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        state_probes = [pb for pb in net.probes if pb.variable != "spikes"]
        all_steps, all_ids = [], []
        t0 = self.t
        chunk = max(1, min(1000, steps // 100 or 1))
        done = 0
        for k in range(steps):
            t = self.t
            ids = self.step()
            ids = ids[recorded[ids]]
            all_ids.append(ids)
            all_steps.append(np.full(ids.size, t, dtype=np.int64))
            for pb in state_probes:
                if t % pb.every:
                    continue
                if pb.variable == "weights":
                    vals = self.weights(pb.target)
                else:
                    vals = self.state(pb.variable)[
                        self.offset[pb.target] : self.offset[pb.target]
                        + net.populations[pb.target].size
                    ]
                if pb.neurons is not None:
                    vals = vals[pb.neurons]
                ts, vs = samples.setdefault(pb.key, ([], []))
                ts.append(t)
                vs.append(np.array(vals, copy=True))
            if progress is not None and (k + 1) % chunk == 0:
                progress(chunk)
                done += chunk
        if progress is not None and steps - done:
            progress(steps - done)
        ids = np.concatenate(all_ids) if all_ids else np.zeros(0, np.int64)
        step_arr = np.concatenate(all_steps) if all_steps else np.zeros(0, np.int64)
        pop = np.searchsorted(starts, ids, side="right") - 1
        neuron = ids - starts[pop] if ids.size else ids
        probes = {}
        for pb in state_probes:
            ts, vs = samples.get(pb.key, ([], []))
            size = (
                net.projection(pb.target).n_synapses
                if pb.variable == "weights"
                else net.populations[pb.target].size
            )
            index = np.arange(size) if pb.neurons is None else pb.neurons
            values = np.stack(vs) if vs else np.zeros((0, index.size), dtype=self.dtype)
            tr = ProbeTrace(pb.target, pb.variable, np.asarray(ts, dtype=np.int64), index, values)
            probes[tr.key] = tr
        weights = {pl.proj.name: self.weights(pl.proj.name) for pl in self.plastic}
        del t0
        return RunResult(
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

    Examples
    --------
    >>> from spikefab.mapping.loader import load
    >>> result = GoldenModel(load("examples/synfire.yaml")).run(100)
    """

    backend = "golden"
    dtype = np.int64

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
            for k, col in cols.items():
                col[sl] = getattr(p.neuron, k)
            self.subtract[sl] = p.neuron.reset == "subtract"
        self.params = cols

    def _update(self, acc: np.ndarray) -> np.ndarray:
        c = self.params
        u, v, ref, spiked = arith.lif_update(
            self.u,
            self.v,
            self.ref,
            acc,
            c["du"],
            c["dv"],
            c["vth"],
            c["bias_mant"],
            c["bias_exp"],
            c["refractory"],
            self.subtract,
        )
        lif = self.is_lif
        self.u = np.where(lif, u, 0)
        self.v = np.where(lif, v, 0)
        self.ref = np.where(lif, ref, 0)
        return spiked & lif

    def state(self, variable: str) -> np.ndarray:
        return {"u": self.u, "v": self.v}[variable]

    def _init_learning(self) -> None:
        for pl in self.plastic:
            pl.w = pl.proj.weight.astype(np.int64).copy()
            pl.x = np.zeros(pl.n_pre, dtype=np.int64)
            pl.y = np.zeros(pl.n_post, dtype=np.int64)
            pl.lfsr = arith.lfsr_seed(pl.stdp.seed, np.arange(pl.n_post))

    def _learn(self, spiked: np.ndarray) -> None:
        for pl in self.plastic:
            s = pl.stdp
            pre_sp = spiked[pl.pre_off : pl.pre_off + pl.n_pre]
            post_sp = spiked[pl.post_off : pl.post_off + pl.n_post]
            pl.x = arith.decay(pl.x, s.d_pre)
            pl.y = arith.decay(pl.y, s.d_post)
            if s.stochastic_rounding:
                pl.lfsr = arith.lfsr_advance(pl.lfsr)
            if pre_sp.any() or post_sp.any():
                pi, qi = pl.proj.pre_idx, pl.proj.post_idx
                act = np.flatnonzero(pre_sp[pi] | post_sp[qi])
                if s.stochastic_rounding:
                    rnd = pl.lfsr[qi[act]] & ((1 << s.shift) - 1)
                else:
                    rnd = (1 << s.shift) >> 1
                dw = arith.stdp_dw(
                    pl.x[pi[act]],
                    pl.y[qi[act]],
                    pre_sp[pi[act]],
                    post_sp[qi[act]],
                    s.a_plus,
                    s.a_minus,
                    s.shift,
                    rnd,
                )
                w = np.clip(pl.w[act] + dw, s.w_min, s.w_max)
                pl.w[act] = w
                self.syn_val[pl.gsyn[act]] = w << pl.proj.weight_exp
            pl.x = np.minimum(pl.x + np.where(pre_sp, s.bump_pre, 0), P.TRACE_MAX)
            pl.y = np.minimum(pl.y + np.where(post_sp, s.bump_post, 0), P.TRACE_MAX)

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
