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

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spikefab.hdl.layouts import CoreConfig, SystemConfig

if TYPE_CHECKING:
    from spikefab.boards import Board

__all__ = ["Hardware"]


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
            f"entries, {c.delay_slots} delay slots, {c.acc_bits}-bit accumulators; router "
            f"{self.route_entries} entries, {self.sources} source ids"
        )
