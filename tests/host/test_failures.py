"""Runs that end early: the Verilator process killed during the load or the run, Ctrl-C.

``spikefab run`` must end with one line on stderr (no traceback) and exit status 1, and the
spike file must hold what was received, marked partial, equal to the golden model on every
step it says is complete.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import spikefab

STEPS = 4000
#: When the simulation is killed: 0.3 s after it started (during the image load, which takes
#: seconds for balanced's 4 cores), or once the run has reported that many steps.
KILL_AT: dict[str, float | int] = {"load": 0.3, "run": 1000, "late run": 3000}


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
           str(STEPS), "-o", str(out), "--progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


class Stderr:
    """Collects a process's stderr in a thread; ``steps`` is the progress bar's count."""

    def __init__(self, proc: subprocess.Popen):
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read(1):
            self.text += chunk

    @property
    def steps(self) -> int:
        done = re.findall(rf"(\d+)/{STEPS}", self.text)
        return int(done[-1]) if done else 0

    def wait_steps(self, n: int, proc: subprocess.Popen, limit: float = 300.0) -> None:
        deadline = time.monotonic() + limit
        while self.steps < n:
            assert proc.poll() is None, f"the run ended before step {n}: {self.text}"
            assert time.monotonic() < deadline, f"no step {n} within {limit} s"
            time.sleep(0.01)

    def join(self, proc: subprocess.Popen) -> str:
        """Wait for the process to end; return its stderr (and close its pipes)."""
        proc.wait(timeout=60)
        self._thread.join(timeout=60)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.text


def interrupt_at(proc: subprocess.Popen, err: Stderr, when: float | int, kill) -> None:  # type: ignore[no-untyped-def]
    """Wait for ``when`` (seconds after the harness started, or steps reported), then ``kill``."""
    harness = wait_for_harness(proc)
    if isinstance(when, float):
        time.sleep(when)
    else:
        err.wait_steps(when, proc)
    kill(harness)


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
    # the failure is one line, the last (lines before it are progress)
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in re.split(r"[\r\n]+", stderr) if ln.strip()]
    failure = [ln for ln in lines if "stopped" in ln or "Error" in ln]
    assert len(failure) == 1 and lines[-1] == failure[0], stderr
    assert "complete steps are saved" in failure[0], stderr
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
@pytest.mark.parametrize("when", list(KILL_AT))
def test_the_simulation_killed_mid_load_or_run(tmp_path: Path, when: str) -> None:
    """Killed during the load or the run: one line, exit 1, a partial file equal to golden
    up to its last complete step."""
    net = "balanced"
    proc, out = start_run(tmp_path, net)
    err = Stderr(proc)
    interrupt_at(proc, err, KILL_AT[when], lambda pid: os.kill(pid, signal.SIGKILL))
    stderr = err.join(proc)
    assert proc.returncode == 1, stderr
    partial = check_partial(out, net, stderr)
    if when == "load":
        assert partial.complete_steps == 0
    else:
        assert partial.complete_steps >= KILL_AT[when] and partial.n_spikes > 0


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_received(tmp_path: Path) -> None:
    net = "balanced"
    proc, out = start_run(tmp_path, net)
    err = Stderr(proc)
    interrupt_at(proc, err, 2000, lambda _: proc.send_signal(signal.SIGINT))
    stderr = err.join(proc)
    assert proc.returncode == 1, stderr
    partial = check_partial(out, net, stderr)
    assert partial.complete_steps >= 2000 and "interrupted" in partial.error
