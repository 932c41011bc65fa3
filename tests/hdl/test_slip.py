"""SLIP framing (hdl/slip.py) against the reference codec of hdl/protocol.py.

* The sender gets random bodies (1 to MAX_BODY bytes, many of them END and ESC) with random
  idle cycles and random backpressure on its output; its bytes must be exactly those of
  ``protocol.encode_frame``.
* The receiver gets a random stream of good frames, corrupted frames, frames with a wrong
  CRC, bad escapes, over-long frames, short and empty frames and garbage between frames,
  with random idle cycles and random backpressure from the consumer; every frame it reports
  (error code, length and the body bytes read back from its buffer) must be the one
  ``protocol.FrameDecoder`` returns. Pauses of ``TIMEOUT - 1`` cycles inside a frame and long
  pauses between frames change nothing; a pause of ``TIMEOUT`` cycles or more inside a
  frame gives a TRUNCATED frame (computed by hand here) and the rest of that frame, up to
  its END, is discarded.
* A sender feeding a receiver delivers every body intact.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from spikefab.hdl import protocol
from spikefab.hdl.protocol import END, ESC, ESC_END, ESC_ESC, MAX_BODY, ErrorCode, Frame
from spikefab.hdl.slip import SlipReceiver, SlipSender

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

#: Small frame timeout of the receivers under test, in clock cycles.
TIMEOUT = 40
#: Longest random idle gap on an input, well below TIMEOUT.
MAX_GAP = 6

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly
except ImportError:
    cocotb = None


class SlipBench(wiring.Component):
    """Everything under test in one design: a sender (ports ``s_*``), a receiver (``r_*``),
    the simulation's receiver of two frames with a word-wide read port (``d_*``) and a
    sender feeding a receiver (``l_*``), the receivers with ``timeout=TIMEOUT``."""

    def __init__(self) -> None:
        self._s = SlipSender()
        self._r = SlipReceiver(timeout=TIMEOUT)
        self._d = SlipReceiver(timeout=TIMEOUT, frames=2, read_width=8)
        self._ls = SlipSender()
        self._lr = SlipReceiver(timeout=TIMEOUT)
        body = stream.Signature(self._s.i_body.payload.shape())
        frame = self._r.o_frame.signature
        addr = len(self._r.buf.addr)
        super().__init__(
            {
                "s_i_body": In(body),
                "s_o_tx": Out(stream.Signature(8)),
                "r_i_rx": In(stream.Signature(8)),
                "r_o_frame": Out(frame),
                "r_rd_addr": In(addr),
                "r_rd_data": Out(8),
                "d_i_rx": In(stream.Signature(8)),
                "d_o_frame": Out(frame),
                "d_rd_addr": In(addr),
                "d_rd_data": Out(64),
                "l_i_body": In(body),
                "l_o_frame": Out(frame),
                "l_rd_addr": In(addr),
                "l_rd_data": Out(8),
            }
        )

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        m.submodules.s = s = self._s
        m.submodules.r = r = self._r
        m.submodules.d = d = self._d
        m.submodules.ls = ls = self._ls
        m.submodules.lr = lr = self._lr
        wiring.connect(m, wiring.flipped(self.s_i_body), s.i_body)
        wiring.connect(m, s.o_tx, wiring.flipped(self.s_o_tx))
        wiring.connect(m, wiring.flipped(self.r_i_rx), r.i_rx)
        wiring.connect(m, r.o_frame, wiring.flipped(self.r_o_frame))
        wiring.connect(m, wiring.flipped(self.d_i_rx), d.i_rx)
        wiring.connect(m, d.o_frame, wiring.flipped(self.d_o_frame))
        wiring.connect(m, wiring.flipped(self.l_i_body), ls.i_body)
        wiring.connect(m, ls.o_tx, lr.i_rx)
        wiring.connect(m, lr.o_frame, wiring.flipped(self.l_o_frame))
        m.d.comb += [
            r.buf.addr.eq(self.r_rd_addr),
            self.r_rd_data.eq(r.buf.data),
            d.buf.addr.eq(self.d_rd_addr),
            self.d_rd_data.eq(d.buf.data),
            lr.buf.addr.eq(self.l_rd_addr),
            self.l_rd_data.eq(lr.buf.data),
        ]
        return m


# reference streams ---------------------------------------------------------------------------


def escape(raw: bytes) -> bytes:
    out = bytearray()
    for b in raw:
        out += {END: bytes([ESC, ESC_END]), ESC: bytes([ESC, ESC_ESC])}.get(b, bytes([b]))
    return bytes(out)


def wire_frame(body: bytes, crc: int | None = None) -> bytes:
    """Like ``encode_frame``, for any length and optionally with a given CRC."""
    crc = protocol.crc16(body) if crc is None else crc
    return bytes([END]) + escape(body + struct.pack("<H", crc)) + bytes([END])


def random_byte(rng: random.Random) -> int:
    """A byte that is END or ESC a third of the time each time it matters."""
    r = rng.random()
    return END if r < 0.17 else ESC if r < 0.34 else rng.randrange(256)


def random_body(rng: random.Random, n: int) -> bytes:
    return bytes(random_byte(rng) for _ in range(n))


def random_length(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.5:
        return rng.randint(1, 8)
    if r < 0.8:
        return rng.randint(9, 64)
    if r < 0.95:
        return rng.randint(65, 300)
    return rng.randint(MAX_BODY - 100, MAX_BODY)


def body_with_crc_byte(rng: random.Random, index: int, value: int) -> bytes:
    """A random body whose CRC byte ``index`` (0: low, 1: high) is ``value``."""
    while True:
        body = random_body(rng, rng.randint(1, 16))
        if struct.pack("<H", protocol.crc16(body))[index] == value:
            return body


def crc_special_bodies(rng: random.Random) -> list[bytes]:
    """Bodies whose CRC has an END or ESC byte, low or high: the sender must escape it."""
    return [body_with_crc_byte(rng, i, v) for i in (0, 1) for v in (END, ESC)]


def describe(f: Frame) -> str:
    return f"{f.error.name if f.error else 'good'} frame of {len(f.body)} bytes"


def unescape_prefix(prefix: bytes) -> bytes:
    """Decode the start of a well-formed escaped frame (a trailing lone ESC decodes to nothing)."""
    out, esc = bytearray(), False
    for b in prefix:
        assert b != END
        if esc:
            out.append({ESC_END: END, ESC_ESC: ESC}[b])
            esc = False
        elif b == ESC:
            esc = True
        else:
            out.append(b)
    return bytes(out)


@dataclass
class RxStream:
    """Items for the receiver's input (bytes, or a pause in cycles) and the frames expected.

    ``FrameDecoder`` keeps a pending ESC across an END that ends an empty frame (``END ESC
    END``) while the receiver resynchronises there; the stream never contains that sequence.
    """

    items: list[tuple[str, bytes | int]] = field(default_factory=list)
    expected: list[Frame] = field(default_factory=list)
    decoder: protocol.FrameDecoder = field(default_factory=protocol.FrameDecoder)
    tail: bytes = bytes([END, END])  # the last two bytes sent (reset = after an END)

    def _append(self, data: bytes) -> bytes:
        pattern = bytes([END, ESC, END])
        s = bytearray(self.tail + data)
        if s[:3] == pattern:  # the ESC has been sent already
            s.insert(2, 0)
        while (i := s.find(pattern)) >= 0:
            s[i + 1] = 0
        data = bytes(s[len(self.tail) :])
        if data:
            self.items.append(("data", data))
            self.tail = bytes(s[-2:])
        return data

    def send(self, data: bytes) -> None:
        """Bytes the receiver sees as FrameDecoder does."""
        self.expected.extend(self.decoder.feed(self._append(data)))

    def pause(self, cycles: int) -> None:
        self.items.append(("pause", cycles))

    def truncated(self, full: bytes, k: int, pause: int) -> None:
        """Send the first ``k`` bytes of the well-formed frame ``full`` after its END, pause
        for ``pause >= TIMEOUT`` cycles, then the rest, which the receiver discards."""
        assert full[0] == END and 1 <= k <= len(full) - 2 and pause >= TIMEOUT
        self.send(full[:1])  # ends any frame before it: the decoder is now clean
        prefix = full[1 : 1 + k]
        assert self._append(prefix) == prefix
        self.pause(pause)
        self.expected.append(Frame(unescape_prefix(prefix)[:-2], ErrorCode.TRUNCATED))
        rest = full[1 + k :]
        assert self._append(rest) == rest  # ends with END: the receiver resynchronises there


def receiver_stream(rng: random.Random, segments: int) -> RxStream:
    s = RxStream()
    kinds = [
        "good",
        "crc_special",
        "good",
        "good",
        "corrupt",
        "crc",
        "escape",
        "garbage",
        "short",
        "empty",
        "truncated",
        "truncated",
        "near_timeout",
        "long_pause",
    ]
    plan = ["overlong_by_1", "overlong", "max"] + [rng.choice(kinds) for _ in range(segments)]
    rng.shuffle(plan)
    for kind in plan:
        body = random_body(rng, random_length(rng))
        full = wire_frame(body)
        if kind == "good":
            s.send(full)
        elif kind == "crc_special":
            s.send(wire_frame(rng.choice(crc_special_bodies(rng))))
        elif kind == "max":
            s.send(wire_frame(random_body(rng, MAX_BODY)))
        elif kind == "overlong_by_1":  # one byte more than the buffer holds
            s.send(wire_frame(random_body(rng, MAX_BODY + 1)))
        elif kind == "overlong":
            s.send(wire_frame(random_body(rng, MAX_BODY + rng.randint(2, 40))))
        elif kind == "corrupt":
            w = bytearray(full)
            for _ in range(rng.randint(1, 2)):
                w[rng.randrange(1, len(w) - 1)] = random_byte(rng)
            s.send(bytes(w))
        elif kind == "crc":
            s.send(wire_frame(body, protocol.crc16(body) ^ (1 << rng.randrange(16))))
        elif kind == "escape":
            bad = rng.choice([b for b in range(256) if b not in (END, ESC_END, ESC_ESC)])
            at = rng.randrange(1, len(full) - 1)
            while full[at - 1] == ESC:  # do not split an escape
                at -= 1
            s.send(full[:at] + bytes([ESC, bad]) + full[at:])
        elif kind == "garbage":
            s.send(random_body(rng, rng.randint(1, 12)))
        elif kind == "short":
            s.send(wire_frame(b"")[:1] + escape(random_body(rng, rng.randint(1, 2))) + b"\xc0")
        elif kind == "empty":
            s.send(bytes([END, END]))
        elif kind == "truncated":
            k = rng.choice([1, 2, rng.randrange(1, len(full) - 1), len(full) - 2])
            s.truncated(full, k, TIMEOUT + rng.choice([0, 0, 1, 17]))
        elif kind == "near_timeout":
            at = rng.randrange(2, len(full) - 1)
            s.send(full[:at])
            s.pause(TIMEOUT - 1)
            s.send(full[at:])
        elif kind == "long_pause":
            s.send(full)
            s.pause(3 * TIMEOUT)
    s.send(bytes([END]))  # ends trailing garbage
    return s


if cocotb is not None:

    class Ports:
        """The ports of one part of the bench: ``Ports(dut, "r").i_rx__valid`` is
        ``dut.r_i_rx__valid``; ``clk`` and ``rst`` are the bench's."""

        def __init__(self, dut, part: str) -> None:  # type: ignore[no-untyped-def]
            self._dut, self._prefix = dut, f"{part}_"
            self._log = dut._log

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            if name in ("clk", "rst"):
                return getattr(self._dut, name)
            return getattr(self._dut, self._prefix + name)

    def _seed() -> int:
        return int(os.environ.get("SPIKEFAB_SEED", "1"))

    async def _reset(dut) -> None:  # type: ignore[no-untyped-def]
        """Start the clock and reset the bench with every input of every part low."""
        bench = dut._dut
        for name in ("s_i_body", "r_i_rx", "d_i_rx", "l_i_body"):
            getattr(bench, f"{name}__valid").value = 0
            getattr(bench, f"{name}__payload").value = 0
        for name in ("s_o_tx", "r_o_frame", "d_o_frame", "l_o_frame"):
            getattr(bench, f"{name}__ready").value = 0
        bench.r_rd_addr.value = 0
        bench.d_rd_addr.value = 0
        bench.l_rd_addr.value = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def _send_bodies(dut, rng: random.Random, bodies: list[bytes], idle: float) -> None:  # type: ignore[no-untyped-def]
        """Drive the bodies on i_body with random idle cycles."""
        words = [(b, int(i == len(body) - 1)) for body in bodies for i, b in enumerate(body)]
        for data, last in words:
            while rng.random() < idle:
                dut.i_body__valid.value = 0
                await FallingEdge(dut.clk)
            dut.i_body__valid.value = 1
            dut.i_body__payload.value = data | (last << 8)
            while True:
                await ReadOnly()
                ok = int(dut.i_body__ready.value)
                await FallingEdge(dut.clk)
                if ok:
                    break
        dut.i_body__valid.value = 0

    async def _read_frames(dut, rng: random.Random, frames: list[Frame], bp: float) -> None:  # type: ignore[no-untyped-def]
        """Take frames from o_frame into ``frames``, reading each body from the buffer first."""
        while True:
            await ReadOnly()
            valid = int(dut.o_frame__valid.value)
            payload = int(dut.o_frame__payload.value)
            await FallingEdge(dut.clk)
            if not valid:
                continue
            length, error = payload & 0x7FF, payload >> 11
            body = bytearray()
            words = []  # a wide port's bytes from each address on
            dut.rd_addr.value = 0
            for i in range(length):
                await FallingEdge(dut.clk)
                words.append(int(dut.rd_data.value))
                body.append(words[-1] & 0xFF)
                dut.rd_addr.value = min(i + 1, MAX_BODY + 1)
            for i, word in enumerate(words):
                for k in range(1, min(len(dut.rd_data) // 8, length - i)):
                    got = (word >> 8 * k) & 0xFF
                    assert got == body[i + k], f"byte {k} of the read at {i}: {got:#04x}"
            while rng.random() < bp:
                await FallingEdge(dut.clk)
            dut.o_frame__ready.value = 1
            await ReadOnly()
            assert int(dut.o_frame__valid.value), "o_frame.valid dropped before the transfer"
            await FallingEdge(dut.clk)
            dut.o_frame__ready.value = 0
            frames.append(Frame(bytes(body), ErrorCode(error) if error else None))

    async def _check_frames(dut, got: list[Frame], expected: list[Frame]) -> None:  # type: ignore[no-untyped-def]
        """Wait for the frames to arrive (and no more), then compare them one by one."""
        for _ in range(20 * MAX_BODY):
            if len(got) >= len(expected):
                break
            await FallingEdge(dut.clk)
        for _ in range(3 * TIMEOUT):
            await FallingEdge(dut.clk)
        for i, (g, e) in enumerate(zip(got, expected, strict=False)):
            at = next(
                (k for k, (a, b) in enumerate(zip(g.body, e.body, strict=False)) if a != b), None
            )
            where = f", bodies differ at byte {at}" if at is not None else ""
            assert g == e, f"frame {i}: got a {describe(g)}, expected a {describe(e)}{where}"
        assert len(got) == len(expected), f"{len(got)} frames, {len(expected)} expected"

    @cocotb.test()
    async def sender_matches_encode_frame(bench) -> None:  # type: ignore[no-untyped-def]
        dut = Ports(bench, "s")
        rng = random.Random(_seed())
        await _reset(dut)
        bodies = [random_body(rng, random_length(rng)) for _ in range(16)]
        bodies += [random_body(rng, MAX_BODY), bytes([END] * 5), bytes([ESC] * 5), b"\x00"]
        bodies += crc_special_bodies(rng)
        rng.shuffle(bodies)
        expected = b"".join(protocol.encode_frame(b) for b in bodies)
        # the first half with no idle cycles and no backpressure, the rest with both
        half = len(bodies) // 2
        sender = cocotb.start_soon(_send_bodies(dut, rng, bodies[:half], 0.0))
        got = bytearray()
        bp = 0.0
        quiet = 0
        while quiet < 30:
            if sender.done() and bp == 0.0:
                sender = cocotb.start_soon(_send_bodies(dut, rng, bodies[half:], 0.3))
                bp = 0.4
            dut.o_tx__ready.value = int(rng.random() >= bp)
            await ReadOnly()
            if int(dut.o_tx__valid.value) and int(dut.o_tx__ready.value):
                got.append(int(dut.o_tx__payload.value))
                quiet = 0
            elif sender.done() and bp > 0:
                quiet += 1
            await FallingEdge(dut.clk)
        for i, (a, b) in enumerate(zip(got, expected, strict=False)):
            assert a == b, f"wire byte {i}: got {a:#04x}, expected {b:#04x}"
        assert len(got) == len(expected), f"{len(got)} wire bytes, {len(expected)} expected"
        dut._log.info("%d frames, %d wire bytes", len(bodies), len(got))

    @cocotb.test()
    async def receiver_matches_frame_decoder(bench) -> None:  # type: ignore[no-untyped-def]
        await _receive_stream(Ports(bench, "r"))

    @cocotb.test()
    async def two_frame_receiver_matches_frame_decoder(bench) -> None:  # type: ignore[no-untyped-def]
        await _receive_stream(Ports(bench, "d"))

    async def _receive_stream(dut) -> None:  # type: ignore[no-untyped-def]
        """Drive the reference stream into a receiver and check the frames it delivers."""
        rng = random.Random(_seed())
        await _reset(dut)
        stream = receiver_stream(rng, 45)
        got: list[Frame] = []
        cocotb.start_soon(_read_frames(dut, rng, got, 0.5))
        paused = False  # pauses are exact: no random idle cycle right after one
        for kind, item in stream.items:
            if kind == "pause":
                dut.i_rx__valid.value = 0
                for _ in range(item):
                    await FallingEdge(dut.clk)
                paused = True
                continue
            idle = rng.choice([0.0, 0.3])
            for b in item:
                if rng.random() < idle and not paused:
                    dut.i_rx__valid.value = 0
                    for _ in range(rng.randint(1, MAX_GAP)):
                        await FallingEdge(dut.clk)
                paused = False
                dut.i_rx__valid.value = 1
                dut.i_rx__payload.value = b
                while True:
                    await ReadOnly()
                    ok = int(dut.i_rx__ready.value)
                    await FallingEdge(dut.clk)
                    if ok:
                        break
            dut.i_rx__valid.value = 0
        await _check_frames(dut, got, stream.expected)
        kinds = sorted({e.error.name if e.error else "good" for e in stream.expected})
        dut._log.info("%d frames checked: %s", len(got), ", ".join(kinds))

    @cocotb.test()
    async def loopback_delivers_bodies(bench) -> None:  # type: ignore[no-untyped-def]
        dut = Ports(bench, "l")
        rng = random.Random(_seed())
        await _reset(dut)
        bodies = [random_body(rng, random_length(rng)) for _ in range(12)]
        bodies += [random_body(rng, MAX_BODY), *crc_special_bodies(rng)]
        rng.shuffle(bodies)
        cocotb.start_soon(_send_bodies(dut, rng, bodies, 0.2))
        got: list[Frame] = []
        cocotb.start_soon(_read_frames(dut, rng, got, 0.5))
        await _check_frames(dut, got, [Frame(b) for b in bodies])


def test_reference_stream_sanity() -> None:
    """The hand-built expectations cover every error kind and survive the sanitising."""
    s = receiver_stream(random.Random(1), 45)
    errors = {f.error for f in s.expected}
    codes = {
        ErrorCode.CRC,
        ErrorCode.ESCAPE,
        ErrorCode.OVERFLOW,
        ErrorCode.TRUNCATED,
        ErrorCode.LENGTH,
    }
    assert errors >= {None, *codes}
    wire = b"".join(x for k, x in s.items if k == "data")
    assert bytes([END, ESC, END]) not in wire
    assert unescape_prefix(escape(b"\xc0\xdb\x01")) == b"\xc0\xdb\x01"
    assert wire_frame(b"\xc0\x01") == protocol.encode_frame(b"\xc0\x01")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_slip(sim: str) -> None:
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = ROOT / "sim_build" / "slip" / sim
    verilog = write_verilog(SlipBench(), "slip", build / "slip.v")
    run_cocotb(sim, [verilog], "slip", "test_slip", test_dir=HERE, build_dir=build)
