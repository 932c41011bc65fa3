"""What on-chip learning costs in clock cycles: the STDP example on the generated RTL.

Runs a network with plastic projections (``stdp_pattern`` by default: 200 plastic synapses
onto one neuron) on the Verilator backend, checks its spikes and final weights against the
golden model, and reads every core's cycle counters (contract 6.1, 6.4): cycles of the
delivery, update and learning phases. It prints the learning cycles per step against the
update's, the learning phase's own cost model (``2 * plastic entries + plastic axons
without entries + neurons with a trace + 24``, contract 6.4) against the measured count,
and the same run with the plastic projections made static, whose cores spend no cycle on
learning.

The area cost (LUTs, block RAM, DSPs on the iCE40UP5K and the ECP5) is measured by
``bench/synth_core.py``, which builds the same core without and with the learning unit.

Run it from the repository root::

    .venv/bin/python bench/learning_cost.py                  # stdp_pattern, 1000 steps
    .venv/bin/python bench/learning_cost.py --steps 4000

The first run builds the Verilator harness of the simulated system (a minute or two, cached
in ``~/.cache/spikefab``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from importlib import resources
from pathlib import Path


def measure(net, steps: int):  # type: ignore[no-untyped-def]
    """Run ``net`` on Verilator; return the result and every core's registers."""
    from spikefab.hdl.layouts import CoreMem, CoreReg
    from spikefab.host.runtime import run_network
    from spikefab.host.verilator import open_verilator
    from spikefab.mapping.hardware import simulated_system
    from spikefab.mapping.mapper import map_network

    config = simulated_system(net)
    image = map_network(net, config).image(config)
    regs = []
    with open_verilator(config, timeout=120.0) as device:
        result = run_network(net, image, device, steps, "verilator")
        for k in range(config.cores):
            words = device.read(k, CoreMem.REGS.value, 0, len(CoreReg))
            regs.append({r: words[r] for r in CoreReg})
    return result, regs, image


def main() -> int:
    from spikefab.hdl.layouts import CoreReg
    from spikefab.mapping.loader import load
    from spikefab.sim.golden import GoldenModel
    from spikefab.sim.results import compare_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="stdp_pattern", help="example name or YAML file")
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    path = Path(args.network)
    if not path.exists():
        path = Path(str(resources.files("spikefab.examples") / f"{args.network}.yaml"))
    net = load(path)
    print(f"command: {' '.join(sys.argv)}")
    plastic = [pr for pr in net.projections if pr.stdp is not None]
    if not plastic:
        print(f"{net.name} has no plastic projection")
        return 1
    print(
        f"network {net.name}: {net.n_neurons} LIF neurons, {net.n_synapses} synapses "
        f"({sum(pr.n_synapses for pr in plastic)} plastic); {args.steps} steps"
    )
    golden = GoldenModel(net).run(args.steps)
    rtl, regs, image = measure(net, args.steps)
    cmp = compare_results(golden, rtl)
    if not cmp.equal:
        print(f"MISMATCH against the golden model:\n{cmp.first}")
        return 1
    print(
        f"spikes {golden.n_spikes} and the {sum(w.size for w in golden.weights.values())} "
        "final weights identical to the golden model"
    )

    # the same network without learning: the static cores' cycle counts
    static = copy.deepcopy(net)
    for pr in static.projections:
        pr.stdp = None
    _, regs_static, _ = measure(static, args.steps)

    print()
    head = f"{'core':>4} {'deliver':>9} {'update':>9} {'learn':>9} {'learn/step':>11}"
    head += f" {'model/step':>11} {'learn/update':>13} {'static learn':>13}"
    print(head)
    for k, r in enumerate(regs):
        steps = r[CoreReg.STEPS] or 1
        pa, ln = r[CoreReg.PLASTIC_AXONS], r[CoreReg.LEARN_NEURONS]
        entries = sum(
            int((c == k).sum()) for c, _ in (image.plastic_entries[p.name] for p in plastic)
        )
        # (the mapper makes no plastic axon without entries)
        model = 2 * entries + ln + 24 if pa else 0
        upd = r[CoreReg.UPDATE_CYCLES]
        print(
            f"{k:>4} {r[CoreReg.DELIVERY_CYCLES]:>9} {upd:>9} {r[CoreReg.LEARN_CYCLES]:>9} "
            f"{r[CoreReg.LEARN_CYCLES] / steps:>11.1f} {model:>11} "
            f"{r[CoreReg.LEARN_CYCLES] / max(upd, 1):>13.2f} "
            f"{regs_static[k][CoreReg.LEARN_CYCLES]:>13}"
        )
    print(
        "\nlearn/step: measured cycles of the learning phase per step; model/step: contract "
        "6.4's estimate\n(2 per plastic entry, 1 per neuron with a trace, 24 of pipeline, "
        "and up to 1 more per axon\nwhose entries start on an odd cycle);\n"
        "static learn: the learning cycles of the same run with the "
        "projections made static (0: no cost)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
