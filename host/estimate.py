"""Before a build: does a network fit a board, does it keep real time, what does it load the
host link with, and what might it cost in energy (``spikefab estimate``, ``docs/estimate.md``).

Everything but the energy comes from this project's own models, checked against the RTL:
the fit from the mapper, the cycles from :mod:`spikefab.sim.cycles` (over a golden-model run
of the network), the link's bytes from the protocol's frames (``docs/contract.md`` 8), the
resources from the board's last measured build. The energy is an *estimate* from published
power measurements of other designs on the same FPGA (:data:`ENERGY_SOURCES`): it is given
as a range, with its sources, and never as a measurement of this design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from spikefab.hdl import protocol as proto

if TYPE_CHECKING:
    from spikefab.boards import Board
    from spikefab.mapping.image import Image
    from spikefab.mapping.network import Network
    from spikefab.sim.cycles import CyclePrediction

__all__ = ["ENERGY_SOURCES", "EnergySource", "Estimate", "estimate", "link_bytes", "parse_core"]


@dataclass(frozen=True)
class EnergySource:
    """A published power figure of a running design on an FPGA, and what it covers."""

    watts: float  # power at ``clock_hz``
    clock_hz: float
    what: str  # the design and the rails measured
    source: str  # where it is published
    part: str = ""  # the FPGA measured
    luts: int = 0  # the measured design's logic cells, where the source scales with them
    watts_per_lut: float = 0.0  # the source's own slope of power over logic cells

    def power(self, luts: float | None) -> float:
        """The source's power, scaled to a design of ``luts`` logic cells where it gives a
        slope."""
        if luts is None or not self.watts_per_lut:
            return self.watts
        return self.watts + self.watts_per_lut * (luts - self.luts)


#: Published power of running designs, per FPGA family: the low and the high end of the
#: range an estimate gives (``docs/estimate.md`` quotes them and their conditions). The
#: power scales with the clock as the measurements' own slopes do (dynamic power).
ENERGY_SOURCES: dict[str, tuple[EnergySource, EnergySource]] = {
    "ice40": (
        EnergySource(
            watts=613.5e-6 * 1.219,
            clock_hz=12e6,
            what="iCE40UP5K counters at 12 MHz, core rail (1.219 V): 613.5 uA with 32 logic "
            "cells, 641.3 uA with 228, scaled to the design's cells (every cell toggling)",
            source="tinyvision.ai, ice40_power (github.com/tinyvision-ai-inc/ice40_power)",
            part="iCE40UP5K",
            luts=32,
            watts_per_lut=(641.3e-6 - 613.5e-6) / (228 - 32) * 1.219,
        ),
        EnergySource(
            watts=8.7e-3 * 1.216,
            clock_hz=12e6,
            what="iCE40UP5K running an ML accelerator SoC at 12 MHz, core rail (1.216 V)",
            source="Symbiotic EDA, 'UP5K power usage running MLAccel firmware' (2018)",
            part="iCE40UP5K",
        ),
    ),
    "ecp5": (
        EnergySource(
            watts=0.11 * 5.0,
            clock_hz=48e6,
            what="OrangeCrab (LFE5U-25F and DDR3L) running a LiteX SoC, whole board at 5 V, "
            "DDR3L termination and ODT off",
            source="github.com/enjoy-digital/litedram issue 216",
            part="LFE5U-25F",
        ),
        EnergySource(
            watts=0.29 * 5.0,
            clock_hz=48e6,
            what="the same board and design with DDR3L termination on",
            source="github.com/enjoy-digital/litedram issue 216",
            part="LFE5U-25F",
        ),
    ),
}


def link_bytes(
    host_spikes: float, sources: float, steps: int = 1, marks: int | None = None
) -> tuple[float, float]:
    """Bytes a run of ``steps`` steps moves on the host link (contract 8.2): to the device,
    RUN frames whose input schedules have 2 bytes per source spike and per step mark; from
    it, for each RUN, R_SPIKES frames of up to ``SPIKE_ITEMS`` items (2 bytes per host spike
    and per step mark) and an R_RUN_END. The input schedule ends with the last step that has
    inputs: ``marks`` step marks (``steps`` if not given). Each frame adds its END bytes,
    its fields and its CRC; SLIP escapes add a 128th (two of 256 byte values become two
    bytes each). A run with probes reads them after every step: that is not counted."""
    import math

    escape = 1 + 2 / 256
    run = proto.REQUESTS[proto.Op.RUN]
    spikes = proto.REPLIES[proto.Op.R_SPIKES]
    end = proto.REPLIES[proto.Op.R_RUN_END]

    def frames(n: float, msg: proto.Message, items: float = 0) -> float:
        return n * (msg.header_size + 2 + 2) + 2 * items  # CRC and two ENDs a frame

    # a RUN frame carries the inputs of as many steps as fit; each gets its own replies
    marks = steps if marks is None else marks
    runs = max(1, math.ceil((sources + marks) / run.max_items))
    inp = frames(runs, run, sources + marks) * escape
    out_items = host_spikes + steps
    out = frames(max(runs, math.ceil(out_items / spikes.max_items)), spikes, out_items)
    out = (out + frames(runs, end)) * escape
    return inp, out


@dataclass
class Estimate:
    """What :func:`estimate` found: the fit and, for a network that fits, its cycles, real
    time, link load, resources and energy."""

    network: str
    board: str
    fits: bool
    why_not: str = ""
    steps: int = 0
    dt_ms: float = 1.0
    clock_hz: float = 0.0
    cycles: CyclePrediction | None = None
    synaptic_events: float = 0.0  # per step, all cores
    link_in: float = 0.0  # bytes per step, host to device
    link_out: float = 0.0  # bytes per step, device to host
    link_capacity: float | None = None  # bytes per second each way (None: no UART)
    resources: dict[str, str] = field(default_factory=dict)
    energy: tuple[float, float] | None = None  # joules per step: low, high
    energy_sources: tuple[EnergySource, ...] = ()
    notes: list[str] = field(default_factory=list)
    over_device: list[str] = field(default_factory=list)  # resources the FPGA lacks

    @property
    def real_time_factor(self) -> float:
        assert self.cycles is not None
        return self.cycles.real_time_factor(self.clock_hz, self.dt_ms)

    @property
    def link_load(self) -> float | None:
        """The share of the UART (the busier way) a run at real time needs."""
        if self.link_capacity is None:
            return None
        per_s = 1000.0 / self.dt_ms
        return max(self.link_in, self.link_out) * per_s / self.link_capacity

    def lines(self) -> list[str]:
        head = f"{self.network} on {self.board}"
        if not self.fits:
            return [f"{head}: does not fit", f"  {self.why_not}"]
        assert self.cycles is not None
        c = self.cycles
        fits = "fits" if not self.over_device else "fits its system, which does NOT fit the FPGA"
        out = [
            f"{head}: {fits} (predicted over {self.steps} golden-model steps)",
            *(f"  {o}" for o in self.over_device),
            f"  cycles per step: {c.mean:.1f} mean, {c.max:.0f} longest "
            f"(synaptic events per step {self.synaptic_events:.1f})",
            f"  real time at dt {self.dt_ms:g} ms on {self.clock_hz / 1e6:g} MHz: "
            f"{self.real_time_factor:.3g}x (longest step "
            f"{c.real_time_factor(self.clock_hz, self.dt_ms, worst=True):.3g}x)",
        ]
        link = f"  host link: {self.link_in:.1f} B/step in, {self.link_out:.1f} B/step out"
        if self.link_load is not None:
            assert self.link_capacity is not None
            steps_per_s = self.link_capacity / max(self.link_in, self.link_out, 1e-9)
            link += (
                f"; at real time {100 * self.link_load:.2g}% of the UART "
                f"({self.link_capacity / 1000:g} kB/s each way; the link alone allows "
                f"{steps_per_s:.3g} steps/s)"
            )
        else:
            link += " (a pipe to the simulation: no UART limit)"
        out.append(link)
        if self.resources:
            out.append(
                "  resources (the board's measured build): "
                + ", ".join(f"{k} {v}" for k, v in self.resources.items())
            )
        if self.energy is not None:
            lo, hi = self.energy
            out.append(
                f"  energy (ESTIMATE from published power of other designs on this FPGA, "
                f"not a measurement; docs/estimate.md): {_si(lo, 'J')} to {_si(hi, 'J')} "
                "per step"
            )
            if self.synaptic_events > 0:
                per = self.synaptic_events
                out.append(
                    f"    per synaptic event: {_si(lo / per, 'J')} to {_si(hi / per, 'J')} "
                    "(a step's energy over its events)"
                )
            out += [f"    source: {s.source}: {s.what}" for s in self.energy_sources]
        out += [f"  note: {n}" for n in self.notes]
        return out


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x / 1e-15:.3g} f{unit}"


#: The measured builds the resource model of each board's device is fitted on, and what
#: to say where they differ from the board's part.
MODEL_DEVICE = {
    "icebreaker": ("up5k", ""),
    "ulx3s": ("ecp5-85f", ""),
    "orangecrab": (
        "ecp5-85f",
        "the model is fitted on LFE5U-85F-6 builds; the OrangeCrab's -8 part is faster",
    ),
}


def parse_core(text: str) -> dict[str, int | bool | str]:
    """Parse ``neurons=1024,axons=2048,learning=1`` into CoreConfig fields.

    Raises
    ------
    ValueError
        Naming the item that is not ``field=value``, the unknown field (and the known
        ones) or the value that is not a number.
    """
    import dataclasses

    from spikefab.hdl.layouts import CoreConfig

    known = {f.name: f for f in dataclasses.fields(CoreConfig)}
    out: dict[str, int | bool | str] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(f"--core: {item!r} is not field=value (e.g. neurons=1024)")
        if key not in known:
            raise ValueError(f"--core: no core field {key!r}; the fields: {', '.join(known)}")
        if key == "synapse_memory":
            out[key] = value.strip()
        elif key in ("learning", "stats"):
            if value.strip().lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise ValueError(f"--core: {key}={value!r}: give 1 or 0")
            out[key] = value.strip().lower() in ("1", "true", "yes")
        else:
            try:
                out[key] = int(value, 0)
            except ValueError:
                raise ValueError(f"--core: {key}={value!r} is not a whole number") from None
    return out


def _custom_board(board: Board, core: dict) -> Board:
    import dataclasses

    from spikefab.hdl.layouts import CoreConfig

    fields = {**dataclasses.asdict(board.system.core), **core}
    new_core = CoreConfig(**fields)  # checks the sizes (ValueError naming the field)
    system = dataclasses.replace(board.system, core=new_core)
    return dataclasses.replace(board, system=system, measured=None)


def _predicted_resources(board: Board, custom: Board, est: Estimate) -> float | None:
    """The custom system's resources: the board's measured build with its cores' predicted
    resources exchanged for the custom cores'. Returns the predicted logic cells of the
    whole system (``None`` where not predicted)."""
    from spikefab.boards.resources import leave_one_out, predict_core

    if board.name not in MODEL_DEVICE:
        est.notes.append(f"no resource model for the {board.name} board")
        return None
    device, caveat = MODEL_DEVICE[board.name]
    try:
        new = predict_core(custom.system.core, device)
    except ValueError as e:
        est.notes.append(f"resources not predicted: {e}")
        return None
    cores = custom.system.cores
    figures = {"LUT": new.lut * cores, "FF": new.ff * cores, "EBR": new.ebr * cores}
    base = None
    if board.measured is not None:
        try:
            base = predict_core(board.system.core, device)
        except ValueError:
            base = None
    if base is not None and board.measured is not None:
        m = board.measured.resources
        n0 = board.system.cores
        figures = {
            "LUT": m["lut"][0] + cores * new.lut - n0 * base.lut,
            "FF": m["ff"][0] + cores * new.ff - n0 * base.ff,
            "EBR": m["ebr"][0] + cores * new.ebr - n0 * base.ebr,
        }
        avail = {"LUT": m["lut"][1], "FF": m["ff"][1], "EBR": m["ebr"][1]}
        what = "the board's measured build, its cores exchanged for the predicted ones"
    else:
        avail = {}
        what = f"{cores} core(s) only: the rest of the board's system is not in the model"
    for k, v in figures.items():
        a = avail.get(k)
        est.resources[k] = f"{v:.0f}" + (f" / {a} ({100 * v / a:.0f}%)" if a else "")
        if a and v > a:
            est.over_device.append(
                f"the custom system needs {v:.0f} {k}, {v - a:.0f} more than the {a} of the "
                f"{board.device} (predicted)"
            )
    est.resources["core fmax"] = f"{new.fmax_mhz:.0f} MHz"
    errs: dict[str, list[float]] = {}
    for r in leave_one_out():
        if r["device"] != device:
            continue
        for f in ("lut", "ff", "ebr", "fmax_mhz"):
            if f not in r:
                continue
            meas, pred = r[f]
            if meas:
                errs.setdefault(f, []).append(abs(pred - meas) / meas)
    err = ", ".join(f"{f} {100 * sum(e) / len(e):.0f}%" for f, e in errs.items())
    est.notes.append(
        f"resources PREDICTED ({what}) by a model fitted on {new.builds} measured builds of "
        f"{device} cores; its mean error on builds it was not fitted to: {err} "
        "(bench/resource_model.py)"
    )
    if caveat:
        est.notes.append(caveat)
    return figures["LUT"] if avail else None


def estimate(
    net: Network,
    board: Board,
    steps: int = 500,
    core: dict | None = None,
    image: Image | None = None,
) -> Estimate:
    """Map ``net`` onto ``board``'s system (with ``core``: its cores changed to those
    CoreConfig fields) and predict its steps over a golden-model run of ``steps`` steps
    (see :class:`Estimate`). ``image``: the network already mapped onto the board's
    system."""
    from spikefab.host.api import image_for
    from spikefab.mapping.core_image import FitError
    from spikefab.sim.cycles import predict_cycles

    est = Estimate(net.name, board.name, fits=False, steps=steps, dt_ms=net.dt_ms)
    original = board
    if core:
        board = _custom_board(board, core)
        est.board = (
            f"{original.name} with cores of {', '.join(f'{k}={v}' for k, v in core.items())}"
        )
    if image is None:
        try:
            image = image_for(net, "verilator", board=board)
        except FitError as e:
            est.why_not = str(e)
            return est
    est.fits = True
    est.clock_hz = board.clock_hz or 0.0
    if not est.clock_hz:
        from spikefab.boards import get_board

        est.clock_hz = get_board("ulx3s").clock_hz
        est.notes.append(
            f"the {board.name} board has no clock of its own: real time is given at "
            f"{est.clock_hz / 1e6:g} MHz"
        )
    pred = predict_cycles(net, image, steps)
    est.cycles = pred
    est.notes += pred.notes
    est.synaptic_events = float(pred.events.sum() / max(steps, 1))
    with_inputs = np.flatnonzero(pred.sources)
    marks = int(with_inputs[-1]) + 1 if with_inputs.size else 0
    inp, out = link_bytes(float(pred.host_spikes.sum()), float(pred.sources.sum()), steps, marks)
    est.link_in, est.link_out = inp / steps, out / steps
    if board.platform is not None:
        est.link_capacity = board.baud / 10  # 8N1: ten bits a byte
    luts = None
    if core:
        luts = _predicted_resources(original, board, est)
    elif board.measured is not None:
        est.resources = board.measured.summary()
        luts = board.measured.resources["lut"][0]
    if board.family in ENERGY_SOURCES:
        lo, hi = ENERGY_SOURCES[board.family]
        # energy per clock cycle: a source's power over its clock, so the step's cycles
        # carry the static power too; the device is charged for its steps only
        est.energy = (
            lo.power(luts) / lo.clock_hz * pred.mean,
            hi.power(luts) / hi.clock_hz * pred.mean,
        )
        est.energy_sources = (lo, hi)
        parts = sorted({x.part for x in (lo, hi) if not board.device.startswith(x.part)})
        if parts:
            est.notes.append(
                f"the energy sources measured the {', '.join(parts)}, not the {board.device}: "
                "no published measurement of this part was found"
            )
    else:
        est.notes.append(f"no energy estimate for the {board.name} board (not an FPGA)")
    return est
