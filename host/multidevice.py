"""Run one network over several devices, exchanging spikes in rounds (contract section 11).

Each device runs its part of the network (:mod:`spikefab.mapping.devices`) with a
:class:`~spikefab.host.runtime.DeviceRun`. The devices advance a round of ``L`` steps (the
plan's lag) at a time without waiting on each other; after a round, every device's spikes
that another device needs are exchanged, and each device injects the ones it needs into
its proxy sources, as late sources before step ``t + L``, which lands them at ``t + d`` as
on one device.

Two ways to run the same rounds:

- :func:`run_in_process`: every device in this process, one after the other in a round
  (the system model, tests);
- :func:`run_rank`: one device per MPI rank, the spikes exchanged with ``allgather``; rank
  0 gathers every part's result and merges it into one result of the whole network.

A device that fails ends every device's run after the round in which it failed: the
result holds the rounds before it, marked partial, and its error names the device.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from spikefab.hdl.protocol import LATE, LinkError
from spikefab.host.runtime import Device, DeviceRun
from spikefab.mapping.devices import PROXY_SUFFIX, DevicePlan, Part, split_network
from spikefab.mapping.image import Image, recorded_neurons
from spikefab.mapping.network import Network
from spikefab.sim.results import ProbeTrace, RunAbortedError, RunResult

__all__ = [
    "DeviceMapping",
    "ExchangeStats",
    "PartRun",
    "load_plan",
    "map_devices",
    "merge_results",
    "run_in_process",
    "run_rank",
    "save_plan",
]

#: What ends a device's run as a failure of that device (the others then stop too).
FAILURES = (LinkError, OSError, ValueError)


@dataclass
class ExchangeStats:
    """What a multi-device run exchanged and where its time went (rank 0's view)."""

    rounds: int = 0
    spikes_sent: int = 0  # spikes that crossed devices (each counted once per sender)
    bytes_sent: int = 0  # payload bytes of the exchange, all ranks
    seconds_run: float = 0.0  # time in the devices' rounds (this rank)
    seconds_exchange: float = 0.0  # time in the exchange (this rank)
    per_rank: list[dict[str, float]] = field(default_factory=list)


_NONE = np.zeros(0, dtype=np.int64)  # no spikes from other devices for a step


class PartRun:
    """One device's run of its part: rounds of steps, with the spikes of the others injected.

    ``flat_offset`` numbers the whole network's LIF neurons (population by population), the
    ids the devices exchange.
    """

    def __init__(
        self,
        plan: DevicePlan,
        part: Part,
        image: Image,
        device: Device,
        backend: str,
        progress: Callable[[int], None] | None = None,
    ):
        self.plan, self.part, self.image = plan, part, image
        self.run = DeviceRun(part.network, image, device, backend, progress=progress)
        net = plan.net
        self.offset: dict[str, int] = {}
        n = 0
        for p in net.populations.values():
            if not p.is_source:
                self.offset[p.name] = n
                n += p.size
        self.n_flat = n
        # flat neuron id -> this device's source id of its proxy (-1: not needed here)
        self.inject_id = np.full(n, -1, dtype=np.int64)
        for pname, (orig, numbers) in part.proxies.items():
            ids = image.source_of[pname][np.arange(numbers.size)]
            self.inject_id[self.offset[orig] + numbers] = ids | LATE
        # this device's global id -> flat neuron id, for the neurons that send elsewhere
        pop_of_gid, idx_of_gid = self.run.pop_of_gid, self.run.idx_of_gid
        names = list(part.network.populations)
        self.flat_of_gid = np.full(pop_of_gid.size, -1, dtype=np.int64)
        for g in np.flatnonzero(pop_of_gid >= 0):
            name = names[int(pop_of_gid[g])]
            if name in part.lif:
                number = int(part.lif[name][idx_of_gid[g]])
                if part.sends[name][idx_of_gid[g]]:
                    self.flat_of_gid[g] = self.offset[name] + number
        self.pending: dict[int, list[np.ndarray]] = {}

    def start(self) -> None:
        self.run.start()

    def round(self, n: int) -> np.ndarray:
        """Run the next ``n`` steps with what is due from the other devices; return the
        spikes the others need, as ``(step, flat id)`` rows of an int32 array."""
        t0 = self.run.step
        extra = []
        for k in range(n):
            due = self.pending.pop(t0 + k, None)
            extra.append(_NONE if due is None else due[0] if len(due) == 1 else np.concatenate(due))
        steps, gids = self.run.advance(n, extra, wait=True)
        flat = self.flat_of_gid[gids]
        keep = flat >= 0
        out = np.empty((int(keep.sum()), 2), dtype=np.int32)
        out[:, 0] = steps[keep]
        out[:, 1] = flat[keep]
        return out

    def receive(self, spikes: np.ndarray) -> None:
        """Schedule the spikes of other devices (``(step, flat id)`` rows) that this device
        needs, as late sources before the step ``L`` steps after they were fired."""
        if not spikes.size:
            return
        ids = self.inject_id[spikes[:, 1]]
        keep = ids >= 0
        ids, steps = ids[keep], spikes[keep, 0]
        if not ids.size:
            return
        lag = self.plan.lag
        order = np.argsort(steps, kind="stable")  # in each step, in the order they came
        steps, ids = steps[order], ids[order]
        starts = np.flatnonzero(np.diff(steps)) + 1
        for t, part in zip(steps[np.r_[0, starts]], np.split(ids, starts), strict=True):
            self.pending.setdefault(int(t) + lag, []).append(part)


def _rounds(plan: DevicePlan, steps: int) -> list[int]:
    r = plan.round_steps(steps)
    return [min(r, steps - t) for t in range(0, steps, r)]


def run_in_process(
    plan: DevicePlan,
    images: Sequence[Image],
    devices: Sequence[Device],
    steps: int,
    backend: str,
    names: Sequence[str] | None = None,
) -> RunResult:
    """Run the plan's parts on ``devices``, all in this process, and merge the result.

    Raises
    ------
    RunAbortedError
        When a device fails, with the merged result of the rounds before.
    """
    runs = [PartRun(plan, part, img, dev, backend) for part, img, dev in
            zip(plan.parts, images, devices, strict=True)]  # fmt: skip
    stats = ExchangeStats()
    done = 0
    failure = ""
    try:
        for r in runs:
            r.start()
        for n in _rounds(plan, steps):
            sent = []
            for k, r in enumerate(runs):
                try:
                    sent.append(r.round(n))
                except FAILURES as e:
                    failure = _failure(k, names, e, done)
                    raise
            stats.rounds += 1
            for k, r in enumerate(runs):
                for j, s in enumerate(sent):
                    if j != k:
                        r.receive(s)
            stats.spikes_sent += sum(len(s) for s in sent)
            done += n
        results = [r.run.finish() for r in runs]
    except (*FAILURES, KeyboardInterrupt) as e:
        if isinstance(e, KeyboardInterrupt):
            failure = f"interrupted after step {done}"
        results = [r.run.partial(failure) for r in runs]
        merged = merge_results(plan, results, steps, complete=done, error=failure)
        raise RunAbortedError(merged, e) from e
    merged = merge_results(plan, results, steps)
    merged.exchange = stats  # type: ignore[attr-defined]
    return merged


def _failure(rank: int, names: Sequence[str] | None, e: BaseException, done: int) -> str:
    what = names[rank] if names else f"device {rank}"
    line = (str(e).splitlines() or [type(e).__name__])[0]
    return f"rank {rank} ({what}) failed after step {done}: {line}"


def run_rank(
    comm: Any,
    plan: DevicePlan,
    image: Image,
    device: Device,
    steps: int,
    backend: str,
    name: str = "",
    progress: Callable[[int], None] | None = None,
) -> RunResult | None:
    """Run this MPI rank's part (``comm.rank``) in rounds, exchanging spikes with the other
    ranks; return the merged result on rank 0 and ``None`` on the others.

    Every round ends with an exchange of each rank's outgoing spikes, or of its failure: a
    rank whose device fails sends its error instead, and every rank then stops, so all end
    within a round of each other.

    Raises
    ------
    RunAbortedError
        On rank 0, when a rank's device failed (or the run was interrupted), with the
        merged result of the rounds before; other ranks return ``None`` after sending their
        partial results.
    """
    rank = comm.rank
    run = PartRun(plan, plan.parts[rank], image, device, backend, progress)
    stats = ExchangeStats()
    done = 0
    failure = ""
    try:
        run.start()
    except FAILURES as e:
        failure = _failure(rank, [name] * comm.size if name else None, e, 0)
    errors = comm.allgather(failure)
    failure = next((f for f in errors if f), "")
    for n in [] if failure else _rounds(plan, steps):
        t = time.perf_counter()
        try:
            out: Any = run.round(n)
        except FAILURES as e:
            out = _failure(rank, [name] * comm.size if name else None, e, done)
        except KeyboardInterrupt:
            out = f"rank {rank} ({name or 'device'}) interrupted after step {done}"
        t1 = time.perf_counter()
        got = _exchange(comm, out)
        stats.seconds_run += t1 - t
        stats.seconds_exchange += time.perf_counter() - t1
        stats.rounds += 1
        if isinstance(got, str):
            failure = got
            break
        for j, s in enumerate(got):
            stats.spikes_sent += len(s)
            stats.bytes_sent += s.nbytes
            if j != rank:
                run.receive(s)
        done += n
    if failure:
        result = run.run.partial(failure)
    else:
        try:
            result = run.run.finish()
        except FAILURES as e:
            failure = _failure(rank, None, e, done)
            result = run.run.partial(failure)
    mine = {"run": stats.seconds_run, "exchange": stats.seconds_exchange}
    gathered = comm.gather((result, mine), root=0)
    # a failure in the final reads is known only now
    failure = next((r.error for r, _ in gathered or [] if r.error), failure)
    if rank != 0:
        return None
    assert gathered is not None
    results = [r for r, _ in gathered]
    stats.per_rank = [m for _, m in gathered]
    if failure:
        merged = merge_results(plan, results, steps, complete=done, error=failure)
        merged.exchange = stats  # type: ignore[attr-defined]
        raise RunAbortedError(merged)
    merged = merge_results(plan, results, steps)
    merged.exchange = stats  # type: ignore[attr-defined]
    return merged


def _exchange(comm: Any, out: np.ndarray | str) -> list[np.ndarray] | str:
    """Give every rank every rank's ``(step, flat id)`` rows; or, when any rank sends its
    failure (a text) instead, return the first failure on every rank.

    Two collectives on buffers (the row counts, then the rows): a pickled ``allgather`` of
    the arrays costs three times as long, and this runs once a round.
    """
    from mpi4py import MPI

    failed = isinstance(out, str)
    rows = np.zeros((0, 2), dtype=np.int32) if failed else np.ascontiguousarray(out, np.int32)
    counts = np.zeros(comm.size, dtype=np.int64)
    mine = np.array([-1 if failed else rows.shape[0]], dtype=np.int64)
    comm.Allgather(mine, counts)
    if (counts < 0).any():
        texts = comm.allgather(out if failed else "")
        return next(t for t in texts if t)
    sizes = 2 * counts
    buf = np.empty(int(sizes.sum()), dtype=np.int32)
    comm.Allgatherv([rows.reshape(-1), MPI.INT32_T], [buf, sizes, MPI.INT32_T])
    ends = np.cumsum(counts)
    table = buf.reshape(-1, 2)
    return [table[e - c : e] for c, e in zip(counts, ends, strict=True)]


def merge_results(
    plan: DevicePlan,
    results: Sequence[RunResult],
    steps: int,
    complete: int | None = None,
    error: str = "",
) -> RunResult:
    """Merge the parts' results into one result of the whole network, as a one-device run
    gives it: its populations and neuron numbers, its probes and plastic weights.

    With ``complete``, the result is partial: the steps before it, marked with ``error``.
    """
    net = plan.net
    names = list(net.populations)
    recorded = recorded_neurons(net)
    steps_, pops_, neurons_ = [], [], []
    for part, res in zip(plan.parts, results, strict=True):
        part_names = res.populations
        for k, name in enumerate(part_names):
            if name not in part.lif:
                continue
            sel = res.population == k
            t, idx = res.step[sel], part.lif[name][res.neuron[sel]]
            keep = recorded[name][idx]
            if complete is not None:
                keep &= t < complete
            steps_.append(t[keep])
            pops_.append(np.full(int(keep.sum()), net.populations[name].index))
            neurons_.append(idx[keep])
    # the sources, drawn here as every device drew them (contract section 1)
    last = steps if complete is None else complete
    spike_probes = [pb for pb in net.probes if pb.variable == "spikes"]
    for p in net.populations.values():
        if p.source is None:
            continue
        st, ne = p.source.spikes(p.size, last, net.dt_ms)
        mask = np.ones(p.size, dtype=bool)
        if spike_probes:
            mask[:] = False
            for pb in spike_probes:
                if pb.target == p.name:
                    mask[np.arange(p.size) if pb.neurons is None else pb.neurons] = True
        keep = mask[ne]
        steps_.append(st[keep])
        pops_.append(np.full(int(keep.sum()), p.index))
        neurons_.append(ne[keep])
    probes = _merge_probes(plan, results, complete)
    weights: dict[str, np.ndarray] = {}
    for pr in net.projections:
        if pr.stdp is None or complete is not None:
            continue
        w = np.asarray(pr.weight, dtype=np.int64).copy()
        for part, res in zip(plan.parts, results, strict=True):
            if pr.name in res.weights:
                w[part.synapses[pr.name]] = res.weights[pr.name]
        weights[pr.name] = w
    cycles = [r.step_cycles for r in results if r.step_cycles is not None]
    longest = [r.max_step_cycles for r in results if r.max_step_cycles is not None]
    cat = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in (steps_, pops_, neurons_)]
    return RunResult(
        network=net.name,
        backend=results[0].backend if results else "",
        dt_ms=net.dt_ms,
        steps=steps,
        populations=names,
        population_sizes=[p.size for p in net.populations.values()],
        step=cat[0],
        population=cat[1],
        neuron=cat[2],
        probes=probes,
        weights=weights,
        complete_steps=complete,
        error=error,
        step_cycles=max(cycles) if len(cycles) == len(results) and cycles else None,
        max_step_cycles=max(longest) if len(longest) == len(results) and longest else None,
    )


