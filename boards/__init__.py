"""The boards spikefab builds for, and the simulated one.

A :class:`Board` names an FPGA board, its `amaranth-boards`_ platform, its clock, the UART
the host link runs on, its LEDs, the programmers that load a bitstream into it, and the
:class:`~spikefab.hdl.layouts.SystemConfig` built for it. One bitstream serves every network
that fits that system: networks are loaded at run time over the host link (``docs/
contract.md`` section 8), so the system of a board is sized once, to fill the device's
memories with margin, and the capacity it gives is the board's.

``verilator`` is the simulated board: the generated RTL in Verilator, behind the same host
link (``spikefab run --backend verilator``). It has no bitstream; its system is sized per
network (as many cores of the simulated size as the network needs, up to 15).

The sizes of each system, and why (resources as measured by ``spikefab build``; see
``docs/boards.md`` for the measured reports). What a core's entries cost in block RAM is
:meth:`Board.bits_per_entry` (``docs/boards.md``, "Block RAM per entry"):

iCEBreaker (iCE40UP5K, 12 MHz)
    One core of 256 neurons, 512 axons, 8192 synapse entries and 8 delay slots, no learning,
    no statistics counters. The UP5K has 30 block RAMs (4 Kbit) and 4 SPRAMs (256 Kbit). The
    synapse and axon tables and the neuron parameters sit in the four SPRAMs, as two merged
    banks (``hdl/core.py``), which hold up to 8192 synapse entries (a synapse bank of
    2 x 8192 words is one SPRAM deep). The dendrite ring takes ``delay_slots x neurons x 24``
    bits of block RAM: 24 blocks at 16 slots, 12 at 8; the state takes 4 and the system
    around the core (the host link's frame buffer, the router tables, the FIFOs) 13 more, so
    16 slots do not fit and 8 do (29 of 30). The learning unit's trace memories would need 4
    to 5 more blocks than are left, and a second core's ring and state alone are 16; so
    would 512 neurons. The axon bank's two SPRAMs would hold up to 8192 axons, but each axon
    bit widens the events, the route entries and the FIFOs: 512 axons take 5258 of the 5280
    logic cells, 1024 would take 5291. The logic fits without the statistics counters
    (``CoreConfig.stats``): thirteen 32-bit counters (the core's events, cycles, spikes and
    steps, the router's, the FIFO maxima, the host link's) take about 1060 of the UP5K's
    5280 logic cells; the system takes 6125 with them (``docs/boards.md``).
ULX3S 85F (LFE5U-85F, 25 MHz)
    Three cores of 1024 neurons, 1024 axons, 16384 synapse entries and 16 delay slots, with
    the learning unit: 3072 neurons, 49152 synapse entries. The 85F has 208 block RAMs
    (18 Kbit). A core takes 62 of them: the ring 24, the synapse table 24 (25-bit entries,
    2048 x 9 blocks), the parameters 4, the state 3, the axon table 2 and the learning
    unit's traces 5; the system around the cores 14 more: 200 of 208 (96%). A fourth core
    would need 62 more, twice the entries 72 more. Five cores of 512 neurons and 8192
    entries take 186 and hold fewer of both (2560 neurons, 40960 entries). The LUTs are
    a fifth used; fmax is 42.6 MHz against the 25 MHz clock.
OrangeCrab 25F (LFE5U-25F, 48 MHz)
    One core of 512 neurons, 1024 axons, 16384 synapse entries and 16 delay slots, with the
    learning unit. The 25F has 56 block RAMs; the core takes 46 (the synapse table 24, the
    ring 12, the state, the parameters and the axon table 2 each, the traces 4), the system
    6 more: 52 of 56 (93%). 1024 neurons need a ring of 24 blocks, and fit only with 4096
    entries (50 of 56), four per neuron; two cores of 256 neurons fit with 4096 entries
    each (45), and with 8192 each they need 57. The LUTs are a third used; fmax is 79.6 MHz
    against the 48 MHz clock.

The clocks are the boards' oscillators, without a PLL: every design meets its board's
clock with a wide margin (``docs/boards.md``), and the UART rates divide them exactly.

.. _amaranth-boards: https://github.com/amaranth-lang/amaranth-boards
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spikefab.boards.report import BitsPerEntry, bits_per_entry
from spikefab.hdl.board_top import BoardTop, Led
from spikefab.hdl.layouts import CoreConfig, SystemConfig

__all__ = ["BOARDS", "Board", "MeasuredBuild", "Programmer", "get_board"]


@dataclass(frozen=True)
class Programmer:
    """A tool that loads a bitstream into a board.

    ``args`` are the tool's arguments, where ``{stem}`` stands for the bitstream's path
    without its extension; ``install`` says how to install the tool.
    """

    tool: str
    args: tuple[str, ...]
    install: str
    note: str = ""

    def command(self, stem: str) -> list[str]:
        """Return the command line that loads the bitstream ``stem`` + extension."""
        return [self.tool, *(a.format(stem=stem) for a in self.args)]


#: How to install each programmer (Debian and Ubuntu, then macOS with Homebrew).
INSTALL = {
    "openFPGALoader": "sudo apt-get install openfpgaloader (Debian, Ubuntu) or "
    "brew install openfpgaloader (macOS)",
    "iceprog": "sudo apt-get install fpga-icestorm (Debian, Ubuntu) or brew install icestorm "
    "(macOS)",
    "dfu-util": "sudo apt-get install dfu-util (Debian, Ubuntu) or brew install dfu-util (macOS)",
}


@dataclass(frozen=True)
class MeasuredBuild:
    """A board's system as ``spikefab build`` last measured it (``docs/boards.md``):
    resources used and available, by the keys of the build report, and nextpnr's fmax."""

    resources: dict[str, tuple[int, int]]
    fmax_mhz: float
    sdram_fmax_mhz: float | None = None

    def summary(self) -> dict[str, str]:
        """The figures as text, by the resources' names."""
        from spikefab.boards.report import RESOURCES

        out = {
            RESOURCES[k]: f"{u} / {a} ({100 * u / a:.0f}%)" for k, (u, a) in self.resources.items()
        }
        out["fmax"] = f"{self.fmax_mhz:g} MHz"
        if self.sdram_fmax_mhz is not None:
            out["SDRAM fmax"] = f"{self.sdram_fmax_mhz:g} MHz"
        return out


