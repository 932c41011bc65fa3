"""Run a network on a device: load its image, inject its sources, collect its spikes.

The same code drives every device with the request set of ``docs/contract.md`` section 8:
:class:`~spikefab.host.link.LinkDevice` (the Verilator simulation or a board) and the
in-process :class:`~spikefab.sim.system_model.SystemModel`. The result is the same
:class:`~spikefab.sim.results.RunResult` the golden model gives, in population terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from spikefab.hdl.layouts import (
    NEURON_STATE,
    CoreMem,
    SystemConfig,
    SystemMem,
    SystemReg,
    field_of,
)
from spikefab.hdl.protocol import Target
from spikefab.mapping.image import Image
from spikefab.mapping.network import Network
from spikefab.sim.results import ProbeTrace, RunResult

__all__ = ["Device", "check_device", "load", "read_weights", "run_network"]


class Device(Protocol):
    """What the runtime needs of a device."""

    def info(self): ...  # type: ignore[no-untyped-def]
    def write(self, target: int, mem: int, addr: int, words: list[int]) -> None: ...
    def read(self, target: int, mem: int, addr: int, count: int) -> list[int]: ...
    def inject(self, sources: list[int]) -> None: ...
    def run(
        self,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None = None,
    ) -> None: ...
    def status(self) -> dict[str, int]: ...


def check_device(device: Device, config: SystemConfig) -> None:
    """Check that the device is the system an image was made for.

    Raises
    ------
    ValueError
        Naming every size that differs.
    """
    from spikefab.hdl import params as P

    info = device.info()
    want = {
        "contract": P.CONTRACT_VERSION,
        "cores": config.cores,
        "neurons": config.core.neurons,
        "axons": config.core.axons,
        "synapses": config.core.synapses,
        "delay_slots": config.core.delay_slots,
        "acc_bits": config.core.acc_bits,
        "sources": config.sources,
        "route_entries": config.route_entries,
        "learning": config.core.learning,
    }
    diff = [
        f"{k} {getattr(info, k)} (image: {v})" for k, v in want.items() if getattr(info, k) != v
    ]
    if diff:
        raise ValueError("the device is not the system the image was made for: " + ", ".join(diff))


def load(device: Device, image: Image, progress: Callable[[int], None] | None = None) -> None:
    """Write every memory of the image (zeros where it has none) and reset the step."""
    cfg = image.config
    c = cfg.core
    mems = [CoreMem.PARAMS, CoreMem.STATE, CoreMem.AXONS, CoreMem.SYNAPSES, CoreMem.RING]
    mems += [CoreMem.PRE_TRACES, CoreMem.POST_TRACES]  # learning cores only (depth 0 else)
    for k, words in enumerate(image.core_words):
        for mem in mems:
            ws = list(words.get(mem, []))
            depth = c.depth_of(mem)
            if depth:
                device.write(k, mem.value, 0, ws + [0] * (depth - len(ws)))
            if progress is not None:
                progress(depth)
        # the registers last: NOW, the counters and (learning cores) the rule
        regs = list(words.get(CoreMem.REGS, []))
        device.write(k, CoreMem.REGS.value, 0, regs or [0])
    for mem, ws in (
        (SystemMem.ROUTE_POINTERS, image.route_pointers),
        (SystemMem.ROUTE_ENTRIES, image.route_entries),
    ):
        depth = cfg.depth_of(mem)
        device.write(Target.SYSTEM, mem.value, 0, list(ws) + [0] * (depth - len(ws)))
        if progress is not None:
            progress(depth)
    device.write(Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP, [0])


def read_weights(device: Device, image: Image) -> dict[str, np.ndarray]:
    """Run the pending learning phase on every core and read back every plastic weight.

    Returns the weight mantissas of each plastic projection, in the projection's synapse
    order (contract 6.4: the system's ``LEARN`` register, then the synapse entries).
    """
    if not image.plastic_entries:
        return {}
    device.write(Target.SYSTEM, SystemMem.REGS.value, SystemReg.LEARN, [1])
    layout = image.config.core.synapse_layout
    out = {}
    for name, (cores, entries) in image.plastic_entries.items():
        w = np.zeros(entries.size, dtype=np.int64)
        for k in np.unique(cores):
            sel = cores == k
            lo, hi = int(entries[sel].min()), int(entries[sel].max())
            words = np.zeros(hi - lo + 1, dtype=np.uint64)
            # reads in pieces that fit a reply frame
            step = 64
            for a in range(lo, hi + 1, step):
                n = min(step, hi + 1 - a)
                words[a - lo : a - lo + n] = device.read(int(k), CoreMem.SYNAPSES.value, a, n)
            w[sel] = field_of(words, layout, "weight")[entries[sel] - lo]
        out[name] = w
    return out


def run_network(
    net: Network,
    image: Image,
    device: Device,
    steps: int,
    backend: str,
    progress: Callable[[int], None] | None = None,
    load_image: bool = True,
) -> RunResult:
    """Run ``net`` (mapped as ``image``) on ``device`` for ``steps`` steps from reset.

    The image is loaded first unless ``load_image`` is false (it must then be loaded and
    reset already). Sources are computed on the host (contract section 1) and injected step
    by step; steps without sources or probes run in batches. ``v`` and ``u`` probes are
    read back after each sampled step.

    Raises
    ------
    ValueError
        When the image lacks the learning tables of a plastic projection.
    LinkError
        When the device fails (see :mod:`spikefab.host.link`).
    """
    cfg = image.config
    if load_image:
        load(device, image)
    pops = list(net.populations.values())
    pop_of_gid, idx_of_gid = image.gid_table(net)

    # source spikes, per step, and their host ids
    src_steps: list[np.ndarray] = []
    src_ids: list[np.ndarray] = []
    rec_step, rec_pop, rec_neuron = [], [], []
    spike_probe_pops = {pb.target for pb in net.probes if pb.variable == "spikes"}
    for p in pops:
        if p.source is None:
            continue
        st, ne = p.source.spikes(p.size, steps, net.dt_ms)
        src_steps.append(st)
        src_ids.append(image.source_of[p.name][ne])
        keep = np.ones(st.size, dtype=bool)
        if spike_probe_pops:
            mask = np.zeros(p.size, dtype=bool)
            for pb in net.probes:
                if pb.variable == "spikes" and pb.target == p.name:
                    mask[np.arange(p.size) if pb.neurons is None else pb.neurons] = True
            keep = mask[ne]
        rec_step.append(st[keep])
        rec_pop.append(np.full(int(keep.sum()), p.index))
        rec_neuron.append(ne[keep])
    all_src_steps = np.concatenate(src_steps) if src_steps else np.zeros(0, np.int64)
    all_src_ids = np.concatenate(src_ids) if src_ids else np.zeros(0, np.int64)
    order = np.argsort(all_src_steps, kind="stable")
    all_src_steps, all_src_ids = all_src_steps[order], all_src_ids[order]
    bounds = np.searchsorted(all_src_steps, np.arange(steps + 1))

    state_probes = [pb for pb in net.probes if pb.variable in ("u", "v")]
    weight_probes = [pb for pb in net.probes if pb.variable == "weights"]
    plastic = [pr.name for pr in net.projections if pr.stdp is not None]
    missing = [name for name in plastic if name not in image.plastic_entries]
    if missing:
        raise ValueError(
            f"the image has no learning tables for plastic projection(s) {', '.join(missing)}: "
            "map the network for cores with the learning unit"
        )
    samples: dict[str, tuple[list[int], list[np.ndarray]]] = {
        pb.key: ([], []) for pb in state_probes + weight_probes
    }

    hw_steps: list[int] = []
    hw_gids: list[int] = []

    def on_spikes(step: int, ids: list[int]) -> None:
        hw_steps.extend([step] * len(ids))
        hw_gids.extend(ids)

    def sample(t: int) -> None:
        for pb in state_probes:
            if t % pb.every:
                continue
            p = net.populations[pb.target]
            idx = np.arange(p.size) if pb.neurons is None else pb.neurons
            cores_, neurons_ = image.core_of[p.name][idx], image.neuron_of[p.name][idx]
            vals = np.zeros(idx.size, dtype=np.int64)
            for k in np.unique(cores_):
                sel = cores_ == k
                lo, hi = int(neurons_[sel].min()), int(neurons_[sel].max())
                words = np.asarray(
                    device.read(int(k), CoreMem.STATE.value, lo, hi - lo + 1), dtype=np.uint64
                )
                vals[sel] = field_of(words, NEURON_STATE, pb.variable)[neurons_[sel] - lo]
            ts, vs = samples[pb.key]
            ts.append(t)
            vs.append(vals)
        due = [pb for pb in weight_probes if t % pb.every == 0]
        if due:
            weights = read_weights(device, image)
            for pb in due:
                # a static projection's weights are the network's
                w = weights.get(pb.target, net.projection(pb.target).weight)
                ts, vs = samples[pb.key]
                ts.append(t)
                vs.append(w if pb.neurons is None else w[pb.neurons])

    active = np.unique(all_src_steps)
    sampled = bool(state_probes or weight_probes)
    too_many = np.flatnonzero(np.diff(bounds) > cfg.inject_depth)
    if too_many.size:
        t0 = int(too_many[0])
        raise ValueError(
            f"step {t0}: {int(bounds[t0 + 1] - bounds[t0])} sources spike; the "
            f"system injects at most {cfg.inject_depth} per step"
        )
    t = 0
    while t < steps:
        lo, hi = bounds[t], bounds[t + 1]
        if hi > lo or sampled:
            if hi > lo:
                device.inject([int(x) for x in all_src_ids[lo:hi]])
            device.run(1, on_spikes)
            sample(t)
            n = 1
        else:
            # the steps up to the next source spike run in one request
            k = int(np.searchsorted(active, t))
            nxt = int(active[k]) if k < active.size else steps
            n = min(nxt, steps) - t
            device.run(n, on_spikes)
        t += n
        if progress is not None:
            progress(n)

    gids = np.asarray(hw_gids, dtype=np.int64)
    if gids.size and (gids.max() >= pop_of_gid.size or (pop_of_gid[gids] < 0).any()):
        clipped = np.minimum(gids, pop_of_gid.size - 1)
        bad = int(gids[(gids >= pop_of_gid.size) | (pop_of_gid[clipped] < 0)][0])
        raise ValueError(
            f"the device reported a spike of global id {bad}, which holds no "
            "neuron of this network: the image and the device disagree"
        )
    final_weights = read_weights(device, image) if plastic else {}
    probes = {}
    for pb in state_probes + weight_probes:
        size = (
            net.projection(pb.target).n_synapses
            if pb.variable == "weights"
            else net.populations[pb.target].size
        )
        ts, vs = samples[pb.key]
        index = np.arange(size) if pb.neurons is None else pb.neurons
        values = np.stack(vs) if vs else np.zeros((0, index.size), dtype=np.int64)
        tr = ProbeTrace(pb.target, pb.variable, np.asarray(ts, dtype=np.int64), index, values)
        probes[tr.key] = tr
    return RunResult(
        network=net.name,
        backend=backend,
        dt_ms=net.dt_ms,
        steps=steps,
        populations=[p.name for p in pops],
        population_sizes=[p.size for p in pops],
        step=np.concatenate([np.asarray(hw_steps, dtype=np.int64), *rec_step]),
        population=np.concatenate([pop_of_gid[gids] if gids.size else gids, *rec_pop]),
        neuron=np.concatenate([idx_of_gid[gids] if gids.size else gids, *rec_neuron]),
        probes=probes,
        weights=final_weights,
    )
