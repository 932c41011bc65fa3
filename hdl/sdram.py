"""A controller for a 16-bit SDR SDRAM, such as the ULX3S's Alliance AS4C32M16SB.

The controller takes requests for runs of consecutive words, streams the write data in and
the read data out, and keeps the memory refreshed. Its pins side is a plain signature that a
board top connects to the board's SDRAM resource and a simulation connects to an SDRAM
model.

Address mapping
    A word address is ``{row, bank, column}`` with the column in the low bits. Consecutive
    addresses run along a row; the next row of the address space is in the next bank, so a
    run that follows another at the next row finds its row in a bank of its own, which can
    be opened while the other bank streams.

Bursts
    The mode register sets full-page bursts, sequential, burst writes. A run is one READ or
    WRITE command followed by one word per clock; the burst ends with the next run's READ or
    WRITE (seamless when that run's row is already open) or with a BURST TERMINATE. A row
    stays open after its run (open-page policy) until another row of its bank is wanted or
    a refresh closes every bank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "SDRAM_DATA_BITS",
    "Cmd",
    "SDRAMClocks",
    "SDRAMController",
    "SDRAMGeometry",
    "SDRAMTiming",
    "sdram_pins_signature",
    "sdram_rdata_layout",
    "sdram_request_layout",
]

#: Width of the SDRAM's data bus (an x16 part; ``dqm`` has one bit per byte).
SDRAM_DATA_BITS = 16


@dataclass(frozen=True)
class SDRAMTiming:
    """Timing figures of an SDR SDRAM, in ns unless named otherwise.

    The defaults are the AS4C32M16SB's, speed grade -7 (the ULX3S's part), from its
    datasheet's table of A.C. characteristics (Table 16) and features list. The power-up
    figures are the usual ones of the family's datasheets (its own power-up page was not
    at hand): 200 us, and 8 REFRESH commands, which also meets parts that ask for 2.

    ==================  ===============  ========  =========================================
    field               datasheet        default   meaning
    ==================  ===============  ========  =========================================
    ``t_rcd``           tRCD             21        ACTIVE to READ or WRITE, same bank
    ``t_rp``            tRP              21        PRECHARGE to ACTIVE or REFRESH, same bank
    ``t_rc``            tRC              63        ACTIVE to ACTIVE (or REFRESH), same bank
    ``t_ras``           tRAS (min)       42        ACTIVE to PRECHARGE, same bank
    ``t_ras_max``       tRAS (max)       120000    longest a row may stay open
    ``t_wr``            tWR              14        last write data in to PRECHARGE
    ``t_rrd``           tRRD             14        ACTIVE to ACTIVE, different banks
    ``t_mrd``           tMRD             14        LOAD MODE REGISTER to any command
    ``t_mrd_clocks``    tMRD             2         the same, at least this many clocks
    ``t_rfc``           tRFC             63        REFRESH to any command
    ``t_ref``           tREF             64e6      every row refreshed within this time ...
    ``refreshes``       refresh cycles   8192      ... by this many REFRESH commands
    ``t_power_up``      power-up wait    200000    stable clock and NOPs before PRECHARGE ALL
    ``init_refreshes``  power-up         8         REFRESH commands before LOAD MODE REGISTER
    ``t_ck_cl2``        tCK (CL = 2)     10        shortest clock period at CAS latency 2
    ``t_ck_cl3``        tCK (CL = 3)     7         shortest clock period at CAS latency 3
    ==================  ===============  ========  =========================================

    The average refresh interval tREFI is ``t_ref / refreshes`` (7.8125 us). tRC is
    tRAS + tRP for this part, so it never binds a controller that meets both.
    """

    t_rcd: float = 21.0
    t_rp: float = 21.0
    t_rc: float = 63.0
    t_ras: float = 42.0
    t_ras_max: float = 120_000.0
    t_wr: float = 14.0
    t_rrd: float = 14.0
    t_mrd: float = 14.0
    t_mrd_clocks: int = 2
    t_rfc: float = 63.0
    t_ref: float = 64e6
    refreshes: int = 8192
    t_power_up: float = 200_000.0
    init_refreshes: int = 8
    t_ck_cl2: float = 10.0
    t_ck_cl3: float = 7.0

    def __post_init__(self) -> None:
        for name in ("t_rcd", "t_rp", "t_rc", "t_ras", "t_wr", "t_rrd", "t_mrd", "t_rfc"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of ns, not {value!r}")
        for name in ("t_ras_max", "t_ref", "t_power_up", "t_ck_cl2", "t_ck_cl3"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a positive number of ns, not {value!r}")
        for name in ("refreshes", "init_refreshes", "t_mrd_clocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")

    def clocks(self, clk_freq: float) -> SDRAMClocks:
        """Return the figures in clock cycles at ``clk_freq`` (Hz).

        Each minimum is rounded up; the refresh interval, a maximum, is rounded down. The CAS
        latency is 2 where the clock period allows it, else 3.

        Raises
        ------
        ValueError
            If ``clk_freq`` is not positive, or is too fast for CAS latency 3.
        """
        if not isinstance(clk_freq, int | float) or clk_freq <= 0:
            raise ValueError(f"clk_freq must be a positive frequency in Hz, not {clk_freq!r}")
        t_ck = 1e9 / clk_freq
        if t_ck < self.t_ck_cl3:
            raise ValueError(
                f"clk_freq {clk_freq!r} Hz is too fast: the clock period must be at least "
                f"{self.t_ck_cl3} ns"
            )

        def up(ns: float) -> int:
            # a small tolerance, so that 40.000000001 clocks of float error is 40
            return max(1, math.ceil(ns / t_ck - 1e-9))

        return SDRAMClocks(
            rcd=up(self.t_rcd),
            rp=up(self.t_rp),
            rc=up(self.t_rc),
            ras=up(self.t_ras),
            ras_max=math.floor(self.t_ras_max / t_ck),
            wr=up(self.t_wr),
            rrd=up(self.t_rrd),
            mrd=max(self.t_mrd_clocks, up(self.t_mrd)),
            rfc=up(self.t_rfc),
            ref=math.floor(self.t_ref / t_ck),
            refi=math.floor(self.t_ref / self.refreshes / t_ck),
            power_up=up(self.t_power_up),
            cas_latency=2 if t_ck >= self.t_ck_cl2 else 3,
        )


@dataclass(frozen=True)
class SDRAMClocks:
    """The figures of an :class:`SDRAMTiming` in clock cycles (see :meth:`SDRAMTiming.clocks`):
    ``ref`` is tREF, ``refi`` the average refresh interval tREF / refreshes, ``power_up`` the
    power-up wait; the others are the minima of the same names."""

    rcd: int
    rp: int
    rc: int
    ras: int
    ras_max: int
    wr: int
    rrd: int
    mrd: int
    rfc: int
    ref: int
    refi: int
    power_up: int
    cas_latency: int


@dataclass(frozen=True)
class SDRAMGeometry:
    """The address bits of an SDRAM: ``row_bits`` (A0 ..), ``col_bits`` (A0 ..) and
    ``bank_bits`` (BA0 ..). The defaults are the AS4C32M16SB's: 8192 rows, 1024 columns,
    4 banks. A word address has :attr:`addr_bits` bits, ``{row, bank, column}``."""

    row_bits: int = 13
    col_bits: int = 10
    bank_bits: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.row_bits, int) or not 1 <= self.row_bits <= 13:
            raise ValueError(f"row_bits must be an integer from 1 to 13, not {self.row_bits!r}")
        # A10 is the auto-precharge bit of READ and WRITE: columns use A0 .. A9 at most
        if not isinstance(self.col_bits, int) or not 1 <= self.col_bits <= 10:
            raise ValueError(f"col_bits must be an integer from 1 to 10, not {self.col_bits!r}")
        if not isinstance(self.bank_bits, int) or not 1 <= self.bank_bits <= 2:
            raise ValueError(f"bank_bits must be 1 or 2, not {self.bank_bits!r}")

    @property
    def addr_bits(self) -> int:
        """Width of a word address."""
        return self.row_bits + self.bank_bits + self.col_bits

    @property
    def a_bits(self) -> int:
        """Width of the ``a`` pins: the row, and at least A0 .. A10 (A10 selects all banks
        in PRECHARGE)."""
        return max(self.row_bits, 11)

    @property
    def columns(self) -> int:
        return 1 << self.col_bits

    def split(self, addr: int) -> tuple[int, int, int]:
        """Return ``(bank, row, column)`` of word address ``addr``."""
        col = addr & (self.columns - 1)
        bank = (addr >> self.col_bits) & ((1 << self.bank_bits) - 1)
        row = addr >> (self.col_bits + self.bank_bits)
        return bank, row, col


class Cmd(enum.Enum, shape=4):
    """SDRAM commands as ``{cs_n, ras_n, cas_n, we_n}``, ``we_n`` in bit 0."""

    DESELECT = 0b1111
    NOP = 0b0111
    ACTIVE = 0b0011
    READ = 0b0101
    WRITE = 0b0100
    BURST_TERMINATE = 0b0110
    PRECHARGE = 0b0010
    REFRESH = 0b0001
    LOAD_MODE = 0b0000


def sdram_pins_signature(geometry: SDRAMGeometry) -> wiring.Signature:
    """Return the signature of the SDRAM pins, as driven by the controller.

    ``cke``, ``cs_n``, ``ras_n``, ``cas_n``, ``we_n``, ``ba``, ``a`` and ``dqm`` (one bit per
    byte, high to mask) go to the pins of the same names; ``dq_o`` is driven onto ``dq``
    while ``dq_oe`` is high, and ``dq_i`` is what ``dq`` carries. Every output is a register.
    """
    if not isinstance(geometry, SDRAMGeometry):
        raise TypeError(f"geometry must be an SDRAMGeometry, not {geometry!r}")
    return wiring.Signature(
        {
            "cke": Out(1, init=1),
            "cs_n": Out(1, init=1),
            "ras_n": Out(1, init=1),
            "cas_n": Out(1, init=1),
            "we_n": Out(1, init=1),
            "ba": Out(geometry.bank_bits),
            "a": Out(geometry.a_bits),
            "dqm": Out(SDRAM_DATA_BITS // 8, init=(1 << SDRAM_DATA_BITS // 8) - 1),
            "dq_o": Out(SDRAM_DATA_BITS),
            "dq_oe": Out(1),
            "dq_i": In(SDRAM_DATA_BITS),
        }
    )


def sdram_request_layout(geometry: SDRAMGeometry) -> data.StructLayout:
    """Return the layout of a request: ``addr`` (the first word), ``len`` (words, 1 ..
    columns; 0 is a request of nothing; a longer run wraps in its row again) and ``write``
    (1: write, 0: read)."""
    return data.StructLayout(
        {
            "addr": unsigned(geometry.addr_bits),
            "len": unsigned(geometry.col_bits + 1),
            "write": unsigned(1),
        }
    )


def sdram_rdata_layout() -> data.StructLayout:
    """Return the layout of a read word: ``data``, and ``last`` on a request's last word."""
    return data.StructLayout({"data": unsigned(SDRAM_DATA_BITS), "last": unsigned(1)})


