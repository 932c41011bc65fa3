"""The 8N1 UART (hdl/uart.py) at divisors 4, 7 and 16, all three in one design.

Each UART's ``tx`` is looped to its ``rx`` through an AND with a pin the testbench holds
high, or drives itself while ``tx`` is idle.

* Loopback: random bytes back to back must leave ``tx`` with exactly the waveform of 8N1
  at ``divisor`` cycles per bit (built here bit by bit) and come back on ``o_data``; then
  random bytes with random idle cycles, with random backpressure on ``o_data``.
* Framing: characters bit-banged on the pin with a stop bit at 0, and a break, are dropped
  and counted; the good characters around them are received.
* Baud mismatch: characters bit-banged back to back at a rate 3% too fast and 3% too
  slow (2% at divisor 4, see the tolerance in ``UARTRx``), at a random phase to the
  clock, are received.
* Overrun: with ``o_data`` held, the FIFO keeps its first ``depth`` bytes and counts the
  rest.
"""

from __future__ import annotations

import gc
import os
import random
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from spikefab.hdl.uart import RX_DEPTH, UART, UARTRx, UARTTx

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

DIVISORS = (4, 7, 16)
#: Rate mismatch each divisor is tested at (a fraction of the nominal bit time).
MISMATCH = {4: 0.02, 7: 0.03, 16: 0.03}
CLOCK_PS = 10_000

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, Timer, gather
    from cocotb.utils import get_sim_time
    from streams import StreamSink, StreamSource, random_pauses, random_stalls
except ImportError:
    cocotb = None


class UARTBench(wiring.Component):
    """A UART per divisor ``d``, ports ``u{d}_*``; its ``rx`` is ``tx & pin``."""

    def __init__(self) -> None:
        self._uarts = {d: UART(d) for d in DIVISORS}
        members = {}
        for d in DIVISORS:
            members |= {
                f"u{d}_i_data": In(stream.Signature(8)),
                f"u{d}_o_data": Out(stream.Signature(8)),
                f"u{d}_pin": In(1, init=1),
                f"u{d}_tx": Out(1, init=1),
                f"u{d}_framing_errors": Out(32),
                f"u{d}_overrun": Out(32),
            }
        super().__init__(members)

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        for d, uart in self._uarts.items():
            m.submodules[f"u{d}"] = uart
            wiring.connect(m, wiring.flipped(getattr(self, f"u{d}_i_data")), uart.i_data)
            wiring.connect(m, uart.o_data, wiring.flipped(getattr(self, f"u{d}_o_data")))
            m.d.comb += [
                uart.rx.eq(uart.tx & getattr(self, f"u{d}_pin")),
                getattr(self, f"u{d}_tx").eq(uart.tx),
                getattr(self, f"u{d}_framing_errors").eq(uart.framing_errors),
                getattr(self, f"u{d}_overrun").eq(uart.overrun),
            ]
        return m


def waveform(data: list[int], d: int) -> list[int]:
    """The line, one value per clock cycle, for ``data`` sent back to back."""
    line = []
    for byte in data:
        bits = [0, *((byte >> i) & 1 for i in range(8)), 1]
        line += [b for b in bits for _ in range(d)]
    return line


