"""The configuration port of the neuron core and its registers (``docs/contract.md`` 6.1, 6.2).

The port takes one request at a time on ``i_cfg`` (the request of :mod:`~spikefab.hdl.cfg_bus`)
when the core allows it, and holds it for the core's memory ports; a read's word comes back
into :attr:`ConfigPort.o_cfg` four cycles after the request was taken (contract 6.3). The
core's registers (``CoreReg``: ``NOW``, the statistics counters and the learning unit's)
live here, counted by the core and written and read through the port.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from spikefab.hdl.cfg_bus import cfg_reply_signature, cfg_request_signature
from spikefab.hdl.layouts import (
    CFG_DATA_BITS,
    NEURON_PARAMS,
    NEURON_STATE,
    POST_TRACE,
    STDP_AMP,
    STDP_BUMP,
    STDP_CLAMP,
    STDP_DECAY,
    CoreConfig,
    CoreMem,
    CoreReg,
)

__all__ = ["ConfigPort"]


class _Counter:
    """A 32-bit counter register (contract 6.1), counted in two 16-bit halves.

    The high half counts in the cycle after the low half wraps, so that no carry chain is
    longer than 16 bits. The value is whole again one cycle after the last count, long before
    the configuration port (served only between steps) can read it.
    """

    def __init__(self, name: str, present: bool = True):
        self.present = present  # False: reads 0, counts nothing, ignores writes (no logic)
        self.lo = Signal(16, name=f"{name}_lo")
        self.hi = Signal(16, name=f"{name}_hi")
        self.wrap = Signal(name=f"{name}_wrap")  # the low half wrapped in the last cycle
        self.value = Cat(self.lo, self.hi) if present else Const(0, 32)

    def count(self, m: Module, enable) -> None:  # type: ignore[no-untyped-def]
        if not self.present:
            return
        with m.If(enable):
            m.d.sync += self.lo.eq(self.lo + 1)
        m.d.sync += self.wrap.eq(enable & (self.lo == 0xFFFF))
        with m.If(self.wrap):
            m.d.sync += self.hi.eq(self.hi + 1)

    def load(self, m: Module, data) -> None:  # type: ignore[no-untyped-def]
        if not self.present:
            return
        m.d.sync += [self.lo.eq(data[:16]), self.hi.eq(data[16:32]), self.wrap.eq(0)]


#: The counters, by the ``count_*`` port that counts them.
COUNTERS = {
    "events": CoreReg.EVENTS,
    "delivery": CoreReg.DELIVERY_CYCLES,
    "update": CoreReg.UPDATE_CYCLES,
    "spikes": CoreReg.SPIKES,
    "steps": CoreReg.STEPS,
    "learn": CoreReg.LEARN_CYCLES,
}

#: The learning unit's rule registers, by port name.
RULE = {
    "amp": CoreReg.STDP_AMP,
    "decay": CoreReg.STDP_DECAY,
    "bump": CoreReg.STDP_BUMP,
    "clamp": CoreReg.STDP_CLAMP,
    "plastic_axons": CoreReg.PLASTIC_AXONS,
    "learn_neurons": CoreReg.LEARN_NEURONS,
}


class ConfigPort(wiring.Component):
    """The configuration port of a core: requests, replies and the core's registers.

    A request is taken when ``enable`` and ``i_cfg.valid`` are high (``accepted``) and held
    in ``req``. In the next cycle (ACCESS) ``sel`` has the bit of its memory set, so that
    the core's memory ports serve it: a write is done (``done``), a read's word arrives
    in the cycle after (WAIT, a register's value is selected here), is selected into the
    reply in READ and offered on ``o_cfg`` from REPLY on (``done`` when taken). A request to
    ``CoreMem.REGS`` writes or reads the registers below.

    Parameters
    ----------
    config
        Sizes of the core (:class:`~spikefab.hdl.layouts.CoreConfig`); without ``stats`` the
        counters read 0, without ``learning`` the learning unit's registers do. With the
        synapse table in SDRAM, the port has a ``hold`` input.

    Attributes
    ----------
    i_cfg : In(cfg_request_signature(CoreMem, config.addr_bits))
        Requests.
    o_cfg : Out(cfg_reply_signature())
        The word of each read.
    enable : In(1)
        The core can serve a request (its delivery phase, with the pipeline empty).
    accepted : Out(1)
        A request is taken in this cycle.
    done : Out(1)
        The access ends in this cycle (the core goes back to delivery).
    req : Out(request layout)
        The request taken last, registered.
    sel : Out(8)
        Bit ``mem.value``: the core's ports serve the request to ``mem`` in this cycle.
    state_q, params_q, ring_q, axon_q, syn_q : In
        The core's read registers (the word a read of that memory returns, in READ).
    trace_q : In(POST_TRACE.size)
        The learning unit's trace word (cores with ``learning``).
    now : Out(max(1, log2 D))
        ``NOW``; ``advance`` (In(1)) adds one (mod D).
    count_events, count_delivery, count_update, count_spikes, count_steps : In(1)
        Count ``EVENTS``, ``DELIVERY_CYCLES``, ``UPDATE_CYCLES``, ``SPIKES``, ``STEPS``.
    count_learn : In(1)
        Count ``LEARN_CYCLES`` (cores with ``learning``).
    amp, decay, bump, clamp, plastic_axons, learn_neurons : Out
        The learning unit's rule (cores with ``learning``).
    pending : In(1)
        ``LEARN_PENDING``, kept by the core; ``pending_write`` (Out(1)) pulses when a
        request writes it (the new value is ``req.data[0]``); cores with ``learning``.
    hold : In(1)
        Stay in ACCESS while high (a memory that answers after a variable time: the SDRAM
        synapse table); a read's word must be in its read register when ``hold`` falls.
        Cores with ``synapse_memory="sdram"``.
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        self._config = cfg = config
        request = cfg_request_signature(CoreMem, cfg.addr_bits)
        members = {
            "i_cfg": In(request),
            "o_cfg": Out(cfg_reply_signature()),
            "enable": In(1),
            "accepted": Out(1),
            "done": Out(1),
            "req": Out(request.members["payload"].shape),
            "sel": Out(len(CoreMem)),
            "state_q": In(NEURON_STATE),
            "params_q": In(NEURON_PARAMS),
            "ring_q": In(signed(cfg.acc_bits)),
            "axon_q": In(cfg.axon_layout.size),
            "syn_q": In(cfg.synapse_layout.size),
            "now": Out(max(1, ceil_log2(cfg.delay_slots))),
            "advance": In(1),
        }
        if cfg.synapse_memory == "sdram":
            members["hold"] = In(1)
        members |= {f"count_{name}": In(1) for name in COUNTERS if name != "learn"}
        if cfg.learning:
            members |= {
                "trace_q": In(POST_TRACE.size),
                "count_learn": In(1),
                "pending": In(1),
                "pending_write": Out(1),
                "amp": Out(STDP_AMP),
                "decay": Out(STDP_DECAY),
                "bump": Out(STDP_BUMP),
                "clamp": Out(STDP_CLAMP),
                "plastic_axons": Out(cfg.axon_bits + 1),
                "learn_neurons": Out(cfg.neuron_bits + 1),
            }
        super().__init__(members)

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        D = cfg.delay_slots
        m = Module()
        learning = cfg.learning

        # registers ----------------------------------------------------------------------------
        now = self.now if D > 1 else Const(0, 1)
        if D > 1:
            with m.If(self.advance):
                m.d.sync += now.eq(now + 1)
        counters = {}
        for name, r in COUNTERS.items():
            if name == "learn" and not learning:
                continue
            counters[r] = counter = _Counter(name, cfg.stats)
            counter.count(m, getattr(self, f"count_{name}"))
        rule = {r: getattr(self, name) for name, r in RULE.items()} if learning else {}
        regs = {CoreReg.NOW: now} | {r: c.value for r, c in counters.items()}
        regs |= {r: Value.cast(sig) for r, sig in rule.items()}
        if learning:
            regs[CoreReg.LEARN_PENDING] = self.pending

        # requests -----------------------------------------------------------------------------
        cfg_q = self.req
        reply = Signal(CFG_DATA_BITS)
        m.d.comb += self.o_cfg.payload.data.eq(reply)
        req, data = cfg_q, cfg_q.data
        # reg_hit[r]: the registered request is for register r (decoded when it is accepted);
        # reg_write[r]: it writes register r in this cycle
        reg_hit = {r: Signal(name=f"cfg_hit_{r.name.lower()}") for r in regs}
        reg_write = {r: Signal(name=f"cfg_write_{r.name.lower()}") for r in regs}
        if D > 1:
            with m.If(reg_write[CoreReg.NOW]):
                m.d.sync += now.eq(data[: len(now)])
        for r, counter in counters.items():
            with m.If(reg_write[r]):
                counter.load(m, data)
        for r, sig in rule.items():
            with m.If(reg_write[r]):
                m.d.sync += Value.cast(sig).eq(data[: len(Value.cast(sig))])
        if learning:
            m.d.comb += self.pending_write.eq(reg_write[CoreReg.LEARN_PENDING])
        reg_q = Signal(32)  # the register a read asks for
        # the selects are set for the one cycle of ACCESS
        accept = self.accepted
        new = self.i_cfg.payload
        m.d.comb += [
            accept.eq(self.enable & self.i_cfg.valid),
            self.i_cfg.ready.eq(accept),
        ]
        with m.If(accept):
            m.d.sync += cfg_q.eq(new)
            for r in regs:
                m.d.sync += reg_hit[r].eq(new.addr == r)
        for mem in CoreMem:
            m.d.sync += self.sel[mem.value].eq(accept & (new.mem == mem))
        for r, write in reg_write.items():
            m.d.sync += write.eq(accept & new.write & (new.mem == CoreMem.REGS) & (new.addr == r))

        # phases: ACCESS, WAIT, READ, REPLY (one flip-flop each) ---------------------------------
        cfg_access, cfg_wait, cfg_read, cfg_reply = Signal(), Signal(), Signal(), Signal()
        m.d.comb += self.o_cfg.valid.eq(cfg_reply)
        if cfg.synapse_memory == "sdram":
            # ACCESS lasts while `hold` is high
            served = cfg_access & ~self.hold
            m.d.sync += cfg_access.eq(accept | (cfg_access & self.hold))
        else:
            served = cfg_access
            m.d.sync += cfg_access.eq(accept)
        wait = served & ~req.write
        m.d.comb += self.done.eq((served & req.write) | (cfg_reply & self.o_cfg.ready))
        m.d.sync += [
            cfg_wait.eq(wait),
            cfg_read.eq(cfg_wait),
            cfg_reply.eq(cfg_read | (cfg_reply & ~self.o_cfg.ready)),
        ]
        # WAIT: the word read arrives (a register's value is selected here); READ: it is
        # selected into `reply`
        with m.If(cfg_wait):
            m.d.sync += reg_q.eq(reduce(or_, (Mux(reg_hit[r], sig, 0) for r, sig in regs.items())))
        with m.If(cfg_read), m.Switch(req.mem):
            with m.Case(CoreMem.STATE):
                m.d.sync += reply.eq(self.state_q.as_value())
            with m.Case(CoreMem.PARAMS):
                m.d.sync += reply.eq(self.params_q.as_value())
            with m.Case(CoreMem.RING):
                m.d.sync += reply.eq(self.ring_q.as_unsigned())
            with m.Case(CoreMem.AXONS):
                m.d.sync += reply.eq(self.axon_q)
            with m.Case(CoreMem.SYNAPSES):
                m.d.sync += reply.eq(self.syn_q)
            with m.Case(CoreMem.REGS):
                m.d.sync += reply.eq(reg_q)
            if learning:
                with m.Case(CoreMem.PRE_TRACES, CoreMem.POST_TRACES):
                    m.d.sync += reply.eq(self.trace_q)
            with m.Default():
                m.d.sync += reply.eq(0)
        return m
