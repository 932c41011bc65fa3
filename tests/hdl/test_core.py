"""Regression of the neuron core (hdl/core.py) against the golden model, on Icarus and Verilator.

For every case (random networks and named corner cases, see ``core_cases.py``) the
testbench loads the core's memories through the configuration port, then runs step after
step: it delivers the step's input events (source spikes and the core's own spikes of the
previous step, in a shuffled order), pulses ``step``, collects the spikes, and reads back
``u``, ``v`` and ``ref`` of every neuron. Every spike and every state word must equal the
golden model's. Each case runs twice: with a steady input stream and an always-ready
output, and with random idle cycles on ``i_events`` and random backpressure on ``o_spikes``
and ``o_cfg``, from the shared stream drivers of ``streams.py``.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from pathlib import Path

import pytest
from spikefab.hdl.layouts import NEURON_STATE, CoreConfig, CoreMem, CoreReg, pack, unpack

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MAX_WAIT = 200_000  # cycles; a hang fails the test instead of stalling the run

# cocotb side ----------------------------------------------------------------------------------

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly
    from cocotb.utils import get_sim_time
    from streams import StreamSink, StreamSource, random_pauses, random_stalls
except ImportError:  # the pytest side reports the missing tool
    cocotb = None

PERIOD_NS = 10


class TB:
    """Clock, reset, and the core's streams on the shared drivers (``streams.py``).

    Under stress, ``i_events`` has random idle cycles, ``o_cfg`` random backpressure, and
    ``o_spikes`` random backpressure with now and then a stall long enough to fill the spike
    FIFO.
    """

    def __init__(self, dut, cfg: CoreConfig, stress: bool, seed: int):  # type: ignore[no-untyped-def]
        self.dut = dut
        self.cfg = cfg
        self.rng = random.Random(seed)
        gen = random.Random(seed + 1)
        self.idle = random_pauses(gen, 0.3) if stress else None
        self.events = StreamSource(dut, "i_events", pause=self.idle)
        self.requests = StreamSource(dut, "i_cfg")
        self.replies = StreamSink(dut, "o_cfg", pause=random_pauses(gen, 0.4) if stress else None)
        self.spikes = StreamSink(
            dut,
            "o_spikes",
            pause=random_stalls(gen, 0.4, 0.02, (20, 60)) if stress else None,
            running=False,
        )

    @property
    def cycles(self) -> int:
        return round(get_sim_time("ns")) // PERIOD_NS

    async def start(self) -> None:
        d = self.dut
        cocotb.start_soon(Clock(d.clk, PERIOD_NS, unit="ns").start())
        if hasattr(d, "sdram_clk"):  # an SDRAM on a clock of its own: twice the core's rate
            cocotb.start_soon(Clock(d.sdram_clk, PERIOD_NS / 2, unit="ns").start())
        d.rst.value = 1
        d.step.value = 0
        d.learn.value = 0
        await self.tick()
        await self.tick()
        d.rst.value = 0
        await self.tick()

    async def tick(self) -> None:
        """Advance to the next falling edge; inputs written after it apply from there on."""
        await FallingEdge(self.dut.clk)

    def _request(self, write: int, mem: CoreMem, addr: int, data: int) -> int:
        fields = {"write": write, "mem": mem.value, "addr": addr, "data": data}
        return pack(self.cfg.cfg_request_layout, fields)

    async def cfg_write(self, mem: CoreMem, addr: int, data: int) -> None:
        await self.requests.send(self._request(1, mem, addr, data), limit=MAX_WAIT)

    async def cfg_read(self, mem: CoreMem, addr: int) -> int:
        await self.requests.send(self._request(0, mem, addr, 0), limit=MAX_WAIT)
        return await self.replies.recv(limit=MAX_WAIT)

    async def load(self, words: dict) -> None:
        """Write every word of every memory (zero where the image has none) and NOW = 0."""
        for mem in (CoreMem.STATE, CoreMem.PARAMS, CoreMem.RING, CoreMem.AXONS, CoreMem.SYNAPSES):
            ws = words.get(mem)
            ws = [] if ws is None else ws
            for addr in range(self.cfg.depth_of(mem)):
                word = int(ws[addr]) if addr < len(ws) else 0
                self.requests.send_nowait(self._request(1, mem, addr, word))
        self.requests.send_nowait(self._request(1, CoreMem.REGS, CoreReg.NOW, 0))
        await self.requests.wait(limit=MAX_WAIT)

    async def deliver(self, axons: list[int]) -> None:
        for a in axons:
            self.events.send_nowait(int(a))
        await self.events.wait(limit=MAX_WAIT)

    async def update(self) -> list[int]:
        """Pulse ``step`` and collect the spikes until ``done``.

        From the ``step`` cycle until ``done`` an event of the next step waits on
        ``i_events``: the core must not take it (contract 6.3).
        """
        d, start = self.dut, self.cycles
        self.events.set_pause_generator(None)
        self.events.send_nowait(0)
        self.spikes.start()
        d.step.value = 1
        while True:
            await ReadOnly()
            assert not int(d.i_events__ready.value), (
                "the core took an event between `step` and `done`"
            )
            finished = int(d.done.value)
            if finished:
                self.events.clear()  # before the falling edge: it is not offered after `done`
            await self.tick()
            d.step.value = 0
            if finished:
                break
            if self.cycles - start > MAX_WAIT:
                raise AssertionError(f"core hung: the update did not finish in {MAX_WAIT} cycles")
        self.spikes.stop()
        self.events.set_pause_generator(self.idle)
        return self.spikes.take_all()


if cocotb is not None:

    def _case_names() -> list[str]:
        manifest = os.environ.get("SPIKEFAB_CORE_MANIFEST")
        if not manifest:
            return ["(none)"]
        return list(json.loads(Path(manifest).read_text())["cases"])

    @cocotb.test()
    @cocotb.parametrize(case=_case_names(), stress=[False, True])
    async def core_matches_golden(dut, case: str, stress: bool) -> None:  # type: ignore[no-untyped-def]
        from core_cases import load_case

        manifest = json.loads(Path(os.environ["SPIKEFAB_CORE_MANIFEST"]).read_text())
        cfg = CoreConfig(**manifest["config"])
        c = load_case(Path(manifest["cases"][case]))
        tb = TB(dut, cfg, stress, seed=zlib.crc32(f"{case} {stress}".encode()))
        await tb.start()
        await tb.load(c["words"])
        # a sample of every table read back as written
        for mem in (CoreMem.PARAMS, CoreMem.AXONS, CoreMem.SYNAPSES):
            ws = c["words"].get(mem)
            for addr in tb.rng.sample(range(cfg.depth_of(mem)), 8):
                want = int(ws[addr]) if ws is not None and addr < len(ws) else 0
                got = await tb.cfg_read(mem, addr)
                assert got == want, f"{case}: {mem.name}[{addr}] reads {got:#x}, wrote {want:#x}"
        neuron_axon = c["neuron_axon"]
        axon_words = c["words"][CoreMem.AXONS]
        axon_count = [unpack(cfg.axon_layout, int(w))["count"] for w in axon_words]
        events = n_spikes = 0
        prev: list[int] = []
        for t in range(len(c["u"])):
            axons = list(c["inputs_per_step"][t]) + [
                int(neuron_axon[n]) for n in prev if neuron_axon[n] >= 0
            ]
            tb.rng.shuffle(axons)  # delivery order must not matter (contract 3.3)
            await tb.deliver(axons)
            spikes = await tb.update()
            want = [int(x) for x in c["spikes_per_step"][t]]
            missing, extra = sorted(set(want) - set(spikes)), sorted(set(spikes) - set(want))
            assert spikes == want, (
                f"{case}: step {t}: spikes {spikes} != golden {want} "
                f"(missing {missing}, extra {extra})"
            )
            for n in range(c["u"].shape[1]):
                got = unpack(NEURON_STATE, await tb.cfg_read(CoreMem.STATE, n))
                exp = {"u": int(c["u"][t, n]), "v": int(c["v"][t, n]), "ref": int(c["ref"][t, n])}
                assert got == exp, f"{case}: step {t}: neuron {n}: state {got} != golden {exp}"
            # the counters and NOW (contract 6.1)
            events += sum(int(axon_count[a]) for a in axons)
            n_spikes += len(spikes)
            regs = {
                r: await tb.cfg_read(CoreMem.REGS, r)
                for r in (CoreReg.NOW, CoreReg.EVENTS, CoreReg.SPIKES, CoreReg.STEPS)
            }
            want_regs = {
                CoreReg.NOW: (t + 1) % cfg.delay_slots,
                CoreReg.EVENTS: events,
                CoreReg.SPIKES: n_spikes,
                CoreReg.STEPS: t + 1,
            }
            assert regs == want_regs, f"{case}: step {t}: registers {regs} != {want_regs}"
            prev = spikes
        dut._log.info(
            "%s (stress=%s): %d steps, %d spikes, %d cycles",
            case,
            stress,
            len(c["u"]),
            int(c["spike_counts"].sum()),
            tb.cycles,
        )


# pytest side ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg_name", "banks"), [("n16d4", "merged"), ("n64d16", "dense"), ("n64d16", "merged")]
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core(sim: str, cfg_name: str, banks: str) -> None:
    """Both memory arrangements: the iCE40's merged banks and the dense memories."""
    from core_cases import run_regression

    build = ROOT / "sim_build" / f"core_{cfg_name}_{banks}" / sim
    run_regression(sim, cfg_name, build, merged_banks=banks == "merged")


@pytest.mark.parametrize(
    ("cfg_name", "clk_mhz", "domain"),
    [("n16d4", 25, "sync"), ("n64d16", 100, "sync"), ("n64d16", 50, "sdram")],
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core_sdram(sim: str, cfg_name: str, clk_mhz: int, domain: str) -> None:
    """The synapse table in SDRAM, on the SDRAM model (which fails the run on any timing
    rule broken): every spike, state word and counter equal to golden. At 100 MHz a refresh
    is due every 780 clocks, so refreshes interrupt ranges often; in domain ``sdram`` the
    SDRAM runs at twice the core's clock, across clock-domain-crossing FIFOs."""
    from core_cases import run_regression

    build = ROOT / "sim_build" / f"core_{cfg_name}_sdram_{clk_mhz}_{domain}" / sim
    run_regression(sim, cfg_name, build, sdram_clk=clk_mhz * 1e6, sdram_domain=domain)
