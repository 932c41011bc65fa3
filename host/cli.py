"""The ``spikefab`` command line."""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path

import click
import numpy as np
from spikefab.mapping.network import Network, NetworkError

DEFAULT_NETWORK = "synfire"


def _examples() -> dict[str, Path]:
    root = resources.files("spikefab.examples")
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".yaml")}


def _resolve_path(net: str | None) -> Path:
    if net is None:
        net = DEFAULT_NETWORK
    path = Path(net)
    if path.exists():
        return path
    examples = _examples()
    if net in examples:
        return examples[net]
    raise click.BadParameter(
        f"{net!r} is neither a file nor a bundled example; bundled examples: "
        f"{', '.join(sorted(examples))}",
        param_hint="NET",
    )


def _load(
    net: str | None, dt_ms: float | None = None, input_file: Path | None = None
) -> tuple[Path, Network]:
    from spikefab.host.inputs import InputError, network_file
    from spikefab.mapping.loader import load

    path = _resolve_path(net)
    try:
        # a NIR graph, or recorded inputs, give a description written into the cache
        path, _ = network_file(path, dt_ms, input_file)
        return path, load(path)
    except NetworkError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    except (InputError, ValueError) as e:
        raise click.ClickException(str(e)) from None


def _is_image(net: str | None) -> bool:
    return net is not None and net.endswith(".npz") and Path(net).is_file()


def _load_any(net: str | None, dt_ms: float | None = None, input_file: Path | None = None):  # type: ignore[no-untyped-def]
    """Load a network, or an image and the network it holds: ``(path, network, image)``."""
    if not _is_image(net):
        path, network = _load(net, dt_ms, input_file)
        return path, network, None
    if dt_ms is not None or input_file is not None:
        raise click.ClickException("--dt-ms and --input apply to network files, not to images")
    from spikefab.mapping.image import load_image
    from spikefab.mapping.loader import load_text

    assert net is not None
    path = Path(net)
    try:
        image = load_image(path)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if not image.network_yaml:
        raise click.ClickException(f"{path}: the image holds no network description")
    try:
        network = load_text(image.network_yaml, source=f"{path} (network)", base=path.parent)
    except NetworkError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    return path, network, image


def _describe(net: Network) -> str:
    kinds = sum(1 for p in net.populations.values() if p.is_source)
    return (
        f"{net.name}: {len(net.populations)} populations ({kinds} spike sources), "
        f"{net.n_neurons} neurons, {len(net.projections)} projections, "
        f"{net.n_synapses} synapses, longest delay {net.max_delay}"
    )


net_argument = click.argument("net", required=False, metavar="[NET]")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spikefab")
def main() -> None:
    """Spiking networks on open neuromorphic hardware.

    NET is a network file (YAML) or the name of a bundled example (see `spikefab
    examples`); without it, the bundled `synfire` example is used. `run` and `compare` also
    take an image written by `spikefab map` (.npz).
    """


@main.command()
def examples() -> None:
    """List the bundled example networks."""
    from spikefab.mapping.loader import load

    for name, path in sorted(_examples().items()):
        net = load(path)
        click.echo(f"{name:12s} {_describe(net)}")


