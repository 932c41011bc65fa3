"""One network over several devices: the device partition and each device's part.

The first level of a multi-device mapping (``docs/contract.md`` section 11): every LIF neuron
goes to one device, and each device gets a network of its own, its *part*, that it runs as
any network (the second level places a part on the device's cores as usual).

A part holds

- its device's LIF neurons, in their populations (a population's neurons keep their
  numbers, :attr:`~spikefab.mapping.network.Population.numbers`, for the STDP LFSRs);
- the spike sources that reach them, whole (a source is drawn on the host, so every device
  that needs it draws the same spikes);
- one *proxy* spike source per population with neurons elsewhere that reach this device:
  the host injects into it, as a *late* source (contract 8.2) before step ``t + L``, the
  spikes those neurons fired at step ``t``;
- its synapses: those from a proxy carry the delay ``d - L + 1``.

A late source injected before step ``s`` is delivered with the spikes of step ``s - 1``: a
spike of step ``t`` on device A, with delay ``d`` onto device B, lands on B at
``t + L - 1 + (d - L + 1) = t + d``, as on one device. That needs ``d - L + 1 >= 1`` for
every synapse between devices, so ``L`` (the *lag*) is the smallest delay between devices,
and the devices run in rounds of ``L`` steps without waiting on each other: what a round
injects was fired in the round before. Every delay crosses devices, 1 included (rounds of
one step). Plastic synapses, whose learning needs both spikes on time, keep their two
neurons on one device.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from spikefab.mapping.network import Network, Population, Probe, Projection, SpikeSource
from spikefab.mapping.placement import FlatNetwork, flatten

__all__ = [
    "PROXY_SUFFIX",
    "DevicePlan",
    "Part",
    "groups",
    "partition_devices",
    "split_network",
]

#: A proxy population is named after the population it stands for, with this suffix (no
#: name in the network format may hold it).
PROXY_SUFFIX = "~remote"


@dataclass
class Part:
    """One device's share of a network.

    Attributes
    ----------
    device
        The device's index.
    network
        The part, a network of its own.
    lif
        For each LIF population with neurons here, their numbers in the whole population.
    proxies
        For each proxy population: the population it stands for and the numbers of the
        neurons its neurons repeat, in order.
    synapses
        For each projection with synapses here: which synapses of the whole projection the
        part's projection of that name holds, in its order (its remote half, from a proxy,
        is ``name + PROXY_SUFFIX``: the remaining synapses onto this device).
    sends
        For each LIF population: a mask of the neurons here whose spikes another device
        needs.
    """

    device: int
    network: Network
    lif: dict[str, np.ndarray]
    proxies: dict[str, tuple[str, np.ndarray]]
    synapses: dict[str, np.ndarray]
    sends: dict[str, np.ndarray]


@dataclass
class DevicePlan:
    """A network cut over devices (:func:`split_network`).

    Attributes
    ----------
    net
        The whole network.
    device_of
        The device of every LIF neuron, per population.
    lag
        ``L``: a spike crossing devices is injected ``L`` steps after it was fired, and the
        devices exchange spikes every ``L`` steps; the smallest delay of a synapse between
        devices (0 when none crosses: the devices never wait on each other).
    parts
        One :class:`Part` per device.
    traffic
        ``traffic[a, b]``: spikes per step that device ``a`` sends device ``b`` (neurons of
        ``a`` with a synapse onto ``b``, by their expected rates), when rates were given.
    """

    net: Network
    device_of: dict[str, np.ndarray]
    lag: int
    parts: list[Part]
    traffic: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def devices(self) -> int:
        return len(self.parts)

    def round_steps(self, steps: int) -> int:
        """The steps of one exchange round for a run of ``steps`` steps."""
        return self.lag if self.lag else max(steps, 1)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label the connected components of the graph on ``n`` vertices with edges ``a - b``:
    every vertex gets the smallest vertex of its component."""
    label = np.arange(n, dtype=np.int64)
    if a.size == 0:
        return label
    while True:
        m = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]  # pointer jumping
        while True:
            nxt = new[new]
            if np.array_equal(nxt, new):
                break
            new = nxt
        if np.array_equal(new, label):
            return label
        label = new


