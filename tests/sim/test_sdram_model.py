"""The SDRAM simulation model (sim/sdram/sdram_model.v) alone, its pins driven from Python.

The chip has no reset, and neither has the model, so the bench (written here) holds many
models, each with its clock gated by ``sel``: every cocotb test takes a model of its own
that has just powered up (``Driver.start``) and drives its command pins edge by edge
(``Driver.edge``). ``Reference``, a Python account of the chip's data behaviour written from
the datasheet, predicts which bytes the model drives for every edge and with what;
``Limits`` gives the earliest edge each command may take by the datasheet's timing rules.

* round trip: power-up, a write burst, a read burst, at the ULX3S's 143 MHz;
* modes: every burst length, CAS latency and write burst mode, data and the exact edges;
* bursts interrupted by READ, WRITE, BURST TERMINATE and PRECHARGE; DQM on reads (latency
  2) and writes (latency 0); auto precharge;
* random legal traffic over banks and rows, with mode changes and refreshes;
* every timing rule met exactly at its limit: no violation;
* one test per rule that breaks it once: ``violation`` rises, on that edge, with the
  rule's code.

Outside cocotb: the clock counts the datasheet's figures give, Verilator's lint, and a
model with ``FATAL=1`` stopping Icarus with a message naming the rule, bank, row and cycle.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import ClassVar

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MODEL = ROOT / "sim" / "sdram" / "sdram_model.v"

# The AS4C32M16SB's figures, speed grade -7 (datasheet Table 16), in ps.
TRCD_PS = 21_000  # ACTIVE to READ/WRITE
TRP_PS = 21_000  # PRECHARGE to ACTIVE/REFRESH
TRC_PS = 63_000  # ACTIVE to ACTIVE, same bank
TRAS_PS = 42_000  # ACTIVE to PRECHARGE
TWR_PS = 14_000  # last write data to PRECHARGE
TRRD_PS = 14_000  # ACTIVE to ACTIVE, other bank
TMRD_PS = 14_000  # LOAD MODE REGISTER to a command ...
TMRD_CK = 2  # ... and at least 2 clocks
TRFC_PS = 63_000  # AUTO REFRESH to a command
INIT_REFRESHES = 8  # AUTO REFRESH commands of the power-up sequence

# The bench's models: small, with a short power-up wait, refresh window and tRAS maximum.
ROW_BITS, COL_BITS = 4, 5
INIT_CYCLES = 20
REFRESH_ROWS = 8
TREF_CYCLES = 600
TRAS_MAX_PS = 3_000_000

#: The rule codes of the model's ``rule`` output.
RULES = {
    "init": 1,
    "tRCD": 2,
    "tRP": 3,
    "tRC": 4,
    "tRAS": 5,
    "tRAS_max": 6,
    "tWR": 7,
    "tRRD": 8,
    "tMRD": 9,
    "tRFC": 10,
    "refresh": 11,
    "bank_state": 12,
    "contention": 13,
    "mode": 14,
    "cke": 15,
}

#: Kinds of model on the bench: clock period and parameters beyond the common ones.
KINDS: dict[str, tuple[int, dict[str, int]]] = {
    "bench": (10_000, {}),  # 100 MHz: CAS latency 2 and 3 both allowed
    "fast": (7_000, {}),  # 143 MHz, the ULX3S's SDRAM clock: CAS latency 3 only
    # tRAS shortened so that tRC (63 ns) exceeds tRAS + tRP and can be broken alone
    "short_tras": (10_000, {"TRAS_PS": 21_000}),
}

NEVER = -(10**9)
FULL = 0  # burst length code for a full page in this module's calls
PAGE = 1 << COL_BITS


def up(ps: int, clk_ps: int) -> int:
    """Clocks of ``ps`` at ``clk_ps``, rounded up."""
    return -(-ps // clk_ps)


@dataclass(frozen=True)
class Timing:
    """The datasheet's figures in clocks of ``clk_ps``."""

    clk_ps: int
    tras_ps: int = TRAS_PS

    @property
    def rcd(self) -> int:
        return up(TRCD_PS, self.clk_ps)

    @property
    def rp(self) -> int:
        return up(TRP_PS, self.clk_ps)

    @property
    def rc(self) -> int:
        return up(TRC_PS, self.clk_ps)

    @property
    def ras(self) -> int:
        return up(self.tras_ps, self.clk_ps)

    @property
    def ras_max(self) -> int:
        return TRAS_MAX_PS // self.clk_ps

    @property
    def wr(self) -> int:
        return up(TWR_PS, self.clk_ps)

    @property
    def rrd(self) -> int:
        return up(TRRD_PS, self.clk_ps)

    @property
    def mrd(self) -> int:
        return max(up(TMRD_PS, self.clk_ps), TMRD_CK)

    @property
    def rfc(self) -> int:
        return up(TRFC_PS, self.clk_ps)


def timing_of(kind: str) -> Timing:
    clk_ps, extra = KINDS[kind]
    return Timing(clk_ps, extra.get("TRAS_PS", TRAS_PS))


def mode_bits(bl: int, cl: int, single: bool = False) -> int:
    """The mode register value: burst length ``bl`` (FULL: full page), sequential, CAS
    latency ``cl``, write bursts of ``bl`` or (``single``) of one word."""
    code = {1: 0, 2: 1, 4: 2, 8: 3, FULL: 7}[bl]
    return code | (cl << 4) | (int(single) << 9)


class Reference:
    """The chip's data behaviour, from the datasheet: bursts, CAS latency, DQM, memory.

    ``step`` takes the pins of one edge. ``expected(e)`` is what the controller finds on dq
    at edge ``e``: ``{byte: value}`` for each byte the chip drives (value None where that
    byte of the memory was never written).
    """

    def __init__(self) -> None:
        self.mem: dict[tuple[int, int, int, int], int] = {}  # (bank, row, col, byte)
        self.rows: dict[int, int] = {}  # bank -> open row
        self.bl, self.full, self.cl, self.single = 1, False, 3, False
        self.burst: dict | None = None
        self.reads: dict[int, tuple[int | None, int | None]] = {}  # edge -> data per byte
        self.dqm: dict[int, int] = {}

    def burst_len(self, write: bool) -> int:
        if write and self.single:
            return 1
        return PAGE if self.full else self.bl

    def step(self, t: int, cmd: str, ba: int, a: int, dqm: int, dq: int) -> set[int]:
        """One edge; returns the banks written at it (a byte not masked)."""
        self.dqm[t] = dqm
        written: set[int] = set()
        hits = cmd == "PRE" and self.burst is not None and (a >> 10 & 1 or ba == self.burst["bank"])
        if self.burst is not None:
            # READ, WRITE and BURST TERMINATE end a burst before its access at this edge; so
            # does a PRECHARGE of its bank a read burst; a write takes that edge's data.
            if cmd in ("READ", "WRITE", "BST") or (hits and not self.burst["write"]):
                self.burst = None
            else:
                written |= self._beat(t, dqm, dq)
                if hits:
                    self.burst = None
        if cmd == "ACT":
            self.rows[ba] = a % (1 << ROW_BITS)
        elif cmd in ("READ", "WRITE"):
            write = cmd == "WRITE"
            if write:  # the outputs turn off: no read data after this edge
                self.reads = {e: d for e, d in self.reads.items() if e <= t}
            if ba in self.rows:
                length = self.burst_len(write)
                full = length == PAGE and self.full
                self.burst = dict(
                    write=write, bank=ba, row=self.rows[ba], col=a % PAGE, beat=0, len=length
                )
                self.burst["full"] = full
                if a >> 10 & 1 and not full:  # auto precharge: the row closes
                    del self.rows[ba]
                written |= self._beat(t, dqm, dq)
        elif cmd == "PRE":
            for b in range(4):
                if a >> 10 & 1 or b == ba:
                    self.rows.pop(b, None)
        elif cmd == "LMR":
            code = a & 7
            self.full = code == 7
            self.bl = PAGE if self.full else 1 << code
            self.cl = a >> 4 & 7
            self.single = bool(a >> 9 & 1)
        return written

    def _beat(self, t: int, dqm: int, dq: int) -> set[int]:
        b = self.burst
        assert b is not None
        if b["full"]:
            col = (b["col"] + b["beat"]) % PAGE
        else:
            mask = b["len"] - 1
            col = (b["col"] & ~mask) | ((b["col"] + b["beat"]) & mask)
        key = (b["bank"], b["row"], col)
        written = set()
        if b["write"]:
            for byte in (0, 1):
                if not dqm >> byte & 1:
                    self.mem[(*key, byte)] = dq >> (8 * byte) & 0xFF
                    written.add(b["bank"])
        else:
            self.reads[t + self.cl] = (self.mem.get((*key, 0)), self.mem.get((*key, 1)))
        b["beat"] += 1
        if not b["full"] and b["beat"] >= b["len"]:
            self.burst = None
        return written

    def expected(self, e: int) -> dict[int, int | None]:
        if e not in self.reads:
            return {}
        mask = self.dqm.get(e - 2, 3)  # DQM read latency: 2 clocks
        return {byte: self.reads[e][byte] for byte in (0, 1) if not mask >> byte & 1}

    def last_read(self) -> int:
        return max(self.reads, default=NEVER)


