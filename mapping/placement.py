"""Where every LIF neuron lives: core and neuron slot (``docs/mapping.md``).

The network is first flattened (:func:`flatten`): LIF neurons are numbered ``0 .. n-1``
(populations in order), spike-source neurons ``0 .. m-1``, and every synapse becomes one
row of flat arrays whose sender is a LIF neuron ``i`` or the source ``n + j``.

Three placements, each returning an :class:`Assignment`, keep every core within its limits
on neurons, synapse entries and axons, counting one entry per synapse and one axon per sender
on the core (the tables built afterwards share rows, so they use at most that):

- :func:`assign_greedy`: neurons in network order fill a core until the next one would
  exceed one of its limits, then the next core. Linear time; good when the network's order
  follows its connectivity.
- :func:`assign_partitioned`: a multilevel graph partitioner (METIS, through ``pymetis``)
  cuts the synapse graph, weighted by firing rates where known and synapse counts otherwise,
  into balanced parts; each part fills cores as above.
- :func:`assign_random`: a random valid placement (random order, random cores among those
  available, random neuron slots), for tests that placement does not change behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from spikefab.mapping.core_image import FitError
from spikefab.mapping.hardware import Hardware
from spikefab.mapping.network import Network

__all__ = [
    "METHODS",
    "Assignment",
    "FlatNetwork",
    "assign",
    "assign_greedy",
    "assign_partitioned",
    "assign_random",
    "check_network",
    "fit_error",
    "flatten",
]

#: The placement methods, by the names the command line takes.
METHODS = ("greedy", "partition", "random")


@dataclass
class FlatNetwork:
    """A network as flat arrays.

    Attributes
    ----------
    net
        The network.
    n, m
        LIF neurons and spike-source neurons.
    lif_offset, src_offset
        First flat index of each LIF population (among LIF neurons) and of each spike
        source (among sources).
    pre
        Sender of each synapse: a LIF neuron ``i`` or the source ``n + j``.
    post
        Receiving LIF neuron of each synapse.
    weight, weight_exp, delay
        Mantissa, exponent and delay (steps) of each synapse.
    """

    net: Network
    n: int
    m: int
    lif_offset: dict[str, int]
    src_offset: dict[str, int]
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    weight_exp: np.ndarray
    delay: np.ndarray
    _in_ptr: np.ndarray | None = field(default=None, repr=False)
    _in_pre: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_synapses(self) -> int:
        return int(self.pre.size)

    def population_of(self, i: int) -> tuple[str, int]:
        """Return the population and index of LIF neuron ``i``."""
        name = max((k for k, off in self.lif_offset.items() if off <= i), key=self.lif_offset.get)
        return name, i - self.lif_offset[name]

    def fan_in(self) -> np.ndarray:
        """Synapses received by each LIF neuron."""
        return np.diff(self.in_csr()[0])

    def in_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Incoming synapses grouped by receiver: ``(ptr, sender)``.

        The senders of neuron ``i`` are ``sender[ptr[i] : ptr[i + 1]]``, sorted.
        """
        if self._in_ptr is None:
            order = np.lexsort((self.pre, self.post))
            self._in_pre = self.pre[order]
            self._in_ptr = np.searchsorted(self.post[order], np.arange(self.n + 1))
        assert self._in_pre is not None
        return self._in_ptr, self._in_pre


def flatten(net: Network) -> FlatNetwork:
    """Number the network's neurons and list its synapses as flat arrays."""
    lif_offset: dict[str, int] = {}
    src_offset: dict[str, int] = {}
    n = m = 0
    for p in net.populations.values():
        if p.is_source:
            src_offset[p.name] = m
            m += p.size
        else:
            lif_offset[p.name] = n
            n += p.size
    pre, post, w, e, d = [], [], [], [], []
    for pr in net.projections:
        if pr.pre in lif_offset:
            pre.append(pr.pre_idx + lif_offset[pr.pre])
        else:
            pre.append(pr.pre_idx + (n + src_offset[pr.pre]))
        post.append(pr.post_idx + lif_offset[pr.post])
        w.append(pr.weight.astype(np.int16))
        e.append(np.full(pr.n_synapses, pr.weight_exp, dtype=np.int8))
        d.append(pr.delay.astype(np.int8))

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    return FlatNetwork(
        net=net,
        n=n,
        m=m,
        lif_offset=lif_offset,
        src_offset=src_offset,
        pre=cat(pre, np.int64),
        post=cat(post, np.int64),
        weight=cat(w, np.int16),
        weight_exp=cat(e, np.int8),
        delay=cat(d, np.int8),
    )


