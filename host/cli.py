"""The ``spikefab`` command line: a thin shell over :mod:`spikefab.host.api`.

Each command parses its options, calls the library and prints; failures are one line on
stderr and exit status 1 (a network's problems are listed, one per line).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from spikefab.host import api
from spikefab.mapping.network import Network, NetworkError

net_argument = click.argument("net", required=False, metavar="[NET]")


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the library's errors into one-line messages (and exit status 1)."""
    from spikefab.host.inputs import InputError
    from spikefab.host.link import LinkError
    from spikefab.mapping.core_image import FitError
    from spikefab.sim.results import RunAbortedError
    from spikefab.sim.rtl import ToolMissingError

    try:
        yield
    except RunAbortedError:
        raise
    except NetworkError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    except (
        FileNotFoundError, InputError, FitError, LinkError, ToolMissingError, ValueError,
        RuntimeError,
    ) as e:  # fmt: skip
        raise click.ClickException(str(e)) from None


def _describe(net: Network) -> str:
    kinds = sum(1 for p in net.populations.values() if p.is_source)
    return (
        f"{net.name}: {len(net.populations)} populations ({kinds} spike sources), "
        f"{net.n_neurons} neurons, {len(net.projections)} projections, "
        f"{net.n_synapses} synapses, longest delay {net.max_delay}"
    )


def _load(net: str | None, dt_ms: float | None = None, input_file: Path | None = None) -> Any:
    """Return ``(network, image)``: the image is that of an ``.npz`` NET, else ``None``."""
    if net is not None and not Path(net).exists() and net not in api.examples():
        raise click.BadParameter(
            f"{net!r} is neither a file nor a bundled example; bundled examples: "
            f"{', '.join(sorted(api.examples()))}",
            param_hint="NET",
        )
    with _errors():
        is_plan = net is not None and (Path(net) / "plan.json").is_file()
        if net is not None and (is_plan or (net.endswith(".npz") and Path(net).is_file())):
            if dt_ms is not None or input_file is not None:
                raise ValueError("--dt-ms and --input apply to network files, not to images")
            return api.load_mapped(net)
        return api.load(net, dt_ms=dt_ms, inputs=input_file), None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spikefab")
def main() -> None:
    """Spiking networks on open neuromorphic hardware.

    NET is a network file (YAML), a NIR graph (.nir) or the name of a bundled example (see
    `spikefab examples`); without it, the bundled `synfire` example is used. `run` and
    `compare` also take an image written by `spikefab map` (.npz).
    """


@main.command()
def examples() -> None:
    """List the bundled example networks."""
    for name, path in sorted(api.examples().items()):
        net, _ = _load(str(path))
        click.echo(f"{name:12s} {_describe(net)}")


@main.command()
@net_argument
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when the network is valid.")
def check(net: str | None, quiet: bool) -> None:
    """Validate a network and print what quantization chose."""
    network, _ = _load(net)
    if quiet:
        return
    click.echo(f"{net or api.DEFAULT_NETWORK}: ok: {_describe(network)}")
    if network.quantization:
        click.echo("quantization:")
        for r in network.quantization:
            click.echo(f"  {r}")


@main.command()
@net_argument
@click.option(
    "--steps",
    default=200,
    show_default=True,
    help="Golden-model steps run to measure the firing of LIF populations.",
)
def info(net: str | None, steps: int) -> None:
    """Print sizes, synapse counts and expected events per step."""
    network, _ = _load(net)
    click.echo(_describe(network))
    rows = api.activity(network, steps)
    click.echo(
        f"\n{'population':16s} {'kind':12s} {'size':>7s} {'fan-out':>9s} {'fan-in':>9s} "
        f"{'spikes/step':>12s} {'events/step':>12s}"
    )
    for r in rows:
        click.echo(
            f"{r['population']:16s} {r['kind']:12s} {r['size']:7d} {r['fan_out']:9.1f} "
            f"{r['fan_in']:9.1f} {r['spikes_per_step']:12.2f} {r['events_per_step']:12.1f}"
        )
    spk = sum(r["spikes_per_step"] for r in rows)
    ev = sum(r["events_per_step"] for r in rows)
    click.echo(f"{'total':16s} {'':12s} {'':7s} {'':9s} {'':9s} {spk:12.2f} {ev:12.1f}")
    if steps > 0:
        click.echo(f"(LIF rates measured over {steps} golden steps; Poisson sources at their rate)")
    click.echo(f"\n{'projection':28s} {'synapses':>9s} {'weight_exp':>10s} {'delays':>8s} plastic")
    for pr in network.projections:
        d = f"{pr.delay.min()}..{pr.delay.max()}" if pr.n_synapses else "-"
        click.echo(
            f"{pr.name:28s} {pr.n_synapses:9d} {pr.weight_exp:10d} {d:>8s} "
            f"{'yes' if pr.stdp else 'no'}"
        )


