"""Clock cycles per step on the device, against the events and neurons of each step.

Runs networks on the Verilator simulation of the generated RTL (the simulated system each
one maps onto, and the ULX3S's system, whose synapse table is in SDRAM, on the SDRAM model),
and reads the device's own counters after the run: the system's
STEP_CYCLES and MAX_STEP_CYCLES (contract 7.2) and each core's EVENTS, DELIVERY_CYCLES and
UPDATE_CYCLES (contract 6.1). It prints, per network:

- cycles per step (mean, longest) and the update cycles per step of a core, against the
  contract's N + 11 (6.3): the update phase is the floor of a step;
- synaptic events per step and per core, and events per delivery cycle (at most 1: a core
  delivers one entry per clock; with the table in SDRAM the store reads an entry in two
  SDRAM clocks, at twice the core's clock on the ULX3S);
- the real-time factor at each board's clock for steps of the network's dt (how many times
  faster than real time the steps run), for the mean and the longest step.

Every run is checked spike by spike against the golden model first.

Run it from the repository root::

    .venv/bin/python bench/realtime.py              # synfire, balanced, cuba; the last two
                                                    # on the ULX3S too
    .venv/bin/python bench/realtime.py --network cuba --board ulx3s --steps 1000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main() -> int:
    import spikefab
    from spikefab.boards import BOARDS
    from spikefab.hdl.layouts import CoreMem, CoreReg
    from spikefab.host.runtime import load, run_network

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", action="append", help="example name or file (repeatable)")
    ap.add_argument("--board", help="map onto this board's system (simulated in Verilator)")
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args()
    if args.network:
        runs = [(name, args.board) for name in args.network]
    else:
        runs = [("synfire", None), ("balanced", None), ("cuba", None)]
        runs += [("balanced", "ulx3s"), ("cuba", "ulx3s")]
    print(f"command: {' '.join(sys.argv)}")
    rates: dict[tuple[str, str | None], float] = {}
    for name, board in runs:
        net = spikefab.load(name)
        image = spikefab.image_for(net, board=board)
        cfg = image.config
        golden = spikefab.run(net, backend="golden", steps=args.steps)
        with spikefab.open_system(cfg, "verilator") as device:
            load(device, image)
            t0 = time.perf_counter()
            result = run_network(net, image, device, args.steps, "verilator", load_image=False)
            wall = time.perf_counter() - t0
            cores = [device.read(k, CoreMem.REGS.value, 0, CoreReg.STEPS + 1)
                     for k in range(cfg.cores)]  # fmt: skip
        cmp = spikefab.compare(golden, result)
        if not cmp.equal:
            print(f"{name}: MISMATCH against golden: {cmp.first}")
            return 1
        steps, N = result.run_steps, cfg.core.neurons
        events = np.array([c[CoreReg.EVENTS] for c in cores], dtype=np.int64)
        delivery = np.array([c[CoreReg.DELIVERY_CYCLES] for c in cores], dtype=np.int64)
        update = np.array([c[CoreReg.UPDATE_CYCLES] for c in cores], dtype=np.int64)
        where = "the simulated system" if board is None else f"the {board} system"
        memory = "SDRAM" if cfg.core.synapse_memory == "sdram" else "block RAM"
        print()
        print(f"{net.name} on {where}: {net.n_neurons} neurons, {net.n_synapses} synapses, "
              f"{steps} steps of {net.dt_ms:g} ms on {cfg.cores} core(s) of {N} neurons, "
              f"synapses in {memory} (Verilator, {wall:.1f} s); identical to golden")  # fmt: skip
        print(f"  cycles per step: {result.cycles_per_step:.1f} mean, "
              f"{result.max_step_cycles} longest")  # fmt: skip
        print(f"  update cycles per step and core: {update.mean() / steps:.1f} "
              f"(contract 6.3: N + 11 = {N + 11}, one more on a step whose last neuron "
              f"spikes)")  # fmt: skip
        per_step = events.sum() / steps
        busiest = events.max() / steps
        print(f"  synaptic events per step: {per_step:.1f} in all, {busiest:.1f} on the "
              f"busiest core; delivery cycles per step on it: "
              f"{delivery[events.argmax()] / steps:.1f}")  # fmt: skip
        rate = events.sum() / max(int(delivery.sum()), 1)
        each = ", ".join(f"{e / max(d, 1):.3f}" for e, d in zip(events, delivery, strict=True))
        print(f"  events per delivery cycle: {rate:.3f} (all cores), per core {each}")
        rates[(name, board)] = rate
        if board is not None and (name, None) in rates:
            print(f"  events per delivery cycle against the block-RAM cores of the simulated "
                  f"system: {rate / rates[(name, None)]:.2f}x")  # fmt: skip
        # the share of a step that is neither update nor delivery on the busiest core
        k = int(events.argmax())
        other = result.cycles_per_step - (update[k] + delivery[k]) / steps
        print(f"  cycles per step besides the busiest core's update and delivery: "
              f"{other:.1f} (drain, routing, the other cores)")  # fmt: skip
        for b in BOARDS.values() if board is None else [BOARDS[board]]:
            print(f"  real time at {b.clock_hz / 1e6:g} MHz ({b.name}): "
                  f"{result.real_time_factor(b.clock_hz):.2f}x mean step, "
                  f"{result.real_time_factor(b.clock_hz, worst=True):.2f}x longest "
                  f"(budget {b.clock_hz * net.dt_ms / 1000:.0f} cycles per step)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
