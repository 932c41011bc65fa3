"""The host link's byte protocol (``docs/contract.md``, section 8), defined once, as data.

Frames are SLIP-framed (RFC 1055 byte stuffing) and end with a CRC-16. The gateware
(``hdl/slip.py``, ``hdl/executor.py``), the host (``host/link.py``), the in-process device
(``sim/system_model.py``) and the contract's tables all take the frame formats from the
tables :data:`REQUESTS` and :data:`REPLIES` here, and the codec from the functions below.

A frame on the wire::

    END  body...  crc_lo crc_hi  END          (END, ESC bytes inside escaped)

``body`` is ``opcode fields... items...``; ``crc`` is CRC-16/CCITT-FALSE (polynomial
0x1021, initial value 0xFFFF, no reflection, no final XOR) of the body, little-endian.
Multi-byte fields are little-endian.
"""

from __future__ import annotations

import binascii
import enum
import functools
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
from amaranth.hdl import unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for
from spikefab.hdl import params as P
from spikefab.hdl.layouts import CoreConfig, CoreMem, SystemConfig, SystemMem, SystemReg

__all__ = [
    "BODY_BYTE",
    "CRC_INIT",
    "CRC_POLY",
    "END",
    "ESC",
    "ESC_END",
    "ESC_ESC",
    "LATE",
    "MAX_BODY",
    "MAX_GID",
    "PROTOCOL_VERSION",
    "REPLIES",
    "REQUESTS",
    "SPIKE_ITEMS",
    "STATUS_REGS",
    "STEP_MARK",
    "DeviceError",
    "DeviceInfo",
    "ErrorCode",
    "Feature",
    "Field",
    "Frame",
    "FrameDecoder",
    "FrameReadSignature",
    "LinkError",
    "Message",
    "Op",
    "Target",
    "crc16",
    "encode_frame",
    "frame_info_layout",
    "table_markdown",
    "word_size",
]

#: Version 2: CLEAR, a RUN that carries its steps' injections, spikes as u16 items with an
#: in-band end of step and the run's totals in R_RUN_END (contract section 10).
#: Version 3: WRITE and R_DATA carry each word in the bytes its memory's layout needs
#: (:func:`word_size`), not in eight.
PROTOCOL_VERSION = 4

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

#: Largest body (opcode to last field, without CRC) either side sends or accepts.
MAX_BODY = 1024

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF

#: The u16 item that ends a step, in a RUN's input schedule and in R_SPIKES.
STEP_MARK = 0xFFFF
#: Global neuron ids and source ids are below this (15 cores x 4096 neurons), so that no id
#: is ever STEP_MARK.
MAX_GID = 0xF000
#: A source id with this bit set, in INJECT or a RUN's inputs, is a *late* source: it is
#: routed before its step begins, with the spikes of the step before (contract 8.2), so a
#: synapse of delay ``d`` delivers it at ``k - 1 + d``. Source ids are below it (a system
#: has at most 32768).
LATE = 0x8000


class Op(enum.IntEnum):
    """Opcodes. Requests (host to device) are below 0x80, replies at or above."""

    INFO = 0x01
    WRITE = 0x02
    READ = 0x03
    INJECT = 0x04
    RUN = 0x05
    STATUS = 0x06
    CLEAR = 0x07

    R_ACK = 0x81
    R_DATA = 0x82
    R_SPIKES = 0x83
    R_RUN_END = 0x84
    R_STATUS = 0x85
    R_INFO = 0x86
    R_ERROR = 0xEE


class ErrorCode(enum.IntEnum):
    """Why a frame was refused. The link keeps working after every one of them."""

    #: The CRC does not match the body.
    CRC = 1
    #: The opcode is not a request this device knows.
    OPCODE = 2
    #: The body's length does not match its opcode and counts.
    LENGTH = 3
    #: The target, memory, address range or a source id does not exist.
    ADDRESS = 4
    #: Bytes stopped arriving in the middle of a frame (the link's timeout).
    TRUNCATED = 5
    #: The frame is longer than MAX_BODY.
    OVERFLOW = 6
    #: The injections of a step would overflow the injection buffer; nothing was done.
    FULL = 7
    #: A byte after ESC was neither ESC_END nor ESC_ESC.
    ESCAPE = 8


