"""The host side of the link: transports, and a device spoken to in frames.

:class:`LinkDevice` speaks the protocol of ``docs/contract.md`` section 8 over any
:class:`Transport`: a pipe to the Verilator simulation, a serial port to a board, or a
pseudo-terminal in tests. Every wait has a deadline; a dead or garbled stream ends in a
:class:`LinkError` that says what was expected, never in a hang.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence

from spikefab.hdl.layouts import SystemConfig, SystemMem, SystemReg
from spikefab.hdl.protocol import (
    MAX_BODY,
    REPLIES,
    REQUESTS,
    STATUS_REGS,
    STEP_MARK,
    DeviceError,
    DeviceInfo,
    ErrorCode,
    Frame,
    FrameDecoder,
    LinkError,
    Op,
    Target,
    encode_frame,
    word_size,
)

__all__ = [
    "CountingTransport",
    "DeviceError",
    "DeviceInfo",
    "LinkDevice",
    "LinkError",
    "LinkTimeoutError",
    "PipeTransport",
    "SerialTransport",
    "Transport",
]


class LinkTimeoutError(LinkError):
    """No (complete) reply arrived in time."""


class Transport(ABC):
    """A byte stream to a device.

    ``send_ahead`` is how many bytes of requests may be on their way before their replies
    (contract 8.3): 0 for a stream without flow control (a UART), where a request is sent
    only after the final reply of the one before.
    """

    send_ahead: int = 0

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send bytes."""

    @abstractmethod
    def read(self, timeout: float) -> bytes:
        """Return the bytes available, waiting up to ``timeout`` s for at least one.

        Returns ``b""`` on timeout. Raises :class:`LinkError` when the stream has ended.
        """

    def close(self) -> None:
        """Release the stream."""
        self.closed = True

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CountingTransport(Transport):
    """Another transport, counting the bytes that go each way (``sent``, ``received``)."""

    def __init__(self, inner: Transport):
        self.inner = inner
        self.send_ahead = inner.send_ahead
        self.sent = 0
        self.received = 0

    def write(self, data: bytes) -> None:
        self.sent += len(data)
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        self.received += len(data)
        return data

    def close(self) -> None:
        self.inner.close()


class PipeTransport(Transport):
    """The stdin/stdout of a subprocess (the Verilator harness).

    A pipe holds what the device has not read yet, so requests may be sent ahead.
    """

    send_ahead = 1 << 15

    def __init__(self, proc: subprocess.Popen, name: str = "the simulation"):
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._name = name
        self._out = proc.stdin
        self._in = proc.stdout.fileno()
        os.set_blocking(self._in, False)

    def write(self, data: bytes) -> None:
        try:
            self._out.write(data)
            self._out.flush()
        except BrokenPipeError:
            raise LinkError(f"{self._name} has exited ({self._exit_text()})") from None

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._in], [], [], max(0.0, timeout))
        if not ready:
            if self._proc.poll() is not None:
                raise LinkError(f"{self._name} has exited ({self._exit_text()})")
            return b""
        try:
            data = os.read(self._in, 1 << 16)
        except BlockingIOError:
            return b""
        if not data:
            raise LinkError(f"{self._name} closed its output ({self._exit_text()})")
        return data

    def _exit_text(self) -> str:
        code = self._proc.poll()
        return "still running" if code is None else f"exit status {code}"

    def close(self) -> None:
        try:
            if self._proc.stdin:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class SerialTransport(Transport):
    """A serial port (a board's UART), through pyserial."""

    def __init__(self, port: str, baudrate: int = 3_000_000):
        try:
            import serial
        except ImportError:
            raise LinkError("the serial backend needs pyserial: pip install pyserial") from None
        try:
            self._port = serial.Serial(port, baudrate=baudrate, timeout=0)
        except (OSError, serial.SerialException) as e:
            raise LinkError(f"cannot open serial port {port!r}: {e}") from None
        self._name = port
        self._set_low_latency()

    def _set_low_latency(self) -> None:
        # FTDI adapters wait up to 16 ms (their latency timer) before sending a partial
        # buffer; 1 ms keeps a request/reply round trip short (Linux sysfs knob).
        name = os.path.basename(os.path.realpath(self._name))
        knob = f"/sys/bus/usb-serial/devices/{name}/latency_timer"
        try:
            with open(knob, "w") as f:
                f.write("1")
        except OSError:
            pass

    def write(self, data: bytes) -> None:
        self._port.write(data)
        self._port.flush()

    def read(self, timeout: float) -> bytes:
        fd = self._port.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            return b""
        return self._port.read(self._port.in_waiting or 1)

    def close(self) -> None:
        self._port.close()


