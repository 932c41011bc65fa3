"""The host link on a paced serial line: how much of the line rate a spike-heavy run uses.

A board's UART carries ``baud / 10`` bytes a second each way. Here the serial port is a
pseudo-terminal bridged to the Verilator simulation of the device, and the bridge passes
bytes no faster than a UART of ``--baud`` would (both directions, 10 bits a byte), so the
host code a board uses (pyserial, ``SerialTransport``, ``LinkDevice``, the runtime) runs
against the RTL as if over that UART. The network is spike-heavy: ``--neurons`` neurons
driven by a bias to fire every ``--period`` steps, all recorded; the device produces spikes
faster than the line carries them, so the line is the limit and the figure is the protocol's
efficiency. Spikes are compared with the golden model.

Run it from the repository root::

    .venv/bin/python bench/serial_link.py                 # 1 Mbaud, 1024 neurons, 300 steps
    .venv/bin/python bench/serial_link.py --baud 3000000

Prints the bytes each way during the run, the wall time, the line rate used (bytes x 10 bits
over the run's time, against the baud rate), and the bytes per reported spike.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import subprocess
import sys
import threading
import time
import tty


class PacedBridge:
    """A pseudo-terminal whose far end copies bytes to and from a subprocess's pipes, each
    direction no faster than ``rate`` bytes a second."""

    def __init__(self, argv: list[str], rate: float):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self._rate = rate
        self._stop = threading.Event()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._threads = [
            threading.Thread(target=self._copy, args=(self.master, self.proc.stdin.fileno())),
            threading.Thread(target=self._copy, args=(self.proc.stdout.fileno(), self.master)),
        ]
        for t in self._threads:
            t.start()

    def _copy(self, src: int, dst: int) -> None:
        # a byte may leave at `due` at the earliest: the line is busy until then
        due = time.perf_counter()
        chunk = max(1, int(self._rate / 1000))  # about a millisecond of line per write
        while not self._stop.is_set():
            ready, _, _ = select.select([src], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(src, chunk)
            except OSError:
                return
            if not data:
                return
            due = max(due, time.perf_counter()) + len(data) / self._rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            os.write(dst, data)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        os.close(self.master)
        os.close(self._slave)


def network(neurons: int, period: int):  # type: ignore[no-untyped-def]
    """LIF neurons that a bias drives to spike every ``period`` steps, and nothing else."""
    from spikefab.mapping.network import NetworkBuilder

    b = NetworkBuilder("spike_heavy")
    # v grows by the bias each step (dv = 0: no leak) and spikes when it passes vth << 6
    bias = 1 << 10
    b.population("fire", neurons, du=4095, dv=0, vth=max(1, (bias * period - 1) >> 6),
                 bias_mant=bias >> 3, bias_exp=3)  # fmt: skip
    return b.build()


def main() -> int:
    import spikefab
    from spikefab.hdl.top import SIM_TIMEOUT
    from spikefab.host.link import CountingTransport, LinkDevice, SerialTransport
    from spikefab.host.runtime import check_device, load, run_network
    from spikefab.mapping.hardware import simulated_system
    from spikefab.mapping.image import place_sequential
    from spikefab.sim.verilator import build_harness

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baud", type=int, default=1_000_000)
    ap.add_argument("--neurons", type=int, default=1024)
    ap.add_argument("--period", type=int, default=2, help="steps between a neuron's spikes")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()

    net = network(args.neurons, args.period)
    config = simulated_system(net)
    image = place_sequential(net, config)
    print(f"command: {' '.join(sys.argv)}")
    print(f"network: {args.neurons} neurons spiking every {args.period} steps; "
          f"{args.steps} steps; {config.cores} core(s); line {args.baud} baud")  # fmt: skip
    program = build_harness(config, progress=True)
    # the device's own pace: the same run over an unpaced pipe
    from spikefab.host.link import PipeTransport

    proc = subprocess.Popen(
        [str(program), f"+rx-timeout={SIM_TIMEOUT}"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    pipe = CountingTransport(PipeTransport(proc))
    with LinkDevice(pipe, timeout=60.0) as device:
        load(device, image)
        pipe.received = 0
        t0 = time.perf_counter()
        run_network(net, image, device, args.steps, "verilator", load_image=False)
        free_rate = pipe.received / (time.perf_counter() - t0)
    bridge = PacedBridge([str(program), f"+rx-timeout={SIM_TIMEOUT}"], args.baud / 10)
    try:
        transport = CountingTransport(SerialTransport(bridge.path, args.baud))
        device = LinkDevice(transport, timeout=60.0)
        check_device(device, config)
        t0 = time.perf_counter()
        load(device, image)
        load_s = time.perf_counter() - t0
        transport.sent = transport.received = 0
        t0 = time.perf_counter()
        got = run_network(net, image, device, args.steps, "serial", load_image=False)
        run_s = time.perf_counter() - t0
        sent, received = transport.sent, transport.received
    finally:
        bridge.close()
    golden = spikefab.run(net, args.steps)
    cmp = spikefab.compare(golden, got)
    if not cmp.equal:
        print(f"MISMATCH: {cmp.first}")
        return 1
    line = args.baud / 10
    print(f"image load {load_s:.2f} s; spikes {got.n_spikes}, identical to golden")
    print(f"run: {run_s:.2f} s; {received} bytes from the device, {sent} to it")
    print(f"bytes per reported spike: {received / max(got.n_spikes, 1):.3f}")
    print(f"line rate used, device to host: {received / run_s / line:.1%} of {args.baud} baud")
    limit = "the line" if free_rate > line else "the simulation (it cannot fill the line)"
    print(f"the device unpaced (a pipe): {free_rate / 1e3:.0f} kB/s against the line's "
          f"{line / 1e3:.0f} kB/s: the limit is {limit}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
