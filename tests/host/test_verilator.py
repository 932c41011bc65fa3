"""The whole device in Verilator, spoken to through the harness's pipes and, in this
process, through the harness built as a library (contract 8).

The first test to run builds the harness (a minute or two, once: the build is cached, and
concurrent workers wait for one another); most tests share one running simulation of each
kind.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import time

import pytest
from spikefab.hdl.executor import info_bytes
from spikefab.hdl.layouts import (
    CoreConfig,
    CoreMem,
    CoreReg,
    SystemConfig,
    SystemMem,
    SystemReg,
    pack,
)
from spikefab.hdl.protocol import ErrorCode, FrameDecoder, Op, Target, encode_frame, word_size
from spikefab.host.link import DeviceError, LinkDevice, LinkTimeoutError
from spikefab.host.verilator import open_verilator
from spikefab.sim.verilator import build_harness

CONFIG = SystemConfig(
    cores=2,
    core=CoreConfig(neurons=16, axons=32, synapses=64, delay_slots=4),
    sources=8,
    route_entries=64,
)
#: Seconds to wait for a reply: generous, for a loaded CI machine.
TIMEOUT = 30.0


@pytest.fixture(scope="module", params=["program", "in process"])
def device(request):
    """One running simulation: the harness as a program on pipes, or as a library in this
    process; every test that takes it runs on both."""
    in_process = request.param == "in process"
    dev = open_verilator(CONFIG, timeout=TIMEOUT, in_process=in_process)
    yield dev
    dev.close()
    if not in_process:
        assert dev.transport.proc.returncode == 0


def replies(dev: LinkDevice, n: int) -> list[bytes]:
    """Return the bodies of the next ``n`` frames, which must all be intact."""
    out = []
    for _ in range(n):
        frame = dev.receive(f"reply {len(out) + 1} of {n}")
        assert frame.error is None, frame
        out.append(frame.body)
    return out


def error(code: ErrorCode, op: int = 0) -> bytes:
    return bytes([Op.R_ERROR, code, op])


def random_words(rng: random.Random, bits: int, n: int) -> list[int]:
    """``n`` words of ``bits`` bits, with the SLIP bytes END and ESC among them."""
    words = [rng.getrandbits(bits) for _ in range(n)]
    words[0] = int.from_bytes(bytes([0xC0, 0xDB] * 4), "little") & ((1 << bits) - 1)
    return words


def test_build_is_cached():
    first = build_harness(CONFIG)
    start = time.monotonic()
    assert build_harness(CONFIG) == first
    assert time.monotonic() - start < 2.0
    assert first.exists()
    # another process finds the build without generating the Verilog again (it says nothing)
    code = (
        "import sys\n"
        "from spikefab.hdl.layouts import CoreConfig, SystemConfig\n"
        "from spikefab.sim.verilator import build_harness\n"
        "print(build_harness(eval(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, repr(CONFIG)], capture_output=True, text=True, check=True
    )
    assert (done.stdout.strip(), done.stderr) == (str(first), "")


def test_info_matches_config(device):
    device.send(bytes([Op.INFO]))
    assert replies(device, 1) == [info_bytes(CONFIG)]
    info = device.info()
    assert (info.cores, info.neurons, info.axons, info.synapses, info.delay_slots) == (
        2,
        16,
        32,
        64,
        4,
    )
    assert (info.sources, info.route_entries) == (8, 64)


@pytest.mark.parametrize("core", range(CONFIG.cores))
def test_core_memories_round_trip(device, core):
    rng = random.Random(core)
    written = {}
    for mem in (CoreMem.STATE, CoreMem.PARAMS, CoreMem.RING, CoreMem.AXONS, CoreMem.SYNAPSES):
        bits = CONFIG.core.layout_of(mem).size
        written[mem] = random_words(rng, bits, CONFIG.core.depth_of(mem))
        device.write(core, mem.value, 0, written[mem])
    for mem, words in written.items():
        assert device.read(core, mem.value, 0, len(words)) == words, mem
    # a part of a memory, at an offset
    device.write(core, CoreMem.SYNAPSES.value, 5, [1, 2, 3])
    assert device.read(core, CoreMem.SYNAPSES.value, 4, 5) == [
        written[CoreMem.SYNAPSES][4],
        1,
        2,
        3,
        written[CoreMem.SYNAPSES][8],
    ]


def test_route_tables_round_trip(device):
    rng = random.Random(7)
    tables = {}
    for mem in (SystemMem.ROUTE_POINTERS, SystemMem.ROUTE_ENTRIES):
        bits = CONFIG.layout_of(mem).size
        tables[mem] = random_words(rng, bits, CONFIG.depth_of(mem))
        device.write(Target.SYSTEM, mem.value, 0, tables[mem])
    for mem, words in tables.items():
        assert device.read(Target.SYSTEM, mem.value, 0, len(words)) == words, mem
    clear_routes(device)


def clear_routes(dev: LinkDevice) -> None:
    for mem in (SystemMem.ROUTE_POINTERS, SystemMem.ROUTE_ENTRIES):
        dev.write(Target.SYSTEM, mem.value, 0, [0] * CONFIG.depth_of(mem))


def test_status_counts_frames_and_errors(device):
    before = device.status()
    assert set(before) == {
        "step",
        "router_events",
        "router_stalls",
        "host_spikes",
        "max_core_fifo",
        "max_spike_fifo",
        "errors",
        "frames",
    }
    device.send(bytes([Op.STATUS, 0]))  # too long
    assert replies(device, 1) == [error(ErrorCode.LENGTH, Op.STATUS)]
    after = device.status()
    assert after["frames"] == before["frames"] + 2
    assert after["errors"] == before["errors"] + 1


def test_address_out_of_range_is_refused(device):
    with pytest.raises(DeviceError) as e:
        device.read(CONFIG.cores, CoreMem.STATE.value, 0, 1)  # no such core
    assert e.value.code == ErrorCode.ADDRESS
    with pytest.raises(DeviceError) as e:
        device.read(0, CoreMem.AXONS.value, CONFIG.core.axons - 1, 2)
    assert e.value.code == ErrorCode.ADDRESS


def test_unknown_opcode(device):
    device.send(bytes([0x7F, 1, 2]))
    assert replies(device, 1) == [error(ErrorCode.OPCODE, 0x7F)]
    assert device.info().cores == CONFIG.cores


def test_corrupt_crc(device):
    wire = bytearray(encode_frame(bytes([Op.INFO])))
    assert wire[-3] not in (0xC0, 0xDB, 0xC1, 0xDA)  # flipping bit 0 makes no SLIP byte
    wire[-3] ^= 1  # the CRC's high byte
    device.transport.write(bytes(wire))
    assert replies(device, 1) == [error(ErrorCode.CRC)]
    assert device.info().cores == CONFIG.cores


@pytest.mark.parametrize(
    ("garbage", "code"),
    [
        (b"\x00\x01\x02\x03\x04\x05", ErrorCode.CRC),
        (b"\x42", ErrorCode.LENGTH),
        (b"\x10\xdb\x11\x12\x13\x14", ErrorCode.ESCAPE),
    ],
)
def test_garbage_between_frames(device, garbage, code):
    # the garbage between two frames is a frame of its own, refused; the next one is served
    device.transport.write(
        encode_frame(bytes([Op.INFO])) + garbage + encode_frame(bytes([Op.INFO]))
    )
    assert replies(device, 3) == [info_bytes(CONFIG), error(code), info_bytes(CONFIG)]


def test_truncated_frame(device):
    wire = encode_frame(struct.pack("<BBBIH", Op.READ, 0, CoreMem.STATE.value, 0, 4))
    device.transport.write(wire[: len(wire) // 2])
    # the receiver gives up after SIM_TIMEOUT idle cycles; the harness clocks them promptly
    assert replies(device, 1) == [error(ErrorCode.TRUNCATED)]
    # the rest of the frame is discarded up to its END; the next frame is served
    device.transport.write(wire[len(wire) // 2 :])
    assert device.info().cores == CONFIG.cores
    # nothing else came
    assert device.transport.read(0.2) == b""


def test_raw_frames_match_the_host_decoder(device):
    # a READ reply full of SLIP bytes comes back intact through the harness's pipes
    mask = (1 << CONFIG.core.layout_of(CoreMem.STATE).size) - 1
    words = [w & mask for w in (0xC0DBC0DBC0DBC0DB, 0xDBDBDBDBDBDBDBDB, 0xC0C0C0C0C0C0C0C0, 0)]
    device.write(1, CoreMem.STATE.value, 0, words)
    device.transport.write(encode_frame(struct.pack("<BBBIH", Op.READ, 1, 0, 0, 4)))
    decoder, frames, deadline = FrameDecoder(), [], time.monotonic() + TIMEOUT
    while not frames and time.monotonic() < deadline:
        frames += list(decoder.feed(device.transport.read(0.5)))
    size = word_size(CONFIG, 1, CoreMem.STATE.value)  # the layout's bytes (contract 8.2)
    assert size < 8
    body = bytes([Op.R_DATA]) + b"".join(w.to_bytes(size, "little") for w in words)
    assert [f.body for f in frames] == [body]
    assert frames[0].error is None


def step_counters(dev: LinkDevice) -> tuple[int, int]:
    regs = dev.read(Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP_CYCLES, 2)
    return regs[0], regs[1]


def core_counters(dev: LinkDevice, k: int) -> dict[str, int]:
    regs = dev.read(k, CoreMem.REGS.value, 0, CoreReg.STEPS + 1)
    return {r.name: regs[r] for r in CoreReg if r <= CoreReg.STEPS}


def clear_counters(dev: LinkDevice) -> None:
    dev.write(Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP_CYCLES, [0, 0])
    for k in range(CONFIG.cores):
        dev.write(k, CoreMem.REGS.value, CoreReg.EVENTS, [0] * 5)


def test_step_cycles_of_quiet_steps(device):
    """With nothing to deliver every step takes the same cycles: a core's update phase
    (contract 6.3: N + 11 cycles) and a few of the system's drain, pulse and route."""
    clear_routes(device)
    for k in range(CONFIG.cores):  # no neuron that earlier tests set up spikes
        for mem in (CoreMem.STATE, CoreMem.PARAMS, CoreMem.RING):
            device.clear(k, mem.value, 0, CONFIG.core.depth_of(mem))
    device.run(1, lambda step, ids: None)
    clear_counters(device)
    K, N = 7, CONFIG.core.neurons
    device.run(K, lambda step, ids: None)
    total, longest = step_counters(device)
    assert total == K * longest
    for k in range(CONFIG.cores):
        c = core_counters(device, k)
        assert c["UPDATE_CYCLES"] == K * (N + 11) and c["DELIVERY_CYCLES"] == 0, c
    assert N + 11 < longest <= N + 11 + 8
    device.write(Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP_CYCLES, [0, 0])
    assert step_counters(device) == (0, 0)


