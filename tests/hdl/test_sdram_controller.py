"""The SDRAM controller (hdl/sdram.py) against a behavioural SDRAM written from the datasheet.

In Amaranth's simulator, :class:`SDRAMModel` stands at the pins: it decodes each command at
the clock edge, keeps the banks' state, the mode register and the memory, serves full-page
bursts with the CAS latency of its mode register, and records every breach of the
AS4C32M16SB's rules (speed grade -7) with the rule's name. Its limits in clocks come from
:data:`DATASHEET_NS`, not from the controller's own arithmetic.

* The power-up sequence at 25 MHz with the datasheet's 200 us.
* Random runs written then read back, at 25, 50 and 125 MHz (CAS latency 2, 2 and 3), with
  idle cycles on the write data and backpressure on the read data: every word read equals a
  Python dict of what was written, every word the model holds is at the bank, row and column
  of the address mapping, and no rule is broken.
* Refresh with a short refresh window: every group of ``refreshes`` consecutive REFRESH
  commands fits in the window, under long stalls of the read data.
* Read throughput in words per clock: whole rows and 16-word runs along rows (at least 0.9),
  random short runs (printed).
* A controller built with tRCD one clock short, and one that refreshes too rarely, are caught
  by the model.

On Icarus and Verilator, the controller's Verilog and the Verilog SDRAM model
(``sim/sdram/sdram_model.v``, a 1024-column part with 16 rows per bank here) run together in
a wrapper written here: random runs with idle cycles and backpressure under a short refresh
window, read back against a dict, with the model's ``violation`` low throughout; and the
same two faulty controllers, which the model must flag with the rules ``tRCD`` and
``refresh``.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from amaranth.sim import Simulator
from spikefab.hdl.sdram import (
    Cmd,
    SDRAMController,
    SDRAMGeometry,
    SDRAMTiming,
    sdram_request_layout,
)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MODEL = ROOT / "sim" / "sdram" / "sdram_model.v"

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly
    from streams import StreamSink, StreamSource, random_pauses, random_stalls
except ImportError:  # the pytest side reports the missing tool
    cocotb = None

#: The AS4C32M16SB's figures, speed grade -7 (datasheet Table 16), in ns.
DATASHEET_NS = {
    "tRCD": 21,
    "tRP": 21,
    "tRC": 63,
    "tRAS": 42,
    "tWR": 14,
    "tRRD": 14,
    "tMRD": 14,
    "tRFC": 63,
}
#: Clocks of tMRD at least, whatever the clock (the JEDEC count).
TMRD_MIN_CLOCKS = 2
TRAS_MAX_NS = 120_000
POWER_UP_NS = 200_000
INIT_REFRESHES = 8
#: Shortest clock period at CAS latency 2, in ns.
TCK_CL2_NS = 10
#: The part's banks, rows (A0 .. A12) and columns (A0 .. A9).
BANKS, ROWS, COLUMNS = 4, 8192, 1024

SMALL = SDRAMGeometry(row_bits=4, col_bits=6, bank_bits=2)
#: The datasheet's timing with a short power-up wait, for tests that are not about it.
FAST_START = SDRAMTiming(t_power_up=400.0)


def limits(clk_freq: float) -> dict[str, int]:
    """The datasheet's minima in clocks at ``clk_freq``: a command may follow the one it
    waits for ``limits[rule]`` clocks later."""
    t_ck = 1e9 / clk_freq
    lim = {name: math.ceil(ns / t_ck - 1e-9) for name, ns in DATASHEET_NS.items()}
    lim["tMRD"] = max(lim["tMRD"], TMRD_MIN_CLOCKS)
    return lim


class SDRAMModel:
    """An AS4C32M16SB at the pins of ``dut.sdram``, checking the datasheet's rules.

    A controller built for a smaller geometry uses part of it: its runs must stop at its
    own row end, where the part's full-page burst would go on.

    ``violations`` lists ``(edge, rule, text)``; ``rule`` is the datasheet's name of the rule
    broken (``"tRCD"``, ``"tRP"``, ...) or a word for the others (``"state"``, ``"bus"``,
    ``"init"``, ``"mode"``, ``"refresh"``: a row not refreshed within ``refresh[0]`` ns by
    ``refresh[1]`` REFRESH commands in turn). ``mem`` maps ``(bank, row, column)`` to the word held.
    """

    def __init__(
        self,
        clk_freq: float,
        *,
        power_up_ns: float = POWER_UP_NS,
        refresh: tuple[float, int] | None = (64e6, 8192),
        seed: int = 0,
    ) -> None:
        if refresh is None:
            self.refresh_window = None
        else:
            self.refresh_window = math.floor(refresh[0] * clk_freq / 1e9)
        self.refresh_rows = refresh[1] if refresh else 0
        self.t_ck = 1e9 / clk_freq
        self.lim = limits(clk_freq)
        self.power_up = math.ceil(power_up_ns / self.t_ck - 1e-9)
        self.ras_max = math.floor(TRAS_MAX_NS / self.t_ck)
        self.rng = random.Random(seed)
        self.mem: dict[tuple[int, int, int], int] = {}
        nb = BANKS
        never = -(10**9)
        self.open: list[int | None] = [None] * nb
        self.t_act = [never] * nb
        self.t_pre = [never] * nb
        self.t_wdata = [never] * nb
        self.t_act_any = never
        self.t_ref = never
        self.t_mrs = never
        self.cas_latency: int | None = None
        self.burst: dict[str, int] | None = None
        self.out: dict[int, int] = {}  # edge -> word on dq for the controller at that edge
        self.dqm: dict[int, int] = {}
        self.refreshes: list[int] = []
        self.commands: list[tuple[int, Cmd, int, int]] = []  # (edge, command, ba, a)
        self.violations: list[tuple[int, str, str]] = []

    def check_refresh(self, n: int) -> None:
        """Each row's REFRESH comes within ``refresh_window`` clocks of its last one (or of
        the first command); rows are refreshed in turn, ``refresh_rows`` of them."""
        if self.refresh_window is None or not self.commands:
            return
        rows = self.refresh_rows
        oldest = self.refreshes[-rows] if len(self.refreshes) >= rows else self.commands[0][0]
        if n - oldest == self.refresh_window + 1:
            self.flag(n, "refresh", f"a row not refreshed for {n - oldest} clocks")

    def flag(self, n: int, rule: str, text: str) -> None:
        self.violations.append((n, rule, text))

    def since(self, n: int, t: int, rule: str, what: str) -> None:
        if n - t < self.lim[rule]:
            self.flag(n, rule, f"{what} {n - t} clocks after, {self.lim[rule]} needed")

    # -- one clock edge ----------------------------------------------------------------------
    def edge(self, n: int, cs_n, ras_n, cas_n, we_n, ba, a, dqm, dq_o, dq_oe, cke) -> None:  # type: ignore[no-untyped-def]
        cmd = Cmd.DESELECT if cs_n else Cmd(ras_n << 2 | cas_n << 1 | we_n)
        self.dqm[n] = dqm
        self.dqm.pop(n - 3, None)
        if not cke:
            self.flag(n, "state", "CKE low")
        if dq_oe and (n in self.out or n - 1 in self.out):
            self.flag(n, "bus", "dq driven by the controller while the SDRAM drives it")
        self.out.pop(n - 1, None)
        self.check_refresh(n)
        if n < self.power_up and dqm != 3:
            self.flag(n, "init", "DQM low during the power-up wait")
        if cmd not in (Cmd.NOP, Cmd.DESELECT):
            self.commands.append((n, cmd, ba, a))
        # a running burst ends at READ, WRITE, BURST TERMINATE or a PRECHARGE of its bank
        b = self.burst
        if b is not None:
            ends = cmd in (Cmd.READ, Cmd.WRITE, Cmd.BURST_TERMINATE) or (
                cmd == Cmd.PRECHARGE and (a >> 10 & 1 or ba == b["bank"])
            )
            if ends:
                self.burst = None
            else:
                self.burst_word(n, dqm, dq_o, dq_oe)
        handler = {
            Cmd.ACTIVE: self.active,
            Cmd.READ: self.read_write,
            Cmd.WRITE: self.read_write,
            Cmd.PRECHARGE: self.precharge,
            Cmd.REFRESH: self.refresh,
            Cmd.LOAD_MODE: self.load_mode,
        }.get(cmd)
        if handler is not None:
            handler(n, cmd, ba, a)
        if cmd in (Cmd.READ, Cmd.WRITE) and self.burst is not None:
            self.burst_word(n, dqm, dq_o, dq_oe)

    def burst_word(self, n: int, dqm: int, dq_o: int, dq_oe: int) -> None:
        b = self.burst
        assert b is not None
        col = (b["col"] + n - b["start"]) % COLUMNS
        key = (b["bank"], b["row"], col)
        if b["write"]:
            if dqm == 3:
                return
            if not dq_oe:
                self.flag(n, "bus", "a write word with dq not driven")
            old = self.mem.get(key, 0)
            mask = (0 if dqm & 1 else 0x00FF) | (0 if dqm & 2 else 0xFF00)
            self.mem[key] = (old & ~mask) | (dq_o & mask)
            self.t_wdata[b["bank"]] = n
        else:
            assert self.cas_latency is not None
            word = self.mem.get(key, self.rng.getrandbits(16))
            self.out[n + self.cas_latency] = word

    def drive(self, n: int) -> int:
        """The word on dq at edge ``n``: a read word (unless DQM, two clocks before, turned
        the output off), else noise."""
        if n in self.out and self.dqm.get(n - 2, 0) == 0:
            return self.out[n]
        return self.rng.getrandbits(16)

    # -- commands ----------------------------------------------------------------------------
    def ready_for_use(self, n: int, cmd: Cmd) -> None:
        if self.cas_latency is None:
            self.flag(n, "init", f"{cmd.name} before LOAD MODE REGISTER")

    def active(self, n: int, cmd: Cmd, ba: int, a: int) -> None:
        self.ready_for_use(n, cmd)
        if self.open[ba] is not None:
            self.flag(n, "state", f"ACTIVE to bank {ba}, open")
        self.since(n, self.t_pre[ba], "tRP", f"ACTIVE to bank {ba}")
        self.since(n, self.t_act[ba], "tRC", f"ACTIVE to bank {ba}")
        self.since(n, self.t_act_any, "tRRD", f"ACTIVE to bank {ba}")
        self.since(n, self.t_ref, "tRFC", "ACTIVE")
        self.since(n, self.t_mrs, "tMRD", "ACTIVE")
        self.open[ba] = a % ROWS
        self.t_act[ba] = self.t_act_any = n

    def read_write(self, n: int, cmd: Cmd, ba: int, a: int) -> None:
        self.ready_for_use(n, cmd)
        if self.open[ba] is None:
            self.flag(n, "state", f"{cmd.name} to bank {ba}, closed")
            return
        self.since(n, self.t_act[ba], "tRCD", f"{cmd.name} to bank {ba}")
        if a >> 10 & 1:
            self.flag(n, "state", f"{cmd.name} with auto precharge")
        self.burst = dict(
            write=int(cmd == Cmd.WRITE),
            bank=ba,
            row=self.open[ba],
            col=a % COLUMNS,
            start=n,
        )

    def precharge(self, n: int, cmd: Cmd, ba: int, a: int) -> None:
        banks = range(len(self.open)) if a >> 10 & 1 else [ba]
        for b in banks:
            if self.open[b] is not None:
                self.since(n, self.t_act[b], "tRAS", f"PRECHARGE of bank {b}")
                self.since(n, self.t_wdata[b], "tWR", f"PRECHARGE of bank {b}")
                if n - self.t_act[b] > self.ras_max:
                    self.flag(n, "tRAS", f"bank {b} open {n - self.t_act[b]} clocks")
            self.open[b] = None
            self.t_pre[b] = n
        if not self.commands[:-1]:
            if not a >> 10 & 1:
                self.flag(n, "init", "the first command is not PRECHARGE ALL")
            if n < self.power_up:
                self.flag(n, "init", f"PRECHARGE ALL at clock {n}, before {self.power_up}")

    def all_idle(self, n: int, what: str) -> None:
        for b, row in enumerate(self.open):
            if row is not None:
                self.flag(n, "state", f"{what} with bank {b} open")
            self.since(n, self.t_pre[b], "tRP", what)
            self.since(n, self.t_act[b], "tRC", what)
        self.since(n, self.t_ref, "tRFC", what)

    def refresh(self, n: int, cmd: Cmd, ba: int, a: int) -> None:
        self.all_idle(n, "REFRESH")
        self.t_ref = n
        self.refreshes.append(n)

    def load_mode(self, n: int, cmd: Cmd, ba: int, a: int) -> None:
        self.all_idle(n, "LOAD MODE REGISTER")
        if len(self.refreshes) < INIT_REFRESHES:
            self.flag(n, "init", f"{len(self.refreshes)} refreshes before LOAD MODE REGISTER")
        cl = a >> 4 & 7
        if a & 7 != 7 or a >> 3 & 1 or a >> 7 & 7 or cl not in (2, 3) or ba:
            self.flag(n, "mode", f"mode {a:#x}: not full page, sequential, burst write, CL 2/3")
        if cl == 2 and self.t_ck < TCK_CL2_NS:
            self.flag(n, "mode", f"CAS latency 2 with a {self.t_ck} ns clock")
        self.cas_latency = cl
        self.t_mrs = n

    # -- the process ---------------------------------------------------------------------------
    def process(self, pins) -> Callable:  # type: ignore[no-untyped-def]
        async def run(ctx) -> None:  # type: ignore[no-untyped-def]
            n = 0
            sampled = ctx.tick().sample(
                pins.cs_n,
                pins.ras_n,
                pins.cas_n,
                pins.we_n,
                pins.ba,
                pins.a,
                pins.dqm,
                pins.dq_o,
                pins.dq_oe,
                pins.cke,
            )
            async for _, _, *values in sampled:
                self.edge(n, *values)
                ctx.set(pins.dq_i, self.drive(n + 1))
                n += 1

        return run


# -- the user side -----------------------------------------------------------------------------
def split(addr: int, geo: SDRAMGeometry) -> tuple[int, int, int]:
    """``(bank, row, column)`` of a word address: the column in the low bits, then the bank."""
    cols, banks = 1 << geo.col_bits, 1 << geo.bank_bits
    return (addr // cols) % banks, addr // (cols * banks), addr % cols


def run_addresses(addr: int, length: int, geo: SDRAMGeometry) -> list[int]:
    """The word addresses of a run: along the row, wrapping to its column 0."""
    cols = 1 << geo.col_bits
    base = addr - addr % cols
    return [base + (addr + i) % cols for i in range(length)]


class Bench:
    """The controller and the model in one simulation, with drivers of its three streams."""

    def __init__(
        self,
        clk_freq: float,
        *,
        geometry: SDRAMGeometry = SMALL,
        timing: SDRAMTiming = FAST_START,
        refresh: tuple[float, int] | None = None,
        seed: int = 1,
        **kwargs,  # type: ignore[no-untyped-def]
    ) -> None:
        self.geo = geometry
        self.dut = SDRAMController(geometry, timing, clk_freq, **kwargs)
        self.model = SDRAMModel(
            clk_freq,
            power_up_ns=timing.t_power_up,
            refresh=refresh if refresh is not None else (timing.t_ref, timing.refreshes),
            seed=seed,
        )
        self.rng = random.Random(seed)
        self.sim = Simulator(self.dut)
        self.sim.add_clock(1 / clk_freq)
        self.sim.add_process(self.model.process(self.dut.sdram))
        self.cycle = 0
        self.sim.add_process(self._count)
        self.requests: list[tuple[int, int, int]] = []  # (addr, len, write)
        self.wdata: list[int] = []
        self.rdata: list[tuple[int, int]] = []  # (data, last)
        self.read_times: list[int] = []
        self.request_times: list[int] = []
        self.wdata_pause = 0.0
        self.rdata_stall = 0.0
        self.rdata_stall_long: tuple[float, int] = (0.0, 0)

    async def _count(self, ctx) -> None:  # type: ignore[no-untyped-def]
        async for _ in ctx.tick():
            self.cycle += 1

    async def _requests(self, ctx) -> None:  # type: ignore[no-untyped-def]
        req = self.dut.i_request
        layout = sdram_request_layout(self.geo)
        await ctx.tick().until(self.dut.ready)
        for addr, length, write in self.requests:
            value = layout.const({"addr": addr, "len": length, "write": write}).as_value()
            ctx.set(req.payload.as_value(), value.value)
            ctx.set(req.valid, 1)
            await ctx.tick().until(req.ready)
            self.request_times.append(self.cycle)
        ctx.set(req.valid, 0)

    async def _wdata(self, ctx) -> None:  # type: ignore[no-untyped-def]
        s = self.dut.i_wdata
        for word in self.wdata:
            while self.rng.random() < self.wdata_pause:
                ctx.set(s.valid, 0)
                await ctx.tick()
            ctx.set(s.payload, word)
            ctx.set(s.valid, 1)
            await ctx.tick().until(s.ready)
        ctx.set(s.valid, 0)

    async def _rdata(self, ctx) -> None:  # type: ignore[no-untyped-def]
        s = self.dut.o_rdata
        want = sum(length for _, length, write in self.requests if not write)
        p_long, long_len = self.rdata_stall_long
        stall = 0
        while len(self.rdata) < want:
            if stall == 0 and self.rng.random() < p_long:
                stall = long_len
            ready = stall == 0 and self.rng.random() >= self.rdata_stall
            stall = max(0, stall - 1)
            ctx.set(s.ready, ready)
            _, _, valid, data, last = await ctx.tick().sample(
                s.valid, s.payload.data, s.payload.last
            )
            if valid and ready:
                self.rdata.append((data, last))
                self.read_times.append(self.cycle)
        ctx.set(s.ready, 0)

    def run(self, *, limit: int, after: int = 0) -> None:
        """Run until every request is done, then ``after`` clocks more; fail after ``limit``
        clocks."""
        done: list[str] = []

        def marked(bench):  # type: ignore[no-untyped-def]
            async def run(ctx) -> None:  # type: ignore[no-untyped-def]
                await bench(ctx)
                done.append(bench.__name__)

            return run

        async def finish(ctx) -> None:  # type: ignore[no-untyped-def]
            while len(done) < 3:
                if self.cycle >= limit:
                    raise AssertionError(
                        f"not done in {limit} clocks: {len(self.request_times)} of "
                        f"{len(self.requests)} requests, {len(self.rdata)} read words"
                    )
                await ctx.tick()
            if after:
                await ctx.tick().repeat(after)

        for bench in (self._requests, self._wdata, self._rdata):
            self.sim.add_testbench(marked(bench), background=True)
        self.sim.add_testbench(finish)
        self.sim.run()

    def check_rules(self) -> None:
        assert self.model.violations == [], self.model.violations[:5]


def random_traffic(
    bench: Bench, rounds: int, max_len: int, rng: random.Random
) -> tuple[list[int], dict[int, int]]:
    """Queue ``rounds`` of random writes then reads of the same runs; return the words the
    reads must give, from a dict of word address -> word written."""
    geo = bench.geo
    memory: dict[int, int] = {}
    expected: list[int] = []
    for _ in range(rounds):
        runs = []
        for _ in range(rng.randint(1, 6)):
            addr = rng.randrange(1 << geo.addr_bits)
            # now and then, a run that passes the end of its row
            length = rng.randint(1, max_len)
            runs.append((addr, length))
            bench.requests.append((addr, length, 1))
            for a in run_addresses(addr, length, geo):
                word = rng.getrandbits(16)
                memory[a] = word
                bench.wdata.append(word)
        rng.shuffle(runs)
        for addr, length in runs:
            bench.requests.append((addr, length, 0))
            expected += [memory[a] for a in run_addresses(addr, length, geo)]
    return expected, memory


def check_reads(bench: Bench, expected: list[int]) -> None:
    words = [d for d, _ in bench.rdata]
    assert words == expected
    lasts = [i for i, (_, last) in enumerate(bench.rdata) if last]
    ends = []
    total = 0
    for _, length, write in bench.requests:
        if not write:
            total += length
            ends.append(total - 1)
    assert lasts == ends


def check_memory(bench: Bench, memory: dict[int, int]) -> None:
    """Every word written is in the model at the bank, row and column of its address."""
    for addr, word in memory.items():
        assert bench.model.mem.get(split(addr, bench.geo)) == word, hex(addr)
    assert len(bench.model.mem) == len(memory)


# -- tests -------------------------------------------------------------------------------------
def test_init_sequence() -> None:
    """The datasheet's power-up at 25 MHz: 200 us, PRECHARGE ALL, 8 REFRESH, LOAD MODE."""
    clk = 25e6
    bench = Bench(clk, geometry=SDRAMGeometry(), timing=SDRAMTiming())
    bench.run(limit=7000, after=20)
    bench.check_rules()
    lim = limits(clk)
    cmds = bench.model.commands
    names = [c for _, c, _, _ in cmds]
    assert names == [Cmd.PRECHARGE] + [Cmd.REFRESH] * INIT_REFRESHES + [Cmd.LOAD_MODE]
    first = cmds[0][0]
    assert first >= 200_000 / 40
    assert cmds[0][3] >> 10 & 1  # all banks
    assert cmds[1][0] - first >= lim["tRP"]
    for (t0, _, _, _), (t1, _, _, _) in itertools.pairwise(cmds[1:]):
        assert t1 - t0 >= lim["tRFC"]
    # full page, sequential, CAS latency 2 (25 MHz allows it), burst writes
    assert cmds[-1][3] == 0b010_0_111
    assert cmds[-1][2] == 0
    assert bench.model.cas_latency == 2


