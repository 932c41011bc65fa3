"""Memory layouts and stream payloads of the neuron core (``docs/contract.md``, section 6).

Every word the core stores or exchanges is a :class:`~amaranth.lib.data.StructLayout` defined
here; the mapper packs memory images with :func:`pack` and the host unpacks replies with
:func:`unpack`, so no field position is written twice.
"""

from __future__ import annotations

import enum as py_enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum
from amaranth.utils import ceil_log2
from spikefab.hdl import params as P

__all__ = [
    "CORE_COUNTERS",
    "NEURON_PARAMS",
    "NEURON_STATE",
    "POST_TRACE",
    "PRE_TRACE",
    "STDP_AMP",
    "STDP_BUMP",
    "STDP_CLAMP",
    "STDP_DECAY",
    "SYNAPSE_MEMORIES",
    "CoreConfig",
    "CoreMem",
    "CoreReg",
    "SystemConfig",
    "SystemMem",
    "SystemReg",
    "describe",
    "expand_ranges",
    "field_of",
    "pack",
    "pack_array",
    "replace_field",
    "unpack",
]


#: Where a core's synapse table can live (``CoreConfig.synapse_memory``).
SYNAPSE_MEMORIES = ("bram", "sdram")


def _pow2(name: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or value > hi or value & (value - 1):
        raise ValueError(f"{name} must be a power of two from {lo} to {hi}, not {value!r}")
    return value


@dataclass(frozen=True)
class CoreConfig:
    """Sizes of one neuron core; every memory and field width follows from them.

    Parameters
    ----------
    neurons
        Neurons time-multiplexed on the core: a power of two, 2 .. 4096.
    axons
        Input axons (rows of the axon table): a power of two, 2 .. 65536.
    synapses
        Synapse-table entries: a power of two, 2 .. 1048576 (2**20).
    delay_slots
        ``D``, the dendrite ring's slots; delays ``1 .. D``: a power of two, 1 .. 64.
    acc_bits
        Width of a dendrite accumulator, 17 .. 40. The mapper refuses a neuron whose
        incoming synapses could sum beyond it (contract 3.3); ``None`` takes the width that
        holds every entry of the table at once, so that no network can overflow it.
    learning
        Whether the core has the STDP learning unit (contract 6.4): trace memories, the
        learning phase and its registers. A core without it holds no plastic synapses.
    stats
        Whether the statistics counters are built (contract 6.1 and 7.2): the core's
        event, cycle, spike and step counters, and in a system of such cores the router's,
        the host link's and the FIFO maxima. Without them (for the smallest devices) they
        read 0 and ignore writes; the system's ``STEP`` and the core's ``NOW`` remain.
    synapse_memory
        Where the synapse table lives: ``"bram"`` (block RAM on the chip) or ``"sdram"``
        (an SDR SDRAM behind the core's ``sdram`` pins, read a range of entries at a time;
        :mod:`~spikefab.hdl.synapse_store`). The SDRAM table cannot learn: a core with it
        has no learning unit.
    """

    neurons: int = 256
    axons: int = 256
    synapses: int = 4096
    delay_slots: int = 16
    acc_bits: int | None = 24
    learning: bool = False
    stats: bool = True
    synapse_memory: str = "bram"

    def __post_init__(self) -> None:
        if not isinstance(self.learning, bool):
            raise TypeError(f"learning must be True or False, not {self.learning!r}")
        if not isinstance(self.stats, bool):
            raise TypeError(f"stats must be True or False, not {self.stats!r}")
        if self.synapse_memory not in SYNAPSE_MEMORIES:
            raise ValueError(
                f"synapse_memory must be one of {', '.join(map(repr, SYNAPSE_MEMORIES))}, "
                f"not {self.synapse_memory!r}"
            )
        if self.synapse_memory == "sdram" and self.learning:
            raise ValueError(
                "a core with its synapses in SDRAM cannot learn: give learning=False, or "
                'synapse_memory="bram"'
            )
        _pow2("neurons", self.neurons, 2, 4096)
        _pow2("axons", self.axons, 2, 1 << 16)
        _pow2("synapses", self.synapses, 2, 1 << 20)
        _pow2("delay_slots", self.delay_slots, 1, P.MAX_DELAY)
        if self.acc_bits is None:
            object.__setattr__(self, "acc_bits", self.full_acc_bits)
        if not isinstance(self.acc_bits, int) or not P.INPUT_BITS + 1 <= self.acc_bits <= 40:
            raise ValueError(
                f"acc_bits must be an integer from {P.INPUT_BITS + 1} to 40, not {self.acc_bits!r}"
            )

    @property
    def neuron_bits(self) -> int:
        return ceil_log2(self.neurons)

    @property
    def axon_bits(self) -> int:
        return ceil_log2(self.axons)

    @property
    def synapse_bits(self) -> int:
        return ceil_log2(self.synapses)

    @property
    def delay_bits(self) -> int:
        return ceil_log2(self.delay_slots)

    @property
    def full_acc_bits(self) -> int:
        """The accumulator width that is exact for every entry of the table at once.

        Each entry adds at most ``2**14`` in magnitude to one slot (contract 3.3), so
        ``synapses * 2**14`` bounds any sum; one more bit holds the sign.
        """
        return P.WEIGHT_BITS + P.WEIGHT_EXP_MAX + self.synapse_bits + 1

    @property
    def acc_limit(self) -> int:
        """The largest sum of ``|w << weight_exp|`` one neuron's synapses may reach."""
        return (1 << (self.acc_bits - 1)) - 1

    @property
    def ring_depth(self) -> int:
        return self.delay_slots * self.neurons

    # layouts ---------------------------------------------------------------------------
    @property
    def axon_layout(self) -> data.StructLayout:
        """A row of the axon table: the entries ``start .. start + count - 1``."""
        return data.StructLayout(
            {"start": unsigned(self.synapse_bits), "count": unsigned(self.synapse_bits + 1)}
        )

    @property
    def synapse_layout(self) -> data.StructLayout:
        """A synapse entry: target neuron, weight mantissa and exponent, ``delay - 1``."""
        return data.StructLayout(
            {
                "target": unsigned(self.neuron_bits),
                "weight": signed(P.WEIGHT_BITS),
                "weight_exp": unsigned(P.WEIGHT_EXP_BITS),
                "delay": unsigned(self.delay_bits),
            }
        )

    @property
    def ring_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": signed(self.acc_bits)})

    @property
    def event_layout(self) -> data.StructLayout:
        """An input event: the axon it arrives on."""
        return data.StructLayout({"axon": unsigned(self.axon_bits)})

    @property
    def spike_layout(self) -> data.StructLayout:
        """An output spike: the neuron that fired."""
        return data.StructLayout({"neuron": unsigned(self.neuron_bits)})

    @property
    def addr_bits(self) -> int:
        """Address width of the configuration port: enough for the largest memory."""
        return max(
            ceil_log2(self.ring_depth), self.synapse_bits, self.axon_bits, self.neuron_bits, 4
        )

    @property
    def cfg_request_layout(self) -> data.StructLayout:
        """The configuration request of the core (:mod:`spikefab.hdl.cfg_bus`)."""
        from spikefab.hdl.cfg_bus import cfg_request_layout

        return cfg_request_layout(CoreMem, self.addr_bits)

    @property
    def cfg_reply_layout(self) -> data.StructLayout:
        from spikefab.hdl.cfg_bus import cfg_reply_layout

        return cfg_reply_layout()

    def layout_of(self, mem: CoreMem) -> data.StructLayout:
        """Return the layout of one word of a core memory."""
        return {
            CoreMem.STATE: NEURON_STATE,
            CoreMem.PARAMS: NEURON_PARAMS,
            CoreMem.RING: self.ring_layout,
            CoreMem.AXONS: self.axon_layout,
            CoreMem.SYNAPSES: self.synapse_layout,
            CoreMem.REGS: REG_LAYOUT,
            CoreMem.PRE_TRACES: PRE_TRACE,
            CoreMem.POST_TRACES: POST_TRACE,
        }[mem]

    def depth_of(self, mem: CoreMem) -> int:
        """Return the number of words of a core memory."""
        return {
            CoreMem.STATE: self.neurons,
            CoreMem.PARAMS: self.neurons,
            CoreMem.RING: self.ring_depth,
            CoreMem.AXONS: self.axons,
            CoreMem.SYNAPSES: self.synapses,
            CoreMem.REGS: len(CoreReg),
            CoreMem.PRE_TRACES: self.axons if self.learning else 0,
            CoreMem.POST_TRACES: self.neurons if self.learning else 0,
        }[mem]


class CoreMem(enum.Enum, shape=3):
    """The memories of a core, as selected by the configuration port."""

    STATE = 0
    PARAMS = 1
    RING = 2
    AXONS = 3
    SYNAPSES = 4
    REGS = 5
    #: Pre-synaptic traces, one word per axon (cores with ``learning`` only).
    PRE_TRACES = 6
    #: Post-synaptic traces and LFSRs, one word per neuron (cores with ``learning`` only).
    POST_TRACES = 7


class CoreReg(py_enum.IntEnum):
    """Registers of a core, read (and some written) through ``CoreMem.REGS``."""

    #: The ring slot the next update reads: the step number mod ``delay_slots`` (read/write).
    NOW = 0
    #: Synaptic events delivered since the last write to this register (read/write).
    EVENTS = 1
    #: Clock cycles spent in the delivery phase (accepting events) since the last clear.
    DELIVERY_CYCLES = 2
    #: Clock cycles spent in update phases since the last clear.
    UPDATE_CYCLES = 3
    #: Spikes emitted since the last clear.
    SPIKES = 4
    #: Steps completed since the last clear.
    STEPS = 5
    # the learning unit (contract 6.4); on a core without it these read 0 and ignore writes
    #: ``a_plus``, ``a_minus``, ``shift``, ``stochastic`` (:data:`STDP_AMP`).
    STDP_AMP = 6
    #: ``d_pre``, ``d_post`` (:data:`STDP_DECAY`).
    STDP_DECAY = 7
    #: ``bump_pre``, ``bump_post`` (:data:`STDP_BUMP`).
    STDP_BUMP = 8
    #: ``w_min``, ``w_max`` (:data:`STDP_CLAMP`).
    STDP_CLAMP = 9
    #: Axons ``0 .. PLASTIC_AXONS - 1`` are plastic; 0 turns learning off.
    PLASTIC_AXONS = 10
    #: Neurons ``0 .. LEARN_NEURONS - 1`` have their post-synaptic trace kept.
    LEARN_NEURONS = 11
    #: 1 while the learning phase of the last update's step has not run yet.
    LEARN_PENDING = 12
    #: Clock cycles spent in learning phases since the last clear.
    LEARN_CYCLES = 13


#: The core's statistics counters, which read 0 on a core built without them (contract 6.1).
CORE_COUNTERS = (
    CoreReg.EVENTS,
    CoreReg.DELIVERY_CYCLES,
    CoreReg.UPDATE_CYCLES,
    CoreReg.SPIKES,
    CoreReg.STEPS,
    CoreReg.LEARN_CYCLES,
)

#: Width of the configuration port's data: the widest word (parameters, 62 bits) fits.
CFG_DATA_BITS = 64

REG_LAYOUT = data.StructLayout({"value": unsigned(32)})

#: Neuron state, one word per neuron (contract 2.2).
NEURON_STATE = data.StructLayout(
    {
        "u": signed(P.UV_BITS),
        "v": signed(P.UV_BITS),
        "ref": unsigned(P.REFRACTORY_BITS),
    }
)

#: A pre-synaptic trace word (contract 6.4): the trace ``x`` of an axon after the last learning
#: phase, and whether the axon has had an event since.
PRE_TRACE = data.StructLayout({"x": unsigned(P.TRACE_BITS), "spiked": unsigned(1)})

#: A post-synaptic trace word (contract 6.4): the trace ``y`` after the last learning phase, the
#: LFSR state the next learning phase uses, and whether the neuron spiked in its last update.
POST_TRACE = data.StructLayout(
    {"y": unsigned(P.TRACE_BITS), "lfsr": unsigned(P.LFSR_BITS), "spiked": unsigned(1)}
)

#: The STDP rule registers of a learning core (contract 6.4).
STDP_AMP = data.StructLayout(
    {
        "a_plus": signed(P.STDP_A_BITS),
        "a_minus": signed(P.STDP_A_BITS),
        "shift": unsigned(P.STDP_SHIFT_BITS),
        "stochastic": unsigned(1),
    }
)
STDP_DECAY = data.StructLayout({"d_pre": unsigned(P.DECAY_BITS), "d_post": unsigned(P.DECAY_BITS)})
STDP_BUMP = data.StructLayout(
    {"bump_pre": unsigned(P.TRACE_BITS), "bump_post": unsigned(P.TRACE_BITS)}
)
STDP_CLAMP = data.StructLayout({"w_min": signed(P.WEIGHT_BITS), "w_max": signed(P.WEIGHT_BITS)})

#: Neuron parameters, one word per neuron (contract 2.2).
NEURON_PARAMS = data.StructLayout(
    {
        "du": unsigned(P.DECAY_BITS),
        "dv": unsigned(P.DECAY_BITS),
        "vth": unsigned(P.VTH_BITS),
        "bias_mant": signed(P.BIAS_MANT_BITS),
        "bias_exp": unsigned(P.BIAS_EXP_BITS),
        "refractory": unsigned(P.REFRACTORY_BITS),
        "reset_subtract": unsigned(1),
    }
)


def pack(layout: data.StructLayout, fields: Mapping[str, int]) -> int:
    """Pack field values into one word of ``layout`` (as an unsigned integer).

    Raises
    ------
    ValueError
        When a field is missing, unknown, or does not fit its width.
    """
    names = {name for name, _ in layout}
    unknown = set(fields) - names
    missing = names - set(fields)
    if unknown or missing:
        raise ValueError(
            f"fields {sorted(unknown)} are not in the layout and {sorted(missing)} are missing; "
            f"the layout has {sorted(names)}"
        )
    word = 0
    for name, field in layout:
        shape = Shape.cast(field.shape)
        value = int(fields[name])
        lo, hi = (
            (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1)
            if shape.signed
            else (0, (1 << shape.width) - 1)
        )
        if not lo <= value <= hi:
            raise ValueError(
                f"field {name} = {value} does not fit {shape.width} "
                f"{'signed' if shape.signed else 'unsigned'} bits ({lo}..{hi})"
            )
        word |= (value & ((1 << shape.width) - 1)) << field.offset
    return word


def unpack(layout: data.StructLayout, word: int) -> dict[str, int]:
    """Unpack one word of ``layout`` into its field values (signed where the field is)."""
    out = {}
    for name, field in layout:
        shape = Shape.cast(field.shape)
        value = (int(word) >> field.offset) & ((1 << shape.width) - 1)
        if shape.signed and value >> (shape.width - 1):
            value -= 1 << shape.width
        out[name] = value
    return out


def _range(shape: Shape) -> tuple[int, int]:
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def pack_array(layout: data.StructLayout, **values: np.ndarray) -> np.ndarray:
    """Pack arrays of field values into words of ``layout``, as :func:`pack` does one word.

    Every field of the layout must be given; scalars broadcast against the arrays.

    Raises
    ------
    ValueError
        When a field is missing or unknown, or a value does not fit its field (naming the
        field, the first value that does not fit and the accepted range).
    """
    names = [name for name, _ in layout]
    if set(names) != set(values):
        raise ValueError(f"fields {sorted(values)} do not match the layout's {sorted(names)}")
    arrays = np.broadcast_arrays(*(np.asarray(values[n], dtype=np.int64) for n in names))
    out = np.zeros(arrays[0].shape if arrays else (0,), dtype=np.uint64)
    for (name, f), v in zip(layout, arrays, strict=True):
        shape = Shape.cast(f.shape)
        lo, hi = _range(shape)
        if v.size and (int(v.min()) < lo or int(v.max()) > hi):
            bad = int(v[(v < lo) | (v > hi)].flat[0])
            raise ValueError(
                f"field {name} = {bad} does not fit {shape.width} "
                f"{'signed' if shape.signed else 'unsigned'} bits ({lo}..{hi})"
            )
        out |= (v & ((1 << shape.width) - 1)).astype(np.uint64) << np.uint64(f.offset)
    return out


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Return the concatenation of ``arange(s, s + c)`` for every pair, without a loop.

    Rows of a table (an axon's synapse entries, a sender's route entries) are such ranges.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - counts), counts)
    return shift + np.arange(total, dtype=np.int64)