@main.command()
@net_argument
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when the network is valid.")
def check(net: str | None, quiet: bool) -> None:
    """Validate a network and print what quantization chose."""
    path, network = _load(net)
    if quiet:
        return
    click.echo(f"{path}: ok: {_describe(network)}")
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
    from spikefab.sim.golden import GoldenModel

    _, network = _load(net)
    click.echo(_describe(network))
    result = GoldenModel(network).run(steps) if steps > 0 else None
    counts = result.counts() if result else {}
    out_degree: dict[str, np.ndarray] = {
        name: np.zeros(p.size, dtype=np.int64) for name, p in network.populations.items()
    }
    in_degree = dict(out_degree)
    in_degree = {k: v.copy() for k, v in in_degree.items()}
    for pr in network.projections:
        out_degree[pr.pre] += np.bincount(pr.pre_idx, minlength=network.populations[pr.pre].size)
        in_degree[pr.post] += np.bincount(pr.post_idx, minlength=network.populations[pr.post].size)
    click.echo(
        f"\n{'population':16s} {'kind':12s} {'size':>7s} {'fan-out':>9s} {'fan-in':>9s} "
        f"{'spikes/step':>12s} {'events/step':>12s}"
    )
    total_spk = total_ev = 0.0
    for name, p in network.populations.items():
        if p.source is not None and p.source.kind == "poisson":
            rate = np.full(p.size, p.source.rate_hz * network.dt_ms / 1000.0)
        elif name in counts and steps > 0:
            rate = counts[name] / steps
        else:
            rate = np.zeros(p.size)
        spk = float(rate.sum())
        ev = float((rate * out_degree[name]).sum())
        total_spk += spk
        total_ev += ev
        kind = "spike_source" if p.is_source else "lif"
        click.echo(
            f"{name:16s} {kind:12s} {p.size:7d} {out_degree[name].mean():9.1f} "
            f"{in_degree[name].mean():9.1f} {spk:12.2f} {ev:12.1f}"
        )
    click.echo(f"{'total':16s} {'':12s} {'':7s} {'':9s} {'':9s} {total_spk:12.2f} {total_ev:12.1f}")
    if steps > 0:
        click.echo(f"(LIF rates measured over {steps} golden steps; Poisson sources at their rate)")
    click.echo(f"\n{'projection':28s} {'synapses':>9s} {'weight_exp':>10s} {'delays':>8s} plastic")
    for pr in network.projections:
        d = f"{pr.delay.min()}..{pr.delay.max()}" if pr.n_synapses else "-"
        click.echo(
            f"{pr.name:28s} {pr.n_synapses:9d} {pr.weight_exp:10d} {d:>8s} "
            f"{'yes' if pr.stdp else 'no'}"
        )


BACKENDS = ["golden", "float", "system", "verilator", "serial"]
BACKEND_HELP = (
    "golden: the bit-exact model; float: the unquantized float64 reference; system: the "
    "golden model of the mapped system, run from its memories; verilator: the generated RTL "
    "in Verilator, driven over the host link; serial: a board (--board) on a serial port "
    "(--port), driven over the same link."
)