class LinkDevice:
    """A device spoken to in frames over a transport.

    Parameters
    ----------
    transport
        The byte stream.
    timeout
        Seconds to wait for a reply (and, during a run, between two frames).
    retries
        How often an idempotent request is sent again after a corrupt reply or an
        R_ERROR for a corrupt request.
    """

    def __init__(self, transport: Transport, timeout: float = 5.0, retries: int = 2):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self._decoder = FrameDecoder()
        self._pending: deque[Frame] = deque()
        # requests sent whose replies are not all in: (wire bytes, reply handler, what)
        self._inflight: deque[tuple[int, Callable[[Frame], bool], str]] = deque()
        self._inflight_bytes = 0
        self._step: int | None = None  # the number of the next step, once known
        self._info: DeviceInfo | None = None  # the device's R_INFO, once asked
        self._config: SystemConfig | None = None  # its sizes, for the words' sizes
        self._word_sizes: dict[tuple[int, int], int] = {}  # (target, mem): bytes per word
        self.transport.write(bytes([0xC0]))  # flush any partial frame on the line

    # frames ------------------------------------------------------------------------------
    def send(self, body: bytes) -> None:
        """Send one frame."""
        self.transport.write(encode_frame(body))

    def receive(self, what: str, timeout: float | None = None) -> Frame:
        """Return the next frame, waiting up to ``timeout`` s.

        Raises
        ------
        LinkTimeoutError
            Naming ``what`` was awaited.
        """
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeoutError(
                    f"no reply to {what} within {limit:g} s: is the device running and "
                    "connected, and the bitstream the one this spikefab builds?"
                )
            data = self.transport.read(min(left, 0.5))
            self._pending.extend(self._decoder.feed(data))
        return self._pending.popleft()

    def request(self, body: bytes, what: str, expect: Op, idempotent: bool = True) -> Frame:
        """Send a request and return its final reply, retrying an idempotent one.

        The replies of every request sent ahead are taken first.
        """
        self.sync()
        attempts = 1 + (self.retries if idempotent else 0)
        last: Exception | None = None
        for _ in range(attempts):
            self.send(body)
            try:
                reply = self.receive(what)
            except LinkTimeoutError as e:
                last = e
                self._resync()
                continue
            if reply.error is not None:
                last = LinkError(f"corrupt reply to {what} ({reply.error.name})")
                self._resync()
                continue
            if reply.op == Op.R_ERROR:
                code, op = REPLIES[Op.R_ERROR].unpack(reply.body)[0]
                if code in (ErrorCode.CRC, ErrorCode.ESCAPE, ErrorCode.TRUNCATED):
                    last = DeviceError(code, op, what)
                    continue
                raise DeviceError(code, op, what)
            if reply.op != expect:
                raise LinkError(
                    f"unexpected reply 0x{reply.op:02x} to {what}; expected {expect.name}"
                )
            return reply
        assert last is not None
        raise last

    def _resync(self) -> None:
        """Drop what is in flight: wait for the line to go quiet, then flush."""
        deadline = time.monotonic() + min(self.timeout, 1.0)
        while time.monotonic() < deadline:
            if not self.transport.read(0.05):
                break
        self._pending.clear()
        self._decoder = FrameDecoder()
        self.transport.write(bytes([0xC0]))

    # requests sent ahead (contract 8.3) --------------------------------------------------
    def submit(self, body: bytes, what: str, handler: Callable[[Frame], bool]) -> None:
        """Send a request without waiting for its replies, as far as the transport allows.

        ``handler`` gets each reply frame of the request in turn and returns True at the
        final one. Replies are taken in order whenever the bytes in flight would exceed the
        transport's ``send_ahead``, and by :meth:`sync`.
        """
        wire = encode_frame(body)
        while self._inflight and self._inflight_bytes + len(wire) > self.transport.send_ahead:
            self._complete_one()
        self.transport.write(wire)
        self._inflight.append((len(wire), handler, what))
        self._inflight_bytes += len(wire)

    @property
    def in_flight(self) -> int:
        """Requests sent ahead whose final replies have not been taken."""
        return len(self._inflight)

    def sync(self, keep: int = 0) -> None:
        """Wait for the final replies of every request sent ahead, or of all but the last
        ``keep`` of them.

        Raises
        ------
        LinkError
            The first failure among them (the rest are then abandoned).
        """
        while len(self._inflight) > keep:
            self._complete_one()

    def _complete_one(self) -> None:
        n, handler, what = self._inflight[0]
        try:
            while not handler(self.receive(what)):
                pass
        except BaseException:
            self._inflight.clear()
            self._inflight_bytes = 0
            self._step = None  # the runs sent may not have run: ask the device
            raise
        self._inflight.popleft()
        self._inflight_bytes -= n

    @staticmethod
    def _expect(op: Op, what: str, then: Callable[[Frame], None] | None = None):  # type: ignore[no-untyped-def]
        """A handler for a request with one final reply ``op``."""

        def handle(frame: Frame) -> bool:
            if frame.error is not None:
                raise LinkError(f"corrupt reply to {what} ({frame.error.name})")
            if frame.op == Op.R_ERROR:
                code, bad = REPLIES[Op.R_ERROR].unpack(frame.body)[0]
                raise DeviceError(code, bad, what)
            if frame.op != op:
                raise LinkError(f"unexpected reply 0x{frame.op:02x} to {what}; expected {op.name}")
            if then is not None:
                then(frame)
            return True

        return handle

    # requests ----------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        """Return the device's sizes and versions."""
        reply = self.request(REQUESTS[Op.INFO].pack(), "INFO", Op.R_INFO)
        self._info = DeviceInfo.from_body(reply.body)
        self._config = self._info.config()
        return self._info

    @property
    def counts_cycles(self) -> bool:
        """The device has its statistics counters, STEP_CYCLES among them (asks INFO once)."""
        if self._info is None:
            self.info()
        assert self._info is not None
        return self._info.stats

    def word_size(self, target: int, mem: int) -> int:
        """Bytes of a word of ``mem`` of ``target`` on the link (asks INFO once)."""
        size = self._word_sizes.get((target, mem))
        if size is None:
            if self._config is None:
                self.info()
            assert self._config is not None
            size = self._word_sizes[target, mem] = word_size(self._config, target, mem)
        return size

    def _note_step(self, target: int, mem: int, addr: int, words: Sequence[int]) -> None:
        """Follow writes to the STEP register: a run's replies count steps from it."""
        system_regs = target == Target.SYSTEM and mem == SystemMem.REGS.value
        if system_regs and addr <= SystemReg.STEP < addr + len(words):
            self._step = int(words[SystemReg.STEP - addr])

    def write(
        self, target: int, mem: int, addr: int, words: Sequence[int], wait: bool = True
    ) -> None:
        """Write consecutive words of a memory, in as many frames as needed.

        With ``wait`` false the frames are sent ahead (see :meth:`submit`) and a refusal
        is raised by a later request or :meth:`sync`.
        """
        msg = REQUESTS[Op.WRITE]
        size = self.word_size(target, mem)
        per = (MAX_BODY - msg.header_size) // size
        self._note_step(target, mem, addr, words)
        for i in range(0, len(words), per):
            chunk = [int(w) for w in words[i : i + per]]
            body = msg.pack(target, mem, addr + i, len(chunk), items=chunk, size=size)
            self._acked(body, f"WRITE target {target} mem {mem} addr {addr + i}", wait)
        if wait:
            self.sync()

    def clear(self, target: int, mem: int, addr: int, count: int, wait: bool = True) -> None:
        """Write ``count`` zero words of a memory from ``addr`` on (CLEAR).

        ``wait`` as for :meth:`write`.
        """
        msg = REQUESTS[Op.CLEAR]
        per = (1 << (8 * msg.field("count").size)) - 1
        self._note_step(target, mem, addr, [0] * min(count, SystemReg.STEP + 1))
        for i in range(0, count, per):
            body = msg.pack(target, mem, addr + i, min(per, count - i))
            self._acked(body, f"CLEAR target {target} mem {mem} addr {addr + i}", wait)
        if wait:
            self.sync()

    def _acked(self, body: bytes, what: str, wait: bool) -> None:
        """Send a request answered by R_ACK: at once and retried where nothing may be sent
        ahead (a UART), else queued with the requests in flight."""
        if wait and self.transport.send_ahead == 0:
            self.request(body, what, Op.R_ACK)
        else:
            self.submit(body, what, self._expect(Op.R_ACK, what))

    def read(
        self,
        target: int,
        mem: int,
        addr: int,
        count: int,
        then: Callable[[list[int]], None] | None = None,
    ) -> list[int] | None:
        """Read consecutive words of a memory.

        With ``then``, the read is sent ahead and ``then(words)`` is called once the words
        are in (by :meth:`sync` at the latest); nothing is returned.
        """
        msg = REQUESTS[Op.READ]
        per = REPLIES[Op.R_DATA].max_items
        size = self.word_size(target, mem)
        out: list[int] = []
        parts = [(i, min(per, count - i)) for i in range(0, count, per)]
        for k, (i, n) in enumerate(parts):
            body = msg.pack(target, mem, addr + i, n)
            what = f"READ target {target} mem {mem} addr {addr + i}"

            def take(frame: Frame, n: int = n, last: bool = k == len(parts) - 1) -> None:
                words = REPLIES[Op.R_DATA].unpack(frame.body, size)[1]
                if len(words) != n:
                    raise LinkError(f"R_DATA of {len(words)} words; expected {n}")
                out.extend(words)
                if last and then is not None:
                    then(out)

            if then is None:
                take(self.request(body, what, Op.R_DATA))
            else:
                self.submit(body, what, self._expect(Op.R_DATA, what, take))
        if then is None:
            return out
        if not parts:
            then(out)
        return None

    def inject(self, sources: Sequence[int]) -> None:
        """Queue sources that spike in the next step run."""
        body = REQUESTS[Op.INJECT].pack(len(sources), items=[int(s) for s in sources])
        self.request(body, f"INJECT of {len(sources)} sources", Op.R_ACK, idempotent=False)

    def run(
        self,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None = None,
        inputs: Sequence[Sequence[int]] = (),
        wait: bool = True,
    ) -> None:
        """Run ``steps`` steps; call ``on_spikes(step, ids)`` and ``on_step(step, n)``.

        ``on_step`` is called once all ``n`` spikes of a step are in. ``inputs[k]`` are
        the sources injected before the k-th step of the run (contract 8.2, RUN). With
        ``wait`` false the RUN frames are sent ahead and the callbacks are called as
        their replies come in (by :meth:`sync` at the latest).

        Raises
        ------
        LinkError
            When a frame of the run is lost or corrupt (the spikes could not be trusted),
            or the device stops answering.
        """
        if steps < 0 or len(inputs) > steps:
            raise ValueError(f"a run of {steps} steps cannot take inputs for {len(inputs)}")
        if self._step is None:
            self._step = self.status()["step"]
        msg = REQUESTS[Op.RUN]
        per = msg.max_items
        t = 0
        while True:
            items: list[int] = []
            k = t
            while k < len(inputs) and len(items) + len(inputs[k]) < per:
                items += [int(s) for s in inputs[k]]
                items.append(STEP_MARK)
                k += 1
            if k < len(inputs) and k == t:
                # more inputs in one step than a frame carries: the first ones by INJECT
                extra = [int(s) for s in inputs[k]]
                head, items = extra[: -(per - 1)], [*extra[-(per - 1) :], STEP_MARK]
                for i in range(0, len(head), REQUESTS[Op.INJECT].max_items):
                    self.inject(head[i : i + REQUESTS[Op.INJECT].max_items])
                k += 1
            n = steps - t if k >= len(inputs) else k - t
            n = min(n, (1 << 32) - 1)
            what = f"RUN of {n} steps from step {self._step}"
            handler = _RunReplies(self._step, n, on_spikes, on_step, what)
            self.submit(msg.pack(n, items=items), what, handler)
            self._step += n
            t += n
            if t >= steps:
                break
        if wait:
            self.sync()

    def status(self) -> dict[str, int]:
        """Return the system's registers (``SystemReg`` names, lower case)."""
        reply = self.request(REQUESTS[Op.STATUS].pack(), "STATUS", Op.R_STATUS)
        values = REPLIES[Op.R_STATUS].unpack(reply.body)[0]
        regs = {r.name.lower(): v for r, v in zip(STATUS_REGS, values, strict=True)}
        self._step = regs["step"]
        return regs

    def close(self) -> None:
        """End the link (and the simulation behind a pipe)."""
        self.transport.close()

    def __enter__(self) -> LinkDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RunReplies:
    """The replies of one RUN frame: R_SPIKES frames, then R_RUN_END (contract 8.2)."""

    def __init__(
        self,
        start: int,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None,
        what: str,
    ):
        self.step, self.end = start, start + steps
        self.on_spikes, self.on_step = on_spikes, on_step
        self.what = what
        self.seq = 0
        self.spikes = 0  # in the run
        self.in_step = 0  # in the current step

    def __call__(self, frame: Frame) -> bool:
        if frame.error is not None:
            raise LinkError(
                f"corrupt frame during the {self.what} ({frame.error.name}); spikes may be "
                f"lost, so the run is abandoned after step {self.step - 1}"
            )
        op = frame.op
        if op == Op.R_SPIKES:
            (seq,), items = REPLIES[Op.R_SPIKES].unpack(frame.body)
            if seq != self.seq & 0xFF:
                raise LinkError(
                    f"R_SPIKES frame {seq} of the {self.what} came after frame "
                    f"{(self.seq - 1) & 0xFF}: a frame was lost in step {self.step}"
                )
            self.seq += 1
            start = 0
            while True:
                try:
                    i = items.index(STEP_MARK, start)
                except ValueError:
                    i = len(items)
                if i > start:
                    ids = list(items[start:i])
                    self.in_step += len(ids)
                    self.spikes += len(ids)
                    self.on_spikes(self.step, ids)
                if i == len(items):
                    return False
                if self.step == self.end:
                    raise LinkError(f"more steps than asked in the replies to the {self.what}")
                if self.on_step is not None:
                    self.on_step(self.step, self.in_step)
                self.step += 1
                self.in_step = 0
                start = i + 1
        if op == Op.R_RUN_END:
            step, spikes = REPLIES[Op.R_RUN_END].unpack(frame.body)[0]
            if (step, spikes) != (self.end, self.spikes) or self.step != self.end:
                raise LinkError(
                    f"the {self.what} ended at step {step} with {spikes} spikes sent; "
                    f"received {self.step - self.end + step} steps' ends and "
                    f"{self.spikes} spikes"
                )
            return True
        if op == Op.R_ERROR:
            code, bad = REPLIES[Op.R_ERROR].unpack(frame.body)[0]
            raise DeviceError(code, bad, self.what)
        raise LinkError(f"unexpected frame 0x{op:02x} during the {self.what}")
