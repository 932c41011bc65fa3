"""The multi-core system: cores, their FIFOs, the router and the step controller.

``docs/contract.md`` section 7. A step of the system is:

1. *drain*: route the step's late sources (contract 8.2), and wait until every event of the
   previous step and every late source has been delivered (the router is idle, every FIFO is
   empty and every core is idle);
2. pulse ``step`` to every core, and let the router serve the host's injected sources;
3. wait until every core has finished its update (``done``);
4. wait until the router has routed every spike of the step and every injected source;
   then put a step-end marker behind the step's host spikes and count the step.

Spikes of step ``t`` are routed while and after the cores update ``t``; cores take the
events only in their next delivery phase, so a core's spikes never wait for its inputs
(each core's spike FIFO holds a whole step of spikes) and the system cannot deadlock.
Between runs the configuration port reads and writes every core memory, the router
tables and the system registers.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from spikefab.hdl.cfg_bus import cfg_reply_signature, cfg_request_layout
from spikefab.hdl.core import NeuronCore
from spikefab.hdl.layouts import SystemConfig, SystemMem, SystemReg
from spikefab.hdl.protocol import Target
from spikefab.hdl.router import Router
from spikefab.hdl.sdram import sdram_pins_signature
from spikefab.hdl.synapse_store import SDRAMOptions, sdram_options

__all__ = ["HOST_ITEM", "System", "system_request_layout"]

#: An item for the host: a spike's global id, or (``end`` = 1) the end of a step.
HOST_ITEM = data.StructLayout({"gid": unsigned(16), "end": unsigned(1)})


def system_request_layout() -> data.StructLayout:
    """A configuration request of the system: a core (or ``Target.SYSTEM``) and a word.

    The request of :mod:`~spikefab.hdl.cfg_bus` with an 8-bit ``target``, a 3-bit ``mem``
    (a :class:`~spikefab.hdl.layouts.CoreMem` or a :class:`~spikefab.hdl.layouts.SystemMem`,
    by target) and a 32-bit ``addr``.
    """
    return cfg_request_layout(unsigned(3), 32, target_bits=8)


class System(wiring.Component):
    """``config.cores`` neuron cores, the router and the step controller.

    Attributes
    ----------
    i_cfg : In(stream.Signature(system_request_layout()))
        Configuration requests; served only while no run is under way. The requester
        checks addresses (the host link does).
    o_cfg : Out(cfg_reply_signature())
        The word of each read request, in order.
    i_inject : In(stream.Signature(unsigned(16)))
        Source ids that spike in the next step run.
    inject_free : Out(16)
        Free places in the injection FIFO.
    run_steps : In(32), run_start : In(1), run_busy : Out(1)
        Start a run of ``run_steps`` steps with a pulse on ``run_start``.
    o_host : Out(stream.Signature(HOST_ITEM))
        Spikes for the host, each step closed by an end marker.
    step : Out(32)
        The number of the next step.
    frames, errors : In(32)
        Counters of the host link, readable as system registers.
    sdram : Out(sdram_pins_signature(sdram.geometry))
        The SDRAM's pins, when the core keeps its synapses there
        (``config.core.synapse_memory == "sdram"``; ``sdram`` gives the part and the clock,
        the ULX3S's by default: 50 MHz, in a clock domain of its own).
    """

    def __init__(self, config: SystemConfig, *, sdram: SDRAMOptions | None = None):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig, not {config!r}")
        self._config = config
        self._sdram = sdram_options(config, sdram)
        extra = {}
        if self._sdram is not None:
            extra["sdram"] = Out(sdram_pins_signature(self._sdram.geometry))
        super().__init__(
            extra
            | {
                "i_cfg": In(stream.Signature(system_request_layout())),
                "o_cfg": Out(cfg_reply_signature()),
                "i_inject": In(stream.Signature(unsigned(16))),
                "inject_free": Out(16),
                "run_steps": In(32),
                "run_start": In(1),
                "run_busy": Out(1),
                "o_host": Out(stream.Signature(HOST_ITEM)),
                "step": Out(32),
                "frames": In(32),
                "errors": In(32),
            }
        )

    @property
    def sdram_options(self) -> SDRAMOptions | None:
        """The SDRAM's options, or None when the system has no SDRAM."""
        return self._sdram

    @property
    def config(self) -> SystemConfig:
        return self._config

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        cfg = self._config
        C, N = cfg.cores, cfg.core.neurons
        m = Module()

        m.submodules.router = router = Router(cfg)
        cores, in_fifos, spike_fifos = [], [], []
        for k in range(C):
            core = NeuronCore(cfg.core, sdram=self._sdram)
            m.submodules[f"core{k}"] = core
            if self._sdram is not None:
                wiring.connect(m, core.sdram, wiring.flipped(self.sdram))
            in_fifo = fifo.SyncFIFOBuffered(width=cfg.core.axon_bits, depth=cfg.core_fifo_depth)
            spike_fifo = fifo.SyncFIFOBuffered(width=cfg.core.neuron_bits, depth=N)
            m.submodules[f"in_fifo{k}"] = in_fifo
            m.submodules[f"spike_fifo{k}"] = spike_fifo
            m.d.comb += [
                # router -> input FIFO -> core
                in_fifo.w_data.eq(router.o_events[k].payload.axon),
                in_fifo.w_en.eq(router.o_events[k].valid),
                router.o_events[k].ready.eq(in_fifo.w_rdy),
                core.i_events.payload.axon.eq(in_fifo.r_data),
                core.i_events.valid.eq(in_fifo.r_rdy),
                in_fifo.r_en.eq(core.i_events.ready),
                # core -> spike FIFO -> router
                spike_fifo.w_data.eq(core.o_spikes.payload.neuron),
                spike_fifo.w_en.eq(core.o_spikes.valid),
                core.o_spikes.ready.eq(spike_fifo.w_rdy),
                router.i_spikes[k].payload.neuron.eq(spike_fifo.r_data),
                router.i_spikes[k].valid.eq(spike_fifo.r_rdy),
                spike_fifo.r_en.eq(router.i_spikes[k].ready),
            ]
            cores.append(core)
            in_fifos.append(in_fifo)
            spike_fifos.append(spike_fifo)

        m.submodules.inject = inject = fifo.SyncFIFOBuffered(width=16, depth=cfg.inject_depth)
        m.d.comb += [
            inject.w_data.eq(self.i_inject.payload),
            inject.w_en.eq(self.i_inject.valid),
            self.i_inject.ready.eq(inject.w_rdy),
            self.inject_free.eq(cfg.inject_depth - inject.level),
            router.i_inject.payload.eq(inject.r_data),
            router.i_inject.valid.eq(inject.r_rdy),
            inject.r_en.eq(router.i_inject.ready),
        ]

        # host items: the router's spikes, and the controller's step-end markers
        m.submodules.host_fifo = host_fifo = fifo.SyncFIFOBuffered(width=17, depth=64)
        host_item = Signal(HOST_ITEM)
        m.d.comb += [
            self.o_host.payload.eq(host_fifo.r_data),
            self.o_host.valid.eq(host_fifo.r_rdy),
            host_fifo.r_en.eq(self.o_host.ready),
            host_fifo.w_data.eq(host_item),
        ]
        end_marker = Signal()
        with m.If(end_marker):
            m.d.comb += [host_item.end.eq(1), host_fifo.w_en.eq(1)]
        with m.Else():
            m.d.comb += [
                host_item.gid.eq(router.o_host.payload),
                host_fifo.w_en.eq(router.o_host.valid),
                router.o_host.ready.eq(host_fifo.w_rdy),
            ]

        # registers
        step = Signal(32)
        steps_left = Signal(32)
        host_spikes = Signal(32)
        max_core_fifo = Signal(32)
        max_spike_fifo = Signal(32)
        step_cycles = Signal(32)
        max_step_cycles = Signal(32)
        m.d.comb += self.step.eq(step)
        stats = cfg.core.stats  # without the statistics counters they stay 0
        if stats:
            with m.If(router.o_host.valid & router.o_host.ready):
                m.d.sync += host_spikes.eq(host_spikes + 1)
            for f in in_fifos:
                with m.If(f.level > max_core_fifo):
                    m.d.sync += max_core_fifo.eq(f.level)
            for f in spike_fifos:
                with m.If(f.level > max_spike_fifo):
                    m.d.sync += max_spike_fifo.eq(f.level)
        regs = {
            SystemReg.STEP: step,
            SystemReg.ROUTER_EVENTS: router.events,
            SystemReg.ROUTER_STALLS: router.stalls,
            SystemReg.HOST_SPIKES: host_spikes,
            SystemReg.MAX_CORE_FIFO: max_core_fifo,
            SystemReg.MAX_SPIKE_FIFO: max_spike_fifo,
            SystemReg.ERRORS: self.errors,
            SystemReg.FRAMES: self.frames,
            SystemReg.LEARN: Const(0, 32),
            SystemReg.STEP_CYCLES: step_cycles,
            SystemReg.MAX_STEP_CYCLES: max_step_cycles,
        }
        writable = {SystemReg.STEP: step}
        if stats:
            writable |= {
                SystemReg.HOST_SPIKES: host_spikes,
                SystemReg.MAX_CORE_FIFO: max_core_fifo,
                SystemReg.MAX_SPIKE_FIFO: max_spike_fifo,
                SystemReg.STEP_CYCLES: step_cycles,
                SystemReg.MAX_STEP_CYCLES: max_step_cycles,
            }

        # quiet: nothing of the previous step is still on its way
        cores_idle = Cat(*(c.idle for c in cores)).all()
        # `level`, not `r_rdy`: a buffered FIFO's output lags a write by a cycle or two
        fifos_empty = Cat(*(f.level == 0 for f in in_fifos + spike_fifos)).all()
        quiet = ~router.busy & fifos_empty
        # the injection FIFO holds the sources of the step about to run: not part of drain
        routed = quiet & (inject.level == 0)
        done_seen = Signal(C)
        inject_en = Signal()
        # late sources (bit 15, contract 8.2) come first among a step's inputs and are routed
        # in its drain, with the events of the step before; the drain ends once the FIFO
        # shows no late source (the executor pushes a step's inputs cycles before it starts
        # the step, time enough for the FIFO's output to show the first)
        late_head = inject.r_rdy & inject.r_data[15]
        no_late = ~late_head
        draining = Signal()
        m.d.comb += router.inject_en.eq(inject_en | (draining & late_head))

        # configuration dispatch (idle only)
        req = self.i_cfg.payload
        reply_from = Signal(range(C + 2))  # a core, the router (C), or the registers (C + 1)
        reg_reply = Signal(32)  # the registers are u32
        reading = Signal()
        # the request's fields go to every core and the router; only the one addressed
        # sees `valid`
        for dst in [*(c.i_cfg for c in cores), router.i_cfg]:
            m.d.comb += [
                dst.payload.write.eq(req.write),
                dst.payload.mem.eq(req.mem),
                dst.payload.addr.eq(req.addr),
                dst.payload.data.eq(req.data),
            ]

        # step cycles: every cycle a step is under way or its events are still being
        # delivered (the tail of the last step of a run goes on after the run); a step's own
        # count starts with its drain and ends with its delivery or the next step's drain
        drain_next = Signal()  # the control FSM enters DRAIN
        in_step = Signal()
        step_end = Signal()  # the last cycle of a step's routing
        tail = Signal()  # a step has ended and its events are not all delivered yet
        this_step = Signal(32)
        settled = quiet & cores_idle
        if stats:
            # (configuration requests between steps keep cores busy too: not counted)
            busy = in_step | (tail & ~settled)
            with m.If(drain_next | (~in_step & settled)):
                m.d.sync += tail.eq(0)
            with m.Elif(step_end):
                m.d.sync += tail.eq(1)

            def close_step():  # type: ignore[no-untyped-def]
                with m.If(this_step > max_step_cycles):
                    m.d.sync += max_step_cycles.eq(this_step)

            with m.If(busy):
                m.d.sync += step_cycles.eq(step_cycles + 1)
            with m.If(drain_next):
                close_step()
                m.d.sync += this_step.eq(0)
            with m.Elif(busy):
                m.d.sync += this_step.eq(this_step + 1)
            with m.Elif(this_step != 0):
                close_step()
                m.d.sync += this_step.eq(0)

        with m.FSM(name="control"):
            with m.State("IDLE"):
                # a run is over only once the host has taken its last item: a buffered FIFO's
                # output lags its input, so `o_host.valid` alone would say "done" too early
                m.d.comb += self.run_busy.eq(host_fifo.level != 0)
                with m.If(self.run_start & (self.run_steps != 0)):
                    m.d.sync += steps_left.eq(self.run_steps)
                    m.d.comb += drain_next.eq(1)
                    m.next = "DRAIN"
                with m.Elif(self.i_cfg.valid & ~reading):
                    for k in range(C):
                        with m.If(req.target == k):
                            m.d.comb += [
                                cores[k].i_cfg.valid.eq(1),
                                self.i_cfg.ready.eq(cores[k].i_cfg.ready),
                            ]
                            with m.If(cores[k].i_cfg.ready & ~req.write):
                                m.d.sync += [reading.eq(1), reply_from.eq(k)]
                    with m.If(req.target == Target.SYSTEM.value):
                        with m.If(req.mem == SystemMem.REGS.value):
                            m.d.comb += self.i_cfg.ready.eq(1)
                            with m.If(req.write), m.Switch(req.addr):
                                for r, sig in writable.items():
                                    with m.Case(r.value):
                                        m.d.sync += sig.eq(req.data)
                                with m.Case(SystemReg.LEARN.value):
                                    m.d.comb += [c.learn.eq(1) for c in cores]
                            with m.Else():
                                m.d.sync += [reading.eq(1), reply_from.eq(C + 1)]
                                with m.Switch(req.addr):
                                    for r, sig in regs.items():
                                        with m.Case(r.value):
                                            m.d.sync += reg_reply.eq(sig)
                        with m.Else():
                            m.d.comb += [
                                router.i_cfg.valid.eq(1),
                                self.i_cfg.ready.eq(router.i_cfg.ready),
                            ]
                            with m.If(router.i_cfg.ready & ~req.write):
                                m.d.sync += [reading.eq(1), reply_from.eq(C)]
            with m.State("DRAIN"):
                m.d.comb += [self.run_busy.eq(1), in_step.eq(1), draining.eq(1)]
                with m.If(quiet & cores_idle & no_late):
                    m.next = "PULSE"
            with m.State("PULSE"):
                m.d.comb += [self.run_busy.eq(1), in_step.eq(1)]
                for c in cores:
                    m.d.comb += c.step.eq(1)
                m.d.sync += [inject_en.eq(1), done_seen.eq(0)]
                m.next = "UPDATE"
            with m.State("UPDATE"):
                m.d.comb += [self.run_busy.eq(1), in_step.eq(1)]
                dones = Cat(*(c.done for c in cores))
                m.d.sync += done_seen.eq(done_seen | dones)
                with m.If((done_seen | dones).all()):
                    m.next = "ROUTE"
            with m.State("ROUTE"):
                m.d.comb += [self.run_busy.eq(1), in_step.eq(1)]
                with m.If(routed & host_fifo.w_rdy):
                    m.d.comb += [end_marker.eq(1), step_end.eq(1)]
                    m.d.sync += [
                        inject_en.eq(0),
                        step.eq(step + 1),
                        steps_left.eq(steps_left - 1),
                    ]
                    with m.If(steps_left == 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += drain_next.eq(1)
                        m.next = "DRAIN"

        # replies of reads, from whoever was asked
        with m.If(reading):
            with m.Switch(reply_from):
                for k in range(C):
                    with m.Case(k):
                        m.d.comb += [
                            self.o_cfg.valid.eq(cores[k].o_cfg.valid),
                            self.o_cfg.payload.eq(cores[k].o_cfg.payload),
                            cores[k].o_cfg.ready.eq(self.o_cfg.ready),
                        ]
                with m.Case(C):
                    m.d.comb += [
                        self.o_cfg.valid.eq(router.o_cfg.valid),
                        self.o_cfg.payload.eq(router.o_cfg.payload),
                        router.o_cfg.ready.eq(self.o_cfg.ready),
                    ]
                with m.Case(C + 1):
                    m.d.comb += [self.o_cfg.valid.eq(1), self.o_cfg.payload.data.eq(reg_reply)]
            with m.If(self.o_cfg.valid & self.o_cfg.ready):
                m.d.sync += reading.eq(0)
        return m