@functools.cache
def _field_bits(layout: data.StructLayout, name: str) -> tuple[np.uint64, np.uint64, int, bool]:
    """The shift, the mask, the width and the signedness of a field (asked once a step for
    every probe, so kept)."""
    f = layout[name]
    shape = Shape.cast(f.shape)
    return np.uint64(f.offset), np.uint64((1 << shape.width) - 1), shape.width, shape.signed


def field_of(words: np.ndarray, layout: data.StructLayout, name: str) -> np.ndarray:
    """Return one field of an array of packed words (sign-extended where it is signed)."""
    shift, mask, width, signed = _field_bits(layout, name)
    w = np.asarray(words, dtype=np.uint64)
    v = ((w >> shift) & mask).astype(np.int64)
    if signed:
        v = np.where(v >= 1 << (width - 1), v - (1 << width), v)
    return v


def replace_field(
    words: np.ndarray, layout: data.StructLayout, name: str, values: np.ndarray
) -> np.ndarray:
    """Return ``words`` with one field replaced by ``values`` (checked as :func:`pack_array`)."""
    f = layout[name]
    shape = Shape.cast(f.shape)
    v = np.asarray(values, dtype=np.int64)
    lo, hi = _range(shape)
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        bad = int(v[(v < lo) | (v > hi)].flat[0])
        raise ValueError(f"field {name} = {bad} does not fit its {shape.width} bits ({lo}..{hi})")
    mask = np.uint64(((1 << shape.width) - 1) << f.offset)
    bits = (v & ((1 << shape.width) - 1)).astype(np.uint64) << np.uint64(f.offset)
    return (np.asarray(words, dtype=np.uint64) & ~mask) | bits