def test_ready_after_mode() -> None:
    clk = 50e6
    bench = Bench(clk)

    ready_at: list[int] = []

    async def watch(ctx) -> None:  # type: ignore[no-untyped-def]
        await ctx.tick().until(bench.dut.ready)
        ready_at.append(bench.cycle)

    bench.sim.add_testbench(watch, background=True)
    bench.run(limit=1000)
    mode_at = bench.model.commands[-1][0]
    assert bench.model.commands[-1][1] == Cmd.LOAD_MODE
    # the first command after ready is at least tMRD after LOAD MODE REGISTER
    assert limits(clk)["tMRD"] <= ready_at[0] - mode_at <= limits(clk)["tMRD"] + 3


@pytest.mark.parametrize("clk", [25e6, 50e6, 125e6])
def test_write_read_random(clk: float) -> None:
    rng = random.Random(int(clk))
    bench = Bench(clk, seed=int(clk) + 1)
    bench.wdata_pause = 0.2
    bench.rdata_stall = 0.2
    bench.rdata_stall_long = (0.01, 30)
    expected, memory = random_traffic(bench, rounds=12, max_len=24, rng=rng)
    bench.run(limit=40_000, after=10)
    bench.check_rules()
    check_reads(bench, expected)
    check_memory(bench, memory)
    assert bench.model.cas_latency == (3 if clk > 100e6 else 2)


