"""The delivery pipeline of the neuron core (``docs/contract.md`` 3 and 6.3, delivery).

Axon events are taken on ``i_events``; for each, the axon table gives a range of synapse
entries, and each entry ``(target, weight, weight_exp, delay - 1)`` adds ``weight <<
weight_exp`` to ring word ``((now + delay - 1) mod D) * N + target``, one entry per clock,
across axon boundaries, with forwarding paths for back-to-back updates of one accumulator.
The core owns the memories: the pipeline drives their addresses and write ports, and
receives their read data (each word registered as the core's read registers do).

With its synapse table in SDRAM (``CoreConfig.synapse_memory == "sdram"``) the pipeline
does not iterate over the entries itself: each axon's non-empty range leaves on
``o_range`` for the :class:`~spikefab.hdl.synapse_store.SDRAMSynapseStore`, which reads
ranges ahead while the current one streams, and the entries come back on ``i_entry``, at
most one per clock, in order. The stages from D2 on are the same.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from spikefab.hdl.layouts import CoreConfig

__all__ = [
    "DELIVERY_LATENCY",
    "RANGE_FIFO_DEPTH",
    "DeliveryPipeline",
    "entry_layout",
    "range_layout",
]

#: Depth of the FIFO of axon ranges between the axon table and the entry iterator.
RANGE_FIFO_DEPTH = 4
#: Clocks from the first event taken to the first ring write-back.
DELIVERY_LATENCY = 8


def range_layout(config: CoreConfig) -> data.StructLayout:
    """A range of synapse entries, as the SDRAM store takes it."""
    return data.StructLayout(
        {"start": unsigned(config.synapse_bits), "count": unsigned(config.synapse_bits + 1)}
    )


def entry_layout(config: CoreConfig) -> data.StructLayout:
    """A synapse entry from the SDRAM store, ``last`` on its range's last."""
    return data.StructLayout({"data": unsigned(config.synapse_layout.size), "last": unsigned(1)})