def check_network(flat: FlatNetwork, hw: Hardware) -> list[str]:
    """Return what keeps the network off this hardware whatever the placement.

    Each item names the limit, the population (or projection) and neuron concerned, the
    amount over, and what would make it fit.
    """
    net, c = flat.net, hw.core
    problems: list[str] = []
    if net.max_delay > c.delay_slots:
        worst = max(
            (pr for pr in net.projections if pr.n_synapses), key=lambda pr: int(pr.delay.max())
        )
        problems.append(
            f"projection {worst.name!r} has delays up to {net.max_delay} steps; a core has "
            f"{c.delay_slots} delay slots; shorten the delays or use cores with at least "
            f"{1 << (net.max_delay - 1).bit_length()} delay slots"
        )
    if flat.m > hw.sources:
        problems.append(
            f"needs {flat.m} source neurons; the router has {hw.sources} source ids "
            f"({flat.m - hw.sources} too many); use a router with more source ids"
        )
    if flat.n > hw.cores * c.neurons:
        need = -(-flat.n // c.neurons)
        problems.append(
            f"needs {flat.n} neurons; {hw.cores} cores of {c.neurons} hold {hw.cores * c.neurons} "
            f"({flat.n - hw.cores * c.neurons} too many); use at least {need} cores or cores "
            "with more neurons"
        )
    fan_in = flat.fan_in()
    over = np.flatnonzero(fan_in > c.synapses)
    if over.size:
        i = int(over[np.argmax(fan_in[over])])
        name, k = flat.population_of(i)
        problems.append(
            f"population {name!r} needs {int(fan_in[i])} synapse entries on one core for its "
            f"neuron {k} alone ({over.size} neuron(s) over); a core holds {c.synapses} "
            f"({int(fan_in[i]) - c.synapses} too many); lower the fan-in or use cores with at "
            f"least {1 << (int(fan_in[i]) - 1).bit_length()} synapse entries"
        )
    ptr, senders = flat.in_csr()
    new_sender = np.ones(senders.size, dtype=np.int64)
    new_sender[1:] = senders[1:] != senders[:-1]
    new_sender[ptr[:-1][np.diff(ptr) > 0]] = 1
    cum = np.zeros(senders.size + 1, dtype=np.int64)
    np.cumsum(new_sender, out=cum[1:])
    distinct = cum[ptr[1:]] - cum[ptr[:-1]]
    over = np.flatnonzero(distinct > c.axons)
    if over.size:
        i = int(over[np.argmax(distinct[over])])
        name, k = flat.population_of(i)
        problems.append(
            f"population {name!r} needs {int(distinct[i])} axons on one core for its "
            f"neuron {k} alone (one per sender; {over.size} neuron(s) over); a core has "
            f"{c.axons} ({int(distinct[i]) - c.axons} too many); lower the fan-in or use "
            f"cores with at least {1 << (int(distinct[i]) - 1).bit_length()} axons"
        )
    # contract 3.3: no accumulator may overflow, whatever spikes arrive at once
    worst = np.bincount(
        flat.post,
        weights=np.abs(flat.weight.astype(np.int64)) << flat.weight_exp.astype(np.int64),
        minlength=flat.n,
    )
    if worst.size and worst.max() > c.acc_limit:
        i = int(np.argmax(worst))
        name, k = flat.population_of(i)
        problems.append(
            f"neuron {k} of {name!r} can receive a sum of {int(worst[i])} in one step; the "
            f"{c.acc_bits}-bit accumulator holds {c.acc_limit} (use acc_bits >= "
            f"{int(worst[i]).bit_length() + 1})"
        )
    return problems


@dataclass
class Assignment:
    """A placement of every LIF neuron (in flat order).

    Attributes
    ----------
    method
        How it was made.
    core, slot
        Core and neuron slot of each LIF neuron.
    closed_by
        For each core used, the limit that made the placement move on to the next core:
        ``"neurons"``, ``"synapse entries"``, ``"axons"``, ``"part"`` (the end of a
        partition's part) or ``"end"``.
    notes
        Remarks on how the placement went (a partition retried, ...).
    """

    method: str
    core: np.ndarray
    slot: np.ndarray
    closed_by: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cores_used(self) -> int:
        return int(np.unique(self.core).size)


def _first_fit(
    flat: FlatNetwork, hw: Hardware, order: np.ndarray, breaks: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """Fill cores with the neurons ``order[0], order[1], ...``; start a new core at each
    position in ``breaks`` and wherever a limit would be exceeded.

    Returns the core of every position (``-1`` where the cores ran out) and, per core, the
    limit that closed it.
    """
    c = hw.core
    n = order.size
    ptr, senders = flat.in_csr()
    fan = np.diff(ptr)[order]
    pos_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(fan, out=pos_ptr[1:])
    from spikefab.hdl.layouts import expand_ranges

    es = senders[expand_ranges(ptr[:-1][order], fan)]
    brk = np.zeros(0, np.int64) if breaks is None else np.asarray(breaks, dtype=np.int64)
    core_at = np.full(n, -1, dtype=np.int64)
    closed: list[str] = []
    a = 0
    while a < n and len(closed) < hw.cores:
        nb = np.searchsorted(brk, a, side="right")
        b_part = int(brk[nb]) if nb < brk.size else n
        b_neu = min(a + c.neurons, b_part)
        e0 = int(pos_ptr[a])
        b_ent = int(np.searchsorted(pos_ptr, e0 + c.synapses, side="right")) - 1
        b = min(b_neu, b_ent)
        why = "neurons" if b_neu < b_part else ("part" if b_part < n else "end")
        if b_ent < b_neu:
            why = "synapse entries"
        if b > a:
            seg = es[e0 : int(pos_ptr[b])]
            first = np.zeros(seg.size, dtype=np.int64)
            first[np.unique(seg, return_index=True)[1]] = 1
            cum = np.zeros(seg.size + 1, dtype=np.int64)
            np.cumsum(first, out=cum[1:])
            # distinct senders of the neurons at positions a .. p, for every p
            distinct = cum[pos_ptr[a + 1 : b + 1] - e0]
            k = int(np.searchsorted(distinct, c.axons, side="right"))
            if a + k < b:
                b, why = a + k, "axons"
        if b == a:
            # one neuron alone exceeds a core: check_network reports it
            break
        core_at[a:b] = len(closed)
        closed.append(why)
        a = b
    return core_at, closed


def _overflow(flat: FlatNetwork, hw: Hardware, method: str, core_at: np.ndarray, closed) -> str:  # type: ignore[no-untyped-def]
    """Describe a placement that ran out of cores."""
    c = hw.core
    left = int((core_at < 0).sum())
    by: dict[str, int] = {}
    for why in closed:
        by[why] = by.get(why, 0) + 1
    main = max(by, key=by.get) if by else "neurons"
    fix = {
        "neurons": "cores with more neurons",
        "synapse entries": "cores with more synapse entries",
        "axons": "cores with more axons",
    }.get(main, "cores with more room")
    fan_total = flat.n_synapses
    return (
        f"the {method} placement fills all {hw.cores} cores with {left} of {flat.n} neurons "
        f"left over; cores closed on: "
        + ", ".join(f"{why} ({k})" for why, k in sorted(by.items(), key=lambda x: -x[1]))
        + f" ({flat.n} neurons and {fan_total} synapse entries to place; a core holds "
        f"{c.neurons} neurons, {c.synapses} entries and {c.axons} axons); use more cores or "
        f"{fix}"
    )


def _finish(
    flat: FlatNetwork,
    hw: Hardware,
    method: str,
    order: np.ndarray,
    core_at: np.ndarray,
    closed: list[str],
) -> Assignment:
    if (core_at < 0).any():
        raise fit_error(flat.net, [_overflow(flat, hw, method, core_at, closed)])
    core = np.empty(flat.n, dtype=np.int64)
    core[order] = core_at
    # slots in order of position within each core
    starts = np.searchsorted(core_at, np.arange(len(closed)))
    slot = np.empty(flat.n, dtype=np.int64)
    slot[order] = np.arange(flat.n) - starts[core_at]
    return Assignment(method, core, slot, dict(enumerate(closed)))


def fit_error(net: Network, problems: list[str]) -> FitError:
    """Return the error that lists why a network does not fit."""
    if len(problems) == 1:
        return FitError(f"network {net.name!r} does not fit: {problems[0]}")
    return FitError(
        f"network {net.name!r} does not fit:\n" + "\n".join(f"  - {p}" for p in problems)
    )


def _checked(flat: FlatNetwork, hw: Hardware) -> None:
    problems = check_network(flat, hw)
    if problems:
        raise fit_error(flat.net, problems)


def _even_breaks(n: int, k: int) -> np.ndarray:
    """Positions that cut ``n`` neurons into ``k`` runs of sizes differing by one at most."""
    cuts = (np.arange(1, max(k, 1), dtype=np.int64) * n) // max(k, 1)
    return np.unique(cuts[(cuts > 0) & (cuts < n)])


def assign_greedy(flat: FlatNetwork, hw: Hardware, spread: bool = False) -> Assignment:
    """Place neurons in network order, each core filled until one of its limits is reached.

    With ``spread``, the neurons are shared evenly over all the cores instead (a core still
    closes early on a limit): a step lasts as long as its busiest core, so this is the
    fastest placement when the cores are there anyway. If the limits leave the even shares
    short of cores, the cores are filled.

    Raises
    ------
    FitError
        When the network does not fit (see :func:`check_network`) or the cores run out.
    """
    _checked(flat, hw)
    order = np.arange(flat.n, dtype=np.int64)
    breaks = _even_breaks(flat.n, hw.cores) if spread else None
    core_at, closed = _first_fit(flat, hw, order, breaks)
    if spread and (core_at < 0).any():
        core_at, closed = _first_fit(flat, hw, order)
    return _finish(flat, hw, "greedy", order, core_at, closed)


def assign_random(flat: FlatNetwork, hw: Hardware, seed: int = 0) -> Assignment:
    """Place neurons at random: random order, random cores, random neuron slots.

    Every limit is kept, as by the other placements.

    Raises
    ------
    FitError
        When the network does not fit (see :func:`check_network`) or the cores run out.
    """
    _checked(flat, hw)
    rng = np.random.default_rng(seed)
    order = rng.permutation(flat.n).astype(np.int64)
    # cap each core at a random share of its neurons while the cores allow, so that
    # placements differ in how full cores are, not only in order
    need = -(-flat.n // hw.core.neurons)
    breaks = None
    if need < hw.cores and flat.n:
        k = int(rng.integers(need, hw.cores + 1))
        cuts = np.sort(rng.choice(np.arange(1, flat.n), size=min(k - 1, flat.n - 1), replace=False))
        breaks = cuts
    core_at, closed = _first_fit(flat, hw, order, breaks)
    if (core_at < 0).any():
        core_at, closed = _first_fit(flat, hw, order)
    a = _finish(flat, hw, "random", order, core_at, closed)
    used = len(closed)
    relabel = rng.choice(hw.cores, size=used, replace=False)
    a.core = relabel[a.core]
    a.closed_by = {int(relabel[k]): why for k, why in a.closed_by.items()}
    for k in range(used):
        sel = np.flatnonzero(a.core == relabel[k])
        a.slot[sel] = rng.choice(hw.core.neurons, size=sel.size, replace=False)
    return a


def _graph(
    flat: FlatNetwork, rates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The undirected synapse graph over LIF neurons and sources, as CSR with edge weights.

    An edge's weight is the spikes per step that cross it if its ends sit on different
    cores: the sender's rate times its synapses, both ways added; without rates, the
    synapse count.
    """
    V = flat.n + flat.m
    keep = flat.pre != flat.post
    a, b = flat.pre[keep], flat.post[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key, inv = np.unique(lo * V + hi, return_inverse=True)
    if rates is None:
        w = np.bincount(inv, minlength=key.size).astype(np.float64)
    else:
        w = np.bincount(inv, weights=rates[a], minlength=key.size)
    # integer weights >= 1 for METIS, scaled so that the largest is about 10^4
    scale = 1.0 if rates is None else 1e4 / max(float(w.max(initial=0.0)), 1e-12)
    wi = np.maximum(1, np.rint(w * scale)).astype(np.int64)
    u, v = key // V, key % V
    src = np.concatenate([u, v])
    dst = np.concatenate([v, u])
    ww = np.concatenate([wi, wi])
    order = np.argsort(src, kind="stable")
    xadj = np.searchsorted(src[order], np.arange(V + 1)).astype(np.int64)
    return xadj, dst[order].astype(np.int64), ww[order]


def assign_partitioned(
    flat: FlatNetwork,
    hw: Hardware,
    rates: np.ndarray | None = None,
    seed: int = 0,
    spread: bool = False,
) -> Assignment:
    """Place neurons by partitioning the synapse graph with METIS.

    The graph's vertices are the LIF neurons, each weighing the larger share of a core it
    takes (in neurons or in synapse entries), and the spike sources (weight zero, so that
    they pull their targets together but take no room). The number of parts starts at the
    fewest cores that could hold the weight; a part that still exceeds a limit (METIS
    balances parts only about as tightly as asked, and does not count axons) fills two cores,
    and only if that leaves too few cores is the partition made again with more parts.

    Parameters
    ----------
    rates
        Expected spikes per step of every sender (LIF neurons, then sources), or ``None``
        to weight by synapse counts.
    spread
        Cut into as many parts as there are cores (at most one per neuron), so that the
        work is shared over all of them (see :func:`assign_greedy`).

    Raises
    ------
    FitError
        When the network does not fit, or the parts do not fit the cores.
    RuntimeError
        When ``pymetis`` is not installed.
    """
    try:
        import pymetis
    except ImportError:
        raise RuntimeError(
            "the partition placement needs pymetis: pip install 'spikefab[map]' "
            "(or use the greedy placement)"
        ) from None
    _checked(flat, hw)
    c = hw.core
    if flat.n == 0:
        return Assignment("partition", np.zeros(0, np.int64), np.zeros(0, np.int64))
    xadj, adjncy, ew = _graph(flat, rates)
    fan = flat.fan_in()
    # a neuron weighs the larger share of a core it takes, in neurons or in entries (in units
    # of 1 / (N * S)): a part of weight N * S at most fits one core in both
    vw = np.zeros(flat.n + flat.m, dtype=np.int64)
    vw[: flat.n] = np.maximum(c.synapses, fan * c.neurons)
    capacity = c.neurons * c.synapses
    notes: list[str] = []
    k = max(-(-int(vw.sum()) // capacity), 1)
    if spread:
        k = max(k, min(hw.cores, flat.n))
    best: tuple[np.ndarray, np.ndarray, list[str]] | None = None
    for _ in range(4):
        if k > hw.cores:
            break
        # the imbalance METIS may allow so that a part still fits one core, with a margin
        # because it treats the balance as a target, not a bound
        ufactor = max(1, min(int(800 * (capacity * k / int(vw.sum()) - 1)), 100))
        part = _metis(pymetis, k, xadj, adjncy, vw, ew, ufactor, seed)[: flat.n]
        order = np.lexsort((np.arange(flat.n), part))
        breaks = np.flatnonzero(np.diff(part[order])) + 1
        core_at, closed = _first_fit(flat, hw, order, breaks)
        if (core_at < 0).any():
            notes.append(f"{k} parts did not fit {hw.cores} cores")
            k += 1
            continue
        if len(closed) > k:
            notes.append(f"{len(closed) - k} of {k} parts exceeded a core and were split")
        best = (order, core_at, closed)
        break
    if best is None:
        order = np.arange(flat.n, dtype=np.int64)
        core_at, closed = _first_fit(flat, hw, order)
        raise fit_error(flat.net, [_overflow(flat, hw, "partition", core_at, closed)])
    a = _finish(flat, hw, "partition", *best)
    a.notes = notes
    return a


def _metis(  # type: ignore[no-untyped-def]
    pymetis,
    k: int,
    xadj: np.ndarray,
    adjncy: np.ndarray,
    vw: np.ndarray,
    ew: np.ndarray,
    ufactor: int,
    seed: int,
) -> np.ndarray:
    """Partition the graph into ``k`` parts; return the part of every vertex."""
    if k == 1:
        return np.zeros(xadj.size - 1, dtype=np.int64)
    _, parts = pymetis.part_graph(
        k,
        adjacency=pymetis.CSRAdjacency(xadj, adjncy),
        vweights=vw,
        eweights=ew,
        options=pymetis.Options(ufactor=ufactor, seed=seed),
    )
    return np.asarray(parts, dtype=np.int64)


def assign(
    flat: FlatNetwork,
    hw: Hardware,
    method: str = "greedy",
    rates: np.ndarray | None = None,
    seed: int = 0,
    spread: bool = False,
) -> Assignment:
    """Place the network's neurons with one of :data:`METHODS`; ``spread`` shares them over
    all the cores (greedy and partition; a random placement spreads at random).

    Raises
    ------
    ValueError
        For an unknown method.
    FitError
        When the network does not fit.
    """
    import time

    t0 = time.perf_counter()
    if method == "greedy":
        a = assign_greedy(flat, hw, spread)
    elif method == "partition":
        a = assign_partitioned(flat, hw, rates, seed, spread)
    elif method == "random":
        a = assign_random(flat, hw, seed)
    else:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    a.seconds = time.perf_counter() - t0
    return a