def test_full_speed_streams() -> None:
    """No idle cycles and no backpressure; runs up to a whole row, some passing its end."""
    rng = random.Random(7)
    bench = Bench(50e6, seed=8)
    expected, memory = random_traffic(bench, rounds=6, max_len=SMALL.columns, rng=rng)
    bench.run(limit=40_000, after=10)
    bench.check_rules()
    check_reads(bench, expected)
    check_memory(bench, memory)


def test_row_switches_in_one_bank() -> None:
    """One-word runs in one bank, each in another row, at 125 MHz: a row is closed as soon as
    tRAS (6 clocks) allows, sooner than tRCD, the word and the burst terminate take."""
    assert limits(125e6)["tRAS"] > limits(125e6)["tRCD"] + 2
    rng = random.Random(9)
    bench = Bench(125e6, seed=10)
    memory: dict[int, int] = {}
    expected = []
    # consecutive runs in different rows of bank 2
    rows = [rng.randrange(1 << SMALL.row_bits) for _ in range(40)]
    rows = [r for r, prev in zip(rows, [-1, *rows], strict=False) if r != prev]
    addrs = [
        (r << (SMALL.col_bits + SMALL.bank_bits)) | (2 << SMALL.col_bits) | i
        for i, r in enumerate(rows)
    ]
    for addr in addrs:
        word = rng.getrandbits(16)
        memory[addr] = word
        bench.requests.append((addr, 1, 1))
        bench.wdata.append(word)
    for addr in addrs:
        bench.requests.append((addr, 1, 0))
        expected.append(memory[addr])
    bench.run(limit=5000, after=10)
    bench.check_rules()
    check_reads(bench, expected)
    check_memory(bench, memory)
    activates = [c for c in bench.model.commands if c[1] == Cmd.ACTIVE]
    assert len(activates) >= 2 * len(rows)


