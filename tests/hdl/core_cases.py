"""Networks for the neuron-core regression, and their golden-model expectations.

Each case is a network made with the golden model's own builder, placed on one core, run on
the golden model step by step; the case file holds the core's memory image, the input axon
events of every step, and the expected spikes and ``u``, ``v``, ``ref`` after every step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from spikefab.hdl import params as P
from spikefab.hdl.layouts import CoreConfig, CoreMem
from spikefab.hdl.sdram import SDRAMGeometry, SDRAMTiming
from spikefab.mapping.core_image import single_core_image
from spikefab.mapping.network import Network, NetworkBuilder
from spikefab.sim.golden import GoldenModel

#: The SDRAM of the cores with their table in SDRAM: 32 entries a row, so that ranges cross
#: rows often, and the datasheet's timing with a short power-up wait.
SDRAM_GEOMETRY = SDRAMGeometry(row_bits=5, col_bits=6, bank_bits=2)
SDRAM_TIMING = SDRAMTiming(t_power_up=400.0)

# core sizes of the sweep: (neurons, axons, synapses, delay slots)
CONFIGS = {
    "n16d4": CoreConfig(neurons=16, axons=64, synapses=512, delay_slots=4),
    "n64d16": CoreConfig(neurons=64, axons=128, synapses=2048, delay_slots=16),
}


def _random_lif(rng: np.random.Generator, scale: int) -> dict:
    """Random fixed-point parameters over the whole range, weighted toward active neurons."""
    pick = rng.random()
    return {
        "du": int(rng.choice([0, 4095, rng.integers(0, 4096)], p=[0.1, 0.1, 0.8])),
        "dv": int(rng.choice([0, 4095, rng.integers(0, 4096)], p=[0.1, 0.1, 0.8])),
        "vth": int(rng.integers(0, scale) if pick < 0.9 else rng.integers(0, P.VTH_MAX + 1)),
        "bias_mant": int(rng.integers(-200, 400) if pick < 0.7 else rng.integers(-4096, 4096)),
        "bias_exp": int(rng.integers(0, 8)),
        "refractory": int(rng.choice([0, 1, 2, 15, rng.integers(0, 16)])),
        "reset": str(rng.choice(["zero", "subtract"])),
    }


def random_network(cfg: CoreConfig, seed: int) -> Network:
    """A random network filling most of a core: inputs, two populations, recurrence."""
    rng = np.random.default_rng(seed)
    n_lif = cfg.neurons
    n_in = min(cfg.axons - n_lif, 3 * n_lif // 2)
    sizes = [n_lif // 2, n_lif - n_lif // 2]
    b = NetworkBuilder(f"random{seed}")
    b.spike_source("inp", n_in, poisson={"rate_hz": float(rng.uniform(50, 400)), "seed": seed})
    scale = int(rng.choice([200, 2000, 20000]))
    for k, size in enumerate(sizes):
        b.population(f"p{k}", size, **_random_lif(rng, scale))
    budget = cfg.synapses
    pairs = [("inp", "p0"), ("inp", "p1"), ("p0", "p1"), ("p1", "p0"), ("p0", "p0")]
    for pre, post in pairs:
        n_pre = n_in if pre == "inp" else sizes[int(pre[1])]
        n_post = sizes[int(post[1])]
        prob = min(0.5, 0.8 * budget / len(pairs) / (n_pre * n_post))
        b.project(
            pre,
            post,
            connect={"kind": "fixed_probability", "p": prob, "seed": int(rng.integers(1 << 30))},
            weight={
                "kind": "uniform",
                "low": -128,
                "high": 127,
                "seed": int(rng.integers(1 << 30)),
            },
            weight_exp=int(rng.integers(0, 8)),
            delay={
                "kind": "uniform",
                "low": 1,
                "high": cfg.delay_slots,
                "seed": int(rng.integers(1 << 30)),
            },
        )
    return b.build()


def active_random_network(cfg: CoreConfig, seed: int, steps: int) -> Network:
    """The first of the random networks derived from ``seed`` whose populations all fire,
    neither silent nor saturated (between 2% and 70% of neuron-steps)."""
    for k in range(100):
        net = random_network(cfg, seed * 1000 + k)
        if net.n_synapses > cfg.synapses:
            continue
        counts = GoldenModel(net).run(steps).counts()
        rates = [counts[p].mean() / steps for p in ("p0", "p1")]
        if all(0.02 <= r <= 0.7 for r in rates):
            return net
    raise AssertionError(f"no active random network from seed {seed}")


# named corner cases -------------------------------------------------------------------------


def corner_u_wrap(cfg: CoreConfig) -> Network:
    """u grows by a = 2 x (127 << 7) << 6 per step with du = 0 until it wraps past +-2**23."""
    b = NetworkBuilder("u_wrap")
    b.spike_source("inp", 2, times=[list(range(40)), list(range(40))])
    b.population("pos", 1, du=0, dv=4095, vth=P.VTH_MAX, refractory=15)
    b.population("neg", 1, du=0, dv=4095, vth=P.VTH_MAX, refractory=15)
    b.project("inp", "pos", weight=127, weight_exp=7)
    b.project("inp", "neg", weight=-128, weight_exp=7)
    return b.build()


def corner_v_clip(cfg: CoreConfig) -> Network:
    """v integrates a large u with dv = 0 and clips at +-(2**23 - 1)."""
    b = NetworkBuilder("v_clip")
    b.spike_source("inp", 1, times=[list(range(0, 40, 3))])
    b.population("pos", 1, du=100, dv=0, vth=P.VTH_MAX, refractory=15, reset="subtract")
    b.population("neg", 1, du=100, dv=0, vth=P.VTH_MAX)
    b.project("inp", "pos", weight=127, weight_exp=7)
    b.project("inp", "neg", weight=-128, weight_exp=7)
    return b.build()


def corner_max_fan_in(cfg: CoreConfig) -> Network:
    """Every input axon hits neuron 0 in one step (forwarding back to back, sum saturates)
    and neuron 1 with alternating signs whose running sum leaves 16 bits but ends inside."""
    n_in = cfg.axons - cfg.neurons
    per = min(n_in, cfg.synapses // 2)
    b = NetworkBuilder("max_fan_in")
    b.spike_source("inp", per, times=[[0, 5, 6, 20]] * per)
    b.population("out", 2, du=4095, dv=4095, vth=P.VTH_MAX)
    pairs = [[i, 0] for i in range(per)] + [[i, 1] for i in range(per)]
    weights = [127] * per + [127 if i < per // 2 else -128 for i in range(per)]
    b.project(
        "inp",
        "out",
        connect={"kind": "list", "pairs": pairs},
        weight=weights,
        weight_exp=7,
        delay=1,
    )
    b.probe("out", "u")
    return b.build()


def corner_every_delay(cfg: CoreConfig) -> Network:
    """One input spike reaches neuron d - 1 after exactly d steps, for every d in 1..D."""
    D = cfg.delay_slots
    b = NetworkBuilder("every_delay")
    b.spike_source("inp", 1, times=[[0, 7]])
    b.population("out", D, du=4095, dv=4095, vth=10)
    b.project(
        "inp",
        "out",
        connect={"kind": "list", "pairs": [[0, d] for d in range(D)]},
        weight=100,
        delay=list(range(1, D + 1)),
    )
    return b.build()


def corner_refractory(cfg: CoreConfig) -> Network:
    """Bias-driven neurons with refractory 0, 1, 2, 15, both reset modes; u keeps integrating
    a weak inhibition during the refractory steps."""
    b = NetworkBuilder("refractory")
    b.spike_source("inp", 1, times=[list(range(0, 60, 4))])
    for r in (0, 1, 2, 15):
        for reset in ("zero", "subtract"):
            name = f"r{r}_{reset}"
            b.population(
                name,
                1,
                du=500,
                dv=300,
                vth=100,
                bias_mant=3000,
                bias_exp=1,
                refractory=r,
                reset=reset,
            )
            b.project("inp", name, weight=-10)
    return b.build()


def corner_threshold_equal(cfg: CoreConfig) -> Network:
    """v lands exactly on the threshold (no spike) and one above it (spike), in both reset
    modes: a = 100 gives u = 6400 = 100 << 6, and v = u when dv = du = 4095."""
    b = NetworkBuilder("threshold_equal")
    b.spike_source("inp", 1, times=[list(range(0, 40, 3))])
    b.population("equal", 2, du=4095, dv=4095, vth=100)
    b.population("above", 2, du=4095, dv=4095, vth=100, bias_mant=1)
    b.population("equal_sub", 1, du=4095, dv=4095, vth=100, reset="subtract")
    b.population("above_sub", 1, du=4095, dv=4095, vth=100, bias_mant=1, reset="subtract")
    for name in ("equal", "above", "equal_sub", "above_sub"):
        b.project("inp", name, weight=100)
    return b.build()


def corner_all_spike(cfg: CoreConfig) -> Network:
    """Every neuron of the core spikes every step: the most the output FIFO ever holds."""
    b = NetworkBuilder("all_spike")
    b.population("all", cfg.neurons, du=4095, dv=4095, vth=0, bias_mant=1)
    return b.build()


def corner_bias_and_negative(cfg: CoreConfig) -> Network:
    """Bias exponents 0..7 with extreme mantissas, against negative (inhibitory) weights."""
    b = NetworkBuilder("bias_exp")
    b.spike_source("inp", 4, poisson={"rate_hz": 300, "seed": 5})
    for e in range(8):
        b.population(
            f"e{e}", 2, du=2000, dv=1000, vth=3000, bias_mant=4095 if e % 2 else -4096, bias_exp=e
        )
        b.project("inp", f"e{e}", weight=-128 if e % 2 else 127, weight_exp=7 - e)
    return b.build()


CORNERS: dict[str, Callable[[CoreConfig], Network]] = {
    "u_wrap": corner_u_wrap,
    "v_clip": corner_v_clip,
    "max_fan_in": corner_max_fan_in,
    "every_delay": corner_every_delay,
    "refractory": corner_refractory,
    "threshold_equal": corner_threshold_equal,
    "all_spike": corner_all_spike,
    "bias_exp_negative_weights": corner_bias_and_negative,
}


# case files ---------------------------------------------------------------------------------


def write_case(net: Network, cfg: CoreConfig, steps: int, path: Path) -> dict:
    """Run ``net`` on the golden model and write everything the testbench needs."""
    image = single_core_image(net, cfg)
    model = GoldenModel(net)
    lif = model.is_lif
    core_of_global = np.full(model.n, -1, dtype=np.int64)
    axon_of_global = np.full(model.n, -1, dtype=np.int64)
    for name, p in net.populations.items():
        sl = slice(model.offset[name], model.offset[name] + p.size)
        core_of_global[sl] = image.neuron_of[name]
        axon_of_global[sl] = image.axon_of[name]
    neuron_axon = np.full(image.n_neurons, -1, dtype=np.int64)
    neuron_axon[core_of_global[lif]] = axon_of_global[lif]
    n = image.n_neurons
    u = np.zeros((steps, n), dtype=np.int64)
    v = np.zeros((steps, n), dtype=np.int64)
    ref = np.zeros((steps, n), dtype=np.int64)
    spikes, inputs = [], []
    prev_src = np.zeros(0, dtype=np.int64)
    for t in range(steps):
        inputs.append(axon_of_global[prev_src])
        ids = model.step()
        spikes.append(np.sort(core_of_global[ids[lif[ids]]]))
        src = ids[~lif[ids]]
        prev_src = src[axon_of_global[src] >= 0]
        order = np.argsort(core_of_global[lif])
        u[t] = model.u[lif][order]
        v[t] = model.v[lif][order]
        ref[t] = model.ref[lif][order]
    arrays = {f"mem_{m.name}": np.array(w, dtype=np.uint64) for m, w in image.words.items()}
    arrays.update(
        u=u,
        v=v,
        ref=ref,
        neuron_axon=neuron_axon,
        spike_counts=np.array([s.size for s in spikes]),
        spikes=np.concatenate(spikes) if spikes else np.zeros(0, np.int64),
        input_counts=np.array([i.size for i in inputs]),
        inputs=np.concatenate(inputs) if inputs else np.zeros(0, np.int64),
    )
    np.savez(path, **arrays)
    meta = {"steps": steps, "neurons": n, "total_spikes": int(sum(s.size for s in spikes))}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return meta


def load_case(path: Path) -> dict:
    with np.load(path) as f:
        case = {k: f[k] for k in f.files}
    counts, flat = case["spike_counts"], case["spikes"]
    case["spikes_per_step"] = np.split(flat, np.cumsum(counts)[:-1])
    counts, flat = case["input_counts"], case["inputs"]
    case["inputs_per_step"] = np.split(flat, np.cumsum(counts)[:-1])
    case["words"] = {m: case.get(f"mem_{m.name}") for m in CoreMem}
    return case


# the regression, as pytest and the mutation run drive it --------------------------------------

HERE = Path(__file__).parent
STEPS = 40
RANDOM_SEEDS = (1, 2, 3)


def build_cases(cfg: CoreConfig, out: Path, names: list[str] | None = None) -> Path:
    """Write the case files of one core size and a manifest naming them."""
    out.mkdir(parents=True, exist_ok=True)
    cases = {}
    for seed in RANDOM_SEEDS:
        if names is None or f"random{seed}" in names:
            path = out / f"random{seed}.npz"
            write_case(active_random_network(cfg, seed, STEPS), cfg, STEPS, path)
            cases[f"random{seed}"] = str(path)
    for name, make in CORNERS.items():
        if names is None or name in names:
            path = out / f"{name}.npz"
            write_case(make(cfg), cfg, STEPS, path)
            cases[name] = str(path)
    manifest = out / "manifest.json"
    fields = ("neurons", "axons", "synapses", "delay_slots", "acc_bits")
    manifest.write_text(
        json.dumps({"config": {k: getattr(cfg, k) for k in fields}, "cases": cases})
    )
    return manifest


def run_regression(
    sim: str,
    cfg_name: str,
    build: Path,
    verilog: Path | None = None,
    names: list[str] | None = None,
    merged_banks: bool | None = None,
    sdram_clk: float | None = None,
    sdram_domain: str = "sync",
) -> None:
    """Run the core regression of one core size on one simulator.

    ``verilog`` replaces the core generated from ``hdl/core.py`` (the mutation run uses
    this); ``names`` restricts the cases; ``merged_banks`` is the core's memory arrangement
    (the dense one by default, the iCE40's merged banks with True). With ``sdram_clk`` the
    core keeps its synapse table in SDRAM, on the SDRAM model (``sim/sdram_model.py``), at
    that clock (Hz): the model counts its rules, and the controller its refreshes, in it;
    ``sdram_domain`` other than ``"sync"`` runs the SDRAM on a clock of its own (the
    testbench gives it twice the core's rate), across clock-domain-crossing FIFOs.

    Raises
    ------
    AssertionError
        When any case differs from the golden model (or the core hangs).
    """
    from spikefab.hdl.core import NeuronCore
    from spikefab.sim.rtl import run_cocotb, write_verilog

    cfg = CONFIGS[cfg_name]
    sources = []
    if sdram_clk is not None:
        from spikefab.hdl.synapse_store import SDRAMOptions
        from spikefab.sim.sdram_model import MODEL, OnSDRAMModel

        cfg = replace(cfg, synapse_memory="sdram")
        opts = SDRAMOptions(
            geometry=SDRAM_GEOMETRY, timing=SDRAM_TIMING, clk_freq=sdram_clk, domain=sdram_domain
        )
        core = OnSDRAMModel(
            NeuronCore(cfg, sdram=opts), opts.geometry, opts.timing, sdram_clk, domain=sdram_domain
        )
        verilog = write_verilog(core, "neuron_core", build / "neuron_core.v")
        sources = [MODEL]
    elif verilog is None:
        core = NeuronCore(cfg, merged_banks=merged_banks)
        verilog = write_verilog(core, "neuron_core", build / "neuron_core.v")
    manifest = build_cases(cfg, build / "cases", names)
    run_cocotb(
        sim,
        [verilog, *sources],
        "neuron_core",
        "test_core",
        test_dir=HERE,
        build_dir=build,
        extra_env={"SPIKEFAB_CORE_MANIFEST": str(manifest)},
    )