def _merge_probes(
    plan: DevicePlan, results: Sequence[RunResult], complete: int | None
) -> dict[str, ProbeTrace]:
    """The whole network's u, v and weights probes from the parts' samples."""
    net = plan.net
    out: dict[str, ProbeTrace] = {}
    for pb in net.probes:
        if pb.variable not in ("u", "v", "weights"):
            continue
        if pb.variable == "weights":
            pr = net.projection(pb.target)
            size = pr.n_synapses
        else:
            size = net.populations[pb.target].size
        index = np.arange(size) if pb.neurons is None else np.asarray(pb.neurons)
        key = f"{pb.target}/{pb.variable}"
        # which column of the probe each whole-network neuron (or synapse) is
        column = np.full(size, -1, dtype=np.int64)
        column[index] = np.arange(index.size)
        sample_steps: np.ndarray | None = None
        values: np.ndarray | None = None
        for part, res in zip(plan.parts, results, strict=True):
            tr = res.probes.get(key)
            if tr is None:
                continue
            keep = np.ones(tr.steps.size, dtype=bool) if complete is None else tr.steps < complete
            if sample_steps is None:
                sample_steps = tr.steps[keep]
                values = np.zeros((sample_steps.size, index.size), dtype=np.int64)
                if pb.variable == "weights":  # synapses of no part keep their weight
                    values[:] = np.asarray(pr.weight)[index]
            n = min(values.shape[0], int(keep.sum()))  # type: ignore[union-attr]
            if pb.variable == "weights":
                whole = part.synapses[pb.target][tr.index]
            else:
                whole = part.lif[pb.target][tr.index]
            values[:n, column[whole]] = tr.values[keep][:n]  # type: ignore[index]
            sample_steps = sample_steps[:n]
            values = values[:n]  # type: ignore[index]
        if sample_steps is None or values is None:
            sample_steps = np.zeros(0, dtype=np.int64)
            values = np.zeros((0, index.size), dtype=np.int64)
        out[key] = ProbeTrace(pb.target, pb.variable, sample_steps, index, values)
    return out