def describe(config: CoreConfig, component=None) -> dict:  # type: ignore[no-untyped-def]
    """Return a JSON-ready description of a core: sizes, ports and memories with fields.

    Port names are those of the generated Verilog (``i_events__payload``, ...).
    """
    from amaranth.lib import wiring

    def fields(layout: data.StructLayout) -> list[dict]:
        out = []
        for name, f in layout:
            shape = Shape.cast(f.shape)
            out.append(
                {"name": name, "offset": f.offset, "width": shape.width, "signed": shape.signed}
            )
        return out

    ports = []
    if component is not None:
        for path, member in component.signature.members.flatten():
            if not member.is_port:
                continue
            shape = member.shape
            port = {
                "name": "__".join(str(p) for p in path),
                "direction": "in" if member.flow == wiring.In else "out",
                "width": Shape.cast(shape).width,
            }
            if isinstance(shape, data.StructLayout):
                port["fields"] = fields(shape)
            ports.append(port)
    mems = []
    for mem in CoreMem:
        layout = config.layout_of(mem)
        mems.append(
            {
                "name": mem.name,
                "select": mem.value,
                "depth": config.depth_of(mem),
                "width": layout.size,
                "fields": fields(layout),
            }
        )
    return {
        "contract_version": P.CONTRACT_VERSION,
        "config": {
            "neurons": config.neurons,
            "axons": config.axons,
            "synapses": config.synapses,
            "delay_slots": config.delay_slots,
            "acc_bits": config.acc_bits,
        },
        "clock": "clk",
        "reset": {"name": "rst", "active": "high", "synchronous": True},
        "ports": ports,
        "memories": mems,
        "registers": {r.name: r.value for r in CoreReg},
    }