BACKEND_HELP = (
    "golden: the bit-exact model; float: the unquantized float64 reference; system: the "
    "golden model of the mapped system, run from its memories; verilator: the generated RTL "
    "in Verilator, driven over the host link; serial: a board (--board) on a serial port "
    "(--port), driven over the same link."
)
RUN_BACKENDS = ["golden", "float", "system", "verilator", "serial"]


def _board_names() -> list[str]:
    from spikefab.boards import board_names

    return board_names()


placement_option = click.option(
    "--placement",
    type=click.Choice(["greedy", "partition", "random"]),
    default="greedy",
    show_default=True,
    help="How a network is placed when it is mapped on the fly (see `spikefab map`).",
)


def _devices(value: str | None) -> int | list[str] | None:
    """``--devices``: a number of simulated systems, or boards' names separated by commas."""
    if value is None:
        return None
    if value.isdigit():
        k = int(value)
        if k < 1:
            raise click.BadParameter(f"must be >= 1, not {k}", param_hint="--devices")
        return k
    names = [v.strip() for v in value.split(",") if v.strip()]
    known = _board_names()
    bad = [n for n in names if n not in known or n == "verilator"]
    if bad:
        raise click.BadParameter(
            f"{', '.join(bad)}: a device is a number of simulated systems or boards' names "
            f"({', '.join(n for n in known if n != 'verilator')})",
            param_hint="--devices",
        )
    return names


devices_option = click.option(
    "--devices",
    "devices_value",
    default=None,
    metavar="K|BOARD,...",
    help="Cut the network over several devices (contract section 11): K simulated systems, "
    "or boards' names (ulx3s,ulx3s,orangecrab). Verilator runs one MPI rank per device.",
)


def _secondary_rank() -> bool:
    """This process is an MPI rank other than 0 (under the user's mpiexec): it runs its
    device and leaves printing and writing to rank 0."""
    from spikefab.host.multidevice import mpi_world

    comm = mpi_world()
    return comm is not None and comm.rank != 0


def input_options(f):  # type: ignore[no-untyped-def]
    """``--input`` (recorded spikes for the spike sources) and ``--dt-ms`` (for NIR graphs)."""
    f = click.option(
        "--dt-ms",
        type=float,
        default=None,
        help="Step of a NIR graph, in ms (default: the step the graph records; docs/nir.md).",
    )(f)
    return click.option(
        "--input",
        "input_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Recorded spikes for the network's inputs: an .npz of <population>/step "
        "and <population>/neuron arrays, a spike file, or for a single input step and "
        "neuron arrays or a dense steps x neurons array (docs/nir.md).",
    )(f)