# ---------------------------------------------------------------------------------------------
# A multi-device image: one directory


def save_plan(
    path: str | Path, plan: DevicePlan, images: Sequence[Image], devices: Sequence[str]
) -> Path:
    """Write a multi-device image: ``plan.json`` (the devices, the lag), the network's
    description, every LIF neuron's device, and each part's image ``part<k>.npz``."""
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    text = plan.net.to_yaml()
    if not text:
        raise ValueError(
            "a multi-device image keeps the network's description; this network has none"
        )
    (d / "network.yaml").write_text(text)
    np.savez_compressed(d / "devices.npz", **plan.device_of)
    for k, img in enumerate(images):
        img.save(d / f"part{k}.npz")
    (d / "plan.json").write_text(
        json.dumps(
            {"format": 1, "network": plan.net.name, "devices": list(devices), "lag": plan.lag},
            indent=1,
        )
    )
    return d


def load_plan(path: str | Path) -> tuple[DevicePlan, list[Image], list[str]]:
    """Read a multi-device image written by :func:`save_plan`: the plan, the parts' images
    and the devices' names."""
    from spikefab.mapping.image import load_image
    from spikefab.mapping.loader import load_text

    d = Path(path)
    meta = json.loads((d / "plan.json").read_text())
    net = load_text((d / "network.yaml").read_text(), source=str(d / "network.yaml"), base=d)
    with np.load(d / "devices.npz") as f:
        by_pop = {k: f[k] for k in f.files}
    flat = np.concatenate([by_pop[p.name] for p in net.populations.values() if not p.is_source]
                          or [np.zeros(0, np.int64)])  # fmt: skip
    devices = list(meta["devices"])
    plan = split_network(net, flat, len(devices))
    images = [load_image(d / f"part{k}.npz") for k in range(len(devices))]
    return plan, images, devices


