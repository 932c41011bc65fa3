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
from spikefab.mapping.network import Network, Probe, SpikeSource
from spikefab.sim.results import ProbeTrace, RunAbortedError, RunResult

__all__ = ["Device", "DeviceRun", "check_device", "load", "read_weights", "run_network"]


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
    def sync(self, keep: int = 0) -> None: ...
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
    run = DeviceRun(net, image, device, backend, progress=progress)
    try:
        run.start(load_image)
        run.advance(steps)
        return run.finish()
    except (LinkError, KeyboardInterrupt, OSError) as e:
        raise RunAbortedError(run.partial(e), e) from e


def _silent(source: SpikeSource) -> bool:
    """An explicit source with no spikes."""
    return source.kind == "explicit" and source.steps is not None and source.steps.size == 0


class DeviceRun:
    """A run of a network on a device, advanced a block of steps at a time.

    :func:`run_network` is one block; a run over several devices
    (:mod:`spikefab.host.multidevice`) advances each device a round at a time and injects,
    with ``extra``, the spikes the other devices sent it.

    The network's spike sources are drawn on the host as the steps come (reading a source
    in blocks gives the spikes reading it at once would, ``SourceStream``), and recorded as
    the golden model records them.

    Raises
    ------
    ValueError
        When the image lacks the learning tables of a plastic projection.
    """

    def __init__(
        self,
        net: Network,
        image: Image,
        device: Device,
        backend: str,
        progress: Callable[[int], None] | None = None,
    ):
        self.net, self.image, self.device, self.backend = net, image, device, backend
        self.progress = progress
        self.step = 0  # the next step to send
        self.pops = list(net.populations.values())
        self.pop_of_gid, self.idx_of_gid = image.gid_table(net)
        # (a source that never spikes, such as a multi-device run's proxy, needs no stream)
        self.streams = {
            p.name: p.source.stream(p.size, net.dt_ms)
            for p in self.pops
            if p.source is not None and not _silent(p.source)
        }
        # the source neurons recorded (all, or those of the spikes probes)
        self.src_mask: dict[str, np.ndarray] = {}
        spike_probes = [pb for pb in net.probes if pb.variable == "spikes"]
        for p in self.pops:
            if p.source is None:
                continue
            mask = np.ones(p.size, dtype=bool)
            if spike_probes:
                mask[:] = False
                for pb in spike_probes:
                    if pb.target == p.name:
                        mask[np.arange(p.size) if pb.neurons is None else pb.neurons] = True
            self.src_mask[p.name] = mask
        self.rec: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.state_probes = [pb for pb in net.probes if pb.variable in ("u", "v")]
        self.weight_probes = [pb for pb in net.probes if pb.variable == "weights"]
        self.plastic = [pr.name for pr in net.projections if pr.stdp is not None]
        missing = [name for name in self.plastic if name not in image.plastic_entries]
        if missing:
            raise ValueError(
                f"the image has no learning tables for plastic projection(s) "
                f"{', '.join(missing)}: map the network for cores with the learning unit"
            )
        self._plans: dict[str, list[tuple[int, int, int, np.ndarray, np.ndarray]]] = {}
        self.samples: dict[str, tuple[list[int], list[np.ndarray]]] = {
            pb.key: ([], []) for pb in self.state_probes + self.weight_probes
        }
        self.hw_steps: list[int] = []
        self.hw_gids: list[int] = []
        self.done = 0  # steps fully received
        self.cycles: list[int] = []
        self.final_weights: dict[str, np.ndarray] = {}
        self._regs = (Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP_CYCLES)

    # device callbacks ------------------------------------------------------------------------
    def _on_spikes(self, step: int, ids: list[int]) -> None:
        self.hw_steps.extend([step] * len(ids))
        self.hw_gids.extend(ids)

    def _on_step(self, step: int, n: int) -> None:
        self.done = step + 1
        if self.progress is not None:
            self.progress(1)

    def _probe_plan(self, pb: Probe) -> list[tuple[int, int, int, np.ndarray, np.ndarray]]:
        """The reads of a state probe, computed once: ``(core, first slot, count, the
        probe's entries on that core, their slots less the first)`` per core it is on."""
        plan = self._plans.get(pb.key)
        if plan is None:
            p = self.net.populations[pb.target]
            idx = np.arange(p.size) if pb.neurons is None else np.asarray(pb.neurons)
            cores_ = self.image.core_of[p.name][idx]
            neurons_ = self.image.neuron_of[p.name][idx]
            plan = []
            for k in np.unique(cores_):
                sel = np.flatnonzero(cores_ == k)
                lo, hi = int(neurons_[sel].min()), int(neurons_[sel].max())
                plan.append((int(k), lo, hi - lo + 1, sel, neurons_[sel] - lo))
            self._plans[pb.key] = plan
        return plan

    def _sample(self, t: int) -> None:
        """Read the probes of step ``t``; a sample is kept once all its words are in."""
        net, image, device = self.net, self.image, self.device
        for pb in self.state_probes:
            if t % pb.every:
                continue
            plan = self._probe_plan(pb)
            vals = np.zeros(sum(sel.size for _, _, _, sel, _ in plan), dtype=np.int64)
            left = [len(plan)]

            def got(
                words: list[int],
                sel: np.ndarray,
                at: np.ndarray,
                pb: Probe = pb,
                vals: np.ndarray = vals,
                left: list[int] = left,
            ) -> None:
                w = np.asarray(words, dtype=np.uint64)
                vals[sel] = field_of(w[at], NEURON_STATE, pb.variable)
                left[0] -= 1
                if not left[0]:
                    ts, vs = self.samples[pb.key]
                    ts.append(t)
                    vs.append(vals)

            for k, lo, count, sel, at in plan:
                device.read(
                    k,
                    CoreMem.STATE.value,
                    lo,
                    count,
                    then=lambda w, sel=sel, at=at, got=got: got(w, sel, at),
                )
        due = [pb for pb in self.weight_probes if t % pb.every == 0]
        if due:
            weights = read_weights(device, image)
            for pb in due:
                # a static projection's weights are the network's
                w = weights.get(pb.target, net.projection(pb.target).weight)
                ts, vs = self.samples[pb.key]
                ts.append(t)
                vs.append(w if pb.neurons is None else w[pb.neurons])

    # running ---------------------------------------------------------------------------------
    def start(self, load_image: bool = True) -> None:
        """Load the image (unless it is loaded and reset already) and clear the cycle
        counters."""
        if load_image:
            load(self.device, self.image)
        if self.device.counts_cycles:
            self.device.write(*self._regs, [0, 0], wait=False)

    def advance(
        self, n: int, extra: Sequence[np.ndarray] | None = None, wait: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Send the next ``n`` steps; ``extra[k]`` are source ids injected before step
        ``step + k`` besides the network's own sources, ahead of them (late sources,
        contract 8.2, come first among a step's inputs).

        With ``wait``, wait for every reply and return the ``(step, global id)`` of the host
        spikes of these steps; else return empty arrays (the spikes arrive by
        :meth:`finish`).

        Raises
        ------
        ValueError
            When a step injects more sources than the system's injection FIFO holds.
        """
        t0 = self.step
        first = len(self.hw_gids)
        per_step: list[list[np.ndarray]] = [[] for _ in range(n)]
        if extra is not None:
            for k, ids in enumerate(extra[:n]):
                if len(ids):
                    per_step[k].append(np.asarray(ids, dtype=np.int64))
        for p in self.pops:
            stream = self.streams.get(p.name)
            if stream is None:
                continue
            st, ne = stream.next(n)
            keep = self.src_mask[p.name][ne]
            self.rec.append((st[keep], np.full(int(keep.sum()), p.index), ne[keep]))
            ids = self.image.source_of[p.name][ne]
            bounds = np.searchsorted(st, np.arange(t0, t0 + n + 1))
            for k in range(n):
                if bounds[k + 1] > bounds[k]:
                    per_step[k].append(ids[bounds[k] : bounds[k + 1]])
        inputs = [np.concatenate(x).tolist() if x else [] for x in per_step]
        depth = self.image.config.inject_depth
        for k, ids in enumerate(inputs):
            if len(ids) > depth:
                raise ValueError(
                    f"step {t0 + k}: {len(ids)} sources spike; the system injects at most "
                    f"{depth} per step"
                )
        while inputs and not inputs[-1]:  # the steps after the last input need no schedule
            inputs.pop()
        self.step = t0 + n
        reads = 0  # requests sent after the last run: the last step's probe reads
        if self.state_probes or self.weight_probes:
            # a step at a time, each followed by its probes' reads, all sent ahead
            for k in range(n):
                self.device.run(
                    1, self._on_spikes, self._on_step, inputs=inputs[k : k + 1], wait=False
                )
                before = getattr(self.device, "in_flight", 0)
                self._sample(t0 + k)
                reads = getattr(self.device, "in_flight", 0) - before
        elif n:
            self.device.run(n, self._on_spikes, self._on_step, inputs=inputs, wait=False)
        if not wait:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # the spikes are in once the runs have replied: the last probe reads may follow
        # later (the next sync, or finish, takes them)
        self.device.sync(keep=max(reads, 0))
        return (
            np.asarray(self.hw_steps[first:], dtype=np.int64),
            np.asarray(self.hw_gids[first:], dtype=np.int64),
        )

    def finish(self) -> RunResult:
        """Wait for every reply, read the cycle counters and the learnt weights; return the
        run's result.

        Raises
        ------
        ValueError
            When the device reported a spike of an id that holds no neuron of the network.
        """
        self.device.sync()
        if self.device.counts_cycles:
            self.cycles = [int(x) for x in self.device.read(*self._regs, 2) or []]
        self.final_weights = read_weights(self.device, self.image) if self.plastic else {}
        gids = np.asarray(self.hw_gids, dtype=np.int64)
        pop_of_gid = self.pop_of_gid
        if gids.size and (gids.max() >= pop_of_gid.size or (pop_of_gid[gids] < 0).any()):
            clipped = np.minimum(gids, pop_of_gid.size - 1)
            bad = int(gids[(gids >= pop_of_gid.size) | (pop_of_gid[clipped] < 0)][0])
            raise ValueError(
                f"the device reported a spike of global id {bad}, which holds no "
                "neuron of this network: the image and the device disagree"
            )
        return self._result(None, "")

    def partial(self, error: BaseException | str) -> RunResult:
        """The result of the steps fully received so far, marked partial with ``error``."""
        if isinstance(error, KeyboardInterrupt):
            reason = "interrupted"
        elif isinstance(error, BaseException):
            reason = (str(error).splitlines() or [type(error).__name__])[0]
        else:
            reason = error
        return self._result(self.done, reason)

    def _result(self, complete: int | None, error: str) -> RunResult:
        """The result of the run, or of its first ``complete`` steps."""
        net, pop_of_gid, idx_of_gid = self.net, self.pop_of_gid, self.idx_of_gid
        gids = np.asarray(self.hw_gids, dtype=np.int64)
        hw_t = np.asarray(self.hw_steps, dtype=np.int64)
        if complete is not None:  # the ids of the device are checked on a complete run only
            ok = (gids >= 0) & (gids < pop_of_gid.size)
            ok[ok] = pop_of_gid[gids[ok]] >= 0
            ok &= hw_t < complete
            gids, hw_t = gids[ok], hw_t[ok]
        probes = {}
        for pb in self.state_probes + self.weight_probes:
            size = (
                net.projection(pb.target).n_synapses
                if pb.variable == "weights"
                else net.populations[pb.target].size
            )
            ts, vs = self.samples[pb.key]
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
            for st, pp, ne in self.rec
        ]
        empty = np.zeros(0, np.int64)
        return RunResult(
            network=net.name,
            backend=self.backend,
            dt_ms=net.dt_ms,
            steps=self.step,
            populations=[p.name for p in self.pops],
            population_sizes=[p.size for p in self.pops],
            step=np.concatenate([hw_t, *(x[0] for x in src), empty]),
            population=np.concatenate(
                [pop_of_gid[gids] if gids.size else gids, *(x[1] for x in src), empty]
            ),
            neuron=np.concatenate(
                [idx_of_gid[gids] if gids.size else gids, *(x[2] for x in src), empty]
            ),
            probes=probes,
            weights=self.final_weights,
            complete_steps=complete,
            error=error,
            step_cycles=self.cycles[0] if self.cycles else None,
            max_step_cycles=self.cycles[1] if self.cycles else None,
        )
