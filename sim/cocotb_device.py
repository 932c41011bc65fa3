"""The device in a cocotb simulation, driven by the unchanged host code.

:class:`CocotbTransport` carries the host link's bytes to the ``i_rx``/``o_tx`` streams of
``spikefab_top`` (``hdl/top.py``) inside cocotb; host code (``LinkDevice``, the runtime) runs
in a thread that :func:`cocotb.task.bridge` ties to the simulation. The cocotb test
``run_job`` here runs one network as ``spikefab compare --with icarus`` asks (the job comes
in the file named by ``SPIKEFAB_JOB``) and writes its spike file.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from spikefab.host.link import Transport

__all__ = ["CocotbTransport", "start"]


class CocotbTransport(Transport):
    """Bytes to and from the DUT's streams, for host code running in a bridge thread.

    With ``stress``, the DUT sees random idle cycles on ``i_rx`` and random backpressure
    on ``o_tx``.
    """

    def __init__(self, dut, stress: bool = False, seed: int = 0):  # type: ignore[no-untyped-def]
        self.dut = dut
        self.rx: deque[int] = deque()
        self.tx = bytearray()
        self.rng = random.Random(seed)
        self.idle = 0.3 if stress else 0.0
        self.bp = 0.3 if stress else 0.0

    async def pump(self) -> None:
        """Move bytes every clock cycle, forever (start it with ``cocotb.start_soon``)."""
        d = self.dut
        while True:
            await FallingEdge(d.clk)
            offer = bool(self.rx) and (not self.idle or self.rng.random() >= self.idle)
            d.i_rx__valid.value = int(offer)
            if offer:
                d.i_rx__payload.value = self.rx[0]
            ready = int(not self.bp or self.rng.random() >= self.bp)
            d.o_tx__ready.value = ready
            await ReadOnly()
            if offer and int(d.i_rx__ready.value):
                self.rx.popleft()
            if ready and int(d.o_tx__valid.value):
                self.tx.append(int(d.o_tx__payload.value))

    def write(self, data: bytes) -> None:
        self.rx.extend(data)

    def read(self, timeout: float) -> bytes:
        # simulated time stands still while the host thread runs: wait in clock cycles
        return self._read(max(100, int(timeout * 20_000)))

    @resume
    async def _read(self, cycles: int) -> bytes:
        for _ in range(cycles):
            if self.tx:
                break
            await ClockCycles(self.dut.clk, 1)
        out = bytes(self.tx)
        self.tx.clear()
        return out


async def start(dut, stress: bool = False, seed: int = 0) -> CocotbTransport:  # type: ignore[no-untyped-def]
    """Start the clock, reset the DUT, and return a running transport to it."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    if hasattr(dut, "sdram_clk"):  # the SDRAM's own clock, at twice the rate
        cocotb.start_soon(Clock(dut.sdram_clk, 5, unit="ns").start())
    dut.i_rx__valid.value = 0
    dut.o_tx__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 1)  # SimTop's reset is registered: it ends a cycle later
    transport = CocotbTransport(dut, stress, seed)
    cocotb.start_soon(transport.pump())
    return transport


@cocotb.test(skip="SPIKEFAB_JOB" not in os.environ)
async def run_job(dut) -> None:  # type: ignore[no-untyped-def]
    """Run the network of the job file on the DUT and write the spike file it names."""
    from spikefab.host.link import LinkDevice
    from spikefab.host.runtime import check_device, run_network
    from spikefab.mapping.image import load_image
    from spikefab.mapping.loader import load_text

    job = json.loads(Path(os.environ["SPIKEFAB_JOB"]).read_text())
    image = load_image(job["image"])
    net = load_text(image.network_yaml, source=job["network"], base=Path(job["network"]).parent)
    transport = await start(dut)

    @bridge
    def host() -> None:
        dev = LinkDevice(transport, timeout=600.0)
        check_device(dev, image.config)
        result = run_network(net, image, dev, int(job["steps"]), job["backend"])
        result.save(job["output"])

    await host()
