"""The whole device (hdl/top.py) driven by the real host code, on Icarus and Verilator.

The host runtime (``host/link.py``, ``host/runtime.py``) runs unchanged in a thread that
cocotb bridges to the simulation: its transport puts bytes on ``i_rx`` and takes them from
``o_tx`` (with random idle cycles and backpressure in the stressed runs). A random
2-core network is mapped, loaded and run; every spike must equal the golden model's, and
the probed ``v`` too. The link is also fed corrupted, truncated, unknown and garbage frames,
each of which must get its error reply while the link carries on.
"""

from __future__ import annotations

import os
import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from spikefab.hdl.layouts import CoreConfig, CoreMem, SystemConfig, SystemMem
from spikefab.hdl.protocol import ErrorCode, FrameDecoder, Op, encode_frame

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CONFIG = SystemConfig(
    cores=2,
    core=CoreConfig(neurons=16, axons=64, synapses=256, delay_slots=4),
    sources=16,
    route_entries=256,
    inject_depth=16,
)
TIMEOUT = 3000  # the receiver's idle timeout in cycles (small, for the truncation test)
STEPS = 30

try:
    import cocotb
    from cocotb.task import bridge
except ImportError:
    cocotb = None


def random_network(seed: int):  # type: ignore[no-untyped-def]
    """A random network for two 16-neuron cores: sources, two populations, recurrence."""
    from spikefab.mapping.network import NetworkBuilder

    rng = np.random.default_rng(seed)
    b = NetworkBuilder(f"system{seed}")
    b.spike_source("inp", 12, poisson={"rate_hz": 150, "seed": seed})
    b.population(
        "a",
        14,
        du=int(rng.integers(200, 4096)),
        dv=int(rng.integers(0, 600)),
        vth=int(rng.integers(100, 400)),
        refractory=int(rng.integers(0, 3)),
    )
    b.population(
        "b",
        12,
        du=int(rng.integers(200, 4096)),
        dv=int(rng.integers(0, 600)),
        vth=int(rng.integers(100, 400)),
        reset="subtract",
    )
    for pre, post in [("inp", "a"), ("inp", "b"), ("a", "b"), ("b", "a"), ("a", "a")]:
        b.project(
            pre,
            post,
            connect={"kind": "fixed_probability", "p": 0.3, "seed": int(rng.integers(1 << 20))},
            weight={"kind": "uniform", "low": -40, "high": 127, "seed": int(rng.integers(1 << 20))},
            weight_exp=int(rng.integers(0, 3)),
            delay={"kind": "uniform", "low": 1, "high": 4, "seed": int(rng.integers(1 << 20))},
        )
    b.probe("b", "v", neurons=[0, 5])
    b.probe("b", "u")
    b.probe("a", "u")
    return b.build()


