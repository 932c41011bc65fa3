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
``u`` and ``v`` with four multipliers, and writes its state back; spikes leave on
``o_spikes`` through a FIFO. The update issues a neuron only when the FIFO has room for
every neuron in flight, so backpressure on ``o_spikes`` pauses the update without losing a
spike. When the last spike has left, ``done`` pulses and ``now`` advances.

Between steps the configuration port (``i_cfg``/``o_cfg``) writes and reads every memory and
register; it is served only while the delivery pipeline is empty and no update runs.

Structure. The core owns the memories, their read registers, the spike FIFO and the phases,
and composes four components, each with a declared signature and testable alone:
:class:`~spikefab.hdl.delivery.DeliveryPipeline` (the delivery, from ``i_events`` to the
ring), :class:`~spikefab.hdl.lif.LIFDatapath` (stages U1 .. U7 of the update, a stream of
neurons in and out), :class:`~spikefab.hdl.core_regs.ConfigPort` (``i_cfg``/``o_cfg`` and
the registers of ``CoreMem.REGS``) and, with ``learning``, the
:class:`~spikefab.hdl.learning.LearningUnit`.

Timing. Every memory's read data is registered before it meets more than a multiplexer;
every memory port is driven from registers through at most a multiplexer whose selects are
flip-flops; the phases are one flip-flop each, and every control decision (is the delivery
pipeline empty, may the update issue a neuron, is the update over, does a counter count) is
a flip-flop computed a cycle ahead; the 32-bit counters count in 16-bit halves; and the decay
products are split into 12 x 13-bit halves whose operand and product registers
(reset-less) Yosys packs into the DSP blocks, so that the multiplications run between
registers of the DSP blocks themselves.
This costs latency, not throughput: with the events offered back to back and ``o_spikes``
always ready, a delivery phase of ``E`` synaptic events takes ``E + 10`` cycles and an update
``N + 11`` (``DELIVERY_CYCLES`` and ``UPDATE_CYCLES``; contract 6.3).

Memories. The neuron state and the ring are read and written at two addresses on every
clock, so they are simple dual-port memories. The synapse table, the axon table and the
neuron parameters are only read while the core runs and written only through the
configuration port, so they are single-port memories (one address for reads and writes, the
read disabled while writing), in one of two arrangements:

- *dense* (the default off the iCE40): three memories whose words are their own fields, a
  synapse entry, an axon row, a neuron's parameters. A block RAM holds as many entries as
  its narrowest configuration that fits the fields allows (``boards/report.py``,
  ``bits_per_entry``).
- *merged banks* (on an iCE40 platform, ``platform.family == "iCE40"``, or with
  ``merged_banks=True``): two *banks*, the synapse bank with the synapse entries and the low
  :data:`PARAMS_SPLIT` bits of each neuron's parameters, the axon bank with the axon rows
  and the rest of the parameters. Delivery reads the synapse and the axon table, the update
  reads the parameters, never both at once. The banks are marked ``ram_style = "huge"`` so
  that Yosys maps them to the UP5K's single-port SPRAM, its only memories deep enough for
  the tables (there are four). Since the SPRAM has no initial contents, the synthesis
  script must delete the memories' ``$meminit`` cells (Amaranth always emits zeros;
  contract 6.3 has the image write every word anyway, see ``bench/synth_core.py``).

Both arrangements read the same words at the same latency; the regression runs both.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2
from spikefab.hdl.cfg_bus import cfg_reply_signature, cfg_request_signature
from spikefab.hdl.core_regs import ConfigPort
from spikefab.hdl.delivery import DeliveryPipeline
from spikefab.hdl.layouts import (
    NEURON_PARAMS,
    NEURON_STATE,
    CoreConfig,
    CoreMem,
)
from spikefab.hdl.learning import LearningUnit
from spikefab.hdl.lif import LIFDatapath
from spikefab.hdl.sdram import sdram_pins_signature
from spikefab.hdl.synapse_store import SDRAMOptions