class Limits:
    """The earliest edge for each command, by the datasheet's timing rules, from the
    commands issued so far."""

    def __init__(self, tm: Timing) -> None:
        self.tm = tm
        self.act = [NEVER] * 4  # last ACTIVE
        self.pre = [NEVER] * 4  # last precharge start (auto precharge: its start)
        self.wr = [NEVER] * 4  # last write data taken
        self.open: list[int | None] = [None] * 4
        self.ref = NEVER
        self.mrd = NEVER
        self.powered_up = False  # the power-up PRECHARGE ALL was issued

    def note(self, t: int, cmd: str, ba: int, a: int, length: int, full: bool) -> None:
        tm = self.tm
        if cmd == "ACT":
            self.act[ba], self.open[ba] = t, a % (1 << ROW_BITS)
        elif cmd in ("READ", "WRITE") and a >> 10 & 1 and not full:
            # auto precharge from the burst's end: read, after its last access; write, tWR
            # after its last data; not before tRAS
            end = t + length if cmd == "READ" else t + length - 1 + tm.wr
            self.pre[ba] = max(end, self.act[ba] + tm.ras)
            self.open[ba] = None
        elif cmd == "PRE":
            # the power-up sequence's PRECHARGE ALL: every bank idle tRP later
            first = a >> 10 & 1 and not self.powered_up
            self.powered_up |= bool(first)
            for b in range(4):
                if (a >> 10 & 1 or b == ba) and (self.open[b] is not None or first):
                    self.pre[b], self.open[b] = t, None
        elif cmd == "REF":
            self.ref = t
        elif cmd == "LMR":
            self.mrd = t

    def any_command(self) -> int:
        return max(self.ref + self.tm.rfc, self.mrd + self.tm.mrd)

    def act_at(self, bank: int) -> int:
        tm = self.tm
        others = [self.act[o] + tm.rrd for o in range(4) if o != bank]
        return max(self.any_command(), self.pre[bank] + tm.rp, self.act[bank] + tm.rc, *others)

    def rw_at(self, bank: int) -> int:
        return max(self.any_command(), self.act[bank] + self.tm.rcd)

    def pre_at(self, bank: int) -> int:
        return max(self.any_command(), self.act[bank] + self.tm.ras, self.wr[bank] + self.tm.wr)

    def idle_at(self) -> int:
        """REFRESH or LOAD MODE REGISTER, all banks precharged."""
        tm = self.tm
        return max(
            self.any_command(),
            *(p + tm.rp for p in self.pre),
            *(a + tm.rc for a in self.act),
        )


def kind_counts() -> Counter[str]:
    """Models of each kind the cocotb tests take, one per test."""
    return Counter(kind for kind, _ in SCENARIOS.values()) + Counter(OTHER_TESTS.values())


def bench_verilog() -> str:
    """The bench: the models of ``kind_counts``, model ``i`` clocked while ``sel`` is
    ``i + 1`` (0 clocks none, as ``sel`` may start at 0)."""
    counts = kind_counts()
    total = sum(counts.values())
    sel_bits = total.bit_length()
    outs = [
        ("dq_o", 16),
        ("dq_oe", 2),
        ("violation", 1),
        ("rule", 8),
        ("refreshes", 32),
        ("cycle", 64),
    ]
    lines = [
        "// The SDRAM model bench of tests/sim/test_sdram_model.py (generated).",
        "module sdram_bench (",
        "    input wire clk,",
        f"    input wire [{sel_bits - 1}:0] sel,",
        "    input wire cke, cs_n, ras_n, cas_n, we_n,",
        "    input wire [1:0] ba,",
        "    input wire [12:0] a,",
        "    input wire [1:0] dqm,",
        "    input wire [15:0] dq_i,",
        "    input wire dq_oe_ctrl,",
        *(f"    output wire [{w - 1}:0] {name}," for name, w in outs),
        "    output wire dq_drive",
        ");",
        *(f"    wire [{total * w - 1}:0] all_{name};" for name, w in outs),
    ]
    index = 0
    for kind in KINDS:
        clk_ps, extra = KINDS[kind]
        params = {
            "ROW_BITS": ROW_BITS,
            "COL_BITS": COL_BITS,
            "CLK_PS": clk_ps,
            "TRAS_MAX_PS": TRAS_MAX_PS,
            "TREF_CYCLES": TREF_CYCLES,
            "REFRESH_ROWS": REFRESH_ROWS,
            "INIT_CYCLES": INIT_CYCLES,
            "FATAL": 0,
            **extra,
        }
        plist = ", ".join(f".{k}({v})" for k, v in params.items())
        for _ in range(counts[kind]):
            conns = ", ".join(
                [
                    f".clk(clk & (sel == {sel_bits}'d{index + 1}))",
                    *(
                        f".{p}({p})"
                        for p in ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm")
                    ),
                    ".dq_i(dq_i)",
                    ".dq_oe_ctrl(dq_oe_ctrl)",
                    *(f".{name}(all_{name}[{index * w} +: {w}])" for name, w in outs),
                    ".dq_drive()",
                ]
            )
            lines.append(f"    sdram_model #({plist}) m{index} ({conns});  // {kind}")
            index += 1
    lines += [f"    assign {name} = all_{name}[(sel - 1) * {w} +: {w}];" for name, w in outs]
    lines += ["    assign dq_drive = |dq_oe;", "endmodule", ""]
    return "\n".join(lines)