def _mode_register(cas_latency: int) -> int:
    # A2..A0 = 111 full page, A3 = 0 sequential, A6..A4 CAS latency, A9 = 0 burst writes
    return 0b111 | (cas_latency << 4)


class SDRAMController(wiring.Component):
    """Runs of words to and from an SDR SDRAM, kept refreshed.

    A request reads or writes ``len`` words from word address ``addr`` on (see the module
    docstring for the address mapping). Requests are served in order. A run stays in its
    row: one that passes the row's last column goes on at column 0 of the same row (the
    order of a full-page burst). Write data words are taken from ``i_wdata``, one per word
    written, in order; read words leave on ``o_rdata`` in order, with ``last`` on each
    request's last word.

    Throughput: once a run's row is open, its words move at one per clock. The next request's
    row is opened while a run streams, if it is in another bank, so runs in different banks
    follow one another without a gap; a run in the same bank and another row waits for the
    PRECHARGE and ACTIVE after the run. A write whose data is late pauses the run (the burst
    is terminated and the run resumes with a new WRITE); so does a read whose words
    ``o_rdata`` cannot take.

    Read backpressure: read words go through a FIFO of ``read_fifo_depth`` words, and a read
    word is only asked of the SDRAM while the words in flight and in the FIFO are fewer than
    its depth, so ``o_rdata.ready`` may be low at any time and no word is lost. A consumer
    that takes a word every clock gets every word at one per clock.

    Refresh: a timer owes one REFRESH every ``tREF / (refreshes + refresh_postpone + 2)``;
    an owed refresh is done between requests (a new request waits for it), and once more
    than ``refresh_postpone`` are owed, the run under way is paused at the next word,
    every bank is precharged and the refreshes are done. Each row is therefore refreshed
    within tREF, and a row is never open for longer than ``refresh_postpone + 2`` timer
    periods (checked against tRAS max).

    Initialisation after reset: NOPs with DQM high for the power-up wait, PRECHARGE ALL,
    ``init_refreshes`` REFRESH commands, LOAD MODE REGISTER, and after tMRD ``ready``
    rises; requests are taken from then on.

    Pins: every output comes from a register, and ``dq_i`` goes into one. The SDRAM takes
    a command at the rising edge that ends the clock it is on the pins, and the word of a
    READ taken at edge ``e`` is sampled into the ``dq_i`` register at edge ``e`` + CAS
    latency: the SDRAM's clock is the controller's, in phase, and the board's delays with
    the SDRAM's access time (tAC) fit in one clock.

    Parameters
    ----------
    geometry
        The SDRAM's address bits (:class:`SDRAMGeometry`).
    timing
        The SDRAM's timing figures (:class:`SDRAMTiming`).
    clk_freq
        The clock frequency in Hz; the SDRAM's clock runs at this frequency.
    refresh_postpone
        How many refreshes may be owed before a run is paused for them.
    read_fifo_depth
        Depth of the read FIFO (at least CAS latency + 6, for one word per clock).

    Attributes
    ----------
    sdram : Out(sdram_pins_signature(geometry))
        The SDRAM pins.
    i_request : In(stream.Signature(sdram_request_layout(geometry)))
        Requests.
    i_wdata : In(stream.Signature(16))
        Write data, one word per word written.
    o_rdata : Out(stream.Signature(sdram_rdata_layout()))
        Read data.
    ready : Out(1)
        Initialisation is done.

    Raises
    ------
    TypeError
        If ``geometry`` or ``timing`` is of the wrong type.
    ValueError
        If ``clk_freq`` is out of range (see :meth:`SDRAMTiming.clocks`), a parameter is out
        of range, or the refresh schedule could keep a row open longer than tRAS max.
    """

    def __init__(
        self,
        geometry: SDRAMGeometry,
        timing: SDRAMTiming,
        clk_freq: float,
        *,
        refresh_postpone: int = 8,
        read_fifo_depth: int = 16,
    ):
        if not isinstance(geometry, SDRAMGeometry):
            raise TypeError(f"geometry must be an SDRAMGeometry, not {geometry!r}")
        if not isinstance(timing, SDRAMTiming):
            raise TypeError(f"timing must be an SDRAMTiming, not {timing!r}")
        clocks = timing.clocks(clk_freq)
        if not isinstance(refresh_postpone, int) or refresh_postpone < 0:
            raise ValueError(
                f"refresh_postpone must be a non-negative integer, not {refresh_postpone!r}"
            )
        min_depth = clocks.cas_latency + 6
        if not isinstance(read_fifo_depth, int) or read_fifo_depth < min_depth:
            raise ValueError(
                f"read_fifo_depth must be an integer of at least {min_depth}, "
                f"not {read_fifo_depth!r}"
            )
        # one period more than the refreshes that may be owed: the slack covers the clocks a
        # refresh takes to be issued once due (a burst terminate, tRAS, tWR, tRP)
        period = clocks.ref // (timing.refreshes + refresh_postpone + 2)
        refresh_latency = 2 + max(clocks.ras, clocks.wr + 1) + clocks.rp + clocks.rfc
        if period <= refresh_latency:
            raise ValueError(
                f"tREF {timing.t_ref} ns is too short for {timing.refreshes} refreshes "
                f"at {clk_freq} Hz: a refresh period of {period} clocks, not more than the "
                f"{refresh_latency} clocks a refresh may take to be issued"
            )
        if (refresh_postpone + 2) * period > clocks.ras_max:
            raise ValueError(
                f"refresh_postpone {refresh_postpone} could keep a row open for "
                f"{refresh_postpone + 2} refresh periods of {period} clocks, longer than "
                f"tRAS max ({clocks.ras_max} clocks)"
            )
        self._geometry = geometry
        self._timing = timing
        self._clk_freq = clk_freq
        self._clocks = clocks
        self._refresh_period = period
        self._refresh_postpone = refresh_postpone
        self._read_fifo_depth = read_fifo_depth
        super().__init__(
            {
                "sdram": Out(sdram_pins_signature(geometry)),
                "i_request": In(stream.Signature(sdram_request_layout(geometry))),
                "i_wdata": In(stream.Signature(SDRAM_DATA_BITS)),
                "o_rdata": Out(stream.Signature(sdram_rdata_layout())),
                "ready": Out(1),
            }
        )

    @property
    def geometry(self) -> SDRAMGeometry:
        return self._geometry

    @property
    def timing(self) -> SDRAMTiming:
        return self._timing

    @property
    def clk_freq(self) -> float:
        return self._clk_freq

    @property
    def clocks(self) -> SDRAMClocks:
        """The timing in clock cycles at :attr:`clk_freq`."""
        return self._clocks

    @property
    def refresh_period(self) -> int:
        """Clocks between two refreshes owed by the refresh timer."""
        return self._refresh_period

    @property
    def refresh_postpone(self) -> int:
        return self._refresh_postpone

    @property
    def read_latency(self) -> int:
        """Clocks from a read word's command decided to the word written into the FIFO:
        the command register, CAS latency, and the ``dq_i`` register."""
        return self._clocks.cas_latency + 2

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        geo, ck = self._geometry, self._clocks
        nbanks = 1 << geo.bank_bits
        cl = ck.cas_latency
        m = Module()
        pins = self.sdram

        # The command of the next clock, decided here and registered onto the pins
        cmd = Signal(Cmd, init=Cmd.NOP)
        cmd_ba = Signal(geo.bank_bits)
        cmd_a = Signal(geo.a_bits)
        dqm_high = Signal()
        wr_slot_data = Signal(SDRAM_DATA_BITS)
        wr_slot = Signal()  # a write word goes out with this command
        pin_cmd = Signal(4, init=Cmd.DESELECT.value)
        m.d.sync += [
            pin_cmd.eq(cmd),
            pins.ba.eq(cmd_ba),
            pins.a.eq(cmd_a),
            pins.dqm.eq(Mux(dqm_high, (1 << len(pins.dqm)) - 1, 0)),
            pins.dq_o.eq(wr_slot_data),
            pins.dq_oe.eq(wr_slot),
        ]
        m.d.comb += [
            pins.cke.eq(1),
            Cat(pins.we_n, pins.cas_n, pins.ras_n, pins.cs_n).eq(pin_cmd),
        ]

        def countdown(name: str, top: int) -> Signal:
            """A counter that counts down to 0 and stays there; a command loads it with
            ``n - 1`` so that the next command it gates is ``n`` clocks later."""
            s = Signal(range(max(top, 1)), name=name)
            with m.If(s != 0):
                m.d.sync += s.eq(s - 1)
            return s

        def load(counter: Signal, n: int) -> None:
            if n > 1:
                m.d.sync += counter.eq(n - 1)

        # --- Bank state and timers -------------------------------------------------------
        bank_open = Array(Signal(name=f"b{b}_open") for b in range(nbanks))
        bank_row = Array(Signal(geo.row_bits, name=f"b{b}_row") for b in range(nbanks))
        rcd = Array(countdown(f"b{b}_rcd", ck.rcd) for b in range(nbanks))
        ras = Array(countdown(f"b{b}_ras", ck.ras) for b in range(nbanks))
        rc = Array(countdown(f"b{b}_rc", ck.rc) for b in range(nbanks))
        rp = Array(countdown(f"b{b}_rp", ck.rp) for b in range(nbanks))
        wr = Array(countdown(f"b{b}_wr", ck.wr) for b in range(nbanks))
        rrd = countdown("rrd", ck.rrd)
        rfc = countdown("rfc", max(ck.rfc, ck.mrd))
        # a write word at least CAS latency + 2 clocks after a read word: the last read word
        # is on dq CAS latency clocks after its command, and one clock more lets it go off
        turnaround = countdown("turnaround", cl + 2)

        pre_ok = Array(Signal(name=f"b{b}_pre_ok") for b in range(nbanks))
        act_ok = Array(Signal(name=f"b{b}_act_ok") for b in range(nbanks))
        for b in range(nbanks):
            m.d.comb += [
                pre_ok[b].eq((ras[b] == 0) & (wr[b] == 0)),
                act_ok[b].eq((rp[b] == 0) & (rc[b] == 0) & (rrd == 0) & (rfc == 0)),
            ]
        all_pre_ok = Cat(*pre_ok).all()
        all_idle_ok = Cat(*((rp[b] == 0) & (rc[b] == 0) for b in range(nbanks))).all() & (rfc == 0)
        any_open = Cat(*bank_open).any()

        # --- Refresh timer ---------------------------------------------------------------
        period = self._refresh_period
        tick_count = Signal(range(period), init=period - 1)
        owed = Signal(range(self._refresh_postpone + 4))
        tick = Signal()
        refresh_issued = Signal()
        with m.If(self.ready):
            with m.If(tick_count == 0):
                m.d.sync += tick_count.eq(period - 1)
                m.d.comb += tick.eq(1)
            with m.Else():
                m.d.sync += tick_count.eq(tick_count - 1)
        with m.If(tick & ~refresh_issued):
            m.d.sync += owed.eq(owed + 1)
        with m.Elif(~tick & refresh_issued):
            m.d.sync += owed.eq(owed - 1)
        refresh_pending = owed != 0
        refresh_urgent = owed > self._refresh_postpone

        # --- The run under way (cur) and the next request (nxt) ----------------------------
        req = self.i_request
        cur_valid, nxt_valid = Signal(), Signal()
        cur_write, nxt_write = Signal(), Signal()
        cur_bank, nxt_bank = Signal(geo.bank_bits), Signal(geo.bank_bits)
        cur_row, nxt_row = Signal(geo.row_bits), Signal(geo.row_bits)
        cur_col, nxt_col = Signal(geo.col_bits), Signal(geo.col_bits)
        cur_left, nxt_len = Signal(geo.col_bits + 1), Signal(geo.col_bits + 1)

        refresh_mode = Signal()
        m.d.comb += refresh_mode.eq(refresh_pending & (~cur_valid | refresh_urgent))

        cur_hit = Signal()  # cur's row is open
        m.d.comb += cur_hit.eq(cur_valid & bank_open[cur_bank] & (bank_row[cur_bank] == cur_row))
        burst_open = Signal()  # a READ or WRITE burst went on in the last clock
        burst_write = Signal()
        cont = Signal()  # ... and it goes on at cur's next word
        outstanding = Signal(range(self._read_fifo_depth + 1))  # read words in flight or FIFO
        credit = Signal()
        m.d.comb += credit.eq(outstanding < self._read_fifo_depth)

        slot = Signal()  # a word of cur moves in this clock
        last = Signal()
        m.d.comb += [
            last.eq(cur_left == 1),
            slot.eq(
                self.ready
                & ~refresh_mode
                & cur_hit
                & (cont | (rcd[cur_bank] == 0))
                & Mux(cur_write, self.i_wdata.valid & (turnaround == 0), credit)
            ),
        ]

        # nxt becomes cur when cur is done, unless a refresh is owed
        load_cur = Signal()
        m.d.comb += load_cur.eq(nxt_valid & ~refresh_pending & (~cur_valid | (slot & last)))
        with m.If(slot):
            m.d.sync += [cur_col.eq(cur_col + 1), cur_left.eq(cur_left - 1)]
            with m.If(last):
                m.d.sync += cur_valid.eq(0)
        with m.If(load_cur):
            m.d.sync += [
                cur_valid.eq(1),
                cur_write.eq(nxt_write),
                cur_bank.eq(nxt_bank),
                cur_row.eq(nxt_row),
                cur_col.eq(nxt_col),
                cur_left.eq(nxt_len),
                nxt_valid.eq(0),
            ]
        m.d.comb += req.ready.eq(self.ready & (~nxt_valid | load_cur))
        with m.If(req.valid & req.ready):
            addr = req.payload.addr
            m.d.sync += [
                nxt_valid.eq(req.payload.len != 0),
                nxt_write.eq(req.payload.write),
                nxt_col.eq(addr[: geo.col_bits]),
                nxt_bank.eq(addr[geo.col_bits : geo.col_bits + geo.bank_bits]),
                nxt_row.eq(addr[geo.col_bits + geo.bank_bits :]),
                nxt_len.eq(req.payload.len),
            ]
        # a burst goes on from one clock to the next while cur's words move back to back, up
        # to the end of the run or of the row (the SDRAM's row may be longer than col_bits)
        m.d.sync += [
            burst_open.eq(slot),
            cont.eq(slot & ~last & (cur_col != geo.columns - 1)),
        ]
        with m.If(slot):
            m.d.sync += burst_write.eq(cur_write)

        # --- The bank to prepare: cur's, else nxt's if in another bank ---------------------
        prep = Signal()
        prep_bank = Signal(geo.bank_bits)
        prep_row = Signal(geo.row_bits)
        with m.If(cur_valid & ~cur_hit):
            m.d.comb += [prep.eq(1), prep_bank.eq(cur_bank), prep_row.eq(cur_row)]
        with m.Elif(nxt_valid & (~cur_valid | (nxt_bank != cur_bank))):
            m.d.comb += [prep.eq(~refresh_pending), prep_bank.eq(nxt_bank), prep_row.eq(nxt_row)]
        prep_hit = bank_open[prep_bank] & (bank_row[prep_bank] == prep_row)

        # --- Commands ----------------------------------------------------------------------
        def precharge(bank, all_banks: bool) -> None:  # type: ignore[no-untyped-def]
            m.d.comb += [cmd.eq(Cmd.PRECHARGE), cmd_ba.eq(bank), cmd_a[10].eq(all_banks)]
            for b in range(nbanks):
                with m.If(Const(1) if all_banks else bank == b):
                    m.d.sync += bank_open[b].eq(0)
                    load(rp[b], ck.rp)

        def refresh() -> None:
            m.d.comb += cmd.eq(Cmd.REFRESH)
            load(rfc, ck.rfc)

        read_slot = Signal()
        m.d.comb += read_slot.eq(slot & ~cur_write)
        with m.FSM(name="init"):
            with m.State("POWER_UP"):
                wait = Signal(range(ck.power_up), init=ck.power_up - 1)
                m.d.comb += dqm_high.eq(1)
                with m.If(wait != 0):
                    m.d.sync += wait.eq(wait - 1)
                with m.Else():
                    precharge(0, all_banks=True)
                    m.next = "INIT_REFRESH"
            with m.State("INIT_REFRESH"):
                count = Signal(range(self._timing.init_refreshes + 1))
                m.d.comb += dqm_high.eq(1)
                with m.If(all_idle_ok):
                    refresh()
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == self._timing.init_refreshes - 1):
                        m.next = "LOAD_MODE"
            with m.State("LOAD_MODE"):
                m.d.comb += dqm_high.eq(1)
                with m.If(rfc == 0):
                    m.d.comb += [cmd.eq(Cmd.LOAD_MODE), cmd_a.eq(_mode_register(cl))]
                    load(rfc, ck.mrd)
                    m.next = "SETTLE"
            with m.State("SETTLE"), m.If(rfc == 0):
                m.d.sync += self.ready.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(slot & ~cont):
                    m.d.comb += [
                        cmd.eq(Mux(cur_write, Cmd.WRITE, Cmd.READ)),
                        cmd_ba.eq(cur_bank),
                        cmd_a.eq(cur_col),
                    ]
                with m.Elif(burst_open & ~slot):
                    m.d.comb += [cmd.eq(Cmd.BURST_TERMINATE), dqm_high.eq(burst_write)]
                with m.Elif(refresh_mode):
                    with m.If(any_open & all_pre_ok):
                        precharge(0, all_banks=True)
                    with m.Elif(~any_open & all_idle_ok):
                        refresh()
                        m.d.comb += refresh_issued.eq(1)
                with m.Elif(prep & ~prep_hit):
                    with m.If(bank_open[prep_bank] & pre_ok[prep_bank]):
                        precharge(prep_bank, all_banks=False)
                    with m.Elif(~bank_open[prep_bank] & act_ok[prep_bank]):
                        m.d.comb += [cmd.eq(Cmd.ACTIVE), cmd_ba.eq(prep_bank), cmd_a.eq(prep_row)]
                        for b in range(nbanks):
                            with m.If(prep_bank == b):
                                m.d.sync += [bank_open[b].eq(1), bank_row[b].eq(prep_row)]
                                load(rcd[b], ck.rcd)
                                load(ras[b], ck.ras)
                                load(rc[b], ck.rc)
                        load(rrd, ck.rrd)

        # --- Write words ---------------------------------------------------------------------
        m.d.comb += self.i_wdata.ready.eq(slot & cur_write)
        with m.If(slot & cur_write):
            m.d.comb += [wr_slot.eq(1), wr_slot_data.eq(self.i_wdata.payload)]
            for b in range(nbanks):
                with m.If(cur_bank == b):
                    load(wr[b], ck.wr)
        with m.If(read_slot):
            load(turnaround, cl + 2)

        # --- Read words: tokens follow the command to the dq_i register, then the FIFO -------
        m.submodules.rfifo = rfifo = fifo.SyncFIFOBuffered(
            width=SDRAM_DATA_BITS + 1, depth=self._read_fifo_depth
        )
        latency = self.read_latency
        tok_valid = Signal(latency)
        tok_last = Signal(latency)
        dq_q = Signal(SDRAM_DATA_BITS)
        m.d.sync += [
            tok_valid.eq(Cat(read_slot, tok_valid[:-1])),
            tok_last.eq(Cat(last, tok_last[:-1])),
            dq_q.eq(pins.dq_i),
        ]
        m.d.comb += [
            rfifo.w_en.eq(tok_valid[-1]),
            rfifo.w_data.eq(Cat(dq_q, tok_last[-1])),
            self.o_rdata.valid.eq(rfifo.r_rdy),
            self.o_rdata.payload.eq(rfifo.r_data),
            rfifo.r_en.eq(self.o_rdata.ready),
        ]
        taken = self.o_rdata.valid & self.o_rdata.ready
        with m.If(read_slot & ~taken):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(~read_slot & taken):
            m.d.sync += outstanding.eq(outstanding - 1)
        return m
