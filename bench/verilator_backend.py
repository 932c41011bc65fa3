"""The Verilator backend against the golden model on one network, in one run.

Prints, for the balanced example (or ``--network``): simulated steps per second and synaptic
events per second of the Verilator backend (the generated RTL driven over the host link
through a pipe), the host-link bytes per spike event in each direction, the time spent
loading the image, and the golden/Verilator wall-time ratio. Both runs are compared spike by
spike; a mismatch stops the bench.

The three link figures (load time, bytes per reported spike, steps per second) are printed
with their ratio to protocol version 1. Version 1 cannot run any more, so its figures are
the recorded ones, labelled as such; a load that writes every word of every memory, one
frame at a time, as version 1 did (with today's word sizes), is measured in the same run.
They are printed again against the recorded figures of the simulated device before its link
overlapped receiving a frame with carrying out the one before (protocol 3 too, so nothing
of it can be measured in the same run; steps per second and bytes per spike of the run
without probes).

Run it from the repository root::

    .venv/bin/python bench/verilator_backend.py                 # balanced, 500 steps
    .venv/bin/python bench/verilator_backend.py --network synfire --steps 2000

The first run for a system size builds the Verilator harness (a few minutes for four cores
on a 2-core machine; cached in ``~/.cache/spikefab``); the build time is not counted.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

#: Protocol version 1 on this bench (500 steps of balanced, 4 cores), as recorded: the
#: figures the version 2 link is measured against.
RECORDED_V1 = {
    "source": "bench/verilator_backend.py at commit a8fb8e2 (protocol 1), 2-core machine",
    "load_s": 12.0,
    "load_bytes": 1_497_233,
    "bytes_per_spike": 13.91,
    "steps_per_s": 409.0,
}

#: The simulated device before its receiver held two frames and its executor read words
#: whole (and before its reset was registered), protocol 3, as recorded on this bench; the
#: steps per second and bytes per spike are those of the run without probes.
RECORDED_V3 = {
    "source": "bench/verilator_backend.py at commit 3b0b4df (protocol 3), 2-core machine",
    "load_s": 4.02,
    "load_bytes": 411_334,
    "bytes_per_spike": 2.20,
    "steps_per_s": 724.0,
}


def load_full_image(device, image) -> None:  # type: ignore[no-untyped-def]
    """Load as protocol version 1 did: every word of every memory (zeros included) once,
    waiting for each frame's reply, in the order of the image's last write to each memory."""
    content: dict[tuple[int, int], dict[int, int]] = {}
    last: dict[tuple[int, int], int] = {}
    for i, w in enumerate(image.writes()):
        mem = content.setdefault((w.target, w.mem), {})
        words = [0] * w.count if w.words is None else list(w.words)
        for k, word in enumerate(words):
            mem[w.addr + k] = int(word)
        last[(w.target, w.mem)] = i
    for key in sorted(content, key=last.__getitem__):
        mem = content[key]
        lo, hi = min(mem), max(mem) + 1
        device.write(key[0], key[1], lo, [mem.get(a, 0) for a in range(lo, hi)])


def main() -> int:
    from spikefab.host.link import CountingTransport, LinkDevice
    from spikefab.host.runtime import load, run_network
    from spikefab.mapping.hardware import simulated_system
    from spikefab.mapping.image import place_sequential
    from spikefab.mapping.loader import load as load_net
    from spikefab.sim.golden import GoldenModel
    from spikefab.sim.results import compare_results
    from spikefab.sim.verilator import build_harness

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="balanced", help="example name or YAML file")
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args()
    path = Path(args.network)
    if not path.exists():
        path = Path(str(resources.files("spikefab.examples") / f"{args.network}.yaml"))
    net = load_net(path)
    config = simulated_system(net)
    image = place_sequential(net, config)
    print(f"command: {' '.join(sys.argv)}")
    print(f"network {net.name}: {net.n_neurons} LIF neurons, {net.n_synapses} synapses; "
          f"{args.steps} steps; system of {config.cores} core(s) x {config.core.neurons} "
          f"neurons")  # fmt: skip

    t0 = time.perf_counter()
    program = build_harness(config, progress=True)
    build_s = time.perf_counter() - t0

    # golden, and the synaptic events its spikes cause (out-degree of every spike)
    model = GoldenModel(net)
    t0 = time.perf_counter()
    golden = model.run(args.steps)
    golden_s = time.perf_counter() - t0
    pops = list(net.populations.values())
    degree = {p.index: np.zeros(p.size, dtype=np.int64) for p in pops}
    for pr in net.projections:
        pre = net.populations[pr.pre]
        degree[pre.index] += np.bincount(pr.pre_idx, minlength=pre.size)
    events = sum(
        int(degree[p.index][golden.neuron[golden.population == p.index]].sum()) for p in pops
    )

    import subprocess

    from spikefab.hdl.protocol import PROTOCOL_VERSION
    from spikefab.hdl.top import SIM_TIMEOUT
    from spikefab.host.link import PipeTransport

    proc = subprocess.Popen(
        [str(program), f"+rx-timeout={SIM_TIMEOUT}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    transport = CountingTransport(PipeTransport(proc))
    device = LinkDevice(transport, timeout=120.0)
    t0 = time.perf_counter()
    load_full_image(device, image)
    full_s = time.perf_counter() - t0
    full_sent = transport.sent
    transport.sent = transport.received = 0
    t0 = time.perf_counter()
    load(device, image)
    load_s = time.perf_counter() - t0
    load_sent = transport.sent
    transport.sent = transport.received = 0
    t0 = time.perf_counter()
    rtl = run_network(net, image, device, args.steps, "verilator", load_image=False)
    run_s = time.perf_counter() - t0
    sent, received = transport.sent, transport.received
    # the same run without its v/u probes: one RUN request, the spike stream alone
    quiet = replace(net, probes=[pb for pb in net.probes if pb.variable == "spikes"])
    load(device, image)
    transport.sent = transport.received = 0
    t0 = time.perf_counter()
    rtl_quiet = run_network(quiet, image, device, args.steps, "verilator", load_image=False)
    quiet_s = time.perf_counter() - t0
    quiet_received = transport.received
    device.close()
    if not compare_results(golden, rtl_quiet).equal:
        print("MISMATCH in the run without probes")
        return 1

    cmp = compare_results(golden, rtl)
    if not cmp.equal:
        print(f"MISMATCH: {cmp.mismatches} spikes differ\n{cmp.first}")
        return 1
    n_hw = int(np.isin(golden.population, [p.index for p in net.populations.values()
                                           if not p.is_source]).sum())  # fmt: skip
    sim_s = args.steps * net.dt_ms / 1000
    print(f"harness build (cached when 0): {build_s:.1f} s; image load {load_s:.2f} s "
          f"({load_sent} bytes)")  # fmt: skip
    print(f"spikes {golden.n_spikes} ({n_hw} from LIF neurons, reported by the device), "
          f"synaptic events {events}; identical in both runs")  # fmt: skip
    print()
    print(
        f"{'backend':12s} {'wall s':>9s} {'steps/s':>10s} {'events/s':>11s} {'sim s/wall s':>13s}"
    )
    for name, wall in (("golden", golden_s), ("verilator", run_s)):
        print(f"{name:12s} {wall:9.3f} {args.steps / wall:10.1f} {events / wall:11.3e} "
              f"{sim_s / wall:13.4f}")  # fmt: skip
    print()
    print(f"host link during the run: {sent} bytes to the device, {received} from it; "
          f"{received / max(n_hw, 1):.2f} bytes per reported spike, "
          f"{(sent + received) / max(events, 1):.3f} bytes per synaptic event")  # fmt: skip
    print(f"golden / verilator wall-time ratio: {golden_s / run_s:.4f} "
          f"(verilator is {run_s / golden_s:.0f}x slower)")  # fmt: skip
    v1 = RECORDED_V1
    per_spike = received / max(n_hw, 1)
    steps_s = args.steps / run_s
    print()
    print(f"link figures, protocol {PROTOCOL_VERSION} against protocol 1:")
    print(f"  image load: {load_s:.2f} s, {load_sent} bytes (zero stretches cleared, non-zero "
          f"runs written, sent ahead); every word written one frame at a time, as protocol "
          f"1 loaded, measured now: {full_s:.2f} s, {full_sent} bytes "
          f"({full_s / load_s:.1f}x); recorded protocol 1: {v1['load_s']:.1f} s, "
          f"{v1['load_bytes']} bytes ({v1['load_s'] / load_s:.1f}x faster, "
          f"{v1['load_bytes'] / max(load_sent, 1):.1f}x fewer bytes)")  # fmt: skip
    print(f"  bytes per reported spike (device to host): {per_spike:.2f}; recorded "
          f"protocol 1: {v1['bytes_per_spike']:.2f} "
          f"({v1['bytes_per_spike'] / per_spike:.1f}x fewer)")  # fmt: skip
    print(f"  steps per second: {steps_s:.1f}; recorded protocol 1: {v1['steps_per_s']:.0f} "
          f"({steps_s / v1['steps_per_s']:.2f}x)")  # fmt: skip
    print(f"  (recorded protocol 1 figures: {v1['source']}; load {v1['load_s']:.1f} s)")
    busy = golden.step[np.isin(golden.population, [p.index for p in pops if not p.is_source])]
    per_step = np.bincount(busy, minlength=args.steps)
    print()
    print(f"the same run without its v probes (one RUN request, spikes only): "
          f"{args.steps / quiet_s:.1f} steps/s, {quiet_received} bytes from the device, "
          f"{quiet_received / max(n_hw, 1):.2f} bytes per reported spike "
          f"({per_step.mean():.1f} spikes per step, {per_step.max()} at most)")  # fmt: skip
    v3 = RECORDED_V3
    quiet_steps_s = args.steps / quiet_s
    quiet_per_spike = quiet_received / max(n_hw, 1)
    print()
    print("against the simulated device as recorded before (protocol 3, one frame held, "
          "words read a byte at a time):")  # fmt: skip
    print(f"  image load: {load_s:.2f} s, {load_sent} bytes; recorded: {v3['load_s']:.2f} s, "
          f"{v3['load_bytes']} bytes ({v3['load_s'] / load_s:.1f}x faster)")  # fmt: skip
    print(f"  steps per second without probes: {quiet_steps_s:.1f}; recorded: "
          f"{v3['steps_per_s']:.0f} ({quiet_steps_s / v3['steps_per_s']:.2f}x)")  # fmt: skip
    print(f"  bytes per reported spike without probes: {quiet_per_spike:.2f}; recorded: "
          f"{v3['bytes_per_spike']:.2f}")  # fmt: skip
    print(f"  (recorded figures: {v3['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
