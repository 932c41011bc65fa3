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
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from spikefab.hdl.layouts import SystemConfig
from spikefab.hdl.top import SIM_TIMEOUT
from spikefab.host.link import LinkDevice, PipeTransport
from spikefab.sim.verilator import build_harness

__all__ = ["VerilatorTransport", "open_verilator"]


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


def open_verilator(
    config: SystemConfig,
    timeout: float = 10.0,
    *,
    progress: bool = True,
    plusargs: Sequence[str] = (),
    stderr: int | IO | None = None,
    waves: str | Path | None = None,
    program: str | Path | None = None,
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
        A harness already built (of this system), instead of building one.

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
