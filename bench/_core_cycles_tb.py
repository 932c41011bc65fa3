"""The cocotb side of ``bench/core_cycles.py``: runs the planned steps, reads the counters.

The plan (a JSON file named by ``SPIKEFAB_BENCH_PLAN``, written by ``core_cycles.py``)
holds the core's sizes and, for each network of the sweep, its memory image and the input
axon events of each measured step. For every step the testbench clears the core's counters
through the configuration port, offers the step's events back to back on ``i_events``
(``valid`` held high, a new event on every clock the core is ready), pulses ``step`` on the
clock after the last event was accepted, keeps ``o_spikes.ready`` high, waits for ``done``,
and reads ``EVENTS``, ``DELIVERY_CYCLES``, ``UPDATE_CYCLES``, ``SPIKES`` and ``STEPS``. It
also counts the clocks itself (from the first event offered to ``done``, inclusive) as a
cross-check of the counters. The results go to the JSON file named by
``SPIKEFAB_BENCH_RESULTS``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time
from spikefab.hdl.layouts import CoreConfig, CoreMem, CoreReg, pack

PERIOD_NS = 10
MAX_WAIT = 1_000_000  # cycles; a hang fails the run instead of stalling it
COUNTERS = (
    CoreReg.EVENTS,
    CoreReg.DELIVERY_CYCLES,
    CoreReg.UPDATE_CYCLES,
    CoreReg.SPIKES,
    CoreReg.STEPS,
)


class Driver:
    """Clock, reset, configuration access and the step sequence of one core."""

    def __init__(self, dut, cfg: CoreConfig):  # type: ignore[no-untyped-def]
        self.dut = dut
        self.cfg = cfg

    def now(self) -> int:
        """The current time in clock periods."""
        return round(get_sim_time("ns")) // PERIOD_NS

    async def start(self) -> None:
        d = self.dut
        cocotb.start_soon(Clock(d.clk, PERIOD_NS, unit="ns").start())
        d.rst.value = 1
        for sig in ("i_events__valid", "i_cfg__valid", "step", "o_cfg__ready"):
            getattr(d, sig).value = 0
        d.o_spikes__ready.value = 1  # spikes never back up: the update runs at full speed
        for _ in range(3):
            await FallingEdge(d.clk)
        d.rst.value = 0
        await FallingEdge(d.clk)

    async def _cfg_request(self, write: int, mem: CoreMem, addr: int, data: int) -> None:
        d, start = self.dut, self.now()
        d.i_cfg__payload.value = pack(
            self.cfg.cfg_request_layout,
            {"write": write, "mem": mem.value, "addr": addr, "data": data},
        )
        d.i_cfg__valid.value = 1
        while True:
            await ReadOnly()
            accepted = int(d.i_cfg__ready.value)
            await FallingEdge(d.clk)
            if accepted:
                break
            if self.now() - start > MAX_WAIT:
                raise AssertionError("the configuration port did not accept a request")
        d.i_cfg__valid.value = 0

    async def cfg_write(self, mem: CoreMem, addr: int, data: int) -> None:
        await self._cfg_request(1, mem, addr, data)

    async def cfg_read(self, mem: CoreMem, addr: int) -> int:
        d, start = self.dut, self.now()
        await self._cfg_request(0, mem, addr, 0)
        d.o_cfg__ready.value = 1
        while True:
            await ReadOnly()
            value = int(d.o_cfg__payload.value) if int(d.o_cfg__valid.value) else None
            await FallingEdge(d.clk)
            if value is not None:
                d.o_cfg__ready.value = 0
                return value
            if self.now() - start > MAX_WAIT:
                raise AssertionError("the configuration port did not reply")

    async def load(self, words: dict[str, list[int]]) -> None:
        """Write every word of the image (the other words keep what they hold)."""
        for name, ws in words.items():
            for addr, word in enumerate(ws):
                await self.cfg_write(CoreMem[name], addr, int(word))

    async def run_step(self, axons: list[int]) -> dict[str, int]:
        """Deliver ``axons`` back to back, run the update, and return the counters."""
        d = self.dut
        for reg in COUNTERS:
            await self.cfg_write(CoreMem.REGS, reg, 0)
        # One idle clock lets the last `i_cfg.valid = 0` reach the core. From then on, at a
        # falling edge, `i_events.ready` depends on nothing the loop below writes (`valid`,
        # the payload), so the value read there is the one the next rising edge sees.
        await FallingEdge(d.clk)
        t0 = self.now()
        i = 0
        while i < len(axons):
            d.i_events__payload.value = int(axons[i])
            d.i_events__valid.value = 1
            ready = int(d.i_events__ready.value)
            await FallingEdge(d.clk)
            i += ready
            if self.now() - t0 > MAX_WAIT:
                raise AssertionError("the core stopped accepting events")
        accept_cycles = self.now() - t0
        d.i_events__valid.value = 0
        d.step.value = 1
        await FallingEdge(d.clk)
        d.step.value = 0
        if not int(d.done.value):
            await RisingEdge(d.done)
        await FallingEdge(d.clk)  # the clock on which `done` was high ends here
        tb_cycles = self.now() - t0 + 1  # from the clock the first event is offered in
        out = {"axon_events": len(axons), "accept_cycles": accept_cycles, "tb_cycles": tb_cycles}
        for reg in COUNTERS:
            out[reg.name] = await self.cfg_read(CoreMem.REGS, reg)
        return out


@cocotb.test()
async def core_cycles(dut) -> None:  # type: ignore[no-untyped-def]
    plan = json.loads(Path(os.environ["SPIKEFAB_BENCH_PLAN"]).read_text())
    cfg = CoreConfig(**plan["config"])
    drv = Driver(dut, cfg)
    await drv.start()
    results = []
    for net in plan["networks"]:
        await drv.load(net["words"])
        for row in net["rows"]:
            for k, axons in enumerate(row["steps"]):
                res = await drv.run_step(axons)
                res.update(
                    network=net["name"],
                    row=row["name"],
                    step=k,
                    expected_events=row["expected_events"][k],
                )
                results.append(res)
        dut._log.info("network %s: %d rows", net["name"], len(net["rows"]))
    Path(os.environ["SPIKEFAB_BENCH_RESULTS"]).write_text(json.dumps(results))