def _plastic_mask(flat: FlatNetwork) -> np.ndarray:
    """Which of the flat synapses belong to plastic projections."""
    return np.concatenate(
        [np.full(pr.n_synapses, pr.stdp is not None) for pr in flat.net.projections]
        or [np.zeros(0, bool)]
    )


def groups(net: Network) -> np.ndarray:
    """The group of every LIF neuron (flat order): neurons joined by a plastic synapse must
    share a device; a group is named by its smallest neuron."""
    flat = flatten(net)
    tie = (flat.pre < flat.n) & _plastic_mask(flat)
    return _components(flat.n, flat.pre[tie], flat.post[tie])


def partition_devices(
    net: Network,
    shares: list[float],
    rates: np.ndarray | None = None,
    seed: int = 0,
    capacity: list[int] | None = None,
) -> np.ndarray:
    """Cut the network's LIF neurons into ``len(shares)`` devices with METIS.

    The graph's vertices are the groups of :func:`groups` (weighing their neurons), its
    edges the synapses between groups, weighted by the spikes that would cross them
    (``rates``: expected spikes per step of every sender, LIF neurons then sources, as the
    mapper's), or by their count. ``shares`` are the fractions of the neurons each device
    should take (its capacity against the others'); ``capacity`` the most neurons each
    holds.

    Returns the device of every LIF neuron, in flat order.

    Raises
    ------
    RuntimeError
        When ``pymetis`` is not installed.
    ValueError
        When a group is larger than every device (naming it).
    """
    try:
        import pymetis
    except ImportError:
        raise RuntimeError(
            "cutting a network over devices needs pymetis: pip install 'spikefab[map]'"
        ) from None
    flat = flatten(net)
    k = len(shares)
    if k < 1:
        raise ValueError("a network needs at least one device")
    if k == 1 or flat.n == 0:
        return np.zeros(flat.n, dtype=np.int64)
    g = groups(net)
    roots, gid = np.unique(g, return_inverse=True)
    sizes = np.bincount(gid)
    tp = np.asarray(shares, dtype=np.float64) / float(np.sum(shares))
    biggest = int(sizes.argmax())
    if capacity is not None and sizes[biggest] > max(capacity):
        name, idx = flat.population_of(int(roots[biggest]))
        raise ValueError(
            f"{int(sizes[biggest])} neurons (with {name}[{idx}]) are joined by plastic "
            f"synapses, which keep their neurons on one device, and the largest device holds "
            f"{max(capacity)} neurons: make some of those projections static, or use a larger "
            "device"
        )
    lif = flat.pre < flat.n
    a, b = gid[flat.pre[lif]], gid[flat.post[lif]]
    cross = a != b
    a, b = a[cross], b[cross]
    w = (
        np.ones(a.size)
        if rates is None
        else np.asarray(rates, dtype=np.float64)[flat.pre[lif]][cross]
    )
    V = roots.size
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key, inv = np.unique(lo * V + hi, return_inverse=True)
    ew = np.bincount(inv, weights=w, minlength=key.size)
    scale = 1e4 / max(float(ew.max(initial=0.0)), 1e-12) if rates is not None else 1.0
    ewi = np.maximum(1, np.rint(ew * scale)).astype(np.int64)
    u, v = key // V, key % V
    src, dst, ww = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([ewi, ewi])
    order = np.argsort(src, kind="stable")
    xadj = np.searchsorted(src[order], np.arange(V + 1)).astype(np.int64)
    if k > V:
        part_of_group = np.arange(V, dtype=np.int64) % k
    else:
        _, parts = pymetis.part_graph(
            k,
            adjacency=pymetis.CSRAdjacency(xadj, dst[order].astype(np.int64)),
            vweights=sizes.astype(np.int64),
            eweights=ww[order],
            tpwgts=tp.tolist(),
            options=pymetis.Options(ufactor=30, seed=seed),
        )
        part_of_group = np.asarray(parts, dtype=np.int64)
    return part_of_group[gid]


