"""The configuration request and reply of hdl/cfg_bus.py, as the core, router and system use."""

from __future__ import annotations

import gc

import pytest
from amaranth.hdl import unsigned
from spikefab.hdl.cfg_bus import cfg_reply_layout, cfg_request_layout
from spikefab.hdl.core import NeuronCore
from spikefab.hdl.layouts import CFG_DATA_BITS, CoreConfig, CoreMem, SystemConfig, SystemMem
from spikefab.hdl.router import Router
from spikefab.hdl.system import System, system_request_layout

CORE = CoreConfig(neurons=16, axons=64, synapses=512, delay_slots=4)


# the components are built to read their signatures, never elaborated: let them say so here
unused = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@unused
def test_core_request_is_the_shared_one() -> None:
    core = NeuronCore(CORE)
    assert core.i_cfg.payload.shape() == cfg_request_layout(CoreMem, CORE.addr_bits)
    # the layout the host and the testbenches pack requests with (hdl/layouts.py)
    assert core.i_cfg.payload.shape() == CORE.cfg_request_layout
    assert core.o_cfg.payload.shape() == cfg_reply_layout() == CORE.cfg_reply_layout
    del core
    gc.collect()


@unused
def test_router_and_system_use_the_shared_request() -> None:
    cfg = SystemConfig(cores=2, core=CORE)
    router = Router(cfg)
    req = router.i_cfg.payload.shape()
    assert req == cfg_request_layout(SystemMem, req["addr"].shape.width)
    assert router.o_cfg.payload.shape() == cfg_reply_layout()
    system = System(cfg)
    assert system.i_cfg.payload.shape() == system_request_layout()
    assert system.o_cfg.payload.shape() == cfg_reply_layout()
    fields = {name: field.shape for name, field in system_request_layout()}
    assert fields == {
        "target": unsigned(8),
        "write": unsigned(1),
        "mem": unsigned(3),
        "addr": unsigned(32),
        "data": unsigned(CFG_DATA_BITS),
    }
    assert next(name for name, _ in system_request_layout()) == "target"
    del router, system
    gc.collect()


@pytest.mark.parametrize("bad", [0, -1, 3.0])
def test_widths_are_checked(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"addr_bits must be a positive integer, not {bad!r}"):
        cfg_request_layout(CoreMem, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"target_bits must be a positive integer, not {bad!r}"):
        cfg_request_layout(CoreMem, 8, target_bits=bad)  # type: ignore[arg-type]
