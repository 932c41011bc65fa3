"""The LIF update datapath of the neuron core (``docs/contract.md``, section 2).

One neuron enters per clock with its state, parameters and the step's dendritic sum; seven
clocks later it leaves with its new state and whether it spiked. The datapath holds no
state of its own between neurons: the core reads the words from its memories and writes the
result back (section 6.3, the update).
"""

from __future__ import annotations

from amaranth.hdl import Cat, EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from spikefab.hdl import params as P
from spikefab.hdl.layouts import NEURON_PARAMS, NEURON_STATE

__all__ = ["LIF_LATENCY", "LIFDatapath", "lif_input_layout", "lif_output_layout"]

#: Clocks from a neuron taken on ``i_neuron`` to its result on ``o_neuron`` (with
#: ``o_neuron`` ready).
LIF_LATENCY = 7


def lif_input_layout(acc_bits: int, tag_bits: int) -> data.StructLayout:
    """A neuron to update: its state and parameters, the step's dendritic sum ``acc`` (exact,
    ``acc_bits`` wide, before saturation), and a ``tag`` that travels with it."""
    return data.StructLayout(
        {
            "state": NEURON_STATE,
            "params": NEURON_PARAMS,
            "acc": signed(acc_bits),
            "tag": unsigned(tag_bits),
        }
    )


def lif_output_layout(tag_bits: int) -> data.StructLayout:
    """An updated neuron: its new state, whether it spiked, and the tag it came with."""
    return data.StructLayout(
        {"state": NEURON_STATE, "fire": unsigned(1), "tag": unsigned(tag_bits)}
    )


def _clip(m: Module, x, lo: int, hi: int, shape) -> Signal:  # type: ignore[no-untyped-def]
    out = Signal(shape)
    # x > hi as x >= hi + 1: an ordering test is a carry chain alone, "greater than" would add
    # a zero test of the difference
    m.d.comb += out.eq(Mux(x >= hi + 1, hi, Mux(x < lo, lo, x)))
    return out