@dataclass(frozen=True)
class Board:
    """A board: its device, clock, host link, LEDs, programmers and system.

    Parameters
    ----------
    name
        What ``--board`` takes.
    title
        The board's name in reports.
    device
        The FPGA and its package.
    family
        ``"ice40"``, ``"ecp5"``, or ``"sim"`` for the simulated board.
    clock_hz
        The clock the design runs at (the board's oscillator).
    baud
        The UART's rate, which the host must use.
    system
        The system built for the board (for ``verilator``, its largest).
    uart
        Where the host link is: the USB-UART bridge, or the pins an adapter goes on.
    why
        Why the system has the size it has.
    platform
        Returns the board's Amaranth platform (``None`` for ``verilator``).
    leds, reboot, uart_resource
        See :class:`~spikefab.hdl.board_top.BoardTop`.
    programmers
        The tools that load its bitstream, the preferred first.
    bitstream_ext
        ``"bin"`` (iCE40) or ``"bit"`` (ECP5).
    timing_driven
        Whether nextpnr places for timing. Off for a large design whose clock it meets by
        far anyway: placement takes a third of the time.
    dfu_ids
        ``(vendor, product)`` of a board loaded over USB DFU: the build also writes the
        bitstream with a DFU suffix (``.dfu``).
    """

    name: str
    title: str
    device: str
    family: str
    clock_hz: float
    baud: int
    system: SystemConfig
    uart: str
    why: str
    platform: Callable[[], Any] | None = None
    leds: tuple[Led, ...] = ()
    reboot: tuple[tuple[str, int], tuple[str, int]] | None = None
    uart_resource: tuple[str, int] = ("uart", 0)
    programmers: tuple[Programmer, ...] = ()
    bitstream_ext: str = "bin"
    dfu_ids: tuple[int, int] | None = None
    timing_driven: bool = True
    measured: MeasuredBuild | None = None

    @property
    def neurons(self) -> int:
        """Neurons the board holds."""
        return self.system.cores * self.system.core.neurons

    @property
    def synapses(self) -> int:
        """Synapse entries the board holds (each a synapse, or a fan-out entry of one)."""
        return self.system.cores * self.system.core.synapses

    @property
    def design_name(self) -> str:
        """The name of the build's products (``spikefab_<board>.bin``)."""
        return f"spikefab_{self.name}"

    def capacity(self) -> str:
        """Return the board's system and capacity in one line."""
        s, c = self.system, self.system.core
        return (
            f"{s.cores} core{'s' if s.cores > 1 else ''} x {c.neurons} neurons, "
            f"{c.axons} axons, {c.synapses} synapse entries"
            f"{' in SDRAM' if c.synapse_memory == 'sdram' else ''}, {c.delay_slots} delay slots"
            f"{', learning' if c.learning else ''}"
            f"{'' if c.stats else ', no statistics counters'}: {self.neurons} neurons, "
            f"{self.synapses} synapses"
        )

    def bits_per_entry(self) -> BitsPerEntry | None:
        """Return the block RAM bits per synapse entry, neuron and axon of the board's cores.

        ``None`` for the simulated board, which has no block RAM.
        """
        if self.family not in ("ice40", "ecp5"):
            return None
        return bits_per_entry(self.system.core, self.family)

    def top(self) -> BoardTop:
        """Return the top level built for the board."""
        if self.platform is None:
            raise ValueError(f"the {self.name} board has no bitstream")
        return BoardTop(
            self.system,
            self.clock_hz,
            self.baud,
            leds=self.leds,
            uart=self.uart_resource,
            reboot=self.reboot,
        )