def kind_base(kind: str) -> int:
    counts = kind_counts()
    return sum(counts[k] for k in KINDS if list(KINDS).index(k) < list(KINDS).index(kind))


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, Timer
except ImportError:
    cocotb = None


@dataclass
class Sample:
    """What the controller finds at an edge: the bytes the model drives and their values
    (None: X), and the violation outputs as the edge before left them."""

    oe: int
    data: tuple[int | None, int | None]
    violation: int
    rule: int


def _byte(bits: str) -> int | None:
    return int(bits, 2) if set(bits) <= {"0", "1"} else None


def _seed() -> int:
    return int(os.environ.get("SPIKEFAB_SEED", "1"))


class Driver:
    """Drives one model of the bench, edge by edge, and keeps what it saw."""

    taken: ClassVar[Counter[str]] = Counter()

    def __init__(self, dut, kind: str = "bench") -> None:  # type: ignore[no-untyped-def]
        self.dut, self.kind = dut, kind
        self.tm = timing_of(kind)
        self.ref = Reference()
        self.lim = Limits(self.tm)
        self.t = 0  # the next edge
        self.samples: dict[int, Sample] = {}
        self.checked = 0
        self.beats: dict[int, tuple[int, int]] = {}  # edge -> (data, dqm) of a write burst
        self.idle_dqm = 0
        self.init_done = NEVER
        self.refreshed = [NEVER] * REFRESH_ROWS  # edge of each refresh-counter row's refresh
        self.ref_ptr = 0
        self.log: list[tuple[int, str]] = []  # (edge, command) of every command but NOP

    async def start(self) -> Driver:
        """Take the next unused model of this kind; its first edge is edge 0."""
        n = Driver.taken[self.kind]
        assert n < kind_counts()[self.kind], f"no {self.kind} model left on the bench"
        Driver.taken[self.kind] += 1
        Clock(self.dut.clk, 10, unit="ns").start(start_high=False)
        await FallingEdge(self.dut.clk)
        self.dut.sel.value = kind_base(self.kind) + n + 1
        self._pins("NOP", 0, 0, 3, 0, False, 1)
        await Timer(1, unit="ns")  # the clock still low: the bench's outputs follow sel
        assert int(self.dut.cycle.value) == 0, "the model has seen clock edges already"
        return self

    def _pins(self, cmd: str, ba: int, a: int, dqm: int, dq: int, drive: bool, cke: int) -> None:
        code = {
            "DESELECT": 0b1111,
            "NOP": 0b0111,
            "ACT": 0b0011,
            "READ": 0b0101,
            "WRITE": 0b0100,
            "BST": 0b0110,
            "PRE": 0b0010,
            "REF": 0b0001,
            "LMR": 0b0000,
        }[cmd]
        d = self.dut
        d.cs_n.value, d.ras_n.value = code >> 3 & 1, code >> 2 & 1
        d.cas_n.value, d.we_n.value = code >> 1 & 1, code & 1
        d.ba.value, d.a.value, d.dqm.value = ba, a, dqm
        d.dq_i.value, d.dq_oe_ctrl.value, d.cke.value = dq, int(drive), cke

    async def edge(
        self,
        cmd: str = "NOP",
        ba: int = 0,
        a: int = 0,
        dqm: int | None = None,
        dq: int | None = None,
        cke: int = 1,
    ) -> int:
        """Drive the pins for the next edge and let it pass; returns the edge.

        A write burst's planned data and DQM go out on their edges unless given here; a
        READ, WRITE or BURST TERMINATE drops the data still planned."""
        t = self.t
        if cmd in ("READ", "WRITE", "BST"):
            self.beats.clear()
        beat = self.beats.pop(t, None)
        if beat is not None:
            dq = beat[0] if dq is None else dq
            dqm = beat[1] if dqm is None else dqm
        if dqm is None:
            dqm = self.idle_dqm
        bits = str(self.dut.dq_o.value)
        self.samples[t] = Sample(
            oe=int(self.dut.dq_oe.value),
            data=(_byte(bits[8:]), _byte(bits[:8])),
            violation=int(self.dut.violation.value),
            rule=int(self.dut.rule.value),
        )
        self._pins(cmd, ba, a, dqm, dq or 0, dq is not None, cke)
        write = cmd == "WRITE"
        length, full = self.ref.burst_len(write), self.ref.full and not (write and self.ref.single)
        for bank in self.ref.step(t, cmd, ba, a, dqm, dq or 0):
            self.lim.wr[bank] = t
        self.lim.note(t, cmd, ba, a, length, full)
        if cmd == "REF":
            self.refreshed[self.ref_ptr] = t
            self.ref_ptr = (self.ref_ptr + 1) % REFRESH_ROWS
        if cmd != "NOP":
            self.log.append((t, cmd))
        await FallingEdge(self.dut.clk)
        self.t += 1
        return t

    async def nop(self, n: int = 1) -> None:
        for _ in range(n):
            await self.edge()

    async def wait_until(self, t: int) -> None:
        while self.t < t:
            await self.edge()

    def flags(self) -> tuple[int, int]:
        """``violation`` and ``rule`` after the last edge."""
        return int(self.dut.violation.value), int(self.dut.rule.value)

    def assert_clean(self) -> None:
        violation, rule = self.flags()
        assert violation == 0, f"violation flagged by edge {self.t - 1}: rule {rule}"

    # -- commands at their earliest legal edge -------------------------------------------

    async def init(self, bl: int = 4, cl: int = 3, single: bool = False) -> None:
        """The power-up sequence, each step at its earliest edge."""
        await self.wait_until(INIT_CYCLES)
        await self.edge("PRE", a=1 << 10)
        for _ in range(INIT_REFRESHES):
            await self.wait_until(self.lim.idle_at())
            await self.edge("REF")
        await self.load_mode(bl, cl, single)
        self.init_done = self.t - 1

    async def end_of_burst(self) -> None:
        """Wait for the running burst to end (a full page must be ended by the caller)."""
        assert self.ref.burst is None or not self.ref.burst["full"], "full-page burst running"
        while self.ref.burst is not None:
            await self.edge()

    async def load_mode(self, bl: int, cl: int, single: bool = False) -> int:
        await self.end_of_burst()
        await self.wait_until(max(self.lim.idle_at(), self.ref.last_read() + 1))
        return await self.edge("LMR", a=mode_bits(bl, cl, single))

    async def activate(self, bank: int, row: int) -> int:
        await self.wait_until(self.lim.act_at(bank))
        return await self.edge("ACT", ba=bank, a=row)

    async def precharge(self, bank: int | None = None) -> int:
        """PRECHARGE of ``bank``, or of all banks (None)."""
        banks = range(4) if bank is None else [bank]
        opened = [b for b in banks if self.lim.open[b] is not None]
        while True:
            at = max([self.lim.any_command()] + [self.lim.pre_at(b) for b in opened])
            # write data still planned, not masked: tWR after it (the PRECHARGE takes the
            # word at its own edge, which must be masked)
            planned = [e for e, (_, m) in self.beats.items() if m != 3]
            at = max([at] + [e + self.tm.wr for e in planned])
            if self.t >= at:
                break
            await self.edge()
        return await self.edge("PRE", ba=bank or 0, a=(1 << 10) if bank is None else 0)

    async def refresh(self) -> int:
        if any(r is not None for r in self.lim.open):
            await self.precharge()
        await self.wait_until(self.lim.idle_at())
        return await self.edge("REF")

    async def open_row(self, bank: int, row: int) -> None:
        """Make ``row`` the open row of ``bank``."""
        if self.lim.open[bank] == row:
            return
        if self.lim.open[bank] is not None:
            await self.precharge(bank)
        await self.activate(bank, row)

    async def write(
        self,
        bank: int,
        col: int,
        data: list[int],
        dqm: list[int] | None = None,
        ap: bool = False,
        wait: bool = True,
    ) -> int:
        """WRITE at the earliest edge with ``data`` on it and the edges after; with
        ``wait``, return once the data is all out (else at once, the data planned).

        A read burst running is let finish first, and its data out, so that nothing the
        model drives meets the write data."""
        dqm = dqm or [0] * len(data)
        if self.ref.burst is not None and not self.ref.burst["write"]:
            await self.end_of_burst()
        await self.wait_until(max(self.lim.rw_at(bank), self.ref.last_read() + 1))
        t = self.t
        w = await self.edge("WRITE", ba=bank, a=col | (int(ap) << 10), dq=data[0], dqm=dqm[0])
        for i in range(1, len(data)):
            self.beats[t + i] = (data[i], dqm[i])
        if wait:
            await self.wait_until(w + len(data))
        return w

    async def read(self, bank: int, col: int, ap: bool = False) -> int:
        await self.wait_until(self.lim.rw_at(bank))
        return await self.edge("READ", ba=bank, a=col | (int(ap) << 10))

    def refresh_deadline(self) -> int:
        """The last edge at which the refresh counter's next row may be refreshed."""
        return max(self.refreshed[self.ref_ptr], self.init_done) + TREF_CYCLES

    # -- checks ---------------------------------------------------------------------------

    def check(self) -> None:
        """Compare the bytes the model drove at every edge so far with the reference."""
        for e in range(self.checked, self.t):
            s, exp = self.samples[e], self.ref.expected(e)
            want_oe = sum(1 << byte for byte in exp)
            assert s.oe == want_oe, f"edge {e}: dq_oe {s.oe:02b}, expected {want_oe:02b}"
            for byte, value in exp.items():
                if value is not None:
                    got = s.data[byte]
                    assert got == value, f"edge {e} byte {byte}: {got}, expected {value:#04x}"
        self.checked = self.t

    def read_words(self, first: int, count: int) -> list[int | None]:
        """Data words the model drove at edges ``first`` ... (both bytes, else None)."""
        words = []
        for e in range(first, first + count):
            s = self.samples[e]
            lo, hi = s.data
            words.append(None if s.oe != 3 or lo is None or hi is None else lo | hi << 8)
        return words

    def driven_edges(self, first: int, last: int) -> list[int]:
        return [e for e in range(first, last + 1) if self.samples[e].oe]


