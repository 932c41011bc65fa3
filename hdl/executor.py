"""The host link's command executor (``docs/contract.md``, section 8).

The executor takes one received frame at a time from the frame buffer, checks it, carries
it out on the system and streams the reply body to the frame sender. Every frame gets
exactly one final reply (``R_ACK``, ``R_DATA``, ``R_INFO``, ``R_STATUS``, ``R_RUN_END`` or
``R_ERROR``); a ``RUN`` streams ``R_SPIKES`` frames before its ``R_RUN_END``. A frame with
a receive error, a wrong length, an unknown opcode or an address out of range gets
``R_ERROR`` and changes nothing.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from spikefab.hdl.layouts import CoreMem, SystemConfig, SystemMem, SystemReg
from spikefab.hdl.protocol import (
    BODY_BYTE,
    MAX_GID,
    REPLIES,
    REQUESTS,
    SPIKE_ITEMS,
    STATUS_REGS,
    STEP_MARK,
    DeviceInfo,
    ErrorCode,
    FrameReadSignature,
    Op,
    Target,
    frame_info_layout,
)
from spikefab.hdl.protocol import (
    word_size as word_size_of,
)
from spikefab.hdl.system import HOST_ITEM, system_request_layout

__all__ = ["Executor", "info_bytes"]


def info_bytes(cfg: SystemConfig) -> bytes:
    """Return the body of the R_INFO reply of a system (contract 8)."""
    return DeviceInfo.from_config(cfg).body()


class Executor(wiring.Component):
    """Carry out host frames on a :class:`~spikefab.hdl.system.System`.

    Attributes
    ----------
    i_frame : In(stream.Signature(frame_info_layout()))
        A received frame waits in the buffer (from :class:`~spikefab.hdl.slip.SlipReceiver`);
        taken once its final reply is sent.
    buf : Out(FrameReadSignature())
        The frame buffer's read port.
    o_body : Out(stream.Signature(BODY_BYTE))
        Reply bodies, to :class:`~spikefab.hdl.slip.SlipSender`.

    Parameters
    ----------
    config
        The system.
    read_width
        Bytes of the frame buffer's read port: 1, or 8 (a configuration word), with which a
        ``WRITE`` takes a word in a read rather than a byte at a time (two cycles a word
        instead of about ten; the simulation's top uses it).
    """

    def __init__(self, config: SystemConfig, *, read_width: int = 1):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig, not {config!r}")
        if read_width not in (1, 8):
            raise ValueError(f"read_width must be 1 or 8 bytes, not {read_width!r}")
        if config.cores * config.core.neurons > MAX_GID or config.sources > MAX_GID:
            raise ValueError(
                f"the host link carries ids below {MAX_GID}: cores x neurons "
                f"{config.cores * config.core.neurons} and sources {config.sources} must be less"
            )
        self._config = config
        self._read_width = read_width
        super().__init__(
            {
                # from the frame receiver
                "i_frame": In(stream.Signature(frame_info_layout())),
                "buf": Out(FrameReadSignature(width=read_width)),
                # to the frame sender
                "o_body": Out(stream.Signature(BODY_BYTE)),
                # to the system
                "o_cfg": Out(stream.Signature(system_request_layout())),
                "i_cfg": In(stream.Signature(64)),
                "o_inject": Out(stream.Signature(16)),
                "inject_free": In(16),
                "run_steps": Out(32),
                "run_start": Out(1),
                "run_busy": In(1),
                "i_host": In(stream.Signature(HOST_ITEM)),
                "step": In(32),
                "frames": Out(32),
                "errors": Out(32),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        m = Module()

        # The executor is sized for the UP5K as much as for the ECP5: no field is wider
        # than what it can hold (counts and loop indices are u16, addresses as wide as the
        # deepest memory after a check that the rest are zero), fields are shifted in a
        # byte at a time, and every reply is a header byte and up to eight bytes of one
        # word, sent from where the word is. Field offsets and sizes come from the tables
        # of hdl/protocol.py.
        depths = [cfg.depth_of(sm) for sm in SystemMem] + [cfg.core.depth_of(cm) for cm in CoreMem]
        abits = max(depths).bit_length()  # every address below 2**abits, every depth too
        mem_req = REQUESTS[Op.WRITE]
        assert all(REQUESTS[op].fields == mem_req.fields for op in (Op.READ, Op.CLEAR))
        mem_hdr = mem_req.header_size - 1  # the fields after the opcode
        inject_hdr = REQUESTS[Op.INJECT].header_size
        run_hdr = REQUESTS[Op.RUN].header_size
        word_size = mem_req.item.size  # the cfg bus's words; on the link, wbytes of them
        assert word_size == 8
        # R_STATUS carries the first registers, in SystemReg order
        assert tuple(SystemReg)[: len(STATUS_REGS)] == STATUS_REGS
        assert REPLIES[Op.R_RUN_END].fields[0].size == 4  # the step, then the spikes: u32s

        frames, errors = Signal(32), Signal(32)
        m.d.comb += [self.frames.eq(frames), self.errors.eq(errors)]
        length = Signal.like(self.i_frame.payload.length)
        op = Signal(8)
        target = Signal(8)
        mem = Signal(8)
        addr = Signal(abits)
        addr_high = Signal()  # the request's address has bits at or above 2**abits
        count = Signal(16)
        wlen = Signal(16 + 4)  # count * wbytes: a WRITE's bytes of words, summed in MEM_LEN
        wrep = Signal(4)
        index = Signal(16)  # loop counter; in a RUN's check, the inputs of a step
        err = Signal(4)
        to_end = Signal(32)  # steps of the run whose end has not been sent yet
        run_spikes = Signal(32)
        seq = Signal(8)  # R_SPIKES frames of this run, mod 256
        items = Signal(range(SPIKE_ITEMS))  # items in the open R_SPIKES frame
        open_ = Signal()  # an R_SPIKES frame is open
        is_run = Signal()

        # --- field loader: n bytes from the buffer at rd_ptr onward, little-endian, shifted
        # in from the top of fld (an n-byte field is fld[64 - 8n:]), one byte per cycle
        # after the first read; with ld_zero, zeros are shifted in instead ---
        rd_ptr = Signal(len(self.buf.addr))
        rd_next = Signal.like(rd_ptr)
        fld = Signal(64)
        ld_left = Signal(4)
        ld_phase = Signal()
        ld_zero = Signal()
        loading = Signal()
        m.d.comb += [
            rd_next.eq(rd_ptr + 1),
            self.buf.addr.eq(Mux(loading & ld_phase, rd_next, rd_ptr)),
        ]

        def top(n: int):  # type: ignore[no-untyped-def]
            return fld[64 - 8 * n :]

        def field(msg, name: str):  # type: ignore[no-untyped-def]
            """A fixed field of ``msg`` after a load of the fields after the opcode."""
            at = 8 * (msg.offset(name) - 1 + 8 - (msg.header_size - 1))
            return fld[at : at + 8 * msg.field(name).size]

        # --- byte emitter: the header byte (when em_hdr_on), then em_n bytes of a word,
        # little-endian from byte em_i; `last` on the final byte when em_last. The word is
        # not copied: it is the system's reply (held until its last byte is sent, then
        # taken), the run's totals, the error, or an R_SPIKES item ---
        em_hdr = Signal(8)
        em_hdr_on = Signal()
        em_src = Signal(range(4))
        em_i = Signal(3)
        em_n = Signal(4)
        em_last = Signal()
        gid = Signal(16)
        SRC_CFG, SRC_STEP, SRC_ERR, SRC_ITEM = range(4)

        rets = [
            "OP",
            "MEM_HDR",
            "WRITE_WORD",
            "WRITE_NEXT",
            "WRITE_PAD",
            "READ_HDR",
            "INJECT_HDR",
            "SCAN_CHECK",
            "INJECT_PUSH",
            "RUN_HDR",
            "RUN_GO",
            "RUN_SCHED",
            "RUN_WAIT",
            "RUN_NEXT",
            "INFO_NEXT",
            "STATUS_NEXT",
            "FINISH",
        ]
        ret = Signal(range(len(rets)))

        def load(n: int | Value, then: str, zero: bool = False) -> None:
            """Load the next n bytes of the body into fld, then go to ``then``."""
            m.d.sync += [
                ld_left.eq(n),
                ld_phase.eq(0),
                ld_zero.eq(zero),
                ret.eq(rets.index(then)),
            ]
            m.next = "LOAD"

        def emit(hdr, last, then, src: int | None = None, n: int = 0, start: int = 0) -> None:  # type: ignore[no-untyped-def]
            """Send ``hdr`` (unless None), then bytes ``start .. start + n - 1`` of word
            ``src``; go to ``then`` (a state name, or a value of ``ret``)."""
            m.d.sync += [
                em_hdr_on.eq(hdr is not None),
                em_i.eq(start),
                em_n.eq(n),
                em_last.eq(last),
                ret.eq(rets.index(then) if isinstance(then, str) else then),
            ]
            if hdr is not None:
                m.d.sync += em_hdr.eq(hdr)
            if src is not None:
                m.d.sync += em_src.eq(src)
            m.next = "EMIT"

        def fail(code: ErrorCode) -> None:
            m.d.sync += err.eq(code.value)
            m.next = "ERROR"

        def go_ret() -> None:
            with m.Switch(ret):
                for i, name in enumerate(rets):
                    with m.Case(i):
                        m.next = name

        # address range of (target, mem): depth of the memory, or 0 when it does not exist
        depth = Signal(abits)
        with m.If(target == Target.SYSTEM.value), m.Switch(mem):
            for sm in SystemMem:
                with m.Case(sm.value):
                    m.d.comb += depth.eq(cfg.depth_of(sm))
        with m.Elif(target < cfg.cores), m.Switch(mem):
            for cm in CoreMem:
                with m.Case(cm.value):
                    m.d.comb += depth.eq(cfg.core.depth_of(cm))
        # bytes of a word of (target, mem) on the link (protocol.word_size): 8 for none
        wbytes = Signal(4)
        m.d.comb += wbytes.eq(word_size)
        with m.If(target == Target.SYSTEM.value), m.Switch(mem):
            for sm in SystemMem:
                with m.Case(sm.value):
                    m.d.comb += wbytes.eq(word_size_of(cfg, Target.SYSTEM, sm.value))
        with m.Elif(target < cfg.cores), m.Switch(mem):
            for cm in CoreMem:
                with m.Case(cm.value):
                    m.d.comb += wbytes.eq(word_size_of(cfg, 0, cm.value))
        in_range = Signal()
        m.d.comb += in_range.eq((depth != 0) & ~addr_high & (addr + count <= depth))

        # the requests' fields, whatever the state (they count only with `valid`)
        status = Signal()  # STATUS reads the system registers at `index`
        m.d.comb += [
            self.o_cfg.payload.target.eq(Mux(status, Target.SYSTEM.value, target)),
            self.o_cfg.payload.mem.eq(Mux(status, SystemMem.REGS.value, mem)),
            self.o_cfg.payload.addr.eq(Mux(status, index, (addr + index)[:abits])),
            self.o_cfg.payload.data.eq(fld),
            self.o_inject.payload.eq(top(2)),
            self.run_steps.eq(1),  # a run goes one step at a time: inputs come between
        ]
        # the byte sent: the header byte while em_hdr_on, else byte em_i of the word
        word_byte = Signal(8)
        words = {
            SRC_CFG: self.i_cfg.payload,
            SRC_STEP: Cat(self.step, run_spikes),  # R_RUN_END: step u32, spikes u32
            SRC_ERR: Cat(err, Const(0, 4), op),
            SRC_ITEM: Cat(seq, gid),  # R_SPIKES: seq u8 (first item only), then the item
        }
        with m.Switch(em_src):
            for src, word in words.items():
                with m.Case(src):
                    sel = em_i[: ceil_log2(len(word) // 8)]
                    m.d.comb += word_byte.eq(word.word_select(sel, 8))
        m.d.comb += self.o_body.payload.data.eq(Mux(em_hdr_on, em_hdr, word_byte))

        # with a word-wide read port, a WRITE's word is the buffer's bytes at rd_ptr, those of
        # the next words masked off
        wide = self._read_width == word_size
        wide_write = Signal()
        if wide:
            mask = Signal(8 * word_size)
            with m.Switch(wbytes):
                for n in range(1, word_size + 1):
                    with m.Case(n):
                        m.d.comb += mask.eq((1 << 8 * n) - 1)
            with m.If(wide_write):
                m.d.comb += self.o_cfg.payload.data.eq(self.buf.data & mask)

        info = info_bytes(cfg)
        n_status = len(STATUS_REGS)
        item = top(2)
        mark = item == STEP_MARK

        with m.FSM(name="exec") as fsm:
            with m.State("IDLE"), m.If(self.i_frame.valid):
                m.d.sync += [length.eq(self.i_frame.payload.length), rd_ptr.eq(0)]
                with m.If(self.i_frame.payload.error != 0):
                    m.d.sync += [err.eq(self.i_frame.payload.error), op.eq(0)]
                    m.next = "ERROR"
                with m.Else():
                    load(1, "OP")

            with m.State("LOAD"):
                # the buffer reads rd_ptr in the first cycle, then one byte arrives per cycle
                m.d.comb += loading.eq(1)
                m.d.sync += ld_phase.eq(1)
                with m.If(ld_phase):
                    m.d.sync += [
                        fld.eq(Cat(fld[8:], Mux(ld_zero, 0, self.buf.data[:8]))),
                        ld_left.eq(ld_left - 1),
                        rd_ptr.eq(Mux(ld_zero, rd_ptr, rd_next)),  # zeros take no byte
                    ]
                    with m.If(ld_left == 1):
                        go_ret()

            with m.State("EMIT"):
                final = Mux(em_hdr_on, em_n == 0, em_n == 1)
                m.d.comb += [
                    self.o_body.valid.eq(1),
                    self.o_body.payload.last.eq(em_last & final),
                ]
                with m.If(self.o_body.ready):
                    with m.If(em_hdr_on):
                        m.d.sync += em_hdr_on.eq(0)
                    with m.Else():
                        m.d.sync += [em_i.eq(em_i + 1), em_n.eq(em_n - 1)]
                    with m.If(final):
                        # the system's reply is taken once its last byte is sent
                        m.d.comb += self.i_cfg.ready.eq(~em_hdr_on & (em_src == SRC_CFG))
                        go_ret()

            with m.State("OP"):
                opcode = top(1)
                m.d.sync += [op.eq(opcode), is_run.eq(opcode == Op.RUN.value)]
                with m.Switch(opcode):
                    with m.Case(Op.INFO.value):
                        with m.If(length != REQUESTS[Op.INFO].header_size):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            m.d.sync += index.eq(0)
                            m.next = "INFO_NEXT"
                    with m.Case(Op.STATUS.value):
                        with m.If(length != REQUESTS[Op.STATUS].header_size):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            m.d.sync += index.eq(0)
                            emit(Op.R_STATUS.value, 0, "STATUS_NEXT")
                    with m.Case(Op.WRITE.value, Op.READ.value, Op.CLEAR.value):
                        with m.If(length < mem_req.header_size):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            load(mem_hdr, "MEM_HDR")
                    with m.Case(Op.INJECT.value):
                        with m.If(length < inject_hdr):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            load(inject_hdr - 1, "INJECT_HDR")
                    with m.Case(Op.RUN.value):
                        with m.If((length < run_hdr) | (length[0] != run_hdr % 2)):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            load(run_hdr - 1, "RUN_HDR")
                    with m.Default():
                        fail(ErrorCode.OPCODE)

            # INFO: the constant body, byte by byte
            with m.State("INFO_NEXT"):
                byte = Signal(8)
                with m.Switch(index[: ceil_log2(len(info) + 1)]):
                    for i, b in enumerate(info):
                        with m.Case(i):
                            m.d.comb += byte.eq(b)
                m.d.sync += index.eq(index + 1)
                emit(byte, index == len(info) - 1, "INFO_NEXT")
                with m.If(index == len(info)):
                    m.next = "FINISH"

            # STATUS: the system registers as u32
            with m.State("STATUS_NEXT"):
                with m.If(index == n_status):
                    m.next = "FINISH"
                with m.Else():
                    m.d.comb += [self.o_cfg.valid.eq(1), status.eq(1)]
                    with m.If(self.o_cfg.ready):
                        m.next = "STATUS_REPLY"
            with m.State("STATUS_REPLY"), m.If(self.i_cfg.valid):
                m.d.sync += index.eq(index + 1)
                emit(None, index == n_status - 1, "STATUS_NEXT", SRC_CFG, 4)

            # WRITE / READ / CLEAR: target u8, mem u8, addr u32, count u16
            with m.State("MEM_HDR"):
                a = field(mem_req, "addr")
                m.d.sync += [
                    target.eq(field(mem_req, "target")),
                    mem.eq(field(mem_req, "mem")),
                    addr.eq(a[:abits]),
                    addr_high.eq(a[abits:] != 0),
                    count.eq(field(mem_req, "count")),
                    index.eq(0),
                    wlen.eq(0),
                    wrep.eq(0),
                ]
                m.next = "MEM_LEN"
            with m.State("MEM_LEN"):  # wlen = count * wbytes, one addition per cycle
                with m.If(wrep == wbytes):
                    m.next = "MEM_CHECK"
                with m.Else():
                    m.d.sync += [wlen.eq(wlen + count), wrep.eq(wrep + 1)]
            with m.State("MEM_CHECK"):
                is_write = op == Op.WRITE.value
                is_read = op == Op.READ.value
                want = Mux(is_write, mem_req.header_size + wlen, mem_req.header_size)
                too_many = is_read & (count > REPLIES[Op.R_DATA].max_items)
                with m.If((length != want) | too_many):
                    fail(ErrorCode.LENGTH)
                with m.Elif(~in_range):
                    fail(ErrorCode.ADDRESS)
                with m.Elif(is_read):
                    emit(Op.R_DATA.value, count == 0, "READ_HDR")
                with m.Elif(is_write):
                    m.next = "WRITE_NEXT"
                with m.Else():
                    load(word_size, "WRITE_NEXT", zero=True)  # CLEAR: a zero word, kept
            with m.State("WRITE_NEXT"):
                with m.If(index == count):
                    emit(Op.R_ACK.value, 1, "FINISH")
                with m.Elif(op == Op.CLEAR.value):
                    m.next = "WRITE_WORD"
                with m.Else():
                    if wide:  # the read of rd_ptr is issued in this cycle
                        m.next = "WRITE_WORD"
                    else:
                        load(wbytes, "WRITE_PAD")  # the words follow one another in the body
            with m.State("WRITE_PAD"):  # the word's bytes down to fld's bottom, zeros above
                with m.If(wbytes == word_size):
                    m.next = "WRITE_WORD"
                with m.Else():
                    load(word_size - wbytes, "WRITE_WORD", zero=True)
            with m.State("WRITE_WORD"):
                m.d.comb += [self.o_cfg.valid.eq(1), self.o_cfg.payload.write.eq(1)]
                if wide:
                    m.d.comb += wide_write.eq(op == Op.WRITE.value)
                with m.If(self.o_cfg.ready):
                    m.d.sync += index.eq(index + 1)
                    if wide:
                        with m.If(wide_write):
                            m.d.sync += rd_ptr.eq(rd_ptr + wbytes)
                    m.next = "WRITE_NEXT"
            with m.State("READ_HDR"):
                with m.If(index == count):
                    m.next = "FINISH"
                with m.Else():
                    m.d.comb += self.o_cfg.valid.eq(1)
                    with m.If(self.o_cfg.ready):
                        m.next = "READ_REPLY"
            with m.State("READ_REPLY"), m.If(self.i_cfg.valid):
                m.d.sync += index.eq(index + 1)
                emit(None, index + 1 == count, "READ_HDR", SRC_CFG, wbytes)

            # INJECT: count u16, then count source ids u16; all or nothing
            with m.State("INJECT_HDR"):
                m.d.sync += [count.eq(top(2)), index.eq(0)]
                m.next = "INJECT_LEN"
            with m.State("INJECT_LEN"):
                with m.If(length != inject_hdr + (count << 1)):
                    fail(ErrorCode.LENGTH)
                with m.Elif(count > self.inject_free):
                    fail(ErrorCode.FULL)
                with m.Else():
                    m.next = "SCAN"

            # RUN: steps u32, then the inputs (source ids, STEP_MARK after each step's)
            with m.State("RUN_HDR"):
                m.d.sync += [to_end.eq(top(4)), index.eq(0)]
                m.next = "SCAN"

            # INJECT and RUN: check every input before anything is done (all or nothing):
            # ids below `sources`, each step's ids fit the injection FIFO, no more steps
            # marked than run
            with m.State("SCAN"):
                with m.If(rd_ptr == length):
                    with m.If(is_run):
                        m.d.sync += rd_ptr.eq(1)  # the steps again, then the inputs
                        load(run_hdr - 1, "RUN_GO")
                    with m.Else():
                        m.d.sync += [index.eq(0), rd_ptr.eq(inject_hdr)]  # the ids again
                        m.next = "INJECT_NEXT"
                with m.Else():
                    load(2, "SCAN_CHECK")
            with m.State("SCAN_CHECK"):
                m.next = "SCAN"
                with m.If(is_run & mark):
                    m.d.sync += [index.eq(0), to_end.eq(to_end - 1)]
                    with m.If(to_end == 0):
                        fail(ErrorCode.LENGTH)
                with m.Elif(item[:15] >= cfg.sources):  # bit 15 marks a late source
                    fail(ErrorCode.ADDRESS)
                with m.Else():
                    m.d.sync += index.eq(index + 1)
                    with m.If(index >= self.inject_free):
                        fail(ErrorCode.FULL)

            with m.State("INJECT_NEXT"):
                with m.If(index == count):
                    emit(Op.R_ACK.value, 1, "FINISH")
                with m.Else():
                    load(2, "INJECT_PUSH")
            with m.State("INJECT_PUSH"):
                m.d.comb += self.o_inject.valid.eq(1)
                with m.If(self.o_inject.ready):
                    m.d.sync += index.eq(index + 1)
                    m.next = "INJECT_NEXT"

            # the run, one step at a time: push the step's inputs, start it, send its
            # spikes and its STEP_MARK as R_SPIKES items; R_RUN_END after the last
            with m.State("RUN_GO"):
                # seq counts up as a frame opens, so that the first one carries 0
                m.d.sync += [to_end.eq(top(4)), run_spikes.eq(0), seq.eq(0xFF), items.eq(0)]
                m.d.sync += open_.eq(0)
                m.next = "RUN_NEXT"
            with m.State("RUN_NEXT"), m.If(~self.run_busy):
                with m.If(rd_ptr != length):
                    load(2, "RUN_SCHED")
                with m.Elif(to_end == 0):
                    emit(Op.R_RUN_END.value, 1, "FINISH", SRC_STEP, 8)
                with m.Else():
                    m.next = "RUN_START"
            with m.State("RUN_SCHED"):
                with m.If(mark):
                    m.next = "RUN_START"
                with m.Else():
                    m.d.comb += self.o_inject.valid.eq(1)
                    with m.If(self.o_inject.ready):
                        m.next = "RUN_NEXT"
            with m.State("RUN_START"):
                m.d.comb += self.run_start.eq(1)
                m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"), m.If(self.i_host.valid):
                host = self.i_host.payload
                m.d.comb += self.i_host.ready.eq(1)
                close = (host.end & (to_end == 1)) | (items == SPIKE_ITEMS - 1)
                m.d.sync += [
                    gid.eq(host.gid | Mux(host.end, STEP_MARK, 0)),
                    open_.eq(~close),
                    items.eq(Mux(close, 0, items + 1)),
                ]
                then = Mux(host.end, rets.index("RUN_NEXT"), rets.index("RUN_WAIT"))
                with m.If(host.end):
                    m.d.sync += to_end.eq(to_end - 1)
                with m.Else():
                    m.d.sync += run_spikes.eq(run_spikes + 1)
                with m.If(open_):
                    emit(None, close, then, SRC_ITEM, 2, start=1)
                with m.Else():
                    m.d.sync += seq.eq(seq + 1)
                    emit(Op.R_SPIKES.value, close, then, SRC_ITEM, 3)

            with m.State("ERROR"):
                if cfg.core.stats:
                    m.d.sync += errors.eq(errors + 1)
                emit(Op.R_ERROR.value, 1, "FINISH", SRC_ERR, 2)

            with m.State("FINISH"):
                m.d.comb += self.i_frame.ready.eq(1)
                if cfg.core.stats:
                    m.d.sync += frames.eq(frames + 1)
                m.next = "IDLE"
        m.d.comb += self.idle.eq(fsm.ongoing("IDLE") & ~self.i_frame.valid)
        return m