def test_zero_length_request_is_ignored() -> None:
    bench = Bench(50e6)
    bench.requests = [(5, 2, 1), (9, 0, 0), (5, 2, 0)]
    bench.wdata = [0x1234, 0xABCD]
    bench.run(limit=2000, after=10)
    bench.check_rules()
    assert bench.rdata == [(0x1234, 0), (0xABCD, 1)]


def refresh_timing(rows: int, window_us: float) -> SDRAMTiming:
    return SDRAMTiming(t_power_up=400.0, t_ref=window_us * 1000, refreshes=rows)


def test_refresh_window() -> None:
    """With a 40 us window of 32 refreshes at 50 MHz (2000 clocks), every 32 consecutive
    REFRESH commands fit in the window, under random traffic with long read stalls."""
    clk, rows, window = 50e6, 32, 40.0
    rng = random.Random(3)
    bench = Bench(clk, timing=refresh_timing(rows, window), refresh_postpone=3, seed=4)
    bench.rdata_stall = 0.1
    bench.rdata_stall_long = (0.02, 200)
    bench.wdata_pause = 0.1
    expected, memory = random_traffic(bench, rounds=20, max_len=SMALL.columns, rng=rng)
    bench.run(limit=60_000, after=10)
    bench.check_rules()
    check_reads(bench, expected)
    check_memory(bench, memory)
    refs = bench.model.refreshes
    window_clocks = int(window * 1000 / 20)
    end = bench.cycle
    assert end > 3 * window_clocks, "the run should cover a few refresh windows"
    gaps = [refs[i + rows] - refs[i] for i in range(len(refs) - rows)]
    assert max(gaps) <= window_clocks
    # and the refreshes owed by the end of the run were done
    assert refs[-1] > end - window_clocks / rows * 5
    print(f"refreshes: {len(refs)} in {end} clocks; longest {rows}-gap {max(gaps)} clocks")


