"""The host link's command executor (``docs/contract.md``, section 8).

The executor takes one received frame at a time from the frame buffer, checks it, carries
it out on the system and streams the reply body to the frame sender. Every frame gets
exactly one final reply (``R_ACK``, ``R_DATA``, ``R_INFO``, ``R_STATUS`` or ``R_ERROR``);
a ``RUN`` streams ``R_SPIKES`` and ``R_STEP_END`` frames before its ``R_ACK``. A frame with
a receive error, a wrong length, an unknown opcode or an address out of range gets
``R_ERROR`` and changes nothing.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from spikefab.hdl import params as P
from spikefab.hdl.layouts import CoreMem, SystemConfig, SystemMem
from spikefab.hdl.protocol import (
    MAX_BODY,
    PROTOCOL_VERSION,
    STATUS_FIELDS,
    ErrorCode,
    Op,
    Target,
)
from spikefab.hdl.system import HOST_ITEM, system_request_layout

__all__ = ["BODY_BYTE", "FRAME_INFO", "Executor", "info_bytes"]

#: A byte of a reply body; ``last`` marks the frame's final byte.
BODY_BYTE = data.StructLayout({"data": unsigned(8), "last": unsigned(1)})
#: A received frame: its body length, or the error that spoiled it.
FRAME_INFO = data.StructLayout({"length": unsigned(ceil_log2(MAX_BODY + 3)), "error": unsigned(4)})
#: Spike ids per R_SPIKES frame at most.
SPIKES_PER_FRAME = 64


def info_bytes(cfg: SystemConfig) -> bytes:
    """Return the body of the R_INFO reply of a system (contract 8)."""
    c = cfg.core
    fields = [
        (Op.R_INFO, 1),
        (PROTOCOL_VERSION, 1),
        (P.CONTRACT_VERSION, 1),
        (cfg.cores, 1),
        (c.neurons, 2),
        (c.axons, 4),
        (c.synapses, 4),
        (c.delay_slots, 1),
        (c.acc_bits, 1),
        (cfg.sources, 2),
        (cfg.route_entries, 4),
        (cfg.inject_depth, 2),
        (MAX_BODY, 2),
        # features: bit 0, the learning unit; bit 1, the statistics counters
        (int(c.learning) | int(c.stats) << 1, 1),
    ]
    return b"".join(int(v).to_bytes(n, "little") for v, n in fields)


class Executor(wiring.Component):
    """Carry out host frames on a :class:`~spikefab.hdl.system.System`."""

    def __init__(self, config: SystemConfig):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig, not {config!r}")
        self._config = config
        buf_bits = ceil_log2(MAX_BODY + 2)
        super().__init__(
            {
                # from the frame receiver
                "i_frame": In(stream.Signature(FRAME_INFO)),
                "rd_addr": Out(buf_bits),
                "rd_data": In(8),
                # to the frame sender
                "o_body": Out(stream.Signature(BODY_BYTE)),
                # to the system
                "o_cfg": Out(stream.Signature(system_request_layout())),
                "i_cfg": In(stream.Signature(unsigned(64))),
                "o_inject": Out(stream.Signature(unsigned(16))),
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
        # word, sent from where the word is.
        depths = [cfg.depth_of(sm) for sm in SystemMem] + [cfg.core.depth_of(cm) for cm in CoreMem]
        abits = max(depths).bit_length()  # every address below 2**abits, every depth too

        frames, errors = Signal(32), Signal(32)
        m.d.comb += [self.frames.eq(frames), self.errors.eq(errors)]
        length = Signal.like(self.i_frame.payload.length)
        op = Signal(8)
        target = Signal(8)
        mem = Signal(8)
        addr = Signal(abits)
        addr_high = Signal()  # the request's address has bits at or above 2**abits
        count = Signal(16)
        index = Signal(16)  # loop counter
        err = Signal(4)
        run_step = Signal(32)
        run_spikes = Signal(32)
        in_frame = Signal(range(SPIKES_PER_FRAME + 1))

        # --- field loader: n bytes from the buffer at rd_ptr onward, little-endian, shifted
        # in from the top of fld: an n-byte field is fld[64 - 8n:] ---
        rd_ptr = Signal(len(self.rd_addr))
        fld = Signal(64)
        ld_left = Signal(4)
        ld_phase = Signal()
        m.d.comb += self.rd_addr.eq(rd_ptr)

        def top(n: int):  # type: ignore[no-untyped-def]
            return fld[64 - 8 * n :]

        # --- byte emitter: the header byte (when em_hdr_on), then em_n bytes of a word,
        # little-endian from byte em_i; `last` on the final byte when em_last. The word is
        # not copied: it is the system's reply (held until its last byte is sent, then
        # taken), the run's step and spike count, the error, or a spike's id ---
        em_hdr = Signal(8)
        em_hdr_on = Signal()
        em_src = Signal(range(4))
        em_i = Signal(3)
        em_n = Signal(4)
        em_last = Signal()
        gid = Signal(16)
        SRC_CFG, SRC_STEP, SRC_ERR, SRC_GID = range(4)

        rets = [
            "OP",
            "WRITE_HDR",
            "WRITE_WORD",
            "WRITE_NEXT",
            "READ_HDR",
            "INJECT_HDR",
            "INJECT_CHECK",
            "INJECT_PUSH",
            "RUN_HDR",
            "RUN_WAIT",
            "STEP_DONE",
            "SPIKE_NEXT",
            "INFO_NEXT",
            "STATUS_NEXT",
            "FINISH",
        ]
        ret = Signal(range(len(rets)))

        def load(n: int, then: str) -> None:
            """Load the next n bytes of the body into fld, then go to ``then``."""
            m.d.sync += [ld_left.eq(n), ld_phase.eq(0), ret.eq(rets.index(then))]
            m.next = "LOAD"

        def emit(hdr, last, then: str, src: int | None = None, n: int = 0) -> None:  # type: ignore[no-untyped-def]
            """Send ``hdr`` (unless None), then the n low bytes of word ``src``; go to
            ``then``."""
            m.d.sync += [
                em_hdr_on.eq(hdr is not None),
                em_i.eq(0),
                em_n.eq(n),
                em_last.eq(last),
                ret.eq(rets.index(then)),
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
        ]
        # the byte sent: the header byte while em_hdr_on, else byte em_i of the word
        word_byte = Signal(8)
        step_word = Cat(run_step, run_spikes)  # R_STEP_END: step u32, spikes u32
        words = {
            SRC_CFG: self.i_cfg.payload,
            SRC_STEP: step_word,
            SRC_ERR: Cat(err, Const(0, 4), op),
            SRC_GID: gid,
        }
        with m.Switch(em_src):
            for src, word in words.items():
                with m.Case(src):
                    m.d.comb += word_byte.eq(word.word_select(em_i[: ceil_log2(len(word) // 8)], 8))
        m.d.comb += self.o_body.payload.data.eq(Mux(em_hdr_on, em_hdr, word_byte))

        info = info_bytes(cfg)
        n_status = len(STATUS_FIELDS)  # the first registers, in SystemReg order

        with m.FSM(name="exec") as fsm:
            with m.State("IDLE"), m.If(self.i_frame.valid):
                m.d.sync += [length.eq(self.i_frame.payload.length), rd_ptr.eq(0)]
                with m.If(self.i_frame.payload.error != 0):
                    m.d.sync += [err.eq(self.i_frame.payload.error), op.eq(0)]
                    m.next = "ERROR"
                with m.Else():
                    load(1, "OP")

            with m.State("LOAD"):
                # phase 0: the buffer reads rd_ptr; phase 1: its byte arrives
                m.d.sync += ld_phase.eq(~ld_phase)
                with m.If(ld_phase):
                    m.d.sync += [
                        fld.eq(Cat(fld[8:], self.rd_data)),
                        ld_left.eq(ld_left - 1),
                        rd_ptr.eq(rd_ptr + 1),
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
                m.d.sync += op.eq(opcode)
                with m.Switch(opcode):
                    with m.Case(Op.INFO.value):
                        with m.If(length != 1):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            m.d.sync += index.eq(0)
                            m.next = "INFO_NEXT"
                    with m.Case(Op.STATUS.value):
                        with m.If(length != 1):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            m.d.sync += index.eq(0)
                            emit(Op.R_STATUS.value, 0, "STATUS_NEXT")
                    with m.Case(Op.WRITE.value, Op.READ.value):
                        with m.If(length < 9):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            load(8, "WRITE_HDR")
                    with m.Case(Op.INJECT.value):
                        with m.If(length < 3):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            load(2, "INJECT_HDR")
                    with m.Case(Op.RUN.value):
                        with m.If(length != 5):
                            fail(ErrorCode.LENGTH)
                        with m.Else():
                            load(4, "RUN_HDR")
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

            # WRITE / READ: target u8, mem u8, addr u32, count u16
            with m.State("WRITE_HDR"):
                m.d.sync += [
                    target.eq(fld[0:8]),
                    mem.eq(fld[8:16]),
                    addr.eq(fld[16 : 16 + abits]),
                    addr_high.eq(fld[16 + abits : 48] != 0),
                    count.eq(fld[48:64]),
                    index.eq(0),
                ]
                m.next = "WRITE_CHECK"
            with m.State("WRITE_CHECK"):
                is_write = op == Op.WRITE.value
                want = Mux(is_write, 9 + (count << 3), 9)
                with m.If((length != want) | (~is_write & (count > (MAX_BODY - 1) // 8))):
                    fail(ErrorCode.LENGTH)
                with m.Elif(~in_range):
                    fail(ErrorCode.ADDRESS)
                with m.Elif(is_write):
                    m.next = "WRITE_NEXT"
                with m.Else():
                    emit(Op.R_DATA.value, count == 0, "READ_HDR")
            with m.State("WRITE_NEXT"):
                with m.If(index == count):
                    emit(Op.R_ACK.value, 1, "FINISH")
                with m.Else():
                    load(8, "WRITE_WORD")  # the words follow one another in the body
            with m.State("WRITE_WORD"):
                m.d.comb += [self.o_cfg.valid.eq(1), self.o_cfg.payload.write.eq(1)]
                with m.If(self.o_cfg.ready):
                    m.d.sync += index.eq(index + 1)
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
                emit(None, index + 1 == count, "READ_HDR", SRC_CFG, 8)

            # INJECT: count u16, then count source ids u16; all or nothing
            with m.State("INJECT_HDR"):
                m.d.sync += [count.eq(top(2)), index.eq(0)]
                m.next = "INJECT_LEN"
            with m.State("INJECT_LEN"):
                with m.If(length != 3 + (count << 1)):
                    fail(ErrorCode.LENGTH)
                with m.Elif(count > self.inject_free):
                    fail(ErrorCode.FULL)
                with m.Else():
                    m.next = "INJECT_SCAN"
            with m.State("INJECT_SCAN"):
                with m.If(index == count):
                    m.d.sync += [index.eq(0), rd_ptr.eq(3)]  # the ids again, to push them
                    m.next = "INJECT_NEXT"
                with m.Else():
                    load(2, "INJECT_CHECK")
            with m.State("INJECT_CHECK"):
                with m.If(top(2) >= cfg.sources):
                    fail(ErrorCode.ADDRESS)
                with m.Else():
                    m.d.sync += index.eq(index + 1)
                    m.next = "INJECT_SCAN"
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

            # RUN: steps u32; spikes and step ends stream out, then R_ACK
            with m.State("RUN_HDR"):
                m.d.sync += [
                    self.run_steps.eq(top(4)),
                    run_step.eq(self.step),
                    run_spikes.eq(0),
                ]
                m.next = "RUN_START"
            with m.State("RUN_START"):
                m.d.comb += self.run_start.eq(1)
                m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"):
                item = self.i_host.payload
                # R_STEP_END: step u32, spikes u32; R_SPIKES: step u32, then the ids
                with m.If(self.i_host.valid & item.end):
                    m.d.comb += self.i_host.ready.eq(1)
                    emit(Op.R_STEP_END.value, 1, "STEP_DONE", SRC_STEP, 8)
                with m.Elif(self.i_host.valid):
                    m.d.sync += in_frame.eq(0)
                    emit(Op.R_SPIKES.value, 0, "SPIKE_NEXT", SRC_STEP, 4)
                with m.Elif(~self.run_busy):
                    emit(Op.R_ACK.value, 1, "FINISH")
            with m.State("STEP_DONE"):
                # the step's numbers are sent (they are read as they go out): the next step
                m.d.sync += [run_step.eq(run_step + 1), run_spikes.eq(0)]
                m.next = "RUN_WAIT"
            with m.State("SPIKE_NEXT"):
                # the head of the FIFO is a spike (checked before coming here): take it
                m.d.comb += self.i_host.ready.eq(1)
                m.d.sync += [
                    gid.eq(self.i_host.payload.gid),
                    em_src.eq(SRC_GID),
                    em_i.eq(0),
                    in_frame.eq(in_frame + 1),
                    run_spikes.eq(run_spikes + 1),
                ]
                m.next = "SPIKE_LO"
            with m.State("SPIKE_LO"):
                m.d.comb += self.o_body.valid.eq(1)
                with m.If(self.o_body.ready):
                    m.d.sync += em_i.eq(1)
                    # another spike waiting (and room in the frame) keeps the frame open
                    m.d.sync += em_last.eq(
                        ~(
                            self.i_host.valid
                            & ~self.i_host.payload.end
                            & (in_frame != SPIKES_PER_FRAME)
                        )
                    )
                    m.next = "SPIKE_HI"
            with m.State("SPIKE_HI"):
                m.d.comb += [self.o_body.valid.eq(1), self.o_body.payload.last.eq(em_last)]
                with m.If(self.o_body.ready):
                    with m.If(em_last):
                        m.next = "RUN_WAIT"
                    with m.Else():
                        m.next = "SPIKE_NEXT"

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