def split_network(net: Network, device_of: np.ndarray, devices: int) -> DevicePlan:
    """Cut ``net`` into one part per device, ``device_of`` giving the device of every LIF
    neuron in flat order (:func:`partition_devices`, or any other).

    Raises
    ------
    ValueError
        When ``device_of`` does not give a device to every LIF neuron, or puts the two ends
        of a plastic synapse on different devices (naming it).
    """
    flat = flatten(net)
    dev = np.asarray(device_of, dtype=np.int64)
    if dev.shape != (flat.n,) or (flat.n and (dev.min() < 0 or dev.max() >= devices)):
        raise ValueError(
            f"a device partition gives each of the {flat.n} LIF neurons a device 0..{devices - 1}"
        )
    by_pop = {
        name: dev[off : off + net.populations[name].size] for name, off in flat.lif_offset.items()
    }
    # the lag: the smallest delay between devices
    lif = flat.pre < flat.n
    pre_dev = np.full(flat.n_synapses, -1, dtype=np.int64)
    pre_dev[lif] = dev[flat.pre[lif]]
    post_dev = dev[flat.post]
    crossing = lif & (pre_dev != post_dev)
    plastic = _plastic_mask(flat)
    bad = crossing & plastic
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        pr, k = _synapse(net, s)
        raise ValueError(
            f"projection {pr.name}: synapse {k} ({pr.pre}[{int(pr.pre_idx[k])}] -> "
            f"{pr.post}[{int(pr.post_idx[k])}]) is plastic and its ends are on devices "
            f"{int(pre_dev[s])} and {int(post_dev[s])}: such a synapse keeps its neurons "
            "on one device"
        )
    lag = int(flat.delay[crossing].min()) if crossing.any() else 0
    parts = [_part(net, by_pop, d, lag) for d in range(devices)]
    return DevicePlan(net=net, device_of=by_pop, lag=lag, parts=parts)


def _synapse(net: Network, s: int) -> tuple[Projection, int]:
    """The projection and index of flat synapse ``s``."""
    for pr in net.projections:
        if s < pr.n_synapses:
            return pr, s
        s -= pr.n_synapses
    raise IndexError(s)