# ---------------------------------------------------------------------------------------------
# The multi-core system (contract section 7)


class SystemMem(enum.Enum, shape=2):
    """Memories of the system (router tables, registers), target ``SYSTEM`` of the host link."""

    ROUTE_POINTERS = 0
    ROUTE_ENTRIES = 1
    REGS = 2


class SystemReg(py_enum.IntEnum):
    """System registers, read through ``SystemMem.REGS`` (write 0 to clear a counter)."""

    #: Steps completed since the last clear: the number of the next step.
    STEP = 0
    #: Route entries the router has followed.
    ROUTER_EVENTS = 1
    #: Cycles the router waited on a full destination FIFO.
    ROUTER_STALLS = 2
    #: Spikes sent to the host.
    HOST_SPIKES = 3
    #: Highest occupancy seen of any core's input FIFO.
    MAX_CORE_FIFO = 4
    #: Highest occupancy seen of any core's spike FIFO.
    MAX_SPIKE_FIFO = 5
    #: Frames refused by the host link (any error).
    ERRORS = 6
    #: Frames answered by the host link (refused ones included).
    FRAMES = 7
    #: Writing any value runs every core's pending learning phase (contract 6.4), so that
    #: weights and traces read afterwards are those after the last step run; reads 0.
    LEARN = 8
    #: Clock cycles spent in steps: from the start of a step's drain of the step before to
    #: the end of its routing (contract 7.2); steps run back to back take this many in all.
    STEP_CYCLES = 9
    #: The most cycles one step took (as counted by STEP_CYCLES).
    MAX_STEP_CYCLES = 10


