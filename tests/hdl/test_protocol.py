"""The wire format as data (hdl/protocol.py) against the contract and a reference codec."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from spikefab.hdl.layouts import CoreConfig, CoreMem, SystemConfig, SystemMem, SystemReg
from spikefab.hdl.protocol import (
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    MAX_BODY,
    REPLIES,
    REQUESTS,
    STATUS_REGS,
    DeviceInfo,
    ErrorCode,
    Feature,
    FrameDecoder,
    LinkError,
    Op,
    Target,
    crc16,
    crc16_bitwise,
    encode_frame,
    table_markdown,
    word_size,
)

CONTRACT = Path(__file__).parents[2] / "docs" / "contract.md"


def test_contract_tables_are_the_data():
    text = CONTRACT.read_text()
    assert table_markdown(REQUESTS.values(), True) in text
    assert table_markdown(REPLIES.values(), False) in text


def test_every_opcode_has_its_table_row():
    assert set(REQUESTS) | set(REPLIES) == set(Op)
    assert all(op < 0x80 for op in REQUESTS) and all(op >= 0x80 for op in REPLIES)


def test_status_fields_are_the_system_registers():
    names = [f.name for f in REPLIES[Op.R_STATUS].fields]
    assert names == [r.name.lower() for r in SystemReg if r < SystemReg.LEARN]
    assert tuple(SystemReg)[: len(STATUS_REGS)] == STATUS_REGS


@pytest.mark.parametrize("op", list(REQUESTS.values()) + list(REPLIES.values()), ids=str)
def test_pack_unpack_round_trip(op):
    rng = random.Random(int(op.op))
    values = tuple(rng.getrandbits(8 * f.size) for f in op.fields)
    items = tuple(rng.getrandbits(8 * op.item.size) for _ in range(5)) if op.item else ()
    body = op.pack(*values, items=items)
    assert len(body) == op.header_size + len(items) * (op.item.size if op.item else 0)
    assert op.unpack(body) == (values, items)
    with pytest.raises(LinkError, match=op.op.name):
        op.unpack(body + b"\x00" * (1 if op.item is None else op.item.size + 1))


def test_pack_names_what_does_not_fit():
    with pytest.raises(ValueError, match=r"a field of RUN does not fit: \(4294967296,\)"):
        REQUESTS[Op.RUN].pack(1 << 32)
    with pytest.raises(ValueError, match="INFO has 0 field"):
        REQUESTS[Op.INFO].pack(1)


def test_word_sizes_are_the_layouts_bytes_as_the_contract_says():
    """The example of contract 8.2 (a 256-neuron learning core) and the rule: whole bytes
    that hold every bit of the memory's layout, 8 for a memory that does not exist."""
    cfg = SystemConfig(cores=2, core=CoreConfig(neurons=256, learning=True))
    text = " ".join(CONTRACT.read_text().split())
    for mem in CoreMem:
        n = word_size(cfg, 1, mem.value)
        bits = cfg.core.layout_of(mem).size
        assert 8 * (n - 1) < bits <= 8 * n
        assert f"`{mem.name}` {n}" in text or f"`{mem.name}` word takes {n}" in text, mem
    for mem in SystemMem:
        n = word_size(cfg, Target.SYSTEM, mem.value)
        assert 8 * (n - 1) < cfg.layout_of(mem).size <= 8 * n
        assert f"`{mem.name}` {n}" in text, mem
    assert word_size(cfg, 2, CoreMem.STATE.value) == 8  # no core 2
    assert word_size(cfg, 0, 7) == 5 and word_size(cfg, 0, 9) == 8  # no memory 9
    plain = SystemConfig(cores=1, core=CoreConfig(neurons=256, learning=False))
    assert word_size(plain, 0, CoreMem.PRE_TRACES.value) == 8  # no learning unit