@contextmanager
def _terminable() -> Iterator[None]:
    """Let SIGTERM end a run as Ctrl-C does: what was received is kept."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run(
    network: Network,
    image: Any,
    backend: str,
    steps: int,
    show: bool,
    output: Path | None,
    **options: Any,
) -> Any:
    """Run one backend; on a failure save what was received to ``output`` and exit 1."""
    from spikefab.sim.results import RunAbortedError

    try:
        with _errors(), _terminable():
            return api.run(network, steps, backend, image=image, progress=show, **options)
    except RunAbortedError as e:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            e.partial.save(output)
            click.echo(
                f"{e}; the {e.partial.complete_steps} complete steps are saved "
                f"(marked partial) in {output}",
                err=True,
            )
        else:
            click.echo(str(e), err=True)
        sys.exit(1)


@main.command()
@net_argument
@click.option("--steps", "-n", default=1000, show_default=True, help="Steps to run.")
@click.option(
    "--backend",
    "-b",
    type=click.Choice(RUN_BACKENDS),
    default=None,
    help=BACKEND_HELP + " [default: golden; serial with a board, verilator with --board verilator]",
)
@click.option(
    "--board",
    "board_name",
    type=click.Choice(_board_names()),
    default=None,
    help="The board the serial backend runs (see `spikefab boards`).",
)
@click.option("--port", default=None, help="The board's serial port (e.g. /dev/ttyUSB1).")
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds the serial backend waits for a reply from the board.",
)
@click.option(
    "--cores",
    type=int,
    default=None,
    help="Cores of the simulated system (default: as many as needed).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("spikes.npz"),
    show_default=True,
    help="Spike file to write (what was received, marked partial, if the run fails).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar (default: when writing to a terminal).",
)
@click.option(
    "--device-map",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --devices and -b serial under mpiexec: a YAML list of each rank's board and "
    "port (docs/devices.md).",
)
@click.option(
    "--waves",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With -b verilator: write an FST waveform of the steps of --window to this file.",
)
@click.option(
    "--window",
    default=None,
    metavar="A:B",
    help="The steps --waves traces: A .. B-1 (default: the first 10).",
)
@click.option(
    "--sim-process",
    is_flag=True,
    help="With --devices and -b verilator: run each rank's simulation as a program beside "
    "the rank, not in its process (slower; a simulation that dies is reported as a failed "
    "device).",
)
@devices_option
@placement_option
@input_options
def run(
    net: str | None,
    steps: int,
    backend: str | None,
    board_name: str | None,
    port: str | None,
    timeout: float,
    cores: int | None,
    output: Path,
    progress: bool | None,
    device_map: Path | None,
    waves: Path | None,
    window: str | None,
    sim_process: bool,
    devices_value: str | None,
    placement: str,
    input_file: Path | None,
    dt_ms: float | None,
) -> None:
    """Run a network (or an image) and write its spikes (and probes) to a spike file.

    With --devices, the network is cut over several devices that exchange spikes; rank 0
    writes one spike file for the whole network.
    """
    if steps < 1:
        raise click.BadParameter(f"must be >= 1, not {steps}", param_hint="--steps")
    devices = _devices(devices_value)
    ports = None
    if device_map is not None:
        with _errors():
            devices, ports = _read_device_map(device_map)
        backend = backend or "serial"
    elif devices is not None and backend == "serial":
        raise click.UsageError("--devices with -b serial needs --device-map (each rank's port)")
    else:
        backend = _backend_for(backend, board_name, port)
    network, image = _load(net, dt_ms, input_file)
    if (devices is not None or ports is not None) and backend not in api.DEVICE_BACKENDS:
        raise click.UsageError(
            f"--devices runs on -b {', '.join(api.DEVICE_BACKENDS)}, not {backend}"
        )
    show = sys.stderr.isatty() if progress is None else progress
    span = _window(window)
    if span is not None and waves is None:
        raise click.UsageError("--window says which steps --waves traces: give --waves FILE")
    if waves is not None and (backend != "verilator" or devices is not None):
        raise click.UsageError("--waves traces one Verilator simulation: -b verilator")
    if sim_process and (backend != "verilator" or devices is None):
        raise click.UsageError("--sim-process applies to --devices with -b verilator")
    t0 = time.perf_counter()
    if waves is not None:
        from spikefab.host.waves import trace_run

        span = span or (0, min(10, steps))
        if span[1] > steps:
            raise click.BadParameter(
                f"{window!r} ends after the run's {steps} steps", param_hint="--window"
            )
        with _errors():
            if image is None:
                image = api.image_for(network, "verilator", board=board_name, cores=cores,
                                      placement=placement)  # fmt: skip
            result, _ = trace_run(network, image, steps, waves, span, timeout=max(timeout, 30))
        click.echo(f"waveform of steps {span[0]}..{span[1] - 1}: {waves}")
    else:
        result = _run(
            network, image, backend, steps, show, output, board=board_name, port=port,
            timeout=timeout, cores=cores, placement=placement,
            **({"devices": devices, "ports": ports} if devices is not None else {}),
            **({"sim_process": True} if sim_process else {}),
        )  # fmt: skip
    if _secondary_rank():
        return
    wall = time.perf_counter() - t0
    output.parent.mkdir(parents=True, exist_ok=True)
    result.save(output)
    sim_s = steps * network.dt_ms / 1000.0
    click.echo(
        f"{network.name}: {steps} steps ({sim_s:g} s of model time) on {backend} in "
        f"{wall:.2f} s; {result.n_spikes} spikes -> {output}"
    )
    recorded = {pb.target for pb in network.probes if pb.variable == "spikes"}
    recorded = recorded or set(network.populations)
    for name, rate in result.rates().items():
        if name not in recorded:
            click.echo(f"  {name:16s} (not recorded: no spikes probe)")
            continue
        n = int(result.counts()[name].sum())
        click.echo(f"  {name:16s} {n:8d} spikes  {rate.mean():8.2f} Hz mean")
    for line in _cycles_lines(result, board_name):
        click.echo(line)
    for line in _exchange_lines(result):
        click.echo(line)


def _count(devices: int | list[str]) -> int:
    return devices if isinstance(devices, int) else len(devices)


def _exchange_lines(result: api.RunResult) -> list[str]:
    """What a run over several devices exchanged."""
    ex = getattr(result, "exchange", None)
    if ex is None:
        return []
    steps = max(result.run_steps, 1)
    lines = [
        f"  exchange: {ex.rounds} rounds, {ex.spikes_sent / steps:.1f} spikes and "
        f"{ex.bytes_sent / steps:.0f} bytes per step between devices"
    ]
    for k, r in enumerate(ex.per_rank):
        lines.append(
            f"    rank {k}: {r['run']:.2f} s running its device, {r['exchange']:.2f} s in "
            "the exchange"
        )
    return lines


def _read_device_map(path: Path) -> tuple[list[str], list[str | None]]:
    """Each rank's board and port from a device map file."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    items = doc.get("devices") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: a device map holds 'devices:', a list of {{board, port}}")
    boards, ports = [], []
    known = [n for n in _board_names() if n != "verilator"]
    for k, item in enumerate(items):
        if not isinstance(item, dict) or "board" not in item or "port" not in item:
            raise ValueError(f"{path}: devices[{k}] needs 'board' and 'port'")
        if item["board"] not in known:
            raise ValueError(
                f"{path}: devices[{k}].board is {item['board']!r}; accepted: {', '.join(known)}"
            )
        boards.append(str(item["board"]))
        ports.append(str(item["port"]))
    return boards, ports


