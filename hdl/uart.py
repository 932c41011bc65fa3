"""An 8N1 UART: a receiver, a transmitter, and both together on a pair of pins.

A character on the line is a start bit (0), eight data bits (least significant first) and a
stop bit (1); the idle line is high. Every bit lasts ``divisor`` clock cycles.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import cdc, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UART", "UARTRx", "UARTTx"]

#: Default depth of the receiver's output FIFO, in bytes.
RX_DEPTH = 16


def _check_divisor(divisor: int) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(
            f"divisor (clock cycles per bit) must be an integer of at least 4, not {divisor!r}"
        )
    return divisor


class UARTTx(wiring.Component):
    """Send bytes on a UART line, 8N1, ``divisor`` clock cycles per bit.

    Parameters
    ----------
    divisor
        Clock cycles per bit (at least 4): the clock frequency divided by the baud rate,
        rounded.

    Attributes
    ----------
    i_data : In(stream.Signature(8))
        Bytes to send. ``ready`` is high while the line is idle and in the last cycle of a
        stop bit, so bytes offered back to back leave without a gap: exactly
        ``10 * divisor`` cycles per byte. The start bit begins on the cycle after the
        transfer.
    tx : Out(1, init=1)
        The line, driven by a register (glitch-free); high when idle.
    busy : Out(1)
        A character is being sent.
    """

    def __init__(self, divisor: int):
        self._divisor = _check_divisor(divisor)
        super().__init__(
            {
                "i_data": In(stream.Signature(8)),
                "tx": Out(1, init=1),
                "busy": Out(1),
            }
        )

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        d = self._divisor
        m = Module()
        shreg = Signal(9)  # data bits, then the stop bit, least significant first
        bits = Signal(range(10))  # bits still to send after the current one
        cnt = Signal(range(d))  # cycles left in the current bit, minus one

        last_cycle = self.busy & (cnt == 0) & (bits == 0)
        m.d.comb += self.i_data.ready.eq(~self.busy | last_cycle)
        with m.If(self.i_data.valid & self.i_data.ready):
            m.d.sync += [
                self.tx.eq(0),
                shreg.eq(Cat(self.i_data.payload, 1)),
                bits.eq(9),
                cnt.eq(d - 1),
                self.busy.eq(1),
            ]
        with m.Elif(self.busy):
            with m.If(cnt != 0):
                m.d.sync += cnt.eq(cnt - 1)
            with m.Elif(bits == 0):
                m.d.sync += self.busy.eq(0)
            with m.Else():
                m.d.sync += [
                    self.tx.eq(shreg[0]),
                    shreg.eq(shreg >> 1),
                    bits.eq(bits - 1),
                    cnt.eq(d - 1),
                ]
        return m


class _RxState(enum.Enum, shape=3):
    IDLE = 0
    START = 1
    DATA = 2
    STOP = 3
    BREAK = 4


class UARTRx(wiring.Component):
    """Receive bytes from a UART line, 8N1, ``divisor`` clock cycles per bit.

    The line goes through a two-flop synchronizer. A low level on the idle line starts a
    character; each bit is then sampled once, ``divisor // 2`` cycles after the start of
    the bit as seen through the synchronizer: within half a cycle of its middle for an odd
    divisor, within a cycle after it for an even one. A start bit that is high again when
    sampled is taken for a glitch and ignored. The stop bit is sampled 9.5 bit times after
    the start edge and the receiver looks for the next start bit right after it, so a
    sender whose bit time differs by a fraction ``m`` (either way, back to back) is
    received while ``|m| < (divisor - 2) / (20 * divisor)`` for an even divisor and
    ``(divisor - 1) / (20 * divisor)`` for an odd one: 2.5% at divisor 4, 4.3% at 7, 4.4%
    at 16, approaching 5% for large divisors.

    A stop bit that is 0 is a framing error: the byte is dropped, ``framing_errors``
    counts it, and the receiver waits for the line to be high before it looks for a start
    bit again (a break, a line held low, is one framing error).

    Received bytes wait in a FIFO of ``depth`` bytes. A byte that completes while the FIFO
    is full is dropped and counted by ``overrun``; the bytes in the FIFO are kept. The
    consumer may thus stall for ``depth`` character times (``10 * divisor`` cycles each)
    without a loss.

    Parameters
    ----------
    divisor
        Clock cycles per bit (at least 4).
    depth
        Bytes the output FIFO holds (at least 1).

    Attributes
    ----------
    rx : In(1, init=1)
        The line (asynchronous to the clock).
    o_data : Out(stream.Signature(8))
        Received bytes. A byte is offered a few cycles after the middle of its stop bit.
    framing_errors : Out(32)
        Characters dropped for a stop bit at 0 (wraps around).
    overrun : Out(32)
        Bytes dropped because the FIFO was full (wraps around).
    """

    def __init__(self, divisor: int, depth: int = RX_DEPTH):
        self._divisor = _check_divisor(divisor)
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self._depth = depth
        super().__init__(
            {
                "rx": In(1, init=1),
                "o_data": Out(stream.Signature(8)),
                "framing_errors": Out(32),
                "overrun": Out(32),
            }
        )

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        d = self._divisor
        m = Module()

        line = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, line, init=1, stages=2)
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=8, depth=self._depth)
        m.d.comb += [
            self.o_data.valid.eq(buf.r_rdy),
            self.o_data.payload.eq(buf.r_data),
            buf.r_en.eq(self.o_data.ready),
        ]

        state = Signal(_RxState)
        cnt = Signal(range(d))  # cycles until the next sample, minus one
        bit = Signal(range(8))
        shreg = Signal(8)
        m.d.comb += buf.w_data.eq(shreg)

        with m.Switch(state):
            with m.Case(_RxState.IDLE), m.If(~line):
                m.d.sync += [state.eq(_RxState.START), cnt.eq(d // 2 - 1)]
            with m.Case(_RxState.BREAK), m.If(line):
                m.d.sync += state.eq(_RxState.IDLE)
            with m.Default():
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    m.d.sync += cnt.eq(d - 1)
                    with m.Switch(state):
                        with m.Case(_RxState.START):
                            with m.If(line):
                                m.d.sync += state.eq(_RxState.IDLE)
                            with m.Else():
                                m.d.sync += [state.eq(_RxState.DATA), bit.eq(0)]
                        with m.Case(_RxState.DATA):
                            m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
                            with m.If(bit == 7):
                                m.d.sync += state.eq(_RxState.STOP)
                        with m.Case(_RxState.STOP):
                            with m.If(line):
                                m.d.sync += state.eq(_RxState.IDLE)
                                with m.If(buf.w_rdy):
                                    m.d.comb += buf.w_en.eq(1)
                                with m.Else():
                                    m.d.sync += self.overrun.eq(self.overrun + 1)
                            with m.Else():
                                m.d.sync += [
                                    state.eq(_RxState.BREAK),
                                    self.framing_errors.eq(self.framing_errors + 1),
                                ]
        return m


class UART(wiring.Component):
    """A :class:`UARTRx` and a :class:`UARTTx` at the same rate, on the pins ``rx`` and ``tx``.

    Parameters
    ----------
    divisor
        Clock cycles per bit (at least 4).
    depth
        Bytes the receiver's FIFO holds.

    Attributes
    ----------
    rx : In(1, init=1)
        Received line.
    tx : Out(1, init=1)
        Sent line.
    i_data : In(stream.Signature(8))
        Bytes to send (see :class:`UARTTx`).
    o_data : Out(stream.Signature(8))
        Bytes received (see :class:`UARTRx`).
    tx_busy : Out(1)
        A character is being sent.
    framing_errors, overrun : Out(32)
        The receiver's counters (see :class:`UARTRx`).
    """

    def __init__(self, divisor: int, depth: int = RX_DEPTH):
        self._rx = UARTRx(divisor, depth)
        self._tx = UARTTx(divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "i_data": In(stream.Signature(8)),
                "o_data": Out(stream.Signature(8)),
                "tx_busy": Out(1),
                "framing_errors": Out(32),
                "overrun": Out(32),
            }
        )

    @property
    def divisor(self) -> int:
        return self._tx.divisor

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        m.submodules.rx = rx = self._rx
        m.submodules.tx = tx = self._tx
        wiring.connect(m, wiring.flipped(self.i_data), tx.i_data)
        wiring.connect(m, rx.o_data, wiring.flipped(self.o_data))
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            self.tx_busy.eq(tx.busy),
            self.framing_errors.eq(rx.framing_errors),
            self.overrun.eq(rx.overrun),
        ]
        return m
