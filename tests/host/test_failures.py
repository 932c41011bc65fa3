"""Runs that end early: the Verilator process killed during the load or the run, Ctrl-C.

``spikefab run`` must end with one line on stderr (no traceback) and exit status 1, and the
spike file must hold what was received, marked partial, equal to the golden model on every
step it says is complete.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import spikefab

STEPS = 400


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command may hold spaces: the fields after its closing parenthesis
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def start_run(tmp_path: Path, net: str) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "spikes.npz"
    cmd = [sys.executable, "-m", "spikefab.host.cli", "run", net, "-b", "verilator", "-n",
           str(STEPS), "-o", str(out), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def wait_for_harness(proc: subprocess.Popen, limit: float = 300.0) -> int:
    """The pid of the Verilator harness the run started (after any build)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for pid in children(proc.pid):
            try:
                if "harness" in os.readlink(f"/proc/{pid}/exe"):
                    return pid
            except OSError:
                continue
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its simulation started: {proc.stderr}")
        time.sleep(0.05)
    raise AssertionError("no Verilator harness started")


def check_partial(out: Path, net: str, stderr: str) -> spikefab.RunResult:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert out.exists(), stderr
    partial = spikefab.load_result(out)
    assert partial.partial and partial.error
    assert 0 <= partial.complete_steps < STEPS
    golden = spikefab.run(spikefab.load(net), STEPS)
    cmp = spikefab.compare(golden, partial)
    assert cmp.equal, cmp.first
    # nothing of a step after the last complete one claims more than golden has
    late = partial.step >= partial.complete_steps
    assert np.isin(
        partial.step[late] * 10**6 + partial.neuron[late],
        golden.step * 10**6 + golden.neuron,
    ).all()
    return partial


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_simulation_killed_at_a_random_point(tmp_path: Path, seed: int) -> None:
    """Killed during the load or the run (the delay is random): one line, exit 1, a partial
    file equal to golden up to its last complete step."""
    net = "balanced"
    proc, out = start_run(tmp_path, net)
    harness = wait_for_harness(proc)
    time.sleep(random.Random(seed).uniform(0.0, 2.5))
    os.kill(harness, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    partial = check_partial(out, net, stderr)
    assert "after step" in stderr or partial.complete_steps == 0


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_received(tmp_path: Path) -> None:
    net = "balanced"
    proc, out = start_run(tmp_path, net)
    wait_for_harness(proc)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    check_partial(out, net, stderr)
