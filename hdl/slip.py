"""SLIP framing of the host link (``hdl/protocol.py``): a frame receiver and a frame sender.

On the wire a frame is ``END body crc_lo crc_hi END`` with END and ESC bytes escaped
(RFC 1055); the CRC is CRC-16/CCITT-FALSE of the body, little-endian.
:class:`SlipReceiver` turns wire bytes into frames in a buffer and checks them exactly as
:class:`spikefab.hdl.protocol.FrameDecoder` does; :class:`SlipSender` turns the body bytes of
a frame into exactly the bytes of :func:`spikefab.hdl.protocol.encode_frame`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from spikefab.hdl import protocol
from spikefab.hdl.protocol import (
    BODY_BYTE,
    CRC_INIT,
    CRC_POLY,
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    ErrorCode,
    FrameReadSignature,
    frame_info_layout,
)

__all__ = ["DEFAULT_TIMEOUT", "SlipReceiver", "SlipSender", "crc16_byte"]

#: Default frame timeout of :class:`SlipReceiver`, in clock cycles (87 ms at 12 MHz).
DEFAULT_TIMEOUT = 1 << 20


def crc16_byte(m: Module, crc, byte) -> Signal:  # type: ignore[no-untyped-def]
    """Return the CRC-16/CCITT-FALSE ``crc`` (16 bits) updated with ``byte`` (8 bits).

    The eight shift steps are unrolled into combinational logic added to ``m`` (one signal
    per step, so that each step's value is shared); it matches
    :func:`spikefab.hdl.protocol.crc16` applied to one byte.
    """
    c = Signal(16)
    m.d.comb += c.eq(crc ^ Cat(Const(0, 8), byte))
    for _ in range(8):
        nxt = Signal(16)
        shifted = Cat(Const(0, 1), c[:15])
        m.d.comb += nxt.eq(Mux(c[15], shifted ^ CRC_POLY, shifted))
        c = nxt
    return c


class SlipReceiver(wiring.Component):
    """Receive SLIP frames into a buffer and check their escapes, length and CRC.

    The receiver follows :class:`spikefab.hdl.protocol.FrameDecoder` byte for byte, with
    one exception: the decoder keeps an ESC pending across an END that ends an empty frame
    (``END ESC END``), the receiver does not.

    * Every END ends the frame being received; reception starts (at reset and after every
      END) with an empty frame. An END with no byte since the last one (an empty frame,
      also ``ESC END``) is ignored. Every END cancels a pending ESC.
    * ``ESC ESC_END`` and ``ESC ESC_ESC`` decode to END and ESC. ESC followed by any other
      byte (not END) sets error ESCAPE and stores that byte as it is. ESC just before END
      is dropped without an error.
    * Decoded bytes are stored at addresses ``0, 1, ...`` of the buffer; bytes beyond
      ``max_body + 2`` are not stored and set error OVERFLOW, and the receiver consumes
      them until END.
    * The first error of a frame wins. At END, a frame without an error is checked: fewer
      than 3 bytes is error LENGTH, otherwise the last two bytes must be the CRC of the
      others (low byte first) or the error is CRC.
    * Timeout: once a frame has started (a byte other than END arrived after the last
      END) and ``timeout`` consecutive clock cycles pass without a transfer on ``i_rx``,
      the frame is reported with error TRUNCATED (or its earlier error, if it had one). The
      receiver then *discards every byte up to and including the next END* and starts
      afresh after it: the rest of the interrupted frame yields nothing more, and a frame
      the host sends later (which starts with END) is received normally. A pause of
      ``timeout - 1`` cycles, or any pause between frames, changes nothing.

    With ``frames=2`` the buffer holds two frames: the next frame is received while the one
    before waits on ``o_frame`` (the frames are offered in order; ``i_rx.ready`` is low only
    while both wait). The simulation's top uses it, so that receiving a frame and carrying
    out the one before overlap; a board's receiver holds one.

    Parameters
    ----------
    max_body
        Largest body, in bytes; the buffer holds ``max_body + 2`` bytes (body and CRC).
    timeout
        Idle clock cycles after which a started frame is reported TRUNCATED (at least 1).
    frames
        Frames the buffer holds, 1 or 2.
    read_width
        Bytes ``buf.data`` carries, 1 or 8 (:class:`~spikefab.hdl.protocol.FrameReadSignature`).

    Attributes
    ----------
    i_rx : In(stream.Signature(8))
        Wire bytes. ``ready`` is low while the buffer is full (a frame, or with ``frames=2``
        two, wait on ``o_frame``: backpressure), and high otherwise: a byte is taken every
        cycle.
    o_frame : Out(stream.Signature(frame_info_layout(max_body)))
        A complete frame sits in the buffer. ``error`` is 0 for a good frame, else an
        :class:`~spikefab.hdl.protocol.ErrorCode` (CRC, ESCAPE, OVERFLOW, TRUNCATED or
        LENGTH). ``length`` is the number of body bytes, without the two CRC bytes
        (``max(bytes - 2, 0)``), except for LENGTH where it is the number of bytes received
        (1 or 2), as in ``FrameDecoder``.
        ``valid`` rises the cycle after the END (or the last idle cycle of the timeout) was
        taken; a transfer frees the buffer and reception resumes on the next cycle.
    buf : In(FrameReadSignature(max_body, read_width))
        The buffer's read port, on the frame offered on ``o_frame``: ``buf.data`` is the byte
        (or bytes) at the ``buf.addr`` of the previous cycle (synchronous read). Body bytes
        are at ``0 .. length - 1`` and stay there while ``o_frame.valid`` is high.
    """

    def __init__(
        self,
        max_body: int = protocol.MAX_BODY,
        timeout: int = DEFAULT_TIMEOUT,
        *,
        frames: int = 1,
        read_width: int = 1,
    ):
        if not isinstance(max_body, int) or max_body < 1:
            raise ValueError(f"max_body must be a positive integer, not {max_body!r}")
        if not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be a positive integer, not {timeout!r}")
        if frames not in (1, 2):
            raise ValueError(f"frames must be 1 or 2, not {frames!r}")
        self._max_body = max_body
        self._timeout = timeout
        self._depth = max_body + 2
        self._frames = frames
        super().__init__(
            {
                "i_rx": In(stream.Signature(8)),
                "o_frame": Out(stream.Signature(frame_info_layout(max_body))),
                "buf": In(FrameReadSignature(max_body, read_width)),
            }
        )

    @property
    def max_body(self) -> int:
        return self._max_body

    @property
    def timeout(self) -> int:
        return self._timeout

    @property
    def frames(self) -> int:
        return self._frames

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        depth = self._depth
        m = Module()

        # with two frames, the buffer's address is the slot and the byte in it
        slot_bits = len(self.buf.addr)
        wslot, rslot = Signal(), Signal()  # the slots received into and offered
        if self._frames == 1:
            m.submodules.buffer = buffer = Memory(shape=8, depth=depth, init=[])
        else:
            m.submodules.buffer = buffer = Memory(shape=8, depth=2 << slot_bits, init=[])
        wr = buffer.write_port()
        width = len(self.buf.data) // 8
        for k in range(width):
            rd = buffer.read_port()
            at = self.buf.addr if k == 0 else (self.buf.addr + k)[:slot_bits]
            m.d.comb += [
                rd.addr.eq(at if self._frames == 1 else Cat(at, rslot)),
                self.buf.data[8 * k : 8 * k + 8].eq(rd.data),
            ]

        count = Signal(range(depth + 1))  # decoded bytes of the frame (saturates at depth)
        esc = Signal()  # the last byte was ESC
        err = Signal(4)  # first error of the frame, 0 if none
        hunt = Signal()  # after a timeout: discard bytes up to the next END
        pending = Signal()  # o_frame.valid
        crc = Signal(16, init=CRC_INIT)  # CRC of the bytes before the last two
        last1 = Signal(8)  # last decoded byte
        last2 = Signal(8)  # the one before
        idle = Signal(range(self._timeout))  # cycles without a byte in a started frame

        taken = self.o_frame.valid & self.o_frame.ready
        if self._frames == 1:
            m.d.comb += [
                self.i_rx.ready.eq(~pending),
                self.o_frame.valid.eq(pending),
            ]
            with m.If(taken):
                m.d.sync += pending.eq(0)
            infos = [self.o_frame.payload]
        else:
            # `pending` is the number of frames waiting; each slot keeps its frame's info
            pending = Signal(range(3))
            done = Signal()  # a frame is finished this cycle
            infos = [Signal(frame_info_layout(self._max_body)) for _ in range(2)]
            m.d.comb += [
                self.i_rx.ready.eq(pending != 2),
                self.o_frame.valid.eq(pending != 0),
                self.o_frame.payload.eq(Mux(rslot, infos[1], infos[0])),
            ]
            m.d.sync += pending.eq(pending + done - taken)
            with m.If(taken):
                m.d.sync += rslot.eq(~rslot)

        def finish(error, length):  # type: ignore[no-untyped-def]
            if self._frames == 1:
                m.d.sync += pending.eq(1)
            else:
                m.d.comb += done.eq(1)
                m.d.sync += wslot.eq(~wslot)

            def store(info):  # type: ignore[no-untyped-def]
                m.d.sync += [info.error.eq(error), info.length.eq(length)]

            if self._frames == 1:
                store(infos[0])
            else:
                with m.If(wslot):
                    store(infos[1])
                with m.Else():
                    store(infos[0])
            m.d.sync += [
                count.eq(0),
                esc.eq(0),
                err.eq(0),
                crc.eq(CRC_INIT),
                idle.eq(0),
            ]

        body_length = Mux(count >= 2, count - 2, 0)
        started = (count != 0) | esc | (err != 0)
        byte = self.i_rx.payload
        take = self.i_rx.valid & self.i_rx.ready

        # the decoded byte to store, if any
        store = Signal()
        value = Signal(8)
        m.d.comb += [
            wr.addr.eq(count if self._frames == 1 else Cat(count[:slot_bits], wslot)),
            wr.data.eq(value),
            wr.en.eq(store & (count < depth)),
        ]

        with m.If(take):
            m.d.sync += idle.eq(0)
            with m.If(hunt), m.If(byte == END):
                m.d.sync += hunt.eq(0)
            with m.Elif(byte == END):
                with m.If((count != 0) | (err != 0)):
                    good_crc = crc == Cat(last2, last1)
                    with m.If(err != 0):
                        finish(err, body_length)
                    with m.Elif(count < 3):
                        finish(ErrorCode.LENGTH, count)
                    with m.Elif(~good_crc):
                        finish(ErrorCode.CRC, body_length)
                    with m.Else():
                        finish(0, body_length)
                with m.Else():
                    m.d.sync += esc.eq(0)
            with m.Elif(esc):
                m.d.sync += esc.eq(0)
                m.d.comb += store.eq(1)
                with m.If(byte == ESC_END):
                    m.d.comb += value.eq(END)
                with m.Elif(byte == ESC_ESC):
                    m.d.comb += value.eq(ESC)
                with m.Else():
                    m.d.comb += value.eq(byte)
                    with m.If(err == 0):
                        m.d.sync += err.eq(ErrorCode.ESCAPE)
            with m.Elif(byte == ESC):
                m.d.sync += esc.eq(1)
            with m.Else():
                m.d.comb += [store.eq(1), value.eq(byte)]
        with m.Elif(started & self.i_rx.ready):
            with m.If(idle == self._timeout - 1):
                finish(Mux(err != 0, err, ErrorCode.TRUNCATED), body_length)
                m.d.sync += hunt.eq(1)
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        with m.If(store):
            with m.If(count < depth):
                m.d.sync += [count.eq(count + 1), last1.eq(value), last2.eq(last1)]
                with m.If(count >= 2):
                    m.d.sync += crc.eq(crc16_byte(m, crc, last2))
            with m.Elif(err == 0):
                m.d.sync += err.eq(ErrorCode.OVERFLOW)

        return m


class _SendState(enum.Enum, shape=3):
    IDLE = 0
    BODY = 1
    CRC_LO = 2
    CRC_HI = 3
    END = 4


class SlipSender(wiring.Component):
    """Send frame bodies as SLIP frames with their CRC, as ``protocol.encode_frame`` does.

    For each frame the sender emits END, the body bytes, the CRC's low and high bytes (each
    END or ESC among them escaped as ``ESC ESC_END`` or ``ESC ESC_ESC``), then END.
    Back-to-back frames give back-to-back ``encode_frame`` outputs (``... END END ...``).

    Attributes
    ----------
    i_body : In(stream.Signature(BODY_BYTE))
        The body bytes of frames; ``last`` marks the last byte of a body (a body has at
        least one byte). A byte is taken when its last wire byte (itself, or the second
        byte of its escape) is taken on ``o_tx``; ``ready`` depends combinationally on
        ``o_tx.ready`` and ``i_body.valid``.
    o_tx : Out(stream.Signature(8))
        Wire bytes, one per cycle while ``o_tx.ready`` is high and body bytes are there.
        The opening END is offered once ``i_body.valid`` is high. Between frames the
        sender spends no cycle: the opening END of the next frame follows the closing one.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "i_body": In(stream.Signature(BODY_BYTE)),
                "o_tx": Out(stream.Signature(8)),
            }
        )

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        state = Signal(_SendState)
        crc = Signal(16, init=CRC_INIT)
        esc = Signal()  # the ESC of the current byte has been sent

        raw = Signal(8)  # the byte to send, before escaping
        raw_valid = Signal()
        with m.Switch(state):
            with m.Case(_SendState.BODY):
                m.d.comb += [raw.eq(self.i_body.payload.data), raw_valid.eq(self.i_body.valid)]
            with m.Case(_SendState.CRC_LO):
                m.d.comb += [raw.eq(crc[:8]), raw_valid.eq(1)]
            with m.Case(_SendState.CRC_HI):
                m.d.comb += [raw.eq(crc[8:]), raw_valid.eq(1)]

        special = (raw == END) | (raw == ESC)
        sent = self.o_tx.valid & self.o_tx.ready
        done = Signal()  # the last wire byte of `raw` is sent this cycle
        m.d.comb += done.eq(sent & (esc | ~special))

        with m.Switch(state):
            with m.Case(_SendState.IDLE, _SendState.END):
                m.d.comb += [
                    self.o_tx.payload.eq(END),
                    self.o_tx.valid.eq((state == _SendState.END) | self.i_body.valid),
                ]
                with m.If(sent & (state == _SendState.IDLE)):
                    m.d.sync += [state.eq(_SendState.BODY), crc.eq(CRC_INIT)]
                with m.If(sent & (state == _SendState.END)):
                    m.d.sync += state.eq(_SendState.IDLE)
            with m.Default():
                m.d.comb += [
                    self.o_tx.valid.eq(raw_valid),
                    self.o_tx.payload.eq(
                        Mux(esc, Mux(raw == END, ESC_END, ESC_ESC), Mux(special, ESC, raw))
                    ),
                ]
                with m.If(sent & special & ~esc):
                    m.d.sync += esc.eq(1)
                with m.If(done):
                    m.d.sync += esc.eq(0)

        with m.Switch(state):
            with m.Case(_SendState.BODY):
                m.d.comb += self.i_body.ready.eq(done)
                with m.If(done):
                    m.d.sync += crc.eq(crc16_byte(m, crc, raw))
                    with m.If(self.i_body.payload.last):
                        m.d.sync += state.eq(_SendState.CRC_LO)
            with m.Case(_SendState.CRC_LO), m.If(done):
                m.d.sync += state.eq(_SendState.CRC_HI)
            with m.Case(_SendState.CRC_HI), m.If(done):
                m.d.sync += state.eq(_SendState.END)

        return m