def throughput(bench: Bench) -> float:
    """Words per clock from the first read request taken to the last word read."""
    first = bench.request_times[0]
    return len(bench.rdata) / (bench.read_times[-1] - first + 1)


def preload(bench: Bench, rng: random.Random) -> dict[int, int]:
    """Fill the model's memory directly (a test of reads alone)."""
    memory = {a: rng.getrandbits(16) for a in range(1 << bench.geo.addr_bits)}
    for a, word in memory.items():
        bench.model.mem[split(a, bench.geo)] = word
    return memory


LONG = SDRAMGeometry(row_bits=4, col_bits=8, bank_bits=2)


@pytest.mark.parametrize(
    ("name", "run_len", "depth"),
    [
        ("whole rows", LONG.columns, 16),
        ("16-word runs along rows", 16, 16),
        ("whole rows, smallest read FIFO", LONG.columns, 2 + 6),
    ],
)
def test_read_throughput_same_row(name: str, run_len: int, depth: int) -> None:
    """Reads of 6 consecutive rows (1536 words) at 50 MHz, with the datasheet's refresh."""
    rng = random.Random(5)
    bench = Bench(50e6, geometry=LONG, read_fifo_depth=depth)
    memory = preload(bench, rng)
    start = 3 * LONG.columns
    addrs = range(start, start + 6 * LONG.columns, run_len)
    bench.requests = [(a, run_len, 0) for a in addrs]
    bench.run(limit=10_000)
    bench.check_rules()
    check_reads(bench, [memory[a] for a in range(start, start + 6 * LONG.columns)])
    wpc = throughput(bench)
    print(f"read throughput, {name}: {wpc:.3f} words per clock")
    assert wpc >= 0.9


