"""The cycle model (sim/cycles.py) against the RTL's counters: predicted and measured cycles
per step for each example on its simulated system (Verilator), and their ratio.

The state probes are left out (their reads overlap deliveries, which the system counts;
see sim/cycles.py); a network that learns is skipped (the model leaves learning out). It
prints, per network: the cycles per step predicted and measured (``STEP_CYCLES``), the
ratio, the longest step of each, the real-time factor the prediction gives this simulated
system at each board's clock (the boards' own systems differ), and how long the
prediction took against the RTL run. Run it from the repository root::

    .venv/bin/python bench/cycle_model.py                 # every example, 500 steps
    .venv/bin/python bench/cycle_model.py --network cuba --steps 2000
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    import spikefab
    from spikefab.boards import BOARDS
    from spikefab.sim.cycles import predict_cycles

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", action="append", help="example name or file (repeatable)")
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args()
    names = args.network or sorted(spikefab.examples())
    print(f"command: {' '.join(sys.argv)}")
    print(f"{'network':14s} {'predicted':>10s} {'measured':>10s} {'ratio':>8s} "
          f"{'max pred':>9s} {'max meas':>9s} {'model s':>8s} {'rtl s':>7s}")  # fmt: skip
    for name in names:
        net = spikefab.load(name)
        if any(pr.stdp is not None for pr in net.projections):
            print(f"{net.name:14s} skipped: it learns (learning phases are not modelled)")
            continue
        net.probes[:] = [p for p in net.probes if p.variable == "spikes"]
        image = spikefab.image_for(net, "verilator")
        t0 = time.perf_counter()
        pred = predict_cycles(net, image, args.steps)
        t_model = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = spikefab.run(net, args.steps, "verilator", image=image, progress=False)
        t_rtl = time.perf_counter() - t0
        meas = got.step_cycles / args.steps
        print(f"{net.name:14s} {pred.mean:10.2f} {meas:10.2f} {pred.mean / meas:8.5f} "
              f"{int(pred.cycles.max()):9d} {got.max_step_cycles:9d} {t_model:8.2f} "
              f"{t_rtl:7.2f}")  # fmt: skip
        rt = ", ".join(
            f"{b.clock_hz / 1e6:g} MHz ({b.name}) "
            f"{pred.real_time_factor(b.clock_hz, net.dt_ms):.3g}x"
            for b in BOARDS.values()
            if b.clock_hz
        )
        print(f"{'':14s} this system, predicted, at dt {net.dt_ms:g} ms: {rt}")
    print("(max: the longest step; the system counts a delivery's tail in the next step,")
    print(" the model in the step that sent it, so the longest steps differ)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
