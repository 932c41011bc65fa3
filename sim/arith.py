"""The fixed-point arithmetic of the contract as plain functions over integer arrays.

Every function here is vectorized over neurons (or synapses) and exact: values are held in
``int64`` and each width named in :mod:`spikefab.hdl.params` is applied where the contract says.
Section numbers refer to ``docs/contract.md``.
"""

from __future__ import annotations

import numpy as np
from spikefab.hdl import params as P

__all__ = [
    "decay",
    "lfsr_advance",
    "lfsr_seed",
    "lif_update",
    "saturate",
    "stdp_dw",
    "stdp_rnd",
    "stdp_weight",
    "trace_bump",
    "wrap",
]


def decay(x: np.ndarray, d: np.ndarray | int) -> np.ndarray:
    """Decay ``x`` by ``d / 4096``, truncating toward zero (contract 2.1).

    ``decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)``
    """
    x = np.asarray(x, dtype=np.int64)
    mag = (np.abs(x) * ((1 << P.DECAY_SHIFT) - np.asarray(d, dtype=np.int64))) >> P.DECAY_SHIFT
    return np.where(x < 0, -mag, mag)


def wrap(x: np.ndarray, bits: int = P.UV_BITS) -> np.ndarray:
    """Wrap ``x`` to a two's complement field of ``bits`` bits."""
    x = np.asarray(x, dtype=np.int64)
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def saturate(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clamp ``x`` to ``[lo, hi]``."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def lif_update(
    u: np.ndarray,
    v: np.ndarray,
    ref: np.ndarray,
    acc: np.ndarray,
    du: np.ndarray,
    dv: np.ndarray,
    vth: np.ndarray,
    bias_mant: np.ndarray,
    bias_exp: np.ndarray,
    refractory: np.ndarray,
    subtract: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Update LIF neurons for one step (contract 2.2).

    Parameters
    ----------
    u, v, ref
        State before the step: 24-bit current and voltage, refractory counter.
    acc
        The step's exact dendritic sum of ``w << weight_exp``, before saturation.
    du, dv, vth, bias_mant, bias_exp, refractory
        Per-neuron parameters in fixed point.
    subtract
        Per-neuron reset mode, true for reset by subtraction.

    Returns
    -------
    u, v, ref, spiked
        The state after the step and a boolean array of the neurons that spiked.
    """
    a = saturate(acc, P.INPUT_MIN, P.INPUT_MAX)
    u = wrap(decay(u, du + P.DU_OFFSET) + (a << P.ACT_SHIFT))
    bias = np.asarray(bias_mant, dtype=np.int64) << np.asarray(bias_exp, dtype=np.int64)
    v_int = saturate(decay(v, dv + P.DV_OFFSET) + u + bias, P.V_MIN, P.V_MAX)
    refractory_now = ref > 0
    theta = np.asarray(vth, dtype=np.int64) << P.VTH_SHIFT
    spiked = ~refractory_now & (v_int > theta)
    v_reset = np.where(subtract, v_int - theta, 0)
    v = np.where(refractory_now, v, np.where(spiked, v_reset, v_int))
    ref = np.where(refractory_now, ref - 1, np.where(spiked, refractory, 0))
    return u, v, ref.astype(np.int64), spiked


def stdp_dw(
    x_pre: np.ndarray,
    y_post: np.ndarray,
    pre_spiked: np.ndarray,
    post_spiked: np.ndarray,
    a_plus: int,
    a_minus: int,
    shift: int,
    rnd: np.ndarray | int,
) -> np.ndarray:
    """Return the weight change of plastic synapses for one learning phase (contract 5.3).

    ``dw = (A+ * x_pre * post - A- * y_post * pre + rnd) >> shift`` with an arithmetic shift
    (rounding toward minus infinity); ``rnd`` is ``2**(shift-1)`` for rounding to nearest or
    the low ``shift`` bits of the LFSR for stochastic rounding.
    """
    num = np.where(post_spiked, a_plus * np.asarray(x_pre, dtype=np.int64), 0) - np.where(
        pre_spiked, a_minus * np.asarray(y_post, dtype=np.int64), 0
    )
    return (num + rnd) >> shift


def stdp_rnd(shift: int, stochastic: bool, lfsr: np.ndarray | int) -> np.ndarray | int:
    """Return the rounding term of :func:`stdp_dw` (contract 5.3).

    The low ``shift`` bits of the post-synaptic neuron's LFSR for stochastic rounding, else
    ``2**(shift-1)`` (rounding to nearest; 0 when ``shift`` is 0).
    """
    if stochastic:
        return np.asarray(lfsr, dtype=np.int64) & ((1 << shift) - 1)
    return (1 << shift) >> 1


def stdp_weight(w: np.ndarray, dw: np.ndarray, w_min: int, w_max: int) -> np.ndarray:
    """Return the weights ``w + dw`` clamped to ``[w_min, w_max]`` (contract 5.2)."""
    return np.clip(np.asarray(w, dtype=np.int64) + dw, w_min, w_max)


def trace_bump(decayed: np.ndarray, bump: int, spiked: np.ndarray) -> np.ndarray:
    """Return a decayed trace bumped by ``bump`` where ``spiked``, saturating (contract 5.2)."""
    return np.minimum(np.asarray(decayed, dtype=np.int64) + bump * spiked, P.TRACE_MAX)


def lfsr_seed(seed: int, j: np.ndarray) -> np.ndarray:
    """Return the initial LFSR state of post-synaptic neurons ``j`` (contract 5.4)."""
    s = (int(seed) + P.LFSR_SEED_STRIDE * (np.asarray(j, dtype=np.int64) + 1)) & (
        (1 << P.LFSR_BITS) - 1
    )
    return np.where(s == 0, P.LFSR_ZERO_SEED, s)


def lfsr_advance(state: np.ndarray, shifts: int = P.LFSR_SHIFTS_PER_STEP) -> np.ndarray:
    """Advance Galois LFSRs by ``shifts`` shifts (contract 5.4)."""
    s = np.asarray(state, dtype=np.int64)
    for _ in range(shifts):
        lsb = s & 1
        s = (s >> 1) ^ (lsb * P.LFSR_TAPS)
    return s
