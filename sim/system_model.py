"""The golden model of a whole system, run from its memories: an in-process device.

:class:`SystemModel` answers the same requests as the hardware (``info``, ``write``,
``read``, ``inject``, ``run``, ``status``; see :class:`spikefab.host.link.LinkDevice`)
and keeps the same memories, but computes each step with the contract's arithmetic over
numpy arrays decoded from those memories. Running an image on it and running the network
on :class:`~spikefab.sim.golden.GoldenModel` must give the same spikes whatever the
placement: that is what makes placement invisible (contract 3.3, 4.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from spikefab.hdl.layouts import (
    NEURON_PARAMS,
    NEURON_STATE,
    CoreMem,
    CoreReg,
    SystemConfig,
    SystemMem,
    SystemReg,
)
from spikefab.hdl.protocol import STATUS_FIELDS, ErrorCode, Op, Target
from spikefab.sim import arith
from spikefab.sim.golden import expand_ranges

__all__ = ["SystemModel", "field", "pack_fields"]


def field(words: np.ndarray, layout: data.StructLayout, name: str) -> np.ndarray:
    """Extract one field of packed words, sign-extended where the field is signed."""
    f = layout[name]
    shape = Shape.cast(f.shape)
    w = np.asarray(words, dtype=np.uint64)
    v = ((w >> np.uint64(f.offset)) & np.uint64((1 << shape.width) - 1)).astype(np.int64)
    if shape.signed:
        v = np.where(v >= 1 << (shape.width - 1), v - (1 << shape.width), v)
    return v


def pack_fields(layout: data.StructLayout, **values: np.ndarray) -> np.ndarray:
    """Pack arrays of field values into words (the inverse of :func:`field`)."""
    out = None
    for name, f in layout:
        shape = Shape.cast(f.shape)
        v = np.asarray(values[name], dtype=np.int64) & ((1 << shape.width) - 1)
        v = v.astype(np.uint64) << np.uint64(f.offset)
        out = v if out is None else out | v
    assert out is not None
    return out


class _RefusedError(Exception):
    def __init__(self, code: ErrorCode):
        self.code = code


class SystemModel:
    """A system of cores and a router, computed in numpy from its memories.

    Parameters
    ----------
    config
        The sizes of the system it stands for.
    """

    def __init__(self, config: SystemConfig):
        self.config = config
        c = config.core
        self._mem: dict[tuple[int, int], np.ndarray] = {}
        for k in range(config.cores):
            for m in CoreMem:
                if m not in (CoreMem.STATE, CoreMem.RING, CoreMem.REGS):
                    self._mem[(k, m.value)] = np.zeros(c.depth_of(m), dtype=np.uint64)
        for m in (SystemMem.ROUTE_POINTERS, SystemMem.ROUTE_ENTRIES):
            self._mem[(Target.SYSTEM, m.value)] = np.zeros(config.depth_of(m), dtype=np.uint64)
        n = config.cores * c.neurons
        self.u = np.zeros(n, dtype=np.int64)
        self.v = np.zeros(n, dtype=np.int64)
        self.ref = np.zeros(n, dtype=np.int64)
        self.ring = np.zeros((c.delay_slots, n), dtype=np.int64)
        self.now = 0
        self.step_count = 0
        self.counters = dict.fromkeys(SystemReg, 0)
        self._injected: list[int] = []
        self._dirty = True

    # requests ----------------------------------------------------------------------------
    def info(self):  # type: ignore[no-untyped-def]
        """Return the sizes, as a :class:`~spikefab.host.link.DeviceInfo`."""
        from spikefab.hdl.executor import info_bytes
        from spikefab.host.link import DeviceInfo

        return DeviceInfo.from_body(info_bytes(self.config))

    def _check(self, target: int, mem: int, addr: int, count: int) -> None:
        cfg = self.config
        if target == Target.SYSTEM:
            depths = {m.value: cfg.depth_of(m) for m in SystemMem}
        elif target < cfg.cores:
            depths = {m.value: cfg.core.depth_of(m) for m in CoreMem}
        else:
            raise _RefusedError(ErrorCode.ADDRESS)
        if mem not in depths or addr + count > depths[mem]:
            raise _RefusedError(ErrorCode.ADDRESS)

    def write(self, target: int, mem: int, addr: int, words: Sequence[int]) -> None:
        """Write consecutive words of a memory (as a WRITE request)."""
        self._guard(self._check, target, mem, addr, len(words))
        w = np.asarray([int(x) for x in words], dtype=np.uint64)
        c = self.config.core
        N = c.neurons
        sl = slice(addr, addr + len(w))
        if target == Target.SYSTEM:
            if mem == SystemMem.REGS.value:
                for i, value in zip(range(addr, addr + len(w)), w, strict=True):
                    reg = SystemReg(i)
                    if reg == SystemReg.STEP:
                        self.step_count = int(value)
                    elif reg in (
                        SystemReg.HOST_SPIKES,
                        SystemReg.MAX_CORE_FIFO,
                        SystemReg.MAX_SPIKE_FIFO,
                    ):
                        self.counters[reg] = int(value)
                return
            self._mem[(target, mem)][sl] = w
            self._dirty = True
            return
        base = target * N
        if mem == CoreMem.STATE.value:
            g = slice(base + addr, base + addr + len(w))
            self.u[g] = field(w, NEURON_STATE, "u")
            self.v[g] = field(w, NEURON_STATE, "v")
            self.ref[g] = field(w, NEURON_STATE, "ref")
        elif mem == CoreMem.RING.value:
            idx = np.arange(addr, addr + len(w))
            self.ring[idx // N, base + idx % N] = field(w, c.ring_layout, "acc")
        elif mem == CoreMem.REGS.value:
            if addr <= CoreReg.NOW < addr + len(w):
                self.now = int(w[CoreReg.NOW - addr]) % c.delay_slots
        else:
            self._mem[(target, mem)][sl] = w
            self._dirty = True

    def read(self, target: int, mem: int, addr: int, count: int) -> list[int]:
        """Read consecutive words of a memory (as a READ request)."""
        self._guard(self._check, target, mem, addr, count)
        c = self.config.core
        N = c.neurons
        if target == Target.SYSTEM:
            if mem == SystemMem.REGS.value:
                regs = self.status()
                return [regs[SystemReg(i).name.lower()] for i in range(addr, addr + count)]
            return [int(x) for x in self._mem[(target, mem)][addr : addr + count]]
        base = target * N
        if mem == CoreMem.STATE.value:
            g = slice(base + addr, base + addr + count)
            words = pack_fields(NEURON_STATE, u=self.u[g], v=self.v[g], ref=self.ref[g])
        elif mem == CoreMem.RING.value:
            idx = np.arange(addr, addr + count)
            words = pack_fields(c.ring_layout, acc=self.ring[idx // N, base + idx % N])
        elif mem == CoreMem.REGS.value:
            regs = {CoreReg.NOW: self.now, CoreReg.STEPS: self.step_count}
            return [int(regs.get(CoreReg(i), 0)) for i in range(addr, addr + count)]
        else:
            words = self._mem[(target, mem)][addr : addr + count]
        return [int(x) for x in words]

    def inject(self, sources: Sequence[int]) -> None:
        """Queue sources that spike in the next step (as an INJECT request)."""
        if len(self._injected) + len(sources) > self.config.inject_depth:
            self._refuse(ErrorCode.FULL, Op.INJECT)
        if any(not 0 <= int(s) < self.config.sources for s in sources):
            self._refuse(ErrorCode.ADDRESS, Op.INJECT)
        self._injected += [int(s) for s in sources]

    def status(self) -> dict[str, int]:
        """Return the system registers, as STATUS does."""
        regs = dict(self.counters)
        regs[SystemReg.STEP] = self.step_count
        return {r.name.lower(): int(regs.get(r, 0)) for r in list(SystemReg)[: len(STATUS_FIELDS)]}

    def run(
        self,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None = None,
    ) -> None:
        """Run ``steps`` steps, reporting host spikes as a RUN does."""
        if self._dirty:
            self._decode()
        for _ in range(steps):
            t = self.step_count
            host = self._step()
            if host.size:
                on_spikes(t, [int(g) for g in host])
            self.counters[SystemReg.HOST_SPIKES] += int(host.size)
            if on_step is not None:
                on_step(t, int(host.size))

    def close(self) -> None:
        """Nothing to release."""

    # internals ---------------------------------------------------------------------------
    def _guard(self, check: Callable[..., None], *args: int) -> None:
        try:
            check(*args)
        except _RefusedError as e:
            self._refuse(e.code, Op.WRITE)

    def _refuse(self, code: ErrorCode, op: Op) -> None:
        from spikefab.host.link import DeviceError

        raise DeviceError(code.value, op.value, f"{op.name} on the golden system model")

    def _decode(self) -> None:
        """Turn the static memories into a CSR of senders -> (target, value, delay)."""
        cfg = self.config
        c = cfg.core
        C, N = cfg.cores, c.neurons
        params = np.concatenate([self._mem[(k, CoreMem.PARAMS.value)] for k in range(C)])
        self.p = {name: field(params, NEURON_PARAMS, name) for name, _ in NEURON_PARAMS}
        ptrs = self._mem[(Target.SYSTEM, SystemMem.ROUTE_POINTERS.value)]
        ents = self._mem[(Target.SYSTEM, SystemMem.ROUTE_ENTRIES.value)]
        p_start = field(ptrs, cfg.route_pointer_layout, "start")
        p_count = field(ptrs, cfg.route_pointer_layout, "count")
        e_dest = field(ents, cfg.route_entry_layout, "dest")
        e_axon = field(ents, cfg.route_entry_layout, "axon")
        # every (sender, entry) pair
        senders = np.repeat(np.arange(cfg.pointer_depth), p_count)
        entry = expand_ranges(p_start, p_count)
        entry = np.minimum(entry, cfg.route_entries - 1)
        dest, axon = e_dest[entry], e_axon[entry]
        self.route_count = p_count
        self.host_route = np.zeros(cfg.pointer_depth, dtype=bool)
        self.host_route[senders[dest == C]] = True
        to_core = dest < C
        senders, dest, axon = senders[to_core], dest[to_core], axon[to_core]
        # each (core, axon) -> its synapse entries
        tgt, val, dly, snd = [], [], [], []
        for k in range(C):
            sel = dest == k
            if not sel.any():
                continue
            ax = self._mem[(k, CoreMem.AXONS.value)]
            a_start = field(ax, c.axon_layout, "start")[axon[sel]]
            a_count = field(ax, c.axon_layout, "count")[axon[sel]]
            syn = expand_ranges(a_start, a_count)
            syn = np.minimum(syn, c.synapses - 1)
            words = self._mem[(k, CoreMem.SYNAPSES.value)][syn]
            tgt.append(k * N + field(words, c.synapse_layout, "target"))
            val.append(
                field(words, c.synapse_layout, "weight")
                << field(words, c.synapse_layout, "weight_exp")
            )
            dly.append(field(words, c.synapse_layout, "delay") + 1)
            snd.append(np.repeat(senders[sel], a_count))
        cat = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in (snd, tgt, val, dly)]
        snd_a, tgt_a, val_a, dly_a = cat
        order = np.argsort(snd_a, kind="stable")
        self.syn_target, self.syn_value, self.syn_delay = tgt_a[order], val_a[order], dly_a[order]
        self.syn_start = np.searchsorted(snd_a[order], np.arange(cfg.pointer_depth))
        self.syn_count = np.diff(np.append(self.syn_start, order.size))
        self._dirty = False

    def _step(self) -> np.ndarray:
        cfg = self.config
        C, N, D = cfg.cores, cfg.core.neurons, cfg.core.delay_slots
        t_slot = self.now
        acc = self.ring[t_slot].copy()
        self.ring[t_slot] = 0
        p = self.p
        self.u, self.v, self.ref, spiked = arith.lif_update(
            self.u,
            self.v,
            self.ref,
            acc,
            p["du"],
            p["dv"],
            p["vth"],
            p["bias_mant"],
            p["bias_exp"],
            p["refractory"],
            p["reset_subtract"].astype(bool),
        )
        gids = np.flatnonzero(spiked)
        senders = np.concatenate([gids, C * N + np.asarray(self._injected, dtype=np.int64)])
        self._injected = []
        self.counters[SystemReg.ROUTER_EVENTS] += int(self.route_count[senders].sum())
        syn = expand_ranges(self.syn_start[senders], self.syn_count[senders])
        if syn.size:
            slot = (t_slot + self.syn_delay[syn]) % D
            np.add.at(self.ring, (slot, self.syn_target[syn]), self.syn_value[syn])
        self.now = (self.now + 1) % D
        self.step_count += 1
        return gids[self.host_route[gids]]
