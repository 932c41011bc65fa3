"""The numba path of the golden model against its numpy path, bit for bit.

:class:`~spikefab.sim.golden.GoldenModel` runs either the compiled kernel of
``sim/_kernels.py`` or numpy; both must give the same spikes, ``u``, ``v``, ``ref``, dendrite
ring, synapse values, traces, LFSRs and weights after every step, and the same
:class:`~spikefab.sim.results.RunResult` from ``run``. (``tests/sim/test_golden.py`` holds the
default path, the numba one when numba is installed, to an independent scalar reference of the
contract.)

numba is a test dependency (the ``dev`` extra pulls in ``spikefab[fast]``): this module fails
rather than skips without it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from spikefab.hdl import params as P
from spikefab.mapping.loader import load
from spikefab.mapping.network import Network, NetworkBuilder
from spikefab.sim import _kernels, arith, golden
from spikefab.sim.golden import GoldenModel

try:
    import numba
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError(
        "tests/sim/test_fast_path.py tests the numba path of the golden model and needs numba: "
        "pip install -e '.[fast]' (the dev extra includes it)"
    ) from e

NUMBA_VERSION = numba.__version__

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


# --------------------------------------------------------------------------------------------
# random networks


def _neuron(rng: np.random.Generator, extreme: bool) -> dict[str, Any]:
    def pick(*options: int) -> int:
        return int(options[rng.integers(len(options))])

    if extreme:
        return {
            "du": pick(0, 1, 4095, int(rng.integers(0, 4096))),
            "dv": pick(0, 1, 4095, int(rng.integers(0, 4096))),
            "vth": pick(0, 131071, int(rng.integers(0, 131072)), int(rng.integers(0, 2000))),
            "bias_mant": pick(-4096, 4095, 0, int(rng.integers(-4096, 4096))),
            "bias_exp": pick(7, int(rng.integers(0, 8))),
            "refractory": pick(0, 15, int(rng.integers(0, 16))),
            "reset": ("zero", "subtract")[rng.integers(2)],
        }
    return {
        "du": pick(0, 4095, int(rng.integers(0, 4096)), int(rng.integers(200, 2000))),
        "dv": pick(0, int(rng.integers(0, 4096)), int(rng.integers(50, 1000))),
        "vth": pick(0, int(rng.integers(10, 500)), int(rng.integers(500, 5000))),
        "bias_mant": pick(0, int(rng.integers(-4096, 4096)), int(rng.integers(-100, 100))),
        "bias_exp": int(rng.integers(0, 8)),
        "refractory": pick(0, int(rng.integers(0, 16))),
        "reset": ("zero", "subtract")[rng.integers(2)],
    }


def _stdp(rng: np.random.Generator, sr: bool) -> dict[str, Any]:
    lo = int(rng.integers(-128, 0))
    hi = int(rng.integers(1, 128))
    return {
        "a_plus": int(rng.integers(-128, 128)),
        "a_minus": int(rng.integers(-128, 128)),
        "d_pre": int(rng.choice([0, 4095, rng.integers(0, 4096), rng.integers(30, 600)])),
        "d_post": int(rng.choice([0, 4095, rng.integers(0, 4096), rng.integers(30, 600)])),
        "bump_pre": int(rng.choice([65535, rng.integers(0, 65536), rng.integers(500, 20000)])),
        "bump_post": int(rng.choice([65535, rng.integers(0, 65536), rng.integers(500, 20000)])),
        "shift": int(rng.choice([0, 15, rng.integers(0, 16), rng.integers(8, 14)])),
        "w_min": lo,
        "w_max": hi,
        "stochastic_rounding": sr,
        "seed": int(rng.integers(0, 65536)),
    }


def random_network(seed: int, steps: int) -> tuple[Network, int | None]:
    """A random network and a ring length for it (``None``: the longest delay).

    Sources (explicit and Poisson) and LIF populations are interleaved, so that the LIF
    neurons form several ranges of global ids; populations have up to 70 neurons, projections
    are random synapse lists with delays up to 64, one or two of them plastic (with or without
    stochastic rounding, by the seed's parity), and every third network takes its parameters
    from the extremes of their ranges. Probes of ``u``, ``v``, weights and spikes are added.
    """
    rng = np.random.default_rng(seed)
    extreme = seed % 3 == 2
    b = NetworkBuilder(f"random{seed}")
    kinds = ["times", "lif"] + [
        str(k) for k in rng.choice(["times", "poisson", "lif"], size=rng.integers(1, 5))
    ]
    rng.shuffle(kinds)
    sources, lifs, sizes = [], [], {}
    for k, kind in enumerate(kinds):
        name = f"{kind}{k}"
        size = int(rng.choice([1, rng.integers(1, 9), rng.integers(9, 71)]))
        sizes[name] = size
        if kind == "times":
            density = float(rng.choice([0.02, 0.1, 0.4]))
            times = [np.flatnonzero(rng.random(steps) < density).tolist() for _ in range(size)]
            b.spike_source(name, size, times=times)
            sources.append(name)
        elif kind == "poisson":
            rate = float(rng.choice([20.0, 100.0, 400.0]))
            b.spike_source(name, size, poisson={"rate_hz": rate, "seed": int(rng.integers(2**31))})
            sources.append(name)
        else:
            b.population(name, size, **_neuron(rng, extreme))
            lifs.append(name)
    projections = []
    for post in lifs:
        for k in range(int(rng.integers(1, 4))):
            pre = str(rng.choice(sources if k == 0 else sources + lifs))
            p = float(rng.choice([0.1, 0.4, 1.0]))
            pairs = [
                [i, j] for i in range(sizes[pre]) for j in range(sizes[post]) if rng.random() < p
            ] or [[0, 0]]
            n = len(pairs)
            if extreme:
                weights = rng.choice([-128, 127, int(rng.integers(-128, 128))], size=n)
                wexp = int(rng.choice([7, rng.integers(0, 8)]))
            else:
                weights = rng.integers(int(rng.choice([-128, -20])), 128, size=n)
                wexp = int(rng.integers(0, 8))
            dmax = int(rng.choice([1, 3, 17, 64]))
            name = f"p{len(projections)}"
            projections.append(
                dict(
                    pre=pre,
                    post=post,
                    connect={"kind": "list", "pairs": pairs},
                    weight=weights.tolist(),
                    delay=rng.integers(1, dmax + 1, size=n).tolist(),
                    weight_exp=wexp,
                    name=name,
                )
            )
    for k in rng.choice(len(projections), size=min(len(projections), 2), replace=False):
        pr = projections[int(k)]
        pr["stdp"] = _stdp(rng, sr=seed % 2 == 0)
        lo, hi = pr["stdp"]["w_min"], pr["stdp"]["w_max"]
        pr["weight"] = rng.integers(lo, hi + 1, size=len(pr["weight"])).tolist()
    for pr in projections:
        b.project(**pr)
    lif = lifs[0]
    b.probe(lif, "v")
    b.probe(lif, "u", neurons=[sizes[lif] - 1, 0], every=int(rng.integers(1, 5)))
    plastic = next(pr for pr in projections if "stdp" in pr)
    b.probe(plastic["name"], "weights", every=int(rng.integers(1, 7)))
    if seed % 4 == 1:
        b.probe(lif, "spikes")
        b.probe(sources[0], "spikes", neurons=[0])
    net = b.build()
    ring = None if seed % 5 else net.max_delay + int(rng.integers(0, 5))
    return net, ring


# --------------------------------------------------------------------------------------------
# comparison


def models(net: Network, ring: int | None = None) -> tuple[GoldenModel, GoldenModel]:
    fast, slow = GoldenModel(net, ring, numba=True), GoldenModel(net, ring, numba=False)
    assert (fast.path, slow.path) == ("numba", "numpy")
    return fast, slow


def assert_same_state(a: GoldenModel, b: GoldenModel, where: str) -> None:
    """Every piece of state of the two models is the same."""
    assert a.t == b.t, where
    for name in ("u", "v", "ref"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.int64, (where, name)
        assert np.array_equal(x, y), (where, name)
    # the numba path keeps a compact ring and synapse table (int32 or int64, int16)
    assert a.ring.shape == b.ring.shape, where
    assert np.array_equal(a.ring, b.ring), (where, "ring")
    assert np.array_equal(a.synapse_values(), b.synapse_values()), (where, "synapse values")
    for pa, pb in zip(a.plastic, b.plastic, strict=True):
        name = pa.proj.name
        assert np.array_equal(a.weights(name), b.weights(name)), (where, name)
        for xa, xb in zip(a.traces(name), b.traces(name), strict=True):
            assert np.array_equal(xa, xb), (where, name)
        assert np.array_equal(pa.lfsr, pb.lfsr), (where, name)


def lockstep(net: Network, steps: int, ring: int | None = None, label: str = "") -> dict:
    """Step both paths side by side and compare everything after every step.

    Returns
    -------
    dict
        What the run went through, to check that the networks are not trivial.
    """
    a, b = models(net, ring)
    seen = {"lif spikes": 0, "refractory": 0, "weight changes": 0, "v clipped": 0}
    lif = a.is_lif
    w0 = {pl.proj.name: a.weights(pl.proj.name) for pl in a.plastic}
    for t in range(steps):
        ia, ib = a.step(), b.step()
        where = f"{label} step {t}"
        assert ia.dtype == ib.dtype == np.int64, where
        assert np.array_equal(ia, ib), where
        assert np.all(np.diff(ia) > 0), where
        assert_same_state(a, b, where)
        seen["lif spikes"] += int(lif[ia].sum())
        seen["refractory"] += int((a.ref > 0).sum())
        seen["v clipped"] += int((np.abs(a.v) == (1 << 23) - 1).sum())
    for pl in a.plastic:
        seen["weight changes"] += int((a.weights(pl.proj.name) != w0[pl.proj.name]).sum())
    return seen


def assert_same_result(ra: Any, rb: Any) -> None:
    for name in ("step", "population", "neuron"):
        assert np.array_equal(getattr(ra, name), getattr(rb, name)), name
    assert (ra.steps, ra.populations, ra.backend) == (rb.steps, rb.populations, rb.backend)
    assert ra.probes.keys() == rb.probes.keys()
    for key, pa in ra.probes.items():
        pb = rb.probes[key]
        assert np.array_equal(pa.steps, pb.steps), key
        assert np.array_equal(pa.index, pb.index), key
        assert pa.values.dtype == pb.values.dtype, key
        assert np.array_equal(pa.values, pb.values), key
    assert ra.weights.keys() == rb.weights.keys()
    for key, w in ra.weights.items():
        assert np.array_equal(w, rb.weights[key]), key


# --------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("seed", range(4))
def test_both_updates_are_arith_lif_update(seed: int) -> None:
    """The fused update of each path is :func:`arith.lif_update`, over the whole state space:
    u, v and the dendritic sum at and beyond their bounds, every parameter over its range."""
    rng = np.random.default_rng(seed)
    n = 4000

    def edgy(lo: int, hi: int) -> np.ndarray:
        x = rng.integers(lo, hi + 1, size=n)
        edges = np.clip([lo, lo + 1, -1, 0, 1, hi - 1, hi], lo, hi)
        return np.where(rng.random(n) < 0.3, rng.choice(edges, size=n), x)

    u, v = edgy(P.UV_MIN, P.UV_MAX), edgy(P.V_MIN, P.V_MAX)
    ref = edgy(0, P.REFRACTORY_MAX)
    acc = edgy(-(1 << 22), 1 << 22)
    par = {
        "du": edgy(0, P.DECAY_MAX),
        "dv": edgy(0, P.DECAY_MAX),
        "vth": edgy(0, P.VTH_MAX),
        "bias_mant": edgy(P.BIAS_MANT_MIN, P.BIAS_MANT_MAX),
        "bias_exp": edgy(0, P.BIAS_EXP_MAX),
        "refractory": edgy(0, P.REFRACTORY_MAX),
    }
    subtract = rng.random(n) < 0.5
    want = arith.lif_update(u, v, ref, acc, **par, subtract=subtract)
    b = NetworkBuilder("one")
    b.population("n", n, du=0, dv=0, vth=0)
    for fast in (True, False):
        m = GoldenModel(b.build(), numba=fast)
        m._neuron[:] = [
            (1 << P.DECAY_SHIFT) - (par["du"] + P.DU_OFFSET),
            (1 << P.DECAY_SHIFT) - (par["dv"] + P.DV_OFFSET),
            par["vth"] << P.VTH_SHIFT,
            par["bias_mant"] << par["bias_exp"],
            par["refractory"],
            subtract,
        ]
        m.u[:], m.v[:], m.ref[:] = u, v, ref
        if fast:
            spiked = np.zeros(n, dtype=np.uint8)
            _kernels._update(acc.copy(), m.u, m.v, m.ref, *m._neuron, spiked, _kernels.CONSTS)
        else:
            spiked = m._update(acc.copy())
        assert np.array_equal(m.u, want[0]), fast
        assert np.array_equal(m.v, want[1]), fast
        assert np.array_equal(m.ref, want[2]), fast
        assert np.array_equal(spiked.astype(bool), want[3]), fast
        assert want[3].any() and (ref > 0).any()


RANDOM_STEPS = 160
SEEDS = range(24)


def test_paths_agree_at_every_step_on_random_networks() -> None:
    total: dict[str, int] = {}
    sr = {True: 0, False: 0}
    for seed in SEEDS:
        net, ring = random_network(seed, RANDOM_STEPS)
        seen = lockstep(net, RANDOM_STEPS, ring, f"seed {seed}")
        for k, v in seen.items():
            total[k] = total.get(k, 0) + v
        for pr in net.projections:
            if pr.stdp is not None:
                sr[pr.stdp.stochastic_rounding] += seen["weight changes"]
    # the networks did go through the interesting parts of the arithmetic
    assert all(v > 0 for v in total.values()), total
    assert all(v > 0 for v in sr.values()), sr


@pytest.mark.parametrize("seed", list(SEEDS)[:12])
def test_paths_agree_on_run(seed: int) -> None:
    """``run`` gives the same result on both paths, with probes and in pieces."""
    net, ring = random_network(seed, RANDOM_STEPS)
    a, b = models(net, ring)
    assert_same_result(a.run(RANDOM_STEPS), b.run(RANDOM_STEPS))
    assert_same_state(a, b, "after run")
    # continuing a run, after single steps, with a progress callback
    for m in (a, b):
        m.step()
        m.step()
    calls: list[int] = []
    assert_same_result(a.run(37, progress=calls.append), b.run(37))
    assert sum(calls) == 37
    assert_same_state(a, b, "after the second run")


def test_a_run_in_pieces_is_the_whole_run() -> None:
    net, ring = random_network(7, 300)
    whole = GoldenModel(net, ring, numba=True).run(300)
    m = GoldenModel(net, ring, numba=True)
    parts = [m.run(k) for k in (1, 99, 0, 200)]
    step = np.concatenate([p.step for p in parts])
    neuron = np.concatenate([p.neuron for p in parts])
    assert np.array_equal(step, whole.step)
    assert np.array_equal(neuron, whole.neuron)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_paths_agree_on_the_examples(path: Path) -> None:
    net = load(path)
    lockstep(net, 300, label=path.stem)
    a, b = models(net)
    assert_same_result(a.run(1200), b.run(1200))
    assert_same_state(a, b, f"{path.stem} after run")


def test_paths_agree_on_a_busy_network() -> None:
    """Many spikes per step, long spike lists (the kernel's spike buffer grows)."""
    b = NetworkBuilder("busy")
    b.spike_source("inp", 300, poisson={"rate_hz": 300.0, "seed": 5})
    b.population("n", 400, du=300, dv=100, vth=40, bias_mant=30, bias_exp=3, refractory=1)
    b.project(
        "inp",
        "n",
        connect={"kind": "fixed_probability", "p": 0.2, "seed": 1},
        weight={"kind": "uniform", "low": -40, "high": 100, "seed": 2},
        delay={"kind": "uniform", "low": 1, "high": 9, "seed": 3},
    )
    stdp = dict(a_plus=30, a_minus=35, d_pre=200, d_post=250, bump_pre=9000, bump_post=9000)
    b.project(
        "n",
        "n",
        connect={"kind": "fixed_probability", "p": 0.05, "seed": 4},
        weight={"kind": "uniform", "low": -60, "high": 40, "seed": 5},
        delay=4,
        stdp={**stdp, "shift": 9, "stochastic_rounding": True, "seed": 99},
    )
    net = b.build()
    lockstep(net, 60, label="busy")
    a, b2 = models(net)
    ra, rb = a.run(700), b2.run(700)
    assert ra.n_spikes > 100_000
    assert_same_result(ra, rb)
    assert_same_state(a, b2, "busy after run")


@pytest.mark.parametrize("size", [3, 200, 5000])
def test_block_draws_are_the_per_step_draws(size: int) -> None:
    """Source spikes are drawn in blocks of steps (fewer steps for large populations); they
    are the spikes of contract 1, one ``random(size)`` call per step, across block ends."""
    rate, seed, steps = 80.0, 1234, 2300
    b = NetworkBuilder("poisson")
    b.spike_source("inp", size, poisson={"rate_hz": rate, "seed": seed})
    b.population("n", 2, du=0, dv=0, vth=1000)
    b.project("inp", "n", weight=1, delay=1)
    net = b.build()
    rng = np.random.default_rng(seed)
    want = [np.flatnonzero(rng.random(size) < rate / 1000.0) for _ in range(steps)]
    for fast in (True, False):
        m = GoldenModel(net, numba=fast)
        assert m._src.block < steps
        got = [m.step() for _ in range(steps // 2)]
        res = m.run(steps - steps // 2)
        for t in range(steps // 2, steps):
            got.append(res.neuron[(res.step == t) & (res.population == 0)])
        for t in range(steps):
            assert np.array_equal(got[t][got[t] < size], want[t]), (fast, t)


def test_choice_of_path(monkeypatch: pytest.MonkeyPatch) -> None:
    net = load(EXAMPLES[0])
    monkeypatch.delenv(golden.NO_NUMBA_ENV, raising=False)
    assert golden.numba_available()
    assert GoldenModel(net).path == "numba"
    assert GoldenModel(net, numba=False).path == "numpy"
    monkeypatch.setenv(golden.NO_NUMBA_ENV, "0")
    assert GoldenModel(net).path == "numba"
    monkeypatch.setenv(golden.NO_NUMBA_ENV, "1")
    assert GoldenModel(net).path == "numpy"
    assert GoldenModel(net, numba=True).path == "numba"
    # without numba: the default falls back to numpy, numba=True says what to install
    monkeypatch.delenv(golden.NO_NUMBA_ENV)
    monkeypatch.setitem(sys.modules, "spikefab.sim._kernels", None)
    assert not golden.numba_available()
    assert GoldenModel(net).path == "numpy"
    with pytest.raises(ImportError, match=r"spikefab\[fast\]"):
        GoldenModel(net, numba=True)