#: cocotb tests other than the rule scenarios, and the kind of model each takes.
OTHER_TESTS = {
    "round_trip": "fast",
    "modes": "bench",
    "interrupted_bursts": "bench",
    "dqm": "bench",
    "auto_precharge": "bench",
    "random_traffic": "bench",
    "limits_are_legal": "bench",
    "trc_at_the_limit": "short_tras",
    "refresh_at_the_limit": "bench",
}


# -- the rule scenarios: each breaks one rule once ------------------------------------------
# Each returns the rule it breaks and the edge at which it does.


async def _init_wait(d: Driver) -> tuple[str, int]:
    await d.wait_until(INIT_CYCLES - 1)
    return "init", await d.edge("PRE", a=1 << 10)


async def _init_first_not_precharge_all(d: Driver) -> tuple[str, int]:
    await d.wait_until(INIT_CYCLES)
    return "init", await d.edge("REF")


async def _init_too_few_refreshes(d: Driver) -> tuple[str, int]:
    await d.wait_until(INIT_CYCLES)
    await d.edge("PRE", a=1 << 10)
    for _ in range(INIT_REFRESHES - 1):
        await d.refresh()
    await d.load_mode(4, 3)
    await d.wait_until(d.lim.act_at(0))
    return "init", await d.edge("ACT", ba=0, a=1)


async def _init_no_mode(d: Driver) -> tuple[str, int]:
    await d.wait_until(INIT_CYCLES)
    await d.edge("PRE", a=1 << 10)
    for _ in range(INIT_REFRESHES):
        await d.refresh()
    await d.wait_until(d.lim.act_at(0))
    return "init", await d.edge("ACT", ba=0, a=1)


async def _init_refresh_within_trp(d: Driver) -> tuple[str, int]:
    await d.wait_until(INIT_CYCLES)
    pall = await d.edge("PRE", a=1 << 10)
    await d.wait_until(pall + d.tm.rp - 1)
    return "tRP", await d.edge("REF")


