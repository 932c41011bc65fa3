"""The SDRAM synapse store (hdl/synapse_store.py): ranges of entries read from an SDRAM.

In Amaranth's simulator, the store runs on the Python SDRAM model of
``test_sdram_controller.py`` (which checks every command against the datasheet's rules):

* random entries written, read back, then random ranges of 0 .. 200 entries (many crossing
  row ends) read with random idle inputs and backpressure, against a dict;
* empty ranges, ``prefetch`` 1, and entries of 1, 16, 17 and 32 bits;
* throughput in entries per clock for 80-entry ranges at random starts, and for long ranges,
  at 25 and 50 MHz on the full AS4C32M16SB geometry, with the datasheet's refresh.

On Icarus and Verilator, the store's Verilog runs on ``sim/sdram/sdram_model.v`` (4 banks of
16 rows of 64 columns): the same traffic checked against a dict, then 80-entry ranges with
an always-ready consumer (at least 0.40 entries per clock), the model's ``violation`` low
throughout.
"""

from __future__ import annotations

import gc
import math
import os
import random
from pathlib import Path

import pytest
from amaranth.sim import Simulator
from spikefab.hdl.sdram import SDRAMGeometry, SDRAMTiming
from spikefab.hdl.synapse_store import SDRAMSynapseStore

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

SMALL = SDRAMGeometry(row_bits=4, col_bits=6, bank_bits=2)
FULL = SDRAMGeometry()
#: The datasheet's timing with a short power-up wait.
FAST_START = SDRAMTiming(t_power_up=400.0)
ENTRY_BITS = 27
#: Small-geometry table: 1024 entries from word 1026 (not at a row start), 2048 words.
SMALL_ENTRIES, SMALL_BASE = 1024, 1026


def sdram_model():  # type: ignore[no-untyped-def]
    # imported here: the cocotb side loads this module and needs none of it
    import test_sdram_controller

    return test_sdram_controller


def expected_entries(memory: dict[int, int], start: int, count: int) -> list[tuple[int, int]]:
    """``(data, last)`` of a range's entries, from a dict of entry index -> entry."""
    return [(memory[start + i], int(i == count - 1)) for i in range(count)]


def random_range(rng: random.Random, entries: int, max_count: int) -> tuple[int, int]:
    """A range of 0 .. ``max_count`` entries (0 one time in ten) within the table."""
    count = 0 if rng.random() < 0.1 else rng.randint(1, max_count)
    return rng.randrange(entries - count + 1), count