def _system_for(network: Network, cores: int | None, compact: bool = False):  # type: ignore[no-untyped-def]
    """The simulated system a network runs on: cores of the default size, as many as needed.

    With ``compact``, the memories are cut to what the network needs (powers of two), which
    keeps an event-driven simulator's image load short; Verilator uses the fixed size so that
    one build serves many networks.
    """
    from spikefab.hdl.layouts import CoreConfig, SystemConfig
    from spikefab.mapping.image import place_sequential

    core = CoreConfig(**SIM_CORE)
    n = cores or max(1, -(-network.n_neurons // core.neurons))
    n_src = sum(p.size for p in network.populations.values() if p.is_source)
    sources = max(256, 1 << max(0, n_src - 1).bit_length())
    config = SystemConfig(
        cores=n, core=core, sources=sources, route_entries=16384, inject_depth=1024
    )
    if not compact:
        return config

    def pow2(x: int, lo: int) -> int:
        return max(lo, 1 << max(0, x - 1).bit_length())

    stats = place_sequential(network, config).stats
    small = CoreConfig(
        neurons=pow2(min(network.n_neurons, 256), 16),
        axons=pow2(max(stats["axons"]), 16),
        synapses=pow2(max(stats["entries"]), 16),
        delay_slots=pow2(network.max_delay, 1),
        learning=any(pr.stdp is not None for pr in network.projections),
    )
    n = cores or max(1, -(-network.n_neurons // small.neurons))
    return SystemConfig(
        cores=n,
        core=small,
        sources=pow2(max(n_src, 1), 16),
        route_entries=pow2(stats["route_entries"], 16),
        inject_depth=min(1024, pow2(max(n_src, 1), 16)),
    )


#: The core of the simulated systems (with the learning unit), and the most cores they have.
SIM_CORE = dict(neurons=256, axons=2048, synapses=32768, delay_slots=16, learning=True)
SIM_MAX_CORES = 15


def _hardware(
    network: Network,
    cores: int | None = None,
    neurons: int | None = None,
    axons: int | None = None,
    synapses: int | None = None,
    delay_slots: int | None = None,
    acc_bits: int | None = None,
    route_entries: int | None = None,
    sources: int | None = None,
):  # type: ignore[no-untyped-def]
    """The hardware a network is mapped onto: the simulated system's, with any size given."""
    from spikefab.hdl.layouts import CoreConfig
    from spikefab.mapping.hardware import Hardware

    n_src = sum(p.size for p in network.populations.values() if p.is_source)
    given = dict(neurons=neurons, axons=axons, synapses=synapses, delay_slots=delay_slots)
    sizes = {k: v if v is not None else SIM_CORE[k] for k, v in given.items()}
    try:
        core = CoreConfig(
            **sizes, acc_bits=24 if acc_bits is None else acc_bits, learning=SIM_CORE["learning"]
        )
        return Hardware(
            cores=cores or SIM_MAX_CORES,
            core=core,
            route_entries=route_entries or 16384,
            sources=sources or max(256, 1 << max(0, n_src - 1).bit_length()),
            inject_depth=1024,
        )
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e)) from None


def _map(
    network: Network,
    path: Path,
    cores: int | None,
    method: str = "greedy",
    seed: int = 0,
    board=None,  # type: ignore[no-untyped-def]
):  # type: ignore[no-untyped-def]
    """Map a network onto the simulated system (as many cores as it uses, unless ``cores``),
    or onto a board's system (all its cores: the image is the system the bitstream holds)."""
    from spikefab.mapping.core_image import FitError
    from spikefab.mapping.hardware import Hardware
    from spikefab.mapping.mapper import map_network

    try:
        if board is not None:
            m = map_network(network, Hardware.from_board(board), method, seed=seed)
            return m.image(network_yaml=path.read_text())
        m = map_network(network, _hardware(network, cores), method, seed=seed)
        return m.image(trim=cores is None, network_yaml=path.read_text())
    except FitError as e:
        raise click.ClickException(str(e)) from None
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None


def _run_icarus(network: Network, path: Path, steps: int, cores: int | None, image=None):  # type: ignore[no-untyped-def]
    """Run a network (or an image) on the device's RTL in Icarus Verilog (through cocotb)."""
    import hashlib
    import json

    import spikefab.sim
    from spikefab.hdl.top import SimTop
    from spikefab.mapping.image import place_sequential
    from spikefab.sim.results import load_result
    from spikefab.sim.rtl import run_cocotb, write_verilog
    from spikefab.sim.verilator import cache_dir

    if image is None:
        config = _system_for(network, cores, compact=True)
        image = place_sequential(network, config, network_yaml=path.read_text())
    else:
        config = image.config
    key = hashlib.sha256(repr(config).encode()).hexdigest()[:16]
    build = cache_dir() / "icarus" / key
    click.echo(
        f"icarus: {config.cores} core(s) of {config.core.neurons} neurons, "
        f"{config.core.synapses} synapse entries; simulating in {build} ...",
        err=True,
    )
    verilog = write_verilog(SimTop(config), "spikefab_top", build / "spikefab_top.v")
    image.save(build / "image.npz")
    spikes = build / "spikes.npz"
    spikes.unlink(missing_ok=True)
    job = {
        "image": str(build / "image.npz"),
        "network": str(path if path.suffix != ".npz" else path.with_suffix(".yaml")),
        "steps": steps,
        "backend": "icarus",
        "output": str(spikes),
    }
    (build / "job.json").write_text(json.dumps(job))
    run_cocotb(
        "icarus",
        [verilog],
        "spikefab_top",
        "spikefab.sim.cocotb_device",
        test_dir=Path(spikefab.sim.__file__).parent,
        build_dir=build,
        extra_env={"SPIKEFAB_JOB": str(build / "job.json")},
    )
    if not spikes.exists():
        raise click.ClickException(f"the Icarus run wrote no spike file; see {build}")
    return load_result(spikes)


def _run_backend(
    network: Network,
    path: Path,
    backend: str,
    steps: int,
    cores: int | None,
    show: bool,
    image=None,  # type: ignore[no-untyped-def]
    method: str = "greedy",
    board=None,  # type: ignore[no-untyped-def]
    port: str | None = None,
    timeout: float = 5.0,
):  # type: ignore[no-untyped-def]
    """Run ``network`` on one backend and return its RunResult.

    The system backends run ``image``, or the network mapped on the fly with ``method``
    (onto ``board``'s system for the serial backend, which talks to it on ``port``).
    """
    from tqdm import tqdm

    if backend in ("golden", "float"):
        model = _model(network, backend)
        with tqdm(total=steps, unit="step", disable=not show, desc=backend) as bar:
            return model.run(steps, progress=bar.update)
    from spikefab.host.runtime import check_device, run_network

    if backend == "serial":
        return _run_serial(network, path, steps, show, image, method, board, port, timeout)
    if image is None:
        image = _map(network, path, cores, method)
    config = image.config
    if backend == "system":
        from spikefab.sim.system_model import SystemModel

        device = SystemModel(config)
    else:
        from spikefab.host.verilator import open_verilator

        click.echo(f"{backend}: {config.cores} core(s) of {config.core.neurons} neurons", err=True)
        device = open_verilator(config, timeout=60.0)
    try:
        check_device(device, config)
        with tqdm(total=steps, unit="step", disable=not show, desc=backend) as bar:
            return run_network(network, image, device, steps, backend, progress=bar.update)
    finally:
        device.close()


def _run_serial(
    network: Network,
    path: Path,
    steps: int,
    show: bool,
    image,  # type: ignore[no-untyped-def]
    method: str,
    board,  # type: ignore[no-untyped-def]
    port: str | None,
    timeout: float,
):  # type: ignore[no-untyped-def]
    """Run a network (or an image) on a board on a serial port (``spikefab run -b serial``)."""
    from spikefab.host.link import LinkDevice, LinkError, SerialTransport
    from spikefab.host.runtime import check_device, run_network
    from tqdm import tqdm

    if board is None or port is None:
        raise click.UsageError("--backend serial needs --board and --port")
    if board.platform is None:
        raise click.UsageError(f"--backend serial runs a board with a bitstream, not {board.name}")
    if image is None:
        image = _map(network, path, None, method, board=board)
    elif image.config != board.system:
        raise click.ClickException(
            f"the image was made for {image.config}, not for the {board.title}'s system "
            f"({board.capacity()}): map the network with --board {board.name}"
        )
    click.echo(f"serial: {board.title} on {port} at {board.baud} baud", err=True)
    try:
        device = LinkDevice(SerialTransport(port, board.baud), timeout=timeout)
    except LinkError as e:
        raise click.ClickException(str(e)) from None
    try:
        try:
            check_device(device, board.system)
        except ValueError as e:
            raise click.ClickException(
                f"{e}: is the board programmed with this spikefab's {board.name} bitstream "
                f"(spikefab build --board {board.name}; spikefab program --board {board.name})?"
            ) from None
        with tqdm(total=steps, unit="step", disable=not show, desc=board.name) as bar:
            return run_network(network, image, device, steps, "serial", progress=bar.update)
    except LinkError as e:
        raise click.ClickException(f"{board.title} on {port}: {e}") from None
    finally:
        device.close()


def _board(name: str | None):  # type: ignore[no-untyped-def]
    """The board called ``name`` (``None`` stays ``None``)."""
    if name is None:
        return None
    from spikefab.boards import get_board

    try:
        return get_board(name)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--board") from None


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
        help="Recorded spikes for the network's spike sources: an .npz of <population>/step "
        "and <population>/neuron arrays, a spike file, or for a single source step and "
        "neuron arrays or a dense steps x neurons array (docs/nir.md).",
    )(f)


@main.command()
@net_argument
@click.option("--steps", "-n", default=1000, show_default=True, help="Steps to run.")
@click.option(
    "--backend",
    "-b",
    type=click.Choice(BACKENDS),
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
    help="Spike file to write.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar (default: when writing to a terminal).",
)
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
    placement: str,
    input_file: Path | None,
    dt_ms: float | None,
) -> None:
    """Run a network (or an image) and write its spikes (and probes) to a spike file."""
    if steps < 1:
        raise click.BadParameter(f"must be >= 1, not {steps}", param_hint="--steps")
    board = _board(board_name)
    if backend is None:
        backend = "golden" if board is None else "serial"
    if board is not None and board.platform is None:
        if backend == "serial":
            raise click.UsageError(
                f"--backend serial runs a board with a bitstream, not {board.name}"
            )
        backend = "verilator"
    elif board is not None and backend != "serial":
        raise click.UsageError(f"--board {board.name} runs on --backend serial, not {backend}")
    if backend == "serial" and (board is None or port is None):
        raise click.UsageError("--backend serial needs --board and --port")
    path, network, image = _load_any(net, dt_ms, input_file)
    show = sys.stderr.isatty() if progress is None else progress
    t0 = time.perf_counter()
    result = _run_backend(
        network, path, backend, steps, cores, show, image, placement, board, port, timeout
    )
    wall = time.perf_counter() - t0
    output.parent.mkdir(parents=True, exist_ok=True)
    result.save(output)
    sim_s = steps * network.dt_ms / 1000.0
    click.echo(
        f"{network.name}: {steps} steps ({sim_s:g} s of model time) on {backend} in "
        f"{wall:.2f} s; {result.n_spikes} spikes -> {output}"
    )
    recorded = _recorded_populations(network)
    for name, c in result.counts().items():
        if name not in recorded:
            click.echo(f"  {name:16s} (not recorded: no spikes probe)")
            continue
        rate = c.sum() / max(sim_s, 1e-12) / len(c)
        click.echo(f"  {name:16s} {int(c.sum()):8d} spikes  {rate:8.2f} Hz mean")