def test_read_throughput_random_short_runs() -> None:
    rng = random.Random(6)
    bench = Bench(50e6, geometry=LONG)
    memory = preload(bench, rng)
    expected = []
    for _ in range(150):
        addr = rng.randrange(1 << LONG.addr_bits)
        length = rng.randint(1, 16)
        bench.requests.append((addr, length, 0))
        expected += [memory[a] for a in run_addresses(addr, length, LONG)]
    bench.run(limit=20_000)
    bench.check_rules()
    check_reads(bench, expected)
    wpc = throughput(bench)
    print(f"read throughput, random runs of 1..16 words: {wpc:.3f} words per clock")
    assert wpc > 0.3


# -- the model catches a faulty controller ------------------------------------------------------
def test_model_flags_short_trcd() -> None:
    """A controller that believes tRCD is one clock shorter than the datasheet's."""
    clk = 50e6
    assert limits(clk)["tRCD"] == 2
    short = SDRAMTiming(t_power_up=400.0, t_rcd=20.0 * (limits(clk)["tRCD"] - 1))
    bench = Bench(clk, timing=short)
    bench.requests = [(0, 4, 1), (0, 4, 0)]
    bench.wdata = [1, 2, 3, 4]
    bench.run(limit=2000, after=10)
    assert {rule for _, rule, _ in bench.model.violations} == {"tRCD"}


def test_model_flags_missing_refresh() -> None:
    """A controller built for a refresh window 8 times longer than the SDRAM's."""
    clk, rows, window = 50e6, 32, 40.0
    bench = Bench(
        clk, timing=refresh_timing(rows, 8 * window), refresh=(window * 1000, rows), seed=2
    )
    bench.requests = [(0, 4, 1), (0, 4, 0)]
    bench.wdata = [1, 2, 3, 4]
    bench.run(limit=2000, after=3000)
    assert {rule for _, rule, _ in bench.model.violations} == {"refresh"}


# -- argument checks -------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"geometry must be an SDRAMGeometry, not 3"):
        SDRAMController(3, SDRAMTiming(), 50e6)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"timing must be an SDRAMTiming, not None"):
        SDRAMController(SDRAMGeometry(), None, 50e6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"clk_freq must be a positive frequency in Hz, not 0"):
        SDRAMController(SDRAMGeometry(), SDRAMTiming(), 0)
    with pytest.raises(ValueError, match=r"clk_freq 150000000.0 Hz is too fast"):
        SDRAMController(SDRAMGeometry(), SDRAMTiming(), 150e6)
    with pytest.raises(ValueError, match=r"refresh_postpone must be a non-negative integer"):
        SDRAMController(SDRAMGeometry(), SDRAMTiming(), 50e6, refresh_postpone=-1)
    with pytest.raises(ValueError, match=r"read_fifo_depth must be an integer of at least 8"):
        SDRAMController(SDRAMGeometry(), SDRAMTiming(), 50e6, read_fifo_depth=4)
    with pytest.raises(ValueError, match=r"tREF 1000.0 ns is too short"):
        SDRAMController(SDRAMGeometry(), SDRAMTiming(t_ref=1000.0), 50e6)
    with pytest.raises(ValueError, match=r"longer than tRAS max"):
        SDRAMController(SDRAMGeometry(), SDRAMTiming(), 50e6, refresh_postpone=20)
    with pytest.raises(ValueError, match=r"row_bits must be an integer from 1 to 13, not 14"):
        SDRAMGeometry(row_bits=14)
    with pytest.raises(ValueError, match=r"col_bits must be an integer from 1 to 10, not 11"):
        SDRAMGeometry(col_bits=11)
    with pytest.raises(ValueError, match=r"bank_bits must be 1 or 2, not 3"):
        SDRAMGeometry(bank_bits=3)
    with pytest.raises(ValueError, match=r"t_rcd must be a non-negative number of ns, not -1"):
        SDRAMTiming(t_rcd=-1)
    with pytest.raises(ValueError, match=r"refreshes must be a positive integer, not 0"):
        SDRAMTiming(refreshes=0)
    # the half-built components warn that they were never used: let them do it here
    gc.collect()


def test_clock_counts() -> None:
    """The datasheet's figures at the ULX3S's 25 MHz and at 50 MHz, by hand."""
    c25 = SDRAMTiming().clocks(25e6)
    assert (c25.rcd, c25.rp, c25.rc, c25.ras, c25.wr, c25.rrd, c25.mrd, c25.rfc) == (
        1,
        1,
        2,
        2,
        1,
        1,
        2,
        2,
    )
    assert (c25.refi, c25.power_up, c25.cas_latency) == (195, 5000, 2)
    c50 = SDRAMTiming().clocks(50e6)
    assert (c50.rcd, c50.rp, c50.rc, c50.ras, c50.wr, c50.rrd, c50.mrd, c50.rfc) == (
        2,
        2,
        4,
        3,
        1,
        1,
        2,
        4,
    )
    assert (c50.refi, c50.power_up, c50.cas_latency) == (390, 10000, 2)
    assert SDRAMTiming().clocks(125e6).cas_latency == 3