__all__ = ["NeuronCore"]

#: Depth of the output spike FIFO (a power of two); the update keeps this many places for
#: spikes in flight.
SPIKE_FIFO_DEPTH = 16
#: Update stages before the LIF datapath: U0 (the memories' words arrive) and U1 (registered).
UPDATE_STAGES = 2
#: Bits of a neuron's parameter word held in the synapse bank; the rest are in the axon bank.
PARAMS_SPLIT = 32


class NeuronCore(wiring.Component):
    """A LIF neuron core, bit-exact with the contract.

    Parameters
    ----------
    config
        Sizes of the core (:class:`~spikefab.hdl.layouts.CoreConfig`).
    merged_banks
        The memory arrangement (see the module's documentation): ``None`` chooses by the
        platform (merged banks on an iCE40, dense memories elsewhere).
    sdram
        With ``config.synapse_memory == "sdram"``: the SDRAM and its clock
        (:class:`~spikefab.hdl.synapse_store.SDRAMOptions`; the ULX3S's part at 50 MHz, in
        clock domain ``sdram``, by default).

    Attributes
    ----------
    i_events : In(stream.Signature(config.event_layout))
        Axon events of the delivery phase.
    o_spikes : Out(stream.Signature(config.spike_layout))
        Neurons that spiked, in neuron order, during the update phase.
    i_cfg : In(cfg_request_signature(CoreMem, config.addr_bits))
        Memory and register writes and reads, between steps (:mod:`~spikefab.hdl.cfg_bus`).
    o_cfg : Out(cfg_reply_signature())
        The data of each read, in order.
    step : In(1)
        Pulse after the last event of the step has been accepted: run the learning phase of
        the previous step if it is pending, then the update.
    learn : In(1)
        Pulse: run the pending learning phase now, once the delivery has drained (so that the
        weights and traces can be read after a run; contract 6.4).
    done : Out(1)
        Pulses once the update has finished and every spike has left ``o_spikes``.
    idle : Out(1)
        No delivery, update or configuration access is under way.
    sdram : Out(sdram_pins_signature(geometry))
        The SDRAM's pins, with ``config.synapse_memory == "sdram"``.
    """

    def __init__(
        self,
        config: CoreConfig,
        *,
        merged_banks: bool | None = None,
        sdram: SDRAMOptions | None = None,
    ):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if merged_banks not in (None, True, False):
            raise TypeError(f"merged_banks must be None, True or False, not {merged_banks!r}")
        if sdram is None:
            sdram = SDRAMOptions()
        if not isinstance(sdram, SDRAMOptions):
            raise TypeError(f"sdram must be an SDRAMOptions, not {sdram!r}")
        self._config = config
        self._merged_banks = merged_banks
        self._sdram = sdram if config.synapse_memory == "sdram" else None
        if self._sdram is not None:
            if merged_banks:
                raise ValueError("a core with its synapses in SDRAM has no merged banks")
            # checks that the table fits in the SDRAM, and the SDRAM's clock
            self._store = self._sdram.store(config.synapse_layout.size, config.synapses)
        members = {
            "i_events": In(stream.Signature(config.event_layout)),
            "o_spikes": Out(stream.Signature(config.spike_layout)),
            "i_cfg": In(cfg_request_signature(CoreMem, config.addr_bits)),
            "o_cfg": Out(cfg_reply_signature()),
            "step": In(1),
            "learn": In(1),
            "done": Out(1),
            "idle": Out(1),
        }
        if self._sdram is not None:
            members["sdram"] = Out(sdram_pins_signature(self._sdram.geometry))
        super().__init__(members)

    @property
    def config(self) -> CoreConfig:
        return self._config

    def merged_banks(self, platform) -> bool:  # type: ignore[no-untyped-def]
        """Whether the parameters share the synapse and axon banks on ``platform``.

        ``merged_banks=None`` (the default) merges them on an iCE40, whose four SPRAMs are
        the only memories deep enough for the tables, and keeps three dense memories
        elsewhere.
        """
        if self._sdram is not None:
            return False
        if self._merged_banks is not None:
            return self._merged_banks
        return getattr(platform, "family", None) == "iCE40"

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        N, D = cfg.neurons, cfg.delay_slots
        nb = cfg.neuron_bits
        m = Module()

        # memories --------------------------------------------------------------------------
        # No word read in the cycle it is written is ever used (the delivery forwards the three
        # writes its ring read misses; the banks do not read while writing), so Yosys need not
        # add collision logic (no_rw_check). Yosys honours that attribute only when it merges a
        # register into an asynchronous read port, so the state and the ring are read that
        # way, into reset-less registers (state_word, ring_word) that become the block RAMs'
        # own; from a synchronous port it would keep Amaranth's "old data on collision" and
        # emulate it on an iCE40 with a comparator in front of the RAM.
        dual = {"no_rw_check": 1}
        bank = dict(dual)
        if getattr(platform, "family", None) == "iCE40":
            bank["ram_style"] = "huge"
        syn_bits, axon_bits = cfg.synapse_layout.size, cfg.axon_layout.size
        merged = self.merged_banks(platform)
        if merged:
            # the parameter rows follow the tables, from a power of two on (word base + n); a
            # bank is 2 * base words deep, a power of two (the SPRAM is deep enough)
            hi_bits = NEURON_PARAMS.size - PARAMS_SPLIT
            syn_base, axon_base = max(cfg.synapses, N), max(cfg.axons, N)
            syn_shape, syn_depth = max(syn_bits, PARAMS_SPLIT), 2 * syn_base
            axon_shape, axon_depth = max(axon_bits, hi_bits), 2 * axon_base
        else:
            # dense: each table in words of its own fields, the parameters in a third memory
            syn_shape, syn_depth = syn_bits, cfg.synapses
            axon_shape, axon_depth = axon_bits, cfg.axons
        m.submodules.state = state = Memory(shape=NEURON_STATE, depth=N, init=[], attrs=dual)
        m.submodules.ring = ring = Memory(
            shape=cfg.ring_layout, depth=cfg.ring_depth, init=[], attrs=dual
        )
        sdram = self._sdram is not None
        if not sdram:
            m.submodules.syn_bank = syn_bank = Memory(
                shape=syn_shape, depth=syn_depth, init=[], attrs=bank
            )
        m.submodules.axon_bank = axon_bank = Memory(
            shape=axon_shape, depth=axon_depth, init=[], attrs=bank
        )
        if not merged:
            m.submodules.params = params_mem = Memory(
                shape=NEURON_PARAMS.size, depth=N, init=[], attrs=bank
            )
            params_rd, params_wr = params_mem.read_port(), params_mem.write_port()
            params_addr = Signal.like(params_rd.addr)
            m.d.comb += [
                params_rd.addr.eq(params_addr),
                params_wr.addr.eq(params_addr),
                params_rd.en.eq(~params_wr.en),
            ]
        state_rd, state_wr = state.read_port(domain="comb"), state.write_port()
        ring_rd, ring_wr = ring.read_port(domain="comb"), ring.write_port()
        state_word = Signal(NEURON_STATE, reset_less=True)
        ring_word = Signal(signed(cfg.acc_bits), reset_less=True)
        m.d.sync += [state_word.eq(state_rd.data), ring_word.eq(ring_rd.data.acc)]
        axon_rd, axon_wr = axon_bank.read_port(), axon_bank.write_port()
        # a bank has one address, and does not read while it writes
        if not sdram:
            syn_rd, syn_wr = syn_bank.read_port(), syn_bank.write_port()
            syn_addr = Signal.like(syn_rd.addr)
            m.d.comb += [
                syn_rd.addr.eq(syn_addr),
                syn_wr.addr.eq(syn_addr),
                syn_rd.en.eq(~syn_wr.en),
            ]
        axon_addr = Signal.like(axon_rd.addr)
        m.d.comb += [
            axon_rd.addr.eq(axon_addr),
            axon_wr.addr.eq(axon_addr),
            axon_rd.en.eq(~axon_wr.en),
        ]

        def params_row(base: int, n):  # type: ignore[no-untyped-def]
            """The bank address ``base + n`` of neuron ``n``'s parameters (``base >= N``)."""
            return Cat(n[:nb], Const(0, exact_log2(base) - nb), Const(1, 1))

        # the spike FIFO: the update's credits (`claimed`) keep it from overflowing, so unlike
        # amaranth.lib.fifo's, a write does not look at its level
        m.submodules.spike_fifo = spike_fifo = Memory(shape=nb, depth=SPIKE_FIFO_DEPTH, init=[])
        spike_wr, spike_rd = spike_fifo.write_port(), spike_fifo.read_port(domain="comb")

        # registers ----------------------------------------------------------------------------
        # the configuration port and the registers (hdl/core_regs.py)
        m.submodules.regs = cp = ConfigPort(cfg)
        now = cp.now if D > 1 else Const(0, 1)
        step_req = Signal()
        with m.If(self.step):
            m.d.sync += step_req.eq(1)

        # the learning unit and its registers (contract 6.4); without it they read 0
        pending = Signal()  # the learning phase of the last update's step has not run
        learn_req = Signal()  # `learn` was pulsed: run the pending phase once delivery drains
        if cfg.learning:
            m.submodules.learning = lu = LearningUnit(cfg)
            # the rule's registers, written through the configuration port
            for name in ("amp", "decay", "bump", "clamp", "plastic_axons", "learn_neurons"):
                m.d.comb += getattr(lu, name).eq(getattr(cp, name))
        else:
            lu = None
        learn_on = Signal()  # PLASTIC_AXONS != 0, registered
        m.d.sync += learn_on.eq(lu.plastic_axons != 0 if lu is not None else 0)
        learn_done = lu.done if lu is not None else Const(0, 1)

        # phase flags (see "phases" below), which select the memory ports
        updating = Signal()  # the update runs (UPDATE)
        learning = Signal()  # the learning unit runs (LEARN)
        accepting = Signal(init=1)  # DELIVER, and `step` has not been seen
        cfg_sel = {mem: cp.sel[mem.value] for mem in CoreMem}
        # cfg_sel[mem]: the registered request for `mem` is served in this cycle

        # spikes out, from the FIFO's head (its tail is written in U8)
        spike_head = Signal(range(SPIKE_FIFO_DEPTH))
        spike_tail = Signal(range(SPIKE_FIFO_DEPTH))
        spike_level = Signal(range(SPIKE_FIFO_DEPTH + 1))
        spike_out = Signal()
        m.d.comb += [
            spike_rd.addr.eq(spike_head),
            self.o_spikes.valid.eq(spike_level != 0),
            self.o_spikes.payload.neuron.eq(spike_rd.data),
            spike_out.eq(self.o_spikes.valid & self.o_spikes.ready),
        ]
        with m.If(spike_out):
            m.d.sync += spike_head.eq(spike_head + 1)

        # read registers ------------------------------------------------------------------------
        # every memory word is registered once more after the memory's own read register; the
        # ring word with the forwarding of two of the delivery's writes (in the delivery
        # pipeline, D4)
        state_q = Signal(NEURON_STATE)
        ring_q = Signal(signed(cfg.acc_bits))
        syn_q = Signal(syn_shape)
        axon_q = Signal(len(axon_rd.data))
        m.d.sync += [state_q.eq(state_word), axon_q.eq(axon_rd.data)]
        if not sdram:
            m.d.sync += syn_q.eq(syn_rd.data)
        if merged:
            params_q = NEURON_PARAMS(Cat(syn_q[:PARAMS_SPLIT], axon_q[:hi_bits]))
        else:
            params_q = Signal(NEURON_PARAMS)
            m.d.sync += params_q.eq(params_rd.data)

        # delivery pipeline ---------------------------------------------------------------------
        # delivery pipeline ---------------------------------------------------------------------
        # hdl/delivery.py. After `step`, the events waiting belong to the next delivery phase;
        # a configuration request (or `learn`) is served first once the pipeline is empty.
        inflight = self._store.max_inflight if sdram else 4
        m.submodules.delivery = dp = DeliveryPipeline(cfg, prefetch=inflight)
        delivery_empty = dp.empty
        wiring.connect(m, wiring.flipped(self.i_events), dp.i_events)
        m.d.comb += [
            dp.allow.eq(
                accepting & ~self.step & ~(delivery_empty & (self.i_cfg.valid | learn_req))
            ),
            dp.axon_data.eq(axon_rd.data[:axon_bits]),
            dp.axon_q.eq(axon_q[:axon_bits]),
            dp.ring_word.eq(ring_word),
            ring_q.eq(dp.acc),
        ]
        if sdram:
            # the synapse table in SDRAM (hdl/synapse_store.py): the delivery's ranges go to
            # the store, which reads them ahead, and their entries come back
            m.submodules.store = store = self._store
            wiring.connect(m, store.sdram, wiring.flipped(self.sdram))
            wiring.connect(m, dp.o_range, store.i_range)
            wiring.connect(m, store.o_entry, dp.i_entry)
        else:
            m.d.comb += dp.syn_q.eq(syn_q[:syn_bits])
        if D > 1:
            m.d.comb += dp.now.eq(now)
        m.d.comb += [cp.count_events.eq(dp.event), cp.count_delivery.eq(dp.tick)]

        # update pipeline -----------------------------------------------------------------------
        # U0: the memories' words arrive (into the read registers); U1 .. U7: the LIF datapath
        # (operands, the decay products in halves, the decays, new u and decayed v plus bias,
        # v + u, the comparisons, clip, threshold, reset and refractory); U8: write back,
        # spike out.
        n_issue = Signal(range(N + 1))
        valid = [Signal(name=f"u{k}_valid") for k in range(UPDATE_STAGES)]
        nidx = [Signal(nb, name=f"u{k}_n") for k in range(UPDATE_STAGES)]
        # claimed: places of the spike FIFO taken by a spike or claimed by a neuron in flight
        # (U0 .. U8), the level of the FIFO plus sum(valid)
        claimed = Signal(range(SPIKE_FIFO_DEPTH + 1))
        # issue: a neuron is issued this cycle, decided in the previous one. Issuing the next
        # requires room in the spike FIFO for every neuron in flight, this one included:
        # claimed + issue + 1 <= SPIKE_FIFO_DEPTH, written as two comparisons.
        issue = Signal()
        m.d.sync += issue.eq(
            updating
            & ~Mux(issue, n_issue == N - 1, n_issue == N)
            & Mux(issue, claimed <= SPIKE_FIFO_DEPTH - 2, claimed <= SPIKE_FIFO_DEPTH - 1)
        )
        m.d.sync += [valid[0].eq(issue), nidx[0].eq(n_issue)]
        for k in range(1, UPDATE_STAGES):
            m.d.sync += [valid[k].eq(valid[k - 1]), nidx[k].eq(nidx[k - 1])]
        with m.If(issue):
            m.d.sync += n_issue.eq(n_issue + 1)

        # U1 .. U7: the LIF datapath (hdl/lif.py), fed from the read registers; its result
        # arrives in U8. o_spikes' backpressure never reaches it: the spike FIFO's credits do
        # that, so it is always ready and its registers have no enable.
        m.submodules.lif = lif = LIFDatapath(cfg.acc_bits, nb)
        m.d.comb += [
            lif.i_neuron.valid.eq(valid[1]),
            lif.i_neuron.payload.state.eq(state_q),
            lif.i_neuron.payload.params.eq(params_q),
            lif.i_neuron.payload.acc.eq(ring_q),
            lif.i_neuron.payload.tag.eq(nidx[1]),
            lif.o_neuron.ready.eq(1),
        ]
        u8 = lif.o_neuron.payload
        u8_fire = u8.fire
        # U8: write back, spike out (u8_fire: the neuron in U8 is valid and spikes)
        m.d.comb += [
            spike_wr.addr.eq(spike_tail),
            spike_wr.data.eq(u8.tag),
            spike_wr.en.eq(u8_fire),
        ]
        with m.If(u8_fire):
            m.d.sync += spike_tail.eq(spike_tail + 1)
        m.d.sync += spike_level.eq(spike_level + u8_fire - spike_out)
        m.d.comb += cp.count_spikes.eq(u8_fire)
        # a place is freed by a neuron written back without a spike, or by a spike leaving
        # (counted a cycle late, which can only delay an issue)
        spike_left = Signal()
        m.d.sync += [
            spike_left.eq(spike_out),
            claimed.eq(claimed + issue - (lif.o_neuron.valid & ~u8_fire) - spike_left),
        ]
        # the update is over: every neuron issued and written back, every spike gone (nothing
        # enters any more, so this holds until `done`, which it is)
        update_over = Signal()
        m.d.sync += update_over.eq(
            updating
            & ~update_over
            & (n_issue == N)
            & ~Cat(*valid, lif.busy).any()
            & ~self.o_spikes.valid
        )
        m.d.comb += self.done.eq(update_over)
        m.d.comb += [
            cp.count_update.eq(updating),
            cp.count_steps.eq(update_over),
            cp.advance.eq(update_over),
        ]

        # configuration port -------------------------------------------------------------------
        # A request is taken in DELIVER (`accepting`) once the delivery pipeline is empty, and
        # held in cp.req; in the next cycle (cfg_sel) it drives the memory ports below.
        wiring.connect(m, wiring.flipped(self.i_cfg), cp.i_cfg)
        wiring.connect(m, cp.o_cfg, wiring.flipped(self.o_cfg))
        req, data = cp.req, cp.req.data
        accept = cp.accepted
        m.d.comb += [
            cp.enable.eq(accepting & delivery_empty & ~learn_req),
            cp.state_q.eq(state_q),
            cp.params_q.eq(params_q),
            cp.ring_q.eq(ring_q),
            cp.axon_q.eq(axon_q[:axon_bits]),
            cp.syn_q.eq(syn_q[:syn_bits]),
        ]

        # memory ports ---------------------------------------------------------------------------
        # by default the delivery pipeline owns them; the update and the configuration port
        # take them over (their selects are flip-flops)
        ring_cfg_addr = req.addr[: len(ring_rd.addr)]
        with m.If(updating):
            m.d.comb += [
                ring_rd.addr.eq(Cat(n_issue[:nb], now) if D > 1 else n_issue),
                ring_wr.addr.eq(Cat(nidx[0], now) if D > 1 else nidx[0]),
                ring_wr.data.acc.eq(0),
                ring_wr.en.eq(valid[0]),
            ]
        with m.Elif(cfg_sel[CoreMem.RING]):
            m.d.comb += [
                ring_rd.addr.eq(ring_cfg_addr),
                ring_wr.addr.eq(ring_cfg_addr),
                ring_wr.data.eq(data[: cfg.acc_bits]),
                ring_wr.en.eq(req.write),
            ]
        with m.Else():
            m.d.comb += [
                ring_rd.addr.eq(dp.ring_addr),
                ring_wr.addr.eq(dp.ring_wr_addr),
                ring_wr.data.acc.eq(dp.ring_wr_data),
                ring_wr.en.eq(dp.ring_wr_en),
            ]

        if sdram:
            self._sdram_access(m, store, cfg_sel[CoreMem.SYNAPSES], cp, syn_q)
        else:
            # the synapse bank: the learning unit, then (merged) the update's parameters, then
            # the configuration port, else the delivery
            owners = []
            if lu is not None:
                owners.append(
                    (
                        learning,
                        [
                            syn_addr.eq(lu.syn_addr),
                            syn_wr.data.eq(lu.syn_wdata.as_value()),
                            syn_wr.en.eq(lu.syn_we),
                        ],
                    )
                )
            if merged:
                owners.append((updating, [syn_addr.eq(params_row(syn_base, n_issue))]))
                owners.append(
                    (
                        cfg_sel[CoreMem.PARAMS],
                        [
                            syn_addr.eq(params_row(syn_base, req.addr)),
                            syn_wr.data.eq(data[:PARAMS_SPLIT]),
                            syn_wr.en.eq(req.write),
                        ],
                    )
                )
            owners.append(
                (
                    cfg_sel[CoreMem.SYNAPSES],
                    [
                        syn_addr.eq(req.addr[: cfg.synapse_bits]),
                        syn_wr.data.eq(data[:syn_bits]),
                        syn_wr.en.eq(req.write),
                    ],
                )
            )
            for k, (cond, stmts) in enumerate(owners):
                with m.If(cond) if k == 0 else m.Elif(cond):
                    m.d.comb += stmts
            with m.Else():
                m.d.comb += syn_addr.eq(dp.syn_addr)

        if lu is not None:
            with m.If(learning):
                m.d.comb += axon_addr.eq(lu.axon_addr)
        if merged:
            with m.Elif(updating) if lu is not None else m.If(updating):
                m.d.comb += axon_addr.eq(params_row(axon_base, n_issue))
            with m.Elif(cfg_sel[CoreMem.PARAMS]):
                m.d.comb += [
                    axon_addr.eq(params_row(axon_base, req.addr)),
                    axon_wr.data.eq(data[PARAMS_SPLIT : NEURON_PARAMS.size]),
                    axon_wr.en.eq(req.write),
                ]
        with (
            m.Elif(cfg_sel[CoreMem.AXONS])
            if merged or lu is not None
            else m.If(cfg_sel[CoreMem.AXONS])
        ):
            m.d.comb += [
                axon_addr.eq(req.addr[: cfg.axon_bits]),
                axon_wr.data.eq(data[:axon_bits]),
                axon_wr.en.eq(req.write),
            ]
        with m.Else():
            m.d.comb += axon_addr.eq(dp.axon_addr)

        if not merged:
            with m.If(cfg_sel[CoreMem.PARAMS]):
                m.d.comb += [
                    params_addr.eq(req.addr[:nb]),
                    params_wr.data.eq(data[: NEURON_PARAMS.size]),
                    params_wr.en.eq(req.write),
                ]
            with m.Else():
                m.d.comb += params_addr.eq(n_issue)

        with m.If(cfg_sel[CoreMem.STATE]):
            m.d.comb += [
                state_rd.addr.eq(req.addr[:nb]),
                state_wr.addr.eq(req.addr[:nb]),
                state_wr.data.eq(data[: NEURON_STATE.size]),
                state_wr.en.eq(req.write),
            ]
        with m.Else():
            m.d.comb += [
                state_rd.addr.eq(n_issue),
                state_wr.addr.eq(u8.tag),
                state_wr.data.eq(u8.state),
                state_wr.en.eq(lif.o_neuron.valid),
            ]

        # phases ---------------------------------------------------------------------------------
        # One flip-flop per phase, exactly one set: DELIVER (also serving the events), the four
        # cycles of a configuration access, LEARN, UPDATE. A transition depends on flip-flops
        # and on at most one port's valid or ready.
        delivering = Signal(init=1)
        drained = Signal()  # DELIVER, and the delivery pipeline is empty
        learn_start = Signal()  # DELIVER -> LEARN: a step or `learn`, with learning pending
        start = Signal()  # DELIVER or LEARN -> UPDATE
        learn_back = Signal()  # LEARN -> DELIVER: the phase ran for `learn`, not for a step
        m.d.comb += [
            drained.eq(delivering & delivery_empty),
            learn_start.eq(drained & pending & (step_req | learn_req)),
            start.eq((drained & step_req & ~pending) | (learning & learn_done & step_req)),
            learn_back.eq(learning & learn_done & ~step_req),
            self.idle.eq(drained & ~self.i_events.valid & ~learn_req),
        ]
        back = Signal()  # -> DELIVER
        m.d.comb += back.eq(cp.done | update_over | learn_back)
        to_deliver = (delivering & ~start & ~learn_start & ~accept) | back
        m.d.sync += [
            delivering.eq(to_deliver),
            accepting.eq(to_deliver & ~step_req & ~self.step),
            updating.eq(start | (updating & ~update_over)),
            learning.eq(learn_start | (learning & ~learn_done)),
        ]
        # a learning phase becomes pending when an update ends on a core that learns, and
        # runs before the next update or on `learn`; `learn` with nothing pending does nothing
        with m.If(learn_start):
            m.d.sync += pending.eq(0)
        with m.Elif(update_over):
            m.d.sync += pending.eq(learn_on)
        with m.If(drained & learn_req & (learn_start | ~pending)):
            m.d.sync += learn_req.eq(0)
        with m.If(self.learn):
            m.d.sync += learn_req.eq(1)
        if lu is not None:
            with m.If(cp.pending_write):
                m.d.sync += pending.eq(data[0])
            m.d.comb += [
                cp.pending.eq(pending),
                cp.count_learn.eq(learning),
                cp.trace_q.eq(lu.cfg_rdata),
            ]
            m.d.comb += [
                lu.start.eq(learn_start),
                lu.axon_row.eq(axon_q[:axon_bits]),
                lu.syn_word.eq(syn_q[:syn_bits]),
                lu.mark_en.eq(dp.taken),
                lu.mark_axon.eq(dp.taken_axon),
                lu.post_en.eq(lif.o_neuron.valid),
                lu.post_neuron.eq(u8.tag),
                lu.post_fire.eq(u8_fire),
                lu.cfg_pre.eq(cfg_sel[CoreMem.PRE_TRACES]),
                lu.cfg_post.eq(cfg_sel[CoreMem.POST_TRACES]),
                lu.cfg_addr.eq(req.addr),
                lu.cfg_write.eq(req.write),
                lu.cfg_data.eq(data),
            ]
        with m.If(start):
            # the first neuron issues in the first cycle of UPDATE: the spike FIFO is empty and
            # nothing is in flight
            m.d.sync += [step_req.eq(0), n_issue.eq(0), issue.eq(1)]
        return m

    def _sdram_access(self, m, store, sel, cp, syn_q) -> None:  # type: ignore[no-untyped-def]
        """A configuration access to the synapse table in SDRAM: the request goes to the store
        (a write, or a read-back whose entry lands in ``syn_q``), and the port's ACCESS
        phase is held until the store has taken the write or returned the entry."""
        req = cp.req
        active = Signal()  # the access runs (from its ACCESS cycle until it is over)
        issued = Signal()  # its request has been taken by the store
        now = Signal()
        finished = Signal()
        m.d.comb += now.eq(sel | active)
        offer = now & ~issued
        m.d.comb += [
            store.i_write.valid.eq(offer & req.write),
            store.i_write.payload.index.eq(req.addr[: self._config.synapse_bits]),
            store.i_write.payload.data.eq(req.data[: len(store.i_write.payload.data)]),
            store.i_readback.valid.eq(offer & ~req.write),
            store.i_readback.payload.index.eq(req.addr[: self._config.synapse_bits]),
            store.o_readback.ready.eq(1),
        ]
        taken = (store.i_write.valid & store.i_write.ready) | (
            store.i_readback.valid & store.i_readback.ready
        )
        m.d.comb += [
            finished.eq(Mux(req.write, taken, store.o_readback.valid)),
            cp.hold.eq(now & ~finished),
        ]
        m.d.sync += [
            active.eq(now & ~finished),
            issued.eq(now & ~finished & (issued | taken)),
        ]
        with m.If(store.o_readback.valid):
            m.d.sync += syn_q.eq(store.o_readback.payload.data)
