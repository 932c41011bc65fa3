"""The host link's byte protocol (``docs/contract.md``, section 8), defined once.

Frames are SLIP-framed (RFC 1055 byte stuffing) and end with a CRC-16. The gateware
(``hdl/hostlink.py``) and the host (``host/``) both import the constants, layouts and the
reference codec from here.

A frame on the wire::

    END  body...  crc_lo crc_hi  END          (END, ESC bytes inside escaped)

``body`` is ``opcode fields...``; ``crc`` is CRC-16/CCITT-FALSE (polynomial 0x1021,
initial value 0xFFFF, no reflection, no final XOR) of the body, little-endian. Multi-byte
fields are little-endian.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "CRC_INIT",
    "CRC_POLY",
    "END",
    "ESC",
    "ESC_END",
    "ESC_ESC",
    "MAX_BODY",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "Op",
    "Target",
    "crc16",
    "encode_frame",
]

PROTOCOL_VERSION = 1

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

#: Largest body (opcode to last field, without CRC) either side sends or accepts.
MAX_BODY = 1024

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF


class Op(enum.IntEnum):
    """Opcodes. Requests (host to device) are below 0x80, replies at or above."""

    #: -> INFO. No fields.
    INFO = 0x01
    #: target u8, mem u8, addr u32, count u16, count x data u64 -> ACK.
    WRITE = 0x02
    #: target u8, mem u8, addr u32, count u16 -> DATA (count x u64).
    READ = 0x03
    #: count u16, count x source u16: sources that spike in the next step -> ACK.
    INJECT = 0x04
    #: steps u32: run steps -> per step: SPIKES frames, then STEP_END; then ACK.
    RUN = 0x05
    #: -> STATUS.
    STATUS = 0x06

    R_ACK = 0x81
    #: count x u64
    R_DATA = 0x82
    #: step u32, then global ids u16 (core * N + neuron) to the end of the body (1 to 64)
    R_SPIKES = 0x83
    #: step u32, spikes u32 (spikes sent to the host in this step)
    R_STEP_END = 0x84
    #: u32 words, see STATUS_FIELDS
    R_STATUS = 0x85
    #: protocol u8, contract u8, cores u8, neurons u16, axons u32, synapses u32, delay slots
    #: u8, acc bits u8, sources u16, route entries u32, inject depth u16, max body u16
    R_INFO = 0x86
    #: code u8, then the opcode u8 of the offending frame (0 when unknown)
    R_ERROR = 0xEE


class ErrorCode(enum.IntEnum):
    """Why a frame was refused. The link keeps working after every one of them."""

    #: The CRC does not match the body.
    CRC = 1
    #: The opcode is not a request this device knows.
    OPCODE = 2
    #: The body's length does not match its opcode and counts.
    LENGTH = 3
    #: The target, memory or address range does not exist.
    ADDRESS = 4
    #: Bytes stopped arriving in the middle of a frame (the link's timeout).
    TRUNCATED = 5
    #: The frame is longer than MAX_BODY.
    OVERFLOW = 6
    #: INJECT would overflow the injection buffer; nothing was injected.
    FULL = 7
    #: A byte after ESC was neither ESC_END nor ESC_ESC.
    ESCAPE = 8


class Target(enum.IntEnum):
    """``target`` of WRITE/READ: a core index, or one of these."""

    #: The router's tables (route pointers and route entries) and the system registers.
    SYSTEM = 0xFF


#: Order of the u32 fields of an R_STATUS reply.
STATUS_FIELDS = (
    "step",
    "router_events",
    "router_stall_cycles",
    "host_spikes",
    "max_core_fifo",
    "max_spike_fifo",
    "errors",
    "frames",
)


def crc16(data: Iterable[int], crc: int = CRC_INIT) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode_frame(body: bytes) -> bytes:
    """Return the bytes on the wire for one frame body (SLIP-escaped, with CRC and ENDs).

    Raises
    ------
    ValueError
        When the body is empty or longer than MAX_BODY.
    """
    if not 1 <= len(body) <= MAX_BODY:
        raise ValueError(f"a frame body has 1 to {MAX_BODY} bytes, not {len(body)}")
    raw = bytes(body) + struct.pack("<H", crc16(body))
    out = bytearray([END])
    for b in raw:
        if b == END:
            out += bytes([ESC, ESC_END])
        elif b == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    """A decoded frame: its body, or why it was bad (``error``)."""

    body: bytes
    error: ErrorCode | None = None

    @property
    def op(self) -> int:
        return self.body[0] if self.body else 0


class FrameDecoder:
    """Turn a byte stream into frames, resynchronising at every END.

    Empty frames (two ENDs in a row) are skipped; a frame with a bad escape, a bad CRC or
    too many bytes is returned with its ``error`` set.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._esc = False
        self._bad: ErrorCode | None = None

    def feed(self, data: bytes) -> Iterator[Frame]:
        """Consume ``data`` and yield every frame it completes."""
        for b in data:
            if b == END:
                if self._buf or self._bad:
                    yield self._finish()
                self._esc = False  # every END resynchronises, even after a lone ESC
                continue
            if self._esc:
                self._esc = False
                if b == ESC_END:
                    b = END
                elif b == ESC_ESC:
                    b = ESC
                else:
                    self._bad = self._bad or ErrorCode.ESCAPE
            elif b == ESC:
                self._esc = True
                continue
            if len(self._buf) < MAX_BODY + 2:
                self._buf.append(b)
            else:
                self._bad = self._bad or ErrorCode.OVERFLOW

    def _finish(self) -> Frame:
        buf, bad = bytes(self._buf), self._bad
        self._buf.clear()
        self._esc = False
        self._bad = None
        if bad is not None:
            return Frame(buf[:-2], bad)
        if len(buf) < 3:
            return Frame(buf, ErrorCode.LENGTH)
        body, crc = buf[:-2], struct.unpack("<H", buf[-2:])[0]
        if crc16(body) != crc:
            return Frame(body, ErrorCode.CRC)
        return Frame(body)