def _recorded_populations(network: Network) -> set[str]:
    probes = {pb.target for pb in network.probes if pb.variable == "spikes"}
    return probes or set(network.populations)


@main.command()
@net_argument
@click.option("--steps", "-n", default=200, show_default=True, help="Steps to run.")
@click.option(
    "--against",
    type=click.Choice(BACKENDS[1:]),
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
    help="The board of --against serial (see `spikefab boards`).",
)
@click.option("--port", default=None, help="The board's serial port (--against serial).")
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds the serial backend waits for a reply from the board.",
)
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
    from spikefab.sim.results import compare_results

    if steps < 1:
        raise click.BadParameter(f"must be >= 1, not {steps}", param_hint="--steps")
    path, network, image = _load_any(net, dt_ms, input_file)
    show = sys.stderr.isatty() if progress is None else progress
    golden = _run_backend(network, path, "golden", steps, cores, show)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        golden.save(output / "golden.npz")
    failed = False
    for backend in (against, *also):
        t0 = time.perf_counter()
        if backend == "icarus":
            other = _run_icarus(network, path, steps, cores, image)
        else:
            other = _run_backend(
                network, path, backend, steps, cores, show, image, placement,
                _board(board_name), port, timeout,
            )  # fmt: skip
        wall = time.perf_counter() - t0
        cmp = compare_results(golden, other)
        if output is not None:
            other.save(output / f"{backend}.npz")
        click.echo(f"{network.name}: {steps} steps, golden vs {backend} ({wall:.1f} s)")
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
        if cmp.equal:
            click.echo("  identical")
        else:
            click.echo(cmp.first)
            failed = True
    if failed:
        sys.exit(1)


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

    _, network = _load(net)
    try:
        write_nir(network, output)
    except NetworkError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    click.echo(f"{network.name} -> {output}")


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
@click.option("--cores", type=int, default=None, help=f"Cores [default: {SIM_MAX_CORES}].")
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
) -> None:
    """Place a network on cores, build its tables and print how it uses the hardware.

    The report gives every core's use of every limit, the router's, and the expected
    events per step between cores, from the host and to the host. A network that does not
    fit is refused with the limit it exceeds, where, by how much and what would make it fit.
    """
    from spikefab.mapping.core_image import FitError
    from spikefab.mapping.mapper import expected_rates, format_report, map_network

    if rate_steps < 0:
        raise click.BadParameter(f"must be >= 0, not {rate_steps}", param_hint="--rate-steps")
    t0 = time.perf_counter()
    path, network = _load(net)
    sizes = (cores, neurons, axons, synapses, delay_slots, acc_bits, route_entries, sources)
    board = _board(board_name)
    if board is not None and board.platform is not None:
        if any(v is not None for v in sizes):
            raise click.UsageError("give --board or sizes (--cores, --neurons, ...), not both")
        from spikefab.mapping.hardware import Hardware

        hw = Hardware.from_board(board)
        cores = hw.cores  # the image holds every core of the board's system
    else:
        hw = _hardware(network, *sizes)
    t_load = time.perf_counter() - t0

    def log(msg: str) -> None:
        click.echo(f"[{time.perf_counter() - t0:6.2f} s] {msg}", err=True)

    log(f"loaded {_describe(network)}")
    rates = None
    if rate_steps:
        rates = expected_rates(network, rate_steps)
        log(f"firing rates measured over {rate_steps} golden steps")
    try:
        m = map_network(network, hw, placement, rates=rates, seed=seed, log=log)
    except FitError as e:
        raise click.ClickException(str(e)) from None
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_report(m))
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
        try:
            image = m.image(trim=cores is None, network_yaml=path.read_text())
        except FitError as e:
            raise click.ClickException(f"no image written: {e}") from None
        output.parent.mkdir(parents=True, exist_ok=True)
        image.save(output)
        click.echo(f"image ({image.config.cores} cores) -> {output}")


