"""The STDP learning unit of a neuron core (``docs/contract.md``, sections 5 and 6.4).

A core built with ``CoreConfig(learning=True)`` holds one :class:`LearningUnit`. It owns the
trace memories and runs the learning phase of a step when the core starts it:

*Axon pass.* For each plastic axon ``a`` (``0 .. PLASTIC_AXONS - 1``) the unit reads the axon
row and the trace word ``x[a]``, decays ``x``, computes ``a_plus * x`` once for the axon and
writes back ``min(x + bump_pre, 65535)`` if the axon had an event in this step (clearing its
event flag). Then it visits every entry of the axon: it reads the entry and the target's
post-synaptic word, decays ``y``, computes ``num = a_plus * x * post - a_minus * y * pre +
rnd``, shifts it and writes the clamped weight back into the entry when ``pre`` or ``post``.

*Neuron pass.* For each neuron ``j`` (``0 .. LEARN_NEURONS - 1``) it writes back ``min(decay(y)
+ bump_post, 65535)`` (the bump only if ``j`` spiked) and the LFSR advanced by 16 shifts, the
state the next learning phase uses.

The stored traces are therefore the contract's traces after the learning phase, and a trace
is decayed when it is used: ``x`` once per axon, ``y`` at each entry and in the neuron pass,
always from the same stored value, so every use sees the contract's decayed trace.

The synapse bank has one port: entries are read on even cycles only, and the pipeline from
the read to the write of an entry is 11 cycles long, so every write falls on an odd cycle.
The axons' rows and traces are read by a pipeline of their own, one axon per cycle, ahead
of the entries, so that at steady state an entry costs two cycles, an axon without entries
one, and a neuron one.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from spikefab.hdl import params as P
from spikefab.hdl.layouts import (
    POST_TRACE,
    STDP_AMP,
    STDP_BUMP,
    STDP_CLAMP,
    STDP_DECAY,
    CoreConfig,
)

__all__ = ["ENTRY_LATENCY", "LearningUnit", "lfsr_matrix"]

#: Cycles from the read of a synapse entry to the write of its new weight (odd).
ENTRY_LATENCY = 11


def lfsr_matrix(shifts: int = P.LFSR_SHIFTS_PER_STEP) -> list[int]:
    """Return, for each bit of the LFSR after ``shifts`` shifts, the mask of the state bits
    whose exclusive or it is (the shifts are linear over GF(2), contract 5.4)."""
    bits = [1 << i for i in range(P.LFSR_BITS)]  # bit i of the state: the mask of inputs
    taps = [(P.LFSR_TAPS >> i) & 1 for i in range(P.LFSR_BITS)]
    for _ in range(shifts):
        lsb = bits[0]
        bits = [*bits[1:], 0]
        bits = [b ^ (lsb if t else 0) for b, t in zip(bits, taps, strict=True)]
    return bits


def _xor_of(sig, mask: int):  # type: ignore[no-untyped-def]
    terms = [sig[i] for i in range(P.LFSR_BITS) if (mask >> i) & 1]
    out = terms[0]
    for t in terms[1:]:
        out = out ^ t
    return out


class LearningUnit(wiring.Component):
    """Trace memories and the learning phase of one core.

    The core connects the ports below; all its inputs are driven from the core's registers.

    Parameters
    ----------
    config
        Sizes of the core (:class:`~spikefab.hdl.layouts.CoreConfig`).

    Attributes
    ----------
    start : In(1)
        Pulse: run a learning phase.
    done : Out(1)
        Pulses in the last cycle of the phase.
    amp, decay, bump, clamp : In(STDP_AMP), In(STDP_DECAY), In(STDP_BUMP), In(STDP_CLAMP)
        The rule (core registers).
    plastic_axons, learn_neurons : In(axon bits + 1), In(neuron bits + 1)
        The plastic axons ``0 .. plastic_axons - 1`` and the neurons with a post trace.
    axon_addr : Out(axon bits)
        Axon bank address while the phase runs; ``axon_row`` (In(config.axon_layout)) is its
        row two cycles later.
    syn_addr, syn_wdata, syn_we : Out(synapse bits), Out(config.synapse_layout), Out(1)
        Synapse bank port while the phase runs; ``syn_word`` (In(config.synapse_layout)) is the
        entry two cycles after its read.
    mark_en, mark_axon : In(1), In(axon bits)
        An event was taken on ``mark_axon`` (it sets the axon's event flag if plastic).
    post_en, post_neuron, post_fire : In(1), In(neuron bits), In(1)
        The update writes back ``post_neuron``; ``post_fire``: it spiked.
    cfg_pre, cfg_post, cfg_addr, cfg_write, cfg_data : In
        A configuration access to ``PRE_TRACES`` or ``POST_TRACES`` in this cycle, at
        ``cfg_addr``, writing ``cfg_data`` if ``cfg_write``; ``cfg_rdata`` (Out) holds the word
        read two cycles later.
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self._cfg = cfg = config
        super().__init__(
            {
                "start": In(1),
                "done": Out(1),
                "amp": In(STDP_AMP),
                "decay": In(STDP_DECAY),
                "bump": In(STDP_BUMP),
                "clamp": In(STDP_CLAMP),
                "plastic_axons": In(cfg.axon_bits + 1),
                "learn_neurons": In(cfg.neuron_bits + 1),
                "axon_addr": Out(cfg.axon_bits),
                "axon_row": In(cfg.axon_layout),
                "syn_addr": Out(cfg.synapse_bits),
                "syn_wdata": Out(cfg.synapse_layout),
                "syn_we": Out(1),
                "syn_word": In(cfg.synapse_layout),
                "mark_en": In(1),
                "mark_axon": In(cfg.axon_bits),
                "post_en": In(1),
                "post_neuron": In(cfg.neuron_bits),
                "post_fire": In(1),
                "cfg_pre": In(1),
                "cfg_post": In(1),
                "cfg_addr": In(max(cfg.axon_bits, cfg.neuron_bits)),
                "cfg_write": In(1),
                "cfg_data": In(POST_TRACE.size),
                "cfg_rdata": Out(POST_TRACE.size),
            }
        )

    @property
    def config(self) -> CoreConfig:
        return self._cfg

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._cfg
        A, N = cfg.axons, cfg.neurons
        m = Module()
        dual = {"no_rw_check": 1}

        # memories: the trace words without their event flags, and the flags on their own
        # (the delivery sets an axon's flag and the update a neuron's, without reading)
        m.submodules.x_mem = x_mem = Memory(shape=P.TRACE_BITS, depth=A, init=[], attrs=dual)
        m.submodules.pre_flag = pre_flag = Memory(shape=1, depth=A, init=[], attrs=dual)
        m.submodules.y_mem = y_mem = Memory(
            shape=P.TRACE_BITS + P.LFSR_BITS, depth=N, init=[], attrs=dual
        )
        m.submodules.post_flag = post_flag = Memory(shape=1, depth=N, init=[], attrs=dual)
        x_rd, x_wr = x_mem.read_port(), x_mem.write_port()
        pf_rd, pf_wr = pre_flag.read_port(), pre_flag.write_port()
        y_rd, y_wr = y_mem.read_port(), y_mem.write_port()
        qf_rd, qf_wr = post_flag.read_port(), post_flag.write_port()

        # the rule, registered when a phase starts (constant while it runs)
        amp, clamp = self.amp, self.clamp
        f_pre = Signal(P.DECAY_SHIFT + 1, reset_less=True)
        f_post = Signal(P.DECAY_SHIFT + 1, reset_less=True)
        mask = Signal(P.LFSR_BITS)
        half = Signal(P.LFSR_BITS)
        one = 1 << P.DECAY_SHIFT
        with m.If(self.start):
            m.d.sync += [
                f_pre.eq(one - self.decay.d_pre),
                f_post.eq(one - self.decay.d_post),
                mask.eq((Const(1, P.LFSR_BITS + 1) << amp.shift) - 1),
                half.eq((Const(1, P.LFSR_BITS + 1) << amp.shift) >> 1),
            ]

        # -- control --------------------------------------------------------------------------
        # The axon pass runs in two parts at once. The axon pipeline (A0 .. A4) reads a row and
        # a trace every cycle, decays the trace, writes it back bumped and queues (row, pre,
        # a_plus * x) for the entry issuer, which reads each queued axon's entries on even
        # cycles. The queue's credits (queued plus in flight) keep it from overflowing.
        axon = Signal(cfg.axon_bits + 1)  # the next axon A0 reads
        neuron = Signal(cfg.neuron_bits + 1)
        ptr = Signal(cfg.synapse_bits)
        remaining = Signal(cfg.synapse_bits + 1)
        par = Signal()  # entries are read when par == 0
        m.d.sync += par.eq(~par)
        pre_q = Signal()  # the axon whose entries issue: its event flag ...
        apx = Signal(signed(P.STDP_A_BITS + P.TRACE_BITS + 1), reset_less=True)  # ... a_plus * x
        issue = Signal()  # an entry read is issued in this cycle
        n_issue = Signal()  # a neuron read is issued in this cycle
        entries_busy = Signal()
        neurons_busy = Signal()
        axons_on = Signal()  # the axon pass runs
        neurons_on = Signal()  # the neuron pass runs

        AQ = 4  # depth of the queue of axons ready for the issuer
        apx_bits = len(apx)
        q_bits = cfg.synapse_bits + (cfg.synapse_bits + 1) + 1 + apx_bits
        m.submodules.axon_queue = queue = fifo.SyncFIFOBuffered(width=q_bits, depth=AQ)
        av = [Signal(name=f"a{k}_valid") for k in range(5)]
        aa = [Signal(cfg.axon_bits, name=f"a{k}_axon") for k in range(5)]
        inflight = Signal(range(AQ + 6))
        m.d.comb += inflight.eq(queue.level + av[1] + av[2] + av[3] + av[4])
        # A0: read the row and the trace of `axon`
        m.d.comb += [
            av[0].eq(axons_on & (axon != self.plastic_axons) & (inflight < AQ)),
            aa[0].eq(axon),
        ]
        with m.If(av[0]):
            m.d.comb += [self.axon_addr.eq(axon), x_rd.addr.eq(axon), pf_rd.addr.eq(axon)]
            m.d.sync += axon.eq(axon + 1)
        for k in range(1, 5):
            m.d.sync += [av[k].eq(av[k - 1]), aa[k].eq(aa[k - 1])]
        # A1: the trace word and the flag arrive
        x1, pre1 = Signal(P.TRACE_BITS, reset_less=True), Signal()
        m.d.sync += [x1.eq(x_rd.data), pre1.eq(pf_rd.data)]
        # A2: the row arrives; decay x
        xm = Signal(P.TRACE_BITS + P.DECAY_SHIFT + 1, reset_less=True)
        row3, pre2, pre3 = Signal(cfg.axon_layout), Signal(), Signal()
        row2 = Signal(cfg.axon_layout)
        m.d.sync += [xm.eq(x1 * f_pre), pre2.eq(pre1), row2.eq(self.axon_row)]
        # A3: a_plus * x for the entries, and the bumped trace
        x_dec = xm[P.DECAY_SHIFT :]
        bumped = x_dec + Mux(pre2, self.bump.bump_pre, 0)
        apx4 = Signal.like(apx)
        x_new = Signal(P.TRACE_BITS)
        m.d.sync += [
            apx4.eq(amp.a_plus * x_dec),
            x_new.eq(Mux(bumped > P.TRACE_MAX, P.TRACE_MAX, bumped)),
            pre3.eq(pre2),
            row3.eq(row2),
        ]
        # A4: write the trace back, clear the flag, queue the axon
        with m.If(av[4]):
            m.d.comb += [
                x_wr.addr.eq(aa[4]),
                x_wr.data.eq(x_new),
                x_wr.en.eq(1),
                pf_wr.addr.eq(aa[4]),
                pf_wr.data.eq(0),
                pf_wr.en.eq(1),
            ]
        m.d.comb += [
            queue.w_data.eq(Cat(row3.start, row3.count, pre3, apx4)),
            queue.w_en.eq(av[4]),
        ]
        # the issuer: take the next queued axon when the last one's entries are all issued
        q_start = queue.r_data[: cfg.synapse_bits]
        q_count = queue.r_data[cfg.synapse_bits : 2 * cfg.synapse_bits + 1]
        q_pre = queue.r_data[2 * cfg.synapse_bits + 1]
        q_apx = queue.r_data[2 * cfg.synapse_bits + 2 :]
        with m.If(remaining == 0):
            m.d.comb += queue.r_en.eq(queue.r_rdy)
            with m.If(queue.r_rdy):
                m.d.sync += [
                    ptr.eq(q_start),
                    remaining.eq(q_count),
                    pre_q.eq(q_pre),
                    apx.eq(q_apx.as_signed()),
                ]
        with m.Elif(~par):
            m.d.comb += issue.eq(1)
            m.d.sync += [ptr.eq(ptr + 1), remaining.eq(remaining - 1)]
        axons_idle = Signal()
        m.d.comb += axons_idle.eq(
            (axon == self.plastic_axons)
            & ~Cat(*av[1:]).any()
            & (queue.level == 0)
            & (remaining == 0)
            & ~entries_busy
        )

        with m.FSM(name="learn"):
            with m.State("IDLE"), m.If(self.start):
                m.d.sync += [axon.eq(0), neuron.eq(0)]
                m.next = "AXONS"
            with m.State("AXONS"):
                m.d.comb += axons_on.eq(1)
                with m.If(axons_idle):
                    m.next = "NEURONS"
            with m.State("NEURONS"):
                m.d.comb += neurons_on.eq(1)
                with m.If(neuron == self.learn_neurons):
                    m.next = "NEURONS_DRAIN"
                with m.Else():
                    m.d.comb += n_issue.eq(1)
                    m.d.sync += neuron.eq(neuron + 1)
            with m.State("NEURONS_DRAIN"), m.If(~neurons_busy):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        # -- entry pipeline (stage k: k cycles after the read) ---------------------------------
        L = ENTRY_LATENCY
        ev = [Signal(name=f"e{k}_valid") for k in range(L + 1)]
        ea = [Signal(cfg.synapse_bits, name=f"e{k}_addr") for k in range(L + 1)]
        epre = [Signal(name=f"e{k}_pre") for k in range(L + 1)]
        m.d.comb += [ev[0].eq(issue), ea[0].eq(ptr), epre[0].eq(pre_q), self.syn_addr.eq(ptr)]
        for k in range(1, L + 1):
            m.d.sync += [ev[k].eq(ev[k - 1]), ea[k].eq(ea[k - 1]), epre[k].eq(epre[k - 1])]
        m.d.comb += entries_busy.eq(Cat(*ev[1:]).any())
        # the axon's a_plus * x travels with its entries (the next axon's overwrites apx)
        eapx = Signal.like(apx)
        m.d.sync += eapx.eq(apx)  # stage 1; apx is constant while an axon's entries issue
        eapx_k = {1: eapx}
        for k in range(2, 7):
            eapx_k[k] = Signal.like(apx, name=f"e{k}_apx")
            m.d.sync += eapx_k[k].eq(eapx_k[k - 1])
        # stage 2: the entry arrives; read its target's post word and flag
        ent = [None, None, self.syn_word]
        for k in range(3, L + 1):
            ent.append(Signal(cfg.synapse_layout, name=f"e{k}_entry"))
            m.d.sync += ent[k].eq(ent[k - 1])
        # -- neuron pipeline (stage k: k cycles after the read) -------------------------------
        NL = 4
        nv = [Signal(name=f"n{k}_valid") for k in range(NL + 1)]
        nj = [Signal(cfg.neuron_bits, name=f"n{k}_neuron") for k in range(NL + 1)]
        m.d.comb += [nv[0].eq(n_issue), nj[0].eq(neuron)]
        for k in range(1, NL + 1):
            m.d.sync += [nv[k].eq(nv[k - 1]), nj[k].eq(nj[k - 1])]
        m.d.comb += neurons_busy.eq(Cat(*nv[1:]).any())

        # the post-word read port serves the entry pipeline (stage 2) and the neuron pass (0);
        # the select is the state, not `n_issue`, so that the address waits on no comparison
        with m.If(neurons_on):
            m.d.comb += [y_rd.addr.eq(neuron), qf_rd.addr.eq(neuron)]
        with m.Else():
            m.d.comb += [y_rd.addr.eq(ent[2].target), qf_rd.addr.eq(ent[2].target)]
        # the word arrives (entries: stage 3, neurons: 1) and is registered
        y_q = Signal(P.TRACE_BITS, reset_less=True)
        l_q = Signal(P.LFSR_BITS)
        post_q = Signal()
        m.d.sync += [
            y_q.eq(y_rd.data[: P.TRACE_BITS]),
            l_q.eq(y_rd.data[P.TRACE_BITS :]),
            post_q.eq(qf_rd.data),
        ]
        # (entries: 4, neurons: 2) decay y
        ym = Signal(P.TRACE_BITS + P.DECAY_SHIFT + 1, reset_less=True)
        l_r, post_r = Signal.like(l_q), Signal()
        m.d.sync += [ym.eq(y_q * f_post), l_r.eq(l_q), post_r.eq(post_q)]
        y_dec = ym[P.DECAY_SHIFT :]

        # entries, stage 5: a_minus * y and the rounding
        amy = Signal(signed(P.STDP_A_BITS + P.TRACE_BITS + 1), reset_less=True)
        rnd = Signal(P.LFSR_BITS)
        e_post = Signal()
        m.d.sync += [
            amy.eq(amp.a_minus * y_dec),
            rnd.eq(Mux(amp.stochastic, l_r & mask, half)),
            e_post.eq(post_r),
        ]
        # stage 6: num = a_plus * x * post - a_minus * y * pre + rnd
        num = Signal(signed(P.STDP_A_BITS + P.TRACE_BITS + 3))
        e_act = Signal()  # pre or post: the entry changes
        m.d.sync += [
            num.eq(Mux(e_post, eapx_k[6], 0) - Mux(epre[6], amy, 0) + rnd),
            e_act.eq(e_post | epre[6]),
        ]
        # stages 7, 8: the arithmetic shift, by shift & 12 then shift & 3
        sh1, dw = Signal.like(num), Signal.like(num)
        act8, act9 = Signal(), Signal()
        m.d.sync += [
            sh1.eq(num >> Cat(Const(0, 2), amp.shift[2:4])),
            dw.eq(sh1 >> amp.shift[0:2]),
            act8.eq(e_act),
            act9.eq(act8),
        ]
        # stage 9: w + dw; stage 10: the clamp; stage 11: the write
        wsum = Signal(signed(len(num) + 1))
        w_new = Signal(signed(P.WEIGHT_BITS))
        act10, act11 = Signal(), Signal()
        m.d.sync += [
            wsum.eq(ent[9].weight + dw),
            act10.eq(act9),
            w_new.eq(
                Mux(wsum > clamp.w_max, clamp.w_max, Mux(wsum < clamp.w_min, clamp.w_min, wsum))
            ),
            act11.eq(act10),
        ]
        m.d.comb += [
            self.syn_wdata.eq(ent[L]),
            self.syn_wdata.weight.eq(w_new),
            self.syn_we.eq(ev[L] & act11),
        ]
        with m.If(ev[L] & act11):
            m.d.comb += self.syn_addr.eq(ea[L])

        # neurons, stage 3: bump and saturate y, advance the LFSR; stage 4: write
        y_new = Signal(P.TRACE_BITS)
        l_new = Signal(P.LFSR_BITS)
        ybump = y_dec + Mux(post_r, self.bump.bump_post, 0)
        adv = Cat(*(_xor_of(l_r, mk) for mk in lfsr_matrix()))
        m.d.sync += [
            y_new.eq(Mux(ybump > P.TRACE_MAX, P.TRACE_MAX, ybump)),
            l_new.eq(Mux(amp.stochastic, adv, l_r)),
        ]

        # -- write ports, and the configuration accesses --------------------------------------
        with m.If(nv[NL]):
            m.d.comb += [y_wr.addr.eq(nj[NL]), y_wr.data.eq(Cat(y_new, l_new)), y_wr.en.eq(1)]
        with m.Elif(self.cfg_post):
            m.d.comb += [
                y_wr.addr.eq(self.cfg_addr),
                y_wr.data.eq(self.cfg_data[: P.TRACE_BITS + P.LFSR_BITS]),
                y_wr.en.eq(self.cfg_write),
            ]
        with m.If(self.cfg_post):
            m.d.comb += [
                y_rd.addr.eq(self.cfg_addr),
                qf_rd.addr.eq(self.cfg_addr),
                qf_wr.addr.eq(self.cfg_addr),
                qf_wr.data.eq(self.cfg_data[P.TRACE_BITS + P.LFSR_BITS]),
                qf_wr.en.eq(self.cfg_write),
            ]
        with m.Else():
            m.d.comb += [
                qf_wr.addr.eq(self.post_neuron),
                qf_wr.data.eq(self.post_fire),
                qf_wr.en.eq(self.post_en),
            ]

        # an event on a plastic axon sets its flag (registered, a cycle after the event)
        mark, mark_axon = Signal(), Signal.like(self.mark_axon)
        m.d.sync += [
            mark.eq(self.mark_en & (self.mark_axon < self.plastic_axons)),
            mark_axon.eq(self.mark_axon),
        ]
        with m.If(self.cfg_pre):
            m.d.comb += [
                x_rd.addr.eq(self.cfg_addr),
                pf_rd.addr.eq(self.cfg_addr),
                x_wr.addr.eq(self.cfg_addr),
                x_wr.data.eq(self.cfg_data[: P.TRACE_BITS]),
                x_wr.en.eq(self.cfg_write),
                pf_wr.addr.eq(self.cfg_addr),
                pf_wr.data.eq(self.cfg_data[P.TRACE_BITS]),
                pf_wr.en.eq(self.cfg_write),
            ]
        with m.Elif(mark):
            m.d.comb += [pf_wr.addr.eq(mark_axon), pf_wr.data.eq(1), pf_wr.en.eq(1)]

        # a read's word arrives a cycle after the access and is registered
        was_pre = Signal()
        m.d.sync += was_pre.eq(self.cfg_pre)
        m.d.sync += self.cfg_rdata.eq(
            Mux(
                was_pre,
                Cat(x_rd.data, pf_rd.data),
                Cat(y_rd.data, qf_rd.data),
            )
        )
        return m
