"""The serial backend, for real: pyserial on a pseudo-terminal with the Verilator device behind.

A board's UART is a tty to the host. Here the tty is one end of a pseudo-terminal whose other
end is bridged to the Verilator harness's pipes, so the code path a board uses (pyserial,
``SerialTransport``, ``LinkDevice``, the runtime) runs against the generated RTL.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import time
import tty
from pathlib import Path

import pytest
from spikefab.hdl.top import SIM_TIMEOUT
from spikefab.host.link import LinkDevice, LinkTimeoutError, SerialTransport
from spikefab.host.runtime import check_device, run_network
from spikefab.mapping.hardware import simulated_system
from spikefab.mapping.image import place_sequential
from spikefab.mapping.loader import load
from spikefab.sim.golden import GoldenModel
from spikefab.sim.results import compare_results
from spikefab.sim.verilator import build_harness

EXAMPLES = Path(__file__).parents[2] / "examples"
# the system `spikefab run --backend verilator` uses for a one-core network (one build)
CONFIG = simulated_system(load(EXAMPLES / "synfire.yaml"))


class PtyBridge:
    """A pseudo-terminal whose far end copies bytes to and from a subprocess's pipes."""

    def __init__(self, argv: list[str] | None):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.proc = None
        self._stop = threading.Event()
        if argv is not None:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._threads = [
                threading.Thread(target=self._copy, args=(self.master, self.proc.stdin.fileno())),
                threading.Thread(target=self._copy, args=(self.proc.stdout.fileno(), self.master)),
            ]
            for t in self._threads:
                t.start()

    def _copy(self, src: int, dst: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([src], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(src, 4096)
            except OSError:
                return
            if not data:
                return
            os.write(dst, data)

    def close(self) -> None:
        self._stop.set()
        if self.proc is not None:
            for t in self._threads:
                t.join()
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture(scope="module")
def bridge():  # type: ignore[no-untyped-def]
    program = build_harness(CONFIG, progress=False)
    b = PtyBridge([str(program), f"+rx-timeout={SIM_TIMEOUT}"])
    yield b
    b.close()


def test_serial_backend_runs_a_network_on_the_rtl(bridge):  # type: ignore[no-untyped-def]
    net = load(EXAMPLES / "synfire.yaml")
    dev = LinkDevice(SerialTransport(bridge.path, 3_000_000), timeout=30.0)
    check_device(dev, CONFIG)
    image = place_sequential(net, CONFIG)
    got = run_network(net, image, dev, 100, "serial")
    cmp = compare_results(GoldenModel(net).run(100), got)
    assert cmp.equal, cmp.first
    # two volleys (steps 5 and 60) through the stimulus and 8 groups of 20 neurons
    assert got.n_spikes == 2 * 9 * 20
    dev.transport.close()


def test_serial_port_without_a_device_times_out_clearly():
    silent = PtyBridge(None)  # nothing answers on the far end
    try:
        dev = LinkDevice(SerialTransport(silent.path, 3_000_000), timeout=0.5, retries=1)
        t0 = time.monotonic()
        with pytest.raises(LinkTimeoutError, match=r"no reply to INFO within 0.5 s"):
            dev.info()
        assert time.monotonic() - t0 < 5
        dev.transport.close()
    finally:
        silent.close()


def test_missing_serial_port_is_named():
    from spikefab.host.link import LinkError

    with pytest.raises(LinkError, match=r"cannot open serial port '/dev/no-such-tty'"):
        SerialTransport("/dev/no-such-tty")
