"""The neuron core: N time-multiplexed LIF neurons with a dendrite ring and a synapse table.

The core follows ``docs/contract.md``: section 2 for the neuron, 3 for the dendrite and
section 6 for its memories and ports. A step is two phases:

*Delivery.* Input events (an axon each) are accepted on ``i_events``. The axon table gives
the range of synapse entries of the axon; each entry ``(target, weight, weight_exp,
delay - 1)`` adds ``weight << weight_exp`` to ring slot ``(now + delay - 1) mod D`` of its
target. The pipeline takes one synapse entry per clock, across axon boundaries, with a
forwarding path for back-to-back updates of one accumulator.

*Update.* After ``step`` is pulsed and the delivery pipeline has drained, neurons
``0 .. N-1`` are updated, one per clock: each reads and clears ring slot ``now``, decays
``u`` and ``v`` with two multipliers, and writes its state back; spikes leave on
``o_spikes`` through a FIFO. The update issues a neuron only when the FIFO has room for
every neuron in flight, so backpressure on ``o_spikes`` pauses the update without losing a
spike. When the last spike has left, ``done`` pulses and ``now`` advances.

Between steps the configuration port (``i_cfg``/``o_cfg``) writes and reads every memory and
register; it is served only while the delivery pipeline is empty and no update runs.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
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
#: Update pipeline stages between the memory read and the state write-back.
UPDATE_STAGES = 5


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
        m = Module()

        # memories --------------------------------------------------------------------------
        m.submodules.state = state = Memory(shape=NEURON_STATE, depth=N, init=[])
        m.submodules.params = params = Memory(shape=NEURON_PARAMS, depth=N, init=[])
        m.submodules.ring = ring = Memory(shape=cfg.ring_layout, depth=cfg.ring_depth, init=[])
        m.submodules.axons = axons = Memory(shape=cfg.axon_layout, depth=cfg.axons, init=[])
        m.submodules.synapses = synapses = Memory(
            shape=cfg.synapse_layout, depth=cfg.synapses, init=[]
        )
        state_rd, state_wr = state.read_port(), state.write_port()
        params_rd, params_wr = params.read_port(), params.write_port()
        ring_rd, ring_wr = ring.read_port(), ring.write_port()
        axon_rd, axon_wr = axons.read_port(), axons.write_port()
        syn_rd, syn_wr = synapses.read_port(), synapses.write_port()

        m.submodules.spike_fifo = spike_fifo = fifo.SyncFIFO(
            width=cfg.neuron_bits, depth=SPIKE_FIFO_DEPTH
        )
        range_width = len(Cat(axon_rd.data.start, axon_rd.data.count))
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
        delivering = Signal()  # the FSM is in the delivery phase and not serving the config port
        fetch_inflight = Signal()
        ptr = Signal(cfg.synapse_bits)
        remaining = Signal(cfg.synapse_bits + 1)
        s1_valid = Signal()
        s2_valid = Signal()
        s2_addr = Signal(range(cfg.ring_depth))
        s2_val = Signal(signed(cfg.acc_bits))
        last_valid = Signal()
        last_addr = Signal(range(cfg.ring_depth))
        last_sum = Signal(signed(cfg.acc_bits))

        room = Signal()
        m.d.comb += room.eq(range_fifo.level + fetch_inflight < RANGE_FIFO_DEPTH)
        m.d.comb += self.i_events.ready.eq(delivering & room)
        take = Signal()
        m.d.comb += take.eq(self.i_events.valid & self.i_events.ready)
        m.d.sync += fetch_inflight.eq(take)

        # axon table read -> range FIFO
        m.d.comb += [
            range_fifo.w_data.eq(Cat(axon_rd.data.start, axon_rd.data.count)),
            range_fifo.w_en.eq(fetch_inflight),
        ]
        # entry iterator
        issue = Signal()
        m.d.comb += issue.eq(remaining != 0)
        next_start = range_fifo.r_data[: cfg.synapse_bits]
        next_count = range_fifo.r_data[cfg.synapse_bits :]
        with m.If(issue):
            m.d.sync += [ptr.eq(ptr + 1), remaining.eq(remaining - 1)]
        with m.If(((remaining == 0) | (remaining == 1)) & range_fifo.r_rdy):
            m.d.comb += range_fifo.r_en.eq(1)
            m.d.sync += [ptr.eq(next_start), remaining.eq(next_count)]
        m.d.sync += s1_valid.eq(issue)

        # S1: synapse entry -> ring address and value
        entry = syn_rd.data
        slot = Signal(range(D)) if D > 1 else Const(0, 1)
        if D > 1:
            m.d.comb += slot.eq(now + entry.delay)
        s1_addr = Signal(range(cfg.ring_depth))
        m.d.comb += s1_addr.eq(Cat(entry.target, slot) if D > 1 else entry.target)
        m.d.sync += [
            s2_valid.eq(s1_valid),
            s2_addr.eq(s1_addr),
            s2_val.eq(entry.weight << entry.weight_exp),
        ]
        # S2: read-modify-write with forwarding of the previous write
        old = Signal(signed(cfg.acc_bits))
        m.d.comb += old.eq(Mux(last_valid & (last_addr == s2_addr), last_sum, ring_rd.data.acc))
        s2_sum = Signal(signed(cfg.acc_bits))
        m.d.comb += s2_sum.eq(old + s2_val)
        m.d.sync += [last_valid.eq(s2_valid), last_addr.eq(s2_addr), last_sum.eq(s2_sum)]
        with m.If(s2_valid):
            m.d.sync += reg_events.eq(reg_events + 1)

        delivery_empty = Signal()
        m.d.comb += delivery_empty.eq(
            ~fetch_inflight & ~range_fifo.r_rdy & (remaining == 0) & ~s1_valid & ~s2_valid
        )

        # update pipeline -----------------------------------------------------------------------
        n_issue = Signal(range(N + 1))
        valid = [Signal(name=f"u{k}_valid") for k in range(1, UPDATE_STAGES + 1)]
        nidx = [Signal(cfg.neuron_bits, name=f"u{k}_n") for k in range(1, UPDATE_STAGES + 1)]
        updating = Signal()
        can_issue = Signal()
        m.d.comb += can_issue.eq(
            updating & (n_issue != N) & (spike_fifo.level + sum(valid) + 1 <= SPIKE_FIFO_DEPTH)
        )
        m.d.sync += [valid[0].eq(can_issue), nidx[0].eq(n_issue)]
        for k in range(1, UPDATE_STAGES):
            m.d.sync += [valid[k].eq(valid[k - 1]), nidx[k].eq(nidx[k - 1])]
        with m.If(can_issue):
            m.d.sync += n_issue.eq(n_issue + 1)

        # U1: memory data -> operands
        st, pr = state_rd.data, params_rd.data
        acc = ring_rd.data.acc
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
        # U4: clip, threshold, reset, refractory
        vi_raw = Signal(signed(P.UV_BITS + 4))
        m.d.comb += vi_raw.eq(u4_vb + u4_u)
        vi = _clip(m, vi_raw, P.V_MIN, P.V_MAX, signed(P.UV_BITS))
        theta = Signal(unsigned(P.VTH_BITS + P.VTH_SHIFT))
        m.d.comb += theta.eq(u4_pr.vth << P.VTH_SHIFT)
        refr = Signal()
        m.d.comb += refr.eq(u4_ref != 0)
        fire = Signal()
        m.d.comb += fire.eq(~refr & (vi > theta))
        u5_u = Signal(signed(P.UV_BITS))
        u5_v = Signal(signed(P.UV_BITS))
        u5_ref = Signal(P.REFRACTORY_BITS)
        u5_fire = Signal()
        with m.If(refr):
            m.d.sync += [u5_v.eq(u4_v), u5_ref.eq(u4_ref - 1)]
        with m.Elif(fire):
            m.d.sync += [
                u5_v.eq(Mux(u4_pr.reset_subtract, vi - theta, 0)),
                u5_ref.eq(u4_pr.refractory),
            ]
        with m.Else():
            m.d.sync += [u5_v.eq(vi), u5_ref.eq(0)]
        m.d.sync += [u5_u.eq(u4_u), u5_fire.eq(fire & valid[3])]
        # U5: write back, spike out
        m.d.comb += [
            spike_fifo.w_data.eq(nidx[4]),
            spike_fifo.w_en.eq(valid[4] & u5_fire),
        ]
        with m.If(valid[4] & u5_fire):
            m.d.sync += reg_spikes.eq(reg_spikes + 1)

        # configuration port --------------------------------------------------------------------
        req = self.i_cfg.payload
        reply = Signal(CFG_DATA_BITS)
        rd_mem = Signal(CoreMem)
        rd_reg = Signal(range(len(CoreReg)))
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
            axon_rd.addr.eq(self.i_events.payload.axon),
            syn_rd.addr.eq(ptr),
            ring_rd.addr.eq(s1_addr),
            ring_wr.addr.eq(s2_addr),
            ring_wr.data.acc.eq(s2_sum),
            ring_wr.en.eq(s2_valid),
            state_rd.addr.eq(n_issue),
            params_rd.addr.eq(n_issue),
            state_wr.addr.eq(nidx[4]),
            state_wr.data.u.eq(u5_u),
            state_wr.data.v.eq(u5_v),
            state_wr.data.ref.eq(u5_ref),
            state_wr.en.eq(valid[4]),
        ]
        update_ring_addr = Cat(n_issue[: cfg.neuron_bits], now) if D > 1 else n_issue

        with m.FSM(name="phase"):
            with m.State("DELIVER"):
                m.d.comb += self.idle.eq(delivery_empty & ~self.i_events.valid)
                with m.If(delivery_empty & step_req):
                    m.d.sync += [step_req.eq(0), n_issue.eq(0)]
                    m.next = "UPDATE"
                with m.Elif(delivery_empty & self.i_cfg.valid):
                    m.d.comb += self.i_cfg.ready.eq(1)
                    self._cfg_access(
                        m,
                        cfg,
                        req,
                        regs,
                        rd_mem,
                        rd_reg,
                        state_rd,
                        state_wr,
                        params_rd,
                        params_wr,
                        ring_rd,
                        ring_wr,
                        axon_rd,
                        axon_wr,
                        syn_rd,
                        syn_wr,
                    )
                    with m.If(~req.write):
                        m.next = "CFG_READ"
                with m.Else():
                    # after `step`, the events waiting belong to the next delivery phase
                    m.d.comb += delivering.eq(~step_req & ~self.step)
                    with m.If(~delivery_empty | take):
                        m.d.sync += reg_deliver_cycles.eq(reg_deliver_cycles + 1)
            with m.State("CFG_READ"):
                with m.Switch(rd_mem):
                    with m.Case(CoreMem.STATE):
                        m.d.sync += reply.eq(state_rd.data.as_value())
                    with m.Case(CoreMem.PARAMS):
                        m.d.sync += reply.eq(params_rd.data.as_value())
                    with m.Case(CoreMem.RING):
                        m.d.sync += reply.eq(ring_rd.data.as_value())
                    with m.Case(CoreMem.AXONS):
                        m.d.sync += reply.eq(axon_rd.data.as_value())
                    with m.Case(CoreMem.SYNAPSES):
                        m.d.sync += reply.eq(syn_rd.data.as_value())
                    with m.Case(CoreMem.REGS), m.Switch(rd_reg):
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
                    ring_rd.addr.eq(update_ring_addr),
                    ring_wr.addr.eq(update_ring_addr),
                    ring_wr.data.acc.eq(0),
                    ring_wr.en.eq(can_issue),
                ]
                m.d.sync += reg_update_cycles.eq(reg_update_cycles + 1)
                with m.If((n_issue == N) & ~Cat(*valid).any() & ~spike_fifo.r_rdy):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += reg_steps.eq(reg_steps + 1)
                    if D > 1:
                        m.d.sync += now.eq(now + 1)
                    m.next = "DELIVER"
        return m

    def _cfg_access(
        self,
        m,
        cfg,
        req,
        regs,
        rd_mem,
        rd_reg,  # type: ignore[no-untyped-def]
        state_rd,
        state_wr,
        params_rd,
        params_wr,
        ring_rd,
        ring_wr,
        axon_rd,
        axon_wr,
        syn_rd,
        syn_wr,
    ):
        """Drive the memory ports for one configuration request (write now, or start a read)."""
        m.d.sync += [rd_mem.eq(req.mem), rd_reg.eq(req.addr)]
        ports = {
            CoreMem.STATE: (state_rd, state_wr, cfg.neuron_bits),
            CoreMem.PARAMS: (params_rd, params_wr, cfg.neuron_bits),
            CoreMem.RING: (ring_rd, ring_wr, len(ring_rd.addr)),
            CoreMem.AXONS: (axon_rd, axon_wr, cfg.axon_bits),
            CoreMem.SYNAPSES: (syn_rd, syn_wr, cfg.synapse_bits),
        }
        with m.Switch(req.mem):
            for mem, (rd, wr, bits) in ports.items():
                with m.Case(mem):
                    m.d.comb += [
                        rd.addr.eq(req.addr[:bits]),
                        wr.addr.eq(req.addr[:bits]),
                        wr.data.eq(req.data[: len(wr.data.as_value())]),
                        wr.en.eq(req.write),
                    ]
            with m.Case(CoreMem.REGS), m.If(req.write), m.Switch(req.addr):
                for r in (
                    CoreReg.NOW,
                    CoreReg.EVENTS,
                    CoreReg.DELIVERY_CYCLES,
                    CoreReg.UPDATE_CYCLES,
                    CoreReg.SPIKES,
                    CoreReg.STEPS,
                ):
                    sig = regs[r]
                    if isinstance(sig, Const):
                        continue
                    with m.Case(r.value):
                        m.d.sync += sig.eq(req.data[: len(sig)])