async def _trcd(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(1, 5)
    await d.wait_until(act + d.tm.rcd - 1)
    return "tRCD", await d.edge("READ", ba=1, a=0)


async def _trp(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(2, 3)
    await d.wait_until(act + d.tm.rc)  # so that tRC is met at the early ACTIVE
    pre = await d.precharge(2)
    await d.wait_until(pre + d.tm.rp - 1)
    return "tRP", await d.edge("ACT", ba=2, a=4)


async def _trp_auto_precharge(d: Driver) -> tuple[str, int]:
    await d.init(bl=8)
    await d.activate(0, 1)
    await d.read(0, 0, ap=True)
    await d.wait_until(d.lim.pre[0] + d.tm.rp - 1)  # the read's end, then tRP, less one
    return "tRP", await d.edge("ACT", ba=0, a=2)


async def _trp_auto_precharge_tras(d: Driver) -> tuple[str, int]:
    await d.init(bl=1)
    act = await d.activate(1, 1)
    r = await d.read(1, 0, ap=True)
    assert r + 1 < act + d.tm.ras, "the burst ends before tRAS: the precharge waits for it"
    await d.wait_until(act + d.tm.ras + d.tm.rp - 1)
    assert d.t >= act + d.tm.rc, "tRC would be broken too"
    return "tRP", await d.edge("ACT", ba=1, a=2)


async def _trp_refresh(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(3, 1)
    await d.wait_until(act + d.tm.rc)
    pre = await d.precharge(3)
    await d.wait_until(pre + d.tm.rp - 1)
    return "tRP", await d.edge("REF")


async def _trc(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(0, 1)
    pre = await d.precharge(0)
    assert pre + d.tm.rp <= act + d.tm.rc - 1, "tRP would be broken too"
    await d.wait_until(act + d.tm.rc - 1)
    return "tRC", await d.edge("ACT", ba=0, a=2)


async def _tras(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(1, 2)
    await d.wait_until(act + d.tm.ras - 1)
    return "tRAS", await d.edge("PRE", ba=1)


async def _tras_max(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(2, 7)
    # no command: the row stays open past tRAS max, flagged on the first edge beyond it
    return "tRAS_max", act + d.tm.ras_max + 1


async def _twr(d: Driver) -> tuple[str, int]:
    await d.init(bl=1)
    act = await d.activate(0, 3)
    await d.wait_until(act + d.tm.ras)
    w = await d.write(0, 4, [0x1234])
    await d.wait_until(w + d.tm.wr - 1)
    return "tWR", await d.edge("PRE", ba=0)


async def _twr_data_at_precharge(d: Driver) -> tuple[str, int]:
    await d.init(bl=8)
    act = await d.activate(0, 3)
    await d.wait_until(act + d.tm.ras)
    masks = [0, 3, 3, 0, 3, 3, 3, 3]  # the word at the PRECHARGE's edge not masked
    w = await d.write(0, 0, [0x1111] * 8, masks, wait=False)
    await d.wait_until(w + 3)
    return "tWR", await d.edge("PRE", ba=0)


async def _trrd(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(0, 1)
    await d.wait_until(act + d.tm.rrd - 1)
    return "tRRD", await d.edge("ACT", ba=1, a=1)


async def _tmrd(d: Driver) -> tuple[str, int]:
    await d.init()
    lmr = await d.load_mode(2, 3)
    await d.wait_until(lmr + d.tm.mrd - 1)
    return "tMRD", await d.edge("ACT", ba=0, a=1)


async def _trfc(d: Driver) -> tuple[str, int]:
    await d.init()
    ref = await d.refresh()
    await d.wait_until(ref + d.tm.rfc - 1)
    return "tRFC", await d.edge("ACT", ba=0, a=1)


async def _refresh(d: Driver) -> tuple[str, int]:
    await d.init()
    # no refresh at all: flagged on the first edge past the window, with no command
    return "refresh", d.refresh_deadline() + 1


async def _read_idle_bank(d: Driver) -> tuple[str, int]:
    await d.init()
    await d.activate(0, 1)
    await d.wait_until(d.lim.rw_at(0))
    return "bank_state", await d.edge("READ", ba=1, a=0)


async def _activate_open_bank(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(2, 1)
    await d.wait_until(act + d.tm.rc)
    return "bank_state", await d.edge("ACT", ba=2, a=2)


async def _refresh_open_bank(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(1, 1)
    await d.wait_until(act + d.tm.rc)
    return "bank_state", await d.edge("REF")


async def _mode_open_bank(d: Driver) -> tuple[str, int]:
    await d.init()
    act = await d.activate(3, 1)
    await d.wait_until(act + d.tm.rc)
    return "bank_state", await d.edge("LMR", a=mode_bits(8, 3))


async def _read_auto_precharging_bank(d: Driver) -> tuple[str, int]:
    await d.init()
    await d.activate(0, 1)
    r = await d.read(0, 0, ap=True)
    assert d.t == r + 1
    return "bank_state", await d.edge("READ", ba=0, a=4)


async def _contention(d: Driver) -> tuple[str, int]:
    await d.init(bl=4, cl=3)
    await d.activate(0, 1)
    r = await d.read(0, 0)
    await d.wait_until(r + 3)
    # the controller drives dq for the edge the first read data is due
    return "contention", await d.edge(dq=0xBEEF)


async def _write_into_read_data(d: Driver) -> tuple[str, int]:
    await d.init(bl=4, cl=2)
    await d.activate(0, 1)
    r = await d.read(0, 0)
    await d.wait_until(r + 2 + 1)
    # the second read beat is due at this edge and DQM did not mask it two edges before
    return "contention", await d.edge("WRITE", ba=0, a=8, dq=0x5555, dqm=0)


async def _mode_interleaved(d: Driver) -> tuple[str, int]:
    await d.init()
    await d.wait_until(d.lim.idle_at())
    return "mode", await d.edge("LMR", a=mode_bits(4, 3) | 1 << 3)


async def _mode_reserved_burst_length(d: Driver) -> tuple[str, int]:
    await d.init()
    await d.wait_until(d.lim.idle_at())
    return "mode", await d.edge("LMR", a=(3 << 4) | 5)


async def _mode_cas_latency_code(d: Driver) -> tuple[str, int]:
    await d.init()
    await d.wait_until(d.lim.idle_at())
    return "mode", await d.edge("LMR", a=(1 << 4) | 2)


async def _mode_cl2_too_fast(d: Driver) -> tuple[str, int]:
    await d.init(cl=3)  # 143 MHz: CAS latency 2 needs 10 ns clocks
    await d.wait_until(d.lim.idle_at())
    return "mode", await d.edge("LMR", a=mode_bits(4, 2))


async def _cke_low(d: Driver) -> tuple[str, int]:
    await d.init()
    await d.nop(3)
    return "cke", await d.edge(cke=0)


#: name -> (kind of model, scenario).
SCENARIOS = {
    "init_wait": ("bench", _init_wait),
    "init_first_not_precharge_all": ("bench", _init_first_not_precharge_all),
    "init_too_few_refreshes": ("bench", _init_too_few_refreshes),
    "init_no_mode": ("bench", _init_no_mode),
    "init_refresh_within_tRP": ("bench", _init_refresh_within_trp),
    "tRCD": ("bench", _trcd),
    "tRP": ("bench", _trp),
    "tRP_auto_precharge": ("bench", _trp_auto_precharge),
    "tRP_auto_precharge_tRAS": ("bench", _trp_auto_precharge_tras),
    "tRP_refresh": ("bench", _trp_refresh),
    "tRC": ("short_tras", _trc),
    "tRAS": ("bench", _tras),
    "tRAS_max": ("bench", _tras_max),
    "tWR": ("bench", _twr),
    "tWR_data_at_precharge": ("bench", _twr_data_at_precharge),
    "tRRD": ("bench", _trrd),
    "tMRD": ("bench", _tmrd),
    "tRFC": ("bench", _trfc),
    "refresh": ("bench", _refresh),
    "read_idle_bank": ("bench", _read_idle_bank),
    "activate_open_bank": ("bench", _activate_open_bank),
    "refresh_open_bank": ("bench", _refresh_open_bank),
    "mode_open_bank": ("bench", _mode_open_bank),
    "read_auto_precharging_bank": ("bench", _read_auto_precharging_bank),
    "contention": ("bench", _contention),
    "write_into_read_data": ("bench", _write_into_read_data),
    "mode_interleaved": ("bench", _mode_interleaved),
    "mode_reserved_burst_length": ("bench", _mode_reserved_burst_length),
    "mode_cas_latency_code": ("bench", _mode_cas_latency_code),
    "mode_cl2_too_fast": ("fast", _mode_cl2_too_fast),
    "cke_low": ("bench", _cke_low),
}


if cocotb is not None:

    @cocotb.test()
    @cocotb.parametrize(case=list(SCENARIOS))
    async def rule_is_flagged(dut, case: str) -> None:  # type: ignore[no-untyped-def]
        kind, scenario = SCENARIOS[case]
        d = await Driver(dut, kind).start()
        rule, bad = await scenario(d)
        await d.wait_until(bad + 2)
        before, after = d.samples[bad], d.samples[bad + 1]
        assert before.violation == 0, f"{case}: violation (rule {before.rule}) before edge {bad}"
        assert after.violation == 1, f"{case}: no violation flagged at edge {bad}"
        assert after.rule == RULES[rule], f"{case}: rule {after.rule}, expected {RULES[rule]}"

    @cocotb.test()
    async def round_trip(dut) -> None:  # type: ignore[no-untyped-def]
        """Power-up, a write burst, a read burst, at 143 MHz with CAS latency 3."""
        d = await Driver(dut, "fast").start()
        await d.init(bl=8, cl=3)
        rng = random.Random(_seed())
        data = [rng.randrange(1 << 16) for _ in range(8)]
        written = {}
        await d.activate(2, 9)
        await d.write(2, 16, data)
        for i, word in enumerate(data):
            written[(2, 9, 16 + i)] = word
        r = await d.read(2, 16)
        await d.nop(12)
        words = d.read_words(r + 3, 8)
        assert words == [written[(2, 9, 16 + i)] for i in range(8)]
        assert d.driven_edges(r, r + 12) == list(range(r + 3, r + 11))
        d.check()
        d.assert_clean()

    @cocotb.test()
    async def modes(dut) -> None:  # type: ignore[no-untyped-def]
        """Every burst length, CAS latency and write burst mode: a burst written from one
        column and read from another comes back in the datasheet's order (sequential,
        wrapping in the burst's block, or the page), on exactly the edges CL after READ."""
        d = await Driver(dut).start()
        await d.init()
        rng = random.Random(_seed())

        def order(col: int, length: int, full: bool) -> list[int]:
            if full:
                return [(col + i) % PAGE for i in range(length)]
            base = col & ~(length - 1)
            return [base | ((col + i) & (length - 1)) for i in range(length)]

        for single in (False, True):
            for cl in (2, 3):
                for bl in (1, 2, 4, 8, FULL):
                    await d.precharge()
                    await d.load_mode(bl, cl, single)
                    full = bl == FULL
                    length = PAGE if full else bl
                    wlen = 1 if single else length
                    bank, row, col = rng.randrange(4), rng.randrange(16), rng.randrange(PAGE)
                    await d.open_row(bank, row)
                    data = [rng.randrange(1 << 16) for _ in range(wlen)]
                    await d.write(bank, col, data)
                    if full and not single:
                        await d.edge("BST")  # a word on every column of the page, then stop
                    written = dict(zip(order(col, wlen, full and not single), data, strict=True))
                    rcol = (col + 3) % PAGE if full else col ^ (length >> 1)
                    r = await d.read(bank, rcol)
                    await d.wait_until(r + length)
                    if full:
                        await d.edge("BST")
                    await d.nop(cl + 2)
                    got = d.read_words(r + cl, length)
                    for i, c in enumerate(order(rcol, length, full)):
                        if c in written:
                            assert got[i] == written[c], (
                                f"BL {bl} CL {cl} single {single}: beat {i}, column {c}"
                            )
                    driven = d.driven_edges(r, d.t - 1)
                    assert driven == list(range(r + cl, r + cl + length)), (
                        f"BL {bl} CL {cl}: data on edges {[e - r for e in driven]} after READ"
                    )
                    d.check()
        d.assert_clean()

    @cocotb.test()
    async def interrupted_bursts(dut) -> None:  # type: ignore[no-untyped-def]
        """READ, WRITE, BURST TERMINATE and PRECHARGE end a burst as the datasheet says."""
        d = await Driver(dut).start()
        await d.init(bl=4, cl=2)
        for cl in (2, 3):
            await d.precharge()
            await d.load_mode(4, cl)
            await d.activate(1, 3)
            old = [0x1000 + i for i in range(16)]
            for c in range(0, 16, 4):
                await d.write(1, c, old[c : c + 4])
            await d.nop(4)

            # a READ two edges after a READ: two words of the first, then four of the second
            r = await d.read(1, 0)
            await d.nop(1)
            await d.edge("READ", ba=1, a=4)
            await d.nop(cl + 5)
            assert d.read_words(r + cl, 6) == old[0:2] + old[4:8]
            assert d.driven_edges(r, r + cl + 7) == list(range(r + cl, r + cl + 6))

            # BURST TERMINATE two edges after READ: the data stops CL - 1 edges after it
            r = await d.read(1, 8)
            await d.nop(1)
            b = await d.edge("BST")
            await d.nop(cl + 3)
            assert d.driven_edges(r, r + cl + 4) == list(range(r + cl, b + cl))
            assert d.read_words(r + cl, 2) == old[8:10]

            # a WRITE two edges after a WRITE: two words of the first, then four
            w = await d.write(1, 0, [0xA0, 0xA1, 0xA2, 0xA3], wait=False)
            await d.nop(1)
            assert await d.write(1, 4, [0xB0, 0xB1, 0xB2, 0xB3]) == w + 2
            # a READ two edges after a WRITE: the word at the READ's edge is not taken
            await d.nop(4)
            w = await d.write(1, 12, [0xC0, 0xC1, 0xC2, 0xC3], wait=False)
            await d.nop(1)
            r = await d.edge("READ", ba=1, a=12)
            await d.nop(cl + 4)
            assert d.read_words(r + cl, 4) == [0xC0, 0xC1, old[14], old[15]]
            r = await d.read(1, 0)
            await d.nop(cl + 4)
            assert d.read_words(r + cl, 4) == [0xA0, 0xA1, old[2], old[3]]
            r = await d.read(1, 4)
            await d.nop(cl + 4)
            assert d.read_words(r + cl, 4) == [0xB0, 0xB1, 0xB2, 0xB3]

            # BURST TERMINATE two edges after WRITE: the word at its edge is not taken
            await d.write(1, 8, [0xD0, 0xD1, 0xD2, 0xD3], wait=False)
            await d.nop(1)
            await d.edge("BST", dq=0xEEEE, dqm=0)
            await d.nop(2)
            r = await d.read(1, 8)
            await d.nop(cl + 4)
            assert d.read_words(r + cl, 4) == [0xD0, 0xD1, old[10], old[11]]

            # PRECHARGE of the bank one edge after READ: one word comes out
            r = await d.read(1, 4)
            p = await d.edge("PRE", ba=1)
            await d.nop(cl + 3)
            assert d.driven_edges(r, r + cl + 4) == list(range(r + cl, p + cl))
            assert d.read_words(r + cl, 1) == [0xB0]
            # a PRECHARGE of another bank does not end the burst
            await d.activate(1, 3)
            await d.activate(2, 3)
            await d.wait_until(d.lim.pre_at(2))
            r = await d.read(1, 4)
            await d.edge("PRE", ba=2)
            await d.nop(cl + 5)
            assert d.read_words(r + cl, 4) == [0xB0, 0xB1, 0xB2, 0xB3]

            # WRITE one edge after the first read word: DQM two edges before the WRITE
            # masks the second word, and the WRITE turns the rest off
            r = await d.read(1, 0)
            await d.wait_until(r + cl - 1)
            await d.edge(dqm=3)
            await d.edge()
            w = await d.edge("WRITE", ba=1, a=12, dq=0xF0, dqm=0)
            assert w == r + cl + 1
            d.beats.update({w + 1: (0xF1, 0), w + 2: (0xF2, 0), w + 3: (0xF3, 0)})
            await d.nop(6)
            assert d.driven_edges(r, w + 5) == [r + cl]
            assert d.read_words(r + cl, 1) == [0xA0]
            r = await d.read(1, 12)
            await d.nop(cl + 4)
            assert d.read_words(r + cl, 4) == [0xF0, 0xF1, 0xF2, 0xF3]
            d.check()
        d.assert_clean()

    @cocotb.test()
    async def dqm(dut) -> None:  # type: ignore[no-untyped-def]
        """DQM masks write bytes on their edge and read bytes two edges later."""
        d = await Driver(dut).start()
        await d.init(bl=4, cl=3)
        await d.activate(0, 6)
        await d.write(0, 0, [0x1111, 0x2222, 0x3333, 0x4444])
        await d.write(0, 0, [0xA1A1, 0xA2A2, 0xA3A3, 0xA4A4], dqm=[0, 1, 2, 3])
        r = await d.read(0, 0)
        # the read words are sampled at r + 3 ... r + 6, masked by DQM at r + 1 ... r + 4
        masks = [0, 2, 1, 3]
        for i, m in enumerate(masks):
            await d.wait_until(r + 1 + i)
            await d.edge(dqm=m)
        await d.nop(3)
        words = [0xA1A1, 0xA222, 0x33A3, 0x4444]  # bit 0 of DQM masks the low byte
        for i, m in enumerate(masks):
            s = d.samples[r + 3 + i]
            assert s.oe == 3 & ~m, f"beat {i}: dq_oe {s.oe:02b} with DQM {m:02b}"
            for byte in (0, 1):
                if not m >> byte & 1:
                    assert s.data[byte] == words[i] >> (8 * byte) & 0xFF, f"beat {i}"
        # PRECHARGE ending a write burst: DQM masks from after the last word through the
        # PRECHARGE's edge, which is tWR after the last word
        w = await d.write(0, 4, [0xB1B1, 0xB2B2, 0xB3B3, 0xB4B4], dqm=[0, 0, 3, 3], wait=False)
        p = await d.precharge(0)
        assert p == w + 1 + d.tm.wr
        await d.activate(0, 6)
        r = await d.read(0, 4)
        await d.nop(6)
        assert d.read_words(r + 3, 2) == [0xB1B1, 0xB2B2]
        d.check()
        d.assert_clean()

    @cocotb.test()
    async def auto_precharge(dut) -> None:  # type: ignore[no-untyped-def]
        """READ and WRITE with auto precharge close the row; the bank opens again at the
        burst's end plus tRP (a write: plus tWR), ignored for full-page bursts."""
        d = await Driver(dut).start()
        await d.init(bl=4, cl=3)
        tm = d.tm
        act = await d.activate(3, 2)
        w = await d.write(3, 8, [1, 2, 3, 4], ap=True)
        assert w == act + tm.rcd
        a2 = await d.activate(3, 2)
        # the datasheet: no command to the bank within (BL - 1) + tWR + tRP of the WRITE
        assert a2 == max(w + 3 + tm.wr + tm.rp, act + tm.ras + tm.rp, act + tm.rc)
        r = await d.read(3, 8, ap=True)
        a3 = await d.activate(3, 5)
        # ... and within BL + tRP of the READ
        assert a3 == max(r + 4 + tm.rp, a2 + tm.ras + tm.rp, a2 + tm.rc)
        await d.nop(2)
        assert d.read_words(r + 3, 4) == [1, 2, 3, 4]
        # a burst that ends before tRAS: the precharge starts at tRAS
        await d.precharge()
        await d.load_mode(1, 3)
        act = await d.activate(2, 1)
        r = await d.read(2, 0, ap=True)
        assert r + 1 < act + tm.ras
        assert await d.activate(2, 1) == act + tm.ras + tm.rp
        # full page: auto precharge is ignored, the row stays open for the next READ
        await d.precharge()
        await d.load_mode(FULL, 3)
        await d.activate(3, 2)
        await d.read(3, 8, ap=True)
        await d.nop(3)
        r = await d.edge("READ", ba=3, a=10)
        await d.nop(1)
        await d.edge("BST")
        await d.nop(4)
        assert d.read_words(r + 3, 2) == [3, 4]
        d.check()
        d.assert_clean()

    @cocotb.test()
    async def random_traffic(dut) -> None:  # type: ignore[no-untyped-def]
        """Random legal commands over banks and rows, mode changes, refreshes in time, each
        command at its earliest edge or a little later; all data against the reference."""
        rng = random.Random(_seed())
        d = await Driver(dut).start()
        await d.init(bl=rng.choice([1, 2, 4, 8]), cl=rng.choice([2, 3]))
        margin = 120
        reads = writes = 0
        for _ in range(250):
            if d.t + margin > d.refresh_deadline():
                for _ in range(REFRESH_ROWS):
                    await d.refresh()
            for b in range(4):
                if d.lim.open[b] is not None and d.t + margin > d.lim.act[b] + d.tm.ras_max:
                    await d.precharge(b)
            d.idle_dqm = rng.choice([0, 0, 0, 1, 2, 3])
            if rng.random() < 0.06:
                await d.precharge()
                await d.load_mode(
                    rng.choice([1, 2, 4, 8, FULL]), rng.choice([2, 3]), rng.random() < 0.3
                )
                continue
            bank, row, col = rng.randrange(4), rng.randrange(1 << ROW_BITS), rng.randrange(PAGE)
            await d.open_row(bank, row)
            await d.nop(rng.choice([0, 0, 1, 2]))
            write = rng.random() < 0.5
            full = d.ref.full and not (write and d.ref.single)
            ap = not full and rng.random() < 0.3
            length = d.ref.burst_len(write)
            if write:
                beats = rng.randrange(1, 10) if full else length
                data = [rng.randrange(1 << 16) for _ in range(beats)]
                masks = [rng.choice([0, 0, 0, 1, 2, 3]) for _ in range(beats)]
                await d.write(bank, col, data, masks, ap)
                writes += 1
            else:
                # a read may be cut short by the next command (not one with auto precharge)
                beats = rng.randrange(1, 10) if full else length
                if not ap and not full and rng.random() < 0.3:
                    beats = rng.randrange(1, length + 1)
                r = await d.read(bank, col, ap)
                await d.wait_until(r + beats)
                reads += 1
            if full:
                await d.edge("BST")
        d.idle_dqm = 0
        await d.nop(8)
        assert reads > 50 and writes > 50
        d.check()
        d.assert_clean()

    @cocotb.test()
    async def limits_are_legal(dut) -> None:  # type: ignore[no-untyped-def]
        """Commands exactly at their datasheet limits: no violation."""
        d = await Driver(dut).start()
        tm = d.tm
        assert clocks(tm) == (3, 3, 7, 5, 2, 2, 2, 7)
        await d.init(bl=2, cl=2)
        pall, *refs, lmr = (t for t, _ in d.log)
        assert [c for _, c in d.log] == ["PRE"] + ["REF"] * INIT_REFRESHES + ["LMR"]
        assert pall == INIT_CYCLES, "PRECHARGE ALL right at the end of the power-up wait"
        assert refs[0] == pall + tm.rp
        assert all(b - a == tm.rfc for a, b in pairwise(refs))
        assert lmr == refs[-1] + tm.rfc
        a0 = await d.activate(0, 1)
        assert a0 == lmr + tm.mrd
        a1 = await d.activate(1, 1)
        assert a1 == a0 + tm.rrd
        w = await d.write(0, 2, [0x1234, 0x5678])
        assert w == a0 + tm.rcd
        p0 = await d.precharge(0)
        assert p0 == w + 1 + tm.wr and p0 > a0 + tm.ras, "tWR binds"
        a0 = await d.activate(0, 1)
        assert a0 == p0 + tm.rp
        r = await d.read(0, 2)
        assert r == a0 + tm.rcd
        await d.nop(4)
        assert d.read_words(r + 2, 2) == [0x1234, 0x5678]
        a3 = await d.activate(3, 2)
        p3 = await d.precharge(3)
        assert p3 == a3 + tm.ras
        ref = await d.refresh()  # PRECHARGE ALL first
        assert d.log[-2][1] == "PRE" and ref == d.log[-2][0] + tm.rp
        a2 = await d.activate(2, 4)
        assert a2 == ref + tm.rfc
        # a row open for exactly tRAS max
        await d.wait_until(a2 + tm.ras_max)
        assert await d.edge("PRE", ba=2) == a2 + tm.ras_max
        await d.nop(2)
        d.check()
        d.assert_clean()

    @cocotb.test()
    async def trc_at_the_limit(dut) -> None:  # type: ignore[no-untyped-def]
        """With tRAS + tRP short of tRC, ACTIVE to the same bank waits exactly tRC."""
        d = await Driver(dut, "short_tras").start()
        await d.init()
        act = await d.activate(0, 1)
        pre = await d.precharge(0)
        assert pre + d.tm.rp < act + d.tm.rc
        assert await d.activate(0, 2) == act + d.tm.rc
        await d.nop(2)
        d.assert_clean()

    @cocotb.test()
    async def refresh_at_the_limit(dut) -> None:  # type: ignore[no-untyped-def]
        """Rows refreshed at their deadlines: none flagged; then a row one edge late is
        flagged on that edge, with no command."""
        d = await Driver(dut).start()
        await d.init()
        tm = d.tm
        # the window starts at the end of the power-up sequence for every row: a burst of
        # refreshes, tRFC apart, whose last one is at the deadline ...
        first = d.refresh_deadline() - (REFRESH_ROWS - 1) * tm.rfc
        for i in range(REFRESH_ROWS):
            await d.wait_until(first + i * tm.rfc)
            assert await d.refresh() == first + i * tm.rfc
        assert d.t - 1 == d.init_done + TREF_CYCLES
        # ... then each row exactly TREF_CYCLES after its last refresh
        for _ in range(REFRESH_ROWS):
            deadline = d.refresh_deadline()
            await d.wait_until(deadline)
            assert await d.refresh() == deadline
        d.assert_clean()
        assert int(dut.refreshes.value) == INIT_REFRESHES + 2 * REFRESH_ROWS
        late = d.refresh_deadline() + 1
        await d.wait_until(late)
        d.assert_clean()
        await d.nop()
        assert d.flags() == (1, RULES["refresh"]), f"edge {late}: no refresh violation"


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_sdram_model(sim: str) -> None:
    from spikefab.sim.rtl import run_cocotb

    build = ROOT / "sim_build" / "sdram_model" / sim
    build.mkdir(parents=True, exist_ok=True)
    bench = build / "sdram_bench.v"
    text = bench_verilog()
    if not bench.exists() or bench.read_text() != text:
        bench.write_text(text)
    run_cocotb(
        sim, [MODEL, bench], "sdram_bench", "test_sdram_model", test_dir=HERE, build_dir=build
    )


def clocks(tm: Timing) -> tuple[int, ...]:
    return (tm.rcd, tm.rp, tm.rc, tm.ras, tm.wr, tm.rrd, tm.mrd, tm.rfc)


def test_clocks_from_the_datasheet() -> None:
    """The -7 figures in clocks (tRCD, tRP, tRC, tRAS, tWR, tRRD, tMRD, tRFC), rounded up:
    at 143 MHz (7 ns), at 100 MHz (10 ns) and at 25 MHz (40 ns)."""
    assert clocks(Timing(7_000)) == (3, 3, 9, 6, 2, 2, 2, 9)
    assert clocks(Timing(10_000)) == (3, 3, 7, 5, 2, 2, 2, 7)
    assert clocks(Timing(40_000)) == (1, 1, 2, 2, 1, 1, 2, 2)


def test_verilator_lint_is_clean() -> None:
    """Verilator -Wall has nothing to say, at the defaults and at the bench's parameters."""
    from spikefab.sim.rtl import ToolMissingError, require_simulator, tool_env

    try:
        require_simulator("verilator")
    except ToolMissingError as e:
        pytest.skip(str(e))
    for params in ([], ["-GROW_BITS=4", "-GCOL_BITS=5", "-GFATAL=0", "-GCLK_PS=7000"]):
        done = subprocess.run(
            ["verilator", "--lint-only", "-Wall", "--no-timing", *params, str(MODEL)],
            env=tool_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and "%Warning" not in done.stderr, done.stderr


FATAL_BENCH = """
module fatal_bench;
    reg clk = 0;
    always #5 clk = ~clk;
    reg [3:0] cmd = 4'b0111;  // {cs_n, ras_n, cas_n, we_n}
    reg [1:0] ba = 0;
    reg [12:0] a = 0;
    wire [15:0] dq_o;
    wire [1:0] dq_oe;
    wire dq_drive, violation;
    wire [7:0] rule;
    wire [31:0] refreshes;
    wire [63:0] cycle;
    sdram_model #(.ROW_BITS(4), .COL_BITS(5), .CLK_PS(10000), .INIT_CYCLES(4)) m (
        .clk(clk), .cke(1'b1), .cs_n(cmd[3]), .ras_n(cmd[2]), .cas_n(cmd[1]), .we_n(cmd[0]),
        .ba(ba), .a(a), .dqm(2'b00), .dq_i(16'h0000), .dq_oe_ctrl(1'b0), .dq_o(dq_o),
        .dq_oe(dq_oe), .dq_drive(dq_drive), .violation(violation), .rule(rule),
        .refreshes(refreshes), .cycle(cycle));
    // drive for edge n: set the pins after edge n - 1
    task at(input integer n, input [3:0] c, input [1:0] b, input [12:0] addr);
        begin
            while (cycle < n) @(negedge clk);
            cmd = c; ba = b; a = addr;
            @(negedge clk);
            cmd = 4'b0111;
        end
    endtask
    integer i;
    initial begin
        at(4, 4'b0010, 0, 13'h400);                       // PRECHARGE ALL
        for (i = 0; i < 8; i = i + 1) at(7 + 7 * i, 4'b0001, 0, 0);   // AUTO REFRESH
        at(63, 4'b0000, 0, 13'h032);                      // LOAD MODE: CL 3, BL 4
        at(65, 4'b0011, 1, 13'd5);                        // ACTIVE bank 1 row 5
        at(67, 4'b0101, 1, 0);                            // READ at tRCD - 1
        repeat (4) @(negedge clk);
        $display("still running at cycle %0d", cycle);
        $finish;
    end
endmodule
"""


def test_fatal_stops_icarus_with_the_rule(tmp_path: Path) -> None:
    """With FATAL=1 (the default) the first violation stops the simulation; the message
    names the rule, the bank and row, and the cycle."""
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed: apt-get install -y iverilog")
    bench = tmp_path / "fatal_bench.v"
    bench.write_text(FATAL_BENCH)
    exe = tmp_path / "fatal_bench.vvp"
    subprocess.run(
        ["iverilog", "-g2012", "-o", str(exe), str(bench), str(MODEL)], check=True, timeout=60
    )
    done = subprocess.run(
        ["vvp", "-n", str(exe)], capture_output=True, text=True, check=False, timeout=60
    )
    out = done.stdout + done.stderr
    assert "tRCD violated at cycle 67 (bank 1 row 5): READ 2 cycles after ACTIVE" in out, out
    assert "still running" not in out, out
    assert done.returncode != 0 or "FATAL" in out.upper(), out
