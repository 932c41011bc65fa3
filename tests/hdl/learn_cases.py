"""Networks for the learning regression of the neuron core, and their golden expectations.

Each case is a network with plastic projections, made with the golden model's own builder,
placed on one learning core and run on the golden model step by step. The case file holds the
core's memory image and registers, the axon events of every step (the spikes of the step
before, on every axon of each spiking neuron), the expected spikes, and after every step the
expected weight of every plastic synapse entry and the expected traces of every plastic axon
and post-synaptic neuron.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from spikefab.hdl.layouts import CoreConfig, CoreMem
from spikefab.mapping.core_image import single_core_image
from spikefab.mapping.network import Network, NetworkBuilder
from spikefab.sim import arith
from spikefab.sim.golden import GoldenModel

CONFIG = CoreConfig(neurons=64, axons=128, synapses=2048, delay_slots=16, learning=True)

#: Δt of the window case: every value in [-20, 20] steps.
WINDOW = range(-20, 21)


def _rule(**kw) -> dict:  # type: ignore[no-untyped-def]
    rule = dict(
        a_plus=100,
        a_minus=90,
        d_pre=400,
        d_post=300,
        bump_pre=20000,
        bump_post=18000,
        shift=6,
        w_min=-128,
        w_max=127,
        stochastic_rounding=False,
        seed=0,
    )
    rule.update(kw)
    return rule


def window_network(stochastic: bool = False) -> Network:
    """One pre/post pair per Δt: source ``pre[k]`` spikes at step 25 and neuron ``post[k]``
    (driven by its own source through a strong static synapse) at ``25 + Δt``."""
    n = len(WINDOW)
    t0 = 25
    b = NetworkBuilder("window" + ("_stochastic" if stochastic else ""))
    b.spike_source("pre", n, times=[[t0] for _ in WINDOW])
    b.spike_source("drive", n, times=[[t0 + dt - 1] for dt in WINDOW])
    b.population("post", n, du=4095, dv=4095, vth=1000, refractory=0, reset="zero")
    b.project("drive", "post", connect="one_to_one", weight=127, weight_exp=7)
    b.project(
        "pre",
        "post",
        connect="one_to_one",
        weight=0,
        weight_exp=0,
        stdp=_rule(stochastic_rounding=stochastic, seed=0x1234),
        name="plastic",
    )
    return b.build()


def random_plastic_network(seed: int, stochastic: bool) -> Network:
    """Poisson inputs onto a population through a plastic projection, a static and a plastic
    projection between two populations (so that a neuron has a plastic and a static axon)."""
    rng = np.random.default_rng(seed)
    rule = _rule(
        a_plus=int(rng.integers(20, 128)),
        a_minus=int(rng.integers(20, 128)),
        d_pre=int(rng.integers(100, 1500)),
        d_post=int(rng.integers(100, 1500)),
        bump_pre=int(rng.integers(2000, 40000)),
        bump_post=int(rng.integers(2000, 40000)),
        shift=int(rng.integers(0, 12)),
        w_min=-40,
        w_max=90,
        stochastic_rounding=stochastic,
        seed=int(rng.integers(0, 1 << 16)),
    )
    b = NetworkBuilder(f"plastic{seed}")
    b.spike_source("inp", 40, poisson={"rate_hz": float(rng.uniform(80, 200)), "seed": seed})
    lif = dict(du=600, dv=300, vth=250, refractory=1, reset="subtract")
    b.population("p0", 32, **lif)
    b.population("p1", 32, **lif)

    def uniform(lo: int, hi: int) -> dict:
        return {"kind": "uniform", "low": lo, "high": hi, "seed": int(rng.integers(1 << 30))}

    def prob(p: float) -> dict:
        return {"kind": "fixed_probability", "p": p, "seed": int(rng.integers(1 << 30))}

    b.project("inp", "p0", connect=prob(0.5), weight=uniform(-40, 90), weight_exp=3,
              delay=uniform(1, 4), stdp=rule, name="inp_p0")  # fmt: skip
    b.project("p0", "p1", connect=prob(0.3), weight=uniform(0, 90), weight_exp=4,
              delay=uniform(1, 8))  # fmt: skip
    b.project("p0", "p1", connect=prob(0.3), weight=uniform(-40, 90), weight_exp=3,
              delay=uniform(1, 3), stdp=rule, name="p0_p1")  # fmt: skip
    return b.build()


def saturation_network() -> Network:
    """Traces at their 65535 ceiling and weights at both clamps: large bumps, slow decays,
    high rates, large amplitudes and no shift."""
    rule = _rule(a_plus=127, a_minus=127, d_pre=1, d_post=2, bump_pre=50000, bump_post=60000,
                 shift=0, w_min=-5, w_max=7)  # fmt: skip
    b = NetworkBuilder("saturation")
    b.spike_source("inp", 24, poisson={"rate_hz": 500.0, "seed": 7})
    b.population("out", 16, du=2000, dv=1000, vth=40, refractory=0, reset="zero")
    b.project("inp", "out", connect="all_to_all", weight=3, weight_exp=5, stdp=rule, name="sat")
    return b.build()


CASES = {
    "window": window_network,
    "window_stochastic": lambda: window_network(stochastic=True),
    "random1": lambda: random_plastic_network(1, stochastic=False),
    "random2": lambda: random_plastic_network(2, stochastic=True),
    "saturation": saturation_network,
}
STEPS = {"window": 60, "window_stochastic": 60}
DEFAULT_STEPS = 32
#: The testbench reads back every weight and trace after this many steps (and the last).
CHECK_EVERY = {"window": 1, "window_stochastic": 2, "saturation": 3}
DEFAULT_CHECK_EVERY = 4


def write_case(net: Network, cfg: CoreConfig, steps: int, path: Path, every: int = 1) -> dict:
    """Run ``net`` on the golden model; write the image, events and expectations."""
    image = single_core_image(net, cfg)
    model = GoldenModel(net)
    lif = model.is_lif
    g_neuron = np.full(model.n, -1, dtype=np.int64)
    g_axons = np.full((model.n, 2), -1, dtype=np.int64)
    for name, p in net.populations.items():
        sl = slice(model.offset[name], model.offset[name] + p.size)
        g_neuron[sl] = image.neuron_of[name]
        static, plastic = image.axons_of(name)
        g_axons[sl, 0], g_axons[sl, 1] = static, plastic
    plastic = [pr for pr in net.projections if pr.stdp is not None]
    stochastic = plastic[0].stdp.stochastic_rounding
    pls = {pl.proj.name: pl for pl in model.plastic}
    n_entries, n_ax, n = image.n_entries, image.n_axons, image.n_neurons
    weights = np.zeros((steps, n_entries), dtype=np.int64)
    x = np.zeros((steps, n_ax), dtype=np.int64)
    y = np.zeros((steps, n), dtype=np.int64)
    lfsr = np.zeros((steps, n), dtype=np.int64)
    spikes, events = [], []
    prev = np.zeros(0, dtype=np.int64)
    for t in range(steps + 1):
        ax = g_axons[prev].ravel()
        events.append(ax[ax >= 0])
        if t == steps:
            break
        ids = model.step()
        spikes.append(np.sort(g_neuron[ids[lif[ids]]]))
        prev = ids
        for pr in plastic:
            weights[t, image.entry_of[pr.name]] = model.weights(pr.name)
            xs, ys = model.traces(pr.name)
            x[t, image.plastic_axon_of[pr.pre][pr.pre_idx]] = xs[pr.pre_idx]
            y[t, image.neuron_of[pr.post]] = ys
            if stochastic:
                # the core keeps the state the next learning phase uses
                lfsr[t, image.neuron_of[pr.post]] = arith.lfsr_advance(pls[pr.name].lfsr)
    plastic_entries = np.concatenate([image.entry_of[pr.name] for pr in plastic])
    post_neurons = np.unique(np.concatenate([image.neuron_of[pr.post] for pr in plastic]))
    plastic_axons = np.unique(
        np.concatenate([image.plastic_axon_of[pr.pre][pr.pre_idx] for pr in plastic])
    )
    arrays = {f"mem_{m.name}": np.array(w, dtype=np.uint64) for m, w in image.words.items()}
    arrays.update(
        regs=np.array([[int(r), v] for r, v in image.regs.items()], dtype=np.int64),
        weights=weights,
        x=x,
        y=y,
        lfsr=lfsr,
        plastic_entries=plastic_entries,
        plastic_axons=plastic_axons,
        post_neurons=post_neurons,
        spike_counts=np.array([s.size for s in spikes]),
        spikes=np.concatenate(spikes),
        event_counts=np.array([e.size for e in events]),
        events=np.concatenate(events),
    )
    np.savez(path, **arrays)
    initial = np.zeros(n_entries, dtype=np.int64)
    for pr in plastic:
        initial[image.entry_of[pr.name]] = pr.weight
    meta = {
        "steps": steps,
        "check_every": every,
        "stochastic": bool(stochastic),
        "total_spikes": int(sum(s.size for s in spikes)),
        "weights_changed": int((weights[-1, plastic_entries] != initial[plastic_entries]).sum()),
        "trace_max": int(max(x.max(), y.max())),
        "at_w_min": int((weights[:, plastic_entries] == plastic[0].stdp.w_min).sum()),
        "at_w_max": int((weights[:, plastic_entries] == plastic[0].stdp.w_max).sum()),
    }
    path.with_suffix(".json").write_text(json.dumps(meta))
    return meta


def load_case(path: Path) -> dict:
    with np.load(path) as f:
        case = {k: f[k] for k in f.files}
    for key in ("spike", "event"):
        counts, flat = case[f"{key}_counts"], case[f"{key}s"]
        case[f"{key}s_per_step"] = np.split(flat, np.cumsum(counts)[:-1])
    case["words"] = {m: case.get(f"mem_{m.name}") for m in CoreMem}
    case["meta"] = json.loads(path.with_suffix(".json").read_text())
    return case


HERE = Path(__file__).parent


def build_cases(out: Path, names: list[str] | None = None) -> Path:
    """Write the case files and a manifest naming them."""
    out.mkdir(parents=True, exist_ok=True)
    cases = {}
    for name, make in CASES.items():
        if names is None or name in names:
            path = out / f"{name}.npz"
            steps = STEPS.get(name, DEFAULT_STEPS)
            write_case(make(), CONFIG, steps, path, CHECK_EVERY.get(name, DEFAULT_CHECK_EVERY))
            cases[name] = str(path)
    fields = ("neurons", "axons", "synapses", "delay_slots", "acc_bits", "learning")
    manifest = out / "manifest.json"
    manifest.write_text(
        json.dumps({"config": {k: getattr(CONFIG, k) for k in fields}, "cases": cases})
    )
    return manifest


def run_regression(
    sim: str, build: Path, names: list[str] | None = None, merged_banks: bool | None = None
) -> None:
    """Run the learning regression on one simulator (raises when a case differs)."""
    from spikefab.hdl.core import NeuronCore
    from spikefab.sim.rtl import run_cocotb, write_verilog

    core = NeuronCore(CONFIG, merged_banks=merged_banks)
    verilog = write_verilog(core, "neuron_core", build / "neuron_core.v")
    manifest = build_cases(build / "cases", names)
    run_cocotb(
        sim,
        [verilog],
        "neuron_core",
        "test_learning",
        test_dir=HERE,
        build_dir=build,
        extra_env={"SPIKEFAB_LEARN_MANIFEST": str(manifest)},
    )
