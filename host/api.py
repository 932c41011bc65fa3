"""The library behind ``import spikefab``: load, map, run, compare, and drive a device.

Everything the command line does is here, so that notebooks, scripts, tests and benches do
the same with the same code::

    import spikefab

    net = spikefab.load("balanced")                      # a file, a bundled name, NIR, a builder
    golden = spikefab.run(net, 500)                      # the bit-exact golden model
    rtl = spikefab.run(net, 500, backend="verilator")    # the generated RTL, over the host link
    print(spikefab.compare(golden, rtl).summary())
    rtl.rates()["exc"].mean(), rtl.spikes("exc")         # Hz per neuron; (step, neuron) arrays

    with spikefab.open_device(net, "verilator") as dev:  # step by step
        dev.inject("inp", [0, 3])
        for step, spikes in dev.steps(10):
            print(step, spikes.get("exc"))
        v = dev.read("exc", "v")

The backends: ``golden`` (the bit-exact model), ``float`` (the same equations in float64),
``system`` (the golden model of the mapped system, run from its memories), ``verilator``
(the generated RTL, simulated), ``icarus`` (the same RTL in Icarus through cocotb; runs
only), and ``serial`` (a board with spikefab's bitstream on a serial port).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from spikefab.hdl.layouts import NEURON_STATE, CoreMem, SystemConfig, field_of
from spikefab.mapping.hardware import Hardware, simulated_hardware, simulated_system
from spikefab.mapping.image import Image, load_image
from spikefab.mapping.network import Network, NetworkBuilder
from spikefab.sim.results import Comparison, RunResult, compare_results

if TYPE_CHECKING:
    from spikefab.boards import Board
    from spikefab.mapping.mapper import Mapping

__all__ = [
    "BACKENDS",
    "DEFAULT_NETWORK",
    "DEVICE_BACKENDS",
    "Session",
    "activity",
    "compare",
    "estimate",
    "examples",
    "image_for",
    "load",
    "load_mapped",
    "map_network",
    "open_device",
    "open_system",
    "run",
]

#: The network used when none is named.
DEFAULT_NETWORK = "synfire"
#: Every backend :func:`run` takes.
BACKENDS = ("golden", "float", "system", "verilator", "icarus", "serial")
#: The backends that are devices (:func:`open_device`).
DEVICE_BACKENDS = ("system", "verilator", "serial")


def examples() -> dict[str, Path]:
    """Return the bundled example networks: name -> description file."""
    root = resources.files("spikefab.examples")
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".yaml")}


def _path_of(net: str | Path) -> Path:
    path = Path(net)
    if path.exists():
        return path
    known = examples()
    if str(net) in known:
        return known[str(net)]
    raise FileNotFoundError(
        f"{str(net)!r} is neither a file nor a bundled example; bundled examples: "
        f"{', '.join(sorted(known))}"
    )


def load(
    net: str | Path | Network | NetworkBuilder | None = None,
    *,
    dt_ms: float | None = None,
    inputs: Any = None,
) -> Network:
    """Load and validate a network.

    Parameters
    ----------
    net
        A description file (``.yaml``), a NIR graph (``.nir``), an image written by
        :meth:`Mapping.image` (``.npz``: the network it holds), the name of a bundled example,
        a :class:`~spikefab.mapping.network.NetworkBuilder`, or a network (returned as it is,
        with ``inputs`` applied). ``None`` is the bundled ``synfire``.
    dt_ms
        The step with which a NIR graph is discretized (default: the step it records).
    inputs
        Recorded spikes that drive the network's inputs: a file, a dense ``steps x neurons``
        array for a network with one input (a NIR graph's ``Input`` node, whatever internal
        sources its import adds), or ``{population: array or (step, neuron)}``
        (:func:`spikefab.host.inputs.with_inputs`).

    Raises
    ------
    FileNotFoundError
        For a name that is neither a file nor an example.
    NetworkError
        Listing every problem of the description, located by file, line and field.
    InputError
        When ``inputs`` do not fit the network's inputs.
    """
    from spikefab.host.inputs import with_inputs
    from spikefab.mapping.loader import load as load_file

    if isinstance(net, NetworkBuilder):
        network = net.build()
    elif isinstance(net, Network):
        network = net
    else:
        path = _path_of(DEFAULT_NETWORK if net is None else net)
        if path.suffix == ".npz":
            if dt_ms is not None:
                raise ValueError("dt_ms applies to NIR graphs, not to images")
            network, _ = load_mapped(path)
        else:
            network = load_file(path, dt_ms)
    if dt_ms is not None and not isinstance(net, str | Path):
        raise ValueError("dt_ms applies to NIR graphs given by their file")
    return network if inputs is None else with_inputs(network, inputs)


def load_mapped(path: str | Path) -> tuple[Network, Image]:
    """Load an image written by :meth:`Mapping.image` and the network it holds (or a
    multi-device image, a directory, and its :class:`~spikefab.host.multidevice.DeviceMapping`).

    Raises
    ------
    ValueError
        When the file is not an image, or it holds no network description.
    NetworkError
        When the description it holds has problems.
    """
    from spikefab.mapping.loader import load_text

    path = Path(path)
    if path.is_dir() and (path / "plan.json").exists():
        from spikefab.host.multidevice import DeviceMapping, load_plan

        plan, images, names = load_plan(path)
        return plan.net, DeviceMapping(plan, [None] * plan.devices, images, names)  # type: ignore[return-value]
    image = load_image(path)
    if not image.network_yaml:
        raise ValueError(f"{path}: the image holds no network description")
    net = load_text(image.network_yaml, source=f"{path} (network)", base=path.parent)
    return net, image


def _board(board: str | Board | None) -> Board | None:
    if board is None:
        return None
    from spikefab.boards import Board, get_board

    return board if isinstance(board, Board) else get_board(board)


def map_network(
    net: Network,
    *,
    board: str | Board | None = None,
    hardware: Hardware | SystemConfig | None = None,
    cores: int | None = None,
    placement: str = "greedy",
    rates: np.ndarray | int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    **sizes: int | None,
) -> Mapping:
    """Place a network on cores and build its tables (``docs/mapping.md``).

    Parameters
    ----------
    net
        The network.
    board
        Map onto a board's system (``spikefab boards``); else onto ``hardware``; else onto
        the simulated system, with ``cores`` and any core or router size of
        :func:`~spikefab.mapping.hardware.simulated_hardware` (``neurons=``, ...).
    placement
        ``"greedy"``, ``"partition"`` (METIS, less traffic between cores) or ``"random"``.
    rates
        Expected spikes per step of each sender, or a number of golden-model steps run to
        measure them (they weight the partition and give the report its events per step).
    seed
        Seed of the random choices.
    log
        Called with a line at the end of each stage.

    Returns
    -------
    Mapping
        The placement and tables: ``.image()`` packs them, :meth:`Mapping.report` describes
        them.

    Raises
    ------
    FitError
        When the network does not fit: the limit, where, by how much and what would help.
    ValueError
        For sizes given with a board, or sizes that are not accepted.
    """
    from spikefab.mapping.mapper import expected_rates
    from spikefab.mapping.mapper import map_network as place

    b = _board(board)
    if b is not None and b.platform is not None:
        if cores is not None or any(v is not None for v in sizes.values()) or hardware:
            raise ValueError("give a board or sizes (cores, neurons, ...), not both")
        hw: Hardware | SystemConfig = Hardware.from_board(b)
    elif hardware is not None:
        hw = hardware
    else:
        try:
            hw = simulated_hardware(net, cores, **sizes)
        except TypeError as e:
            raise ValueError(str(e)) from None
    if isinstance(rates, int) and not isinstance(rates, bool):
        rates = expected_rates(net, rates) if rates > 0 else None
    return place(net, hw, placement, rates=rates, seed=seed, log=log)


def image_for(
    net: Network,
    backend: str = "verilator",
    *,
    board: str | Board | None = None,
    cores: int | None = None,
    placement: str = "greedy",
    seed: int = 0,
) -> Image:
    """Map a network for a backend and return its image.

    A board's image holds all the board's cores (its bitstream's system); the simulated
    system's holds as many cores as the network uses, or ``cores``; for ``icarus`` the
    memories are cut to what the network needs, which keeps the image load short.

    Raises
    ------
    FitError
        When the network does not fit.
    """
    from spikefab.mapping.image import place_sequential

    if backend == "icarus":
        config = simulated_system(net, cores, compact=True)
        return place_sequential(net, config, network_yaml=net.to_yaml())
    b = _board(board)
    m = map_network(
        net, board=b if b is not None and b.platform else None, cores=cores,
        placement=placement, seed=seed,
    )  # fmt: skip
    trim = cores is None and (b is None or b.platform is None)
    return m.image(trim=trim, network_yaml=net.to_yaml())


def open_system(
    config: SystemConfig,
    backend: str = "verilator",
    *,
    board: str | Board | None = None,
    port: str | None = None,
    timeout: float | None = None,
    progress: bool = True,
    in_process: bool = False,
) -> Any:
    """Open the device of a system: the low-level request interface (``docs/contract.md`` 8).

    ``system`` is the in-process model, ``verilator`` starts the simulation (building it
    once), ``serial`` opens a board on ``port``. The device is a context manager that ends
    the simulation or releases the port, and is checked to be ``config``.

    ``in_process=True`` runs the Verilator simulation inside this process, clocked while the
    host waits for replies, instead of as a program beside it: one busy process rather than
    two (what a rank of a multi-device run wants), at the price of the program's isolation
    and waveforms.

    Raises
    ------
    ValueError
        For an unknown backend, a serial backend without board and port, or a device that
        is not the system ``config`` (naming every size that differs).
    LinkError
        When the port cannot be opened or the device does not answer.
    """
    from spikefab.host.link import LinkError
    from spikefab.host.runtime import check_device

    if in_process and backend == "serial":
        raise ValueError("a board on a serial port cannot run in process: in_process=False")
    if backend == "system":
        from spikefab.sim.system_model import SystemModel

        device: Any = SystemModel(config)
    elif backend == "verilator":
        from spikefab.host.verilator import open_verilator

        device = open_verilator(config, timeout=60.0 if timeout is None else timeout,
                                progress=progress, in_process=in_process)  # fmt: skip
    elif backend == "serial":
        from spikefab.host.link import LinkDevice, SerialTransport

        b = _board(board)
        if b is None or port is None:
            raise ValueError("the serial backend needs a board and a port")
        if b.platform is None:
            raise ValueError(f"the serial backend runs a board with a bitstream, not {b.name}")
        transport = SerialTransport(port, b.baud)
        device = LinkDevice(transport, timeout=5.0 if timeout is None else timeout)
        device.name = f"{b.title} on {port}"
    else:
        raise ValueError(f"{backend!r} is not a device backend; accepted: {DEVICE_BACKENDS}")
    try:
        try:
            check_device(device, config)
        except LinkError as e:
            name = getattr(device, "name", None)
            raise LinkError(f"{name}: {e}" if name else str(e)) from None
        except ValueError as e:
            if backend != "serial":
                raise
            raise ValueError(
                f"{e}: is the board programmed with this spikefab's {board} bitstream "
                f"(spikefab build --board {board}; spikefab program --board {board})?"
            ) from None
    except BaseException:
        device.close()
        raise
    return device


def _check_board_image(image: Image, board: Board) -> None:
    if image.config != board.system:
        raise ValueError(
            f"the image was made for {image.config}, not for the {board.title}'s system "
            f"({board.capacity()}): map the network with --board {board.name} "
            f"(board={board.name!r} in Python)"
        )


def run(
    net: Network | str | Path | NetworkBuilder | None,
    steps: int = 1000,
    backend: str = "golden",
    *,
    image: Image | None = None,
    board: str | Board | None = None,
    port: str | None = None,
    cores: int | None = None,
    placement: str = "greedy",
    seed: int = 0,
    inputs: Any = None,
    timeout: float = 5.0,
    progress: bool | Callable[[int], None] = False,
    devices: int | list[str] | None = None,
    ports: list[str | None] | None = None,
    sim_process: bool = False,
) -> RunResult:
    """Run a network for ``steps`` steps on a backend and return its spikes and probes.

    Parameters
    ----------
    net
        The network (anything :func:`load` takes).
    steps
        Steps to run, from reset.
    backend
        One of :data:`BACKENDS` (module docstring).
    image
        For the device backends: the image to run (default: the network mapped for the
        backend, with ``placement`` and ``seed``; onto the board's system for ``serial``).
    board, port
        The board and its serial port (``serial``).
    cores
        Cores of the simulated system (default: as many as the network needs).
    inputs
        Recorded input spikes (see :func:`load`).
    timeout
        Seconds a board may take to answer (``serial``).
    progress
        Show a progress bar on stderr, or call this with the steps done as they are done.
    devices
        Run over several devices (``docs/contract.md`` section 11): a number of simulated
        systems, or boards' names. ``system`` runs them in this process, ``verilator`` as
        MPI ranks started here, and inside a user's ``mpiexec`` each rank runs its own.
        ``image`` may then be a :class:`~spikefab.host.multidevice.DeviceMapping`, and
        ``ports`` gives each rank's serial port (``serial``).
    sim_process
        With ``devices`` on ``verilator``: run each rank's simulation as a program beside
        the rank rather than in the rank's process. Slower (two busy processes per rank),
        but a simulation that dies is then reported by its rank as a failed device.

    Raises
    ------
    ValueError
        For an unknown backend or options that do not go together.
    FitError
        When the network does not fit the system.
    RunAbortedError
        When the device fails or the run is interrupted: its ``partial`` result holds every
        spike and probe received before.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, not {steps!r}")
    if sim_process and (devices is None or backend != "verilator"):
        raise ValueError("sim_process applies to a run over several devices on verilator")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; accepted: {', '.join(BACKENDS)}")
    network = load(net, inputs=inputs)
    if devices is not None or _is_device_mapping(image):
        if backend not in DEVICE_BACKENDS:
            raise ValueError(f"devices are run by {', '.join(DEVICE_BACKENDS)}, not {backend}")
        from spikefab.host.multidevice import map_devices, run_devices

        dm = image if _is_device_mapping(image) else None
        if dm is None:
            assert devices is not None
            dm = map_devices(network, devices, placement=placement, seed=seed)
        return run_devices(
            dm,
            steps,
            backend,
            timeout=timeout,
            progress=progress is True,
            ports=ports,
            in_process=not sim_process,
        )
    with _progress(progress, steps, backend) as bar:
        if backend in ("golden", "float"):
            if image is not None:
                raise ValueError(f"the {backend} backend runs a network, not an image")
            return _model(network, backend).run(steps, progress=bar)
        if backend == "icarus":
            return _run_icarus(network, steps, cores, image)
        from spikefab.host.runtime import run_network

        b = _board(board)
        if backend == "serial":
            if b is None or port is None:
                raise ValueError("the serial backend needs a board and a port")
            if image is None:
                image = image_for(network, board=b, placement=placement, seed=seed)
            else:
                _check_board_image(image, b)
        elif image is None:
            # a board's system simulated (verilator, system): the image of the bitstream's
            image = image_for(
                network, backend, board=b, cores=cores, placement=placement, seed=seed
            )
        device = open_system(image.config, backend, board=b, port=port, timeout=timeout)
        with closing(device):
            return run_network(network, image, device, steps, backend, progress=bar)


def _is_device_mapping(image: object) -> bool:
    from spikefab.host.multidevice import DeviceMapping

    return isinstance(image, DeviceMapping)


@contextmanager
def _progress(progress: bool | Callable[[int], None], steps: int, what: str) -> Iterator[Any]:
    if callable(progress):
        yield progress
        return
    from tqdm import tqdm

    with tqdm(total=steps, unit="step", disable=not progress, desc=what) as bar:
        yield bar.update


def _model(network: Network, backend: str) -> Any:
    if backend == "golden":
        from spikefab.sim.golden import GoldenModel

        return GoldenModel(network)
    from spikefab.sim.reference import FloatReference

    return FloatReference(network)


def _run_icarus(network: Network, steps: int, cores: int | None, image: Image | None) -> RunResult:
    """Run a network (or an image) on the device's RTL in Icarus Verilog, through cocotb."""
    import sys

    import spikefab.sim
    from spikefab.sim.results import load_result
    from spikefab.sim.rtl import run_cocotb, write_verilog
    from spikefab.sim.sdram_model import device_top
    from spikefab.sim.verilator import cache_dir

    if image is None:
        image = image_for(network, "icarus", cores=cores)
    elif not image.network_yaml:
        image = replace(image, network_yaml=network.to_yaml())
    config = image.config
    key = hashlib.sha256(repr(config).encode()).hexdigest()[:16]
    build = cache_dir() / "icarus" / key
    print(
        f"icarus: {config.cores} core(s) of {config.core.neurons} neurons, "
        f"{config.core.synapses} synapse entries; simulating in {build} ...",
        file=sys.stderr,
    )
    top, models = device_top(config)
    verilog = write_verilog(top, "spikefab_top", build / "spikefab_top.v")
    image.save(build / "image.npz")
    spikes = build / "spikes.npz"
    spikes.unlink(missing_ok=True)
    base = network.source_base or Path.cwd()
    job = {
        "image": str(build / "image.npz"),
        "network": str(base / f"{network.name}.yaml"),
        "steps": steps,
        "backend": "icarus",
        "output": str(spikes),
    }
    (build / "job.json").write_text(json.dumps(job))
    run_cocotb(
        "icarus",
        [verilog, *models],
        "spikefab_top",
        "spikefab.sim.cocotb_device",
        test_dir=Path(spikefab.sim.__file__).parent,
        build_dir=build,
        extra_env={"SPIKEFAB_JOB": str(build / "job.json")},
    )
    if not spikes.exists():
        raise RuntimeError(f"the Icarus run wrote no spike file; see {build}")
    return load_result(spikes)


def activity(net: Network, steps: int = 200) -> list[dict[str, Any]]:
    """Return, per population, its size, mean fan-out and fan-in, spikes and synaptic events
    per step: LIF rates measured over ``steps`` golden-model steps (0: none), Poisson sources
    at their rate, other sources not counted."""
    from spikefab.sim.golden import GoldenModel

    counts = GoldenModel(net).run(steps).counts() if steps > 0 else {}
    out_degree = {n: np.zeros(p.size, dtype=np.int64) for n, p in net.populations.items()}
    in_degree = {n: np.zeros(p.size, dtype=np.int64) for n, p in net.populations.items()}
    for pr in net.projections:
        out_degree[pr.pre] += np.bincount(pr.pre_idx, minlength=net.populations[pr.pre].size)
        in_degree[pr.post] += np.bincount(pr.post_idx, minlength=net.populations[pr.post].size)
    rows = []
    for name, p in net.populations.items():
        if p.source is not None and p.source.kind == "poisson":
            rate = np.full(p.size, p.source.rate_hz * net.dt_ms / 1000.0)
        elif name in counts and steps > 0:
            rate = counts[name] / steps
        else:
            rate = np.zeros(p.size)
        rows.append(
            {
                "population": name,
                "kind": "spike_source" if p.is_source else "lif",
                "size": p.size,
                "fan_out": float(out_degree[name].mean()),
                "fan_in": float(in_degree[name].mean()),
                "spikes_per_step": float(rate.sum()),
                "events_per_step": float((rate * out_degree[name]).sum()),
            }
        )
    return rows


def estimate(
    net: Network | str | Path | NetworkBuilder,
    board: str | Board,
    steps: int = 500,
    core: dict | str | None = None,
) -> Any:
    """Before a build: whether ``net`` fits ``board``, its cycles per step and real-time
    factor (the cycle model over a golden-model run of ``steps`` steps), its host-link load,
    the board's resources and an energy estimate with its sources (``docs/estimate.md``).

    ``core`` changes the board's cores (``{"neurons": 1024}`` or ``"neurons=1024"``); the
    resources are then predicted by the resource model, with its error.

    Returns
    -------
    spikefab.host.estimate.Estimate
        ``.fits``, ``.cycles`` (a :class:`~spikefab.sim.cycles.CyclePrediction`),
        ``.real_time_factor``, ``.link_load``, ``.resources``, ``.energy``; ``.lines()``
        is the report.
    """
    from spikefab.host import estimate as est

    b = _board(board)
    assert b is not None
    if isinstance(core, str):
        core = est.parse_core(core)
    return est.estimate(load(net), b, steps, core=core)


def compare(a: RunResult, b: RunResult) -> Comparison:
    """Compare two runs spike by spike, probe by probe and weight by weight.

    A partial run is compared over the steps it completed.
    """
    return compare_results(a, b)


# ---------------------------------------------------------------------------------------------
# A device driven step by step


class Session:
    """A network on a device, driven step by step (see :func:`open_device`).

    The network's own spike sources are injected as they spike; :meth:`inject` adds spikes of
    input neurons to the next step. Spikes come back in population terms.

    Attributes
    ----------
    network, image
        The network and the image the device holds.
    device
        The device (the low-level requests of ``docs/contract.md`` section 8).
    step
        The number of the next step.
    """

    def __init__(self, network: Network, image: Image, device: Any, backend: str):
        self.network = network
        self.image = image
        self.device = device
        self.backend = backend
        self.step = 0
        self._pop_of_gid, self._idx_of_gid = image.gid_table(network)
        self._names = list(network.populations)
        self._streams: dict[str, Any] = {}
        self._queued: list[int] = []
        self.load()

    # set-up ------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the image and reset to step 0 (the sources start again too)."""
        from spikefab.host.runtime import load

        load(self.device, self.image)
        self.step = 0
        self._queued = []
        self._streams = {
            p.name: p.source.stream(p.size, self.network.dt_ms)
            for p in self.network.populations.values()
            if p.source is not None
        }

    def inject(self, population: str, neurons: Any) -> None:
        """Make neurons of a spike-source population spike in the next step.

        Raises
        ------
        ValueError
            When the population is not a spike source of the network or a neuron is out of
            its range.
        """
        pop = self.network.populations.get(population)
        if pop is None or not pop.is_source:
            sources = [p.name for p in self.network.populations.values() if p.is_source]
            raise ValueError(
                f"{population!r} is not a spike source of {self.network.name}; its sources: "
                f"{', '.join(sources) or '(none)'}"
            )
        idx = np.atleast_1d(np.asarray(neurons, dtype=np.int64))
        bad = idx[(idx < 0) | (idx >= pop.size)]
        if bad.size:
            raise ValueError(
                f"neuron {int(bad[0])} of {population!r} does not exist; accepted 0..{pop.size - 1}"
            )
        self._queued += [int(s) for s in self.image.source_of[population][idx]]

    # running -----------------------------------------------------------------------------
    def _one(self) -> dict[str, np.ndarray]:
        """Run one step; return its spikes by population."""
        ids = list(self._queued)
        own = {}
        for name, stream in self._streams.items():
            _, neurons = stream.next(1)  # the step's spikes (however the steps are drawn)
            own[name] = neurons
            ids += [int(s) for s in self.image.source_of[name][neurons]]
        self._queued = []
        if ids:
            self.device.inject(ids)
        gids: list[int] = []
        self.device.run(1, lambda _step, got: gids.extend(got))
        self.step += 1
        out: dict[str, np.ndarray] = {}
        g = np.asarray(gids, dtype=np.int64)
        if g.size:
            pops, idx = self._pop_of_gid[g], self._idx_of_gid[g]
            for k in np.unique(pops):
                out[self._names[int(k)]] = np.sort(idx[pops == k])
        for name, neurons in own.items():
            if neurons.size:
                out[name] = neurons
        return out

    def steps(self, n: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Run ``n`` steps, yielding ``(step, {population: neurons that spiked})`` after each.

        Stopping the iteration early leaves the device after the last step yielded.
        """
        for _ in range(n):
            t = self.step
            yield t, self._one()

    def run(
        self, n: int, on_step: Callable[[int, dict[str, np.ndarray]], None] | None = None
    ) -> RunResult:
        """Run ``n`` steps; call ``on_step(step, spikes)`` after each; return their spikes."""
        steps, pops, neurons = [], [], []
        first = self.step
        for t, spikes in self.steps(n):
            if on_step is not None:
                on_step(t, spikes)
            for name, idx in spikes.items():
                steps.append(np.full(idx.size, t))
                pops.append(np.full(idx.size, self.network.populations[name].index))
                neurons.append(idx)
        cat = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in (steps, pops, neurons)]
        return RunResult(
            network=self.network.name,
            backend=self.backend,
            dt_ms=self.network.dt_ms,
            steps=self.step - first,
            populations=self._names,
            population_sizes=[p.size for p in self.network.populations.values()],
            step=cat[0],
            population=cat[1],
            neuron=cat[2],
        )

    # reading -----------------------------------------------------------------------------
    def read(self, population: str, variable: str = "v") -> np.ndarray:
        """Return ``u`` or ``v`` (fixed point, contract 2.2) of every neuron of a population.

        Raises
        ------
        ValueError
            For a population that is not a LIF population, or another variable.
        """
        if variable not in ("u", "v", "ref"):
            raise ValueError(f"variable must be u, v or ref, not {variable!r}")
        if population not in self.image.core_of:
            raise ValueError(
                f"{population!r} is not a LIF population of {self.network.name}; its LIF "
                f"populations: {', '.join(self.image.core_of)}"
            )
        cores, neurons = self.image.core_of[population], self.image.neuron_of[population]
        out = np.zeros(cores.size, dtype=np.int64)
        for k in np.unique(cores):
            sel = cores == k
            lo, hi = int(neurons[sel].min()), int(neurons[sel].max())
            words = self.device.read(int(k), CoreMem.STATE.value, lo, hi - lo + 1)
            out[sel] = field_of(np.asarray(words, dtype=np.uint64), NEURON_STATE, variable)[
                neurons[sel] - lo
            ]
        return out

    def weights(self) -> dict[str, np.ndarray]:
        """Return the weight mantissas of every plastic projection, as they are now."""
        from spikefab.host.runtime import read_weights

        return read_weights(self.device, self.image)

    def status(self) -> dict[str, int]:
        """Return the system's registers (step, router and link counters)."""
        return self.device.status()

    def close(self) -> None:
        """End the simulation or release the port."""
        self.device.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_device(
    net: Network | str | Path | NetworkBuilder | None,
    backend: str = "verilator",
    *,
    image: Image | None = None,
    board: str | Board | None = None,
    port: str | None = None,
    cores: int | None = None,
    placement: str = "greedy",
    seed: int = 0,
    timeout: float | None = None,
) -> Session:
    """Open a device with a network loaded, to drive it step by step (:class:`Session`).

    Parameters
    ----------
    net
        The network (anything :func:`load` takes).
    backend
        ``system``, ``verilator`` or ``serial`` (with ``board`` and ``port``).
    image
        The image to load (default: the network mapped for the backend).

    Raises
    ------
    ValueError, FitError, LinkError
        As :func:`run` and :func:`open_system`.
    """
    if backend not in DEVICE_BACKENDS:
        raise ValueError(f"{backend!r} is not a device backend; accepted: {DEVICE_BACKENDS}")
    network = load(net)
    b = _board(board)
    if image is None:
        image = image_for(
            network, backend, board=b if backend == "serial" else None, cores=cores,
            placement=placement, seed=seed,
        )  # fmt: skip
    elif backend == "serial" and b is not None:
        _check_board_image(image, b)
    device = open_system(image.config, backend, board=b, port=port, timeout=timeout)
    try:
        return Session(network, image, device, backend)
    except BaseException:
        device.close()
        raise