if cocotb is not None:

    class Ports:
        """The ports of one UART of the bench: ``Ports(dut, 4).tx`` is ``dut.u4_tx``."""

        def __init__(self, dut, d: int) -> None:  # type: ignore[no-untyped-def]
            self._dut, self._prefix, self.d = dut, f"u{d}_", d
            self.src = StreamSource(dut, f"u{d}_i_data")
            self.sink = StreamSink(dut, f"u{d}_o_data", running=False)

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            if name == "clk":
                return self._dut.clk
            return getattr(self._dut, self._prefix + name)

    def _seed() -> int:
        return int(os.environ.get("SPIKEFAB_SEED", "1"))

    async def _reset(dut) -> list[Ports]:  # type: ignore[no-untyped-def]
        """Start the clock, reset the bench with every input idle, return the UARTs' ports."""
        uarts = [Ports(dut, d) for d in DIVISORS]
        for u in uarts:
            u.i_data__payload.value = 0
            u.pin.value = 1
        cocotb.start_soon(Clock(dut.clk, CLOCK_PS, unit="ps").start())
        dut.rst.value = 1
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        for _ in range(4):  # the synchronizers see the idle line
            await FallingEdge(dut.clk)
        return uarts

    async def _drain(u: Ports, count: int, limit: int) -> list[int]:
        """Take up to ``count`` bytes from o_data, within ``limit`` cycles."""
        u.sink.set_pause_generator(None)
        u.sink.start()
        for _ in range(limit):
            await FallingEdge(u.clk)
            if len(u.sink.queue) >= count:
                break
        u.sink.stop()
        await FallingEdge(u.clk)
        return u.sink.take_all()[:count]

    async def _bit_bang(u: Ports, chars: list[tuple[int, int] | str], idle_bits: int) -> None:
        """Drive the pin with ``(byte, stop bit)`` characters or "break" (25 low bit times),
        each followed by ``idle_bits`` high bit times, in whole clock cycles."""
        for char in chars:
            if char == "break":
                bits = [0] * 25
            else:
                byte, stop = char
                bits = [0, *((byte >> i) & 1 for i in range(8)), stop]
            for b in [*bits, *[1] * idle_bits]:
                u.pin.value = b
                await ClockCycles(u.clk, u.d, FallingEdge)

    async def _loopback(u: Ports, rng: random.Random) -> None:
        d = u.d
        # back to back, no backpressure to speak of: the exact waveform
        data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(8)]
        u.sink.set_pause_generator(random_pauses(rng, 0.5))
        u.sink.start()
        for byte in data:
            u.src.send_nowait(byte)
        line: dict[int, int] = {}  # cycle -> tx
        after = 0
        while after < 3 * d:
            await ReadOnly()
            line[round(get_sim_time("ps")) // CLOCK_PS] = int(u.tx.value)
            await FallingEdge(u.clk)
            after = after + 1 if len(u.sink.queue) == len(data) else 0
        got = u.sink.take_all()
        starts = [t // CLOCK_PS for t in u.src.times]
        assert starts == [starts[0] + 10 * d * i for i in range(len(data))], (
            f"divisor {d}: bytes taken at cycles {starts}, not every {10 * d} cycles"
        )
        first = starts[0] + 1  # the start bit begins the cycle after the transfer
        expected = waveform(data, d)
        cycles = sorted(line)
        assert {line[c] for c in cycles if c < first} == {1}, f"divisor {d}: tx left idle early"
        sent = [line[c] for c in range(first, first + len(expected))]
        assert sent == expected, f"divisor {d}: tx waveform"
        rest = {line[c] for c in cycles if c >= first + len(expected)}
        assert rest == {1}, f"divisor {d}: tx not idle after"
        assert got == data, f"divisor {d}: received {got}, sent {data}"

        # random idle cycles between bytes and random backpressure
        data = [rng.randrange(256) for _ in range(12)]
        u.src.set_pause_generator(random_stalls(rng, 0.0, 0.5, (1, 25 * d)))
        for byte in data:
            u.src.send_nowait(byte)
        after = 0
        while after < 3 * d:
            await FallingEdge(u.clk)
            after = after + 1 if len(u.sink.queue) == len(data) else 0
        u.sink.stop()
        got = u.sink.take_all()
        assert got == data, f"divisor {d}: received {got}, sent {data}"
        assert int(u.framing_errors.value) == 0
        assert int(u.overrun.value) == 0

    @cocotb.test()
    async def loopback_random_bytes(dut) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(_seed())
        uarts = await _reset(dut)
        await gather(*(_loopback(u, random.Random(rng.random())) for u in uarts))

    async def _framing(u: Ports) -> None:
        chars: list[tuple[int, int] | str] = [
            (0x5A, 1),
            (0x3C, 0),  # stop bit 0: dropped
            (0xC3, 1),
            "break",  # one framing error
            (0x81, 1),
            (0x00, 0),  # ten low bits: dropped
            (0xFF, 1),
        ]
        await _bit_bang(u, chars, idle_bits=2)
        got = await _drain(u, 5, 10 * u.d)
        assert got == [0x5A, 0xC3, 0x81, 0xFF], f"divisor {u.d}: received {got}"
        assert int(u.framing_errors.value) == 3, f"divisor {u.d}"
        assert int(u.overrun.value) == 0

    @cocotb.test()
    async def framing_errors_are_counted(dut) -> None:  # type: ignore[no-untyped-def]
        uarts = await _reset(dut)
        await gather(*(_framing(u) for u in uarts))

    async def _mismatch(u: Ports, rng: random.Random) -> None:
        for m in (MISMATCH[u.d], -MISMATCH[u.d]):
            data = [rng.randrange(256) for _ in range(RX_DEPTH)]
            bit_ps = round(u.d * CLOCK_PS * (1 + m))
            await Timer(rng.randrange(1, CLOCK_PS), unit="ps")  # a random phase to the clock
            for byte in data:
                for b in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                    u.pin.value = b
                    await Timer(bit_ps, unit="ps")
            await ClockCycles(u.clk, 2 * u.d, FallingEdge)
            got = await _drain(u, len(data), 2 * len(data))
            assert got == data, f"divisor {u.d}, rate {1 + m:.2f}: received {got}, sent {data}"
            assert int(u.framing_errors.value) == 0, f"divisor {u.d}, rate {1 + m:.2f}"
            assert int(u.overrun.value) == 0

    @cocotb.test()
    async def baud_mismatch_is_tolerated(dut) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(_seed())
        uarts = await _reset(dut)
        await gather(*(_mismatch(u, random.Random(rng.random())) for u in uarts))

    async def _overrun(u: Ports, rng: random.Random) -> None:
        data = [rng.randrange(256) for _ in range(RX_DEPTH + 3)]
        for byte in data:  # o_data is not ready meanwhile
            await u.src.send(byte)
        await ClockCycles(u.clk, 12 * u.d, FallingEdge)
        assert int(u.overrun.value) == 3, f"divisor {u.d}"
        got = await _drain(u, len(data), 2 * len(data))
        assert got == data[:RX_DEPTH], f"divisor {u.d}: received {got}"
        assert int(u.framing_errors.value) == 0

    @cocotb.test()
    async def overrun_is_counted(dut) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(_seed())
        uarts = await _reset(dut)
        await gather(*(_overrun(u, random.Random(rng.random())) for u in uarts))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("cls", [UARTRx, UARTTx, UART])
def test_divisor_is_checked(cls: type) -> None:
    for bad in (3, 0, -16, 16.0, "16"):
        with pytest.raises(ValueError, match=r"divisor \(clock cycles per bit\) must be"):
            cls(bad)
    # the half-built components warn that they were never used: let them do it here
    gc.collect()


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_uart(sim: str) -> None:
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = ROOT / "sim_build" / "uart" / sim
    verilog = write_verilog(UARTBench(), "uart", build / "uart.v")
    run_cocotb(sim, [verilog], "uart", "test_uart", test_dir=HERE, build_dir=build)
