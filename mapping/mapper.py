"""The mapper: placement, shared tables, limits, traffic and the image (``docs/mapping.md``).

:func:`map_network` places a network's neurons (:mod:`spikefab.mapping.placement`) and
builds every table the hardware needs:

- **Synapse entries and axons** (contract 6.1). On each core, the synapses of one sender form
  a row; rows with the same entries (the same targets, weights, exponents and delays) are
  stored once and share one axon: every sender whose spikes do the same thing on a core sends
  them to the same axon. An axon's entries may be in any order, so rows are compared as
  sets.
- **Routes** (contract 7.1). Each sender's route is one entry per core it reaches (the axon
  there) and, for a recorded LIF neuron, one to the host. Senders with the same route share
  the entries: a pointer is a range, and an entry to the host carries no sender.

Every limit is checked; a network that does not fit raises
:class:`~spikefab.mapping.core_image.FitError` naming the limit, where, by how much and what
would make it fit. Nothing is dropped or cut short.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from spikefab.hdl import params as P
from spikefab.hdl.layouts import (
    NEURON_PARAMS,
    NEURON_STATE,
    POST_TRACE,
    CoreConfig,
    CoreMem,
    CoreReg,
    SystemConfig,
    expand_ranges,
    pack,
    pack_array,
)
from spikefab.mapping.core_image import FitError, learning_registers, post_trace_seed
from spikefab.mapping.hardware import Hardware
from spikefab.mapping.image import Image, recorded_neurons
from spikefab.mapping.network import Network, STDPParams
from spikefab.mapping.placement import Assignment, FlatNetwork, assign, fit_error, flatten

__all__ = [
    "CoreTables",
    "Mapping",
    "expected_rates",
    "format_report",
    "map_network",
    "place",
]


# ---------------------------------------------------------------------------------------------
# Sharing rows


def _mask(bits: int) -> int:
    return (1 << bits) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit mixing function (splitmix64's finaliser), element-wise."""
    x = x.astype(np.uint64)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _share(scope: np.ndarray, starts: np.ndarray, lens: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """For rows ``vals[starts[r] : starts[r] + lens[r]]`` (each sorted, none empty), return
    the first row of the same scope with the same values, for every row.

    Rows are grouped by hashes of their values and then compared in full, so two rows share
    only if they are equal.
    """
    R = starts.size
    rep = np.arange(R, dtype=np.int64)
    if R == 0:
        return rep
    idx = expand_ranges(starts, lens)
    offs = np.zeros(R, dtype=np.int64)
    np.cumsum(lens[:-1], out=offs[1:])
    v = vals[idx].astype(np.uint64)
    p = (idx - np.repeat(starts, lens)).astype(np.uint64)
    h1 = np.add.reduceat(_mix(v * np.uint64(0x9E3779B97F4A7C15) + p), offs)
    h2 = np.add.reduceat(_mix(v ^ _mix(p + np.uint64(0x632BE59BD9B4E019))), offs)
    order = np.lexsort((np.arange(R), h2, h1, lens, scope))
    s = (scope[order], lens[order], h1[order], h2[order])
    new = np.ones(R, dtype=bool)
    new[1:] = np.logical_or.reduce([x[1:] != x[:-1] for x in s])
    group_first = order[np.flatnonzero(new)]
    rep[order] = group_first[np.cumsum(new) - 1]
    # compare every sharing row with the row it shares, entry by entry
    members = np.flatnonzero(rep != np.arange(R))
    if members.size:
        a = vals[expand_ranges(starts[members], lens[members])]
        b = vals[expand_ranges(starts[rep[members]], lens[members])]
        offs = np.zeros(members.size, dtype=np.int64)
        np.cumsum(lens[members][:-1], out=offs[1:])
        differ = np.logical_or.reduceat(a != b, offs)
        rep[members[differ]] = members[differ]
    return rep


# ---------------------------------------------------------------------------------------------
# The mapping


@dataclass
class CoreTables:
    """The tables of one core, as field arrays (packed by :meth:`Mapping.image`).

    ``axon_start[a], axon_count[a]`` is axon ``a``'s range of entries; entry ``e`` is
    ``target[e]`` (a neuron slot), ``weight[e] << weight_exp[e]`` with ``delay[e]`` steps.
    """

    axon_start: np.ndarray
    axon_count: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    weight_exp: np.ndarray
    delay: np.ndarray
    neurons: int = 0
    rows: int = 0
    row_entries: int = 0
    #: Axons ``0 .. plastic_axons - 1`` carry plastic synapses (contract 6.4).
    plastic_axons: int = 0
    #: The learning rule of the core's plastic synapses, or ``None``.
    rule: STDPParams | None = None

    @property
    def axons(self) -> int:
        return int(self.axon_start.size)

    @property
    def entries(self) -> int:
        return int(self.target.size)


@dataclass
class Mapping:
    """A network placed on hardware, with every table built.

    Attributes
    ----------
    flat, hardware, assignment
        The network, the hardware and the placement.
    cores
        The tables of every core of the hardware.
    route_start, route_count
        Each sender's range of route entries (LIF neurons, then sources, in flat order).
    route_dest, route_axon
        The route entries: destination core (``-1``: the host) and axon there.
    rates
        Expected spikes per step of each sender, or ``None`` when not known.
    traffic
        ``traffic[i, j]``: spike events per step from core ``i`` to core ``j`` (synapse rows
        per sender without rates); the last row is the host's sources, the last column the
        host.
    stats
        Usage, traffic and timings (JSON-ready; the image's header keeps them).
    """

    flat: FlatNetwork
    hardware: Hardware
    assignment: Assignment
    cores: list[CoreTables]
    route_start: np.ndarray
    route_count: np.ndarray
    route_dest: np.ndarray
    route_axon: np.ndarray
    rates: np.ndarray | None
    traffic: np.ndarray
    stats: dict = field(default_factory=dict)
    #: For every synapse (flat order), its entry on its core if it is plastic, else -1.
    plastic_entry: np.ndarray | None = None

    @property
    def net(self) -> Network:
        return self.flat.net

    @property
    def cores_used(self) -> int:
        return int(self.stats["cores_used"])

    def core_of(self) -> dict[str, np.ndarray]:
        """The core of every neuron of each LIF population."""
        f = self.flat
        return {
            name: self.assignment.core[off : off + f.net.populations[name].size]
            for name, off in f.lif_offset.items()
        }

    def neuron_of(self) -> dict[str, np.ndarray]:
        """The neuron slot of every neuron of each LIF population."""
        f = self.flat
        return {
            name: self.assignment.slot[off : off + f.net.populations[name].size]
            for name, off in f.lif_offset.items()
        }

    def report(self) -> str:
        """Return the report: every limit on every core, the router, traffic per step."""
        return format_report(self)

    def image(
        self, system: SystemConfig | None = None, trim: bool = False, network_yaml: str = ""
    ) -> Image:
        """Pack the tables into the image of a system.

        Parameters
        ----------
        system
            The system to pack for; by default the hardware's own (with only the cores up
            to the last one used if ``trim``). Its cores must have the hardware's sizes.
        network_yaml
            The network description, kept in the image.

        Raises
        ------
        FitError
            When the hardware is not a system the gateware can be built as, or ``system``
            does not hold the mapping.
        """
        hw = self.hardware
        last = int(self.assignment.core.max()) + 1 if self.assignment.core.size else 1
        if system is None:
            try:
                system = hw.system(cores=last if trim else None)
            except ValueError as e:
                raise FitError(f"no image for {hw.describe()}: {e}") from None
        if system.core != hw.core or system.cores < last:
            raise FitError(
                f"the mapping uses {last} cores of {hw.core}; the system has {system.cores} "
                f"of {system.core}"
            )
        if system.sources < self.flat.m or system.route_entries < self.route_dest.size:
            raise FitError(
                f"the mapping needs {self.flat.m} source ids and {self.route_dest.size} route "
                f"entries; the system has {system.sources} and {system.route_entries}"
            )
        f, c = self.flat, system.core
        N, C = c.neurons, system.cores
        core_words: list[dict[CoreMem, list[int]]] = []
        params = np.zeros(C * N, dtype=np.uint64)
        for name, off in f.lif_offset.items():
            p = f.net.populations[name]
            assert p.neuron is not None
            n = p.neuron
            word = pack(
                NEURON_PARAMS,
                {
                    "du": n.du,
                    "dv": n.dv,
                    "vth": n.vth,
                    "bias_mant": n.bias_mant,
                    "bias_exp": n.bias_exp,
                    "refractory": n.refractory,
                    "reset_subtract": int(n.reset == "subtract"),
                },
            )
            sl = slice(off, off + p.size)
            params[self.assignment.core[sl] * N + self.assignment.slot[sl]] = word
        # the state before the first step: u = 0, ref = 0, v = initial_v (0 when not given)
        v0 = np.zeros(C * N, dtype=np.int64)
        for name, off in f.lif_offset.items():
            p = f.net.populations[name]
            if p.v0 is not None:
                sl = slice(off, off + p.size)
                v0[self.assignment.core[sl] * N + self.assignment.slot[sl]] = p.v0
        state = pack_array(NEURON_STATE, u=0, v=v0, ref=0)
        for k in range(C):
            t = self.cores[k] if k < len(self.cores) else None
            words: dict[CoreMem, list[int]] = {
                CoreMem.PARAMS: params[k * N : (k + 1) * N].tolist(),
                CoreMem.STATE: state[k * N : (k + 1) * N].tolist(),
            }
            if t is not None and t.axons:
                words[CoreMem.AXONS] = pack_array(
                    c.axon_layout, start=t.axon_start, count=t.axon_count
                ).tolist()
                words[CoreMem.SYNAPSES] = pack_array(
                    c.synapse_layout,
                    target=t.target,
                    weight=t.weight,
                    weight_exp=t.weight_exp,
                    delay=t.delay - 1,
                ).tolist()
            else:
                words[CoreMem.AXONS] = []
                words[CoreMem.SYNAPSES] = []
            if t is not None and t.rule is not None:
                words.update(self._learning_words(k, t, c))
            core_words.append(words)
        # pointers: a LIF neuron at its global id, a source at C * N + its id
        gid = np.concatenate(
            [self.assignment.core * N + self.assignment.slot, C * N + np.arange(f.m)]
        )
        starts = np.zeros(system.pointer_depth, dtype=np.int64)
        counts = np.zeros(system.pointer_depth, dtype=np.int64)
        starts[gid] = np.where(self.route_count > 0, self.route_start, 0)
        counts[gid] = self.route_count
        pointers = pack_array(system.route_pointer_layout, start=starts, count=counts)
        dest = np.where(self.route_dest < 0, system.host_dest, self.route_dest)
        entries = pack_array(system.route_entry_layout, dest=dest, axon=self.route_axon)
        src_of = {
            name: off + np.arange(f.net.populations[name].size)
            for name, off in f.src_offset.items()
        }
        plastic_entries = {}
        if self.plastic_entry is not None:
            k0 = 0
            for pr in f.net.projections:
                sl = slice(k0, k0 + pr.n_synapses)
                k0 += pr.n_synapses
                if pr.stdp is not None:
                    post = f.post[sl]
                    plastic_entries[pr.name] = (
                        self.assignment.core[post].copy(),
                        self.plastic_entry[sl].copy(),
                    )
        stats = dict(self.stats)
        stats["axons"] = [t.axons for t in self.cores[:C]] + [0] * (C - len(self.cores))
        stats["entries"] = [t.entries for t in self.cores[:C]] + [0] * (C - len(self.cores))
        return Image(
            system,
            core_words,
            pointers.tolist(),
            entries.tolist(),
            {k: v.copy() for k, v in self.core_of().items()},
            {k: v.copy() for k, v in self.neuron_of().items()},
            src_of,
            network_yaml,
            stats,
            plastic_entries,
        )

    def _learning_words(self, k: int, t: CoreTables, c: CoreConfig) -> dict:
        """The trace memories and registers of learning core ``k`` (contract 6.4)."""
        f, a = self.flat, self.assignment
        rule = t.rule
        assert rule is not None
        lfsr = np.zeros(c.neurons, dtype=np.int64)
        for pr in f.net.projections:
            if pr.stdp is None:
                continue
            off = f.lif_offset[pr.post]
            size = f.net.populations[pr.post].size
            here = np.flatnonzero(a.core[off : off + size] == k)
            numbers = f.net.populations[pr.post].lfsr_numbers()
            lfsr[a.slot[off + here]] = post_trace_seed(rule, numbers[here])
        on = a.slot[a.core == k]
        learn_neurons = int(on.max()) + 1 if on.size else 0
        regs = learning_registers(rule, t.plastic_axons, learn_neurons)
        reg_words = [0] * len(CoreReg)
        for r, v in regs.items():
            reg_words[r] = v
        return {
            CoreMem.POST_TRACES: pack_array(
                POST_TRACE, y=np.zeros_like(lfsr), lfsr=lfsr, spiked=np.zeros_like(lfsr)
            ).tolist(),
            CoreMem.PRE_TRACES: [],
            CoreMem.REGS: reg_words,
        }


def expected_rates(net: Network, steps: int) -> np.ndarray:
    """Return the expected spikes per step of every sender (LIF neurons, then sources).

    Poisson sources spike at their rate; explicit sources and LIF neurons are counted over
    ``steps`` steps of the golden model (every neuron recorded).
    """
    from spikefab.sim.golden import GoldenModel

    flat = flatten(net)
    rates = np.zeros(flat.n + flat.m)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps!r}")
    whole = replace(net, probes=[])
    res = GoldenModel(whole).run(steps)
    names = list(net.populations)
    for name, p in net.populations.items():
        if p.is_source and p.source is not None and p.source.kind == "poisson":
            off = flat.n + flat.src_offset[name]
            rates[off : off + p.size] = p.source.rate_hz * net.dt_ms / 1000.0
            continue
        sel = res.population == names.index(name)
        counts = np.bincount(res.neuron[sel], minlength=p.size) / steps
        off = flat.lif_offset[name] if name in flat.lif_offset else flat.n + flat.src_offset[name]
        rates[off : off + p.size] = counts
    return rates