# ---------------------------------------------------------------------------------------------
# Mapping for several devices


@dataclass
class DeviceMapping:
    """A network mapped over several devices (:func:`map_devices`).

    Attributes
    ----------
    plan
        The device partition and the parts.
    mappings
        Each part placed on its device's cores (:class:`~spikefab.mapping.mapper.Mapping`).
    images
        Each device's image.
    names
        Each device's name: a board's, or ``sim`` for a simulated system.
    rates
        Expected spikes per step of every sender of the whole network (LIF neurons, then
        sources), when they were measured.
    """

    plan: DevicePlan
    mappings: list[Any]
    images: list[Image]
    names: list[str]
    rates: np.ndarray | None = None

    def traffic(self) -> np.ndarray | None:
        """``[a, b]``: expected spikes per step that device ``a`` sends device ``b``."""
        if self.rates is None:
            return None
        plan = self.plan
        k = plan.devices
        out = np.zeros((k, k))
        net = plan.net
        off = 0
        for p in net.populations.values():
            if p.is_source:
                continue
            rate = self.rates[off : off + p.size]
            src = plan.device_of[p.name]
            for part in plan.parts:
                if p.name + PROXY_SUFFIX not in part.proxies:
                    continue
                _, numbers = part.proxies[p.name + PROXY_SUFFIX]
                np.add.at(out[:, part.device], src[numbers], rate[numbers])
            off += p.size
        return out

    def report(self, bytes_per_spike: float = 2.2, inject_bytes: float = 2.0) -> str:
        """The devices, their neurons and synapses, the lag, and the spikes and link bytes
        each device sends and receives per step."""
        plan = self.plan
        lines = [
            f"{plan.net.name}: {plan.net.n_neurons} neurons over {plan.devices} devices, "
            f"spikes exchanged every {plan.lag} steps"
            if plan.lag
            else f"{plan.net.name}: {plan.net.n_neurons} neurons over {plan.devices} devices, "
            "no synapse between devices",
        ]
        traffic = self.traffic()
        for part, m, name in zip(plan.parts, self.mappings, self.names, strict=True):
            n = sum(idx.size for idx in part.lif.values())
            proxies = sum(nums.size for _, nums in part.proxies.values())
            line = (
                f"  device {part.device} ({name}): {n} neurons on {m.cores_used} cores, "
                f"{part.network.n_synapses} synapses, {proxies} remote senders"
            )
            lines.append(line)
        if traffic is not None:
            lines.append("  spikes per step between devices (expected, from the golden model):")
            for a in range(plan.devices):
                row = "  ".join(f"{traffic[a, b]:8.1f}" for b in range(plan.devices))
                lines.append(f"    from {a}: {row}")
            dt = plan.net.dt_ms
            for part, name in zip(plan.parts, self.names, strict=True):
                d = part.device
                up = float(traffic[d].sum()) * bytes_per_spike
                down = float(traffic[:, d].sum()) * inject_bytes
                lines.append(
                    f"  device {d} link: {up:.0f} B/step out, {down:.0f} B/step in "
                    f"({(up + down) * 1000 / dt / 1e3:.1f} kB/s at real time)"
                    + _link_room(name, up + down, dt)
                )
        return "\n".join(lines)