@pytest.mark.parametrize("size", range(1, 9))
def test_sized_items_round_trip(size):
    rng = random.Random(size)
    words = (*tuple(rng.getrandbits(8 * size) for _ in range(7)), (1 << 8 * size) - 1, 0)
    for msg, values in ((REQUESTS[Op.WRITE], (3, 4, 5, len(words))), (REPLIES[Op.R_DATA], ())):
        body = msg.pack(*values, items=words, size=size)
        assert len(body) == msg.header_size + size * len(words)
        # little-endian, byte by byte
        assert body[msg.header_size :] == b"".join(w.to_bytes(size, "little") for w in words)
        assert msg.unpack(body, size) == (values, words)
        with pytest.raises(ValueError, match=f"does not fit {size} byte"):
            msg.pack(*values, items=[1 << 8 * size], size=size)
        if size > 1:  # a body that does not end on a whole word
            with pytest.raises(LinkError, match=f"{size}-byte items"):
                msg.unpack(body + b"\x00", size)
    with pytest.raises(ValueError, match="INJECT items take 2 bytes"):
        REQUESTS[Op.INJECT].pack(1, items=[1], size=size)


def test_device_info_from_config():
    cfg = SystemConfig(cores=3, core=CoreConfig(neurons=64, learning=True, stats=False))
    info = DeviceInfo.from_config(cfg)
    assert info.learning and not info.stats
    assert info.features == Feature.LEARNING
    assert (info.cores, info.neurons, info.inject_depth) == (3, 64, cfg.inject_depth)
    assert DeviceInfo.from_body(info.body()) == info
    other = DeviceInfo.from_config(SystemConfig(cores=2, inject_depth=8))
    diff = info.differences(other)
    assert "cores 3 (expected 2)" in diff and "inject_depth 256 (expected 8)" in diff
    assert any(d.startswith("features") for d in diff)
    assert info.config() == cfg and DeviceInfo.from_config(info.config()) == info


def ref_encode(body: bytes) -> bytes:
    """RFC 1055 framing, byte by byte, with the bitwise CRC."""
    crc = crc16_bitwise(body)
    out = [END]
    for b in bytes(body) + bytes([crc & 0xFF, crc >> 8]):
        out += [ESC, ESC_END] if b == END else [ESC, ESC_ESC] if b == ESC else [b]
    return bytes([*out, END])


def test_codec_matches_the_reference():
    rng = random.Random(1)
    assert crc16(b"123456789") == crc16_bitwise(b"123456789") == 0x29B1
    bodies = [bytes([END, ESC] * 20), bytes([ESC_END, ESC_ESC, END])]
    bodies += [bytes(rng.choice([END, ESC, 0, 255, rng.randrange(256)]) for _ in range(n))
               for n in (1, 2, 3, 100, MAX_BODY)]  # fmt: skip
    wire = b""
    for body in bodies:
        assert crc16(body) == crc16_bitwise(body)
        assert encode_frame(body) == ref_encode(body)
        wire += encode_frame(body)
    # split anywhere: the same frames
    dec = FrameDecoder()
    got = []
    for i in range(0, len(wire), 37):
        got += list(dec.feed(wire[i : i + 37]))
    assert [f.body for f in got] == bodies and all(f.error is None for f in got)


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (bytes([END, 1, ESC, 0x01, 0, 0, END]), ErrorCode.ESCAPE),
        (bytes([END, 1, 2, END]), ErrorCode.LENGTH),
        (bytes([END, 1, 2, 3, END]), ErrorCode.CRC),
        (bytes([END]) + bytes(MAX_BODY + 3) + bytes([END]), ErrorCode.OVERFLOW),
        (bytes([END]) + bytes([ESC, ESC_END]) * (MAX_BODY + 3) + bytes([END]), ErrorCode.OVERFLOW),
    ],
)
def test_decoder_errors(wire, code):
    frames = list(FrameDecoder().feed(wire))
    assert [f.error for f in frames] == [code]


def test_decoder_resynchronises_after_garbage():
    good = encode_frame(bytes([Op.R_ACK]))
    frames = list(FrameDecoder().feed(bytes([7, ESC]) + good + good))
    assert [f.error for f in frames] == [ErrorCode.LENGTH, None, None]