def map_network(
    net: Network,
    hardware: Hardware | SystemConfig,
    method: str = "greedy",
    rates: np.ndarray | None = None,
    seed: int = 0,
    flat: FlatNetwork | None = None,
    log: Callable[[str], None] | None = None,
    spread: bool = False,
) -> Mapping:
    """Place a network and build all its tables.

    Parameters
    ----------
    net
        The network.
    hardware
        Its limits: a :class:`~spikefab.mapping.hardware.Hardware` or a system.
    method
        ``"greedy"``, ``"partition"`` or ``"random"`` (see :mod:`~spikefab.mapping.placement`).
    rates
        Expected spikes per step of each sender (see :func:`expected_rates`): the partitioner
        weights synapses by them and the report counts events with them. ``None``: synapse
        counts stand in for traffic.
    seed
        Seed of the random placement and of the partitioner.
    flat
        The network already flattened (:func:`~spikefab.mapping.placement.flatten`).
    log
        Called with a line at the end of each stage (for progress on large networks).
    spread
        Share the neurons over all the hardware's cores rather than fill as few as possible:
        shorter steps (a step lasts as long as its busiest core) on hardware whose cores are
        there anyway.

    Raises
    ------
    FitError
        When the network does not fit, naming every limit it exceeds.
    """
    hw = Hardware.of(hardware)
    t0 = time.perf_counter()
    flat = flat if flat is not None else flatten(net)
    if rates is not None and rates.shape != (flat.n + flat.m,):
        raise ValueError(
            f"rates must have one value per LIF neuron and source ({flat.n + flat.m}), "
            f"not shape {rates.shape}"
        )
    t_flat = time.perf_counter() - t0
    if log is not None:
        log(f"flattened {flat.n_synapses} synapses")
    a = assign(flat, hw, method, rates, seed, spread)
    if log is not None:
        log(f"{method} placement: {a.cores_used} cores")
    t1 = time.perf_counter()
    m = _build(flat, hw, a, rates)
    if log is not None:
        log(f"tables: {m.stats['route_entries']} route entries")
    m.stats["seconds"] = {
        "flatten": round(t_flat, 4),
        "placement": round(a.seconds, 4),
        "tables": round(time.perf_counter() - t1, 4),
    }
    return m


