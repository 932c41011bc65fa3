"""The top level of a board: the host link on the board's UART, and status LEDs.

:class:`BoardTop` is what ``spikefab build --board B`` builds (``boards/``). It holds one
:class:`~spikefab.hdl.top.HostLink` (the system, the executor and the SLIP framing of
``docs/contract.md`` section 8) behind the 8N1 UART of :mod:`spikefab.hdl.uart`, so that the
board speaks the same bytes as the Verilator simulation speaks on its pipe. The clock is the
platform's default clock (no PLL) and the reset is the platform's power-on reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from spikefab.hdl.layouts import SystemConfig
from spikefab.hdl.synapse_store import SDRAMOptions, sdram_options
from spikefab.hdl.top import HostLink
from spikefab.hdl.uart import UART

__all__ = ["LED_FUNCTIONS", "BoardTop", "Led", "divisor_of"]

#: What an LED can show. ``alive``: blinks at 1 Hz while the design is clocked; ``activity``:
#: lit while a frame is executed or a run is under way; ``rx``, ``tx``, ``link``: bytes are
#: received, sent, either. Activity and traffic are held for at least 50 ms, so that a
#: short frame is seen.
LED_FUNCTIONS = ("alive", "activity", "rx", "tx", "link")

#: Shortest time an activity or traffic LED stays lit, in seconds.
LED_HOLD = 0.05

#: Idle time after which the link refuses a started frame as TRUNCATED, in seconds.
FRAME_TIMEOUT = 0.1

#: Largest relative difference allowed between the baud rate asked for and the one a whole
#: divisor gives: well within the receiver's tolerance (``UARTRx``, 2.5% at divisor 4).
MAX_BAUD_ERROR = 0.01


#: The clock domain of a board's SDRAM and its controller.
SDRAM_DOMAIN = "sdram"


def divisor_of(clock_hz: float, baud: int) -> int:
    """Return the UART divisor (clock cycles per bit) for ``baud`` at ``clock_hz``.

    Raises
    ------
    ValueError
        When the divisor would be below 4, or the rate it gives differs from ``baud`` by
        more than :data:`MAX_BAUD_ERROR`.
    """
    if not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(
            f"{baud} baud needs at least 4 clock cycles per bit; a {clock_hz / 1e6:g} MHz "
            f"clock gives {clock_hz / baud:.2f}"
        )
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(
            f"{baud} baud at {clock_hz / 1e6:g} MHz: the nearest divisor {divisor} gives "
            f"{clock_hz / divisor:.0f} baud, {error:.1%} off (at most {MAX_BAUD_ERROR:.0%})"
        )
    return divisor


@dataclass(frozen=True)
class Led:
    """An LED of a board: a platform resource (and subsignal) and what it shows."""

    function: str
    resource: str
    number: int = 0
    subsignal: str | None = None

    def __post_init__(self) -> None:
        if self.function not in LED_FUNCTIONS:
            raise ValueError(
                f"LED function must be one of {', '.join(LED_FUNCTIONS)}, not {self.function!r}"
            )


class BoardTop(wiring.Component):
    """The system with its host link on a UART, for a board's platform (no ports).

    Parameters
    ----------
    config
        The system.
    clock_hz
        Frequency of the platform's default clock.
    baud
        Baud rate of the UART; the clock must give it within :data:`MAX_BAUD_ERROR`.
    leds
        The LEDs used and what they show.
    uart
        The platform resource of the UART (with subsignals ``rx`` and ``tx``).
    reboot
        ``(button, program)`` resources: while the button is pressed, the design drives the
        FPGA's PROGRAMN pin low, which reloads its configuration (the OrangeCrab's way back
        to its DFU bootloader).
    sdram
        ``(resource, number)`` of the platform's SDRAM (an ``SDRAMResource``), for a system
        whose core keeps its synapses there. The SDRAM and its controller then run at twice
        the clock (domain ``sdram``): a PLL (an ECP5's ``EHXPLLL``) makes both clocks from
        the platform's, and the SDRAM's clock leaves the chip on the resource's ``clk`` pin
        through a DDR output buffer, in phase with the controller's registers (see
        :class:`~spikefab.hdl.sdram.SDRAMController`). Both domains are held in reset until
        the PLL locks.

    Raises
    ------
    TypeError, ValueError
        For a configuration that is not a :class:`SystemConfig`, or a baud rate the clock
        cannot give.
    """

    def __init__(
        self,
        config: SystemConfig,
        clock_hz: float,
        baud: int,
        leds: Sequence[Led] = (),
        uart: tuple[str, int] = ("uart", 0),
        reboot: tuple[tuple[str, int], tuple[str, int]] | None = None,
        sdram: tuple[str, int] = ("sdram", 0),
    ):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be a SystemConfig, not {config!r}")
        self._sdram_resource = sdram
        self._sdram = sdram_options(
            config, SDRAMOptions(clk_freq=2 * float(clock_hz), domain=SDRAM_DOMAIN)
        )
        self._config = config
        self._clock_hz = float(clock_hz)
        self._baud = baud
        self._divisor = divisor_of(self._clock_hz, baud)
        self._leds = tuple(leds)
        self._uart = uart
        self._reboot = reboot
        super().__init__({})

    @property
    def config(self) -> SystemConfig:
        return self._config

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        timeout = max(1, int(self._clock_hz * FRAME_TIMEOUT))
        m.submodules.link = link = HostLink(self._config, timeout=timeout, sdram=self._sdram)
        m.submodules.uart = uart = UART(self._divisor)
        wiring.connect(m, rx=uart.o_data, link=link.i_rx)
        wiring.connect(m, link=link.o_tx, tx=uart.i_data)
        if platform is None:
            return m

        if self._sdram is not None:
            self._clocks(m, platform)
            self._sdram_pins(m, platform, link.sdram)

        pins = platform.request(*self._uart, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", pins.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", pins.tx)
        m.d.comb += [uart.rx.eq(rx_buf.i), tx_buf.o.eq(uart.tx)]

        hold = max(1, int(self._clock_hz * LED_HOLD))
        rx_seen = uart.o_data.valid & uart.o_data.ready
        tx_seen = uart.tx_busy
        shows = {
            "activity": self._held(m, "activity", ~link.idle, hold),
            "rx": self._held(m, "rx", rx_seen, hold),
            "tx": self._held(m, "tx", tx_seen, hold),
            "link": self._held(m, "link", rx_seen | tx_seen, hold),
        }
        half_second = max(1, int(self._clock_hz / 2))
        blink = Signal(range(half_second))
        alive = Signal()
        with m.If(blink == half_second - 1):
            m.d.sync += [blink.eq(0), alive.eq(~alive)]
        with m.Else():
            m.d.sync += blink.eq(blink + 1)
        shows["alive"] = alive
        requested: dict[tuple[str, int], object] = {}
        for k, led in enumerate(self._leds):
            key = (led.resource, led.number)
            if key not in requested:
                requested[key] = platform.request(*key, dir="-")
            port = requested[key]
            if led.subsignal is not None:
                port = getattr(port, led.subsignal)
            m.submodules[f"led{k}"] = buf = io.Buffer("o", port)
            m.d.comb += buf.o.eq(shows[led.function])

        if self._reboot is not None:
            m.submodules.button = button = io.Buffer(
                "i", platform.request(*self._reboot[0], dir="-")
            )
            m.submodules.program = program = io.Buffer(
                "o", platform.request(*self._reboot[1], dir="-")
            )
            m.d.comb += program.o.eq(button.i)
        return m

    def _clocks(self, m: Module, platform) -> None:  # type: ignore[no-untyped-def]
        """The ``sync`` and ``sdram`` domains from the platform's clock, through a PLL."""
        from amaranth.vendor import LatticeECP5Platform

        if not isinstance(platform, LatticeECP5Platform):
            raise ValueError("the SDRAM's clock needs a PLL: only the ECP5's is supported")
        f_in = self._clock_hz
        # EHXPLLL: the feedback is CLKOP (2 * f_in), so the VCO runs at 2 * f_in * CLKOP_DIV,
        # which must be within 400 .. 800 MHz: near 600. CLKOS (f_in) divides it by twice as
        # much. The coarse phases are those nextpnr's ecppll tool gives for zero degrees.
        op_div = round(600e6 / (2 * f_in))
        if not (400e6 <= 2 * f_in * op_div <= 800e6 and 1 <= op_div <= 64):
            raise ValueError(f"no PLL setting makes {2 * f_in / 1e6:g} MHz from {f_in / 1e6:g}")
        phase = (op_div - 1) // 2
        clk_in = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_in = clk_buf = io.Buffer("i", clk_in)
        m.domains.sync = ClockDomain("sync")
        m.domains.sdram = ClockDomain(SDRAM_DOMAIN)
        locked = Signal()
        fast, slow = Signal(), Signal()  # the PLL's outputs, constrained for the timing analysis
        m.d.comb += [ClockSignal(SDRAM_DOMAIN).eq(fast), ClockSignal("sync").eq(slow)]
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{f_in / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{2 * f_in / 1e6:g}",
            a_FREQUENCY_PIN_CLKOS=f"{f_in / 1e6:g}",
            a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED",
            p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB",
            p_CLKI_DIV=1,
            p_CLKFB_DIV=2,
            p_FEEDBK_PATH="CLKOP",
            p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=op_div,
            p_CLKOP_CPHASE=phase,
            p_CLKOP_FPHASE=0,
            p_CLKOS_ENABLE="ENABLED",
            p_CLKOS_DIV=2 * op_div,
            p_CLKOS_CPHASE=phase,
            p_CLKOS_FPHASE=0,
            i_RST=0,
            i_STDBY=0,
            i_CLKI=clk_buf.i,
            i_CLKFB=fast,
            i_PHASESEL0=0,
            i_PHASESEL1=0,
            i_PHASEDIR=1,
            i_PHASESTEP=1,
            i_PHASELOADREG=1,
            i_PLLWAKESYNC=0,
            i_ENCLKOP=0,
            o_CLKOP=fast,
            o_CLKOS=slow,
            o_LOCK=locked,
        )
        platform.add_clock_constraint(fast, 2 * f_in)
        platform.add_clock_constraint(slow, f_in)
        m.submodules.sync_reset = ResetSynchronizer(~locked, domain="sync")
        m.submodules.sdram_reset = ResetSynchronizer(~locked, domain=SDRAM_DOMAIN)

    def _sdram_pins(self, m: Module, platform, ctrl) -> None:  # type: ignore[no-untyped-def]
        """The controller's pins on the SDRAM resource (whose ``_n`` pins the platform
        inverts: ``cs``, ``ras``, ``cas`` and ``we`` are active high here)."""
        pins = platform.request(*self._sdram_resource, dir="-")
        m.submodules.sdram_clk = clk = DomainRenamer({"sync": SDRAM_DOMAIN})(
            io.DDRBuffer("o", pins.clk)
        )
        # high in the first half of each cycle, low in the second: the clock itself
        m.d.comb += [clk.o[0].eq(1), clk.o[1].eq(0)]
        outputs = {
            "clk_en": ctrl.cke,
            "cs": ~ctrl.cs_n,
            "ras": ~ctrl.ras_n,
            "cas": ~ctrl.cas_n,
            "we": ~ctrl.we_n,
            "ba": ctrl.ba,
            "a": ctrl.a,
            "dqm": ctrl.dqm,
        }
        for name, value in outputs.items():
            port = getattr(pins, name)
            m.submodules[f"sdram_{name}"] = buf = io.Buffer("o", port)
            m.d.comb += buf.o.eq(value[: len(port)])
        m.submodules.sdram_dq = dq = io.Buffer("io", pins.dq)
        m.d.comb += [
            dq.o.eq(ctrl.dq_o),
            dq.oe.eq(ctrl.dq_oe),
            ctrl.dq_i.eq(dq.i),
        ]

    @staticmethod
    def _held(m: Module, name: str, event, hold: int) -> Signal:  # type: ignore[no-untyped-def]
        """A signal that is high while ``event`` is and ``hold`` cycles after."""
        count = Signal(range(hold + 1), name=f"{name}_hold")
        with m.If(event):
            m.d.sync += count.eq(hold)
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        return count != 0