def _link_room(name: str, bytes_per_step: float, dt_ms: float) -> str:
    """What share of a board's UART the bytes take at real time."""
    if name == "sim":
        return ""
    from spikefab.boards import get_board

    b = get_board(name)
    line = b.baud / 10  # bytes/s: 8 data bits, a start and a stop bit
    need = bytes_per_step * 1000 / dt_ms
    return f", {100 * need / line:.0f}% of its {b.baud / 1e6:g} Mbaud UART"


def _part_rates(net: Network, part: Part, rates: np.ndarray) -> np.ndarray:
    """The expected rates of a part's senders (its LIF neurons, then its sources and
    proxies, as the mapper numbers them) from those of the whole network."""
    lif_off, src_off = {}, {}
    n = m = 0
    for p in net.populations.values():
        if p.is_source:
            src_off[p.name], m = m, m + p.size
        else:
            lif_off[p.name], n = n, n + p.size
    lif, src = [], []
    for p in part.network.populations.values():
        if not p.is_source:
            lif.append(rates[lif_off[p.name] + part.lif[p.name]])
        elif p.name in part.proxies:
            orig, numbers = part.proxies[p.name]
            src.append(rates[lif_off[orig] + numbers])
        else:
            src.append(rates[n + src_off[p.name] : n + src_off[p.name] + p.size])
    return np.concatenate(lif + src) if lif or src else np.zeros(0)


