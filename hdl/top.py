"""Top levels: the system with its host link, on a byte stream (simulation) or a UART.

``SimTop`` carries the host link's bytes on two streams, which the Verilator harness
(``sim/harness/``) connects to a pipe and cocotb drives directly. The board tops add a UART
PHY (``hdl/uart.py``).
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from spikefab.hdl.executor import Executor
from spikefab.hdl.layouts import SystemConfig
from spikefab.hdl.protocol import MAX_BODY
from spikefab.hdl.sdram import sdram_pins_signature
from spikefab.hdl.slip import SlipReceiver, SlipSender
from spikefab.hdl.synapse_store import SDRAMOptions, sdram_options
from spikefab.hdl.system import System

__all__ = ["HostLink", "SimTop"]

#: Idle clock cycles after which a started frame is refused as TRUNCATED in simulation.
SIM_TIMEOUT = 1 << 16


class HostLink(wiring.Component):
    """The SLIP receiver, the executor and the SLIP sender around one :class:`System`.

    Attributes
    ----------
    i_rx : In(stream.Signature(8))
        Bytes from the host.
    o_tx : Out(stream.Signature(8))
        Bytes to the host.
    idle : Out(1)
        No frame is being executed and no run is under way.
    sdram : Out(sdram_pins_signature(sdram.geometry))
        The SDRAM's pins, when the system keeps its synapses there (see
        :class:`~spikefab.hdl.system.System`).

    Parameters
    ----------
    config
        The system.
    timeout
        The receiver's frame timeout, in clock cycles.
    frames
        Frames the receiver's buffer holds (:class:`~spikefab.hdl.slip.SlipReceiver`).
    read_width
        Bytes of the frame buffer's read port (:class:`~spikefab.hdl.executor.Executor`).
    """

    def __init__(
        self,
        config: SystemConfig,
        timeout: int = SIM_TIMEOUT,
        *,
        sdram: SDRAMOptions | None = None,
        frames: int = 1,
        read_width: int = 1,
    ):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig, not {config!r}")
        self._config = config
        self._timeout = timeout
        self._sdram = sdram_options(config, sdram)
        self._frames = frames
        self._read_width = read_width
        members = {
            "i_rx": In(stream.Signature(8)),
            "o_tx": Out(stream.Signature(8)),
            "idle": Out(1),
        }
        if self._sdram is not None:
            members["sdram"] = Out(sdram_pins_signature(self._sdram.geometry))
        super().__init__(members)

    @property
    def sdram_options(self) -> SDRAMOptions | None:
        """The SDRAM's options, or None when the system has no SDRAM."""
        return self._sdram

    @property
    def config(self) -> SystemConfig:
        return self._config

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        m.submodules.rx = rx = SlipReceiver(
            MAX_BODY, self._timeout, frames=self._frames, read_width=self._read_width
        )
        m.submodules.tx = tx = SlipSender()
        m.submodules.executor = ex = Executor(self._config, read_width=self._read_width)
        m.submodules.system = system = System(self._config, sdram=self._sdram)
        if self._sdram is not None:
            wiring.connect(m, system.sdram, wiring.flipped(self.sdram))

        wiring.connect(m, rx=wiring.flipped(self.i_rx), rx_port=rx.i_rx)
        wiring.connect(m, tx_port=tx.o_tx, tx=wiring.flipped(self.o_tx))
        wiring.connect(m, frame=rx.o_frame, ex=ex.i_frame)
        wiring.connect(m, ex=ex.buf, buffer=rx.buf)
        wiring.connect(m, body=ex.o_body, sender=tx.i_body)
        wiring.connect(m, req=ex.o_cfg, sys=system.i_cfg)
        wiring.connect(m, rep=system.o_cfg, ex=ex.i_cfg)
        wiring.connect(m, inj=ex.o_inject, sys=system.i_inject)
        wiring.connect(m, host=system.o_host, ex=ex.i_host)
        m.d.comb += [
            ex.inject_free.eq(system.inject_free),
            system.run_steps.eq(ex.run_steps),
            system.run_start.eq(ex.run_start),
            ex.run_busy.eq(system.run_busy),
            ex.step.eq(system.step),
            system.frames.eq(ex.frames),
            system.errors.eq(ex.errors),
            self.idle.eq(ex.idle & ~system.run_busy),
        ]
        return m


class SimTop(HostLink):
    """The whole device for simulation: bytes in, bytes out (ports ``i_rx``, ``o_tx``).

    The reset is registered: the device is reset in the cycles after those in which ``rst``
    is high, and takes bytes on ``i_rx`` from the second cycle after ``rst`` falls.

    By default the simulated device spends logic a board cannot on simulated cycles (the
    replies and the arithmetic are the same): its receiver holds two frames, so that it
    takes the next frame while the one before is carried out, and the executor reads a
    ``WRITE``'s words from the frame buffer a word at a time (``frames=1, read_width=1``
    is the board's link).
    """

    def __init__(
        self,
        config: SystemConfig,
        timeout: int = SIM_TIMEOUT,
        *,
        sdram: SDRAMOptions | None = None,
        frames: int = 2,
        read_width: int = 8,
    ):
        super().__init__(config, timeout, sdram=sdram, frames=frames, read_width=read_width)

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        # Every register's next value depends on the reset. Were `rst` the top-level input,
        # Verilator would evaluate all that logic again whenever an input changes (twice a
        # cycle, at both clock edges); registered, it is evaluated once, at the rising edge.
        m = Module()
        m.domains.link = link = ClockDomain(local=True)
        rst = Signal(init=1, reset_less=True)
        m.d.sync += rst.eq(ResetSignal())
        m.d.comb += [link.clk.eq(ClockSignal()), link.rst.eq(rst)]
        m.submodules.link = DomainRenamer("link")(super().elaborate(platform))
        return m