def _cycles_lines(result: api.RunResult, board_name: str | None) -> list[str]:
    """The device's step cycles and the real-time factor at the boards' clocks."""
    if result.cycles_per_step is None:
        return []
    from spikefab.boards import BOARDS

    boards = [BOARDS[board_name]] if board_name in BOARDS else list(BOARDS.values())
    rt = ", ".join(
        f"{b.clock_hz / 1e6:g} MHz ({b.name}) {result.real_time_factor(b.clock_hz):.3g}x "
        f"(longest step {result.real_time_factor(b.clock_hz, worst=True):.3g}x)"
        for b in boards
    )
    return [
        f"  device: {result.cycles_per_step:.1f} cycles per step on average, "
        f"{result.max_step_cycles} in the longest (STEP_CYCLES, MAX_STEP_CYCLES)",
        f"  real time at dt {result.dt_ms:g} ms: {rt}",
    ]


def _backend_for(backend: str | None, board_name: str | None, port: str | None) -> str:
    """The backend of ``run``: as given, or the board's (serial, or verilator)."""
    if board_name == "verilator":
        if backend == "serial":
            raise click.UsageError("--backend serial runs a board with a bitstream, not verilator")
        return "verilator"
    if board_name is not None:
        if backend not in (None, "serial"):
            raise click.UsageError(f"--board {board_name} runs on --backend serial, not {backend}")
        backend = "serial"
    backend = backend or "golden"
    if backend == "serial" and (board_name is None or port is None):
        raise click.UsageError("--backend serial needs --board and --port")
    return backend


