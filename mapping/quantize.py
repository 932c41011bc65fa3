"""Quantization of physical-unit parameters into the contract's fixed point.

The rules are those of ``docs/network-format.md`` ("Physical units"): a population's voltages
are scaled so that its threshold becomes ``vth = 4096`` (``v_threshold * scale = 4096 << 6``);
time constants become decay constants by ``d = round(4096 * (1 - exp(-dt / tau)))`` (less the
contract's offset for ``du``); weights and the bias get the smallest exponent whose mantissa
fits. Every rounding is recorded as a :class:`Rounding` so that users see what it cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from spikefab.hdl import params as P

#: The fixed-point threshold a physical ``v_threshold`` maps to.
PHYSICAL_VTH = 1 << 12


class QuantizationError(ValueError):
    """A physical value has no fixed-point representation."""


@dataclass(frozen=True)
class Rounding:
    """One quantization step: what was given, what was chosen, and what that means."""

    where: str
    given: str
    chosen: str
    effective: str
    rel_error: float

    def __str__(self) -> str:
        return (
            f"{self.where} {self.given} -> {self.chosen} "
            f"(effective {self.effective}, error {self.rel_error:+.2%})"
        )


def _g(x: float) -> str:
    return f"{x:.6g}"


def decay_from_tau(
    tau_ms: float | None, dt_ms: float, offset: int, where: str, field: str = "d"
) -> tuple[int, Rounding]:
    """Return the decay constant whose per-step factor best matches ``exp(-dt/tau)``.

    ``tau_ms`` of ``None`` (or infinity) means no decay; ``0`` means the value does not
    persist from one step to the next (the largest decay the field holds).
    """
    if tau_ms is None or math.isinf(tau_ms):
        d_eff = 0
    elif tau_ms < 0 or math.isnan(tau_ms):
        raise QuantizationError(f"{where} must be >= 0 ms, not {tau_ms!r}")
    elif tau_ms == 0:
        d_eff = 1 << P.DECAY_SHIFT
    else:
        d_eff = round((1 << P.DECAY_SHIFT) * -math.expm1(-dt_ms / tau_ms))
    d = d_eff - offset
    if d < 0:
        longest = -dt_ms / math.log1p(-0.5 / (1 << P.DECAY_SHIFT))
        raise QuantizationError(
            f"{where} {tau_ms} ms at dt_ms {dt_ms} decays by less than the smallest step the "
            f"{P.DECAY_BITS}-bit decay constant holds; accepted: up to about {longest:.0f} ms"
        )
    if d > P.DECAY_MAX:
        shortest = -dt_ms / math.log((0.5) / (1 << P.DECAY_SHIFT))
        if offset == 0:
            raise QuantizationError(
                f"{where} {tau_ms} ms at dt_ms {dt_ms} is shorter than the decay constant "
                f"holds; accepted: at least about {shortest:.3g} ms"
            )
        d = P.DECAY_MAX
    factor = 1 - (d + offset) / (1 << P.DECAY_SHIFT)
    if tau_ms is None or math.isinf(tau_ms):
        eff, rel = "no decay", 0.0
    elif factor >= 1:
        eff, rel = "no decay", math.inf
    elif factor <= 0:
        eff, rel = "0 ms", 0.0 if tau_ms == 0 else -1.0
    else:
        tau_eff = -dt_ms / math.log(factor)
        eff = f"{_g(tau_eff)} ms"
        rel = 0.0 if tau_ms == 0 else tau_eff / tau_ms - 1
    return d, Rounding(where, f"{tau_ms} at dt_ms {dt_ms}", f"{field} {d}", eff, rel)


def mantissa_exponent(
    value: float, mant_bits: int, exp_max: int, where: str
) -> tuple[int, int, Rounding]:
    """Split ``value`` into ``mant << exp`` with the smallest exponent whose mantissa fits."""
    lo, hi = P.signed_range(mant_bits)
    for e in range(exp_max + 1):
        m = round(value / (1 << e))
        if lo <= m <= hi:
            got = m << e
            rel = 0.0 if value == 0 else got / value - 1
            return m, e, Rounding(where, _g(value), f"{m} << {e}", str(got), rel)
    raise QuantizationError(
        f"{where} is {_g(value)} in fixed point, beyond the largest {mant_bits}-bit mantissa "
        f"<< {exp_max} = {hi << exp_max}"
    )


def quantize_weights(
    weights: np.ndarray, unit: float, weight_exp: int | None, where: str
) -> tuple[np.ndarray, int, Rounding]:
    """Quantize real weights into 8-bit mantissas with one exponent.

    ``unit`` is the fixed-point input ``a`` (contract 2.2) per unit of weight. With
    ``weight_exp`` of ``None`` the smallest exponent that fits the largest weight is chosen.
    """
    a = np.asarray(weights, dtype=np.float64) * unit
    biggest = float(np.max(np.abs(a))) if a.size else 0.0
    if weight_exp is None:
        for e in range(P.WEIGHT_EXP_MAX + 1):
            m = np.rint(a / (1 << e))
            if m.size == 0 or (m.min() >= P.WEIGHT_MIN and m.max() <= P.WEIGHT_MAX):
                weight_exp = e
                break
        else:
            raise QuantizationError(
                f"{where}: the largest weight is {_g(biggest)} in fixed-point input units, beyond "
                f"{P.WEIGHT_MAX} << {P.WEIGHT_EXP_MAX} = {P.WEIGHT_MAX << P.WEIGHT_EXP_MAX}; "
                "lower the weights or raise the post-synaptic v_threshold"
            )
    m = np.rint(a / (1 << weight_exp)).astype(np.int64)
    if m.size and (m.min() < P.WEIGHT_MIN or m.max() > P.WEIGHT_MAX):
        raise QuantizationError(
            f"{where}: with weight_exp {weight_exp} the weights need mantissas from {m.min()} to "
            f"{m.max()}; accepted {P.WEIGHT_MIN}..{P.WEIGHT_MAX}; raise weight_exp or leave it out"
        )
    got = m.astype(np.float64) * (1 << weight_exp)
    nz = a != 0
    rel = float(np.max(np.abs(got[nz] / a[nz] - 1))) if nz.any() else 0.0
    zeroed = int(np.count_nonzero(nz & (m == 0)))
    eff = f"step {_g((1 << weight_exp) / unit)}"
    if zeroed:
        eff += f", {zeroed} nonzero weights round to 0"
    return (
        m,
        weight_exp,
        Rounding(where, f"max |w| {_g(biggest / unit)}", f"weight_exp {weight_exp}", eff, rel),
    )