class Bench:
    """The store on the Python SDRAM model; ``ops`` are offered one at a time, in order:
    ``("write", index, data)``, ``("readback", index)``, ``("range", start, count)``."""

    def __init__(
        self,
        clk_freq: float,
        *,
        geometry: SDRAMGeometry = SMALL,
        entries: int = SMALL_ENTRIES,
        base: int = SMALL_BASE,
        prefetch: int = 4,
        entry_bits: int = ENTRY_BITS,
        seed: int = 1,
    ) -> None:
        sdc = sdram_model()
        self.sdc = sdc
        self.geo = geometry
        self.dut = SDRAMSynapseStore(
            entry_bits, entries, geometry, FAST_START, clk_freq, base=base, prefetch=prefetch
        )
        self.model = sdc.SDRAMModel(
            clk_freq,
            power_up_ns=FAST_START.t_power_up,
            refresh=(FAST_START.t_ref, FAST_START.refreshes),
            seed=seed,
        )
        self.rng = random.Random(seed)
        self.sim = Simulator(self.dut)
        self.sim.add_clock(1 / clk_freq)
        self.sim.add_process(self.model.process(self.dut.sdram))
        self.cycle = 0
        self.sim.add_process(self._count)
        self.ops: list[tuple] = []
        self.entries: list[tuple[int, int]] = []
        self.entry_times: list[int] = []
        self.readbacks: list[int] = []
        self.range_times: list[int] = []
        self.op_pause = 0.0
        self.out_stall = 0.0
        self.out_stall_long: tuple[float, int] = (0.0, 0)

    def preload(self, memory: dict[int, int]) -> None:
        """Put entries straight into the model's memory (a test of reads alone)."""
        split = self.sdc.split
        for index, value in memory.items():
            addr = self.dut.word_address(index)
            self.model.mem[split(addr, self.geo)] = value & 0xFFFF
            self.model.mem[split(addr + 1, self.geo)] = value >> 16

    async def _count(self, ctx) -> None:  # type: ignore[no-untyped-def]
        async for _ in ctx.tick():
            self.cycle += 1

    async def _ops(self, ctx) -> None:  # type: ignore[no-untyped-def]
        d = self.dut
        await ctx.tick().until(d.ready)
        for kind, *args in self.ops:
            while self.rng.random() < self.op_pause:
                await ctx.tick()
            if kind == "write":
                s, value = d.i_write, {"index": args[0], "data": args[1]}
            elif kind == "readback":
                s, value = d.i_readback, {"index": args[0]}
            else:
                s, value = d.i_range, {"start": args[0], "count": args[1]}
            ctx.set(s.payload, value)
            ctx.set(s.valid, 1)
            await ctx.tick().until(s.ready)
            ctx.set(s.valid, 0)
            if kind == "range":
                self.range_times.append(self.cycle)

    async def _entries(self, ctx) -> None:  # type: ignore[no-untyped-def]
        s = self.dut.o_entry
        want = sum(op[2] for op in self.ops if op[0] == "range")
        p_long, long_len = self.out_stall_long
        stall = 0
        while len(self.entries) < want:
            if stall == 0 and self.rng.random() < p_long:
                stall = long_len
            ready = stall == 0 and self.rng.random() >= self.out_stall
            stall = max(0, stall - 1)
            ctx.set(s.ready, ready)
            _, _, valid, data, last = await ctx.tick().sample(
                s.valid, s.payload.data, s.payload.last
            )
            if valid and ready:
                self.entries.append((data, last))
                self.entry_times.append(self.cycle)
        ctx.set(s.ready, 0)

    async def _readbacks(self, ctx) -> None:  # type: ignore[no-untyped-def]
        s = self.dut.o_readback
        want = sum(op[0] == "readback" for op in self.ops)
        while len(self.readbacks) < want:
            ready = self.rng.random() >= self.out_stall
            ctx.set(s.ready, ready)
            _, _, valid, data = await ctx.tick().sample(s.valid, s.payload.data)
            if valid and ready:
                self.readbacks.append(data)
        ctx.set(s.ready, 0)

    def run(self, *, limit: int) -> None:
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
                        f"not done in {limit} clocks: {len(self.entries)} entries, "
                        f"{len(self.readbacks)} read-backs"
                    )
                await ctx.tick()
            await ctx.tick().repeat(10)

        for bench in (self._ops, self._entries, self._readbacks):
            self.sim.add_testbench(marked(bench), background=True)
        self.sim.add_testbench(finish)
        self.sim.run()

    def check_rules(self) -> None:
        assert self.model.violations == [], self.model.violations[:5]


def reference(ops: list[tuple]) -> tuple[list[tuple[int, int]], list[int]]:
    """The entries and read-backs the ops must give, from a dict of what was written."""
    memory: dict[int, int] = {}
    entries: list[tuple[int, int]] = []
    readbacks: list[int] = []
    for kind, *args in ops:
        if kind == "write":
            memory[args[0]] = args[1]
        elif kind == "readback":
            readbacks.append(memory[args[0]])
        else:
            entries += expected_entries(memory, *args)
    return entries, readbacks


def random_ops(rng: random.Random, entries: int, ranges: int) -> list[tuple]:
    """Every entry written (in random order), a few read back, then ranges of 0 .. 200
    entries with some rewrites and read-backs between them."""
    ops: list[tuple] = []
    order = list(range(entries))
    rng.shuffle(order)
    for i in order:
        ops.append(("write", i, rng.getrandbits(ENTRY_BITS)))
    ops += [("readback", rng.randrange(entries)) for _ in range(8)]
    for _ in range(ranges):
        r = rng.random()
        if r < 0.1:
            ops.append(("write", rng.randrange(entries), rng.getrandbits(ENTRY_BITS)))
        elif r < 0.2:
            ops.append(("readback", rng.randrange(entries)))
        ops.append(("range", *random_range(rng, entries, 200)))
    return ops


def crosses_row(store: SDRAMSynapseStore, geo: SDRAMGeometry, start: int, count: int) -> bool:
    first = store.word_address(start)
    return count > 0 and first // geo.columns != (first + 2 * count - 1) // geo.columns


# -- Amaranth's simulator ------------------------------------------------------------------------
@pytest.mark.parametrize("clk", [25e6, 50e6])
def test_write_readback_ranges(clk: float) -> None:
    rng = random.Random(int(clk) + 3)
    bench = Bench(clk, seed=int(clk) + 4)
    bench.op_pause = 0.1
    bench.out_stall = 0.25
    bench.out_stall_long = (0.005, 40)
    bench.ops = random_ops(rng, SMALL_ENTRIES, ranges=40)
    entries, readbacks = reference(bench.ops)
    ranges = [op[1:] for op in bench.ops if op[0] == "range"]
    assert sum(crosses_row(bench.dut, SMALL, *r) for r in ranges) > 20
    assert sum(count == 0 for _, count in ranges) >= 1
    bench.run(limit=60_000)
    bench.check_rules()
    assert bench.readbacks == readbacks
    assert bench.entries == entries