def test_step_cycles_hold_every_core_phase(device):
    """A busy step takes at least a core's update and delivery phases, which run one after
    the other inside the system's steps; the longest step at least the mean."""
    C, N = CONFIG.cores, CONFIG.core.neurons
    clear_routes(device)
    # source s reaches axon 0 of every core; axon 0 drives 8 synapses of weight 1
    entries = [pack(CONFIG.route_entry_layout, {"dest": k, "axon": 0}) for k in range(C)]
    pointer = pack(CONFIG.route_pointer_layout, {"start": 0, "count": C})
    device.write(Target.SYSTEM, SystemMem.ROUTE_ENTRIES.value, 0, entries)
    for s in range(CONFIG.sources):
        device.write(Target.SYSTEM, SystemMem.ROUTE_POINTERS.value, C * N + s, [pointer])
    axon = pack(CONFIG.core.axon_layout, {"start": 0, "count": 8})
    syn = [pack(CONFIG.core.synapse_layout, {"target": t, "weight": 1, "weight_exp": 0,
                                             "delay": 0}) for t in range(8)]  # fmt: skip
    for k in range(C):
        device.write(k, CoreMem.AXONS.value, 0, [axon])
        device.write(k, CoreMem.SYNAPSES.value, 0, syn)
    clear_counters(device)
    K = 5
    device.run(K, lambda step, ids: None, inputs=[list(range(CONFIG.sources))] * K)
    total, longest = step_counters(device)
    for k in range(C):
        c = core_counters(device, k)
        assert c["EVENTS"] == K * CONFIG.sources * 8, c  # every source reaches 8 synapses
        assert c["DELIVERY_CYCLES"] >= c["EVENTS"]  # one entry per cycle at most
        assert total >= c["UPDATE_CYCLES"] + c["DELIVERY_CYCLES"], (c, total)
    assert K * longest >= total >= longest > N + 11
    clear_routes(device)
    for k in range(C):
        device.write(k, CoreMem.AXONS.value, 0, [0])