@main.command()
@net_argument
@click.option("--steps", "-n", default=200, show_default=True, help="Steps to run.")
@click.option(
    "--against",
    type=click.Choice(RUN_BACKENDS[1:]),
    default="verilator",
    show_default=True,
    help="The backend compared with the golden model.",
)
@click.option(
    "--with",
    "also",
    type=click.Choice(["icarus"]),
    multiple=True,
    help="Also compare the RTL in Icarus Verilog (slow: about a second per step).",
)
@click.option("--cores", type=int, default=None, help="Cores of the simulated system.")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the spike files into this folder.",
)
@click.option("--progress/--no-progress", default=None, help="Show progress bars.")
@click.option(
    "--board",
    "board_name",
    type=click.Choice(list(_board_names())),
    default=None,
    help="The board of --against serial, or whose system --against verilator or system "
    "simulates (see `spikefab boards`).",
)
@click.option("--port", default=None, help="The board's serial port (--against serial).")
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds the serial backend waits for a reply from the board.",
)
@click.option(
    "--waves/--no-waves",
    default=True,
    show_default=True,
    help="On a spike mismatch on Verilator, run again with an FST trace of the steps around "
    "the first divergence: divergence.fst and divergence.txt (the neuron's state, golden "
    "beside RTL) in --output, or here.",
)
@devices_option
@placement_option
@input_options
def compare(
    net: str | None,
    steps: int,
    against: str,
    also: tuple[str, ...],
    cores: int | None,
    output: Path | None,
    progress: bool | None,
    board_name: str | None,
    port: str | None,
    timeout: float,
    waves: bool,
    devices_value: str | None,
    placement: str,
    input_file: Path | None,
    dt_ms: float | None,
) -> None:
    """Run a network on the golden model and on other backends; compare every spike.

    Given an image, the golden model runs the network it holds and the system backends run
    the image.

    Prints the events compared and the mismatches; on a mismatch, the first divergence with
    its context (step, population, neuron, what each side did) and exits with status 1.
    """
    if steps < 1:
        raise click.BadParameter(f"must be >= 1, not {steps}", param_hint="--steps")
    if against == "serial" and (board_name is None or port is None):
        raise click.UsageError("--against serial needs --board and --port")
    devices = _devices(devices_value)
    if devices is not None and (against not in ("system", "verilator") or also):
        raise click.UsageError("--devices compares on --against verilator or system")
    network, image = _load(net, dt_ms, input_file)
    show = sys.stderr.isatty() if progress is None else progress
    golden = _run(network, None, "golden", steps, show, None)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        golden.save(output / "golden.npz")
    failed = False
    for backend in (against, *also):
        t0 = time.perf_counter()
        # a board: on the board itself (serial), or its system simulated (the same image)
        board = board_name if backend in ("serial", "verilator", "system") else None
        other = _run(
            network, image, backend, steps, show,
            None if output is None else output / f"{backend}.npz",
            board=board, port=port, timeout=timeout, cores=cores, placement=placement,
            **({"devices": devices} if devices is not None else {}),
        )  # fmt: skip
        wall = time.perf_counter() - t0
        cmp = api.compare(golden, other)
        if output is not None:
            other.save(output / f"{backend}.npz")
        over = "" if devices is None else f" over {_count(devices)} devices"
        click.echo(f"{network.name}: {steps} steps, golden vs {backend}{over} ({wall:.1f} s)")
        click.echo(
            f"  spike events compared: {cmp.events} (golden {golden.n_spikes}, "
            f"{backend} {other.n_spikes})"
        )
        click.echo(f"  spike mismatches:      {cmp.mismatches}")
        for key, n in cmp.probe_mismatches.items():
            if key.startswith("final weights/"):
                samples = golden.weights[key.split("/", 1)[1]].size
                click.echo(f"  {key}: {samples} weights compared, {n} mismatches")
                continue
            samples = golden.probes[key].values.size
            click.echo(f"  probe {key}: {samples} values compared, {n} mismatches")
        for line in _cycles_lines(other, board):
            click.echo(line)
        for line in _exchange_lines(other):
            click.echo(line)
        if cmp.equal:
            click.echo("  identical")
        else:
            click.echo(cmp.first)
            failed = True
            if waves and backend == "verilator" and devices is None and cmp.mismatches:
                _trace_divergence(network, image, golden, other, output or Path.cwd(),
                                  board=board, cores=cores, placement=placement)  # fmt: skip
    if failed:
        sys.exit(1)


def _trace_divergence(
    network: Network, image: Any, golden: Any, other: Any, out_dir: Path, **mapping: Any
) -> None:
    """Trace the RTL around the first divergence and print the report."""
    from spikefab.host.waves import trace_divergence

    click.echo("tracing the RTL around the first divergence ...", err=True)
    with _errors():
        if image is None:
            image = api.image_for(network, "verilator", **mapping)
        report = trace_divergence(network, image, golden, other, out_dir)
    if report is not None:
        click.echo(report.text())
        click.echo(f"(report also in {out_dir / 'divergence.txt'})")


def _window(value: str | None) -> tuple[int, int] | None:
    """``A:B`` as the steps ``A .. B - 1``."""
    if value is None:
        return None
    parts = value.split(":")
    try:
        a, b = (int(x) for x in parts)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not A:B (the first step traced and the step after the last)",
            param_hint="--window",
        ) from None
    if not 0 <= a < b:
        raise click.BadParameter(f"{value!r}: need 0 <= A < B", param_hint="--window")
    return a, b