def _part(net: Network, by_pop: dict[str, np.ndarray], d: int, lag: int) -> Part:
    """Device ``d``'s part of the network (see the module's description)."""
    here = {name: np.flatnonzero(devs == d) for name, devs in by_pop.items()}
    local = {name: np.full(devs.size, -1, dtype=np.int64) for name, devs in by_pop.items()}
    for name, idx in here.items():
        local[name][idx] = np.arange(idx.size)
    sends = {name: np.zeros(idx.size, dtype=bool) for name, idx in here.items()}
    # every synapse onto this device: which are local, from a source, or from elsewhere
    remote_pre: dict[str, list[np.ndarray]] = {}
    kept: list[tuple[Projection, np.ndarray]] = []
    for pr in net.projections:
        post_here = by_pop[pr.post][pr.post_idx] == d
        kept.append((pr, post_here))
        if pr.pre in by_pop:
            pre_here = by_pop[pr.pre][pr.pre_idx] == d
            remote_pre.setdefault(pr.pre, []).append(pr.pre_idx[post_here & ~pre_here])
            # neurons here with synapses onto other devices
            out = pre_here & ~post_here
            sends[pr.pre][local[pr.pre][pr.pre_idx[out]]] = True
    proxy_numbers = {
        name: np.unique(np.concatenate(v))
        for name, v in remote_pre.items()
        if sum(x.size for x in v)
    }
    proxy_index = {}
    for name, nums in proxy_numbers.items():
        table = np.full(net.populations[name].size, -1, dtype=np.int64)
        table[nums] = np.arange(nums.size)
        proxy_index[name] = table

    # populations: the LIF neurons here, the sources that reach them, the proxies
    needed_sources = {pr.pre for pr, post_here in kept if post_here.any()}
    pops: dict[str, Population] = {}
    for p in net.populations.values():
        if p.is_source:
            if p.name in needed_sources:
                pops[p.name] = replace(p, index=len(pops))
            continue
        idx = here[p.name]
        if not idx.size:
            continue
        pops[p.name] = replace(
            p,
            index=len(pops),
            size=int(idx.size),
            v0=None if p.v0 is None else np.asarray(p.v0)[idx],
            v0_real=None if p.v0_real is None else np.asarray(p.v0_real)[idx],
            numbers=p.lfsr_numbers()[idx],
        )
    proxies: dict[str, tuple[str, np.ndarray]] = {}
    for name, nums in proxy_numbers.items():
        pname = name + PROXY_SUFFIX
        empty = np.zeros(0, dtype=np.int64)
        pops[pname] = Population(
            name=pname,
            index=len(pops),
            size=int(nums.size),
            source=SpikeSource("explicit", steps=empty, neurons=empty),
            internal=True,
        )
        proxies[pname] = (name, nums)

    # projections: the local half keeps its name, the half from proxies is name~remote
    projections: list[Projection] = []
    synapses: dict[str, np.ndarray] = {}
    for pr, post_here in kept:
        if not post_here.any():
            continue
        if pr.pre in by_pop:
            pre_here = by_pop[pr.pre][pr.pre_idx] == d
        else:
            pre_here = np.ones(pr.n_synapses, dtype=bool)
        for sel, remote in ((post_here & pre_here, False), (post_here & ~pre_here, True)):
            if not sel.any():
                continue
            which = np.flatnonzero(sel)
            pre = pr.pre_idx[which]
            name, pre_pop = pr.name, pr.pre
            delay = pr.delay[which]
            if remote:
                name, pre_pop = pr.name + PROXY_SUFFIX, pr.pre + PROXY_SUFFIX
                pre = proxy_index[pr.pre][pre]
                delay = delay - lag + 1
            elif pr.pre in by_pop:
                pre = local[pr.pre][pre]
            projections.append(
                replace(
                    pr,
                    name=name,
                    pre=pre_pop,
                    post=pr.post,
                    pre_idx=pre,
                    post_idx=local[pr.post][pr.post_idx[which]],
                    weight=pr.weight[which],
                    delay=delay,
                    weight_real=None if pr.weight_real is None else pr.weight_real[which],
                )
            )
            synapses[name] = which

    # probes: the probed neurons here; neurons that send elsewhere are recorded too
    probes: list[Probe] = []
    spike_probed = any(pb.variable == "spikes" for pb in net.probes)
    for pb in net.probes:
        if pb.variable == "weights":
            if pb.target not in synapses:
                continue
            which = synapses[pb.target]
            chosen = (
                np.arange(net.projection(pb.target).n_synapses)
                if pb.neurons is None
                else pb.neurons
            )
            mine = np.flatnonzero(np.isin(which, chosen))
            if mine.size:
                probes.append(replace(pb, neurons=mine))
            continue
        if pb.target not in pops or pops[pb.target].is_source:
            if pb.target in pops:
                probes.append(pb)
            continue
        full = net.populations[pb.target].size
        chosen = np.arange(full) if pb.neurons is None else np.asarray(pb.neurons)
        mine = local[pb.target][chosen]
        mine = mine[mine >= 0]
        if mine.size:
            probes.append(replace(pb, neurons=np.sort(mine)))
    if spike_probed:
        for name, mask in sends.items():
            if mask.any():
                probes.append(Probe(name, "spikes", np.flatnonzero(mask)))
    part = Network(
        name=f"{net.name}@{d}",
        dt_ms=net.dt_ms,
        populations=pops,
        projections=projections,
        probes=probes,
        quantization=[],
    )
    return Part(
        device=d,
        network=part,
        lif={name: idx for name, idx in here.items() if idx.size},
        proxies=proxies,
        synapses=synapses,
        sends=sends,
    )
