"""The cycle model (sim/cycles.py) against the RTL's counters, and the resource model
(boards/resources.py) against measured builds.

For each example and each board whose system it fits, the example runs on that board's
system in Verilator (the ULX3S's with its SDRAM model) and the script prints the cycles per
step predicted and measured (``STEP_CYCLES``), their ratio, the longest step of each, the
real-time factor the prediction gives at the board's clock, and how long the prediction took
against the RTL run. ``verilator`` is the simulated system sized for the network (no clock
of its own); the iCEBreaker's system has no cycle counters, so its runs are on the same
system with them (the counters do not change a step's cycles). Then it prints the resource
model's error on builds it was not fitted to (``bench/resource_model.py``).

The state probes are left out: their reads overlap deliveries, which the system counts (see
sim/cycles.py). Run it from the repository root::

    .venv/bin/python bench/cycle_model.py                           # 300 steps
    .venv/bin/python bench/cycle_model.py --network cuba --board ulx3s --steps 2000

The first run builds each board's Verilator harness (a minute or two each, cached in
``~/.cache/spikefab``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    import spikefab
    from spikefab.boards import BOARDS
    from spikefab.mapping.core_image import FitError
    from spikefab.sim.cycles import predict_cycles

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", action="append", help="example name or file (repeatable)")
    ap.add_argument("--board", action="append", help=f"of {', '.join(BOARDS)} (repeatable)")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    names = args.network or sorted(spikefab.examples())
    boards = args.board or list(BOARDS)
    print(f"command: {' '.join(sys.argv)}")
    print(f"{'network':14s} {'board':11s} {'predicted':>10s} {'measured':>10s} {'ratio':>8s} "
          f"{'max pred':>9s} {'max meas':>9s} {'real time':>10s} {'model s':>8s} "
          f"{'rtl s':>7s}")  # fmt: skip
    ratios = []
    for name in names:
        for board in boards:
            net = spikefab.load(name)
            net.probes[:] = [p for p in net.probes if p.variable == "spikes"]
            b = BOARDS[board]
            try:
                image = spikefab.image_for(net, "verilator", board=None if b.platform is None
                                           else board)  # fmt: skip
            except FitError as e:
                print(f"{net.name:14s} {board:11s} does not fit: {str(e).splitlines()[0][:60]}")
                continue
            t0 = time.perf_counter()
            pred = predict_cycles(net, image, args.steps)
            t_model = time.perf_counter() - t0
            on = None if b.platform is None else board
            if not image.config.core.stats:
                # a system without counters (the iCEBreaker's): the same system with them,
                # whose cycles are the same (the counters only count)
                core = replace(image.config.core, stats=True)
                image = replace(image, config=replace(image.config, core=core))
                on = None
            t0 = time.perf_counter()
            got = spikefab.run(net, args.steps, "verilator", image=image, board=on)
            t_rtl = time.perf_counter() - t0
            meas = got.step_cycles / args.steps
            ratios.append(pred.mean / meas)
            rt = (f"{pred.real_time_factor(b.clock_hz, net.dt_ms):9.3g}x" if b.clock_hz
                  else f"{'-':>10s}")  # fmt: skip
            print(f"{net.name:14s} {board:11s} {pred.mean:10.2f} {meas:10.2f} "
                  f"{pred.mean / meas:8.5f} {pred.max:9.0f} {got.max_step_cycles:9d} {rt} "
                  f"{t_model:8.2f} {t_rtl:7.2f}", flush=True)  # fmt: skip
            for note in pred.notes:
                print(f"{'':27s}note: {note}")
    if ratios:
        worst = max(abs(r - 1) for r in ratios)
        print(f"\npredicted/measured: {len(ratios)} runs, largest error {100 * worst:.3f}%")
    print("(max: the longest step; the system counts a delivery's tail in the next step,")
    print(" the model in the step that sent it, so the longest steps differ)\n")
    from resource_model import calibration

    calibration()
    return 0


if __name__ == "__main__":
    sys.exit(main())