def place(
    net: Network,
    config: SystemConfig,
    method: str = "greedy",
    network_yaml: str = "",
    rates: np.ndarray | None = None,
    seed: int = 0,
) -> Image:
    """Map a network onto a system and return its image.

    Raises
    ------
    FitError
        When the network does not fit the system.
    """
    return map_network(net, config, method, rates, seed).image(config, network_yaml=network_yaml)


def _build(flat: FlatNetwork, hw: Hardware, a: Assignment, rates: np.ndarray | None) -> Mapping:
    c = hw.core
    S = flat.n + flat.m
    problems: list[str] = []
    # one sort key per synapse holds everything: core, sender, slot, weight, exponent, delay
    dbits = P.MAX_DELAY.bit_length()
    ebits = P.WEIGHT_EXP_BITS
    wbits = P.WEIGHT_BITS
    tbits = max(1, (c.neurons - 1).bit_length())
    ent_bits = tbits + wbits + ebits + dbits
    # plastic synapses get rows of their own, before the static rows of their core, never
    # shared (a row's weights and its pre-synaptic trace belong to its sender alone)
    proj_id = np.concatenate(
        [np.full(pr.n_synapses, i, dtype=np.int32) for i, pr in enumerate(flat.net.projections)]
        or [np.zeros(0, np.int32)]
    )
    plastic_proj = np.array([pr.stdp is not None for pr in flat.net.projections] + [False])
    plastic = plastic_proj[proj_id]
    learning = bool(plastic.any())
    RS = 2 * S if learning else S
    rbits = max(1, (hw.cores * RS - 1).bit_length())
    tcore = a.core[flat.post]
    ent = (
        (
            ((a.slot[flat.post] << wbits) | (flat.weight.astype(np.int64) - P.WEIGHT_MIN)) << ebits
            | flat.weight_exp.astype(np.int64)
        )
        << dbits
    ) | (flat.delay.astype(np.int64) - 1)
    row = tcore * RS + flat.pre
    if learning:
        row += np.where(plastic, 0, S)
    order = None
    if learning:
        order = np.lexsort((ent, row))
        row_s, ent_s = row[order], ent[order]
    elif rbits + ent_bits <= 63:
        key = np.sort((row << ent_bits) | ent)
        row_s = key >> ent_bits
        ent_s = key & ((1 << ent_bits) - 1)
        del key
    else:
        order = np.lexsort((ent, row))
        row_s, ent_s = row[order], ent[order]
    del row, ent, tcore
    E = row_s.size
    new = np.ones(E, dtype=bool)
    new[1:] = row_s[1:] != row_s[:-1]
    r_start = np.flatnonzero(new)
    r_len = np.diff(np.append(r_start, E))
    r_core = row_s[r_start] // RS
    r_sender = row_s[r_start] % S
    r_plastic = (row_s[r_start] % RS) < S if learning else np.zeros(r_start.size, dtype=bool)
    del row_s, new
    scope = np.where(r_plastic, -1 - np.arange(r_start.size), r_core)
    rep = _share(scope, r_start, r_len, ent_s)
    is_rep = rep == np.arange(rep.size)
    # axons: the shared rows of a core, in order; their entries laid out one after another
    rep_idx = np.flatnonzero(is_rep)
    rep_core = r_core[rep_idx]
    core_first = np.searchsorted(rep_core, np.arange(hw.cores + 1))
    axon_of_rep = np.arange(rep_idx.size) - core_first[rep_core]
    axon_at = np.full(rep.size, -1, dtype=np.int64)
    axon_at[rep_idx] = axon_of_rep
    r_axon = axon_at[rep]
    rep_len = r_len[rep_idx]
    rep_cum = np.zeros(rep_idx.size + 1, dtype=np.int64)
    np.cumsum(rep_len, out=rep_cum[1:])
    ent_rep = ent_s[expand_ranges(r_start[rep_idx], rep_len)]
    cores: list[CoreTables] = []
    neurons_on = np.bincount(a.core, minlength=hw.cores)
    rows_on = np.bincount(r_core, minlength=hw.cores)
    row_ent_on = np.bincount(r_core, weights=r_len, minlength=hw.cores).astype(np.int64)
    plastic_axons_on = np.bincount(r_core[r_plastic], minlength=hw.cores)
    rules = _core_rules(flat, a, tcore_of=a.core[flat.post], plastic=plastic, proj_id=proj_id)
    for k in range(hw.cores):
        lo, hi = core_first[k], core_first[k + 1]
        e_lo, e_hi = rep_cum[lo], rep_cum[hi]
        x = ent_rep[e_lo:e_hi]
        t = CoreTables(
            axon_start=rep_cum[lo:hi] - e_lo,
            axon_count=rep_len[lo:hi],
            target=x >> (wbits + ebits + dbits),
            weight=((x >> (ebits + dbits)) & _mask(wbits)) + P.WEIGHT_MIN,
            weight_exp=(x >> dbits) & _mask(ebits),
            delay=(x & _mask(dbits)) + 1,
            neurons=int(neurons_on[k]),
            rows=int(rows_on[k]),
            row_entries=int(row_ent_on[k]),
            plastic_axons=int(plastic_axons_on[k]),
            rule=rules.get(k),
        )
        if k in rules and not c.learning:
            why = (
                "the cores keep their synapses in SDRAM, which cannot learn"
                if c.synapse_memory == "sdram"
                else "the cores have none"
            )
            problems.append(
                f"core {k}: plastic synapses need a learning unit; {why} "
                "(use cores with learning: --learning, or a board whose cores learn)"
            )
        if isinstance(rules.get(k), str):
            problems.append(f"core {k}: {rules[k]}")
            t.rule = None
        if t.axons > c.axons:
            problems.append(
                f"core {k}: {t.axons} axons; a core has {c.axons} ({t.axons - c.axons} too many)"
            )
        if t.entries > c.synapses:
            problems.append(
                f"core {k}: {t.entries} synapse entries; a core holds {c.synapses} "
                f"({t.entries - c.synapses} too many)"
            )
        if t.neurons > c.neurons or (
            a.slot[a.core == k].size and int(a.slot[a.core == k].max()) >= c.neurons
        ):
            problems.append(f"core {k}: {t.neurons} neurons; a core holds {c.neurons}")
        cores.append(t)
    if problems:
        raise fit_error(flat.net, problems)

    plastic_entry = None
    if learning:
        # the entry of every plastic synapse: its place in its (unshared) row, from its axon's
        # start on the core
        assert order is not None
        pos = np.empty(E, dtype=np.int64)
        pos[order] = np.arange(E)
        syn = np.flatnonzero(plastic)
        p = pos[syn]
        rr = np.searchsorted(r_start, p, side="right") - 1
        ri = np.searchsorted(rep_idx, rr)
        core_k = r_core[rr]
        plastic_entry = np.full(E, -1, dtype=np.int64)
        plastic_entry[syn] = rep_cum[ri] - rep_cum[core_first[core_k]] + (p - r_start[rr])

    # routes: per sender, (core, axon) for every core it reaches, then the host
    recorded = recorded_neurons(flat.net)
    host_senders = np.flatnonzero(
        np.concatenate([recorded[name] for name in flat.lif_offset] or [np.zeros(0, bool)])
    )
    HOST = hw.cores
    el_sender = np.concatenate([r_sender, host_senders])
    el_dest = np.concatenate([r_core, np.full(host_senders.size, HOST)])
    el_axon = np.concatenate([r_axon, np.zeros(host_senders.size, np.int64)])
    abits = max(1, int(max(c.axons, 1) - 1).bit_length())
    el_val = (el_dest << abits) | el_axon
    order = np.lexsort((el_val, el_sender))
    el_sender, el_val = el_sender[order], el_val[order]
    route_count = np.bincount(el_sender, minlength=S)
    s_start = np.zeros(S, dtype=np.int64)
    np.cumsum(route_count[:-1], out=s_start[1:])
    has = np.flatnonzero(route_count)
    rrep = _share(np.zeros(has.size, np.int64), s_start[has], route_count[has], el_val)
    is_rrep = rrep == np.arange(has.size)
    rrep_idx = np.flatnonzero(is_rrep)
    rrep_len = route_count[has][rrep_idx]
    rcum = np.zeros(rrep_idx.size + 1, dtype=np.int64)
    np.cumsum(rrep_len, out=rcum[1:])
    start_of_rep = np.full(has.size, -1, dtype=np.int64)
    start_of_rep[rrep_idx] = rcum[:-1]
    route_start = np.zeros(S, dtype=np.int64)
    route_start[has] = start_of_rep[rrep]
    table = el_val[expand_ranges(s_start[has][rrep_idx], rrep_len)]
    route_dest = table >> abits
    route_axon = table & _mask(abits)
    route_dest = np.where(route_dest == HOST, -1, route_dest)
    if table.size > hw.route_entries:
        per_core = np.bincount(a.core[el_sender[el_sender < flat.n]], minlength=hw.cores)
        worst = int(np.argmax(per_core)) if per_core.size else 0
        raise fit_error(
            flat.net,
            [
                f"needs {table.size} route entries "
                f"(after sharing); the router holds {hw.route_entries} "
                f"({table.size - hw.route_entries} too many; the senders on core {worst} use "
                f"{int(per_core[worst]) if per_core.size else 0}); use a router with at least "
                f"{1 << (table.size - 1).bit_length()} entries, or a placement with less "
                "inter-core traffic"
            ],
        )

    # traffic between cores (the last row: host sources; the last column: the host)
    sender_core = np.concatenate([a.core, np.full(flat.m, HOST)])
    w_row = np.ones(r_sender.size) if rates is None else rates[r_sender]
    traffic = np.zeros((hw.cores + 1, hw.cores + 1))
    np.add.at(traffic, (sender_core[r_sender], r_core), w_row)
    w_host = np.ones(host_senders.size) if rates is None else rates[host_senders]
    np.add.at(traffic, (sender_core[host_senders], HOST), w_host)
    lif_row = r_sender < flat.n
    remote = lif_row & (sender_core[r_sender] != r_core)
    counts = {
        "inter_core_routes": int(remote.sum()),
        "local_routes": int((lif_row & ~remote).sum()),
        "source_routes": int((~lif_row).sum()),
        "host_routes": int(host_senders.size),
    }
    stats: dict = {
        "method": a.method,
        "cores_used": int(np.count_nonzero(neurons_on)),
        "neurons": flat.n,
        "sources": flat.m,
        "synapses": flat.n_synapses,
        "route_entries": int(table.size),
        "route_elements": int(el_sender.size),
        "neurons_per_core": [int(x) for x in neurons_on],
        "axons": [t.axons for t in cores],
        "entries": [t.entries for t in cores],
        "rows": int(r_start.size),
        "closed_by": {str(k): v for k, v in a.closed_by.items()},
        **counts,
        "rates": rates is not None,
        "plastic": [pr.name for pr in flat.net.projections if pr.stdp is not None],
        "notes": list(a.notes),
    }
    if rates is not None:
        stats["inter_core_events"] = float(rates[r_sender[remote]].sum())
        stats["local_events"] = float(rates[r_sender[lif_row & ~remote]].sum())
        stats["source_events"] = float(rates[r_sender[~lif_row]].sum())
        stats["host_events"] = float(rates[host_senders].sum())
    return Mapping(
        flat,
        hw,
        a,
        cores,
        route_start,
        route_count,
        route_dest,
        route_axon,
        rates,
        traffic,
        stats,
        plastic_entry,
    )