class Target(enum.IntEnum):
    """``target`` of WRITE/READ/CLEAR: a core index, or one of these."""

    #: The router's tables (route pointers and route entries) and the system registers.
    SYSTEM = 0xFF


class Feature(enum.IntFlag):
    """Bits of the ``features`` field of R_INFO."""

    #: The cores have the STDP learning unit (contract 6.4).
    LEARNING = 1
    #: The system has its statistics counters (contract 6.1, 7.2).
    STATS = 2


#: The system registers an R_STATUS reply carries, in order: those before ``LEARN`` (a
#: command that always reads 0); the step-cycle counters after it are read with READ.
STATUS_REGS = tuple(r for r in SystemReg if r < SystemReg.LEARN)

_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True)
class Field:
    """A little-endian unsigned field of a frame body: its name, size in bytes, meaning."""

    name: str
    size: int
    doc: str = ""

    @property
    def type(self) -> str:
        return f"u{8 * self.size}"


@dataclass(frozen=True)
class Message:
    """The body of one kind of frame: the opcode, fixed fields, then repeated items.

    Attributes
    ----------
    op
        The opcode (body byte 0).
    fields
        The fixed fields after the opcode, in order.
    item
        The field repeated to the end of the body, if any.
    sized
        The items are words of the memory the request addresses: each takes
        :func:`word_size` bytes, at most ``item.size``.
    doc
        What the frame does (the contract's table says it).
    reply
        For a request, the text of the replies it gets.
    """

    op: Op
    fields: tuple[Field, ...] = ()
    item: Field | None = None
    doc: str = ""
    reply: str = ""
    sized: bool = False

    @functools.cached_property
    def header_size(self) -> int:
        """Bytes of the opcode and the fixed fields."""
        return 1 + sum(f.size for f in self.fields)

    @property
    def max_items(self) -> int:
        """Items that fit in a body of MAX_BODY bytes."""
        return 0 if self.item is None else (MAX_BODY - self.header_size) // self.item.size

    def offset(self, name: str) -> int:
        """Return the byte offset in the body of field ``name`` (the opcode is at 0)."""
        at = 1
        for f in self.fields:
            if f.name == name:
                return at
            at += f.size
        raise KeyError(f"{self.op.name} has no field {name!r}")

    def field(self, name: str) -> Field:
        return self.fields[[f.name for f in self.fields].index(name)]

    @functools.cached_property
    def _header(self) -> struct.Struct:
        return struct.Struct("<B" + "".join(_CODES[f.size] for f in self.fields))

    def pack(self, *values: int, items: Sequence[int] = (), size: int | None = None) -> bytes:
        """Return the body of this message with the fields ``values`` and the ``items``,
        each ``size`` bytes (a sized message's word size; else the item's size).

        Raises
        ------
        ValueError
            When a value does not fit its field, or items are given to a message without.
        """
        if len(values) != len(self.fields):
            raise ValueError(
                f"{self.op.name} has {len(self.fields)} field(s), not {len(values)}: {values!r}"
            )
        try:
            head = self._header.pack(self.op, *values)
        except struct.error:
            raise ValueError(f"a field of {self.op.name} does not fit: {values!r}") from None
        if not items:
            return head
        if self.item is None:
            raise ValueError(f"{self.op.name} carries no items")
        size = self._item_size(size)
        if size in _CODES:
            try:
                return head + struct.pack(f"<{len(items)}{_CODES[size]}", *items)
            except struct.error:
                pass
        else:
            a = np.asarray(items)
            if a.dtype.kind in "iu" and a.min() >= 0 and int(a.max()) >> (8 * size) == 0:
                return head + a.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :size].tobytes()
        raise ValueError(
            f"an item of {self.op.name} does not fit {size} byte(s): {list(items)[:8]!r}"
        )

    def _item_size(self, size: int | None) -> int:
        assert self.item is not None
        if size is None:
            return self.item.size
        if not self.sized or not 1 <= size <= self.item.size:
            raise ValueError(f"{self.op.name} items take {self.item.size} bytes, not {size}")
        return size

    def unpack(
        self, body: bytes, size: int | None = None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return the fields and the items (each ``size`` bytes, as for :meth:`pack`) of a
        body of this message.

        Raises
        ------
        LinkError
            When the body is not one of this message (opcode or length).
        """
        n = self.header_size
        size = 0 if self.item is None else self._item_size(size)
        if (
            not body
            or body[0] != self.op
            or len(body) < n
            or ((len(body) - n) % size if size else len(body) != n)
        ):
            raise LinkError(
                f"a {self.op.name} body has {n} bytes"
                + (f" and {size}-byte items" if size else "")
                + f", not {len(body)} bytes starting with 0x{body[0] if body else 0:02x}"
            )
        values = self._header.unpack_from(body)[1:]
        if not size:
            return values, ()
        k = (len(body) - n) // size
        if size in _CODES:
            return values, struct.unpack_from(f"<{k}{_CODES[size]}", body, n)
        raw = np.zeros((k, 8), dtype=np.uint8)
        raw[:, :size] = np.frombuffer(body, dtype=np.uint8, offset=n).reshape(k, size)
        return values, tuple(int(w) for w in raw.view("<u8").ravel())

    def row(self) -> str:
        """Return this message's row of the contract's table (section 8.2)."""
        parts = [f"{f.name} {f.type}" for f in self.fields]
        if self.item is not None:
            kind = "(its memory's size)" if self.sized else self.item.type
            parts.append(f"{self.item.name} {kind} ...")
        text = ", ".join(parts) or "-"
        cells = [f"`{self.op.name} 0x{self.op.value:02X}`", text, self.doc]
        if self.reply:
            cells.append(self.reply)
        return "| " + " | ".join(cells) + " |"


def _f(name: str, size: int, doc: str = "") -> Field:
    return Field(name, size, doc)


_MEMORY = (_f("target", 1), _f("mem", 1), _f("addr", 4), _f("count", 2))

#: Requests, host to device.
REQUESTS: dict[Op, Message] = {
    m.op: m
    for m in (
        Message(Op.INFO, doc="the device's sizes and versions", reply="`R_INFO`"),
        Message(
            Op.WRITE,
            _MEMORY,
            _f("word", 8),
            "write count words from addr on",
            "`R_ACK`",
            sized=True,
        ),
        Message(Op.READ, _MEMORY, doc="read count words (at most 127)", reply="`R_DATA`"),
        Message(
            Op.INJECT,
            (_f("count", 2),),
            _f("source", 2),
            "queue count sources for the next step run",
            "`R_ACK`",
        ),
        Message(
            Op.RUN,
            (_f("steps", 4),),
            _f("input", 2),
            "run steps steps; the inputs before the k-th `STEP_MARK` are injected before step k",
            "`R_SPIKES`*, then `R_RUN_END`",
        ),
        Message(Op.STATUS, doc="the system registers", reply="`R_STATUS`"),
        Message(Op.CLEAR, _MEMORY, doc="write count zero words from addr on", reply="`R_ACK`"),
    )
}

#: Replies, device to host.
REPLIES: dict[Op, Message] = {
    m.op: m
    for m in (
        Message(Op.R_ACK, doc="done"),
        Message(Op.R_DATA, (), _f("word", 8), "the words read", sized=True),
        Message(
            Op.R_SPIKES,
            (_f("seq", 1),),
            _f("spike", 2),
            "global ids of host spikes, each step ended by `STEP_MARK`; seq counts the "
            "R_SPIKES frames of the run from 0 (mod 256)",
        ),
        Message(
            Op.R_RUN_END,
            (_f("step", 4), _f("spikes", 4)),
            doc="the end of a RUN: the next step's number, the ids sent during the run",
        ),
        Message(
            Op.R_STATUS,
            tuple(_f(r.name.lower(), 4) for r in STATUS_REGS),
            doc="the system registers (section 7)",
        ),
        Message(
            Op.R_INFO,
            (
                _f("protocol", 1),
                _f("contract", 1),
                _f("cores", 1),
                _f("neurons", 2),
                _f("axons", 4),
                _f("synapses", 4),
                _f("delay_slots", 1),
                _f("acc_bits", 1),
                _f("sources", 2),
                _f("route_entries", 4),
                _f("inject_depth", 2),
                _f("max_body", 2),
                _f("features", 1),
            ),
            doc="the device's sizes; features: bit 0 learning unit, bit 1 statistics counters",
        ),
        Message(
            Op.R_ERROR,
            (_f("code", 1), _f("op", 1)),
            doc="the request was refused: the error code and its opcode (0 when unknown)",
        ),
    )
}


def table_markdown(messages: Iterable[Message], reply: bool) -> str:
    """Return the contract's table (section 8.2) of ``messages``: one row each."""
    head = ["frame", "fields, then items to the end of the body", "meaning"]
    if reply:
        head.append("replies")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + [m.row() for m in messages])