class LIFDatapath(wiring.Component):
    """The LIF update of one neuron per clock, bit-exact with contract 2.2.

    With ``S`` the step's dendritic sum ``acc``, ``a = clip(S, -2^15, 2^15 - 1)``::

        u'   = wrap24(decay(u, du + 1) + (a << 6))
        vi   = clip(decay(v, dv) + u' + (bias_mant << bias_exp), -(2^23 - 1), 2^23 - 1)
        ref > 0:            v' = v,                          ref' = ref - 1,     no spike
        vi > vth << 6:      v' = vi - (vth << 6) or 0 (reset_subtract), ref' = refractory, spike
        otherwise:          v' = vi,                         ref' = 0

    where ``decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)`` truncates toward zero;
    ``u``, ``v`` are 24-bit signed, ``du``, ``dv`` 12-bit, ``vth`` 17-bit unsigned,
    ``bias_mant`` 13-bit signed, ``bias_exp`` 3-bit, ``ref`` and ``refractory`` 4-bit.

    Parameters
    ----------
    acc_bits
        Width of the dendritic sum (``CoreConfig.acc_bits``, at least 17).
    tag_bits
        Width of the tag that travels with each neuron (the core's neuron index).

    Attributes
    ----------
    i_neuron : In(stream.Signature(lif_input_layout(acc_bits, tag_bits)))
        Neurons to update.
    o_neuron : Out(stream.Signature(lif_output_layout(tag_bits)))
        Updated neurons, in order, :data:`LIF_LATENCY` clocks later. ``o_neuron.payload.fire``
        is only ever high with ``o_neuron.valid``.
    busy : Out(1)
        A neuron is in the datapath (``o_neuron.valid`` included).

    The pipeline advances while ``o_neuron`` is ready or holds nothing (``i_neuron.ready``);
    a core that keeps ``o_neuron.ready`` high has no enable on any of its registers.
    """

    def __init__(self, acc_bits: int, tag_bits: int):
        if not isinstance(acc_bits, int) or acc_bits < P.INPUT_BITS + 1:
            raise ValueError(f"acc_bits must be an integer of at least 17, not {acc_bits!r}")
        if not isinstance(tag_bits, int) or tag_bits < 1:
            raise ValueError(f"tag_bits must be a positive integer, not {tag_bits!r}")
        self._acc_bits, self._tag_bits = acc_bits, tag_bits
        super().__init__(
            {
                "i_neuron": In(stream.Signature(lif_input_layout(acc_bits, tag_bits))),
                "o_neuron": Out(stream.Signature(lif_output_layout(tag_bits))),
                "busy": Out(1),
            }
        )

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def tag_bits(self) -> int:
        return self._tag_bits

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        en = Signal()  # the pipeline advances
        m.d.comb += [en.eq(~self.o_neuron.valid | self.o_neuron.ready), self.i_neuron.ready.eq(en)]

        # the valid bits and tags of stages U2 .. U8 (U1 is the input)
        valid = {k: Signal(name=f"u{k}_valid") for k in range(2, 9)}
        tag = {k: Signal(self._tag_bits, name=f"u{k}_tag") for k in range(2, 9)}
        m.d.sync += [valid[2].eq(self.i_neuron.valid), tag[2].eq(self.i_neuron.payload.tag)]
        for k in range(3, 9):
            m.d.sync += [valid[k].eq(valid[k - 1]), tag[k].eq(tag[k - 1])]
        m.d.comb += [
            self.busy.eq(Cat(*valid.values()).any()),
            self.o_neuron.valid.eq(valid[8]),
            self.o_neuron.payload.tag.eq(tag[8]),
        ]

        # U1: registered memory words -> operands. The decay of x by f = 4096 - d is
        # sign(x) * ((|x| * f) >> 12) = ((x * f) >> 12) + (1 if x < 0 and x * f is not a
        # multiple of 4096), and with x = xh * 4096 + xl (xh = x >> 12 signed, xl = x mod
        # 4096), (x * f) >> 12 = xh * f + ((xl * f) >> 12) and x * f mod 4096 = xl * f mod
        # 4096: two products of 12 x 13 bits, each one DSP block. The operand registers of
        # the products are reset-less, as are the products, so that Yosys makes them the DSP
        # blocks' own input and pipeline registers.
        st, pr = self.i_neuron.payload.state, self.i_neuron.payload.params
        acc = self.i_neuron.payload.acc
        a1 = _clip(m, acc, P.INPUT_MIN, P.INPUT_MAX, signed(P.INPUT_BITS))
        one = 1 << P.DECAY_SHIFT
        xl_bits, xh_bits = P.DECAY_SHIFT, P.UV_BITS - P.DECAY_SHIFT
        u2_ul, u2_vl = Signal(xl_bits, reset_less=True), Signal(xl_bits, reset_less=True)
        u2_uh = Signal(signed(xh_bits), reset_less=True)
        u2_vh = Signal(signed(xh_bits), reset_less=True)
        u2_fu = Signal(P.DECAY_SHIFT + 1, reset_less=True)
        u2_fv = Signal(P.DECAY_SHIFT + 1, reset_less=True)
        u2_a = Signal(signed(P.INPUT_BITS))
        u2_uneg, u2_vneg = Signal(), Signal()
        u2_bias = Signal(signed(P.BIAS_MANT_BITS + P.BIAS_EXP_MAX))
        u2_v = Signal(signed(P.UV_BITS))
        u2_ref = Signal(P.REFRACTORY_BITS)
        u2_pr = Signal(NEURON_PARAMS)
        m.d.sync += [
            u2_ul.eq(st.u[:xl_bits]),
            u2_uh.eq(st.u[xl_bits:]),
            u2_vl.eq(st.v[:xl_bits]),
            u2_vh.eq(st.v[xl_bits:]),
            u2_fu.eq(one - P.DU_OFFSET - pr.du),
            u2_fv.eq(one - P.DV_OFFSET - pr.dv),
            u2_a.eq(a1),
            u2_uneg.eq(st.u < 0),
            u2_vneg.eq(st.v < 0),
            u2_bias.eq(pr.bias_mant << pr.bias_exp),
            u2_v.eq(st.v),
            u2_ref.eq(st.ref),
            u2_pr.eq(pr),
        ]
        # U2: the products xl * f (unsigned) and xh * f (signed), for u and v
        prod = max(xl_bits, xh_bits) + P.DECAY_SHIFT + 1
        u3_pul, u3_pvl = Signal(prod, reset_less=True), Signal(prod, reset_less=True)
        u3_puh = Signal(signed(prod), reset_less=True)
        u3_pvh = Signal(signed(prod), reset_less=True)
        u3_a, u3_uneg, u3_vneg = Signal.like(u2_a), Signal(), Signal()
        u3_bias, u3_v, u3_ref = Signal.like(u2_bias), Signal.like(u2_v), Signal.like(u2_ref)
        u3_pr = Signal(NEURON_PARAMS)
        m.d.sync += [
            u3_pul.eq(u2_ul * u2_fu),
            u3_puh.eq(u2_uh * u2_fu),
            u3_pvl.eq(u2_vl * u2_fv),
            u3_pvh.eq(u2_vh * u2_fv),
            u3_a.eq(u2_a),
            u3_uneg.eq(u2_uneg),
            u3_vneg.eq(u2_vneg),
            u3_bias.eq(u2_bias),
            u3_v.eq(u2_v),
            u3_ref.eq(u2_ref),
            u3_pr.eq(u2_pr),
        ]
        # U3: (x * f) >> 12, and the correction bit that truncates a negative x's decay
        # toward zero
        u4_du = Signal(signed(P.UV_BITS + 1))
        u4_dv = Signal(signed(P.UV_BITS + 1))
        u4_cu, u4_cv = Signal(), Signal()
        u4_a, u4_bias = Signal.like(u2_a), Signal.like(u2_bias)
        u4_v, u4_ref, u4_pr = Signal.like(u2_v), Signal.like(u2_ref), Signal(NEURON_PARAMS)
        m.d.sync += [
            u4_du.eq(u3_puh + (u3_pul >> P.DECAY_SHIFT)),
            u4_dv.eq(u3_pvh + (u3_pvl >> P.DECAY_SHIFT)),
            u4_cu.eq(u3_uneg & (u3_pul[: P.DECAY_SHIFT] != 0)),
            u4_cv.eq(u3_vneg & (u3_pvl[: P.DECAY_SHIFT] != 0)),
            u4_a.eq(u3_a),
            u4_bias.eq(u3_bias),
            u4_v.eq(u3_v),
            u4_ref.eq(u3_ref),
            u4_pr.eq(u3_pr),
        ]
        # U4: new u = decay(u) + (a << 6), wrapped to 24 bits; decay(v) + bias (the
        # correction bits are the adders' carry-in)
        u5_u = Signal(signed(P.UV_BITS))
        u5_vb = Signal(signed(P.UV_BITS + 3))
        u5_v, u5_ref, u5_pr = Signal.like(u2_v), Signal.like(u2_ref), Signal(NEURON_PARAMS)
        a6 = u4_a << P.ACT_SHIFT
        m.d.sync += [
            u5_u.eq(a6 + u4_du + u4_cu),  # truncation to 24 bits is the wrap
            u5_vb.eq(u4_bias + u4_dv + u4_cv),
            u5_v.eq(u4_v),
            u5_ref.eq(u4_ref),
            u5_pr.eq(u4_pr),
        ]
        # U5: the unclipped input to the threshold, vi_raw = v + bias + u
        u6_vi_raw = Signal(signed(P.UV_BITS + 4))
        u6_u, u6_v, u6_ref = Signal.like(u5_u), Signal.like(u5_v), Signal.like(u5_ref)
        u6_pr = Signal(NEURON_PARAMS)
        m.d.sync += [
            u6_vi_raw.eq(u5_vb + u5_u),
            u6_u.eq(u5_u),
            u6_v.eq(u5_v),
            u6_ref.eq(u5_ref),
            u6_pr.eq(u5_pr),
        ]
        # U6: the comparisons. theta = vth << 6 lies in 0 .. V_MAX, so the clip to V_MIN ..
        # V_MAX never changes vi > theta: the comparison and the reset by subtraction use
        # vi_raw, and run in parallel with the clip's comparisons. A "greater than" is written
        # as ">= 1 +" (see _clip); theta + 1 = theta | 1, as theta's low bits are zero.
        vi_raw = u6_vi_raw
        theta = Signal(unsigned(P.VTH_BITS + P.VTH_SHIFT))
        m.d.comb += theta.eq(u6_pr.vth << P.VTH_SHIFT)
        u7_over, u7_under, u7_above = Signal(), Signal(), Signal()
        u7_vi_raw = Signal.like(vi_raw)
        u7_sub = Signal(signed(P.UV_BITS + 1))  # vi_raw - theta
        u7_max_sub = Signal(signed(P.UV_BITS + 1))  # V_MAX - theta
        u7_u, u7_v, u7_ref = Signal.like(u6_u), Signal.like(u6_v), Signal.like(u6_ref)
        u7_pr = Signal(NEURON_PARAMS)
        m.d.sync += [
            u7_over.eq(vi_raw >= P.V_MAX + 1),
            u7_under.eq(vi_raw < P.V_MIN),
            u7_above.eq(vi_raw >= (theta | 1)),
            u7_vi_raw.eq(vi_raw),
            u7_sub.eq(vi_raw - theta),
            u7_max_sub.eq(P.V_MAX - theta),
            u7_u.eq(u6_u),
            u7_v.eq(u6_v),
            u7_ref.eq(u6_ref),
            u7_pr.eq(u6_pr),
        ]
        # U7: clip, threshold, reset, refractory
        vi = Signal(signed(P.UV_BITS))
        m.d.comb += vi.eq(Mux(u7_over, P.V_MAX, Mux(u7_under, P.V_MIN, u7_vi_raw)))
        refr = Signal()
        m.d.comb += refr.eq(u7_ref != 0)
        fire = Signal()
        m.d.comb += fire.eq(~refr & u7_above)
        vsub = Signal(signed(P.UV_BITS + 1))  # vi - theta when fire
        m.d.comb += vsub.eq(Mux(u7_over, u7_max_sub, u7_sub))
        u8_u = Signal(signed(P.UV_BITS))
        u8_v = Signal(signed(P.UV_BITS))
        u8_ref = Signal(P.REFRACTORY_BITS)
        u8_fire = Signal()
        with m.If(refr):
            m.d.sync += [u8_v.eq(u7_v), u8_ref.eq(u7_ref - 1)]
        with m.Elif(fire):
            m.d.sync += [
                u8_v.eq(Mux(u7_pr.reset_subtract, vsub, 0)),
                u8_ref.eq(u7_pr.refractory),
            ]
        with m.Else():
            m.d.sync += [u8_v.eq(vi), u8_ref.eq(0)]
        m.d.sync += [u8_u.eq(u7_u), u8_fire.eq(fire & valid[7])]
        # U8: the result (u8_fire: the neuron in U8 is valid and spikes)
        m.d.comb += [
            self.o_neuron.payload.state.u.eq(u8_u),
            self.o_neuron.payload.state.v.eq(u8_v),
            self.o_neuron.payload.state.ref.eq(u8_ref),
            self.o_neuron.payload.fire.eq(u8_fire),
        ]
        # every register holds while o_neuron is stalled (en is constant 1 in a core)
        return EnableInserter(en)(m)
