"""The host side of the link: transports, and a device spoken to in frames.

:class:`LinkDevice` speaks the protocol of ``docs/contract.md`` section 8 over any
:class:`Transport`: a pipe to the Verilator simulation, a serial port to a board, or a
pseudo-terminal in tests. Every wait has a deadline; a dead or garbled stream ends in a
:class:`LinkError` that says what was expected, never in a hang.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spikefab.hdl.layouts import SystemReg
from spikefab.hdl.protocol import (
    MAX_BODY,
    STATUS_FIELDS,
    ErrorCode,
    Frame,
    FrameDecoder,
    Op,
    encode_frame,
)

__all__ = [
    "DeviceError",
    "DeviceInfo",
    "LinkDevice",
    "LinkError",
    "LinkTimeoutError",
    "PipeTransport",
    "SerialTransport",
    "Transport",
]


class LinkError(RuntimeError):
    """The link failed: a corrupt reply, an unexpected reply, or a closed stream."""


class LinkTimeoutError(LinkError):
    """No (complete) reply arrived in time."""


class DeviceError(LinkError):
    """The device refused a request with an R_ERROR reply."""

    def __init__(self, code: int, op: int, request: str):
        self.code = code
        self.op = op
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"unknown error {code}"
        super().__init__(f"the device refused {request}: {name} (code {code})")


class Transport(ABC):
    """A byte stream to a device."""

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


class PipeTransport(Transport):
    """The stdin/stdout of a subprocess (the Verilator harness)."""

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


@dataclass(frozen=True)
class DeviceInfo:
    """What a device reports about itself (R_INFO)."""

    protocol: int
    contract: int
    cores: int
    neurons: int
    axons: int
    synapses: int
    delay_slots: int
    acc_bits: int
    sources: int
    route_entries: int
    inject_depth: int
    max_body: int
    features: int

    @property
    def learning(self) -> bool:
        """The cores have the STDP learning unit."""
        return bool(self.features & 1)

    @property
    def stats(self) -> bool:
        """The system has its statistics counters (contract 6.1, 7.2)."""
        return bool(self.features & 2)

    @classmethod
    def from_body(cls, body: bytes) -> DeviceInfo:
        return cls(*struct.unpack("<BBBHIIBBHIHHB", body[1:]))


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
        self._pending: list[Frame] = []
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
        return self._pending.pop(0)

    def request(self, body: bytes, what: str, expect: Op, idempotent: bool = True) -> Frame:
        """Send a request and return its final reply, retrying an idempotent one."""
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
                code, op = reply.body[1], reply.body[2]
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

    # requests ----------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        """Return the device's sizes and versions."""
        reply = self.request(bytes([Op.INFO]), "INFO", Op.R_INFO)
        return DeviceInfo.from_body(reply.body)

    def write(self, target: int, mem: int, addr: int, words: Sequence[int]) -> None:
        """Write consecutive words of a memory, in as many frames as needed."""
        per = (MAX_BODY - 9) // 8
        for i in range(0, len(words), per):
            chunk = words[i : i + per]
            body = struct.pack("<BBBIH", Op.WRITE, target, mem, addr + i, len(chunk))
            body += b"".join(struct.pack("<Q", int(w)) for w in chunk)
            self.request(body, f"WRITE target {target} mem {mem} addr {addr + i}", Op.R_ACK)

    def read(self, target: int, mem: int, addr: int, count: int) -> list[int]:
        """Read consecutive words of a memory."""
        per = (MAX_BODY - 1) // 8
        out: list[int] = []
        for i in range(0, count, per):
            n = min(per, count - i)
            body = struct.pack("<BBBIH", Op.READ, target, mem, addr + i, n)
            reply = self.request(body, f"READ target {target} mem {mem} addr {addr + i}", Op.R_DATA)
            if len(reply.body) != 1 + 8 * n:
                raise LinkError(f"R_DATA of {len(reply.body)} bytes; expected {1 + 8 * n}")
            out += list(struct.unpack(f"<{n}Q", reply.body[1:]))
        return out

    def inject(self, sources: Sequence[int]) -> None:
        """Queue sources that spike in the next step run."""
        body = struct.pack("<BH", Op.INJECT, len(sources))
        body += b"".join(struct.pack("<H", int(s)) for s in sources)
        self.request(body, f"INJECT of {len(sources)} sources", Op.R_ACK, idempotent=False)

    def run(
        self,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None = None,
    ) -> None:
        """Run ``steps`` steps; call ``on_spikes(step, ids)`` and ``on_step(step, n)``.

        Raises
        ------
        LinkError
            When a frame of the run is lost or corrupt (the spikes could not be trusted),
            or the device stops answering.
        """
        self.send(struct.pack("<BI", Op.RUN, steps))
        seen: dict[int, int] = {}
        while True:
            frame = self.receive(f"RUN of {steps} steps")
            if frame.error is not None:
                raise LinkError(
                    f"corrupt frame during a run ({frame.error.name}); spikes "
                    "may be lost, so the run is abandoned"
                )
            op = frame.op
            if op == Op.R_SPIKES:
                step = struct.unpack_from("<I", frame.body, 1)[0]
                ids = list(struct.unpack(f"<{(len(frame.body) - 5) // 2}H", frame.body[5:]))
                seen[step] = seen.get(step, 0) + len(ids)
                on_spikes(step, ids)
            elif op == Op.R_STEP_END:
                step, n = struct.unpack_from("<II", frame.body, 1)
                if seen.get(step, 0) != n:
                    raise LinkError(
                        f"step {step}: {seen.get(step, 0)} spikes received, the device sent {n}"
                    )
                if on_step is not None:
                    on_step(step, n)
            elif op == Op.R_ACK:
                return
            elif op == Op.R_ERROR:
                raise DeviceError(frame.body[1], frame.body[2], f"RUN of {steps} steps")
            else:
                raise LinkError(f"unexpected frame 0x{op:02x} during a run")

    def status(self) -> dict[str, int]:
        """Return the system's registers (``SystemReg`` names, lower case)."""
        reply = self.request(bytes([Op.STATUS]), "STATUS", Op.R_STATUS)
        n = len(STATUS_FIELDS)
        values = struct.unpack(f"<{n}I", reply.body[1 : 1 + 4 * n])
        return {r.name.lower(): v for r, v in zip(list(SystemReg)[:n], values, strict=True)}

    def close(self) -> None:
        """End the link (and the simulation behind a pipe)."""
        self.transport.close()

    def __enter__(self) -> LinkDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
