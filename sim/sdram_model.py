"""Gateware on the SDRAM model: a design whose ``sdram`` pins drive ``sdram/sdram_model.v``.

:class:`OnSDRAMModel` wraps a component that has an ``sdram`` member (the pins of
:func:`~spikefab.hdl.sdram.sdram_pins_signature`, such as a core with its synapse table in
SDRAM, or a system of such cores) into a component with the same members but ``sdram``,
plus the model's ``sdram_violation`` and ``sdram_rule``; the model is an ``Instance`` of
module ``sdram_model``, so the simulator compiles :data:`MODEL` with the design's Verilog.
Its ports keep their names, so a testbench or harness written for the design drives the
wrapper unchanged. With ``fatal`` (the default) the model stops the simulation at the first
timing rule broken, naming the rule.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out
from spikefab.hdl.sdram import SDRAMGeometry, SDRAMTiming

__all__ = ["MODEL", "OnSDRAMModel", "model_path"]


def model_path() -> Path:
    """The model's Verilog (``sim/sdram/sdram_model.v``)."""
    return Path(str(resources.files("spikefab.sim") / "sdram" / "sdram_model.v"))


#: The model's Verilog.
MODEL = model_path()

#: The model's address pins: 13 (A0 .. A12), the AS4C32M16SB's.
MODEL_A_BITS = 13


class OnSDRAMModel(wiring.Component):
    """``dut`` with its ``sdram`` pins on the SDRAM model.

    Parameters
    ----------
    dut
        A :class:`~amaranth.lib.wiring.Component` with an ``sdram`` member.
    geometry, timing, clk_freq
        The SDRAM the model is (its rows and columns, its figures) and the clock the design
        runs at (Hz): the model counts its rules in clocks of ``clk_freq``.
    fatal
        Stop the simulation at the first violation (else only ``sdram_violation`` rises).
    domain
        The clock domain of the SDRAM (``SDRAMOptions.domain``). Other than ``"sync"``, the
        wrapper makes it: its clock is the ``sdram_clk`` input, its reset ``sync``'s,
        synchronized.

    Attributes
    ----------
    sdram_clk : In(1)
        The SDRAM's clock, when ``domain`` is not ``"sync"``.
    sdram_violation : Out(1)
        A rule was broken (stays high).
    sdram_rule : Out(8)
        The code of the rule (see the model's source).
    """

    def __init__(
        self,
        dut: wiring.Component,
        geometry: SDRAMGeometry,
        timing: SDRAMTiming,
        clk_freq: float,
        *,
        fatal: bool = True,
        domain: str = "sync",
    ):
        if "sdram" not in dut.signature.members:
            raise ValueError(f"{dut!r} has no sdram member")
        if geometry.bank_bits != 2:
            raise ValueError("the SDRAM model has 4 banks: geometry.bank_bits must be 2")
        self._dut = dut
        self._geometry = geometry
        self._timing = timing
        self._clk_freq = clk_freq
        self._fatal = fatal
        self._domain = domain
        members = {k: v for k, v in dut.signature.members.items() if k != "sdram"}
        members |= {"sdram_violation": Out(1), "sdram_rule": Out(8)}
        if domain != "sync":
            members["sdram_clk"] = In(1)
        super().__init__(members)

    @property
    def dut(self) -> wiring.Component:
        return self._dut

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        m.submodules.dut = dut = self._dut
        dom = self._domain
        if dom != "sync":
            cd = ClockDomain(dom)
            m.domains += cd
            m.d.comb += cd.clk.eq(self.sdram_clk)
            m.submodules.sdram_reset = ResetSynchronizer(ResetSignal("sync"), domain=dom)
        for name, member in dut.signature.members.items():
            if name in ("sdram", "sdram_clk"):
                continue
            ours, theirs = getattr(self, name), getattr(dut, name)
            if member.is_signature:
                if member.flow == wiring.In:
                    wiring.connect(m, wiring.flipped(ours), theirs)
                else:
                    wiring.connect(m, theirs, wiring.flipped(ours))
            elif member.flow == wiring.In:
                m.d.comb += theirs.eq(ours)
            else:
                m.d.comb += ours.eq(theirs)

        pins = dut.sdram
        geo, t = self._geometry, self._timing
        clk_ps = round(1e12 / self._clk_freq)
        model_dq = Signal(16)
        a = Signal(MODEL_A_BITS)
        m.d.comb += [a.eq(pins.a), pins.dq_i.eq(model_dq)]

        def ps(ns: float) -> int:
            return round(ns * 1000)

        m.submodules.model = Instance(
            "sdram_model",
            p_ROW_BITS=geo.row_bits,
            p_COL_BITS=geo.col_bits,
            p_CLK_PS=clk_ps,
            p_TRCD_PS=ps(t.t_rcd),
            p_TRP_PS=ps(t.t_rp),
            p_TRC_PS=ps(t.t_rc),
            p_TRAS_PS=ps(t.t_ras),
            p_TRAS_MAX_PS=ps(t.t_ras_max),
            p_TWR_PS=ps(t.t_wr),
            p_TRRD_PS=ps(t.t_rrd),
            p_TMRD_PS=ps(t.t_mrd),
            p_TMRD_CK=t.t_mrd_clocks,
            p_TRFC_PS=ps(t.t_rfc),
            p_INIT_CYCLES=math.ceil(t.t_power_up * 1000 / clk_ps),
            p_INIT_REFRESHES=t.init_refreshes,
            p_FATAL=int(self._fatal),
            i_clk=ClockSignal(dom),
            i_cke=pins.cke,
            i_cs_n=pins.cs_n,
            i_ras_n=pins.ras_n,
            i_cas_n=pins.cas_n,
            i_we_n=pins.we_n,
            i_ba=pins.ba,
            i_a=a,
            i_dqm=pins.dqm,
            i_dq_i=pins.dq_o,
            i_dq_oe_ctrl=pins.dq_oe,
            o_dq_o=model_dq,
            o_dq_oe=Signal(2),
            o_dq_drive=Signal(),
            o_violation=self.sdram_violation,
            o_rule=self.sdram_rule,
            o_refreshes=Signal(32),
            o_cycle=Signal(64),
        )
        return m


def device_top(config, sdram=None):  # type: ignore[no-untyped-def]
    """The simulated device of a :class:`~spikefab.hdl.layouts.SystemConfig`, and the extra
    Verilog sources it needs.

    A system that keeps its synapses on the chip is :class:`~spikefab.hdl.top.SimTop` alone;
    one with its synapse table in SDRAM is ``SimTop`` on the SDRAM model (``sdram``, an
    :class:`~spikefab.hdl.synapse_store.SDRAMOptions`, gives the part and the clock; the
    ULX3S's by default), and needs :data:`MODEL`. Either way the ports are
    ``SimTop``'s (plus ``sdram_violation`` and ``sdram_rule``), so the harness is the same.
    """
    from spikefab.hdl.top import SimTop

    top = SimTop(config, sdram=sdram)
    opts = top.sdram_options
    if opts is None:
        return top, []
    wrapped = OnSDRAMModel(top, opts.geometry, opts.timing, opts.clk_freq, domain=opts.domain)
    return wrapped, [MODEL]