class DeliveryPipeline(wiring.Component):
    """Deliver axon events into the dendrite ring of a core.

    Stages: an event is taken and reads the axon bank; F1: its row arrives; F2: the row
    enters the range FIFO. D0 issues an entry (reads the synapse bank), D1: the entry
    arrives, D2 turns it into a ring address and a value, D3 reads the ring, D4: the ring
    word arrives (into ``acc``), D5 adds, D6 writes back.

    Parameters
    ----------
    config
        Sizes of the core (:class:`~spikefab.hdl.layouts.CoreConfig`).
    prefetch
        With the table in SDRAM: the most ranges the store holds at once (taken, and their
        last entry not yet given back).

    Attributes
    ----------
    i_events : In(stream.Signature(config.event_layout))
        Axon events; ready only while ``allow`` is high and the range FIFO has room.
    allow : In(1)
        The core lets events in (its delivery phase, no request waiting for the pipeline).
    now : In(max(1, log2 D))
        The ring slot of the step (``NOW``).
    axon_addr : Out(axon bits)
        The axon bank address: the event offered on ``i_events``.
    axon_data, axon_q : In(axon row bits)
        The axon bank's read data (the cycle after the read) and that word registered.
    syn_addr : Out(synapse bits)
        The synapse bank address of the entry issued (D0); with the table in block RAM.
    syn_q : In(synapse entry bits)
        The entry read, registered (D1); with the table in block RAM.
    o_range : Out(stream.Signature({start, count}))
        The non-empty ranges of the events, in order; with the table in SDRAM.
    i_entry : In(stream.Signature({data, last}))
        Their entries, in order, ``last`` on a range's last; always ready (with the table in
        SDRAM).
    ring_addr : Out(range(ring depth))
        The ring's read address (D3).
    ring_word : In(signed(acc_bits))
        The ring's word read (D4, the block RAM's own register).
    acc : Out(signed(acc_bits))
        The ring word read, with the sums not yet written forwarded; registered. The core's
        update and configuration reads use it too.
    ring_wr_addr, ring_wr_data, ring_wr_en : Out
        The ring's write port (D6), from registers.
    empty : Out(1, init=1)
        Nothing in the pipeline and no event taken in the last cycle (registered).
    taken, taken_axon : Out(1), Out(axon bits)
        An event on ``taken_axon`` was taken in the last cycle (F1).
    event : Out(1)
        A synaptic event is written back in this cycle (D6).
    tick : Out(1)
        The last cycle had delivery work in it (registered).
    """

    def __init__(self, config: CoreConfig, *, prefetch: int = 4):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self._config = cfg = config
        self._prefetch = prefetch
        if cfg.synapse_memory == "sdram":
            entries = {
                "o_range": Out(stream.Signature(range_layout(cfg))),
                "i_entry": In(stream.Signature(entry_layout(cfg))),
            }
        else:
            entries = {
                "syn_addr": Out(cfg.synapse_bits),
                "syn_q": In(cfg.synapse_layout.size),
            }
        super().__init__(
            {
                "i_events": In(stream.Signature(cfg.event_layout)),
                "allow": In(1),
                "now": In(max(1, ceil_log2(cfg.delay_slots))),
                "axon_addr": Out(cfg.axon_bits),
                "axon_data": In(cfg.axon_layout.size),
                "axon_q": In(cfg.axon_layout.size),
                **entries,
                "ring_addr": Out(range(cfg.ring_depth)),
                "ring_word": In(signed(cfg.acc_bits)),
                "acc": Out(signed(cfg.acc_bits)),
                "ring_wr_addr": Out(range(cfg.ring_depth)),
                "ring_wr_data": Out(signed(cfg.acc_bits)),
                "ring_wr_en": Out(1),
                "empty": Out(1, init=1),
                "taken": Out(1),
                "taken_axon": Out(cfg.axon_bits),
                "event": Out(1),
                "tick": Out(1),
            }
        )

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        m = Module()
        m.submodules.range_fifo = range_fifo = fifo.SyncFIFO(
            width=2 * cfg.synapse_bits + 2, depth=RANGE_FIFO_DEPTH
        )
        axon_q = self.axon_q
        m.d.comb += self.axon_addr.eq(self.i_events.payload.axon)

        # An event is taken and reads the axon bank; F1: its row arrives (into axon_q); F2:
        # the row enters the range FIFO. D0 issues an entry (reads the synapse bank), D1: the
        # entry arrives (into syn_q), D2 turns it into a ring address and a value, D3 reads
        # the ring, D4: the ring word arrives (into ring_q), D5 adds, D6 writes back.
        f1_valid, f2_valid = Signal(), Signal()
        f2_nonempty, f2_single = Signal(), Signal()  # the row's count != 0, == 1
        ranges = Signal(range(RANGE_FIFO_DEPTH + 1))  # events in F2 or in the range FIFO
        ptr = Signal(cfg.synapse_bits)
        remaining = Signal(cfg.synapse_bits + 1)
        active = Signal()  # remaining != 0: D0 issues the entry at ptr
        last = Signal()  # remaining == 1
        d1_valid, d2_valid = Signal(), Signal()

        # room in the range FIFO for the events in F1, F2 and the FIFO, and one more:
        # ranges + f1_valid < RANGE_FIFO_DEPTH, written as two comparisons
        room = Signal()
        m.d.comb += room.eq(Mux(f1_valid, ranges < RANGE_FIFO_DEPTH - 1, ranges < RANGE_FIFO_DEPTH))
        m.d.comb += self.i_events.ready.eq(self.allow & room)
        take = Signal()
        m.d.comb += take.eq(self.i_events.valid & self.i_events.ready)

        # F1: the row arrives (into axon_q); F2: the row enters the range FIFO as (start, count,
        # count == 1), or is dropped if it is empty. The count is tested in two halves: as it
        # leaves the block RAM, one LUT per 4 bits (is it zero; are the low 4 bits 1), into
        # registers; in F2, one LUT across them (the block RAM's clock-to-output delay leaves
        # room for one level only on the ECP5, the routing after it on the iCE40 for few more)
        arriving = cfg.axon_layout(self.axon_data).count
        nibbles = [arriving[i : i + 4] for i in range(0, len(arriving), 4)]
        f2_nz = Signal(len(nibbles))  # nibble k of the count is not zero
        f2_low1 = Signal()  # the low nibble is 1
        m.d.sync += [f2_nz.eq(Cat(*(n.any() for n in nibbles))), f2_low1.eq(nibbles[0] == 1)]
        row = cfg.axon_layout(axon_q)
        dropped = Signal()
        m.d.comb += [
            f2_nonempty.eq(f2_nz.any()),
            f2_single.eq(f2_low1 & ~f2_nz[1:].any()),
            range_fifo.w_data.eq(Cat(row.start, row.count, f2_single)),
            range_fifo.w_en.eq(f2_valid & f2_nonempty),
            dropped.eq(f2_valid & ~f2_nonempty),
        ]
        f1_axon = Signal(cfg.axon_bits)
        m.d.comb += [self.taken.eq(f1_valid), self.taken_axon.eq(f1_axon)]
        m.d.sync += [
            f1_valid.eq(take),
            f1_axon.eq(self.i_events.payload.axon),
            f2_valid.eq(f1_valid),
            ranges.eq(ranges + f1_valid - range_fifo.r_en - dropped),
        ]
        if cfg.synapse_memory == "sdram":
            return self._elaborate_rest_sdram(m, range_fifo, ranges, f1_valid, f2_valid, take)
        # D0: the entry iterator; `active` and `last` are kept with `remaining`
        next_start = range_fifo.r_data[: cfg.synapse_bits]
        next_count = range_fifo.r_data[cfg.synapse_bits : -1]
        next_single = range_fifo.r_data[-1]
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
                active.eq(1),
                last.eq(next_single),
            ]
        m.d.sync += d1_valid.eq(active)
        m.d.comb += self.syn_addr.eq(ptr)

        # D1: the synapse entry arrives (into syn_q)
        m.d.sync += d2_valid.eq(d1_valid)
        busy = Cat(f1_valid, f2_valid, range_fifo.r_rdy, active, d1_valid)
        self._elaborate_ring(m, self.syn_q, d2_valid, busy, take)
        return m

    def _elaborate_rest_sdram(self, m, range_fifo, ranges, f1_valid, f2_valid, take):  # type: ignore[no-untyped-def]
        """The ranges to the SDRAM store and its entries back (the table in SDRAM)."""
        cfg = self._config
        # ranges leave from the FIFO's head; `inflight` counts those whose last entry has
        # not come back yet (the store holds at most `prefetch`)
        inflight = Signal(range(self._prefetch + 2))
        r = self.o_range
        m.d.comb += [
            r.valid.eq(range_fifo.r_rdy),
            r.payload.start.eq(range_fifo.r_data[: cfg.synapse_bits]),
            r.payload.count.eq(range_fifo.r_data[cfg.synapse_bits : -1]),
            range_fifo.r_en.eq(r.valid & r.ready),
        ]
        sent = r.valid & r.ready
        back = self.i_entry.valid & self.i_entry.payload.last
        m.d.sync += inflight.eq(inflight + sent - back)
        # D1: the entry arrives, registered (D2 uses it)
        syn_q = Signal(cfg.synapse_layout.size)
        d2_valid = Signal()
        m.d.comb += self.i_entry.ready.eq(1)
        m.d.sync += [d2_valid.eq(self.i_entry.valid), syn_q.eq(self.i_entry.payload.data)]
        busy = Cat(f1_valid, f2_valid, range_fifo.r_rdy, inflight != 0)
        self._elaborate_ring(m, syn_q, d2_valid, busy, take)
        return m

    def _elaborate_ring(self, m, syn_q, d2_valid, busy_before, take):  # type: ignore[no-untyped-def]
        """Stages D2 .. D6: an entry (``syn_q``, valid in D2) into the ring."""
        cfg = self._config
        D = cfg.delay_slots
        now = self.now
        ring_q, ring_word = self.acc, self.ring_word
        delivery_empty = self.empty
        d3_valid = Signal()
        d4_valid, d5_valid, d6_valid = Signal(), Signal(), Signal()

        # D2: synapse entry -> ring address and value
        entry = cfg.synapse_layout(syn_q)
        slot = Signal(range(D)) if D > 1 else Const(0, 1)
        if D > 1:
            m.d.comb += slot.eq(now[: len(slot)] + entry.delay)
        d3_addr = Signal(range(cfg.ring_depth))
        d3_val = Signal(signed(cfg.acc_bits))
        m.d.sync += [
            d3_valid.eq(d2_valid),
            d3_addr.eq(Cat(entry.target, slot) if D > 1 else entry.target),
            d3_val.eq(entry.weight << entry.weight_exp),
        ]
        # D3: the ring is read at d3_addr
        d4_addr, d4_val = Signal.like(d3_addr), Signal.like(d3_val)
        m.d.sync += [d4_valid.eq(d3_valid), d4_addr.eq(d3_addr), d4_val.eq(d3_val)]
        # D4: the ring word arrives (into ring_word). The read missed the writes of D6 in its
        # own cycle (`last` now; the word read is undefined then), in this one (d6) and in the
        # next: the first two are forwarded into ring_q now, the third is matched for
        # forwarding in D5.
        d6_addr = Signal.like(d4_addr)
        d6_sum = Signal(signed(cfg.acc_bits))
        last_valid = Signal()
        last_addr = Signal.like(d4_addr)
        last_sum = Signal.like(d6_sum)
        d5_addr, d5_val = Signal.like(d4_addr), Signal.like(d4_val)
        d5_fwd = Signal()
        m.d.sync += [
            ring_q.eq(
                Mux(
                    d6_valid & (d6_addr == d4_addr),
                    d6_sum,
                    Mux(last_valid & (last_addr == d4_addr), last_sum, ring_word),
                )
            ),
            d5_valid.eq(d4_valid),
            d5_addr.eq(d4_addr),
            d5_val.eq(d4_val),
            d5_fwd.eq(d5_valid & (d5_addr == d4_addr)),
        ]
        # D5: add, forwarding the sum about to be written
        old = Signal(signed(cfg.acc_bits))
        m.d.comb += old.eq(Mux(d5_fwd, d6_sum, ring_q))
        m.d.sync += [
            d6_valid.eq(d5_valid),
            d6_addr.eq(d5_addr),
            d6_sum.eq(old + d5_val),
        ]
        # D6: write back (from registers, see the memory ports)
        m.d.sync += [last_valid.eq(d6_valid), last_addr.eq(d6_addr), last_sum.eq(d6_sum)]

        # the pipeline is empty; registered, and only set when no event enters meanwhile
        delivery_busy = Signal()
        m.d.comb += delivery_busy.eq(
            busy_before.any() | Cat(d2_valid, d3_valid, d4_valid, d5_valid, d6_valid).any()
        )
        m.d.sync += [
            delivery_empty.eq(~delivery_busy & ~take),
            self.tick.eq(delivery_busy | take),  # the last cycle had delivery work: count it
        ]

        # D3 reads the ring; D6 writes it back, from registers; F1 marks the axon taken
        m.d.comb += [
            self.ring_addr.eq(d3_addr),
            self.ring_wr_addr.eq(d6_addr),
            self.ring_wr_data.eq(d6_sum),
            self.ring_wr_en.eq(d6_valid),
            self.event.eq(d6_valid),
        ]
