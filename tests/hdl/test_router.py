"""The router (hdl/router.py) under random multicast traffic with random backpressure.

Random route tables (fan-out 0 to 6, to any core and to the host) are written through the
configuration port and read back; then random spikes from every core and injected sources
arrive with random idle cycles while every output applies random backpressure. Every
expected event must arrive exactly once at its destination, and nothing else. The streams
are driven by the shared drivers of ``streams.py``.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest
from spikefab.hdl.layouts import CoreConfig, SystemConfig, SystemMem, pack

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

CONFIG = SystemConfig(
    cores=3,
    core=CoreConfig(neurons=16, axons=32, synapses=64, delay_slots=4),
    sources=8,
    route_entries=512,
)

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly
    from streams import StreamSink, StreamSource, random_pauses
except ImportError:
    cocotb = None


def random_tables(rng: random.Random, cfg: SystemConfig) -> tuple[list, list]:
    """Route pointers and entries: each id gets 0..6 entries, to cores or the host."""
    pointers, entries = [], []
    for _ in range(cfg.pointer_depth):
        count = rng.choice([0, 1, 1, 2, 3, 6])
        if len(entries) + count > cfg.route_entries:
            count = 0
        start = len(entries) if count else 0
        for _ in range(count):
            entries.append((rng.randrange(cfg.cores + 1), rng.randrange(cfg.core.axons)))
        pointers.append((start, count))
    return pointers, entries


if cocotb is not None:

    @cocotb.test()
    @cocotb.parametrize(stress=[False, True])
    async def router_delivers_every_event_once(dut, stress: bool) -> None:  # type: ignore[no-untyped-def]
        cfg = CONFIG
        rng = random.Random(int(os.environ.get("SPIKEFAB_SEED", "1")) + stress)
        idle, bp = (0.4, 0.5) if stress else (0.0, 0.0)
        C, N = cfg.cores, cfg.core.neurons
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        outs = [f"o_events__{k}" for k in range(C)] + ["o_host"]
        ins = [f"i_spikes__{k}" for k in range(C)] + ["i_inject"]
        requests = StreamSource(dut, "i_cfg")
        replies = StreamSink(dut, "o_cfg")
        sinks = [
            StreamSink(dut, name, pause=random_pauses(random.Random(rng.random()), bp))
            for name in outs
        ]
        sources = [
            StreamSource(dut, name, pause=random_pauses(random.Random(rng.random()), idle))
            for name in ins
        ]
        dut.inject_en.value = 1
        dut.rst.value = 1
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

        req_layout = dut_req_layout(cfg)

        async def cfg_access(write: int, mem: SystemMem, addr: int, data: int) -> int | None:
            fields = {"write": write, "mem": mem.value, "addr": addr, "data": data}
            await requests.send(pack(req_layout, fields))
            return None if write else await replies.recv()

        pointers, entries = random_tables(rng, cfg)
        pl, el = cfg.route_pointer_layout, cfg.route_entry_layout
        for i, (start, count) in enumerate(pointers):
            await cfg_access(
                1, SystemMem.ROUTE_POINTERS, i, pack(pl, {"start": start, "count": count})
            )
        for i, (dest, axon) in enumerate(entries):
            await cfg_access(1, SystemMem.ROUTE_ENTRIES, i, pack(el, {"dest": dest, "axon": axon}))
        for i in rng.sample(range(len(pointers)), 10):
            got = await cfg_access(0, SystemMem.ROUTE_POINTERS, i, 0)
            assert got == pack(pl, dict(zip(("start", "count"), pointers[i], strict=True)))
        for i in rng.sample(range(len(entries)), 10):
            got = await cfg_access(0, SystemMem.ROUTE_ENTRIES, i, 0)
            assert got == pack(el, dict(zip(("dest", "axon"), entries[i], strict=True)))

        # traffic: 300 random spikes per input
        queues = [[rng.randrange(N) for _ in range(300)] for _ in range(C)]
        queues.append([rng.randrange(cfg.sources) for _ in range(300)])
        expected: list[Counter] = [Counter() for _ in range(C + 1)]
        for k, q in enumerate(queues):
            for x in q:
                idx = k * N + x if k < C else C * N + x
                start, count = pointers[idx]
                for dest, axon in entries[start : start + count]:
                    expected[dest][axon if dest < C else idx] += 1
        for source, q in zip(sources, queues, strict=True):
            for x in q:
                source.send_nowait(x)
        quiet, moved = 0, -1
        while quiet < 50:
            await ReadOnly()
            busy = int(dut.busy.value)
            await FallingEdge(dut.clk)
            now = sum(s.sent for s in sources) + sum(s.received for s in sinks)
            done = all(s.empty() for s in sources)
            quiet = quiet + 1 if (done and now == moved and not busy) else 0
            moved = now
        for d, sink in enumerate(sinks):
            name = f"core {d}" if d < C else "host"
            got = Counter(sink.take_all())
            assert got == expected[d], (
                f"{name}: missing {expected[d] - got}, extra {got - expected[d]}"
            )
        total = sum(sum(c.values()) for c in expected)
        assert int(dut.events.value) == total
        dut._log.info("%d events routed, %d stall cycles", total, int(dut.stalls.value))


def dut_req_layout(cfg: SystemConfig):  # type: ignore[no-untyped-def]
    from spikefab.hdl.router import Router

    return Router(cfg).i_cfg.payload.shape()


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_router(sim: str) -> None:
    from spikefab.hdl.router import Router
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = ROOT / "sim_build" / "router" / sim
    verilog = write_verilog(Router(CONFIG), "router", build / "router.v")
    run_cocotb(sim, [verilog], "router", "test_router", test_dir=HERE, build_dir=build)