def _core_rules(
    flat: FlatNetwork,
    a: Assignment,
    tcore_of: np.ndarray,
    plastic: np.ndarray,
    proj_id: np.ndarray,
) -> dict:
    """The learning rule of every core that holds plastic synapses (a core has one).

    A core whose plastic projections differ in their rules maps to a message saying which.
    """
    out: dict = {}
    if not plastic.any():
        return out
    projs = flat.net.projections
    pairs = np.unique(np.stack([tcore_of[plastic], proj_id[plastic]]), axis=1)
    keys = ("a_plus", "a_minus", "d_pre", "d_post", "bump_pre", "bump_post", "shift")
    keys += ("w_min", "w_max", "stochastic_rounding", "seed")
    first: dict[int, int] = {}
    for k, i in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        rule = projs[i].stdp
        if k not in first:
            first[k] = i
            out[k] = rule
            continue
        f0 = projs[first[k]]
        diff = [x for x in keys if getattr(rule, x) != getattr(f0.stdp, x)]
        if diff and not isinstance(out[k], str):
            out[k] = (
                f"plastic projections {f0.name!r} and {projs[i].name!r} have targets here and "
                f"rules that differ in {', '.join(diff)}; a core has one learning rule: give "
                "them the same rule or place their targets on different cores"
            )
    return out