def map_devices(
    net: Network,
    devices: int | Sequence[str],
    *,
    placement: str = "greedy",
    rates: np.ndarray | int | None = None,
    seed: int = 0,
    device_of: np.ndarray | None = None,
) -> DeviceMapping:
    """Map a network over several devices: cut it into parts (METIS, or ``device_of``),
    then place each part on its device's cores.

    Parameters
    ----------
    devices
        A number of simulated systems, or the boards' names (``["ulx3s", "orangecrab"]``),
        which may differ. Each device shares its part over all its cores (a step lasts as
        long as the busiest core). A simulated device has as many cores as the whole network
        fills on one simulated system, each with the fewest neurons (a power of two) that
        hold an even share of the largest part: a core updates all its neurons every step,
        so K devices each run about 1/K of the one-device system's cycles per step. When
        that does not fit, a device is the simulated system with the cores its part fills.
    rates
        Expected spikes per step of every sender, or golden-model steps to measure them:
        the partition then keeps busy synapses within a device, and the report gives the
        traffic between devices.
    device_of
        The device of every LIF neuron (flat order), instead of METIS's partition.

    Raises
    ------
    FitError
        When a part does not fit its device (naming the device).
    ValueError
        For a partition that cuts a synapse of delay 1 or a plastic synapse.
    """
    from spikefab.boards import get_board
    from spikefab.mapping.core_image import FitError
    from spikefab.mapping.devices import partition_devices
    from spikefab.mapping.hardware import (
        SIM_CORE_LARGE,
        SIM_ROUTE_ENTRIES_LARGE,
        Hardware,
        simulated_hardware,
        source_ids,
    )
    from spikefab.mapping.mapper import expected_rates
    from spikefab.mapping.mapper import map_network as place

    if isinstance(devices, int):
        if devices < 1:
            raise ValueError(f"devices must be at least 1, not {devices}")
        names = ["sim"] * devices
    else:
        names = [str(d) for d in devices]
    boards = [None if n == "sim" else get_board(n) for n in names]
    hws: list[Any] = [None if b is None else Hardware.from_board(b) for b in boards]
    shares = [
        1.0 if hw is None else float(hw.cores * hw.core.neurons) for hw in hws
    ]  # fmt: skip
    if isinstance(rates, int) and not isinstance(rates, bool):
        rates = expected_rates(net, rates) if rates > 0 else None
    if device_of is None:
        sim_hw = simulated_hardware(net)
        capacity = [
            (sim_hw if hw is None else hw).cores * (sim_hw if hw is None else hw).core.neurons
            for hw in hws
        ]
        device_of = partition_devices(net, shares, rates, seed, capacity)
    plan = split_network(net, device_of, len(names))
    # one simulated system for every simulated device, so that one build serves them all:
    # the simulated core, or the large one when the parts (with their proxies) need it
    sims: list[Any] = [None]
    if any(hw is None for hw in hws):
        biggest = max(plan.parts, key=lambda p: p.network.n_neurons).network
        sources = max(source_ids(p.network) for p in plan.parts)
        sims = [simulated_hardware(biggest, sources=sources)]
        if sims[0].core != SIM_CORE_LARGE:
            large = {"neurons": SIM_CORE_LARGE.neurons, "axons": SIM_CORE_LARGE.axons,
                     "synapses": SIM_CORE_LARGE.synapses}  # fmt: skip
            sims.append(
                simulated_hardware(
                    biggest, sources=sources, route_entries=SIM_ROUTE_ENTRIES_LARGE, **large
                )
            )
    # every device shares its part over all its cores (a round lasts as long as the slowest
    # device's steps, a step as long as its busiest core); a simulated device has the cores
    # the whole network fills on one such device, or as many as its part needs
    attempts: list[tuple[Any, bool]] = []
    share = max(p.network.n_neurons for p in plan.parts)
    for sim in sims:
        if sim is None:
            attempts.append((None, True))
            continue
        # the cores of the one-device system, each with the neurons its share needs (a core
        # updates all its N neurons every step, so a smaller share needs a smaller core to
        # shorten the step)
        one = min(sim.cores, max(1, -(-net.n_neurons // sim.core.neurons)))
        n = min(sim.core.neurons, max(2, 1 << (-(-share // one) - 1).bit_length()))
        sized = replace(sim, cores=one, core=replace(sim.core, neurons=n))
        attempts += [(sized, True), (sim, False)]
    for k, (sim, spread) in enumerate(attempts):
        chosen = [sim if hw is None else hw for hw in hws]
        mappings = []
        try:
            for part, hw, name in zip(plan.parts, chosen, names, strict=True):
                part_rates = None if rates is None else _part_rates(net, part, rates)
                try:
                    spread_here = spread or name != "sim"
                    mappings.append(
                        place(part.network, hw, placement, part_rates, seed, spread=spread_here)
                    )
                except FitError as e:
                    raise FitError(f"device {part.device} ({name}): {e}") from None
            break
        except FitError:
            if k == len(attempts) - 1 or not any(hw is None and n == "sim" for hw, n in
                                                 zip(hws, names, strict=True)):  # fmt: skip
                raise
    last = max(
        (int(m.assignment.core.max()) + 1 if m.assignment.core.size else 1 for m in mappings),
        default=1,
    )
    images = []
    for m, name in zip(mappings, names, strict=True):
        system = m.hardware.system(cores=last) if name == "sim" else None
        images.append(m.image(system))
    return DeviceMapping(plan, mappings, images, names, rates)


# ---------------------------------------------------------------------------------------------
# Running: in process, under MPI ranks started here, or as a rank of the user's mpiexec


def mpi_world() -> Any | None:
    """The MPI world when this process is one of several MPI ranks, else ``None``."""
    import os

    if not any(k in os.environ for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")):
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.size > 1 else None


def mpiexec() -> str:
    """The ``mpiexec`` of this environment (the ``mpich`` wheel puts it beside Python).

    Raises
    ------
    RuntimeError
        When there is none, or mpi4py is missing.
    """
    import importlib.util
    import shutil
    import sys

    if importlib.util.find_spec("mpi4py") is None:
        raise RuntimeError(
            "runs over several devices need MPI: pip install 'spikefab[cluster]' "
            "(mpi4py and the mpich wheel)"
        )
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise RuntimeError(
            "no mpiexec found beside Python or on PATH: pip install 'spikefab[cluster]'"
        )
    return found


def run_devices(
    dm: DeviceMapping,
    steps: int,
    backend: str,
    *,
    timeout: float | None = None,
    progress: bool = False,
    ports: Sequence[str | None] | None = None,
    in_process: bool = True,
) -> RunResult:
    """Run a network mapped over several devices and return the whole network's result.

    ``system`` runs every part in this process; ``verilator`` starts one MPI rank per device
    (``mpiexec``), each running its Verilator simulation in its own process (``in_process``;
    else as a program beside it); inside a user's ``mpiexec`` (a cluster), each rank runs its
    own device (``serial``: the board and port of its rank) and every rank but 0 returns a
    result holding no spikes.

    Raises
    ------
    RunAbortedError
        When a device fails or the run is interrupted, with the result of the rounds before.
    RuntimeError
        When MPI is missing, or the ranks end without a result.
    """
    plan = dm.plan
    comm = mpi_world()
    if comm is not None:
        return _as_rank(comm, dm, steps, backend, timeout, progress, ports, in_process)
    if backend == "system":
        from spikefab.sim.system_model import SystemModel

        models = [SystemModel(img.config) for img in dm.images]
        return run_in_process(plan, dm.images, models, steps, backend, names=dm.names)
    return _spawn_ranks(dm, steps, backend, timeout, progress, in_process)


def _open(
    dm: DeviceMapping,
    k: int,
    backend: str,
    timeout: float | None,
    port: str | None,
    in_process: bool,
) -> Any:
    from spikefab.host.api import open_system

    name = dm.names[k]
    board = None if name == "sim" else name
    return open_system(
        dm.images[k].config,
        backend,
        board=board,
        port=port,
        timeout=timeout,
        progress=False,
        in_process=in_process and backend == "verilator",
    )


def _as_rank(
    comm: Any,
    dm: DeviceMapping,
    steps: int,
    backend: str,
    timeout: float | None,
    progress: bool,
    ports: Sequence[str | None] | None,
    in_process: bool,
) -> RunResult:
    if comm.size != dm.plan.devices:
        raise RuntimeError(
            f"the network is mapped over {dm.plan.devices} devices but mpiexec started "
            f"{comm.size} ranks: start one rank per device (mpiexec -n {dm.plan.devices})"
        )
    k = comm.rank
    bar = _bar(progress and k == 0, steps)
    device = None
    try:
        device = _open(dm, k, backend, timeout, ports[k] if ports else None, in_process)
    except Exception as e:  # the failure goes to every rank, as a device failure does
        device = _Dead(f"{type(e).__name__}: {e}")
    try:
        label = f"{dm.names[k]}, {backend}"
        tick = None if bar is None else bar.update
        result = run_rank(comm, dm.plan, dm.images[k], device, steps, backend, label, tick)
    finally:
        device.close()
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]
    if result is None:  # not rank 0: an empty result of the right shape
        return merge_results(dm.plan, [_empty(p, backend) for p in dm.plan.parts], 0)
    return result


class _Dead:
    """A device that could not be opened: every request fails with why."""

    counts_cycles = False

    def __init__(self, why: str):
        self.why = why

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise LinkError(f"the device did not open: {self.why}")

        return fail

    def close(self) -> None:
        pass


def _empty(part: Part, backend: str) -> RunResult:
    net = part.network
    z = np.zeros(0, np.int64)
    return RunResult(
        network=net.name, backend=backend, dt_ms=net.dt_ms, steps=0,
        populations=list(net.populations),
        population_sizes=[p.size for p in net.populations.values()],
        step=z, population=z, neuron=z,
    )  # fmt: skip


def _bar(show: bool, steps: int) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=steps, unit="step", desc="devices", leave=False)


def _spawn_ranks(
    dm: DeviceMapping,
    steps: int,
    backend: str,
    timeout: float | None,
    progress: bool,
    in_process: bool,
) -> RunResult:
    """Start one MPI rank per device on this machine and collect rank 0's result."""
    import subprocess
    import sys
    import tempfile

    from spikefab.sim.results import load_result

    if backend != "verilator":
        raise ValueError(
            f"the {backend} backend runs over several devices under the user's mpiexec "
            "(one rank per board); on this machine, use verilator or system"
        )
    exe = mpiexec()
    if backend == "verilator":
        from spikefab.sim.verilator import build_harness

        for config in {img.config for img in dm.images}:
            build_harness(config, progress=progress, library=in_process)
    with tempfile.TemporaryDirectory(prefix="spikefab-ranks-") as tmp:
        d = Path(tmp)
        save_plan(d / "plan", dm.plan, dm.images, dm.names)
        out = d / "result.npz"
        # A rank per core, each held to its core: a rank waiting in the exchange spins, and
        # must not take the core of a rank that computes. (With more ranks than cores the
        # system shares them out instead.)
        bind = ["--bind-to", "core"] if dm.plan.devices <= (os.cpu_count() or 1) else []
        cmd = [
            exe, *bind, "-n", str(dm.plan.devices), sys.executable, "-m", "spikefab.host.ranks",
            str(d / "plan"), "--backend", backend, "--steps", str(steps), "--out", str(out),
        ]  # fmt: skip
        if timeout is not None:
            cmd += ["--timeout", str(timeout)]
        if progress:
            cmd.append("--progress")
        if not in_process:
            cmd.append("--sim-process")
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL)
        except KeyboardInterrupt:
            proc = None
        if not out.exists():
            status = "interrupted" if proc is None else f"exit status {proc.returncode}"
            raise RuntimeError(
                f"the {dm.plan.devices} MPI ranks ended without a result ({status}): a "
                "rank's process died; its messages are above"
            )
        result = load_result(out)
        meta = json.loads(out.with_suffix(".json").read_text())
    result.exchange = ExchangeStats(**meta["exchange"])  # type: ignore[attr-defined]
    if result.partial:
        raise RunAbortedError(result)
    return result