def test_run_empty_network(device):
    clear_routes(device)
    start = device.status()["step"]
    spikes, steps = [], []
    device.run(20, lambda step, ids: spikes.append((step, ids)), lambda s, n: steps.append((s, n)))
    assert spikes == []
    assert steps == [(start + i, 0) for i in range(20)]
    assert device.status()["step"] == start + 20


def test_injected_source_reaches_the_host(device):
    # source 3 routes to the host (dest = C), which receives its id C * N + 3 (contract 7.1)
    C, N = CONFIG.cores, CONFIG.core.neurons
    pointer = pack(CONFIG.route_pointer_layout, {"start": 5, "count": 1})
    entry = pack(CONFIG.route_entry_layout, {"dest": C, "axon": 0})
    clear_routes(device)
    device.write(Target.SYSTEM, SystemMem.ROUTE_POINTERS.value, C * N + 3, [pointer])
    device.write(Target.SYSTEM, SystemMem.ROUTE_ENTRIES.value, 5, [entry])
    start = device.status()["step"]
    device.inject([3])
    spikes, steps = [], []
    device.run(3, lambda step, ids: spikes.append((step, ids)), lambda s, n: steps.append((s, n)))
    assert spikes == [(start, [C * N + 3])]
    assert steps == [(start, 1), (start + 1, 0), (start + 2, 0)]
    clear_routes(device)


