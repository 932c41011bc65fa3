"""Stream drivers shared by the cocotb testbenches: a source and a sink of Amaranth streams.

A port ``p`` of ``stream.Signature`` appears in the generated Verilog as ``p__valid``,
``p__ready`` and ``p__payload`` (contract: ``amaranth.lib.stream``; a word moves on a rising
edge where ``valid`` and ``ready`` are both high). :class:`StreamSource` drives ``valid`` and
``payload`` from a queue, :class:`StreamSink` drives ``ready`` and collects the words. Like
taxi's ``AxiStreamSource`` and ``AxiStreamSink``, the source holds ``valid`` low on the
cycles its *pause generator* says, and the sink holds ``ready`` low on the cycles its own
says: the idle cycles on an input and the backpressure on an output are separate,
replaceable generators (:func:`never`, :func:`random_pauses`, :func:`random_stalls`).

Both drivers write their signals just after a falling edge of the clock and sample the
handshake in the read-only phase before the next rising edge, so a testbench that writes
its other inputs the same way sees the same cycle as the drivers.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator

import cocotb
from cocotb.triggers import Event, FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

__all__ = ["StreamSink", "StreamSource", "never", "random_pauses", "random_stalls"]


def never() -> Iterator[bool]:
    """A pause generator that never pauses (``valid`` or ``ready`` as often as possible)."""
    while True:
        yield False


def random_pauses(rng: random.Random, p: float) -> Iterator[bool]:
    """Pause each cycle independently with probability ``p``."""
    while True:
        yield rng.random() < p


def random_stalls(
    rng: random.Random, p: float, p_stall: float, stall: tuple[int, int]
) -> Iterator[bool]:
    """Pause each cycle with probability ``p``, and now and then (probability ``p_stall``) for
    a stretch of ``stall[0] .. stall[1]`` cycles in a row."""
    while True:
        if rng.random() < p_stall:
            for _ in range(rng.randint(*stall)):
                yield True
        yield rng.random() < p


class _Port:
    def __init__(self, dut, name: str, clock) -> None:  # type: ignore[no-untyped-def]
        self.name = name
        self.clock = clock if clock is not None else dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.cycles = 0  # falling edges seen by the driver while it ran


class StreamSource(_Port):
    """Offer words on the stream port ``name`` of ``dut``, in order.

    Parameters
    ----------
    dut, name
        The design and the port's name (``"i_events"`` drives ``i_events__valid`` ...).
    clock
        The clock the port is synchronous to (``dut.clk`` by default).
    pause
        Idle cycles: ``valid`` stays low on the cycles it yields ``True`` (default :func:`never`).
    """

    def __init__(self, dut, name: str, clock=None, pause: Iterator[bool] | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(dut, name, clock)
        self.pause = pause if pause is not None else never()
        self.queue: deque[int] = deque()
        self.sent = 0  # words taken by the design
        self.times: list[int] = []  # when each was taken (simulation time, ps)
        self._wake = Event()
        self._taken = Event()
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def set_pause_generator(self, pause: Iterator[bool] | None) -> None:
        """Replace the idle-cycle generator (``None``: never idle)."""
        self.pause = pause if pause is not None else never()

    def send_nowait(self, word: int) -> None:
        """Queue ``word``; it is offered from the next falling edge on."""
        self.queue.append(int(word))
        self._wake.set()

    def clear(self) -> None:
        """Drop the words not taken yet (call it before the falling edge it should act at)."""
        self.queue.clear()

    def empty(self) -> bool:
        return not self.queue

    async def send(self, word: int, limit: int = 200_000) -> None:
        """Queue ``word`` and wait until every queued word has been taken."""
        self.send_nowait(word)
        await self.wait(limit)

    async def wait(self, limit: int = 200_000) -> None:
        """Wait until every queued word has been taken, for at most ``limit`` cycles; return
        at the falling edge after the last was taken.

        Raises
        ------
        AssertionError
            When the design has not taken them in time (it hangs).
        """
        start = self.cycles
        while self.queue:
            self._taken.clear()
            await self._taken.wait()
            if self.cycles - start > limit:
                raise AssertionError(f"{self.name}: a word was not taken in {limit} cycles")
        await FallingEdge(self.clock)  # out of the read-only phase: the caller may drive

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            self.cycles += 1
            if not self.queue:
                self.valid.value = 0
                self._wake.clear()
                await self._wake.wait()
                continue  # offer from the next falling edge on
            offer = not next(self.pause)
            self.valid.value = int(offer)
            if offer:
                self.payload.value = self.queue[0]
            await ReadOnly()
            if offer and int(self.ready.value):
                self.queue.popleft()
                self.sent += 1
                self.times.append(round(get_sim_time("ps")))
            self._taken.set()


class StreamSink(_Port):
    """Take words from the stream port ``name`` of ``dut`` into :attr:`queue`.

    Parameters
    ----------
    dut, name, clock
        As for :class:`StreamSource` (``"o_spikes"`` drives ``o_spikes__ready`` ...).
    pause
        Backpressure: ``ready`` stays low on the cycles it yields ``True`` (default
        :func:`never`).
    decode
        Turns the payload's bits into what is queued (default ``int``).

    The sink runs while it is started (:meth:`start`, the default at creation) and holds
    ``ready`` low while stopped.
    """

    def __init__(  # type: ignore[no-untyped-def]
        self,
        dut,
        name: str,
        clock=None,
        pause: Iterator[bool] | None = None,
        decode: Callable[[int], object] = int,
        running: bool = True,
    ) -> None:
        super().__init__(dut, name, clock)
        self.pause = pause if pause is not None else never()
        self.decode = decode
        self.queue: deque = deque()
        self.received = 0
        self._running = Event()
        self._got = Event()
        self.ready.value = 0
        if running:
            self._running.set()
        cocotb.start_soon(self._run())

    def set_pause_generator(self, pause: Iterator[bool] | None) -> None:
        """Replace the backpressure generator (``None``: always ready)."""
        self.pause = pause if pause is not None else never()

    def start(self) -> None:
        """Take words (``ready`` as the pause generator says) from the next falling edge on."""
        self._running.set()

    def stop(self) -> None:
        """Hold ``ready`` low from the next falling edge on."""
        self._running.clear()

    def take_all(self) -> list:
        """Return and forget the words received so far."""
        words = list(self.queue)
        self.queue.clear()
        return words

    async def recv(self, limit: int = 200_000):  # type: ignore[no-untyped-def]
        """Return the next word, waiting at most ``limit`` cycles for it (at the falling edge
        after it arrived, when it was not there already).

        Raises
        ------
        AssertionError
            When no word arrives in time.
        """
        start = self.cycles
        while not self.queue:
            self._got.clear()
            await self._got.wait()
            if self.cycles - start > limit:
                raise AssertionError(f"{self.name}: no word in {limit} cycles")
            if self.queue:
                await FallingEdge(self.clock)  # out of the read-only phase: the caller may drive
        return self.queue.popleft()

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.clock)
            self.cycles += 1
            if not self._running.is_set():
                self.ready.value = 0
                await self._running.wait()
                continue
            ready = not next(self.pause)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value):
                self.queue.append(self.decode(int(self.payload.value)))
                self.received += 1
            self._got.set()