def test_empty_ranges_give_nothing() -> None:
    bench = Bench(25e6)
    bench.ops = [
        ("write", 5, 0x5A5A5A5),
        ("write", 6, 0x1234567),
        ("range", 3, 0),
        ("range", 5, 2),
        ("range", 0, 0),
        ("range", 6, 1),
        ("range", 6, 0),
        ("readback", 6),
    ]
    bench.run(limit=2000)
    bench.check_rules()
    assert bench.entries == [(0x5A5A5A5, 0), (0x1234567, 1), (0x1234567, 1)]
    assert bench.readbacks == [0x1234567]


def test_prefetch_one() -> None:
    """One range at a time: the same entries, only slower."""
    rng = random.Random(11)
    bench = Bench(25e6, prefetch=1, seed=12)
    bench.out_stall = 0.2
    memory = {i: rng.getrandbits(ENTRY_BITS) for i in range(SMALL_ENTRIES)}
    bench.preload(memory)
    bench.ops = [("range", *random_range(rng, SMALL_ENTRIES, 100)) for _ in range(20)]
    bench.run(limit=20_000)
    bench.check_rules()
    assert bench.entries == [e for _, s, c in bench.ops for e in expected_entries(memory, s, c)]


@pytest.mark.parametrize("entry_bits", [1, 16, 17, 32])
def test_entry_widths(entry_bits: int) -> None:
    """Entries of every width fill their words: all ones, all zeros and random ones."""
    rng = random.Random(entry_bits)
    entries = 64
    bench = Bench(25e6, entries=entries, base=62, entry_bits=entry_bits, seed=entry_bits)
    top = (1 << entry_bits) - 1
    values = [top, 0, *(rng.getrandbits(entry_bits) for _ in range(entries - 2))]
    bench.ops = [("write", i, v) for i, v in enumerate(values)]
    bench.ops += [("range", 0, entries), ("readback", 0), ("readback", 1)]
    bench.ops += [("range", *random_range(rng, entries, entries)) for _ in range(6)]
    entries_ref, readbacks = reference(bench.ops)
    bench.run(limit=5000)
    bench.check_rules()
    assert bench.entries == entries_ref
    assert bench.readbacks == readbacks == [top, 0]


def measure(clk: float, count: int, ranges: int, seed: int) -> float:
    """Entries per clock, from the first range taken to the last entry out, for ``ranges``
    ranges of ``count`` entries at random starts in a table of 2**20 entries on the full
    geometry, with an always-ready consumer and the datasheet's refresh."""
    rng = random.Random(seed)
    entries = 1 << 20
    bench = Bench(clk, geometry=FULL, entries=entries, base=1 << 22, seed=seed)
    bench.ops = [("range", rng.randrange(entries - count), count) for _ in range(ranges)]
    memory = {}
    for _, start, n in bench.ops:
        for i in range(start, start + n):
            memory.setdefault(i, rng.getrandbits(ENTRY_BITS))
    bench.preload(memory)
    bench.run(limit=10 * count * ranges)
    bench.check_rules()
    assert bench.entries == [e for _, s, c in bench.ops for e in expected_entries(memory, s, c)]
    return len(bench.entries) / (bench.entry_times[-1] - bench.range_times[0] + 1)


