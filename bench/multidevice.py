"""One network over 1, 2 (or more) Verilator processes, one MPI rank each: parallel efficiency.

For each network, the whole network runs on one simulated device (the system it maps onto),
then cut over K devices (METIS, weighted by the golden model's rates) as K MPI ranks started
by spikefab, each running its device's simulation in its own process. Every run is checked
spike by spike against the golden model. It prints:

- steps per second of the run itself (the image loads and the process start-ups excluded:
  for K ranks, the slowest rank's time in its rounds, device and exchange);
- the parallel efficiency at K ranks, ``T1 / (K * TK)``, and the speed-up ``T1 / TK``, where
  ``T1`` is the faster of the two ways to run the whole network on one device: the harness
  as a program beside the host (the host's work overlaps the simulation on a second core)
  and the harness in the host's process (what each rank runs);
- the exchange: rounds (the smallest delay between devices sets their length), spikes and
  bytes exchanged per step, and each rank's time in its device against its time in the
  exchange.

Every run is repeated (``--repeat``, 3 by default) and the fastest of each kind counts, as
a machine shared with other work slows some runs at random. On this 2-core machine K = 2 is
the largest K that has a core per rank. Run it from the repository root::

    .venv/bin/python bench/multidevice.py                  # balanced and cuba, 1 and 2 ranks
    .venv/bin/python bench/multidevice.py --network cuba --steps 2000 --ranks 2 --ranks 3
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def main() -> int:
    import spikefab
    from spikefab.host.multidevice import map_devices, run_devices

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", action="append", help="example name or file (repeatable)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--ranks", type=int, action="append", help="ranks to compare with 1")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each kind; the best counts")
    args = ap.parse_args()
    names = args.network or ["balanced", "cuba"]
    ranks = args.ranks or [2]
    print(f"command: {' '.join(sys.argv)}")
    for name in names:
        net = spikefab.load(name)
        golden = spikefab.run(net, args.steps)
        image = spikefab.image_for(net, "verilator")

        singles: dict[str, list[float]] = {"program": [], "in process": []}
        for _ in range(args.repeat):
            for how in singles:
                t, one = _one_device(net, image, args.steps, how == "in process")
                cmp = spikefab.compare(golden, one)
                if not cmp.equal:
                    print(f"{name}: 1 device ({how}) MISMATCH against golden: {cmp.first}")
                    return 1
                singles[how].append(t)
        print()
        print(f"{net.name}: {net.n_neurons} neurons, {net.n_synapses} synapses, {args.steps} "
              f"steps, {golden.n_spikes} spikes; identical to golden on every run")  # fmt: skip
        for how, times in singles.items():
            print(f"  1 rank, {how:10}: {args.steps / min(times):8.1f} steps/s (best of "
                  f"{_spread(times)}; {image.config.cores} cores of {image.config.core.neurons} "
                  f"neurons; {one.cycles_per_step:.0f} cycles per step)")  # fmt: skip
        t1 = min(min(times) for times in singles.values())
        t1_rank = min(singles["in process"])
        for k in ranks:
            dm = map_devices(net, k, rates=200)
            runs = []
            for _ in range(args.repeat):
                res = run_devices(dm, args.steps, "verilator")
                cmp = spikefab.compare(golden, res)
                if not cmp.equal:
                    print(f"{name}: {k} devices MISMATCH against golden: {cmp.first}")
                    return 1
                ex = res.exchange  # type: ignore[attr-defined]
                runs.append((max(r["run"] + r["exchange"] for r in ex.per_rank), res, ex))
            tk, res, ex = min(runs, key=lambda r: r[0])
            cores = dm.images[0].config
            print(f"  {k} ranks: {args.steps / tk:8.1f} steps/s (best of "
                  f"{_spread([r[0] for r in runs])} in the rounds; {cores.cores} cores of "
                  f"{cores.core.neurons} neurons each; {res.cycles_per_step:.0f} cycles per "
                  "step on the slowest device)")  # fmt: skip
            print(f"    speed-up {t1 / tk:.2f}x, parallel efficiency {100 * t1 / (k * tk):.0f}% "
                  "against the faster one-device run")  # fmt: skip
            print(f"    speed-up {t1_rank / tk:.2f}x, parallel efficiency "
                  f"{100 * t1_rank / (k * tk):.0f}% against one rank in process (the same "
                  "runtime on one core)")  # fmt: skip
            print(f"    exchange: {ex.rounds} rounds of {dm.plan.lag or args.steps} steps, "
                  f"{ex.spikes_sent / args.steps:.1f} spikes and "
                  f"{ex.bytes_sent / args.steps:.0f} bytes per step")  # fmt: skip
            for j, r in enumerate(ex.per_rank):
                share = 100 * r["exchange"] / max(r["run"] + r["exchange"], 1e-9)
                print(f"    rank {j}: {r['run']:.2f} s in its device, {r['exchange']:.2f} s in "
                      f"the exchange ({share:.0f}%)")  # fmt: skip
    return 0


def _one_device(net: Any, image: Any, steps: int, in_process: bool) -> tuple[float, Any]:
    """Run the whole network on one simulated device; return the run's seconds and result."""
    import spikefab
    from spikefab.host.runtime import load, run_network

    with spikefab.open_system(image.config, "verilator", in_process=in_process) as device:
        load(device, image)
        t0 = time.perf_counter()
        res = run_network(net, image, device, steps, "verilator", load_image=False)
        return time.perf_counter() - t0, res


def _spread(times: list[float]) -> str:
    """``"3: 2.31 to 2.40 s"``, the runs' number and range."""
    return f"{len(times)}: {min(times):.2f} to {max(times):.2f} s"


if __name__ == "__main__":
    sys.exit(main())