def format_report(m: Mapping) -> str:
    """Return the mapping's report: usage of every limit on every core, traffic, time."""
    hw, c, s = m.hardware, m.hardware.core, m.stats
    f = m.flat
    lines = [
        f"{f.net.name}: {f.n} neurons, {f.m} sources, {f.n_synapses} synapses -> "
        f"{s['cores_used']} of {hw.cores} cores ({s['method']} placement)",
        f"hardware: {hw.describe()}",
        "",
        f"{'core':>5s} {'neurons':>16s} {'axons':>19s} {'synapse entries':>21s} "
        f"{'routes out':>11s}  closed on",
    ]

    def pct(x: int, lim: int) -> str:
        return f"{x}/{lim} {100 * x / lim:3.0f}%"

    per_core_routes = np.bincount(
        m.assignment.core, weights=m.route_count[: f.n], minlength=hw.cores
    ).astype(np.int64)
    for k, t in enumerate(m.cores):
        if not t.neurons and not t.axons:
            continue
        lines.append(
            f"{k:5d} {pct(t.neurons, c.neurons):>16s} {pct(t.axons, c.axons):>19s} "
            f"{pct(t.entries, c.synapses):>21s} {int(per_core_routes[k]):11d}  "
            f"{s['closed_by'].get(str(k), '')}"
        )
    idle = hw.cores - sum(1 for t in m.cores if t.neurons or t.axons)
    if idle:
        lines.append(f"({idle} core(s) unused)")
    shared_rows = s["rows"] - sum(t.axons for t in m.cores)
    shared_entries = sum(t.row_entries - t.entries for t in m.cores)
    lines += [
        "",
        f"router: {pct(s['route_entries'], hw.route_entries)} entries "
        f"({s['route_elements'] - s['route_entries']} shared between senders with the same "
        f"route); source ids {pct(f.m, hw.sources)}; delays up to {f.net.max_delay} of "
        f"{c.delay_slots} slots",
        f"sharing: {s['rows']} sender rows on cores -> {s['rows'] - shared_rows} axons; "
        f"{sum(t.row_entries for t in m.cores)} synapses -> "
        f"{sum(t.entries for t in m.cores)} entries ({shared_entries} shared)",
    ]
    if s["rates"]:
        lines += [
            "expected events per step (from firing rates):",
            f"  inter-core {s['inter_core_events']:12.1f}   (core -> another core)",
            f"  local      {s['local_events']:12.1f}   (core -> itself)",
            f"  host->core {s['source_events']:12.1f}   (source spikes)",
            f"  core->host {s['host_events']:12.1f}   (recorded spikes)",
        ]
    else:
        lines += [
            "routes per spike, summed over senders (firing rates unknown: each sender counts "
            "one spike per step):",
            f"  inter-core {s['inter_core_routes']:12d}   (core -> another core)",
            f"  local      {s['local_routes']:12d}   (core -> itself)",
            f"  host->core {s['source_routes']:12d}   (source spikes)",
            f"  core->host {s['host_routes']:12d}   (recorded spikes)",
        ]
    for note in s["notes"]:
        lines.append(f"note: {note}")
    if s["plastic"]:
        lines.append(
            f"note: projection(s) {', '.join(s['plastic'])} are plastic: their synapses have "
            "rows of their own on cores with the learning unit (contract 6.4)"
        )
    sec = s.get("seconds", {})
    if sec:
        total = sum(sec.values())
        lines.append(
            "time: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in sec.items())
            + f"; mapping {total:.2f} s"
        )
    return "\n".join(lines)