# -- the controller and the Verilog model ----------------------------------------------------------
#: The controller's geometry on the Verilog model: 64 of the part's 1024 columns.
RTL_GEOMETRY = SMALL
RTL_CLK = 50e6
RTL_ROWS, RTL_WINDOW_NS = 32, 40_000.0  # 32 refreshes in 40 us: 2000 clocks
RTL_POWER_UP_NS = 400.0
#: What each case builds the controller with, and the model's rule it must break (None: none).
RTL_CASES: dict[str, tuple[SDRAMTiming, str | None]] = {
    "clean": (refresh_timing(RTL_ROWS, RTL_WINDOW_NS / 1000), None),
    # tRCD one clock short of the datasheet's at 50 MHz (20 ns, not 21)
    "tRCD": (
        SDRAMTiming(
            t_power_up=RTL_POWER_UP_NS,
            t_ref=RTL_WINDOW_NS,
            refreshes=RTL_ROWS,
            t_rcd=1e9 / RTL_CLK * (limits(RTL_CLK)["tRCD"] - 1),
        ),
        "tRCD",
    ),
    # refreshes paced for a window 8 times the model's
    "refresh": (refresh_timing(RTL_ROWS, 8 * RTL_WINDOW_NS / 1000), "refresh"),
}


def model_rules() -> dict[str, int]:
    """The model's rule codes by name, read from its source (``R_X = 8'dN`` and
    ``R_X: rule_name = "name"``)."""
    text = MODEL.read_text()
    codes = dict(re.findall(r"(R_[A-Z_]+) = 8'd(\d+)", text))
    names = dict(re.findall(r'(R_[A-Z_]+): rule_name = "(\w+)"', text))
    return {name: int(codes[sym]) for sym, name in names.items()}


def rtl_bench_verilog(ctrl: SDRAMController) -> str:
    """A top ``sdram_ctrl_bench``: the controller (module ``sdram_ctrl``) on the model."""
    geo, clk = ctrl.geometry, ctrl.clk_freq
    clk_ps = round(1e12 / clk)
    req_bits = sdram_request_layout(geo).size
    a_pad = 13 - geo.a_bits
    a = "ctrl_a" if a_pad == 0 else f"{{{a_pad}'d0, ctrl_a}}"
    return f"""`default_nettype none
module sdram_ctrl_bench (
    input wire clk,
    input wire rst,
    input wire i_request__valid,
    output wire i_request__ready,
    input wire [{req_bits - 1}:0] i_request__payload,
    input wire i_wdata__valid,
    output wire i_wdata__ready,
    input wire [15:0] i_wdata__payload,
    output wire o_rdata__valid,
    input wire o_rdata__ready,
    output wire [16:0] o_rdata__payload,
    output wire ready,
    output wire violation,
    output wire [7:0] rule,
    output wire [31:0] refreshes,
    output wire [63:0] cycle
);
    wire cke, cs_n, ras_n, cas_n, we_n, dq_oe, dq_drive;
    wire [1:0] ba, dqm, model_oe;
    wire [{geo.a_bits - 1}:0] ctrl_a;
    wire [15:0] dq_o, model_dq;
    sdram_ctrl ctrl (
        .clk(clk), .rst(rst),
        .i_request__valid(i_request__valid), .i_request__ready(i_request__ready),
        .i_request__payload(i_request__payload),
        .i_wdata__valid(i_wdata__valid), .i_wdata__ready(i_wdata__ready),
        .i_wdata__payload(i_wdata__payload),
        .o_rdata__valid(o_rdata__valid), .o_rdata__ready(o_rdata__ready),
        .o_rdata__payload(o_rdata__payload),
        .ready(ready),
        .sdram__cke(cke), .sdram__cs_n(cs_n), .sdram__ras_n(ras_n), .sdram__cas_n(cas_n),
        .sdram__we_n(we_n), .sdram__ba(ba), .sdram__a(ctrl_a), .sdram__dqm(dqm),
        .sdram__dq_o(dq_o), .sdram__dq_oe(dq_oe), .sdram__dq_i(model_dq)
    );
    sdram_model #(
        .ROW_BITS({geo.row_bits}),
        .COL_BITS(10),
        .CLK_PS({clk_ps}),
        .TREF_CYCLES({math.floor(RTL_WINDOW_NS * 1000 / clk_ps)}),
        .REFRESH_ROWS({RTL_ROWS}),
        .INIT_CYCLES({math.ceil(RTL_POWER_UP_NS * 1000 / clk_ps)}),
        .FATAL(0)
    ) model (
        .clk(clk), .cke(cke), .cs_n(cs_n), .ras_n(ras_n), .cas_n(cas_n), .we_n(we_n),
        .ba(ba), .a({a}), .dqm(dqm), .dq_i(dq_o), .dq_oe_ctrl(dq_oe),
        .dq_o(model_dq), .dq_oe(model_oe), .dq_drive(dq_drive),
        .violation(violation), .rule(rule), .refreshes(refreshes), .cycle(cycle)
    );
endmodule
`default_nettype wire
"""