class LinkError(RuntimeError):
    """The link failed: a corrupt reply, an unexpected reply, or a closed stream."""


class DeviceError(LinkError):
    """The device refused a request with an R_ERROR reply."""

    def __init__(self, code: int, op: int, request: str):
        self.code = code
        self.op = op
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"unknown error {code}"
        super().__init__(f"the device refused {request}: {name} (code {code})")


@dataclass(frozen=True)
class DeviceInfo:
    """What a device reports about itself: the fields of R_INFO, in order."""

    protocol: int
    contract: int
    cores: int
    neurons: int
    axons: int
    synapses: int
    delay_slots: int
    acc_bits: int
    sources: int
    route_entries: int
    inject_depth: int
    max_body: int
    features: int

    @property
    def learning(self) -> bool:
        """The cores have the STDP learning unit."""
        return bool(self.features & Feature.LEARNING)

    @property
    def stats(self) -> bool:
        """The system has its statistics counters (contract 6.1, 7.2)."""
        return bool(self.features & Feature.STATS)

    @classmethod
    def from_body(cls, body: bytes) -> DeviceInfo:
        """Decode an R_INFO body."""
        return cls(*REPLIES[Op.R_INFO].unpack(body)[0])

    def body(self) -> bytes:
        """Return the R_INFO body of this device."""
        return REPLIES[Op.R_INFO].pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def from_config(cls, cfg: SystemConfig) -> DeviceInfo:
        """Return what a device built for ``cfg`` reports."""
        c = cfg.core
        return cls(
            protocol=PROTOCOL_VERSION,
            contract=P.CONTRACT_VERSION,
            cores=cfg.cores,
            neurons=c.neurons,
            axons=c.axons,
            synapses=c.synapses,
            delay_slots=c.delay_slots,
            acc_bits=c.acc_bits,
            sources=cfg.sources,
            route_entries=cfg.route_entries,
            inject_depth=cfg.inject_depth,
            max_body=MAX_BODY,
            features=(Feature.LEARNING if c.learning else 0) | (Feature.STATS if c.stats else 0),
        )

    def config(self) -> SystemConfig:
        """Return the system's sizes as a SystemConfig (the core's FIFO depth, which the
        device does not report, at its default)."""
        return SystemConfig(
            cores=self.cores,
            core=CoreConfig(
                neurons=self.neurons,
                axons=self.axons,
                synapses=self.synapses,
                delay_slots=self.delay_slots,
                acc_bits=self.acc_bits,
                learning=self.learning,
                stats=self.stats,
            ),
            sources=self.sources,
            route_entries=self.route_entries,
            inject_depth=self.inject_depth,
        )

    def differences(self, other: DeviceInfo) -> list[str]:
        """Return ``"name this (other)"`` for every field that differs."""
        return [
            f"{f.name} {getattr(self, f.name)} (expected {getattr(other, f.name)})"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def word_size(config: SystemConfig, target: int, mem: int) -> int:
    """Return the bytes of one word of memory ``mem`` of ``target`` in WRITE and R_DATA:
    the bits of the memory's layout rounded up to whole bytes; 8 for a
    memory the system does not have (its requests are refused with ADDRESS).

    The contract's section 8.2 gives the rule."""
    try:
        if target == Target.SYSTEM:
            sm = SystemMem(mem)
            bits = config.layout_of(sm).size if config.depth_of(sm) else 0
        elif 0 <= target < config.cores:
            cm = CoreMem(mem)
            bits = config.core.layout_of(cm).size if config.core.depth_of(cm) else 0
        else:
            bits = 0
    except ValueError:
        bits = 0
    return (bits + 7) // 8 if bits else 8


#: Items of an R_SPIKES frame at most.
SPIKE_ITEMS = REPLIES[Op.R_SPIKES].max_items


# --- frame-level signatures of the gateware: receiver -> executor -> sender ---

#: A byte of a frame body; ``last`` marks the body's final byte.
BODY_BYTE = data.StructLayout({"data": unsigned(8), "last": unsigned(1)})


def frame_info_layout(max_body: int = MAX_BODY) -> data.StructLayout:
    """A received frame: its body length, or the error (an ErrorCode) that spoiled it."""
    return data.StructLayout({"length": unsigned(bits_for(max_body)), "error": unsigned(4)})


class FrameReadSignature(wiring.Signature):
    """The frame buffer's read port, seen from its reader: ``data`` is the byte at the
    ``addr`` of the previous cycle, or with ``width`` bytes, the bytes from there on (the
    first in the low bits; those past the frame are unspecified)."""

    def __init__(self, max_body: int = MAX_BODY, width: int = 1):
        if width not in (1, 8):
            raise ValueError(f"width must be 1 or 8 bytes, not {width!r}")
        super().__init__({"addr": Out(range(max_body + 2)), "data": In(8 * width)})


def body_signature() -> stream.Signature:
    return stream.Signature(BODY_BYTE)


def crc16(data: Iterable[int], crc: int = CRC_INIT) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``).

    The CRC of the contract is ``binascii.crc_hqx`` (CRC-CCITT, MSB first) started at
    ``CRC_INIT``; :func:`crc16_bitwise` is the same, spelled out.
    """
    return binascii.crc_hqx(bytes(data), crc)


def crc16_bitwise(data: Iterable[int], crc: int = CRC_INIT) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` one bit at a time (the reference)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


_END, _ESC = bytes([END]), bytes([ESC])
_ESC_END, _ESC_ESC = bytes([ESC, ESC_END]), bytes([ESC, ESC_ESC])


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
    return _END + raw.replace(_ESC, _ESC_ESC).replace(_END, _ESC_END) + _END


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
    too many bytes is returned with its ``error`` set. Every END ends a frame and cancels a
    pending ESC.
    """

    #: Wire bytes of the largest frame (every byte escaped).
    _RAW_LIMIT = 2 * (MAX_BODY + 2)

    def __init__(self) -> None:
        self._raw = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> Iterator[Frame]:
        """Consume ``data`` and yield every frame it completes."""
        self._raw += data
        while True:
            i = self._raw.find(END)
            if i < 0:
                break
            chunk = bytes(self._raw[:i])
            del self._raw[: i + 1]
            overflow, self._overflow = self._overflow, False
            frame = self._decode(chunk, overflow)
            if frame is not None:
                yield frame
        if len(self._raw) > self._RAW_LIMIT:
            # longer than any frame: keep what a frame can hold, the rest is an overflow
            del self._raw[self._RAW_LIMIT :]
            self._overflow = True

    @staticmethod
    def _decode(chunk: bytes, overflow: bool) -> Frame | None:
        bad = ErrorCode.OVERFLOW if overflow else None
        n_esc = chunk.count(ESC)
        if n_esc == 0:
            buf = chunk
        elif n_esc == chunk.count(_ESC_END) + chunk.count(_ESC_ESC):
            buf = chunk.replace(_ESC_END, _END).replace(_ESC_ESC, _ESC)
        else:  # a bad escape, or an ESC just before END: byte by byte
            out = bytearray()
            esc = False
            for b in chunk:
                if esc:
                    esc = False
                    if b == ESC_END:
                        b = END
                    elif b == ESC_ESC:
                        b = ESC
                    else:
                        bad = bad or ErrorCode.ESCAPE
                elif b == ESC:
                    esc = True
                    continue
                out.append(b)
            buf = bytes(out)
        if len(buf) > MAX_BODY + 2:
            buf = buf[: MAX_BODY + 2]
            bad = bad or ErrorCode.OVERFLOW
        if not buf and bad is None:
            return None
        if bad is not None:
            return Frame(buf[:-2], bad)
        if len(buf) < 3:
            return Frame(buf, ErrorCode.LENGTH)
        body, crc = buf[:-2], buf[-2] | buf[-1] << 8
        if crc16(body) != crc:
            return Frame(body, ErrorCode.CRC)
        return Frame(body)
