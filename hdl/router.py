"""The AER spike router (``docs/contract.md``, section 7).

A spike leaves core ``k`` as a neuron ``n``; the host injects a source ``s``. Each has a row
in the route-pointer table (``k * N + n``, or ``C * N + s`` for a source) giving a range of
route entries ``(dest, axon)``: ``dest < C`` sends an event on ``axon`` to core ``dest``,
``dest == C`` sends the spike's global id to the host. One spike fans out to any number of
entries (multicast). Inputs are served round-robin, one entry per clock; a full destination
stalls the router, so no event is ever dropped.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from spikefab.hdl.cfg_bus import cfg_reply_signature, cfg_request_signature
from spikefab.hdl.layouts import SystemConfig, SystemMem

__all__ = ["Router"]


class Router(wiring.Component):
    """Route spikes and injected sources to cores and to the host.

    Parameters
    ----------
    config
        The system's sizes (:class:`~spikefab.hdl.layouts.SystemConfig`).

    Attributes
    ----------
    i_spikes : In(stream.Signature(config.core.spike_layout)).array(cores)
        Spikes of each core.
    i_inject : In(stream.Signature(unsigned(source bits)))
        Sources injected by the host; served only while ``inject_en`` is high.
    o_events : Out(stream.Signature(config.core.event_layout)).array(cores)
        Axon events for each core.
    o_host : Out(stream.Signature(unsigned(pointer bits)))
        Global ids (``core * N + neuron``) of spikes routed to the host.
    i_cfg : In(cfg_request_signature(SystemMem, address bits))
        Reads and writes of the two tables, served while the router is idle
        (:mod:`~spikefab.hdl.cfg_bus`).
    o_cfg : Out(cfg_reply_signature())
        The word of each read, in order.
    busy : Out(1)
        A spike is being routed.
    events, stalls, errors : Out(32)
        Entries followed, cycles stalled on a full destination, entries with a
        destination that does not exist (they are counted and skipped).
    """

    def __init__(self, config: SystemConfig):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig, not {config!r}")
        self._config = config
        core = config.core
        self._ptr_bits = ceil_log2(config.pointer_depth)
        addr_bits = max(self._ptr_bits, ceil_log2(config.route_entries), 3)
        super().__init__(
            {
                "i_spikes": In(stream.Signature(core.spike_layout)).array(config.cores),
                "i_inject": In(stream.Signature(unsigned(max(1, ceil_log2(config.sources))))),
                "inject_en": In(1),
                "o_events": Out(stream.Signature(core.event_layout)).array(config.cores),
                "o_host": Out(stream.Signature(unsigned(self._ptr_bits))),
                "i_cfg": In(cfg_request_signature(SystemMem, addr_bits)),
                "o_cfg": Out(cfg_reply_signature()),
                "busy": Out(1),
                "events": Out(32),
                "stalls": Out(32),
                "errors": Out(32),
            }
        )

    @property
    def config(self) -> SystemConfig:
        return self._config

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        C, N = cfg.cores, cfg.core.neurons
        m = Module()

        m.submodules.pointers = pointers = Memory(
            shape=cfg.route_pointer_layout, depth=cfg.pointer_depth, init=[]
        )
        m.submodules.entries = entries = Memory(
            shape=cfg.route_entry_layout, depth=cfg.route_entries, init=[]
        )
        ptr_rd, ptr_wr = pointers.read_port(), pointers.write_port()
        ent_rd, ent_wr = entries.read_port(), entries.write_port()

        n_in = C + 1  # the cores, then the injection input
        rr = Signal(range(n_in))
        gid = Signal(self._ptr_bits)
        ptr = Signal(len(ptr_rd.data.start))
        remaining = Signal(len(ptr_rd.data.count))
        e1_valid = Signal()
        entry = ent_rd.data
        events, stalls, errors = Signal(32), Signal(32), Signal(32)
        stats = cfg.core.stats  # without the statistics counters they stay 0
        m.d.comb += [self.events.eq(events), self.stalls.eq(stalls), self.errors.eq(errors)]

        # destination of the entry in stage E1 and whether it takes the entry now
        dest_ready = Signal()
        bad_dest = Signal()
        m.d.comb += bad_dest.eq(entry.dest > C)
        for k in range(C):
            m.d.comb += [
                self.o_events[k].valid.eq(e1_valid & (entry.dest == k)),
                self.o_events[k].payload.axon.eq(entry.axon),
            ]
            with m.If(entry.dest == k):
                m.d.comb += dest_ready.eq(self.o_events[k].ready)
        m.d.comb += [
            self.o_host.valid.eq(e1_valid & (entry.dest == C)),
            self.o_host.payload.eq(gid),
        ]
        with m.If(entry.dest == C):
            m.d.comb += dest_ready.eq(self.o_host.ready)
        with m.If(bad_dest):
            m.d.comb += dest_ready.eq(1)
        advance = Signal()
        m.d.comb += advance.eq(~e1_valid | dest_ready)
        with m.If(e1_valid & dest_ready):
            with m.If(bad_dest):
                if stats:
                    m.d.sync += errors.eq(errors + 1)
            with m.Else():
                if stats:
                    m.d.sync += events.eq(events + 1)

        # defaults: the iterator owns the entry read port; the pointer port reads only in IDLE
        # and holds its data otherwise (POINTER and CFG_REPLY use it)
        m.d.comb += [ent_rd.addr.eq(ptr), ent_rd.en.eq(advance), ptr_rd.en.eq(0)]
        cfg_mem = Signal(SystemMem)
        req = self.i_cfg.payload

        with m.FSM(name="route"):
            with m.State("IDLE"):
                m.d.comb += ptr_rd.en.eq(1)
                # round-robin over the inputs, starting at rr
                picked = Signal()
                valid = [self.i_spikes[j].valid for j in range(C)]
                valid.append(self.i_inject.valid & self.inject_en)
                with m.Switch(rr):
                    for k in range(n_in):
                        with m.Case(k):
                            for off in range(n_in):
                                j = (k + off) % n_in
                                cond = m.If if off == 0 else m.Elif
                                with cond(valid[j]):
                                    if j < C:
                                        index = j * N + self.i_spikes[j].payload.neuron
                                        m.d.comb += self.i_spikes[j].ready.eq(1)
                                    else:
                                        index = C * N + self.i_inject.payload
                                        m.d.comb += self.i_inject.ready.eq(1)
                                    m.d.comb += [picked.eq(1), ptr_rd.addr.eq(index)]
                                    m.d.sync += [gid.eq(index), rr.eq((j + 1) % n_in)]
                with m.If(picked):
                    m.next = "POINTER"
                with m.Elif(self.i_cfg.valid):
                    # table access while idle; a read replies from CFG_REPLY
                    m.d.comb += self.i_cfg.ready.eq(1)
                    m.d.sync += cfg_mem.eq(req.mem)
                    with m.Switch(req.mem):
                        with m.Case(SystemMem.ROUTE_POINTERS):
                            m.d.comb += [
                                ptr_rd.addr.eq(req.addr),
                                ptr_wr.addr.eq(req.addr),
                                ptr_wr.data.eq(req.data[: len(ptr_wr.data.as_value())]),
                                ptr_wr.en.eq(req.write),
                            ]
                        with m.Case(SystemMem.ROUTE_ENTRIES):
                            m.d.comb += [
                                ent_rd.addr.eq(req.addr),
                                ent_rd.en.eq(1),
                                ent_wr.addr.eq(req.addr),
                                ent_wr.data.eq(req.data[: len(ent_wr.data.as_value())]),
                                ent_wr.en.eq(req.write),
                            ]
                    with m.If(~req.write):
                        m.next = "CFG_REPLY"
            with m.State("POINTER"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [ptr.eq(ptr_rd.data.start), remaining.eq(ptr_rd.data.count)]
                m.next = "ROUTE"
            with m.State("ROUTE"):
                m.d.comb += self.busy.eq(1)
                with m.If(advance):
                    m.d.sync += e1_valid.eq(remaining != 0)
                    with m.If(remaining != 0):
                        m.d.sync += [ptr.eq(ptr + 1), remaining.eq(remaining - 1)]
                    with m.Else():
                        m.next = "IDLE"
                with m.Else():
                    if stats:
                        m.d.sync += stalls.eq(stalls + 1)
            with m.State("CFG_REPLY"):
                m.d.comb += [
                    self.o_cfg.valid.eq(1),
                    self.o_cfg.payload.data.eq(
                        Mux(
                            cfg_mem == SystemMem.ROUTE_POINTERS,
                            ptr_rd.data.as_value(),
                            ent_rd.data.as_value(),
                        )
                    ),
                    ent_rd.en.eq(0),
                ]
                with m.If(self.o_cfg.ready):
                    m.next = "IDLE"
        return m
