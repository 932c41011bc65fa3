"""The golden model of a whole system, run from its memories: an in-process device.

:class:`SystemModel` answers the same requests as the hardware (``info``, ``write``,
``clear``, ``read``, ``inject``, ``run``, ``status``; the ``Device`` of
:mod:`spikefab.host.runtime`)
and keeps the same memories, but computes each step with the contract's arithmetic over
numpy arrays decoded from those memories. Running an image on it and running the network
on :class:`~spikefab.sim.golden.GoldenModel` must give the same spikes whatever the
placement: that is what makes placement invisible (contract 3.3, 4.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from spikefab.hdl.layouts import (
    CORE_COUNTERS,
    NEURON_PARAMS,
    NEURON_STATE,
    CoreMem,
    CoreReg,
    SystemConfig,
    SystemMem,
    SystemReg,
    expand_ranges,
    field_of,
    pack_array,
    replace_field,
)
from spikefab.hdl.protocol import (
    LATE,
    STATUS_REGS,
    DeviceError,
    DeviceInfo,
    ErrorCode,
    Op,
    Target,
)
from spikefab.sim import arith

__all__ = ["SystemModel"]


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
        # the registers of each core beyond NOW (the learning rule, contract 6.4)
        self.core_regs: list[dict[CoreReg, int]] = [{} for _ in range(config.cores)]
        self._injected: list[int] = []
        self._dirty = True

    # requests ----------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        """Return the sizes, as R_INFO does."""
        return DeviceInfo.from_config(self.config)

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

    def clear(self, target: int, mem: int, addr: int, count: int, wait: bool = True) -> None:
        """Write ``count`` zero words from ``addr`` on (as a CLEAR request)."""
        self._guard(self._check, target, mem, addr, count, op=Op.CLEAR)
        self.write(target, mem, addr, [0] * count)

    def sync(self, keep: int = 0) -> None:
        """Nothing is ever in flight."""

    def write(
        self, target: int, mem: int, addr: int, words: Sequence[int], wait: bool = True
    ) -> None:
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
            self.u[g] = field_of(w, NEURON_STATE, "u")
            self.v[g] = field_of(w, NEURON_STATE, "v")
            self.ref[g] = field_of(w, NEURON_STATE, "ref")
        elif mem == CoreMem.RING.value:
            idx = np.arange(addr, addr + len(w))
            self.ring[idx // N, base + idx % N] = field_of(w, c.ring_layout, "acc")
        elif mem == CoreMem.REGS.value:
            if addr <= CoreReg.NOW < addr + len(w):
                self.now = int(w[CoreReg.NOW - addr]) % c.delay_slots
            if c.learning:
                for i, value in zip(range(addr, addr + len(w)), w, strict=True):
                    self.core_regs[target][CoreReg(i)] = int(value)
        else:
            self._mem[(target, mem)][sl] = w
            self._dirty = True

    def read(
        self,
        target: int,
        mem: int,
        addr: int,
        count: int,
        then: Callable[[list[int]], None] | None = None,
    ) -> list[int] | None:
        """Read consecutive words of a memory (as a READ request); with ``then``, pass
        them to it instead of returning them."""
        if then is not None:
            then(self.read(target, mem, addr, count))
            return None
        self._guard(self._check, target, mem, addr, count, op=Op.READ)
        c = self.config.core
        N = c.neurons
        if target == Target.SYSTEM:
            if mem == SystemMem.REGS.value:
                # the step-cycle counters read 0: this model counts no clock cycles
                regs = self.status()
                return [regs.get(SystemReg(i).name.lower(), 0) for i in range(addr, addr + count)]
            return [int(x) for x in self._mem[(target, mem)][addr : addr + count]]
        base = target * N
        if mem == CoreMem.STATE.value:
            g = slice(base + addr, base + addr + count)
            words = pack_array(NEURON_STATE, u=self.u[g], v=self.v[g], ref=self.ref[g])
        elif mem == CoreMem.RING.value:
            idx = np.arange(addr, addr + count)
            words = pack_array(c.ring_layout, acc=self.ring[idx // N, base + idx % N])
        elif mem == CoreMem.REGS.value:
            regs = {**self.core_regs[target], CoreReg.LEARN_PENDING: 0}
            regs |= {CoreReg.NOW: self.now, CoreReg.STEPS: self.step_count}
            if not c.stats:  # the counters read 0 (contract 6.1)
                regs |= dict.fromkeys(CORE_COUNTERS, 0)
            return [int(regs.get(CoreReg(i), 0)) for i in range(addr, addr + count)]
        else:
            words = self._mem[(target, mem)][addr : addr + count]
        return [int(x) for x in words]

    def inject(self, sources: Sequence[int]) -> None:
        """Queue sources that spike in the next step (as an INJECT request)."""
        if len(self._injected) + len(sources) > self.config.inject_depth:
            self._refuse(ErrorCode.FULL, Op.INJECT)
        if any(not 0 <= int(s) & ~LATE < self.config.sources for s in sources):
            self._refuse(ErrorCode.ADDRESS, Op.INJECT)
        self._injected += [int(s) for s in sources]

    #: This model counts no clock cycles: its STEP_CYCLES and MAX_STEP_CYCLES read 0.
    counts_cycles = False

    def status(self) -> dict[str, int]:
        """Return the system registers, as STATUS does."""
        # without the statistics counters only STEP counts (contract 7.2)
        regs = dict(self.counters) if self.config.core.stats else {}
        regs[SystemReg.STEP] = self.step_count
        return {r.name.lower(): int(regs.get(r, 0)) for r in STATUS_REGS}

    def run(
        self,
        steps: int,
        on_spikes: Callable[[int, list[int]], None],
        on_step: Callable[[int, int], None] | None = None,
        inputs: Sequence[Sequence[int]] = (),
        wait: bool = True,
    ) -> None:
        """Run ``steps`` steps, reporting host spikes as a RUN does.

        ``inputs[k]`` are injected before the k-th step, as a RUN's inputs.
        """
        if steps < 0 or len(inputs) > steps:
            raise ValueError(f"a run of {steps} steps cannot take inputs for {len(inputs)}")
        # a RUN checks every input before its first step (contract 8.2)
        self._guard(self._check_inputs, inputs, op=Op.RUN)
        if self._dirty:
            self._decode()
        for k in range(steps):
            if k < len(inputs):
                self._injected += [int(s) for s in inputs[k]]
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
    def _guard(self, check: Callable[..., None], *args: object, op: Op = Op.WRITE) -> None:
        try:
            check(*args)
        except _RefusedError as e:
            self._refuse(e.code, op)

    def _check_inputs(self, inputs: Sequence[Sequence[int]]) -> None:
        for k, ids in enumerate(inputs):
            if any(not 0 <= int(s) & ~LATE < self.config.sources for s in ids):
                raise _RefusedError(ErrorCode.ADDRESS)
            if len(ids) + (len(self._injected) if k == 0 else 0) > self.config.inject_depth:
                raise _RefusedError(ErrorCode.FULL)

    def _refuse(self, code: ErrorCode, op: Op) -> None:
        raise DeviceError(code.value, op.value, f"{op.name} on the golden system model")

    def _decode(self) -> None:
        """Turn the static memories into a CSR of senders -> (target, value, delay)."""
        cfg = self.config
        c = cfg.core
        C, N = cfg.cores, c.neurons
        params = np.concatenate([self._mem[(k, CoreMem.PARAMS.value)] for k in range(C)])
        self.p = {name: field_of(params, NEURON_PARAMS, name) for name, _ in NEURON_PARAMS}
        ptrs = self._mem[(Target.SYSTEM, SystemMem.ROUTE_POINTERS.value)]
        ents = self._mem[(Target.SYSTEM, SystemMem.ROUTE_ENTRIES.value)]
        p_start = field_of(ptrs, cfg.route_pointer_layout, "start")
        p_count = field_of(ptrs, cfg.route_pointer_layout, "count")
        e_dest = field_of(ents, cfg.route_entry_layout, "dest")
        e_axon = field_of(ents, cfg.route_entry_layout, "axon")
        # every (sender, entry) pair
        senders = np.repeat(np.arange(cfg.pointer_depth), p_count)
        entry = expand_ranges(p_start, p_count)
        entry = np.minimum(entry, cfg.route_entries - 1)
        dest, axon = e_dest[entry], e_axon[entry]
        self.route_count = p_count
        self.route_sender, self.route_dest, self.route_axon = senders, dest, axon
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
            a_start = field_of(ax, c.axon_layout, "start")[axon[sel]]
            a_count = field_of(ax, c.axon_layout, "count")[axon[sel]]
            syn = expand_ranges(a_start, a_count)
            syn = np.minimum(syn, c.synapses - 1)
            words = self._mem[(k, CoreMem.SYNAPSES.value)][syn]
            tgt.append(k * N + field_of(words, c.synapse_layout, "target"))
            val.append(
                field_of(words, c.synapse_layout, "weight")
                << field_of(words, c.synapse_layout, "weight_exp")
            )
            dly.append(field_of(words, c.synapse_layout, "delay") + 1)
            snd.append(np.repeat(senders[sel], a_count))
        cat = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in (snd, tgt, val, dly)]
        snd_a, tgt_a, val_a, dly_a = cat
        order = np.argsort(snd_a, kind="stable")
        self.syn_target, self.syn_value, self.syn_delay = tgt_a[order], val_a[order], dly_a[order]
        self.syn_start = np.searchsorted(snd_a[order], np.arange(cfg.pointer_depth))
        self.syn_count = np.diff(np.append(self.syn_start, order.size))
        self._dirty = False

    def _step(self) -> np.ndarray:
        if self._dirty:  # a learning phase of the step before changed weights
            self._decode()
        cfg = self.config
        C, N, D = cfg.cores, cfg.core.neurons, cfg.core.delay_slots
        t_slot = self.now
        # late sources (contract 8.2): delivered before the step, as if sent the step before
        injected = np.asarray(self._injected, dtype=np.int64)
        late = (injected & LATE) != 0
        if late.any():
            senders = C * N + (injected[late] & ~LATE)
            self.counters[SystemReg.ROUTER_EVENTS] += int(self.route_count[senders].sum())
            syn = expand_ranges(self.syn_start[senders], self.syn_count[senders])
            if syn.size:
                slot = (t_slot - 1 + self.syn_delay[syn]) % D
                np.add.at(self.ring, (slot, self.syn_target[syn]), self.syn_value[syn])
            self._injected = injected[~late].tolist()
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
        if cfg.core.learning:
            for k in range(C):
                if self.core_regs[k].get(CoreReg.PLASTIC_AXONS, 0):
                    self._learn(k, senders, spiked[k * N : (k + 1) * N])
        self.now = (self.now + 1) % D
        self.step_count += 1
        return gids[self.host_route[gids]]

    def _learn(self, k: int, senders: np.ndarray, post: np.ndarray) -> None:
        """The learning phase of core ``k`` (contract 6.4), right after its step's delivery.

        The hardware runs it at the start of the next step or on ``LEARN``; either way the
        weights, traces and LFSRs it leaves are these.
        """
        from spikefab.hdl.layouts import (
            POST_TRACE,
            PRE_TRACE,
            STDP_AMP,
            STDP_BUMP,
            STDP_CLAMP,
            STDP_DECAY,
            unpack,
        )

        c = self.config.core
        regs = self.core_regs[k]
        amp = unpack(STDP_AMP, regs.get(CoreReg.STDP_AMP, 0))
        dec = unpack(STDP_DECAY, regs.get(CoreReg.STDP_DECAY, 0))
        bump = unpack(STDP_BUMP, regs.get(CoreReg.STDP_BUMP, 0))
        clamp = unpack(STDP_CLAMP, regs.get(CoreReg.STDP_CLAMP, 0))
        PA = regs[CoreReg.PLASTIC_AXONS]
        LN = regs.get(CoreReg.LEARN_NEURONS, 0)
        # the events of this step on the core's plastic axons
        hit = np.isin(self.route_sender, senders) & (self.route_dest == k)
        pre = np.zeros(c.axons, dtype=bool)
        pre[self.route_axon[hit]] = True
        pre[PA:] = False
        pre_w = self._mem[(k, CoreMem.PRE_TRACES.value)]
        post_w = self._mem[(k, CoreMem.POST_TRACES.value)]
        x = field_of(pre_w, PRE_TRACE, "x")
        y = field_of(post_w, POST_TRACE, "y")
        lfsr = field_of(post_w, POST_TRACE, "lfsr")
        xd = arith.decay(x, dec["d_pre"])
        # every entry of the plastic axons
        ax = self._mem[(k, CoreMem.AXONS.value)][:PA]
        start, count = field_of(ax, c.axon_layout, "start"), field_of(ax, c.axon_layout, "count")
        e = expand_ranges(start, count)
        e_axon = np.repeat(np.arange(PA), count)
        syn = self._mem[(k, CoreMem.SYNAPSES.value)]
        j = field_of(syn[e], c.synapse_layout, "target")
        w = field_of(syn[e], c.synapse_layout, "weight")
        p_e, q_e = pre[e_axon], post[j]
        act = p_e | q_e
        if act.any():
            rnd = arith.stdp_rnd(amp["shift"], bool(amp["stochastic"]), lfsr[j])
            yd = arith.decay(y[j], dec["d_post"])
            dw = arith.stdp_dw(
                xd[e_axon], yd, p_e, q_e, amp["a_plus"], amp["a_minus"], amp["shift"], rnd
            )
            w_new = np.where(act, arith.stdp_weight(w, dw, clamp["w_min"], clamp["w_max"]), w)
            changed = w_new != w
            if changed.any():
                ec = e[changed]
                syn[ec] = replace_field(syn[ec], c.synapse_layout, "weight", w_new[changed])
                self._dirty = True
        # traces: x of the plastic axons, y and the LFSR of neurons 0 .. LN - 1
        x_new = x.copy()
        x_new[:PA] = arith.trace_bump(xd[:PA], bump["bump_pre"], pre[:PA])
        pre_w[:] = pack_array(PRE_TRACE, x=x_new, spiked=np.zeros_like(x_new))
        y_new, l_new = y.copy(), lfsr.copy()
        y_new[:LN] = arith.trace_bump(
            arith.decay(y[:LN], dec["d_post"]), bump["bump_post"], post[:LN]
        )
        if amp["stochastic"]:
            l_new[:LN] = arith.lfsr_advance(lfsr[:LN])
        post_w[:] = pack_array(POST_TRACE, y=y_new, lfsr=l_new, spiked=post.astype(np.int64))