# platforms --------------------------------------------------------------------------------
# amaranth-boards comes with the `fpga` extra; it is imported only when a board is built.


def _missing(e: ImportError) -> ImportError:
    return ImportError(
        f"building a bitstream needs the fpga extra ({e}): pip install 'spikefab[fpga]'"
    )


def _icebreaker():  # type: ignore[no-untyped-def]
    try:
        from amaranth_boards.icebreaker import ICEBreakerPlatform
    except ImportError as e:
        raise _missing(e) from None
    return ICEBreakerPlatform()


def _ulx3s_85f():  # type: ignore[no-untyped-def]
    try:
        from amaranth_boards.ulx3s import ULX3S_85F_Platform
    except ImportError as e:
        raise _missing(e) from None
    return ULX3S_85F_Platform()


def _orangecrab_25f():  # type: ignore[no-untyped-def]
    try:
        from amaranth.build import Attrs
        from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
        from amaranth_boards.resources import UARTResource
    except ImportError as e:
        raise _missing(e) from None

    class OrangeCrab(OrangeCrabR0_2_25FPlatform):
        # The platform's last build step marks the bitstream for DFU with `dfu-suffix`,
        # a tool pip cannot install; spikefab.boards.build writes that suffix itself.
        @property
        def command_templates(self):  # type: ignore[no-untyped-def]
            return [t for t in super().command_templates if "dfu-suffix" not in t]

        @property
        def required_tools(self):  # type: ignore[no-untyped-def]
            return [t for t in super().required_tools if t != "dfu-suffix"]

    platform = OrangeCrab()
    # The USB port is the FPGA's own; the host link is a UART on the Feather header's
    # pins 0 (RX) and 1 (TX), for a 3.3 V USB-UART adapter.
    platform.add_resources(
        [
            UARTResource(
                0,
                rx="0",
                tx="1",
                conn=("io", 0),
                attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"),
            )
        ]
    )
    return platform


