"""A core's synapse table kept in SDRAM: ranges of entries read in order, at one entry per
two SDRAM clocks.

Address mapping
    Entry ``i`` takes two 16-bit SDRAM words: its low 16 bits at word address
    ``base + 2*i`` and its high bits (zero-extended to 16) at ``base + 2*i + 1``. ``base`` is
    even, so an entry never straddles an SDRAM row, and consecutive entries run along a row
    (``columns / 2`` entries a row) and on into the next row of the address space, which the
    controller's mapping puts in the next bank.

Reads
    A range ``{start, count}`` is split at SDRAM row ends into read requests of the
    controller (each at most a row). Up to ``prefetch`` ranges are in flight at once (taken,
    and their last entry not yet out): the requests of the next ranges go to the controller
    while the current one streams, so that it opens their rows during the current burst. A
    range of count 0 gives no entry at all (and takes no place in flight): the caller skips
    empty axons itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from spikefab.hdl.sdram import (
    SDRAM_DATA_BITS,
    SDRAMController,
    SDRAMGeometry,
    SDRAMTiming,
    sdram_pins_signature,
)

__all__ = [
    "WORDS_PER_ENTRY",
    "ClockCrossedStore",
    "SDRAMOptions",
    "SDRAMSynapseStore",
    "sdram_options",
]

#: SDRAM words per entry: entries are at most 32 bits.
WORDS_PER_ENTRY = 2


@dataclass(frozen=True)
class SDRAMOptions:
    """The SDRAM behind a core whose synapse table lives there, and how the core uses it.

    The defaults are the ULX3S's: its AS4C32M16SB at 50 MHz, twice its 25 MHz clock, in a
    domain of its own.

    ``geometry`` and ``timing`` describe the part,
    ``clk_freq`` is the clock the SDRAM and its controller run at (Hz; it sets the timing
    in clocks, the refresh interval included), ``domain`` the clock domain they run in:
    ``"sync"``, the core's own, or another (a faster clock: the store then talks to the core
    through clock-domain-crossing FIFOs, :class:`ClockCrossedStore`, and whoever builds the
    top level provides the domain). ``prefetch`` is the most ranges the store reads ahead,
    ``base`` the table's first word address; ``refresh_postpone`` and ``read_fifo_depth``
    go to the controller (:class:`~spikefab.hdl.sdram.SDRAMController`).
    """

    geometry: SDRAMGeometry = field(default_factory=SDRAMGeometry)
    timing: SDRAMTiming = field(default_factory=SDRAMTiming)
    clk_freq: float = 50e6
    prefetch: int = 4
    base: int = 0
    refresh_postpone: int = 8
    read_fifo_depth: int = 16
    domain: str = "sdram"

    def __post_init__(self) -> None:
        if not isinstance(self.domain, str) or not self.domain.isidentifier():
            raise ValueError(f"domain must be a clock domain's name, not {self.domain!r}")

    def store(self, entry_bits: int, entries: int) -> SDRAMSynapseStore | ClockCrossedStore:
        """A store of ``entries`` entries of ``entry_bits`` bits with these options (in the
        core's domain, or crossed from :attr:`domain`)."""
        store = SDRAMSynapseStore(
            entry_bits,
            entries,
            self.geometry,
            self.timing,
            self.clk_freq,
            base=self.base,
            prefetch=self.prefetch,
            refresh_postpone=self.refresh_postpone,
            read_fifo_depth=self.read_fifo_depth,
        )
        return store if self.domain == "sync" else ClockCrossedStore(store, self.domain)


def sdram_options(config, given: SDRAMOptions | None) -> SDRAMOptions | None:  # type: ignore[no-untyped-def]
    """The SDRAM options of a system (a :class:`~spikefab.hdl.layouts.SystemConfig`): None
    when its core keeps its synapses on the chip, else ``given`` or the defaults."""
    if given is not None and not isinstance(given, SDRAMOptions):
        raise TypeError(f"sdram must be an SDRAMOptions, not {given!r}")
    if config.core.synapse_memory != "sdram":
        return None
    return given if given is not None else SDRAMOptions()


class SDRAMSynapseStore(wiring.Component):
    """A table of ``entries`` entries of ``entry_bits`` bits in an SDR SDRAM.

    The store owns an :class:`~spikefab.hdl.sdram.SDRAMController` and exposes its pins as
    ``sdram``; the address mapping is in the module docstring.

    Ranges and entries: each range taken on ``i_range`` gives ``count`` entries on
    ``o_entry``, from entry ``start`` on, in order, ``last`` on the range's last one; a range
    of count 0 gives none. The caller keeps ``start + count <= entries``. ``o_entry.ready``
    may be low at any time: the controller's read FIFO holds the words read ahead, and the
    controller stops reading while it is full, so nothing is lost. Entries leave at one per
    two clocks at best (two words each).

    Writes: each ``{index, data}`` on ``i_write`` becomes a two-word write of the
    controller. Read-back: each ``{index}`` on ``i_readback`` is read as a one-entry run,
    and its entry leaves on ``o_readback``. Requests reach the controller in the order they
    are taken, and the controller serves them in order: a read-back or a range taken after a
    write sees that write, and a read-back's reply leaves after the entries of the ranges
    taken before it have been taken from ``o_entry``. Between ranges, a waiting write goes
    first, then a waiting read-back, then the next range; a range once taken has all its
    requests issued before anything else.

    Parameters
    ----------
    entry_bits
        Width of an entry, 1 to 32.
    entries
        Number of entries, a power of two.
    geometry, timing, clk_freq
        The SDRAM and its clock, as for :class:`~spikefab.hdl.sdram.SDRAMController`.
    base
        Word address of entry 0, even; the table takes ``2 * entries`` words from it.
    prefetch
        Most ranges in flight at once (at least 1; 1 reads one range at a time).
    refresh_postpone, read_fifo_depth
        Passed to the controller.

    Attributes
    ----------
    sdram : Out(sdram_pins_signature(geometry))
        The SDRAM pins.
    i_range : In(stream.Signature({start, count}))
        Ranges: ``start`` an entry index, ``count`` a number of entries (0 .. ``entries``).
    o_entry : Out(stream.Signature({data, last}))
        The entries of the ranges, in order.
    i_write : In(stream.Signature({index, data}))
        Entries to write.
    i_readback : In(stream.Signature({index}))
        Entries to read back.
    o_readback : Out(stream.Signature({data}))
        The entries read back, in order.
    ready : Out(1)
        The SDRAM is initialised; the input streams are taken from then on.

    Raises
    ------
    TypeError, ValueError
        If a parameter is of the wrong type or out of range, or the table does not fit in the
        SDRAM from ``base`` on.
    """

    def __init__(
        self,
        entry_bits: int,
        entries: int,
        geometry: SDRAMGeometry,
        timing: SDRAMTiming,
        clk_freq: float,
        *,
        base: int = 0,
        prefetch: int = 4,
        refresh_postpone: int = 8,
        read_fifo_depth: int = 16,
    ):
        if not isinstance(entry_bits, int) or not 1 <= entry_bits <= 32:
            raise ValueError(f"entry_bits must be an integer from 1 to 32, not {entry_bits!r}")
        if not isinstance(entries, int) or entries < 1 or entries & (entries - 1):
            raise ValueError(f"entries must be a power of two, not {entries!r}")
        if not isinstance(geometry, SDRAMGeometry):
            raise TypeError(f"geometry must be an SDRAMGeometry, not {geometry!r}")
        if not isinstance(base, int) or base < 0 or base % 2:
            raise ValueError(f"base must be an even non-negative word address, not {base!r}")
        if base + WORDS_PER_ENTRY * entries > 1 << geometry.addr_bits:
            raise ValueError(
                f"{entries} entries from word {base} do not fit in the SDRAM's "
                f"{1 << geometry.addr_bits} words"
            )
        if not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be a positive integer, not {prefetch!r}")
        self._ctrl = SDRAMController(
            geometry,
            timing,
            clk_freq,
            refresh_postpone=refresh_postpone,
            read_fifo_depth=read_fifo_depth,
        )
        self._entry_bits = entry_bits
        self._entries = entries
        self._geometry = geometry
        self._base = base
        self._prefetch = prefetch
        self._read_fifo_depth = read_fifo_depth
        index_bits = max(1, ceil_log2(entries))
        super().__init__(
            {
                "sdram": Out(sdram_pins_signature(geometry)),
                "i_range": In(
                    stream.Signature(
                        data.StructLayout(
                            {"start": unsigned(index_bits), "count": unsigned(index_bits + 1)}
                        )
                    )
                ),
                "o_entry": Out(
                    stream.Signature(
                        data.StructLayout({"data": unsigned(entry_bits), "last": unsigned(1)})
                    )
                ),
                "i_write": In(
                    stream.Signature(
                        data.StructLayout(
                            {"index": unsigned(index_bits), "data": unsigned(entry_bits)}
                        )
                    )
                ),
                "i_readback": In(
                    stream.Signature(data.StructLayout({"index": unsigned(index_bits)}))
                ),
                "o_readback": Out(
                    stream.Signature(data.StructLayout({"data": unsigned(entry_bits)}))
                ),
                "ready": Out(1),
            }
        )

    @property
    def controller(self) -> SDRAMController:
        """The SDRAM controller the store owns."""
        return self._ctrl

    @property
    def entry_bits(self) -> int:
        return self._entry_bits

    @property
    def entries(self) -> int:
        return self._entries

    @property
    def base(self) -> int:
        return self._base

    @property
    def prefetch(self) -> int:
        return self._prefetch

    @property
    def max_inflight(self) -> int:
        """The most ranges taken whose last entry has not been taken from ``o_entry``."""
        return self._prefetch

    def word_address(self, index: int) -> int:
        """Word address of the low half of entry ``index``."""
        return self._base + WORDS_PER_ENTRY * index

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        geo = self._geometry
        m = Module()
        m.submodules.ctrl = ctrl = self._ctrl
        wiring.connect(m, wiring.flipped(self.sdram), ctrl.sdram)
        m.d.comb += self.ready.eq(ctrl.ready)
        req = ctrl.i_request

        # Tags of the read requests in flight, in order: the request ends a range (end), its
        # entry is a read-back (rb). The controller holds at most two requests and its read
        # FIFO the words of read_fifo_depth / 2 more, so the tags never fill in practice;
        # a full tag FIFO holds reads back all the same.
        m.submodules.tags = tags = fifo.SyncFIFOBuffered(
            width=2, depth=self._read_fifo_depth // 2 + 4
        )
        # Write data waiting for the controller, a whole entry a word
        m.submodules.wfifo = wfifo = fifo.SyncFIFOBuffered(width=self._entry_bits, depth=2)

        # --- The range being split into requests ----------------------------------------------
        sp_valid = Signal()
        sp_addr = Signal(geo.addr_bits)
        sp_left = Signal(len(self.i_range.payload.count))
        col = sp_addr[: geo.col_bits]
        room = Signal(geo.col_bits)  # entries from sp_addr to the end of its row
        chunk = Signal(len(sp_left))
        chunk_last = Signal()
        m.d.comb += [
            room.eq((geo.columns - col) >> 1),
            chunk_last.eq(sp_left <= room),
            chunk.eq(Mux(chunk_last, sp_left, room)),
        ]

        # ranges taken and not yet fully out on o_entry
        inflight = Signal(range(self._prefetch + 1))
        range_in = Signal()
        range_out = Signal()
        with m.If(range_in & ~range_out):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(~range_in & range_out):
            m.d.sync += inflight.eq(inflight - 1)

        def word_addr(index):  # type: ignore[no-untyped-def]
            return self._base + Cat(0, index)

        with m.If(ctrl.ready):
            with m.If(sp_valid):
                m.d.comb += [
                    req.payload.addr.eq(sp_addr),
                    req.payload.len.eq(chunk << 1),
                    req.payload.write.eq(0),
                    req.valid.eq(tags.w_rdy),
                    tags.w_data.eq(Cat(chunk_last, 0)),
                    tags.w_en.eq(req.valid & req.ready),
                ]
                with m.If(req.valid & req.ready):
                    m.d.sync += [
                        sp_addr.eq(sp_addr + (chunk << 1)),
                        sp_left.eq(sp_left - chunk),
                    ]
                    with m.If(chunk_last):
                        m.d.sync += sp_valid.eq(0)
            with m.Elif(self.i_write.valid):
                m.d.comb += [
                    req.payload.addr.eq(word_addr(self.i_write.payload.index)),
                    req.payload.len.eq(2),
                    req.payload.write.eq(1),
                    req.valid.eq(wfifo.w_rdy),
                    self.i_write.ready.eq(req.ready & wfifo.w_rdy),
                    wfifo.w_data.eq(self.i_write.payload.data),
                    wfifo.w_en.eq(req.valid & req.ready),
                ]
            with m.Elif(self.i_readback.valid):
                m.d.comb += [
                    req.payload.addr.eq(word_addr(self.i_readback.payload.index)),
                    req.payload.len.eq(2),
                    req.payload.write.eq(0),
                    req.valid.eq(tags.w_rdy),
                    self.i_readback.ready.eq(req.ready & tags.w_rdy),
                    tags.w_data.eq(Cat(1, 1)),
                    tags.w_en.eq(req.valid & req.ready),
                ]
            with m.Else():
                m.d.comb += self.i_range.ready.eq(inflight < self._prefetch)
                with m.If(self.i_range.valid & self.i_range.ready):
                    count = self.i_range.payload.count
                    m.d.sync += [
                        sp_valid.eq(count != 0),
                        sp_addr.eq(word_addr(self.i_range.payload.start)),
                        sp_left.eq(count),
                    ]
                    m.d.comb += range_in.eq(count != 0)

        # --- Write words: the low half, then the high half --------------------------------------
        high = Signal()
        wword = Signal(2 * SDRAM_DATA_BITS)
        m.d.comb += [
            wword.eq(wfifo.r_data),
            ctrl.i_wdata.valid.eq(wfifo.r_rdy),
            ctrl.i_wdata.payload.eq(Mux(high, wword[SDRAM_DATA_BITS:], wword[:SDRAM_DATA_BITS])),
        ]
        with m.If(ctrl.i_wdata.valid & ctrl.i_wdata.ready):
            m.d.sync += high.eq(~high)
            m.d.comb += wfifo.r_en.eq(high)

        # --- Read words into entries: the low half is held, the high half passes through -------
        rd = ctrl.o_rdata
        lo = Signal(SDRAM_DATA_BITS)
        lo_valid = Signal()
        tag_end, tag_rb = tags.r_data[0], tags.r_data[1]
        both = Signal()
        entry = Cat(lo, rd.payload.data)[: self._entry_bits]
        m.d.comb += [
            both.eq(lo_valid & rd.valid & tags.r_rdy),
            self.o_entry.valid.eq(both & ~tag_rb),
            self.o_entry.payload.data.eq(entry),
            self.o_entry.payload.last.eq(tag_end & rd.payload.last),
            self.o_readback.valid.eq(both & tag_rb),
            self.o_readback.payload.data.eq(entry),
        ]
        with m.If(~lo_valid):
            m.d.comb += rd.ready.eq(1)
            with m.If(rd.valid):
                m.d.sync += [lo.eq(rd.payload.data), lo_valid.eq(1)]
        with m.Else():
            m.d.comb += rd.ready.eq(
                tags.r_rdy & Mux(tag_rb, self.o_readback.ready, self.o_entry.ready)
            )
            with m.If(rd.valid & rd.ready):
                m.d.sync += lo_valid.eq(0)
                with m.If(rd.payload.last):
                    m.d.comb += tags.r_en.eq(1)
        m.d.comb += range_out.eq(
            self.o_entry.valid & self.o_entry.ready & self.o_entry.payload.last
        )
        return m


class ClockCrossedStore(wiring.Component):
    """An :class:`SDRAMSynapseStore` in another clock domain, seen from ``sync``.

    The store (and its controller and pins) runs in ``domain``; each of its streams crosses
    through an asynchronous FIFO of ``depth`` places, and ``ready`` through a synchronizer.
    The members are the store's, with the same meaning, all in ``sync`` but ``sdram``
    (in ``domain``). The domain's reset must hold while ``sync``'s does (the FIFOs empty
    on a reset of their writing domain).

    Throughput: with ``domain`` twice as fast as ``sync``, the store's one entry per two of
    its clocks is one entry per ``sync`` clock, which the FIFOs carry.
    """

    def __init__(self, store: SDRAMSynapseStore, domain: str, depth: int = 16):
        if not isinstance(store, SDRAMSynapseStore):
            raise TypeError(f"store must be an SDRAMSynapseStore, not {store!r}")
        if domain == "sync":
            raise ValueError("a store crossed to the sync domain is the store itself")
        self._store = store
        self._domain = domain
        self._depth = depth
        super().__init__(dict(store.signature.members))

    @property
    def prefetch(self) -> int:
        return self._store.prefetch

    @property
    def max_inflight(self) -> int:
        """The most ranges taken whose last entry has not been taken from ``o_entry``: those
        in the range FIFO, in the store, and in the entry FIFO (one entry each at most)."""
        return self._store.max_inflight + 2 * self._depth + 2

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        from amaranth.hdl import DomainRenamer
        from amaranth.lib.cdc import FFSynchronizer

        m = Module()
        dom = self._domain
        m.submodules.store = store = DomainRenamer({"sync": dom})(self._store)
        wiring.connect(m, store.sdram, wiring.flipped(self.sdram))
        m.submodules.ready = FFSynchronizer(store.ready, self.ready)

        def cross(name: str, src, dst, w_domain: str, r_domain: str) -> None:  # type: ignore[no-untyped-def]
            width = len(src.payload.as_value())
            q = fifo.AsyncFIFO(width=width, depth=self._depth, w_domain=w_domain, r_domain=r_domain)
            m.submodules[f"{name}_cdc"] = q
            m.d.comb += [
                q.w_data.eq(src.payload.as_value()),
                q.w_en.eq(src.valid),
                src.ready.eq(q.w_rdy),
                dst.payload.as_value().eq(q.r_data),
                dst.valid.eq(q.r_rdy),
                q.r_en.eq(dst.ready),
            ]

        for name in ("i_range", "i_write", "i_readback"):
            cross(name, getattr(self, name), getattr(store, name), "sync", dom)
        for name in ("o_entry", "o_readback"):
            cross(name, getattr(store, name), getattr(self, name), dom, "sync")
        return m