@main.command("import-nir")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dt-ms",
    type=float,
    default=None,
    help="Step with which the graph is discretized, in ms (default: the step it records).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Network description to write [default: FILE with .yaml].",
)
@click.option("--name", default=None, help="Network name [default: the graph's, or FILE's].")
def import_nir_(file: Path, dt_ms: float | None, output: Path | None, name: str | None) -> None:
    """Convert a NIR graph into a network description and report every rounding (docs/nir.md)."""
    from spikefab.mapping.nir import import_nir

    try:
        imported = import_nir(file, dt_ms, name=name)
    except NetworkError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    out = output or file.with_suffix(".yaml")
    dt = imported.network.dt_ms
    out.write_text(imported.to_yaml(f"Imported from {file.name} (NIR) at dt_ms {dt:g}."))
    click.echo(f"{file} -> {out}: {_describe(imported.network)}")
    click.echo("mapping and quantization:")
    for line in imported.report():
        click.echo(f"  {line}")


@main.command("export-nir")
@net_argument
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="NIR file to write.",
)
def export_nir_(net: str | None, output: Path) -> None:
    """Write a network as a NIR graph that imports back into the same network."""
    from spikefab.mapping.nir import write_nir

    network, _ = _load(net)
    try:
        write_nir(network, output)
    except NetworkError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    click.echo(f"{network.name} -> {output}")


def _map_devices(
    network: Network,
    devices: int | list[str],
    placement: str,
    rate_steps: int,
    seed: int,
    output: Path | None,
    log: Any,
) -> None:
    from spikefab.host.multidevice import map_devices, save_plan

    with _errors():
        dm = map_devices(network, devices, placement=placement, rates=rate_steps, seed=seed)
    log(f"cut over {dm.plan.devices} devices, each part placed")
    click.echo(dm.report())
    for part, m in zip(dm.plan.parts, dm.mappings, strict=True):
        click.echo(f"\n--- device {part.device} ({dm.names[part.device]}) ---")
        click.echo(m.report())
    if output is not None:
        with _errors():
            save_plan(output, dm.plan, dm.images, dm.names)
        click.echo(f"multi-device image ({dm.plan.devices} devices) -> {output}")


@main.command("map")
@net_argument
@placement_option
@click.option(
    "--board",
    "board_name",
    type=click.Choice(_board_names()),
    default=None,
    help="Map onto a board's system (see `spikefab boards`) instead of sizes given here.",
)
@click.option("--cores", type=int, default=None, help="Cores [default: 15].")
@click.option("--neurons", type=int, default=None, help="Neurons per core [default: 256].")
@click.option("--axons", type=int, default=None, help="Axons per core [default: 2048].")
@click.option(
    "--synapses", type=int, default=None, help="Synapse entries per core [default: 32768]."
)
@click.option("--delay-slots", type=int, default=None, help="Delay slots [default: 16].")
@click.option("--acc-bits", type=int, default=None, help="Accumulator width [default: 24].")
@click.option("--route-entries", type=int, default=None, help="Router entries [default: 16384].")
@click.option(
    "--sources",
    type=int,
    default=None,
    help="Host source ids [default: the sources, rounded up to a power of two, >= 256].",
)
@click.option(
    "--rate-steps",
    type=int,
    default=200,
    show_default=True,
    help="Golden-model steps run to measure firing rates, which weight the partition and "
    "give events per step; 0: weight by synapse counts.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random choices.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Image file to write (.npz); it holds only the cores up to the last one used "
    "unless --cores is given.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG of the placement and the traffic between cores.",
)
@devices_option
def map_(
    net: str | None,
    placement: str,
    board_name: str | None,
    cores: int | None,
    neurons: int | None,
    axons: int | None,
    synapses: int | None,
    delay_slots: int | None,
    acc_bits: int | None,
    route_entries: int | None,
    sources: int | None,
    rate_steps: int,
    seed: int,
    output: Path | None,
    plot_path: Path | None,
    devices_value: str | None,
) -> None:
    """Place a network on cores, build its tables and print how it uses the hardware.

    With --devices, the network is first cut over the devices; the report adds the spikes
    and link bytes between them, and --output writes a multi-device image (a directory).

    The report gives every core's use of every limit, the router's, and the expected
    events per step between cores, from the host and to the host. A network that does not
    fit is refused with the limit it exceeds, where, by how much and what would make it fit.
    """
    if rate_steps < 0:
        raise click.BadParameter(f"must be >= 0, not {rate_steps}", param_hint="--rate-steps")
    t0 = time.perf_counter()
    network, _ = _load(net)
    t_load = time.perf_counter() - t0

    def log(msg: str) -> None:
        click.echo(f"[{time.perf_counter() - t0:6.2f} s] {msg}", err=True)

    log(f"loaded {_describe(network)}")
    devices = _devices(devices_value)
    if devices is not None:
        if board_name is not None or cores is not None or plot_path is not None:
            raise click.UsageError(
                "--devices names the boards itself (--devices ulx3s,orangecrab); it takes "
                "no --board, --cores or --plot"
            )
        _map_devices(network, devices, placement, rate_steps, seed, output, log)
        click.echo(f"total: {time.perf_counter() - t0:.2f} s")
        return
    board = None if board_name == "verilator" else board_name
    sizes = dict(
        neurons=neurons, axons=axons, synapses=synapses, delay_slots=delay_slots,
        acc_bits=acc_bits, route_entries=route_entries, sources=sources,
    )  # fmt: skip
    given = cores is not None or any(v is not None for v in sizes.values())
    if board is not None and given:
        raise click.UsageError("give --board or sizes (--cores, --neurons, ...), not both")
    hardware = None
    if board is None:
        from spikefab.mapping.hardware import simulated_hardware

        try:
            hardware = simulated_hardware(network, cores, **sizes)
        except (TypeError, ValueError) as e:
            raise click.BadParameter(str(e)) from None
    with _errors():
        m = api.map_network(
            network, board=board, hardware=hardware, placement=placement, rates=rate_steps,
            seed=seed, log=log,
        )  # fmt: skip
    click.echo(m.report())
    if board is not None:
        from spikefab.boards import get_board
        from spikefab.host.estimate import estimate

        with _errors():
            image = m.image(network_yaml=network.to_yaml())
            est = estimate(network, get_board(board), rate_steps or 200, image=image)
        click.echo(f"estimate (in full: spikefab estimate NET --board {board}):")
        click.echo("\n".join(est.lines()[1:5]))
    click.echo(
        f"total: {time.perf_counter() - t0:.2f} s (loading {t_load:.2f} s"
        + (", rates" if rate_steps else "")
        + ")"
    )
    if plot_path is not None:
        from spikefab.mapping.plot import plot_mapping

        plot_mapping(m, plot_path)
        click.echo(f"placement and traffic -> {plot_path}")
    if output is not None:
        from spikefab.mapping.core_image import FitError

        try:
            image = m.image(trim=cores is None and board is None, network_yaml=network.to_yaml())
        except FitError as e:
            raise click.ClickException(f"no image written: {e}") from None
        output.parent.mkdir(parents=True, exist_ok=True)
        image.save(output)
        click.echo(f"image ({image.config.cores} cores) -> {output}")