# the boards -------------------------------------------------------------------------------

ICEBREAKER = Board(
    name="icebreaker",
    title="iCEBreaker",
    device="iCE40UP5K-SG48",
    family="ice40",
    clock_hz=12e6,
    # 4 clock cycles per bit at 12 MHz, the UART's fastest; the FT2232H gives it exactly
    baud=3_000_000,
    system=SystemConfig(
        cores=1,
        core=CoreConfig(neurons=256, axons=256, synapses=8192, delay_slots=8, stats=False),
        sources=256,
        route_entries=512,
        inject_depth=256,
        core_fifo_depth=64,
    ),
    uart="the FT2232H's second channel, on the same USB cable as the programmer "
    "(/dev/ttyUSB1 on Linux)",
    why="the UP5K's 30 block RAMs hold one core's ring only at 8 delay slots (29 of 30 "
    "used); the SPRAMs hold 8192 synapse entries; its logic cells fit the system only "
    "without the statistics counters, and with 256 axons (5259 of 5280; 512 take 5286)",
    platform=_icebreaker,
    leds=(Led("alive", "led", 1), Led("activity", "led", 0)),
    programmers=(
        Programmer("iceprog", ("{stem}.bin",), INSTALL["iceprog"]),
        Programmer(
            "openFPGALoader", ("-b", "ice40_generic", "{stem}.bin"), INSTALL["openFPGALoader"]
        ),
    ),
    bitstream_ext="bin",
    measured=MeasuredBuild(
        {
            "lut": (5259, 5280),
            "ff": (2585, 5280),
            "ebr": (29, 30),
            "spram": (4, 4),
            "dsp": (4, 8),
        },
        fmax_mhz=22.2,
    ),
)

ULX3S = Board(
    name="ulx3s",
    title="ULX3S 85F",
    device="LFE5U-85F-6BG381",
    family="ecp5",
    clock_hz=25e6,
    # the FT231X's rates are 3 MHz / n: 1 Mbaud is 25 clock cycles per bit at 25 MHz
    # (3 Mbaud would be 8.33, 4% off)
    baud=1_000_000,
    system=SystemConfig(
        cores=1,
        core=CoreConfig(
            neurons=4096,
            axons=8192,
            synapses=1 << 20,
            delay_slots=16,
            synapse_memory="sdram",
        ),
        sources=512,
        route_entries=8192,
        inject_depth=512,
        core_fifo_depth=64,
    ),
    uart="the FT231X on the USB port marked US1 (/dev/ttyUSB0 on Linux)",
    why="one core of 4096 neurons (the most a core addresses) whose 1048576 synapse entries "
    "live in the 32 MB SDRAM, read at 50 MHz; its ring, state, parameters and axon table "
    "take most of the 85F's block RAM; an SDRAM table cannot learn",
    platform=_ulx3s_85f,
    leds=(
        Led("alive", "led", 0),
        Led("activity", "led", 1),
        Led("rx", "led", 2),
        Led("tx", "led", 3),
    ),
    programmers=(
        Programmer("openFPGALoader", ("-b", "ulx3s", "{stem}.bit"), INSTALL["openFPGALoader"]),
    ),
    bitstream_ext="bit",
    # without nextpnr's timing-driven placement the system reaches 42.6 MHz in 12 minutes,
    # for a 25 MHz clock; with it, the former five cores of 256 neurons took 21 minutes
    # instead of 12, for 48.6 MHz instead of 45.4 (most of it in its annealing refinement)
    timing_driven=False,
    measured=MeasuredBuild(
        {"lut": (8108, 83640), "ff": (4028, 83640), "ebr": (161, 208), "dsp": (4, 156)},
        fmax_mhz=36.1,
        sdram_fmax_mhz=57.1,
    ),
)

