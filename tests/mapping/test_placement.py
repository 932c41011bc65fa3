"""The mapper: placements keep every limit, tables hold exactly the network's synapses, and
where neurons live never changes what the network does (golden model vs the system model)."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import pytest
from spikefab.hdl.layouts import CoreConfig, CoreMem, SystemConfig, pack, pack_array, unpack
from spikefab.host.runtime import run_network
from spikefab.mapping.core_image import FitError
from spikefab.mapping.hardware import Hardware
from spikefab.mapping.image import place_sequential
from spikefab.mapping.loader import load
from spikefab.mapping.mapper import map_network, place
from spikefab.mapping.network import NetworkBuilder
from spikefab.mapping.placement import assign_partitioned, flatten
from spikefab.sim.golden import GoldenModel
from spikefab.sim.system_model import SystemModel

EXAMPLES = Path(__file__).parents[2] / "examples"
METHODS = ["greedy", "partition", "random"]


def same(a, b) -> None:
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.population, b.population)
    np.testing.assert_array_equal(a.neuron, b.neuron)
    assert a.probes.keys() == b.probes.keys()
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k].values, b.probes[k].values)


def random_net(seed: int, n_pops: int = 3, spikes: bool = False):
    """Sources and LIF populations with random, constant and all-to-all projections."""
    rng = np.random.default_rng(seed)
    b = NetworkBuilder(f"r{seed}")
    b.spike_source("inp", 12, poisson={"rate_hz": 150, "seed": seed})
    b.spike_source("kick", 3, times=[[1, 9], [4], [2, 30]])
    for k in range(n_pops):
        b.population(
            f"p{k}",
            int(rng.integers(4, 30)),
            du=int(rng.integers(0, 4096)),
            dv=int(rng.integers(0, 800)),
            vth=int(rng.integers(50, 500)),
            refractory=int(rng.integers(0, 4)),
            reset=str(rng.choice(["zero", "subtract"])),
        )

    def seeded(**kw):
        return {**kw, "seed": int(rng.integers(1_000_000))}

    for pre in ["inp", "kick"] + [f"p{k}" for k in range(n_pops)]:
        for k in range(n_pops):
            r = rng.random()
            if r < 0.4:
                b.project(
                    pre,
                    f"p{k}",
                    connect=seeded(kind="fixed_probability", p=float(rng.uniform(0.05, 0.4))),
                    weight=seeded(kind="uniform", low=-60, high=127),
                    weight_exp=int(rng.integers(0, 3)),
                    delay=seeded(kind="uniform", low=1, high=6),
                )
            elif r < 0.6:
                # identical rows from every sender: the mapper shares their axons
                b.project(
                    pre, f"p{k}", connect="all_to_all", weight=int(rng.integers(-30, 90)), delay=2
                )
    if spikes:
        b.probe("p0", "spikes", neurons=[0, 1, 2])
    b.probe("p1", "v", neurons=[0, 3])
    return b.build()


def system(neurons: int, cores: int, axons: int = 128, synapses: int = 2048) -> SystemConfig:
    return SystemConfig(
        cores=cores,
        core=CoreConfig(neurons=neurons, axons=axons, synapses=synapses, delay_slots=8),
        route_entries=2048,
        sources=32,
        inject_depth=64,
    )


def table_synapses(image, net) -> collections.Counter:
    """Every synapse the image's tables deliver, decoded word by word with ``unpack``:
    (sender, receiver, value, delay), senders and receivers as (population, index)."""
    cfg = image.config
    N = cfg.core.neurons
    where = {}
    for name in image.core_of:
        for i, (k, n) in enumerate(zip(image.core_of[name], image.neuron_of[name], strict=True)):
            where[int(k) * N + int(n)] = (name, i)
    senders = dict(where)
    for name, ids in image.source_of.items():
        for i, s in enumerate(ids):
            senders[cfg.cores * N + int(s)] = (name, i)
    out: collections.Counter = collections.Counter()
    for gid, who in senders.items():
        ptr = unpack(cfg.route_pointer_layout, image.route_pointers[gid])
        for e in range(ptr["start"], ptr["start"] + ptr["count"]):
            ent = unpack(cfg.route_entry_layout, image.route_entries[e])
            if ent["dest"] == cfg.host_dest:
                continue
            words = image.core_words[ent["dest"]]
            ax = unpack(cfg.core.axon_layout, words[CoreMem.AXONS][ent["axon"]])
            for w in words[CoreMem.SYNAPSES][ax["start"] : ax["start"] + ax["count"]]:
                syn = unpack(cfg.core.synapse_layout, w)
                target = where[ent["dest"] * N + syn["target"]]
                value = syn["weight"] << syn["weight_exp"]
                out[(who, target, value, syn["delay"] + 1)] += 1
    return out


def network_synapses(net) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for pr in net.projections:
        for i, j, w, d in zip(pr.pre_idx, pr.post_idx, pr.weight, pr.delay, strict=True):
            out[((pr.pre, int(i)), (pr.post, int(j)), int(w) << pr.weight_exp, int(d))] += 1
    return out


# ---------------------------------------------------------------------------------------------
# Invariance: the golden model on the logical network and on images of several placements


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("neurons", "cores"), [(16, 8), (32, 4), (64, 3)])
def test_placements_do_not_change_spikes(seed, neurons, cores):
    net = random_net(seed, spikes=seed % 2 == 1)
    cfg = system(neurons, cores)
    ref = GoldenModel(net).run(120)
    placements = {}
    for method, placement_seed in [*((m, 0) for m in METHODS), ("random", 1), ("random", 2)]:
        m = map_network(net, cfg, method, seed=placement_seed)
        placements[(method, placement_seed)] = m.assignment.core * neurons + m.assignment.slot
        got = run_network(net, m.image(cfg), SystemModel(cfg), 120, "system")
        same(got, ref)
    # the placements differ from each other (else the test would prove little)
    distinct = {tuple(v) for v in placements.values()}
    assert len(distinct) >= 3


@pytest.mark.parametrize("method", METHODS)
def test_tables_hold_exactly_the_networks_synapses(method):
    net = random_net(11)
    image = place(net, system(16, 8), method, seed=5)
    assert table_synapses(image, net) == network_synapses(net)


@pytest.mark.parametrize("name", ["synfire", "balanced", "fi_sweep"])
@pytest.mark.parametrize("method", METHODS)
def test_examples_on_every_placement(name, method):
    net = load(EXAMPLES / f"{name}.yaml")
    cfg = SystemConfig(
        cores=8,
        core=CoreConfig(neurons=256, axons=2048, synapses=32768, delay_slots=4),
        route_entries=16384,
        inject_depth=1024,
    )
    image = place(net, cfg, method, seed=3)
    same(run_network(net, image, SystemModel(cfg), 150, "system"), GoldenModel(net).run(150))


@pytest.mark.parametrize("method", ["greedy", "partition"])
@pytest.mark.parametrize("seed", range(3))
def test_spread_shares_the_neurons_over_every_core(method, seed):
    net = random_net(seed, n_pops=4)
    cfg = system(64, 5)
    m = map_network(net, cfg, method, seed=seed, spread=True)
    per_core = np.bincount(m.assignment.core, minlength=cfg.cores)
    n = net.n_neurons
    assert per_core.sum() == n and (per_core > 0).all()
    if method == "greedy":
        # even runs in network order
        assert per_core.max() - per_core.min() <= 1, per_core
    else:
        # METIS balances what a neuron takes of a core, the larger of its share of the
        # neurons and of the synapse entries, to within its imbalance (at most 10%) and a
        # neuron's worth
        fan = flatten(net).fan_in()
        w = np.maximum(cfg.core.synapses, fan * cfg.core.neurons)
        per_core_w = np.bincount(m.assignment.core, weights=w)
        assert per_core_w.max() <= 1.1 * w.sum() / cfg.cores + w.max(), per_core_w
    # filling uses fewer cores and a busier one: that is what spread is for
    packed = np.bincount(map_network(net, cfg, method, seed=seed).assignment.core)
    assert packed.max() > per_core.max()
    same(run_network(net, m.image(cfg), SystemModel(cfg), 120, "system"), GoldenModel(net).run(120))


def test_spread_falls_back_to_filling_when_even_shares_break_a_limit():
    # 10 neurons on 2 cores of 64 entries; neurons 6, 7 and 8 take 32 entries each. Even
    # halves (0-4, 5-9) leave the second core full after neuron 7 with 8 and 9 to place;
    # filling puts 0-7 on the first core and 8-9 on the second
    b = NetworkBuilder("front")
    b.spike_source("s", 32, times=[[1]] * 32)
    b.population("a", 6, du=0, dv=0, vth=10)
    b.population("b", 3, du=0, dv=0, vth=10)
    b.population("c", 1, du=0, dv=0, vth=10)
    b.project("s", "b", connect="all_to_all", weight=20, delay=1)
    net = b.build()
    cfg = system(16, 2, synapses=64)
    m = map_network(net, cfg, "greedy", spread=True)
    np.testing.assert_array_equal(m.assignment.core, [0] * 8 + [1] * 2)
    same(run_network(net, m.image(cfg), SystemModel(cfg), 20, "system"), GoldenModel(net).run(20))


# ---------------------------------------------------------------------------------------------
# Limits


@pytest.mark.parametrize("method", METHODS)
def test_every_limit_is_kept(method):
    net = random_net(3, n_pops=4)
    cfg = system(16, 15, axons=64, synapses=256)
    m = map_network(net, cfg, method, seed=7)
    gid = m.assignment.core * 16 + m.assignment.slot
    assert np.unique(gid).size == gid.size
    assert (m.assignment.slot < 16).all() and (m.assignment.core < 15).all()
    assert max(m.stats["neurons_per_core"]) <= 16
    assert max(m.stats["axons"]) <= 64
    assert max(m.stats["entries"]) <= 256
    if method == "greedy":
        # with these small cores, axons and entries close some cores before they are full
        assert {"axons", "synapse entries"} <= set(m.stats["closed_by"].values())
    same(run_network(net, m.image(cfg), SystemModel(cfg), 80, "system"), GoldenModel(net).run(80))


def test_identical_rows_share_axons_and_routes():
    net = load(EXAMPLES / "synfire.yaml")
    cfg = SystemConfig(
        cores=1, core=CoreConfig(neurons=256, axons=256, synapses=4096, delay_slots=4)
    )
    m = map_network(net, cfg)
    # group k -> group k+1 (all to all, one weight): each group's 20 rows are one axon of 20
    # entries; the stimulus (one to one) keeps 20 axons of one entry each
    assert (m.cores[0].axons, m.cores[0].entries) == (7 + 20, 7 * 20 + 20)
    assert m.stats["rows"] == 7 * 20 + 20
    # the 20 neurons of a group share one route: (core 0, their axon) then the host
    assert m.stats["route_entries"] == 7 * 2 + 1 + 20
    image = m.image(cfg)
    assert table_synapses(image, net) == network_synapses(net)


def test_oversize_population_names_the_limit_and_the_fix():
    b = NetworkBuilder("big")
    b.spike_source("inp", 2400, poisson={"rate_hz": 5, "seed": 1})
    b.population("exc", 8, du=100, dv=100, vth=100)
    b.project("inp", "exc", connect="all_to_all", weight=1)
    hw = Hardware(
        cores=4,
        core=CoreConfig(neurons=64, axons=4096, synapses=2048),
        route_entries=1 << 16,
        sources=4096,
    )
    with pytest.raises(
        FitError,
        match=r"population 'exc' needs 2400 synapse entries on one core for its neuron 0 "
        r"alone \(8 neuron\(s\) over\); a core holds 2048 \(352 too many\); lower the fan-in "
        r"or use cores with at least 4096 synapse entries",
    ):
        map_network(b.build(), hw)


def test_every_problem_is_listed():
    b = NetworkBuilder("bad")
    b.spike_source("inp", 40, poisson={"rate_hz": 5, "seed": 1})
    b.population("a", 300, du=100, dv=100, vth=100)
    b.project("inp", "a", connect="all_to_all", weight=127, weight_exp=7, delay=20)
    cfg = SystemConfig(
        cores=1,
        core=CoreConfig(neurons=256, axons=32, synapses=8192, delay_slots=16, acc_bits=17),
        sources=32,
    )
    with pytest.raises(FitError) as e:
        map_network(b.build(), cfg)
    msg = str(e.value)
    assert msg.startswith("network 'bad' does not fit:\n  - ")
    for part in [
        "projection 'inp->a' has delays up to 20 steps; a core has 16 delay slots; shorten "
        "the delays or use cores with at least 32 delay slots",
        "needs 40 source neurons; the router has 32 source ids (8 too many)",
        "needs 300 neurons; 1 cores of 256 hold 256 (44 too many); use at least 2 cores",
        "population 'a' needs 40 axons on one core for its neuron 0 alone (one per sender; "
        "300 neuron(s) over); a core has 32 (8 too many)",
        "neuron 0 of 'a' can receive a sum of 650240 in one step; the 17-bit accumulator "
        "holds 65535 (use acc_bits >= 21)",
    ]:
        assert part in msg
    assert "650240" in msg and 40 * (127 << 7) == 650240


def test_running_out_of_cores_says_which_limit_closed_them():
    net = load(EXAMPLES / "balanced.yaml")
    cfg = SystemConfig(
        cores=4, core=CoreConfig(neurons=256, axons=2048, synapses=16384), route_entries=8192
    )
    with pytest.raises(
        FitError,
        match=r"the greedy placement fills all 4 cores with \d+ of 1000 neurons left over; "
        r"cores closed on: synapse entries \(4\).*use more cores or cores with more synapse "
        r"entries",
    ):
        map_network(net, cfg)


def test_route_table_overflow():
    net = load(EXAMPLES / "balanced.yaml")
    cfg = SystemConfig(
        cores=4,
        core=CoreConfig(neurons=256, axons=2048, synapses=32768),
        route_entries=4096,
    )
    with pytest.raises(
        FitError,
        match=r"needs 5800 route entries \(after sharing\); the router holds 4096 \(1704 too "
        r"many; .*use a router with at least 8192 entries",
    ):
        map_network(net, cfg)


def test_plastic_networks_need_learning_cores():
    net = load(EXAMPLES / "stdp_pattern.yaml")
    cfg = SystemConfig(cores=4, core=CoreConfig(neurons=256, axons=2048, synapses=32768))
    with pytest.raises(FitError, match=r"core 0: plastic synapses need a learning unit"):
        map_network(net, cfg)


def test_old_placement_limits_message():
    net = load(EXAMPLES / "balanced.yaml")
    cfg = SystemConfig(cores=2, core=CoreConfig(neurons=256, axons=256, synapses=4096))
    with pytest.raises(FitError, match=r"needs 1000 neurons; 2 cores of 256 hold 512 \(488 too"):
        place_sequential(net, cfg)


def test_hardware_beyond_the_system_maps_but_gives_no_image():
    net = random_net(2)
    hw = Hardware(
        cores=40,
        core=CoreConfig(neurons=16, axons=64, synapses=1024),
        route_entries=1 << 12,
        sources=64,
    )
    m = map_network(net, hw, "greedy")
    assert m.cores_used >= 2
    with pytest.raises(FitError, match=r"cores must be an integer from 1 to 15, not 40"):
        m.image()
    # the cores used do make a system
    img = m.image(trim=True)
    assert img.config.cores == m.cores_used
    same(run_network(net, img, SystemModel(img.config), 60, "system"), GoldenModel(net).run(60))


# ---------------------------------------------------------------------------------------------
# Placement quality


def grid_net(side: int, radius: int, fan: int, seed: int = 0):
    """A sheet of ``side * side`` neurons, numbered row by row, each with ``fan`` synapses
    within ``radius`` steps."""
    rng = np.random.default_rng(seed)
    n = side * side
    pre = np.repeat(np.arange(n), fan)
    dx, dy = rng.integers(-radius, radius + 1, size=(2, pre.size))
    post = ((pre // side + dy) % side) * side + (pre % side + dx) % side
    b = NetworkBuilder("grid")
    b.population("sheet", n, du=100, dv=100, vth=300)
    b.project(
        "sheet", "sheet", connect={"kind": "list", "pairs": np.stack([pre, post], 1)}, weight=3
    )
    return b.build()


def test_partition_cuts_traffic_on_a_local_network():
    net = grid_net(24, 2, 12)
    hw = Hardware(
        cores=24,
        core=CoreConfig(neurons=32, axons=512, synapses=4096),
        route_entries=1 << 16,
        sources=16,
    )
    greedy = map_network(net, hw, "greedy").stats
    part = map_network(net, hw, "partition").stats
    assert part["cores_used"] == greedy["cores_used"] == 18
    assert part["inter_core_routes"] <= 0.75 * greedy["inter_core_routes"]


def test_rates_weight_the_traffic():
    net = load(EXAMPLES / "balanced.yaml")
    flat = flatten(net)
    cfg = SystemConfig(
        cores=4, core=CoreConfig(neurons=256, axons=2048, synapses=32768), route_entries=8192
    )
    rates = np.zeros(flat.n + flat.m)
    rates[:800] = 0.5  # only the excitatory neurons spike
    m = map_network(net, cfg, "partition", rates=rates)
    remote = m.stats["inter_core_events"]
    assert remote > 0
    # inhibitory senders count for nothing: half an event per excitatory remote route
    core = m.assignment.core
    senders = {}
    for pr in net.projections:
        if pr.pre != "exc":
            continue
        for i, j in zip(pr.pre_idx, pr.post_idx, strict=True):
            senders.setdefault(int(i), set()).add(int(core[flat.lif_offset[pr.post] + j]))
    expect = sum(len(cs - {int(core[i])}) for i, cs in senders.items()) * 0.5
    assert remote == pytest.approx(expect)
    with pytest.raises(ValueError, match=r"rates must have one value per LIF neuron and source"):
        map_network(net, cfg, rates=np.zeros(3))


def test_partition_without_pymetis_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymetis", None)
    net = random_net(1)
    flat = flatten(net)
    with pytest.raises(RuntimeError, match=r"the partition placement needs pymetis"):
        assign_partitioned(flat, Hardware.of(system(16, 8)))
    # the greedy placement does not need it
    assert map_network(net, system(16, 8), "greedy").cores_used >= 1


def test_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of greedy, partition, random, "):
        map_network(random_net(0), system(16, 8), "best")


# ---------------------------------------------------------------------------------------------
# Pieces


@pytest.mark.parametrize(
    "layout",
    [
        CoreConfig(neurons=64, synapses=512, delay_slots=8).synapse_layout,
        CoreConfig(synapses=512).axon_layout,
        SystemConfig(cores=3).route_pointer_layout,
        SystemConfig(cores=3).route_entry_layout,
    ],
)
def test_pack_array_matches_pack(layout):
    from amaranth.hdl import Shape

    rng = np.random.default_rng(0)
    fields = {}
    for name, f in layout:
        s = Shape.cast(f.shape)
        lo, hi = (-(1 << (s.width - 1)), 1 << (s.width - 1)) if s.signed else (0, 1 << s.width)
        fields[name] = np.append(rng.integers(lo, hi, size=200), [lo, hi - 1])
    words = pack_array(layout, **fields)
    for i in range(words.size):
        assert int(words[i]) == pack(layout, {k: int(v[i]) for k, v in fields.items()})
    name = next(iter(fields))
    bad = dict(fields)
    bad[name] = bad[name].copy()
    bad[name][5] = 1 << 40
    with pytest.raises(ValueError, match=rf"field {name} = {1 << 40} does not fit"):
        pack_array(layout, **bad)


def test_hardware_checks_its_arguments():
    core = CoreConfig()
    with pytest.raises(ValueError, match=r"cores must be at least 1, not 0"):
        Hardware(cores=0, core=core, route_entries=8, sources=8)
    with pytest.raises(TypeError, match=r"route_entries must be an integer, not 2.5"):
        Hardware(cores=1, core=core, route_entries=2.5, sources=8)
    with pytest.raises(TypeError, match=r"core must be a CoreConfig, not 'big'"):
        Hardware(cores=1, core="big", route_entries=8, sources=8)
    with pytest.raises(TypeError, match=r"config must be a SystemConfig or a Hardware, not 3"):
        Hardware.of(3)
    cfg = SystemConfig(cores=3, core=core, route_entries=512)
    assert Hardware.of(cfg).system() == cfg