def test_silence_times_out(device):
    """A device that has nothing to say says nothing: the host gives up after its timeout,
    with an error naming what it waited for, rather than waiting for ever (the library's
    device, settled, is not clocked for ever either), and the link still works."""
    start = time.monotonic()
    with pytest.raises(LinkTimeoutError, match=r"no reply to a reply never asked within 0\.5 s"):
        device.receive("a reply never asked", timeout=0.5)
    assert 0.5 <= time.monotonic() - start < 5
    assert device.info().cores == CONFIG.cores


def test_two_systems_in_one_process():
    """The libraries of two systems loaded in one process keep their own Verilator runtime
    (each binds its symbols to itself): both answer as their own system, and both run."""
    other = SystemConfig(
        cores=1,
        core=CoreConfig(neurons=32, axons=16, synapses=32, delay_slots=4),
        sources=4,
        route_entries=32,
    )
    a = open_verilator(CONFIG, timeout=TIMEOUT, in_process=True)
    b = open_verilator(other, timeout=TIMEOUT, in_process=True)
    try:
        assert (a.info().cores, a.info().neurons) == (CONFIG.cores, CONFIG.core.neurons)
        assert (b.info().cores, b.info().neurons) == (other.cores, other.core.neurons)
        for dev in (a, b, a):
            start = dev.status()["step"]
            dev.run(3, lambda step, ids: None)
            assert dev.status()["step"] == start + 3
    finally:
        a.close()
        b.close()


