"""The neuron core: N time-multiplexed LIF neurons with a dendrite ring and a synapse table.

The core follows ``docs/contract.md``: section 2 for the neuron, 3 for the dendrite and
section 6 for its memories and ports. A step is two phases:

*Delivery.* Input events (an axon each) are accepted on ``i_events``. The axon table gives
the range of synapse entries of the axon; each entry ``(target, weight, weight_exp,
delay - 1)`` adds ``weight << weight_exp`` to ring slot ``(now + delay - 1) mod D`` of its
target. The pipeline takes one synapse entry per clock, across axon boundaries, with
forwarding paths for back-to-back updates of one accumulator.

*Update.* After ``step`` is pulsed and the delivery pipeline has drained, neurons
``0 .. N-1`` are updated, one per clock: each reads and clears ring slot ``now``, decays
``u`` and ``v`` with two multipliers, and writes its state back; spikes leave on
``o_spikes`` through a FIFO. The update issues a neuron only when the FIFO has room for
every neuron in flight, so backpressure on ``o_spikes`` pauses the update without losing a
spike. When the last spike has left, ``done`` pulses and ``now`` advances.

Between steps the configuration port (``i_cfg``/``o_cfg``) writes and reads every memory and
register; it is served only while the delivery pipeline is empty and no update runs.

Timing. Every memory's read data is registered before any logic uses it, and every control
decision (is the delivery pipeline empty, may the update issue a neuron, does a counter
count) is a flip-flop computed a cycle ahead, so no path runs from one memory or decision
through another. This costs latency, not throughput: a delivery phase takes ``E + 7``
cycles for ``E`` synaptic events and an update ``N + 8`` (``DELIVERY_CYCLES`` and
``UPDATE_CYCLES``).

Memories. The neuron state and the ring are read and written at two addresses on every
clock, so they are simple dual-port memories. The synapse table, the axon table and the
neuron parameters are only read while the core runs and written only through the
configuration port, so they live in two single-port *banks* (one address for reads and
writes, the read disabled while writing): the synapse bank holds the synapse entries and
the low :data:`PARAMS_SPLIT` bits of each neuron's parameters, the axon bank the axon rows
and the rest of the parameters. Delivery reads the synapse and the axon table, the update
reads the parameters, never both at once. On an iCE40 platform (``platform.family ==
"iCE40"``) the banks are marked ``ram_style = "huge"`` so that Yosys maps them to the
UP5K's single-port SPRAM; since the SPRAM has no initial contents, the synthesis script
must delete the memories' ``$meminit`` cells (Amaranth always emits zeros; contract 6.3
has the image write every word anyway, see ``bench/synth_core.py``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2
from spikefab.hdl import params as P
from spikefab.hdl.layouts import (
    CFG_DATA_BITS,
    NEURON_PARAMS,
    NEURON_STATE,
    CoreConfig,
    CoreMem,
    CoreReg,
)

__all__ = ["NeuronCore"]

#: Depth of the output spike FIFO; the update keeps this many places for spikes in flight.
SPIKE_FIFO_DEPTH = 16
#: Depth of the FIFO of axon ranges between the axon table and the entry iterator.
RANGE_FIFO_DEPTH = 4
#: Update pipeline stages between the memory read and the state write-back (U0 .. U6).
UPDATE_STAGES = 7
#: Bits of a neuron's parameter word held in the synapse bank; the rest are in the axon bank.
PARAMS_SPLIT = 32


def _clip(m: Module, x, lo: int, hi: int, shape) -> Signal:  # type: ignore[no-untyped-def]
    out = Signal(shape)
    m.d.comb += out.eq(Mux(x > hi, hi, Mux(x < lo, lo, x)))
    return out


class NeuronCore(wiring.Component):
    """A LIF neuron core, bit-exact with the contract.

    Parameters
    ----------
    config
        Sizes of the core (:class:`~spikefab.hdl.layouts.CoreConfig`).

    Attributes
    ----------
    i_events : In(stream.Signature(config.event_layout))
        Axon events of the delivery phase.
    o_spikes : Out(stream.Signature(config.spike_layout))
        Neurons that spiked, in neuron order, during the update phase.
    i_cfg : In(stream.Signature(config.cfg_request_layout))
        Memory and register writes and reads, between steps.
    o_cfg : Out(stream.Signature(config.cfg_reply_layout))
        The data of each read, in order.
    step : In(1)
        Pulse after the last event of the step has been accepted: run the update.
    done : Out(1)
        Pulses once the update has finished and every spike has left ``o_spikes``.
    idle : Out(1)
        No delivery, update or configuration access is under way.
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self._config = config
        super().__init__(
            {
                "i_events": In(stream.Signature(config.event_layout)),
                "o_spikes": Out(stream.Signature(config.spike_layout)),
                "i_cfg": In(stream.Signature(config.cfg_request_layout)),
                "o_cfg": Out(stream.Signature(config.cfg_reply_layout)),
                "step": In(1),
                "done": Out(1),
                "idle": Out(1),
            }
        )

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        N, D = cfg.neurons, cfg.delay_slots
        nb = cfg.neuron_bits
        m = Module()

        # memories --------------------------------------------------------------------------
        # No port ever reads a word in the cycle it is written (the delivery forwards the two
        # writes its ring reads miss; the banks do not read while writing), so Yosys need not
        # add collision logic.
        dual = {"no_rw_check": 1}
        bank = dict(dual)
        if getattr(platform, "family", None) == "iCE40":
            bank["ram_style"] = "huge"
        syn_bits, axon_bits = cfg.synapse_layout.size, cfg.axon_layout.size
        hi_bits = NEURON_PARAMS.size - PARAMS_SPLIT
        # the parameter rows follow the tables, from a power of two on (word base + n)
        syn_base, axon_base = max(cfg.synapses, N), max(cfg.axons, N)
        m.submodules.state = state = Memory(shape=NEURON_STATE, depth=N, init=[], attrs=dual)
        m.submodules.ring = ring = Memory(
            shape=cfg.ring_layout, depth=cfg.ring_depth, init=[], attrs=dual
        )
        m.submodules.syn_bank = syn_bank = Memory(
            shape=max(syn_bits, PARAMS_SPLIT), depth=syn_base + N, init=[], attrs=bank
        )
        m.submodules.axon_bank = axon_bank = Memory(
            shape=max(axon_bits, hi_bits), depth=axon_base + N, init=[], attrs=bank
        )
        state_rd, state_wr = state.read_port(), state.write_port()
        ring_rd, ring_wr = ring.read_port(), ring.write_port()
        syn_rd, syn_wr = syn_bank.read_port(), syn_bank.write_port()
        axon_rd, axon_wr = axon_bank.read_port(), axon_bank.write_port()
        # a bank has one address, and does not read while it writes
        syn_addr = Signal.like(syn_rd.addr)
        axon_addr = Signal.like(axon_rd.addr)
        m.d.comb += [
            syn_rd.addr.eq(syn_addr),
            syn_wr.addr.eq(syn_addr),
            syn_rd.en.eq(~syn_wr.en),
            axon_rd.addr.eq(axon_addr),
            axon_wr.addr.eq(axon_addr),
            axon_rd.en.eq(~axon_wr.en),
        ]

        def params_row(base: int, n):  # type: ignore[no-untyped-def]
            """The bank address ``base + n`` of neuron ``n``'s parameters (``base >= N``)."""
            return Cat(n[:nb], Const(0, exact_log2(base) - nb), Const(1, 1))

        # every read is registered before use
        state_q = Signal(NEURON_STATE)
        ring_q = Signal(signed(cfg.acc_bits))
        syn_q = Signal(len(syn_rd.data))
        axon_q = Signal(len(axon_rd.data))
        m.d.sync += [
            state_q.eq(state_rd.data),
            ring_q.eq(ring_rd.data.acc),
            syn_q.eq(syn_rd.data),
            axon_q.eq(axon_rd.data),
        ]
        entry = cfg.synapse_layout(syn_q[:syn_bits])
        axon_row = cfg.axon_layout(axon_rd.data[:axon_bits])
        params_q = NEURON_PARAMS(Cat(syn_q[:PARAMS_SPLIT], axon_q[:hi_bits]))

        m.submodules.spike_fifo = spike_fifo = fifo.SyncFIFO(width=nb, depth=SPIKE_FIFO_DEPTH)
        range_width = len(Cat(axon_row.start, axon_row.count))
        m.submodules.range_fifo = range_fifo = fifo.SyncFIFO(
            width=range_width, depth=RANGE_FIFO_DEPTH
        )

        # registers ----------------------------------------------------------------------------
        now = Signal(range(D)) if D > 1 else Const(0, 1)
        reg_events = Signal(32)
        reg_deliver_cycles = Signal(32)
        reg_update_cycles = Signal(32)
        reg_spikes = Signal(32)
        reg_steps = Signal(32)
        step_req = Signal()
        with m.If(self.step):
            m.d.sync += step_req.eq(1)

        # spikes out
        m.d.comb += [
            self.o_spikes.valid.eq(spike_fifo.r_rdy),
            self.o_spikes.payload.neuron.eq(spike_fifo.r_data),
            spike_fifo.r_en.eq(self.o_spikes.ready),
        ]

        # delivery pipeline ---------------------------------------------------------------------
        # D0 issues an entry (reads the synapse bank), D1 registers it, D2 reads the ring,
        # D3 registers the ring word, D4 adds and writes back.
        delivering = Signal()  # the FSM is in the delivery phase and not serving the config port
        fetch_inflight = Signal()
        ptr = Signal(cfg.synapse_bits)
        remaining = Signal(cfg.synapse_bits + 1)
        active = Signal()  # remaining != 0: D0 issues the entry at ptr
        last = Signal()  # remaining == 1
        d1_valid, d2_valid, d3_valid, d4_valid = Signal(), Signal(), Signal(), Signal()

        room = Signal()
        m.d.comb += room.eq(range_fifo.level + fetch_inflight < RANGE_FIFO_DEPTH)
        m.d.comb += self.i_events.ready.eq(delivering & room)
        take = Signal()
        m.d.comb += take.eq(self.i_events.valid & self.i_events.ready)
        m.d.sync += fetch_inflight.eq(take)

        # axon table read -> range FIFO
        m.d.comb += [
            range_fifo.w_data.eq(Cat(axon_row.start, axon_row.count)),
            range_fifo.w_en.eq(fetch_inflight),
        ]
        # D0: the entry iterator; `active` and `last` are kept with `remaining`
        next_start = range_fifo.r_data[: cfg.synapse_bits]
        next_count = range_fifo.r_data[cfg.synapse_bits :]
        with m.If(active):
            m.d.sync += [
                ptr.eq(ptr + 1),
                remaining.eq(remaining - 1),
                active.eq(~last),
                last.eq(remaining == 2),
            ]
        with m.If((~active | last) & range_fifo.r_rdy):
            m.d.comb += range_fifo.r_en.eq(1)
            m.d.sync += [
                ptr.eq(next_start),
                remaining.eq(next_count),
                active.eq(next_count != 0),
                last.eq(next_count == 1),
            ]
        m.d.sync += [d1_valid.eq(active), d2_valid.eq(d1_valid)]

        # D1: the entry arrives from the synapse bank (into syn_q)
        # D2: synapse entry -> ring address (read) and value
        slot = Signal(range(D)) if D > 1 else Const(0, 1)
        if D > 1:
            m.d.comb += slot.eq(now + entry.delay)
        d2_addr = Signal(range(cfg.ring_depth))
        m.d.comb += d2_addr.eq(Cat(entry.target, slot) if D > 1 else entry.target)
        d3_addr = Signal.like(d2_addr)
        d3_val = Signal(signed(cfg.acc_bits))
        m.d.sync += [
            d3_valid.eq(d2_valid),
            d3_addr.eq(d2_addr),
            d3_val.eq(entry.weight << entry.weight_exp),
        ]
        # D3: the ring word arrives (into ring_q); the read missed the writes of D4 in this
        # cycle and the next, so match the entry against them for forwarding
        d4_addr, d4_val = Signal.like(d3_addr), Signal.like(d3_val)
        d4_fwd1, d4_fwd2 = Signal(), Signal()  # take the last write / the one before it
        last_valid = Signal()
        last_addr = Signal.like(d3_addr)
        last_sum = Signal(signed(cfg.acc_bits))
        last2_sum = Signal(signed(cfg.acc_bits))
        m.d.sync += [
            d4_valid.eq(d3_valid),
            d4_addr.eq(d3_addr),
            d4_val.eq(d3_val),
            d4_fwd1.eq(d4_valid & (d4_addr == d3_addr)),
            d4_fwd2.eq(last_valid & (last_addr == d3_addr)),
        ]
        # D4: read-modify-write, forwarding the two previous writes
        old = Signal(signed(cfg.acc_bits))
        m.d.comb += old.eq(Mux(d4_fwd1, last_sum, Mux(d4_fwd2, last2_sum, ring_q)))
        d4_sum = Signal(signed(cfg.acc_bits))
        m.d.comb += d4_sum.eq(old + d4_val)
        m.d.sync += [
            last_valid.eq(d4_valid),
            last_addr.eq(d4_addr),
            last_sum.eq(d4_sum),
            last2_sum.eq(last_sum),
        ]
        with m.If(d4_valid):
            m.d.sync += reg_events.eq(reg_events + 1)

        # the pipeline is empty; registered, and only set when no event enters meanwhile
        delivery_busy = Signal()
        m.d.comb += delivery_busy.eq(
            fetch_inflight | range_fifo.r_rdy | active | d1_valid | d2_valid | d3_valid | d4_valid
        )
        delivery_empty = Signal(init=1)
        deliver_tick = Signal()  # the last cycle had delivery work: count it
        m.d.sync += [
            delivery_empty.eq(~delivery_busy & ~take),
            deliver_tick.eq(delivery_busy | take),
        ]
        with m.If(deliver_tick):
            m.d.sync += reg_deliver_cycles.eq(reg_deliver_cycles + 1)

        # update pipeline -----------------------------------------------------------------------
        # U0: the memories' words arrive (into the read registers); U1: operands; U2: the
        # decay products; U3: new u, decayed v plus bias; U4: the sum v + u; U5: clip,
        # threshold, reset and refractory; U6: write back, spike out.
        n_issue = Signal(range(N + 1))
        valid = [Signal(name=f"u{k}_valid") for k in range(UPDATE_STAGES)]
        nidx = [Signal(nb, name=f"u{k}_n") for k in range(UPDATE_STAGES)]
        updating = Signal()
        # issue: a neuron is issued this cycle, decided in the previous one. Issuing the next
        # requires room in the spike FIFO for every neuron in flight, this one included.
        issue = Signal()
        m.d.sync += issue.eq(
            updating
            & ~Mux(issue, n_issue == N - 1, n_issue == N)
            & (spike_fifo.level + sum(valid) + issue + 1 <= SPIKE_FIFO_DEPTH)
        )
        m.d.sync += [valid[0].eq(issue), nidx[0].eq(n_issue)]
        for k in range(1, UPDATE_STAGES):
            m.d.sync += [valid[k].eq(valid[k - 1]), nidx[k].eq(nidx[k - 1])]
        with m.If(issue):
            m.d.sync += n_issue.eq(n_issue + 1)

        # U1: registered memory words -> operands
        st, pr = state_q, params_q
        acc = ring_q
        a1 = _clip(m, acc, P.INPUT_MIN, P.INPUT_MAX, signed(P.INPUT_BITS))
        u2_a = Signal(signed(P.INPUT_BITS))
        u2_uneg, u2_vneg = Signal(), Signal()
        u2_uabs = Signal(P.UV_BITS)
        u2_vabs = Signal(P.UV_BITS)
        u2_fu = Signal(P.DECAY_SHIFT + 1)
        u2_fv = Signal(P.DECAY_SHIFT + 1)
        u2_v = Signal(signed(P.UV_BITS))
        u2_ref = Signal(P.REFRACTORY_BITS)
        u2_pr = Signal(NEURON_PARAMS)
        one = 1 << P.DECAY_SHIFT
        m.d.sync += [
            u2_a.eq(a1),
            u2_uneg.eq(st.u < 0),
            u2_vneg.eq(st.v < 0),
            u2_uabs.eq(Mux(st.u < 0, -st.u, st.u)),
            u2_vabs.eq(Mux(st.v < 0, -st.v, st.v)),
            u2_fu.eq(one - P.DU_OFFSET - pr.du),
            u2_fv.eq(one - P.DV_OFFSET - pr.dv),
            u2_v.eq(st.v),
            u2_ref.eq(st.ref),
            u2_pr.eq(pr),
        ]
        # U2: the two decay products
        u3_pu = Signal(P.UV_BITS + P.DECAY_SHIFT + 1)
        u3_pv = Signal(P.UV_BITS + P.DECAY_SHIFT + 1)
        u3_a, u3_uneg, u3_vneg = Signal.like(u2_a), Signal(), Signal()
        u3_v, u3_ref, u3_pr = Signal.like(u2_v), Signal.like(u2_ref), Signal(NEURON_PARAMS)
        m.d.sync += [
            u3_pu.eq(u2_uabs * u2_fu),
            u3_pv.eq(u2_vabs * u2_fv),
            u3_a.eq(u2_a),
            u3_uneg.eq(u2_uneg),
            u3_vneg.eq(u2_vneg),
            u3_v.eq(u2_v),
            u3_ref.eq(u2_ref),
            u3_pr.eq(u2_pr),
        ]
        # U3: truncating decay, new u (wrapped to 24 bits), decayed v plus bias
        udec = Signal(signed(P.UV_BITS + 2))
        vdec = Signal(signed(P.UV_BITS + 2))
        m.d.comb += [
            udec.eq(Mux(u3_uneg, -(u3_pu >> P.DECAY_SHIFT), u3_pu >> P.DECAY_SHIFT)),
            vdec.eq(Mux(u3_vneg, -(u3_pv >> P.DECAY_SHIFT), u3_pv >> P.DECAY_SHIFT)),
        ]
        u4_u = Signal(signed(P.UV_BITS))
        u4_vb = Signal(signed(P.UV_BITS + 3))
        u4_v, u4_ref, u4_pr = Signal.like(u2_v), Signal.like(u2_ref), Signal(NEURON_PARAMS)
        m.d.sync += [
            u4_u.eq(udec + (u3_a << P.ACT_SHIFT)),  # truncation to 24 bits is the wrap
            u4_vb.eq(vdec + (u3_pr.bias_mant << u3_pr.bias_exp)),
            u4_v.eq(u3_v),
            u4_ref.eq(u3_ref),
            u4_pr.eq(u3_pr),
        ]
        # U4: the unclipped input to the threshold, vi_raw = v + bias + u
        u5_vi_raw = Signal(signed(P.UV_BITS + 4))
        u5_u, u5_v, u5_ref = Signal.like(u4_u), Signal.like(u4_v), Signal.like(u4_ref)
        u5_pr = Signal(NEURON_PARAMS)
        m.d.sync += [
            u5_vi_raw.eq(u4_vb + u4_u),
            u5_u.eq(u4_u),
            u5_v.eq(u4_v),
            u5_ref.eq(u4_ref),
            u5_pr.eq(u4_pr),
        ]
        # U5: clip, threshold, reset, refractory. theta = vth << 6 lies in 0 .. V_MAX, so the
        # clip to V_MIN .. V_MAX never changes vi > theta: the comparison and the reset by
        # subtraction use vi_raw, in parallel with the clip.
        vi_raw = u5_vi_raw
        over = Signal()
        m.d.comb += over.eq(vi_raw > P.V_MAX)
        vi = _clip(m, vi_raw, P.V_MIN, P.V_MAX, signed(P.UV_BITS))
        theta = Signal(unsigned(P.VTH_BITS + P.VTH_SHIFT))
        m.d.comb += theta.eq(u5_pr.vth << P.VTH_SHIFT)
        refr = Signal()
        m.d.comb += refr.eq(u5_ref != 0)
        fire = Signal()
        m.d.comb += fire.eq(~refr & (vi_raw > theta))
        vsub = Signal(signed(P.UV_BITS + 1))  # vi - theta when fire
        m.d.comb += vsub.eq(Mux(over, P.V_MAX - theta, vi_raw - theta))
        u6_u = Signal(signed(P.UV_BITS))
        u6_v = Signal(signed(P.UV_BITS))
        u6_ref = Signal(P.REFRACTORY_BITS)
        u6_fire = Signal()
        with m.If(refr):
            m.d.sync += [u6_v.eq(u5_v), u6_ref.eq(u5_ref - 1)]
        with m.Elif(fire):
            m.d.sync += [
                u6_v.eq(Mux(u5_pr.reset_subtract, vsub, 0)),
                u6_ref.eq(u5_pr.refractory),
            ]
        with m.Else():
            m.d.sync += [u6_v.eq(vi), u6_ref.eq(0)]
        m.d.sync += [u6_u.eq(u5_u), u6_fire.eq(fire & valid[5])]
        # U6: write back, spike out
        m.d.comb += [
            spike_fifo.w_data.eq(nidx[6]),
            spike_fifo.w_en.eq(valid[6] & u6_fire),
        ]
        with m.If(valid[6] & u6_fire):
            m.d.sync += reg_spikes.eq(reg_spikes + 1)

        # configuration port --------------------------------------------------------------------
        # A request is registered when accepted (cfg_q); CFG_ACCESS drives the memory ports
        # from it, a read's word arrives in CFG_WAIT and is registered, CFG_READ selects it
        # into `reply`, and CFG_REPLY offers it on o_cfg.
        cfg_q = Signal(cfg.cfg_request_layout)
        reply = Signal(CFG_DATA_BITS)
        m.d.comb += self.o_cfg.payload.data.eq(reply)

        regs = {
            CoreReg.NOW: now,
            CoreReg.EVENTS: reg_events,
            CoreReg.DELIVERY_CYCLES: reg_deliver_cycles,
            CoreReg.UPDATE_CYCLES: reg_update_cycles,
            CoreReg.SPIKES: reg_spikes,
            CoreReg.STEPS: reg_steps,
        }

        # port multiplexing by phase ------------------------------------------------------------
        # defaults: the delivery pipeline owns the ports
        m.d.comb += [
            axon_addr.eq(self.i_events.payload.axon),
            syn_addr.eq(ptr),
            ring_rd.addr.eq(d2_addr),
            ring_wr.addr.eq(d4_addr),
            ring_wr.data.acc.eq(d4_sum),
            ring_wr.en.eq(d4_valid),
            state_rd.addr.eq(n_issue),
            state_wr.addr.eq(nidx[6]),
            state_wr.data.u.eq(u6_u),
            state_wr.data.v.eq(u6_v),
            state_wr.data.ref.eq(u6_ref),
            state_wr.en.eq(valid[6]),
        ]

        with m.FSM(name="phase"):
            with m.State("DELIVER"):
                m.d.comb += self.idle.eq(delivery_empty & ~self.i_events.valid)
                with m.If(delivery_empty & step_req):
                    # the first neuron issues in the first cycle of UPDATE: the spike FIFO
                    # is empty and nothing is in flight
                    m.d.sync += [step_req.eq(0), n_issue.eq(0), issue.eq(1)]
                    m.next = "UPDATE"
                with m.Elif(delivery_empty & self.i_cfg.valid):
                    m.d.comb += self.i_cfg.ready.eq(1)
                    m.d.sync += cfg_q.eq(self.i_cfg.payload)
                    m.next = "CFG_ACCESS"
                with m.Else():
                    # after `step`, the events waiting belong to the next delivery phase
                    m.d.comb += delivering.eq(~step_req & ~self.step)
            with m.State("CFG_ACCESS"):
                self._cfg_access(
                    m,
                    cfg,
                    cfg_q,
                    regs,
                    params_row,
                    (syn_base, axon_base),
                    (state_rd, state_wr),
                    (ring_rd, ring_wr),
                    (syn_addr, syn_wr),
                    (axon_addr, axon_wr),
                )
                with m.If(cfg_q.write):
                    m.next = "DELIVER"
                with m.Else():
                    m.next = "CFG_WAIT"
            with m.State("CFG_WAIT"):
                m.next = "CFG_READ"
            with m.State("CFG_READ"):
                with m.Switch(cfg_q.mem):
                    with m.Case(CoreMem.STATE):
                        m.d.sync += reply.eq(state_q.as_value())
                    with m.Case(CoreMem.PARAMS):
                        m.d.sync += reply.eq(params_q.as_value())
                    with m.Case(CoreMem.RING):
                        m.d.sync += reply.eq(ring_q.as_unsigned())
                    with m.Case(CoreMem.AXONS):
                        m.d.sync += reply.eq(axon_q[:axon_bits])
                    with m.Case(CoreMem.SYNAPSES):
                        m.d.sync += reply.eq(syn_q[:syn_bits])
                    with m.Case(CoreMem.REGS), m.Switch(cfg_q.addr):
                        for r, sig in regs.items():
                            with m.Case(r.value):
                                m.d.sync += reply.eq(sig)
                        with m.Default():
                            m.d.sync += reply.eq(0)
                    with m.Default():
                        m.d.sync += reply.eq(0)
                m.next = "CFG_REPLY"
            with m.State("CFG_REPLY"):
                m.d.comb += self.o_cfg.valid.eq(1)
                with m.If(self.o_cfg.ready):
                    m.next = "DELIVER"
            with m.State("UPDATE"):
                m.d.comb += [
                    updating.eq(1),
                    syn_addr.eq(params_row(syn_base, n_issue)),
                    axon_addr.eq(params_row(axon_base, n_issue)),
                    ring_rd.addr.eq(Cat(n_issue[:nb], now) if D > 1 else n_issue),
                    ring_wr.addr.eq(Cat(nidx[0], now) if D > 1 else nidx[0]),
                    ring_wr.data.acc.eq(0),
                    ring_wr.en.eq(valid[0]),
                ]
                m.d.sync += reg_update_cycles.eq(reg_update_cycles + 1)
                with m.If((n_issue == N) & ~Cat(*valid).any() & ~spike_fifo.r_rdy):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += reg_steps.eq(reg_steps + 1)
                    if D > 1:
                        m.d.sync += now.eq(now + 1)
                    m.next = "DELIVER"
        return m

    def _cfg_access(  # type: ignore[no-untyped-def]
        self, m, cfg, req, regs, params_row, bases, state, ring, syn, axon
    ):
        """Drive the memory ports for one registered request (write now, or start a read)."""
        syn_base, axon_base = bases
        syn_addr, syn_wr = syn
        axon_addr, axon_wr = axon
        data = req.data
        with m.Switch(req.mem):
            for mem, (rd, wr), bits in (
                (CoreMem.STATE, state, cfg.neuron_bits),
                (CoreMem.RING, ring, len(ring[0].addr)),
            ):
                with m.Case(mem):
                    m.d.comb += [
                        rd.addr.eq(req.addr[:bits]),
                        wr.addr.eq(req.addr[:bits]),
                        wr.data.eq(data[: len(wr.data.as_value())]),
                        wr.en.eq(req.write),
                    ]
            with m.Case(CoreMem.PARAMS):
                m.d.comb += [
                    syn_addr.eq(params_row(syn_base, req.addr)),
                    axon_addr.eq(params_row(axon_base, req.addr)),
                    syn_wr.data.eq(data[:PARAMS_SPLIT]),
                    axon_wr.data.eq(data[PARAMS_SPLIT : NEURON_PARAMS.size]),
                    syn_wr.en.eq(req.write),
                    axon_wr.en.eq(req.write),
                ]
            with m.Case(CoreMem.AXONS):
                m.d.comb += [
                    axon_addr.eq(req.addr[: cfg.axon_bits]),
                    axon_wr.data.eq(data[: cfg.axon_layout.size]),
                    axon_wr.en.eq(req.write),
                ]
            with m.Case(CoreMem.SYNAPSES):
                m.d.comb += [
                    syn_addr.eq(req.addr[: cfg.synapse_bits]),
                    syn_wr.data.eq(data[: cfg.synapse_layout.size]),
                    syn_wr.en.eq(req.write),
                ]
            with m.Case(CoreMem.REGS), m.If(req.write), m.Switch(req.addr):
                for r, sig in regs.items():
                    if isinstance(sig, Const):
                        continue
                    with m.Case(r.value):
                        m.d.sync += sig.eq(data[: len(sig)])
