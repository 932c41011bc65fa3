"""The limits a network is mapped within (``docs/mapping.md``).

A :class:`Hardware` is a number of identical cores, each sized by a
:class:`~spikefab.hdl.layouts.CoreConfig`, and a router with a route table and host source
ids. It is what the mapper places a network into and checks every table against. A
:class:`~spikefab.hdl.layouts.SystemConfig` is one such hardware, the one the gateware builds
(contract section 7); a :class:`Hardware` may also describe a larger machine than the
present system can be built as (more cores, a larger route table), so that networks of any
size can be mapped and measured. An image is written only for a buildable system.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from spikefab.hdl.layouts import CoreConfig, SystemConfig

if TYPE_CHECKING:
    from spikefab.boards import Board
    from spikefab.mapping.network import Network

__all__ = [
    "SIM_CORE",
    "SIM_CORE_LARGE",
    "SIM_INJECT_DEPTH",
    "SIM_MAX_CORES",
    "SIM_ROUTE_ENTRIES",
    "SIM_ROUTE_ENTRIES_LARGE",
    "Hardware",
    "sim_core",
    "simulated_hardware",
    "simulated_system",
    "source_ids",
]

#: The core of the simulated systems (Verilator, Icarus, the system model): with the
#: learning unit, sized so that one build serves the bundled examples.
SIM_CORE = CoreConfig(neurons=256, axons=2048, synapses=32768, delay_slots=16, learning=True)
#: The most cores a simulated system has (contract 7: at most 15).
SIM_MAX_CORES = 15
#: Router entries and injection depth of the simulated systems.
SIM_ROUTE_ENTRIES = 16384
SIM_INJECT_DEPTH = 1024
#: The core and router of the simulated systems for networks of more neurons than
#: ``SIM_MAX_CORES`` cores of :data:`SIM_CORE` hold (up to 15360): four times the neurons,
#: twice the axons, four times the synapse entries, twice the router.
SIM_CORE_LARGE = CoreConfig(
    neurons=1024, axons=4096, synapses=131072, delay_slots=16, learning=True
)
SIM_ROUTE_ENTRIES_LARGE = 32768


def sim_core(network: Network) -> tuple[CoreConfig, int]:
    """Return the core and the router entries of the simulated system for ``network``:
    :data:`SIM_CORE`, or :data:`SIM_CORE_LARGE` for a network that 15 of those do not
    hold."""
    if network.n_neurons <= SIM_MAX_CORES * SIM_CORE.neurons:
        return SIM_CORE, SIM_ROUTE_ENTRIES
    return SIM_CORE_LARGE, SIM_ROUTE_ENTRIES_LARGE


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value!r}")
    return value


@dataclass(frozen=True)
class Hardware:
    """Cores, their sizes and the router's: every limit the mapper checks.

    Parameters
    ----------
    cores
        Number of neuron cores.
    core
        The size of every core: neurons, axons, synapse entries, delay slots, accumulator.
    route_entries
        Rows of the router's entry table (one per sender and destination it reaches, shared
        between senders whose destinations are the same).
    sources
        Host source ids: spike-source neurons the host can inject.
    inject_depth, core_fifo_depth
        Carried into the system configuration; the mapper does not check them.

    Raises
    ------
    TypeError, ValueError
        For a size that is not a positive integer or a ``core`` that is not a
        :class:`~spikefab.hdl.layouts.CoreConfig`.
    """

    cores: int
    core: CoreConfig
    route_entries: int
    sources: int
    inject_depth: int = 256
    core_fifo_depth: int = 64

    def __post_init__(self) -> None:
        _positive("cores", self.cores)
        if not isinstance(self.core, CoreConfig):
            raise TypeError(f"core must be a CoreConfig, not {self.core!r}")
        _positive("route_entries", self.route_entries)
        _positive("sources", self.sources)

    @classmethod
    def of(cls, config: SystemConfig | Hardware) -> Hardware:
        """Return the hardware of a system configuration (or the hardware itself)."""
        if isinstance(config, Hardware):
            return config
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig or a Hardware, not {config!r}")
        return cls(
            cores=config.cores,
            core=config.core,
            route_entries=config.route_entries,
            sources=config.sources,
            inject_depth=config.inject_depth,
            core_fifo_depth=config.core_fifo_depth,
        )

    @classmethod
    def from_board(cls, board: str | Board) -> Hardware:
        """Return the hardware of a board (``spikefab boards``), by name or :class:`Board`.

        Raises
        ------
        ValueError
            For an unknown board name.
        """
        from spikefab.boards import Board, get_board

        if not isinstance(board, Board):
            board = get_board(board)
        return cls.of(board.system)

    def system(self, cores: int | None = None) -> SystemConfig:
        """Return the system configuration of this hardware, with ``cores`` cores if given.

        Raises
        ------
        ValueError
            When the present system cannot be built this size (contract section 7), saying
            why.
        """
        try:
            return SystemConfig(
                cores=self.cores if cores is None else cores,
                core=self.core,
                sources=self.sources,
                route_entries=self.route_entries,
                inject_depth=self.inject_depth,
                core_fifo_depth=self.core_fifo_depth,
            )
        except ValueError as e:
            raise ValueError(f"the system cannot be built this size: {e}") from None

    def describe(self) -> str:
        """Return the sizes in one line."""
        c = self.core
        return (
            f"{self.cores} cores of {c.neurons} neurons, {c.axons} axons, {c.synapses} synapse "
            f"entries{' in SDRAM' if c.synapse_memory == 'sdram' else ''}, "
            f"{c.delay_slots} delay slots, {c.acc_bits}-bit accumulators"
            f"{'' if c.learning else ', no learning'}; router "
            f"{self.route_entries} entries, {self.sources} source ids"
        )


def _pow2(x: int, lo: int) -> int:
    """The power of two at or above ``x``, at least ``lo``."""
    return max(lo, 1 << max(0, x - 1).bit_length())


def source_ids(network: Network) -> int:
    """Host source ids a simulated system gives a network: its source neurons, a power of two
    of at least 256."""
    return _pow2(sum(p.size for p in network.populations.values() if p.is_source), 256)


def simulated_hardware(network: Network, cores: int | None = None, **sizes: int | None) -> Hardware:
    """Return the hardware a network is mapped onto when no board is named.

    The simulated system's core (:func:`sim_core`) with any of its sizes replaced
    (``neurons``, ``axons``, ``synapses``, ``delay_slots``, ``acc_bits``), up to ``cores``
    cores (:data:`SIM_MAX_CORES` by default), ``route_entries`` and ``sources`` (enough for
    the network's spike sources by default).

    Raises
    ------
    TypeError, ValueError
        For a size that is not accepted, naming it.
    """
    given = {k: v for k, v in sizes.items() if v is not None}
    core, entries = sim_core(network)
    route_entries = given.pop("route_entries", entries)
    sources = given.pop("sources", None) or source_ids(network)
    unknown = set(given) - {"neurons", "axons", "synapses", "delay_slots", "acc_bits"}
    if unknown:
        raise TypeError(f"unknown core sizes {sorted(unknown)}")
    return Hardware(
        cores=cores or SIM_MAX_CORES,
        core=replace(core, **given),
        route_entries=route_entries,
        sources=sources,
        inject_depth=SIM_INJECT_DEPTH,
    )


def simulated_system(
    network: Network, cores: int | None = None, compact: bool = False
) -> SystemConfig:
    """Return the simulated system a network runs on: as many cores as its neurons need.

    With ``compact``, every memory is cut to what the network needs (powers of two), which
    keeps an event-driven simulator's image load short (Icarus); Verilator uses the fixed
    sizes so that one build serves many networks.
    """
    n_src = sum(p.size for p in network.populations.values() if p.is_source)
    core, entries = sim_core(network)
    n = cores or max(1, -(-network.n_neurons // core.neurons))
    config = SystemConfig(
        cores=n,
        core=core,
        sources=source_ids(network),
        route_entries=entries,
        inject_depth=SIM_INJECT_DEPTH,
    )
    if not compact:
        return config
    from spikefab.mapping.image import place_sequential

    stats = place_sequential(network, config).stats
    small = CoreConfig(
        neurons=_pow2(min(network.n_neurons, core.neurons), 16),
        axons=_pow2(max(stats["axons"]), 16),
        synapses=_pow2(max(stats["entries"]), 16),
        delay_slots=_pow2(network.max_delay, 1),
        learning=any(pr.stdp is not None for pr in network.projections),
    )
    return SystemConfig(
        cores=cores or max(1, -(-network.n_neurons // small.neurons)),
        core=small,
        sources=_pow2(max(n_src, 1), 16),
        route_entries=_pow2(stats["route_entries"], 16),
        inject_depth=min(SIM_INJECT_DEPTH, _pow2(max(n_src, 1), 16)),
    )
