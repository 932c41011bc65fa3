"""`spikefab boards`, `program`, `map --board` and `run --backend serial`, as users run them.

The serial backend runs for real: pyserial on a pseudo-terminal, with the Verilator
simulation of a board's system on the far end (the bytes a board's UART carries), or with
nothing there.
"""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import threading
import tty
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from spikefab.boards import BOARDS, board_names, get_board
from spikefab.hdl.board_top import divisor_of
from spikefab.hdl.top import SIM_TIMEOUT
from spikefab.host.cli import main
from spikefab.mapping.hardware import Hardware
from spikefab.mapping.image import load_image
from spikefab.mapping.loader import load
from spikefab.sim.golden import GoldenModel
from spikefab.sim.results import compare_results, load_result
from spikefab.sim.verilator import build_harness

EXAMPLES = Path(__file__).parents[2] / "examples"


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(main, list(args), env=env)
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


class Pty:
    """A pseudo-terminal; its far end copies to and from a subprocess, or stays silent."""

    def __init__(self, argv: list[str] | None = None):
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.proc = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if argv is not None:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            pairs = [
                (self.master, self.proc.stdin.fileno()),
                (self.proc.stdout.fileno(), self.master),
            ]
            self._threads = [threading.Thread(target=self._copy, args=p) for p in pairs]
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
        for t in self._threads:
            t.join()
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
        os.close(self.master)
        os.close(self._slave)


# boards ---------------------------------------------------------------------------------------


def test_boards_lists_every_board_with_its_capacity():
    r = invoke("boards")
    assert r.exit_code == 0
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith(" ")]
    assert [ln.split()[0] for ln in lines] == board_names()
    for name, line in zip(board_names(), lines, strict=True):
        b = get_board(name)
        assert f"{b.neurons} neurons, {b.synapses} synapses" in line
    assert "iCE40UP5K-SG48, 12 MHz, UART 3000000 baud" in lines[0]
    # each board's block RAM per entry, on the line after it
    for name in BOARDS:
        line = r.stdout.splitlines()[
            r.stdout.splitlines().index(lines[board_names().index(name)]) + 1
        ]
        assert line.strip() == f"block RAM: {BOARDS[name].bits_per_entry().line()}"
    assert "1048576 synapse entries in SDRAM" in r.stdout


def test_every_board_has_a_system_its_uart_rate_and_clock_agree_on():
    for b in BOARDS.values():
        divisor = divisor_of(b.clock_hz, b.baud)
        assert abs(b.clock_hz / divisor - b.baud) / b.baud < 0.01
        assert b.programmers and b.platform is not None
    assert get_board("verilator").platform is None
    with pytest.raises(ValueError, match=r"unknown board 'icestick'; the boards are icebreaker"):
        get_board("icestick")


def test_uart_rates_a_clock_cannot_give_are_refused():
    with pytest.raises(ValueError, match=r"3000000 baud at 25 MHz: the nearest divisor 8 gives"):
        divisor_of(25e6, 3_000_000)
    with pytest.raises(ValueError, match=r"needs at least 4 clock cycles per bit"):
        divisor_of(12e6, 6_000_000)


# program --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BOARDS))
def test_program_without_a_programmer_says_what_to_install(name, tmp_path):
    r = invoke("program", "--board", name, env={"PATH": str(tmp_path)})
    assert r.exit_code == 1
    assert f"no programmer for the {BOARDS[name].title} is installed" in r.stderr
    for p in BOARDS[name].programmers:
        assert f"{p.tool}: sudo apt-get install" in r.stderr
    assert {
        "icebreaker": "sudo apt-get install fpga-icestorm",
        "ulx3s": "sudo apt-get install openfpgaloader",
        "orangecrab": "sudo apt-get install dfu-util",
    }[name] in r.stderr


