"""Run a network on a device: load its image, inject its sources, collect its spikes.

The same code drives every device with the request set of ``docs/contract.md`` section 8:
:class:`~spikefab.host.link.LinkDevice` (the Verilator simulation or a board) and the
in-process :class:`~spikefab.sim.system_model.SystemModel`. The result is the same
:class:`~spikefab.sim.results.RunResult` the golden model gives, in population terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from spikefab.hdl.layouts import NEURON_STATE, CoreMem, SystemConfig, SystemMem, SystemReg, field_of
from spikefab.hdl.protocol import DeviceInfo, LinkError, Target
from spikefab.mapping.image import Image
from spikefab.mapping.network import Network
from spikefab.sim.results import ProbeTrace, RunAbortedError, RunResult

__all__ = ["Device", "check_device", "load", "read_weights", "run_network"]


class Device(Protocol):
    """What the runtime needs of a device (contract 8.2: one method per request).

    ``wait=False`` (``write``, ``clear``, ``run``) and ``then`` (``read``) let a device
    send requests ahead of their replies; ``sync`` waits for every reply, and raises the
    first failure among them.
    """

    def info(self) -> DeviceInfo: ...
    def write(
        self, target: int, mem: int, addr: int, words: list[int], wait: bool = True
    ) -> None: ...
    def clear(self, target: int, mem: int, addr: int, count: int, wait: bool = True) -> None: ...
    def read(
        self,
        target: int,
        mem: int,
        addr: int,
        count: int,
        then: Callable[[list[int]], None] | None = None,
    ) -> list[int] | None: ...
    def inject(self, sources: list[int]) -> None: ...
    def run(
        self,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None = None,
        inputs: Sequence[Sequence[int]] = (),
        wait: bool = True,
    ) -> None: ...
    def status(self) -> dict[str, int]: ...
    def sync(self) -> None: ...
    @property
    def counts_cycles(self) -> bool:
        """The device counts the clock cycles of its steps (STEP_CYCLES, contract 7.2)."""
        ...


def check_device(device: Device, config: SystemConfig) -> None:
    """Check that the device is the system an image was made for.

    Every field of R_INFO is compared with what a device built for ``config`` reports.

    Raises
    ------
    ValueError
        Naming every field that differs.
    """
    diff = device.info().differences(DeviceInfo.from_config(config))
    if diff:
        raise ValueError(
            "the device is not the system the image was made for: "
            + ", ".join(d.replace("(expected", "(image:") for d in diff)
        )


def load(device: Device, image: Image, progress: Callable[[int], None] | None = None) -> None:
    """Load the image: clear every memory, write its non-zero words, reset the step.

    The requests are :meth:`Image.writes`, sent ahead as far as the device allows.
    """
    for w in image.writes():
        if w.words is None:
            device.clear(w.target, w.mem, w.addr, w.count, wait=False)
            if progress is not None:
                progress(w.count)
        else:
            device.write(w.target, w.mem, w.addr, w.words, wait=False)
    device.sync()


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
    reset already). Sources are computed on the host (contract section 1) and sent as the
    inputs of the RUN requests; without probes the whole run is one ``run`` call, with
    them one step at a time, each step's ``v`` and ``u`` probes read after it (every
    request sent ahead as far as the device allows). ``progress(1)`` follows each step.

    Raises
    ------
    ValueError
        When the image lacks the learning tables of a plastic projection.
    RunAbortedError
        When the device fails (a :class:`~spikefab.hdl.protocol.LinkError`, the process
        behind it dying) or on KeyboardInterrupt, with the partial result.
    """
    cfg = image.config
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
    done = [0]  # steps fully received

    def on_spikes(step: int, ids: list[int]) -> None:
        hw_steps.extend([step] * len(ids))
        hw_gids.extend(ids)

    def on_step(step: int, n: int) -> None:
        done[0] = step + 1
        if progress is not None:
            progress(1)

    def sample(t: int) -> None:
        """Read the probes of step ``t``; a sample is kept once all its words are in."""
        for pb in state_probes:
            if t % pb.every:
                continue
            p = net.populations[pb.target]
            idx = np.arange(p.size) if pb.neurons is None else pb.neurons
            cores_, neurons_ = image.core_of[p.name][idx], image.neuron_of[p.name][idx]
            vals = np.zeros(idx.size, dtype=np.int64)
            ks = [int(k) for k in np.unique(cores_)]
            left = [len(ks)]

            def got(
                words: list[int],
                k: int,
                pb=pb,
                vals=vals,
                cores_=cores_,
                neurons_=neurons_,
                left=left,
            ) -> None:
                sel = cores_ == k
                lo = int(neurons_[sel].min())
                w = np.asarray(words, dtype=np.uint64)
                vals[sel] = field_of(w, NEURON_STATE, pb.variable)[neurons_[sel] - lo]
                left[0] -= 1
                if not left[0]:
                    ts, vs = samples[pb.key]
                    ts.append(t)
                    vs.append(vals)

            for k in ks:
                sel = cores_ == k
                lo, hi = int(neurons_[sel].min()), int(neurons_[sel].max())
                device.read(
                    k, CoreMem.STATE.value, lo, hi - lo + 1, then=lambda w, k=k, got=got: got(w, k)
                )
        due = [pb for pb in weight_probes if t % pb.every == 0]
        if due:
            weights = read_weights(device, image)
            for pb in due:
                # a static projection's weights are the network's
                w = weights.get(pb.target, net.projection(pb.target).weight)
                ts, vs = samples[pb.key]
                ts.append(t)
                vs.append(w if pb.neurons is None else w[pb.neurons])

    sampled = bool(state_probes or weight_probes)
    too_many = np.flatnonzero(np.diff(bounds) > cfg.inject_depth)
    if too_many.size:
        t0 = int(too_many[0])
        raise ValueError(
            f"step {t0}: {int(bounds[t0 + 1] - bounds[t0])} sources spike; the "
            f"system injects at most {cfg.inject_depth} per step"
        )
    inputs = [all_src_ids[bounds[t] : bounds[t + 1]].tolist() for t in range(steps)]
    if inputs:  # the steps after the last input run without a schedule
        last = int(all_src_steps[-1]) + 1 if all_src_steps.size else 0
        inputs = inputs[:last]
    final_weights: dict[str, np.ndarray] = {}

    def _result(complete: int | None, error: str) -> RunResult:
        """The result of the run, or of its first ``complete`` steps."""
        gids = np.asarray(hw_gids, dtype=np.int64)
        hw_t = np.asarray(hw_steps, dtype=np.int64)
        if complete is not None:  # the ids of the device are checked on a complete run only
            ok = (gids >= 0) & (gids < pop_of_gid.size)
            ok[ok] = pop_of_gid[gids[ok]] >= 0
            gids, hw_t = gids[ok], hw_t[ok]
        probes = {}
        for pb in state_probes + weight_probes:
            size = (
                net.projection(pb.target).n_synapses
                if pb.variable == "weights"
                else net.populations[pb.target].size
            )
            ts, vs = samples[pb.key]
            keep = [i for i, t in enumerate(ts) if complete is None or t < complete]
            index = np.arange(size) if pb.neurons is None else pb.neurons
            values = (
                np.stack([vs[i] for i in keep])
                if keep
                else np.zeros((0, index.size), dtype=np.int64)
            )
            steps_ = np.asarray([ts[i] for i in keep], dtype=np.int64)
            tr = ProbeTrace(pb.target, pb.variable, steps_, index, values)
            probes[tr.key] = tr
        src = [
            (st, pp, ne)
            if complete is None
            else (st[st < complete], pp[st < complete], ne[st < complete])
            for st, pp, ne in zip(rec_step, rec_pop, rec_neuron, strict=True)
        ]
        return RunResult(
            network=net.name,
            backend=backend,
            dt_ms=net.dt_ms,
            steps=steps,
            populations=[p.name for p in pops],
            population_sizes=[p.size for p in pops],
            step=np.concatenate([hw_t, *(x[0] for x in src)]),
            population=np.concatenate(
                [pop_of_gid[gids] if gids.size else gids, *(x[1] for x in src)]
            ),
            neuron=np.concatenate([idx_of_gid[gids] if gids.size else gids, *(x[2] for x in src)]),
            probes=probes,
            weights=final_weights,
            complete_steps=complete,
            error=error,
            step_cycles=cycles[0] if cycles else None,
            max_step_cycles=cycles[1] if cycles else None,
        )

    def _check_gids(result: RunResult) -> RunResult:
        gids = np.asarray(hw_gids, dtype=np.int64)
        if gids.size and (gids.max() >= pop_of_gid.size or (pop_of_gid[gids] < 0).any()):
            clipped = np.minimum(gids, pop_of_gid.size - 1)
            bad = int(gids[(gids >= pop_of_gid.size) | (pop_of_gid[clipped] < 0)][0])
            raise ValueError(
                f"the device reported a spike of global id {bad}, which holds no "
                "neuron of this network: the image and the device disagree"
            )
        return result

    cycles: list[int] = []
    counted = device.counts_cycles
    regs = (Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP_CYCLES)
    try:
        if load_image:
            load(device, image)
        if counted:
            device.write(*regs, [0, 0], wait=False)
        if sampled:
            # a step at a time, each followed by its probes' reads, all sent ahead
            for t in range(steps):
                device.run(1, on_spikes, on_step, inputs=inputs[t : t + 1], wait=False)
                sample(t)
        else:
            device.run(steps, on_spikes, on_step, inputs=inputs, wait=False)
        device.sync()
        if counted:
            cycles = [int(x) for x in device.read(*regs, 2) or []]
        final_weights = read_weights(device, image) if plastic else {}
    except (LinkError, KeyboardInterrupt, OSError) as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else str(e).splitlines()[0]
        partial = _result(done[0], reason)
        raise RunAbortedError(partial, e) from e

    return _check_gids(_result(None, ""))