ORANGECRAB = Board(
    name="orangecrab",
    title="OrangeCrab 25F",
    device="LFE5U-25F-8MG285",
    family="ecp5",
    clock_hz=48e6,
    # a rate every common USB-UART adapter (FT232R, CP2102, CH340) carries; 52 clock
    # cycles per bit at 48 MHz, 0.16% off
    baud=921_600,
    system=SystemConfig(
        cores=1,
        core=CoreConfig(neurons=512, axons=1024, synapses=16384, delay_slots=16, learning=True),
        sources=256,
        route_entries=1024,
        inject_depth=256,
        core_fifo_depth=64,
    ),
    uart="a 3.3 V USB-UART adapter on the header: its TX to pin 0 (RX), its RX to pin 1 "
    "(TX), and GND to GND (the OrangeCrab's USB port is the FPGA's own, for DFU)",
    why="one learning core of 512 neurons and 16384 synapse entries uses 52 of the 25F's 56 "
    "block RAMs (the synapse table 24, the ring 12); 1024 neurons (a ring of 24) fit only "
    "with 4096 entries, and two cores of 256 with 8192 entries each need 57",
    platform=_orangecrab_25f,
    leds=(
        Led("alive", "rgb_led", 0, "g"),
        Led("activity", "rgb_led", 0, "r"),
        Led("link", "rgb_led", 0, "b"),
    ),
    # the button reloads the FPGA, back to the DFU bootloader, for the next `program`
    reboot=(("button", 0), ("program", 0)),
    programmers=(
        Programmer(
            "dfu-util",
            ("-a", "0", "-D", "{stem}.dfu"),
            INSTALL["dfu-util"],
            note="hold the button while plugging the board in: the LED fades in and out "
            "when the DFU bootloader waits",
        ),
        Programmer(
            "openFPGALoader",
            ("-b", "orangeCrab", "{stem}.bit"),
            INSTALL["openFPGALoader"],
            note="in DFU mode, as for dfu-util",
        ),
    ),
    bitstream_ext="bit",
    # the OrangeCrab's DFU bootloader (pid.codes 1209:5af0)
    dfu_ids=(0x1209, 0x5AF0),
    measured=MeasuredBuild(
        {"lut": (7582, 24288), "ff": (4700, 24288), "ebr": (52, 56), "dsp": (8, 28)},
        fmax_mhz=79.6,
    ),
)


def _verilator() -> Board:
    from spikefab.mapping.hardware import (
        SIM_CORE,
        SIM_INJECT_DEPTH,
        SIM_MAX_CORES,
        SIM_ROUTE_ENTRIES,
    )

    return Board(
        name="verilator",
        title="Verilator",
        device="the generated RTL, simulated",
        family="sim",
        clock_hz=0.0,
        baud=0,
        system=SystemConfig(
            cores=SIM_MAX_CORES,
            core=SIM_CORE,
            sources=256,
            route_entries=SIM_ROUTE_ENTRIES,
            inject_depth=SIM_INJECT_DEPTH,
        ),
        uart="a pipe to the simulation",
        why="sized per network: as many cores as it needs, of 256 neurons (of 1024 past "
        "3840 neurons: mapping.hardware.sim_core)",
    )


BOARDS: dict[str, Board] = {b.name: b for b in (ICEBREAKER, ULX3S, ORANGECRAB)}


def get_board(name: str) -> Board:
    """Return the board called ``name`` (``verilator`` included).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if name == "verilator":
        return _verilator()
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(
            f"unknown board {name!r}; the boards are {', '.join([*BOARDS, 'verilator'])}"
        ) from None


def board_names() -> list[str]:
    """Return every board's name, ``verilator`` last."""
    return [*BOARDS, "verilator"]