def test_program_runs_the_first_programmer_installed(tmp_path, monkeypatch):
    # a stand-in iceprog that records its arguments: the command line is what is checked
    bin_dir, build_dir = tmp_path / "bin", tmp_path / "build" / "icebreaker"
    bin_dir.mkdir()
    build_dir.mkdir(parents=True)
    log = tmp_path / "args"
    tool = bin_dir / "iceprog"
    tool.write_text(f'#!/bin/sh\necho "$@" > {log}\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.chdir(tmp_path)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    r = invoke("program", "--board", "icebreaker", env=env)
    assert r.exit_code == 1
    assert "spikefab_icebreaker.bin does not exist: build it first" in r.stderr
    (build_dir / "spikefab_icebreaker.bin").write_bytes(b"\0" * 16)
    r = invoke("program", "--board", "icebreaker", env=env)
    assert r.exit_code == 0, r.output
    assert log.read_text().split() == ["build/icebreaker/spikefab_icebreaker.bin"]


def test_program_a_simulation_is_refused():
    r = invoke("program", "--board", "verilator")
    assert r.exit_code == 1
    assert "the verilator board is a simulation: nothing to program" in r.stderr


# map --board ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BOARDS))
def test_map_onto_a_board_writes_an_image_of_its_system(name, tmp_path):
    out = tmp_path / "img.npz"
    r = invoke("map", "synfire", "--board", name, "--rate-steps", "0", "-o", str(out))
    assert r.exit_code == 0, r.output
    image = load_image(out)
    assert image.config == BOARDS[name].system
    assert Hardware.from_board(name) == Hardware.of(BOARDS[name].system)


def test_map_onto_a_board_with_sizes_is_refused():
    r = invoke("map", "synfire", "--board", "ulx3s", "--cores", "2")
    assert r.exit_code == 2
    assert "give --board or sizes (--cores, --neurons, ...), not both" in r.output


# run --backend serial -------------------------------------------------------------------------


def test_serial_without_a_port_is_a_usage_error():
    r = invoke("run", "synfire", "--backend", "serial", "--board", "icebreaker")
    assert r.exit_code == 2
    assert "--backend serial needs --board and --port" in r.output


def test_serial_with_nothing_on_the_port_times_out_clearly(tmp_path):
    silent = Pty()
    try:
        r = invoke(
            "run", "synfire", "-n", "10", "--board", "icebreaker", "--port", silent.path,
            "--timeout", "0.3", "-o", str(tmp_path / "s.npz"),
        )  # fmt: skip
    finally:
        silent.close()
    assert r.exit_code == 1
    assert f"iCEBreaker on {silent.path}: no reply to INFO within 0.3 s" in r.stderr
    assert not (tmp_path / "s.npz").exists()


def test_serial_with_a_missing_port_names_it(tmp_path):
    r = invoke(
        "run", "synfire", "-n", "10", "--board", "ulx3s", "--port", "/dev/no-such-tty",
        "-o", str(tmp_path / "s.npz"),
    )  # fmt: skip
    assert r.exit_code == 1
    assert "cannot open serial port '/dev/no-such-tty'" in r.stderr


def test_serial_runs_a_board_system_on_the_rtl(tmp_path):
    """The OrangeCrab's system (two learning cores) in Verilator, behind a tty at its rate."""
    board = BOARDS["orangecrab"]
    program = build_harness(board.system, progress=False)
    bridge = Pty([str(program), f"+rx-timeout={SIM_TIMEOUT}"])
    out = tmp_path / "s.npz"
    try:
        r = invoke(
            "run", "synfire", "-n", "100", "--board", "orangecrab", "--port", bridge.path,
            "--timeout", "30", "-o", str(out),
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        c = invoke(
            "compare", "synfire", "-n", "100", "--against", "serial", "--board", "orangecrab",
            "--port", bridge.path, "--timeout", "30",
        )  # fmt: skip
    finally:
        bridge.close()
    assert c.exit_code == 0, c.output
    assert "golden vs serial" in c.stdout and "identical" in c.stdout
    assert "on serial" in r.stdout
    got = load_result(out)
    ref = GoldenModel(load(EXAMPLES / "synfire.yaml")).run(100)
    cmp = compare_results(ref, got)
    assert cmp.equal, cmp.first
    assert got.n_spikes == 2 * 9 * 20 and np.all(got.step < 100)


def test_serial_refuses_an_image_of_another_system(tmp_path):
    out = tmp_path / "img.npz"
    assert (
        invoke("map", "synfire", "--board", "ulx3s", "--rate-steps", "0", "-o", str(out)).exit_code
        == 0
    )
    r = invoke("run", str(out), "--board", "orangecrab", "--port", "/dev/null", "-n", "5")
    assert r.exit_code == 1
    assert "map the network with --board orangecrab" in r.stderr