@main.command()
@net_argument
@click.option(
    "--board",
    "board_name",
    type=click.Choice(_board_names()),
    required=True,
    help="The board (see `spikefab boards`).",
)
@click.option(
    "--steps",
    "-n",
    default=500,
    show_default=True,
    help="Golden-model steps the cycles and the link load are predicted over.",
)
@click.option(
    "--core",
    "core",
    default=None,
    help="Change the board's cores, e.g. neurons=1024,axons=2048: the resources are then "
    "predicted by the resource model (docs/estimate.md).",
)
def estimate(net: str | None, board_name: str, steps: int, core: str | None) -> None:
    """Before a build: fit, cycles per step, real time, link load, resources and energy.

    Everything but the energy comes from models checked against the RTL (docs/estimate.md);
    the energy is an estimate from published power figures, given with its sources.
    """
    network, image = _load(net)
    if image is not None:
        raise click.BadParameter("give a network, not an image", param_hint="NET")
    if steps < 1:
        raise click.BadParameter(f"{steps}: give at least 1", param_hint="--steps")
    with _errors():
        est = api.estimate(network, board_name, steps, core=core)
    for line in est.lines():
        click.echo(line)
    if not est.fits:
        sys.exit(1)


@main.command()
@click.option("--neurons", default=256, show_default=True, help="Neurons per core.")
@click.option("--axons", default=256, show_default=True, help="Axons per core.")
@click.option("--synapses", default=4096, show_default=True, help="Synapse entries per core.")
@click.option("--delay-slots", default=16, show_default=True, help="Delay slots D.")
@click.option("--acc-bits", default=24, show_default=True, help="Dendrite accumulator width.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out/neuron_core.v"),
    show_default=True,
    help="Verilog file; the JSON description goes beside it (.json).",
)
def verilog(
    neurons: int, axons: int, synapses: int, delay_slots: int, acc_bits: int, output: Path
) -> None:
    """Write the neuron core as Verilog, with a JSON description of its ports and memories."""
    import json

    from spikefab.hdl.core import NeuronCore
    from spikefab.hdl.layouts import CoreConfig, describe
    from spikefab.sim.rtl import write_verilog

    try:
        config = CoreConfig(
            neurons=neurons,
            axons=axons,
            synapses=synapses,
            delay_slots=delay_slots,
            acc_bits=acc_bits,
        )
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e)) from None
    core = NeuronCore(config)
    click.echo(
        f"generating the neuron core ({neurons} neurons, {axons} axons, "
        f"{synapses} synapses, {delay_slots} delay slots) ...",
        err=True,
    )
    write_verilog(core, "neuron_core", output)
    desc = output.with_suffix(".json")
    desc.write_text(json.dumps(describe(config, core), indent=1) + "\n")
    click.echo(f"{output}\n{desc}")