@dataclass(frozen=True)
class SystemConfig:
    """Sizes of a multi-core system: ``cores`` identical cores, a router and the host link.

    Parameters
    ----------
    cores
        Number of neuron cores, 1 .. 15.
    core
        The size of every core.
    sources
        Host source ids: input neurons the host injects, each with its own routes.
    route_entries
        Rows of the router's entry table (destination, axon): a power of two.
    inject_depth
        Sources the host can inject for one step.
    core_fifo_depth
        Depth of each core's input event FIFO: a power of two.
    """

    cores: int = 2
    core: CoreConfig = CoreConfig()
    sources: int = 256
    route_entries: int = 1024
    inject_depth: int = 256
    core_fifo_depth: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.cores, int) or not 1 <= self.cores <= 15:
            raise ValueError(f"cores must be an integer from 1 to 15, not {self.cores!r}")
        if not isinstance(self.core, CoreConfig):
            raise TypeError(f"core must be a CoreConfig, not {self.core!r}")
        if not isinstance(self.sources, int) or not 1 <= self.sources <= 1 << 15:
            raise ValueError(f"sources must be an integer from 1 to 32768, not {self.sources!r}")
        _pow2("route_entries", self.route_entries, 2, 1 << 16)
        _pow2("core_fifo_depth", self.core_fifo_depth, 4, 4096)
        if not isinstance(self.inject_depth, int) or not 1 <= self.inject_depth <= 4096:
            raise ValueError(
                f"inject_depth must be an integer from 1 to 4096, not {self.inject_depth!r}"
            )
        if self.core.synapse_memory == "sdram" and self.cores != 1:
            raise ValueError(
                f"a system whose core keeps its synapses in SDRAM has one core (the SDRAM is "
                f"one device), not {self.cores}"
            )
        if self.cores * self.core.neurons > 1 << 16:
            raise ValueError(
                f"cores x neurons must be at most 65536 (16-bit neuron ids), not "
                f"{self.cores} x {self.core.neurons} = {self.cores * self.core.neurons}"
            )

    @property
    def host_dest(self) -> int:
        """The ``dest`` value of a route entry that goes to the host."""
        return self.cores

    @property
    def dest_bits(self) -> int:
        return ceil_log2(self.cores + 1)

    @property
    def gid_bits(self) -> int:
        """Width of a global neuron id ``core * neurons + neuron``."""
        return max(1, ceil_log2(self.cores * self.core.neurons))

    @property
    def pointer_depth(self) -> int:
        """Route pointers: one per core neuron (global id), then one per host source."""
        return self.cores * self.core.neurons + self.sources

    @property
    def route_pointer_layout(self) -> data.StructLayout:
        bits = ceil_log2(self.route_entries)
        return data.StructLayout({"start": unsigned(bits), "count": unsigned(bits + 1)})

    @property
    def route_entry_layout(self) -> data.StructLayout:
        return data.StructLayout(
            {"dest": unsigned(self.dest_bits), "axon": unsigned(self.core.axon_bits)}
        )

    def layout_of(self, mem: SystemMem) -> data.StructLayout:
        return {
            SystemMem.ROUTE_POINTERS: self.route_pointer_layout,
            SystemMem.ROUTE_ENTRIES: self.route_entry_layout,
            SystemMem.REGS: REG_LAYOUT,
        }[mem]

    def depth_of(self, mem: SystemMem) -> int:
        return {
            SystemMem.ROUTE_POINTERS: self.pointer_depth,
            SystemMem.ROUTE_ENTRIES: self.route_entries,
            SystemMem.REGS: len(SystemReg),
        }[mem]
