"""One network over several Verilator simulations, one MPI rank each (contract section 11).

The ranks are started by spikefab (``mpiexec`` from the mpich wheel), as ``spikefab run
--devices K -b verilator`` starts them; each runs its simulation in its own process, or
beside it (``--sim-process``). Results equal the golden model spike for spike, probe for
probe and weight for weight. A rank whose simulation (beside it) is killed ends every rank
with one line and a partial spike file; a rank process that is killed ends every rank.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import spikefab
from multi_cases import random_multi_net, random_partition
from spikefab.host.cli import main
from spikefab.host.multidevice import map_devices, run_devices
from spikefab.sim.golden import GoldenModel
from test_failures import Stderr, children
from test_multidevice import same

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("devices", [2, 3])
def test_compare_balanced_over_devices(devices: int, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as e:
        main(["compare", "balanced", "--devices", str(devices), "-n", "300", "--no-progress"])
    out = capsys.readouterr().out
    assert e.value.code in (0, None), out
    assert f"golden vs verilator over {devices} devices" in out
    assert "spike mismatches:      0" in out and "identical" in out
    assert re.search(r"probe exc/v: \d+ values compared, 0 mismatches", out), out
    # balanced's delays are all 2: rounds of two steps
    assert re.search(r"exchange: 150 rounds, [1-9][\d.]* spikes", out), out


@pytest.mark.parametrize(
    ("seed", "devices", "in_process"), [(4, 2, True), (4, 2, False), (9, 3, True), (17, 3, True)]
)
def test_random_partitions_on_verilator_ranks(seed: int, devices: int, in_process: bool) -> None:
    steps = 150
    net = random_multi_net(seed, steps)
    dm = map_devices(net, devices, device_of=random_partition(net, devices, seed))
    assert dm.plan.lag >= 1  # spikes cross devices
    got = run_devices(dm, steps, "verilator", in_process=in_process)
    want = GoldenModel(net).run(steps)
    same(got, want)
    assert got.exchange.spikes_sent > 0  # type: ignore[attr-defined]
    assert want.weights and any(
        (want.weights[k] != net.projection(k).weight).any() for k in want.weights
    )


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def harnesses(pid: int) -> list[int]:
    found = []
    for p in descendants(pid):
        try:
            if "harness" in os.readlink(f"/proc/{p}/exe"):
                found.append(p)
        except OSError:
            continue
    return found


STEPS = 20000


def kill_and_wait(proc: subprocess.Popen, err: Stderr, victim: int) -> tuple[str, list[str]]:
    """Kill ``victim`` and check that the command ends within 10 s, with status 1 and no
    traceback; return its stderr and the stderr's non-empty lines."""
    os.kill(victim, signal.SIGKILL)
    t_kill = time.monotonic()
    proc.wait(timeout=60)
    ended = time.monotonic() - t_kill
    stderr = err.join(proc)
    assert ended < 10, f"the ranks took {ended:.1f} s to end"
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    return stderr, [ln for ln in re.split(r"[\r\n]+", stderr) if ln.strip()]