@pytest.mark.parametrize(
    ("clk", "count", "ranges", "floor"),
    [
        (25e6, 80, 100, 0.40),
        (50e6, 80, 100, 0.40),
        (25e6, 2000, 5, 0.45),
        (50e6, 2000, 5, 0.45),
    ],
)
def test_throughput(clk: float, count: int, ranges: int, floor: float) -> None:
    epc = measure(clk, count, ranges, seed=count + int(clk) // 1000)
    print(
        f"{count}-entry ranges at random starts, {clk / 1e6:.0f} MHz: "
        f"{epc:.3f} entries per clock ({epc / 0.5:.0%} of one per two clocks)"
    )
    assert epc >= floor


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_arguments_are_checked() -> None:
    geo, t = SMALL, FAST_START
    with pytest.raises(ValueError, match=r"entry_bits must be an integer from 1 to 32, not 33"):
        SDRAMSynapseStore(33, 16, geo, t, 25e6)
    with pytest.raises(ValueError, match=r"entries must be a power of two, not 12"):
        SDRAMSynapseStore(27, 12, geo, t, 25e6)
    with pytest.raises(TypeError, match=r"geometry must be an SDRAMGeometry"):
        SDRAMSynapseStore(27, 16, None, t, 25e6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"base must be an even non-negative word address"):
        SDRAMSynapseStore(27, 16, geo, t, 25e6, base=3)
    with pytest.raises(ValueError, match=r"2048 entries from word 2 do not fit"):
        SDRAMSynapseStore(27, 2048, geo, t, 25e6, base=2)
    with pytest.raises(ValueError, match=r"prefetch must be a positive integer, not 0"):
        SDRAMSynapseStore(27, 16, geo, t, 25e6, prefetch=0)
    gc.collect()


# -- Icarus and Verilator, on the Verilog SDRAM model ----------------------------------------------
RTL_CLK = 25e6
RTL_RANGES = 60
RTL_FANOUT_RANGES = 40


def payload_bits(port) -> int:  # type: ignore[no-untyped-def]
    return len(port.payload.as_value())


def rtl_store() -> SDRAMSynapseStore:
    return SDRAMSynapseStore(ENTRY_BITS, SMALL_ENTRIES, SMALL, FAST_START, RTL_CLK, base=SMALL_BASE)


def rtl_bench_verilog(store: SDRAMSynapseStore) -> str:
    """A top ``synapse_store_bench``: the store (module ``synapse_store``) on the model."""
    geo = SMALL
    clk_ps = round(1e12 / RTL_CLK)
    ports = []
    conns = []
    for name, out in (
        ("i_range", False),
        ("o_entry", True),
        ("i_write", False),
        ("i_readback", False),
        ("o_readback", True),
    ):
        width = payload_bits(getattr(store, name))
        d_in, d_out = ("output", "input") if out else ("input", "output")
        ports += [
            f"    {d_in} wire {name}__valid,",
            f"    {d_out} wire {name}__ready,",
            f"    {d_in} wire [{width - 1}:0] {name}__payload,",
        ]
        conns += [f".{name}__{s}({name}__{s})" for s in ("valid", "ready", "payload")]
    ports_text = "\n".join(ports)
    conns_text = ",\n        ".join(conns)
    a_pad = 13 - geo.a_bits
    return f"""`default_nettype none
module synapse_store_bench (
    input wire clk,
    input wire rst,
{ports_text}
    output wire ready,
    output wire violation,
    output wire [7:0] rule,
    output wire [63:0] cycle
);
    wire cke, cs_n, ras_n, cas_n, we_n, dq_oe, dq_drive;
    wire [1:0] ba, dqm, model_oe;
    wire [{geo.a_bits - 1}:0] ctrl_a;
    wire [15:0] dq_o, model_dq;
    wire [31:0] refreshes;
    synapse_store store (
        .clk(clk), .rst(rst),
        {conns_text},
        .ready(ready),
        .sdram__cke(cke), .sdram__cs_n(cs_n), .sdram__ras_n(ras_n), .sdram__cas_n(cas_n),
        .sdram__we_n(we_n), .sdram__ba(ba), .sdram__a(ctrl_a), .sdram__dqm(dqm),
        .sdram__dq_o(dq_o), .sdram__dq_oe(dq_oe), .sdram__dq_i(model_dq)
    );
    sdram_model #(
        .ROW_BITS({geo.row_bits}),
        .COL_BITS({geo.col_bits}),
        .CLK_PS({clk_ps}),
        .INIT_CYCLES({math.ceil(FAST_START.t_power_up * 1000 / clk_ps)}),
        .FATAL(0)
    ) model (
        .clk(clk), .cke(cke), .cs_n(cs_n), .ras_n(ras_n), .cas_n(cas_n), .we_n(we_n),
        .ba(ba), .a({{{a_pad}'d0, ctrl_a}}), .dqm(dqm), .dq_i(dq_o), .dq_oe_ctrl(dq_oe),
        .dq_o(model_dq), .dq_oe(model_oe), .dq_drive(dq_drive),
        .violation(violation), .rule(rule), .refreshes(refreshes), .cycle(cycle)
    );
endmodule
`default_nettype wire
"""


if cocotb is not None:

    def _seed() -> int:
        return int(os.environ.get("SPIKEFAB_SEED", "1"))

    def _bits(port, value: dict) -> int:  # type: ignore[no-untyped-def]
        return port.payload.shape().const(value).as_value().value

    @cocotb.test()
    async def store_on_model(dut) -> None:  # type: ignore[no-untyped-def]
        """Every entry written, a few read back, then random ranges with idle inputs and
        backpressure, against a dict; the model's ``violation`` stays low."""
        rng = random.Random(_seed())
        store = rtl_store()
        cocotb.start_soon(Clock(dut.clk, round(1e12 / RTL_CLK), unit="ps").start())
        dut.rst.value = 1
        for name in ("i_range", "i_write", "i_readback"):
            getattr(dut, f"{name}__valid").value = 0
        for _ in range(3):
            await FallingEdge(dut.clk)
        dut.rst.value = 0
        for _ in range(200):
            await FallingEdge(dut.clk)
            if int(dut.ready.value):
                break
        assert int(dut.ready.value), "ready did not rise"

        writes = StreamSource(dut, "i_write", pause=random_pauses(rng, 0.1))
        readback = StreamSource(dut, "i_readback")
        ranges = StreamSource(dut, "i_range", pause=random_pauses(rng, 0.1))
        mask = (1 << ENTRY_BITS) - 1
        entry_sink = StreamSink(
            dut,
            "o_entry",
            pause=random_stalls(rng, 0.25, 0.005, (20, 80)),
            decode=lambda b: (b & mask, b >> ENTRY_BITS),
        )
        rb_sink = StreamSink(dut, "o_readback")
        memory: dict[int, int] = {}
        order = list(range(SMALL_ENTRIES))
        rng.shuffle(order)
        for i in order:
            memory[i] = rng.getrandbits(ENTRY_BITS)
            writes.send_nowait(_bits(store.i_write, {"index": i, "data": memory[i]}))
        await writes.wait(limit=50_000)
        # read-backs: only the store's traffic, each waited for
        for _ in range(8):
            i = rng.randrange(SMALL_ENTRIES)
            await readback.send(_bits(store.i_readback, {"index": i}))
            assert await rb_sink.recv(limit=200) == memory[i]
        expected: list[tuple[int, int]] = []
        crossing = 0
        start_cycle = int(dut.cycle.value)
        for _ in range(RTL_RANGES):
            start, count = random_range(rng, SMALL_ENTRIES, 200)
            crossing += crosses_row(store, SMALL, start, count)
            ranges.send_nowait(_bits(store.i_range, {"start": start, "count": count}))
            expected += expected_entries(memory, start, count)
        got = []
        while len(got) < len(expected):
            got.append(await entry_sink.recv(limit=5000))
            if int(dut.violation.value):
                break
        await ReadOnly()
        assert int(dut.violation.value) == 0, f"the model flagged rule {int(dut.rule.value)}"
        assert got == expected
        assert crossing > RTL_RANGES // 2
        clocks = int(dut.cycle.value) - start_cycle
        dut._log.info(
            f"{len(expected)} entries of {RTL_RANGES} ranges in {clocks} clocks "
            f"(consumer ready 75% of clocks), {crossing} ranges crossing a row end"
        )

        # throughput: 80-entry ranges at random starts, the consumer always ready
        entry_sink.set_pause_generator(None)
        ranges.set_pause_generator(None)
        await FallingEdge(dut.clk)
        expected = []
        start_cycle = int(dut.cycle.value)
        for _ in range(RTL_FANOUT_RANGES):
            start, count = rng.randrange(SMALL_ENTRIES - 80), 80
            ranges.send_nowait(_bits(store.i_range, {"start": start, "count": count}))
            expected += expected_entries(memory, start, count)
        got = [await entry_sink.recv(limit=5000) for _ in expected]
        # recv returns at the falling edge after the entry's rising edge
        clocks = int(dut.cycle.value) - start_cycle - 1
        await ReadOnly()
        assert int(dut.violation.value) == 0, f"the model flagged rule {int(dut.rule.value)}"
        assert got == expected
        epc = len(expected) / clocks
        dut._log.info(f"80-entry ranges, 64-column rows: {epc:.3f} entries per clock")
        assert epc >= 0.40


SIMS = ("icarus", "verilator")


@pytest.mark.parametrize("sim", SIMS)
def test_store_on_model(sim: str) -> None:
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = ROOT / "sim_build" / "synapse_store" / sim
    store = rtl_store()
    verilog = write_verilog(store, "synapse_store", build / "synapse_store.v")
    bench = build / "synapse_store_bench.v"
    text = rtl_bench_verilog(store)
    if not bench.exists() or bench.read_text() != text:
        bench.write_text(text)
    run_cocotb(
        sim,
        [verilog, MODEL, bench],
        "synapse_store_bench",
        "test_synapse_store",
        test_dir=HERE,
        build_dir=build,
        testcase="store_on_model",
    )