def _model(network: Network, backend: str):  # type: ignore[no-untyped-def]
    if backend == "golden":
        from spikefab.sim.golden import GoldenModel

        return GoldenModel(network)
    from spikefab.sim.reference import FloatReference

    return FloatReference(network)


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
    from spikefab.boards.build import BuildError
    from spikefab.boards.build import build as build_board

    board = _board(board_name)
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
    import shutil
    import subprocess

    board = _board(board_name)
    if board.platform is None:
        raise click.ClickException(
            f"the {board.name} board is a simulation: nothing to program; run it with "
            "`spikefab run --backend verilator`"
        )
    stem = (
        bitstream.with_suffix("")
        if bitstream is not None
        else _build_dir(board_name, None) / board.design_name
    )
    tools = [(p, shutil.which(p.tool)) for p in board.programmers]
    found = [(p, path) for p, path in tools if path is not None]
    if not found:
        lines = [f"no programmer for the {board.title} is installed; install one of:"]
        lines += [f"  {p.tool}: {p.install}" for p in board.programmers]
        raise click.ClickException("\n".join(lines))
    prog, path = found[0]
    cmd = prog.command(str(stem))
    wanted = Path(next(a for a in cmd[1:] if a.startswith(str(stem))))
    if not wanted.exists():
        raise click.ClickException(
            f"{wanted} does not exist: build it first with `spikefab build --board {board.name}`"
        )
    if prog.note:
        click.echo(f"{board.title}: {prog.note}", err=True)
    click.echo("$ " + " ".join(cmd), err=True)
    rc = subprocess.call([path, *cmd[1:]])
    if rc != 0:
        raise click.ClickException(f"{prog.tool} failed (exit {rc})")
    click.echo(f"{board.title} programmed; its UART: {board.uart}")


if __name__ == "__main__":
    main()