def test_close_ends_the_simulation():
    dev = open_verilator(CONFIG, timeout=TIMEOUT)
    assert dev.info().cores == CONFIG.cores
    dev.send(bytes([Op.STATUS]))  # answered before the harness exits
    dev.transport.proc.stdin.close()
    assert replies(dev, 1)[0][0] == Op.R_STATUS
    dev.close()
    assert dev.transport.proc.returncode == 0


def test_a_system_without_statistics_counters():
    """`CoreConfig.stats = False` (the iCEBreaker's system): the same spikes, only STEP counts.

    A random network runs on a system built without the statistics counters and must give
    the golden model's spikes; R_INFO says the counters are absent, STATUS reads 0 but for
    the step, the core's counters read 0 and a write to one is ignored.
    """
    import numpy as np
    from spikefab.hdl.layouts import CoreReg, SystemReg
    from spikefab.host.runtime import check_device, run_network
    from spikefab.mapping.image import place_sequential
    from spikefab.mapping.network import NetworkBuilder
    from spikefab.sim.golden import GoldenModel
    from spikefab.sim.results import compare_results

    config = SystemConfig(
        cores=2,
        core=CoreConfig(neurons=16, axons=64, synapses=256, delay_slots=4, stats=False),
        sources=16,
        route_entries=256,
    )
    rng = np.random.default_rng(5)
    b = NetworkBuilder("nostats")
    b.spike_source("inp", 8, poisson={"rate_hz": 200, "seed": 5})
    b.population("a", 14, du=1000, dv=200, vth=150, refractory=1)
    b.population("b", 12, du=3000, dv=100, vth=200, reset="subtract")
    for pre, post in [("inp", "a"), ("a", "b"), ("b", "a")]:
        b.project(
            pre,
            post,
            connect={"kind": "fixed_probability", "p": 0.4, "seed": int(rng.integers(1 << 20))},
            weight={"kind": "uniform", "low": -20, "high": 127, "seed": int(rng.integers(1 << 20))},
            weight_exp=1,
            delay={"kind": "uniform", "low": 1, "high": 4, "seed": int(rng.integers(1 << 20))},
        )
    net = b.build()
    steps = 40
    dev = open_verilator(config, timeout=TIMEOUT)
    try:
        info = dev.info()
        assert not info.stats and not info.learning  # bits 1 and 0 of the features
        check_device(dev, config)
        got = run_network(net, place_sequential(net, config), dev, steps, "rtl")
        status = dev.status()
        core_regs = dev.read(0, CoreMem.REGS.value, 0, CoreReg.STEPS + 1)
        dev.write(Target.SYSTEM, SystemMem.REGS.value, SystemReg.HOST_SPIKES, [7])
        dev.write(0, CoreMem.REGS.value, CoreReg.EVENTS, [7])
        after = (
            dev.read(Target.SYSTEM, SystemMem.REGS.value, SystemReg.HOST_SPIKES, 1),
            dev.read(0, CoreMem.REGS.value, CoreReg.EVENTS, 1),
        )
    finally:
        dev.close()
    ref = GoldenModel(net).run(steps)
    assert ref.n_spikes > 20, "a network that hardly fires proves little"
    cmp = compare_results(ref, got)
    assert cmp.equal, f"{cmp.mismatches} mismatches\n{cmp.first}"
    assert status == {k: (steps if k == "step" else 0) for k in status}, status
    assert core_regs == [steps % config.core.delay_slots, 0, 0, 0, 0, 0]
    assert after == ([0], [0])