@main.command()
@click.argument("spikes", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG to write (default: beside the spike file).",
)
def plot(spikes: Path, output: Path | None) -> None:
    """Plot a spike file as a raster (and its probes) to PNG."""
    from spikefab.sim.plot import plot_result
    from spikefab.sim.results import load_result

    try:
        result = load_result(spikes)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    out = output or spikes.with_suffix(".png")
    plot_result(result, out)
    click.echo(f"{spikes} -> {out}")


@main.command()
def boards() -> None:
    """List the boards, their systems and capacity (see docs/boards.md)."""
    from spikefab.boards import board_names, get_board

    for name in board_names():
        b = get_board(name)
        if b.platform is None:
            click.echo(f"{name:12s} {b.title}: {b.why}; at most {b.capacity()}")
            continue
        click.echo(
            f"{name:12s} {b.title} ({b.device}, {b.clock_hz / 1e6:g} MHz, UART {b.baud} baud): "
            f"{b.capacity()}"
        )
        per_entry = b.bits_per_entry()
        if per_entry is not None:
            click.echo(f"{'':12s} block RAM: {per_entry.line()}")


board_option = click.option(
    "--board",
    "board_name",
    type=click.Choice(_board_names()),
    required=True,
    help="The board (see `spikefab boards`).",
)


def _build_dir(board_name: str, output: Path | None) -> Path:
    return output if output is not None else Path("build") / board_name


@main.command()
@board_option
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Build folder [default: build/BOARD].",
)
@click.option(
    "--cores",
    type=int,
    default=1,
    show_default=True,
    help="Cores of the simulated system (--board verilator only).",
)
def build(board_name: str, output: Path | None, cores: int) -> None:
    """Build a board's bitstream with the open tools from PyPI, and report on it.

    The report gives the LUTs, flip-flops, block RAMs, SPRAMs and DSPs used, nextpnr's
    maximum frequency against the board's clock, and the board's capacity. A design that
    does not fit or misses the clock fails, naming the resource or the frequency. Networks
    are loaded at run time, so one bitstream serves every network that fits the board.
    With --board verilator, the Verilator simulation of the system is compiled instead.
    """
    from spikefab.boards import get_board
    from spikefab.boards.build import BuildError
    from spikefab.boards.build import build as build_board

    board = get_board(board_name)
    if board.platform is None:
        from dataclasses import replace

        from spikefab.sim.verilator import build_harness

        try:
            config = replace(board.system, cores=cores)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--cores") from None
        program = build_harness(config, progress=True)
        click.echo(f"{board.title}: {config.cores} core(s) of {config.core.neurons} neurons")
        click.echo(f"  simulation: {program}")
        return
    out = _build_dir(board_name, output)
    try:
        report = build_board(board, out, say=lambda line: click.echo(line, err=True))
    except ImportError as e:
        raise click.ClickException(str(e)) from None
    except BuildError as e:
        if e.report is not None:
            click.echo("\n".join(e.report.lines()), err=True)
        raise click.ClickException(str(e)) from None
    click.echo("\n".join(report.lines()))


@main.command()
@board_option
@click.option(
    "--bitstream",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The bitstream [default: the one `spikefab build` wrote in build/BOARD].",
)
def program(board_name: str, bitstream: Path | None) -> None:
    """Load a board's bitstream into the board (openFPGALoader, iceprog or dfu-util).

    The first of the board's programmers that is installed loads it; without any, the
    command says exactly what to install.
    """
    from spikefab.boards import get_board
    from spikefab.boards.build import BuildError
    from spikefab.boards.build import program as program_board

    board = get_board(board_name)
    try:
        program_board(board, bitstream, say=lambda line: click.echo(line, err=True))
    except BuildError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{board.title} programmed; its UART: {board.uart}")


if __name__ == "__main__":
    main()
