"""A float64 reference of the same equations, without quantization.

It runs the network of the golden model with real arithmetic: exact exponential decays for
parameters given in physical units, real weights as written (before mantissa rounding), no
truncation, no wrap of ``u``, no clip of ``v`` and no saturation of the dendritic sum.
Comparing it with :class:`~spikefab.sim.golden.GoldenModel` shows what quantization costs.

Per population, in its own units (``RealLIF``)::

    u[t] = alpha * u[t-1] + sum of weights arriving at t
    v[t] = beta * v[t-1] + u[t] + bias          (held during the refractory period)
    spike when v[t] > theta; then v = 0 (or v -= theta)

STDP uses real traces ``x = x * exp(-dt/tau)`` (or ``1 - d/4096`` when the decay was given
in fixed point) and real weight changes ``(A+ x post - A- y pre) / 2**shift``.
"""

from __future__ import annotations

import math

import numpy as np
from spikefab.hdl import params as P
from spikefab.sim.golden import StepModel

__all__ = ["FloatReference"]


class FloatReference(StepModel):
    """Run a network in float64 with the unquantized parameters."""

    backend = "float"
    dtype = np.float64

    def _synapse_values(self) -> np.ndarray:
        vals = [pr.weight_real for pr in self.net.projections]
        return np.concatenate(vals).astype(np.float64) if vals else np.zeros(0, np.float64)

    def _reset_state(self) -> None:
        n = self.n
        self.u = np.zeros(n)
        self.v = np.zeros(n)
        self.ref = np.zeros(n, dtype=np.int64)
        self.alpha = np.zeros(n)
        self.beta = np.zeros(n)
        self.theta = np.full(n, np.inf)
        self.bias = np.zeros(n)
        self.refractory = np.zeros(n, dtype=np.int64)
        self.subtract = np.zeros(n, dtype=bool)
        for p in self.net.populations.values():
            if p.real is None:
                continue
            sl = slice(self.offset[p.name], self.offset[p.name] + p.size)
            r = p.real
            if p.v0_real is not None:
                self.v[sl] = p.v0_real
            self.alpha[sl], self.beta[sl], self.theta[sl] = r.alpha, r.beta, r.theta
            self.bias[sl], self.refractory[sl], self.subtract[sl] = r.bias, r.refractory, r.subtract

    def _update(self, acc: np.ndarray) -> np.ndarray:
        self.u = self.alpha * self.u + acc
        refr = self.ref > 0
        v_int = self.beta * self.v + self.u + self.bias
        spiked = ~refr & (v_int > self.theta) & self.is_lif
        v_reset = np.where(self.subtract, v_int - self.theta, 0.0)
        self.v = np.where(refr, self.v, np.where(spiked, v_reset, v_int))
        self.ref = np.where(refr, self.ref - 1, np.where(spiked, self.refractory, 0))
        return spiked

    def state(self, variable: str) -> np.ndarray:
        return {"u": self.u, "v": self.v}[variable]

    def _init_learning(self) -> None:
        one = 1 << P.DECAY_SHIFT
        dt = self.net.dt_ms
        for pl in self.plastic:
            s = pl.stdp
            pl.w = pl.proj.weight.astype(np.float64)
            pl.x = np.zeros(pl.n_pre)
            pl.y = np.zeros(pl.n_post)
            pl.fx = math.exp(-dt / s.tau_pre_ms) if s.tau_pre_ms else 1 - s.d_pre / one
            pl.fy = math.exp(-dt / s.tau_post_ms) if s.tau_post_ms else 1 - s.d_post / one

    def _learn(self, spiked: np.ndarray) -> None:
        for pl in self.plastic:
            s = pl.stdp
            pre_sp = spiked[pl.pre_off : pl.pre_off + pl.n_pre]
            post_sp = spiked[pl.post_off : pl.post_off + pl.n_post]
            pl.x *= pl.fx
            pl.y *= pl.fy
            pi, qi = pl.proj.pre_idx, pl.proj.post_idx
            act = np.flatnonzero(pre_sp[pi] | post_sp[qi])
            if act.size:
                num = np.where(post_sp[qi[act]], s.a_plus * pl.x[pi[act]], 0.0) - np.where(
                    pre_sp[pi[act]], s.a_minus * pl.y[qi[act]], 0.0
                )
                w = np.clip(pl.w[act] + num / (1 << s.shift), s.w_min, s.w_max)
                pl.w[act] = w
                self.syn_val[pl.gsyn[act]] = w * pl.proj.weight_unit
            pl.x = np.minimum(pl.x + np.where(pre_sp, s.bump_pre, 0), P.TRACE_MAX)
            pl.y = np.minimum(pl.y + np.where(post_sp, s.bump_post, 0), P.TRACE_MAX)

    def weights(self, name: str) -> np.ndarray:
        for pl in self.plastic:
            if pl.proj.name == name:
                return pl.w.copy()
        return self.net.projection(name).weight.astype(np.float64)