if cocotb is not None:

    def _seed() -> int:
        return int(os.environ.get("SPIKEFAB_SEED", "1"))

    async def _start(dut) -> None:  # type: ignore[no-untyped-def]
        """Start the clock, reset the controller, wait for ``ready``."""
        cocotb.start_soon(Clock(dut.clk, round(1e12 / RTL_CLK), unit="ps").start())
        dut.rst.value = 1
        dut.i_request__valid.value = 0
        dut.i_wdata__valid.value = 0
        dut.o_rdata__ready.value = 0
        for _ in range(3):
            await FallingEdge(dut.clk)
        dut.rst.value = 0
        for _ in range(2000):
            await FallingEdge(dut.clk)
            if int(dut.ready.value):
                return
        raise AssertionError("ready did not rise")

    def _request(addr: int, length: int, write: int) -> int:
        layout = sdram_request_layout(RTL_GEOMETRY)
        return layout.const({"addr": addr, "len": length, "write": write}).as_value().value

    def _decode(bits: int) -> tuple[int, int]:
        return bits & 0xFFFF, bits >> 16

    @cocotb.test()
    async def controller_on_model(dut) -> None:  # type: ignore[no-untyped-def]
        """Random runs, idle write data and stalled reads, over several refresh windows."""
        rng = random.Random(_seed())
        await _start(dut)
        requests = StreamSource(dut, "i_request")
        wdata = StreamSource(dut, "i_wdata", pause=random_pauses(rng, 0.15))
        rdata = StreamSink(
            dut, "o_rdata", pause=random_stalls(rng, 0.15, 0.01, (50, 300)), decode=_decode
        )
        geo = RTL_GEOMETRY
        memory: dict[int, int] = {}
        expected: list[int] = []
        ends: list[int] = []  # index of each read request's last word
        start = int(dut.cycle.value)
        for _ in range(40):
            runs = []
            for _ in range(rng.randint(1, 6)):
                addr = rng.randrange(1 << geo.addr_bits)
                length = rng.randint(1, geo.columns)
                runs.append((addr, length))
                requests.send_nowait(_request(addr, length, 1))
                for a in run_addresses(addr, length, geo):
                    memory[a] = rng.getrandbits(16)
                    wdata.send_nowait(memory[a])
            rng.shuffle(runs)
            for addr, length in runs:
                requests.send_nowait(_request(addr, length, 0))
                expected += [memory[a] for a in run_addresses(addr, length, geo)]
                ends.append(len(expected) - 1)
        got = []
        while len(got) < len(expected):
            got.append(await rdata.recv(limit=5000))
            if int(dut.violation.value):
                break
        await ReadOnly()
        assert int(dut.violation.value) == 0, f"the model flagged rule {int(dut.rule.value)}"
        assert [d for d, _ in got] == expected
        assert [i for i, (_, last) in enumerate(got) if last] == ends
        clocks = int(dut.cycle.value) - start
        windows = clocks * (1e12 / RTL_CLK) / (RTL_WINDOW_NS * 1000)
        assert windows > 3, f"{clocks} clocks: too few refresh windows to mean anything"
        refreshes = int(dut.refreshes.value)
        assert refreshes >= INIT_REFRESHES + math.floor(windows) * RTL_ROWS
        dut._log.info(f"{len(expected)} words read in {clocks} clocks, {refreshes} refreshes")

    @cocotb.test()
    async def faulty_controller_is_flagged(dut) -> None:  # type: ignore[no-untyped-def]
        """A few runs, then idle for two refresh windows: the model flags the expected rule."""
        await _start(dut)
        requests = StreamSource(dut, "i_request")
        wdata = StreamSource(dut, "i_wdata")
        rdata = StreamSink(dut, "o_rdata", decode=_decode)
        for addr in (0, 100, 700):
            requests.send_nowait(_request(addr, 8, 1))
            requests.send_nowait(_request(addr, 8, 0))
            for i in range(8):
                wdata.send_nowait(addr + i)
        for _ in range(24):
            await rdata.recv(limit=5000)
        limit = 2 * math.ceil(RTL_WINDOW_NS * RTL_CLK / 1e9)
        for _ in range(limit):
            await FallingEdge(dut.clk)
            if int(dut.violation.value):
                break
        expect = os.environ["SDRAM_EXPECT_RULE"]
        assert int(dut.violation.value) == 1, f"no violation flagged, {expect} expected"
        assert int(dut.rule.value) == model_rules()[expect]


SIMS = ("icarus", "verilator")


def run_on_model(sim: str, case: str, testcase: str) -> None:
    from spikefab.sim.rtl import run_cocotb, write_verilog

    timing, expect = RTL_CASES[case]
    build = ROOT / "sim_build" / "sdram_controller" / f"{case}-{sim}"
    ctrl = SDRAMController(RTL_GEOMETRY, timing, RTL_CLK, refresh_postpone=3)
    bench = build / "sdram_ctrl_bench.v"
    text = rtl_bench_verilog(ctrl)
    verilog = write_verilog(ctrl, "sdram_ctrl", build / "sdram_ctrl.v")
    if not bench.exists() or bench.read_text() != text:
        bench.write_text(text)
    env = {"SDRAM_EXPECT_RULE": expect or ""}
    run_cocotb(
        sim,
        [verilog, MODEL, bench],
        "sdram_ctrl_bench",
        "test_sdram_controller",
        test_dir=HERE,
        build_dir=build,
        extra_env=env,
        testcase=testcase,
    )


@pytest.mark.parametrize("sim", SIMS)
def test_controller_on_model(sim: str) -> None:
    run_on_model(sim, "clean", "controller_on_model")


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("case", ["tRCD", "refresh"])
def test_model_flags_faulty_controller(sim: str, case: str) -> None:
    run_on_model(sim, case, "faulty_controller_is_flagged")


def test_model_rule_codes() -> None:
    rules = model_rules()
    assert rules["tRCD"] != rules["refresh"]
    assert {"tRCD", "refresh", "contention", "tWR"} <= set(rules)