def test_a_killed_simulation_ends_every_rank_with_a_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "spikes.npz"
    cmd = [sys.executable, "-m", "spikefab.host.cli", "run", "balanced", "--devices", "2",
           "-b", "verilator", "--sim-process", "-n", str(STEPS), "-o", str(out),
           "--progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = Stderr(proc)
    deadline = time.monotonic() + 600
    while len(harnesses(proc.pid)) < 2:
        assert proc.poll() is None, err.text
        assert time.monotonic() < deadline, "the ranks' simulations did not start"
        time.sleep(0.05)
    while not re.search(rf"([1-9]\d{{3,}})/{STEPS}", err.text):  # a thousand steps or more
        assert proc.poll() is None, err.text
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stderr, lines = kill_and_wait(proc, err, max(harnesses(proc.pid)))
    assert "BAD TERMINATION" not in stderr, stderr
    assert re.search(r"rank [01] \(sim, verilator\) failed after step \d+", lines[-1]), stderr
    assert "complete steps are saved" in lines[-1], stderr
    assert not harnesses(proc.pid)
    partial = spikefab.load_result(out)
    assert partial.partial and 1000 <= partial.complete_steps < STEPS
    done = partial.complete_steps
    golden = spikefab.run(spikefab.load("balanced"), done)
    cmp = spikefab.compare(golden, partial)
    assert cmp.equal, cmp.first
    assert partial.n_spikes == golden.n_spikes > 0
    np.testing.assert_array_equal(partial.step, golden.step)


def ranks(pid: int) -> list[int]:
    found = []
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        if b"spikefab.host.ranks" in cmdline and not any(b"mpiexec" in a for a in cmdline):
            found.append(p)
    return found


def test_a_killed_rank_process_ends_every_rank(tmp_path: Path) -> None:
    """With the simulations inside the ranks, the device and its rank die together: every
    other rank is ended within seconds and the command says a rank's process died (no
    result to save: the dead rank held its part's spikes)."""
    out = tmp_path / "spikes.npz"
    cmd = [sys.executable, "-m", "spikefab.host.cli", "run", "balanced", "--devices", "2",
           "-b", "verilator", "-n", str(10 * STEPS), "-o", str(out), "--progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = Stderr(proc)
    deadline = time.monotonic() + 600
    while not re.search(rf"([1-9]\d{{3,}})/{10 * STEPS}", err.text):  # a thousand steps on
        assert proc.poll() is None, err.text
        assert time.monotonic() < deadline, err.text
        time.sleep(0.02)
    assert not harnesses(proc.pid)  # no simulation runs beside a rank
    victims = ranks(proc.pid)
    assert len(victims) == 2, victims
    _, lines = kill_and_wait(proc, err, max(victims))
    assert re.search(r"the 2 MPI ranks ended without a result .*a rank's process died", lines[-1])
    assert not ranks(proc.pid) and not out.exists()


def test_the_same_command_under_the_users_mpiexec(tmp_path: Path) -> None:
    """On a cluster the user starts the ranks: each runs its own device, rank 0 writes the
    one spike file (system models here; boards take -b serial --device-map)."""
    from spikefab.host.multidevice import mpiexec

    out = tmp_path / "spikes.npz"
    cmd = [mpiexec(), "-n", "3", sys.executable, "-m", "spikefab.host.cli", "run", "balanced",
           "--devices", "3", "-b", "system", "-n", "120", "-o", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # one report, from rank 0
    assert done.stdout.count("balanced: 120 steps") == 1, done.stdout
    assert "exchange: 60 rounds" in done.stdout, done.stdout
    got = spikefab.load_result(out)
    want = spikefab.run(spikefab.load("balanced"), 120)
    cmp = spikefab.compare(want, got)
    assert cmp.equal, cmp.first


def test_boards_on_serial_ports_under_the_users_mpiexec(tmp_path: Path) -> None:
    """Two iCEBreakers on two serial ports, each driven by its own rank: the ports are
    pseudo-terminals bridged to Verilator simulations of the board's system (as in
    test_serial.py), so pyserial, the board's link and the device map run for real."""
    from spikefab.boards import get_board
    from spikefab.hdl.top import SIM_TIMEOUT
    from spikefab.host.multidevice import mpiexec
    from spikefab.sim.verilator import build_harness
    from test_serial import PtyBridge

    board = get_board("icebreaker")
    program = build_harness(board.system, progress=False)
    bridges = [PtyBridge([str(program), f"+rx-timeout={SIM_TIMEOUT}"]) for _ in range(2)]
    try:
        device_map = tmp_path / "devices.yaml"
        device_map.write_text(
            "devices:\n" + "".join(f"  - {{board: icebreaker, port: {b.path}}}\n" for b in bridges)
        )
        out = tmp_path / "spikes.npz"
        cmd = [mpiexec(), "-n", "2", sys.executable, "-m", "spikefab.host.cli", "run",
               "synfire", "-b", "serial", "--device-map", str(device_map), "-n", "150",
               "--timeout", "30", "-o", str(out)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    finally:
        for b in bridges:
            b.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("synfire: 150 steps") == 1, done.stdout
    got = spikefab.load_result(out)
    cmp = spikefab.compare(spikefab.run(spikefab.load("synfire"), 150), got)
    assert cmp.equal, cmp.first
    crossing = re.search(r"exchange: \d+ rounds, ([\d.]+) spikes", done.stdout)
    assert crossing and float(crossing.group(1)) > 0, done.stdout