if cocotb is not None:
    from spikefab.sim.cocotb_device import start as start_device

    async def start(dut, stress: bool):  # type: ignore[no-untyped-def]
        seed = int(os.environ.get("SPIKEFAB_SEED", "7")) + stress
        return await start_device(dut, stress, seed)

    @cocotb.test()
    @cocotb.parametrize(stress=[False, True])
    async def network_matches_golden(dut, stress: bool) -> None:  # type: ignore[no-untyped-def]
        from spikefab.host.link import LinkDevice
        from spikefab.host.runtime import check_device, run_network
        from spikefab.mapping.image import place_sequential
        from spikefab.sim.golden import GoldenModel
        from spikefab.sim.results import compare_results

        transport = await start(dut, stress)

        @bridge
        def host() -> list:
            results = []
            dev = LinkDevice(transport, timeout=120.0)
            check_device(dev, CONFIG)
            for seed in (1, 2):
                net = random_network(seed)
                image = place_sequential(net, CONFIG)
                got = run_network(net, image, dev, STEPS, "rtl")
                results.append((net, got, dev.status()))
            return results

        for net, got, status in await host():
            ref = GoldenModel(net).run(STEPS)
            assert ref.n_spikes > 20, "a network that hardly fires proves little"
            cmp = compare_results(ref, got)
            assert cmp.equal, f"{net.name}: {cmp.mismatches} mismatches\n{cmp.first}"
            assert status["step"] == STEPS
            dut._log.info("%s: %d spikes equal; status %s", net.name, got.n_spikes, status)

    @cocotb.test()
    async def link_survives_bad_frames(dut) -> None:  # type: ignore[no-untyped-def]
        from spikefab.host.link import LinkDevice

        transport = await start(dut, stress=False)

        @bridge
        def host() -> None:
            dev = LinkDevice(transport, timeout=120.0)
            decoder = FrameDecoder()

            def reply() -> bytes:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    frames = list(decoder.feed(transport.read(0.05)))
                    if frames:
                        assert len(frames) == 1 and frames[0].error is None, frames
                        return frames[0].body
                raise AssertionError("no reply")

            def error_of(wire: bytes) -> int:
                transport.write(wire)
                body = reply()
                assert body[0] == Op.R_ERROR, body
                return body[1]

            info = dev.info()
            # a corrupted CRC
            wire = bytearray(encode_frame(bytes([Op.INFO])))
            wire[2] ^= 0x01
            assert error_of(bytes(wire)) == ErrorCode.CRC
            # an unknown opcode, a wrong length, an address out of range
            assert error_of(encode_frame(bytes([0x7E]))) == ErrorCode.OPCODE
            assert error_of(encode_frame(bytes([Op.INFO, 0]))) == ErrorCode.LENGTH
            bad = struct.pack("<BBBIH", Op.READ, 0, CoreMem.PARAMS.value, 15, 2)
            assert error_of(encode_frame(bad)) == ErrorCode.ADDRESS
            bad = struct.pack("<BBBIH", Op.READ, 9, 0, 0, 1)
            assert error_of(encode_frame(bad)) == ErrorCode.ADDRESS
            # a bad escape
            assert (
                error_of(bytes([0xC0, Op.INFO, 0xDB, 0x01, 0x00, 0x00, 0xC0])) == ErrorCode.ESCAPE
            )
            # injecting more than fits is refused whole
            too_many = struct.pack("<BH", Op.INJECT, 17) + bytes(34)
            assert error_of(encode_frame(too_many)) == ErrorCode.FULL
            # garbage, then a good frame
            transport.write(bytes(random.Random(3).randrange(256) for _ in range(40)) + b"\xc0")
            time.sleep(0)
            frames_seen = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not frames_seen:
                frames_seen += list(decoder.feed(transport.read(0.05)))
            assert frames_seen, "garbage must get an error reply"
            assert all(f.body[0] == Op.R_ERROR for f in frames_seen)
            assert dev.info() == info
            # a truncated frame: half a WRITE, then silence past the timeout
            half = encode_frame(struct.pack("<BBBIHQ", Op.WRITE, 0, 0, 0, 1, 5))[:8]
            assert error_of(half) == ErrorCode.TRUNCATED
            dev.write(0, CoreMem.PARAMS.value, 3, [0x1234])
            assert dev.read(0, CoreMem.PARAMS.value, 3, 1) == [0x1234]
            dev.write(0xFF, SystemMem.ROUTE_ENTRIES.value, 5, [3])
            assert dev.read(0xFF, SystemMem.ROUTE_ENTRIES.value, 5, 1) == [3]
            status = dev.status()
            assert status["errors"] >= 9, status

        await host()

    @cocotb.test()
    async def every_frame_kind_round_trips(dut) -> None:  # type: ignore[no-untyped-def]
        """Each request and reply, encoded and decoded by the host codec, through the RTL.

        The replies are checked against the in-process system model doing the same
        requests, and against the tables of hdl/protocol.py.
        """
        from spikefab.hdl.protocol import (
            REPLIES,
            REQUESTS,
            STEP_MARK,
            DeviceError,
            DeviceInfo,
        )
        from spikefab.host.link import LinkDevice
        from spikefab.host.runtime import load
        from spikefab.mapping.image import place_sequential
        from spikefab.sim.system_model import SystemModel

        transport = await start(dut, stress=True)

        @bridge
        def host() -> None:
            dev = LinkDevice(transport, timeout=120.0)
            model = SystemModel(CONFIG)
            # INFO
            info = dev.info()
            assert info == model.info() == DeviceInfo.from_config(CONFIG)
            # WRITE, READ, CLEAR (with the SLIP bytes among the words)
            mask = (1 << CONFIG.core.synapse_layout.size) - 1  # the memory's width
            words = [w & mask for w in (0xC0DB_C0DB_C0DB, 0xDBDB, 0xC0, 7, 0xFFFF_FFFF, 0xC0)]
            for d in (dev, model):
                d.write(1, CoreMem.SYNAPSES.value, 2, words)
                d.clear(1, CoreMem.SYNAPSES.value, 3, 2)
            got = dev.read(1, CoreMem.SYNAPSES.value, 2, 6)
            assert got == model.read(1, CoreMem.SYNAPSES.value, 2, 6)
            assert got == [words[0], 0, 0, *words[3:]]
            # a network: INJECT, then RUN with inputs, spikes in R_SPIKES frames
            net = random_network(3)
            image = place_sequential(net, CONFIG)
            ids = [int(x) for x in image.source_of["inp"]]
            inputs = [[ids[(3 * t + k) % len(ids)] for k in range(t % 4)] for t in range(25)]
            seen = {}
            for name, d in (("rtl", dev), ("model", model)):
                load(d, image)
                spikes: list[tuple[int, int]] = []
                ends: list[tuple[int, int]] = []
                d.inject(ids[:3])
                d.run(
                    40,
                    lambda t, g, s=spikes: s.extend((t, x) for x in g),
                    lambda t, n, e=ends: e.append((t, n)),
                    inputs=inputs,
                )
                seen[name] = (
                    sorted(spikes),
                    ends,
                    d.status()["step"],
                )  # counters differ: earlier tests
            assert seen["rtl"] == seen["model"]
            assert len(seen["rtl"][0]) > 20 and [t for t, _ in seen["rtl"][1]] == list(range(40))
            # the raw R_SPIKES and R_RUN_END bodies follow the tables
            dev.send(REQUESTS[Op.RUN].pack(3, items=[ids[0], STEP_MARK]))
            frames = [dev.receive("RUN")]
            while frames[-1].op != Op.R_RUN_END:
                frames.append(dev.receive("RUN"))
            for k, f in enumerate(frames[:-1]):
                (seq,), items = REPLIES[Op.R_SPIKES].unpack(f.body)
                assert seq == k and items.count(STEP_MARK) <= 3
            step, n = REPLIES[Op.R_RUN_END].unpack(frames[-1].body)[0]
            assert (
                step == 43
                and n == sum(len(REPLIES[Op.R_SPIKES].unpack(f.body)[1]) for f in frames[:-1]) - 3
            )
            # each error reply, as the host decodes it, and as the model refuses it
            cases = [
                (lambda d: d.read(9, 0, 0, 1), ErrorCode.ADDRESS),
                (lambda d: d.clear(0, CoreMem.PARAMS.value, 15, 2), ErrorCode.ADDRESS),
                (lambda d: d.inject([CONFIG.sources]), ErrorCode.ADDRESS),
                (lambda d: d.inject([0] * (CONFIG.inject_depth + 1)), ErrorCode.FULL),
                (lambda d: d.run(2, print, inputs=[[0] * 17, []]), ErrorCode.FULL),
                (lambda d: d.run(1, print, inputs=[[CONFIG.sources]]), ErrorCode.ADDRESS),
            ]
            for call, code in cases:
                for d in (dev, model):
                    with pytest.raises(DeviceError, match=code.name):
                        call(d)
            # too many steps marked, a RUN body of half an item, an unknown opcode
            for body, code in (
                (REQUESTS[Op.RUN].pack(1, items=[STEP_MARK, STEP_MARK]), ErrorCode.LENGTH),
                (REQUESTS[Op.RUN].pack(1) + b"\x00", ErrorCode.LENGTH),
                (bytes([0x7E]), ErrorCode.OPCODE),
            ):
                dev.send(body)
                f = dev.receive("an error")
                assert REPLIES[Op.R_ERROR].unpack(f.body)[0] == (
                    code,
                    body[0] if code != ErrorCode.OPCODE else 0x7E,
                )
            assert dev.status()["step"] == model.status()["step"] + 3

        await host()


# the simulation's link (two frames, word-wide reads) on both simulators, a board's on one
@pytest.mark.parametrize(
    ("sim", "link"), [("icarus", "sim"), ("verilator", "sim"), ("verilator", "board")]
)
def test_system(sim: str, link: str) -> None:
    from spikefab.hdl.top import SimTop
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = ROOT / "sim_build" / "system" / f"{sim}-{link}"
    sizes = {"frames": 1, "read_width": 1} if link == "board" else {}
    top = SimTop(CONFIG, timeout=TIMEOUT, **sizes)
    verilog = write_verilog(top, "spikefab_top", build / "top.v")
    run_cocotb(sim, [verilog], "spikefab_top", "test_system", test_dir=HERE, build_dir=build)
