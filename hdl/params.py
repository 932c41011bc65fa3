"""Bit widths and fixed constants of the neuron arithmetic (``docs/contract.md``, section 2).

Every number here is written once; the golden model (``sim/``), the mapper and the gateware
import it. Changing one of them is a contract change and bumps :data:`CONTRACT_VERSION`.
"""

CONTRACT_VERSION = 1

#: Width of the synaptic current ``u`` and membrane voltage ``v`` (two's complement).
UV_BITS = 24
#: Decay constants ``du``, ``dv`` (and the STDP trace decays) are unsigned with this width.
DECAY_BITS = 12
#: ``decay(x, d) = sign(x) * ((|x| * (2**DECAY_SHIFT - d)) >> DECAY_SHIFT)``.
DECAY_SHIFT = 12
#: Added to ``du`` before use, so that ``du = 4095`` clears ``u`` every step
#: (Loihi's ``ds_offset``).
DU_OFFSET = 1
#: Added to ``dv`` before use (Loihi's ``dm_offset``).
DV_OFFSET = 0
#: The saturated dendritic sum ``a`` is shifted left by this much before it is added to ``u``.
ACT_SHIFT = 6
#: The threshold mantissa ``vth`` is shifted left by this much before the comparison.
VTH_SHIFT = 6
#: ``vth`` is unsigned with this width.
VTH_BITS = 17
#: Bias mantissa, two's complement.
BIAS_MANT_BITS = 13
#: Bias exponent, unsigned: ``bias = bias_mant << bias_exp``.
BIAS_EXP_BITS = 3
#: Refractory period counter, unsigned (0 disables it).
REFRACTORY_BITS = 4
#: The step's dendritic sum is saturated to this signed width.
INPUT_BITS = 16
#: Synaptic weight mantissa, two's complement.
WEIGHT_BITS = 8
#: Per-projection weight exponent, unsigned: a synaptic event adds ``w << weight_exp``.
WEIGHT_EXP_BITS = 3
#: Synaptic delays are ``1 .. D`` steps; ``D`` is a hardware parameter up to this value.
MAX_DELAY = 64

# STDP (contract section 5)
#: Pre- and post-synaptic traces are unsigned with this width and saturate on a bump.
TRACE_BITS = 16
#: ``A+`` and ``A-`` are two's complement with this width.
STDP_A_BITS = 8
#: The learning shift is unsigned, ``0 .. 2**STDP_SHIFT_BITS - 1``.
STDP_SHIFT_BITS = 4
#: Galois LFSR of the stochastic rounding: x^16 + x^14 + x^13 + x^11 + 1.
LFSR_BITS = 16
LFSR_TAPS = 0xB400
#: The LFSR advances this many shifts at every learning phase.
LFSR_SHIFTS_PER_STEP = 16
#: Seeding of the LFSR of post-synaptic neuron ``j``: ``(seed + LFSR_SEED_STRIDE*(j+1)) mod 2**16``.
LFSR_SEED_STRIDE = 0x9E37
#: A seed that would be zero (the LFSR's dead state) is replaced by this.
LFSR_ZERO_SEED = 0xACE1


def signed_range(bits: int) -> tuple[int, int]:
    """Return the inclusive range of a two's complement field of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def unsigned_range(bits: int) -> tuple[int, int]:
    """Return the inclusive range of an unsigned field of ``bits`` bits."""
    return 0, (1 << bits) - 1


UV_MIN, UV_MAX = signed_range(UV_BITS)
#: ``v`` is clipped symmetrically, to ``[-(2**23 - 1), 2**23 - 1]``.
V_MIN, V_MAX = -((1 << (UV_BITS - 1)) - 1), (1 << (UV_BITS - 1)) - 1
INPUT_MIN, INPUT_MAX = signed_range(INPUT_BITS)
WEIGHT_MIN, WEIGHT_MAX = signed_range(WEIGHT_BITS)
BIAS_MANT_MIN, BIAS_MANT_MAX = signed_range(BIAS_MANT_BITS)
DECAY_MAX = unsigned_range(DECAY_BITS)[1]
VTH_MAX = unsigned_range(VTH_BITS)[1]
BIAS_EXP_MAX = unsigned_range(BIAS_EXP_BITS)[1]
WEIGHT_EXP_MAX = unsigned_range(WEIGHT_EXP_BITS)[1]
REFRACTORY_MAX = unsigned_range(REFRACTORY_BITS)[1]
TRACE_MAX = unsigned_range(TRACE_BITS)[1]
STDP_A_MIN, STDP_A_MAX = signed_range(STDP_A_BITS)
STDP_SHIFT_MAX = unsigned_range(STDP_SHIFT_BITS)[1]
