"""A thin wrapper that brings every port of a neuron core out to a handful of pins.

A core's ports are far wider than any package has pins (the configuration request alone is
80 bits), so for synthesis every input bit comes from a serial-in shift register and every
output bit goes into a parallel-load, serial-out register, all in the core's clock domain:

``sin``
    Shifted into the input chain on every clock where ``shift`` is high; the chain drives
    every input port of the core (stream payloads, valids, readies and ``step``).
``load``
    Loads every output port of the core (readies, valids, payloads, ``done``, ``idle``) into
    the output register; otherwise the register shifts right by one each clock.
``sout``
    Bit 0 of the output register.

Every core input is then a flip-flop and every core output ends in one (behind the load
multiplexer, one LUT), so the wrapper adds next to no logic to the core's paths, and nothing
can be optimized away: each input bit is reachable
from ``sin``, and each output bit reaches ``sout``. Besides ``clk`` and ``rst`` (Amaranth's
``sync`` domain) the design has 4 pins.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spikefab.hdl.core import NeuronCore
from spikefab.hdl.layouts import CoreConfig

__all__ = ["PinWrapper"]


def _flat_ports(core: NeuronCore) -> tuple[list, list]:
    """The core's port values, split into inputs and outputs (flattened, in a fixed order)."""
    inputs, outputs = [], []
    for path, member, value in core.signature.flatten(core):
        target = inputs if member.flow == In else outputs
        target.append((".".join(str(p) for p in path), Value.cast(value)))
    return inputs, outputs


class PinWrapper(wiring.Component):
    """A :class:`~spikefab.hdl.core.NeuronCore` behind serial shift chains (4 pins)."""

    def __init__(self, config: CoreConfig):
        self._config = config
        super().__init__({"sin": In(1), "shift": In(1), "load": In(1), "sout": Out(1)})
        self.core = NeuronCore(config)
        ins, outs = _flat_ports(self.core)
        self.in_bits = sum(len(v) for _, v in ins)
        self.out_bits = sum(len(v) for _, v in outs)

    def elaborate(self, platform):  # type: ignore[no-untyped-def]
        m = Module()
        m.submodules.core = core = self.core
        ins, outs = _flat_ports(core)
        in_vals = [v for _, v in ins]
        out_vals = [v for _, v in outs]

        chain = Signal(self.in_bits)
        with m.If(self.shift):
            m.d.sync += chain.eq(Cat(chain[1:], self.sin))
        m.d.comb += Cat(*in_vals).eq(chain)

        shreg = Signal(self.out_bits)
        with m.If(self.load):
            m.d.sync += shreg.eq(Cat(*out_vals))
        with m.Else():
            m.d.sync += shreg.eq(shreg >> 1)
        m.d.comb += self.sout.eq(shreg[0])
        return m
