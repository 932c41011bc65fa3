"""The device simulated by Verilator, behind the same :class:`LinkDevice` as a board.

:func:`open_verilator` builds (once; see :func:`spikefab.sim.verilator.build_harness`) the
Verilator harness of ``SimTop(config)``, starts it and speaks to it through its
stdin/stdout::

    from spikefab.host.verilator import open_verilator

    device = open_verilator(config)
    try:
        print(device.info())
        device.run(100, on_spikes=lambda step, ids: print(step, ids))
    finally:
        device.close()  # ends the simulation

The simulation runs as fast as it can while the device works and sleeps while it is idle.

With ``in_process=True`` the device is the harness built as a shared library and clocked in
this process (:class:`LibraryTransport`): the host and the simulation take turns on one
thread instead of running as two processes. That is what a multi-device run on one machine
wants (one busy process per rank); the separate program keeps the simulation apart from the
host (a crash of one is reported by the other) and can trace waveforms.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from spikefab.hdl.layouts import SystemConfig
from spikefab.hdl.top import SIM_TIMEOUT
from spikefab.host.link import LinkDevice, LinkError, PipeTransport, Transport
from spikefab.sim.verilator import build_harness

__all__ = ["LibraryTransport", "VerilatorTransport", "open_verilator"]


class VerilatorTransport(PipeTransport):
    """The pipes of a running Verilator harness; :meth:`close` ends it.

    Closing sends EOF: the harness finishes the frame it is executing, writes its last
    bytes and exits (it is killed if it has not within 5 s).
    """

    def __init__(self, proc: subprocess.Popen):
        super().__init__(proc, name="the Verilator simulation")
        self.proc = proc

    def trace(self, on: bool) -> None:
        """Switch the FST waveform on or off (a harness started with ``+waves``); call it
        while the device waits, so that the trace starts and ends between runs."""
        self.proc.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    def close(self) -> None:
        super().close()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class LibraryTransport(Transport):
    """The harness built as a shared library, in this process (``sim/harness/lib.cpp``).

    :meth:`write` hands bytes to the device; :meth:`read` clocks the device until it has
    nothing left to do, has finished a reply frame, has 16 KiB of replies, or has run
    :attr:`chunk_cycles` cycles, so that the host's timeouts and Ctrl-C are seen between
    chunks. A device with nothing to do answers nothing: :meth:`read` then sleeps a little
    and returns no bytes, as a pipe would, and the link's timeout applies.
    """

    #: Cycles clocked per call at most (about a tenth of a second of simulation).
    chunk_cycles = 1 << 16
    #: Bytes of requests sent ahead of their replies: the device's input is a buffer that
    #: grows, so the limit only bounds the replies waiting to be read.
    send_ahead = 1 << 20
    #: Seconds :meth:`close` lets the device finish the requests written.
    close_timeout = 5.0

    def __init__(self, library: str | Path, plusargs: Sequence[str] = ()):
        lib = ctypes.CDLL(str(library))
        lib.spikefab_harness_open.restype = ctypes.c_void_p
        lib.spikefab_harness_open.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        lib.spikefab_harness_write.restype = None
        lib.spikefab_harness_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.spikefab_harness_read.restype = ctypes.c_size_t
        lib.spikefab_harness_read.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint64,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.spikefab_harness_close.restype = None
        lib.spikefab_harness_close.argtypes = [ctypes.c_void_p]
        self._lib = lib
        args = [a.encode() for a in plusargs]
        argv = (ctypes.c_char_p * max(1, len(args)))(*args)
        err = ctypes.create_string_buffer(512)
        handle = lib.spikefab_harness_open(len(args), argv, err, len(err))
        if not handle:
            raise LinkError(f"the Verilator simulation did not start: {err.value.decode()}")
        self._handle: int | None = handle
        self._buf = ctypes.create_string_buffer(1 << 16)
        self._settled = ctypes.c_int(0)

    def _live(self) -> int:
        if self._handle is None:
            raise LinkError("the Verilator simulation has been closed")
        return self._handle

    def write(self, data: bytes) -> None:
        self._lib.spikefab_harness_write(self._live(), data, len(data))

    def _clock(self, handle: int) -> int:
        """Clock the device (one call of the library's read); return the bytes it gave in
        ``_buf``, and set ``_settled``."""
        return int(
            self._lib.spikefab_harness_read(
                handle, self._buf, len(self._buf), self.chunk_cycles, ctypes.byref(self._settled)
            )
        )

    def read(self, timeout: float) -> bytes:
        n = self._clock(self._live())
        if n:
            return ctypes.string_at(self._buf, n)
        if self._settled.value:
            # nothing will come until the host sends more: wait as on a pipe, a little
            time.sleep(min(max(0.0, timeout), 0.01))
        return b""

    def close(self) -> None:
        """End the device: the requests written are executed first (for at most
        :attr:`close_timeout` seconds), as the program does at EOF, and the design's final
        blocks run."""
        if self._handle is None:
            return
        deadline = time.monotonic() + self.close_timeout
        while time.monotonic() < deadline:
            if not self._clock(self._handle) and self._settled.value:
                break
        self._lib.spikefab_harness_close(self._handle)
        self._handle = None


def open_verilator(
    config: SystemConfig,
    timeout: float = 10.0,
    *,
    progress: bool = True,
    plusargs: Sequence[str] = (),
    stderr: int | IO | None = None,
    waves: str | Path | None = None,
    program: str | Path | None = None,
    in_process: bool = False,
) -> LinkDevice:
    """Start the Verilator simulation of ``config`` and return the device it simulates.

    Parameters
    ----------
    config
        The system to simulate.
    timeout
        Seconds to wait for a reply (see :class:`~spikefab.host.link.LinkDevice`).
    progress
        Report on stderr what a first build of the harness does.
    plusargs
        Extra arguments of the harness, e.g. ``["+cycles"]`` to have it report the cycles
        it simulated on stderr when it exits.
    stderr
        Where the harness's messages go (``subprocess.Popen``'s ``stderr``); by default to
        this process's stderr.
    waves
        Write an FST waveform here, with the harness built for tracing; tracing starts off
        (``device.transport.trace(True)`` switches it on).
    program
        A harness already built (of this system), instead of building one: the program, or
        with ``in_process`` the library.
    in_process
        Run the device in this process (:class:`LibraryTransport`) rather than as a program
        of its own; ``stderr`` and ``waves`` then do not apply, and ``plusargs`` are only
        ``+rx-timeout`` and ``+reset``.

    Returns
    -------
    LinkDevice
        The device; its :meth:`~spikefab.host.link.LinkDevice.close` ends the simulation.

    Raises
    ------
    spikefab.sim.rtl.ToolMissingError
        When Verilator or a C++ compiler is missing.
    spikefab.sim.verilator.HarnessBuildError
        When the harness does not build.
    """
    if in_process:
        if waves is not None:
            raise ValueError("waveforms are traced by the harness program: in_process=False")
        if program is None:
            program = build_harness(config, progress=progress, library=True)
        lib = LibraryTransport(program, [f"+rx-timeout={SIM_TIMEOUT}", *plusargs])
        try:
            device = LinkDevice(lib, timeout=timeout)
        except BaseException:
            lib.close()
            raise
        device.name = "the Verilator simulation (in process)"
        return device
    if program is None:
        program = build_harness(config, progress=progress, trace=waves is not None)
    if waves is not None:
        plusargs = [*plusargs, f"+waves={waves}"]
    proc = subprocess.Popen(
        [str(program), f"+rx-timeout={SIM_TIMEOUT}", *plusargs],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    transport = VerilatorTransport(proc)
    try:
        return LinkDevice(transport, timeout=timeout)
    except BaseException:
        transport.close()
        raise
