"""The golden model's parallel path against its serial and numpy paths, bit for bit.

``GoldenModel(net, threads=K)`` splits the neurons into ``K`` blocks that numba's threads
run (``docs/golden.md``). Whatever ``K``, the spikes, probes, weights, traces, LFSRs, neuron
state and dendrite ring must be those of the numpy path, which shares no code with the
kernels. ``parallel_min_work = 0`` makes every step start the threads, as a large network's
steps do; the default runs a small network's blocks on the calling thread, which must not
change a result either.

numba is a test dependency (the ``dev`` extra pulls in ``spikefab[fast]``): this module fails
rather than skips without it (``test_fast_path``, whose helpers it uses, imports numba).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from spikefab.hdl import params as P
from spikefab.mapping.loader import load
from spikefab.mapping.network import Network, NetworkBuilder
from spikefab.sim import golden
from spikefab.sim.golden import GoldenModel
from test_fast_path import EXAMPLES, assert_same_result, assert_same_state, random_network

STEPS = 150


class _FineBlocks(GoldenModel):
    """Blocks cut anywhere, not at multiples of 64 neurons: the random networks have a few
    dozen to a few hundred neurons, and every block should get some."""

    block_align = 1


def threaded(
    net: Network, threads: int, ring: int | None = None, eager: bool = True, fine: bool = False
) -> GoldenModel:
    """A model on the numba path with ``threads`` blocks; ``eager``: every step starts the
    threads; ``fine``: blocks of about equal work wherever their edges fall."""
    m = (_FineBlocks if fine else GoldenModel)(net, ring, numba=True, threads=threads)
    assert (m.path, m.threads) == ("numba", threads)
    if eager:
        m.parallel_min_work = 0
    return m


def assert_same_model(a: GoldenModel, b: GoldenModel, where: str) -> None:
    assert_same_state(a, b, where)
    assert a.ring.dtype == b.ring.dtype or b.path == "numpy", where


@pytest.mark.parametrize("seed", range(10))
def test_thread_counts_agree_with_numpy_on_random_networks(seed: int) -> None:
    """1, 2 and 3 threads (and 3 threads on small steps' fallback) give the numpy path's
    spikes, probes, plastic weights and final state, with delays up to 64 and plastic
    projections with and without stochastic rounding."""
    net, ring = random_network(seed, STEPS)
    want_model = GoldenModel(net, ring, numba=False)
    want = want_model.run(STEPS)
    models: dict[str, GoldenModel] = {
        "serial": threaded(net, 1, ring),
        "2 threads": threaded(net, 2, ring, fine=True),
        "3 threads": threaded(net, 3, ring, fine=True),
        "3 threads, aligned blocks": threaded(net, 3, ring),
        "3 threads, small steps inline": threaded(net, 3, ring, eager=False, fine=True),
    }
    for label, m in models.items():
        got = m.run(STEPS)
        assert_same_result(got, want)
        assert_same_model(m, want_model, f"seed {seed}, {label}")
        assert got.weights and got.probes, label
    assert want.n_spikes > 0
    # the neurons are split: blocks of about equal work (incoming synapses and updates)
    bounds = models["3 threads"]._bounds
    assert np.count_nonzero(np.diff(bounds)) >= 2, bounds


def test_step_by_step_with_threads() -> None:
    """Single steps (a delivery closes every call) agree with the numpy path at every step."""
    changed = 0
    for seed in (6, 8):
        net, ring = random_network(seed, 80)
        a, b = threaded(net, 3, ring, fine=True), GoldenModel(net, ring, numba=False)
        w0 = {pl.proj.name: b.weights(pl.proj.name) for pl in b.plastic}
        for t in range(80):
            ia, ib = a.step(), b.step()
            assert np.array_equal(ia, ib), (seed, t)
            assert_same_model(a, b, f"seed {seed} step {t}")
        changed += sum(int((b.weights(k) != w).sum()) for k, w in w0.items())
    assert changed > 0


def test_runs_in_pieces_across_thread_counts() -> None:
    """A run split into pieces gives the whole run's spikes, on every thread count."""
    net, ring = random_network(7, 300)
    whole = GoldenModel(net, ring, numba=False).run(300)
    for k in (1, 2, 3):
        m = threaded(net, k, ring, fine=True)
        parts = [m.run(n) for n in (1, 99, 0, 200)]
        assert np.array_equal(np.concatenate([p.step for p in parts]), whole.step), k
        assert np.array_equal(np.concatenate([p.neuron for p in parts]), whole.neuron), k


def _busy() -> Network:
    """A few hundred neurons, many spikes per step, mixed delays, a plastic projection."""
    b = NetworkBuilder("busy")
    b.spike_source("inp", 300, poisson={"rate_hz": 300.0, "seed": 5})
    b.population("n", 450, du=300, dv=100, vth=40, bias_mant=30, bias_exp=3, refractory=1)
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
    b.probe("n", "v", neurons=[0, 449])
    b.probe("n->n", "weights", every=50)
    return b.build()


def test_thread_counts_agree_on_a_busy_network() -> None:
    net = _busy()
    want_model = GoldenModel(net, numba=False)
    want = want_model.run(400)
    assert want.n_spikes > 50_000
    for k in (1, 2, 3):
        m = threaded(net, k)
        assert m._bounds.size == k + 1 and np.all(np.diff(m._bounds) >= 0)
        assert_same_result(m.run(400), want)
        assert_same_model(m, want_model, f"busy, {k} threads")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_thread_counts_agree_on_the_examples(path: Any) -> None:
    net = load(path)
    want = GoldenModel(net, numba=False).run(400)
    for k in (2, 3):
        assert_same_result(threaded(net, k).run(400), want)


def test_wide_tables_when_compact_ones_would_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A neuron whose incoming synapses could sum beyond int32 gets an int64 ring; with the
    limit of the ring offsets lowered, the offsets are int64 too; the results stay the
    numpy path's."""
    b = NetworkBuilder("wide")
    # 1100 sources at w = 127 << 7 onto one neuron could add up to 1100 * 16256 > 2**24
    b.spike_source("inp", 1100, poisson={"rate_hz": 200.0, "seed": 3})
    b.population("n", 3, du=4000, dv=3000, vth=100_000, refractory=2)
    b.project("inp", "n", connect={"kind": "all_to_all"}, weight=127, weight_exp=7, delay=3)
    net = b.build()
    monkeypatch.setattr(golden, "RING_INT32_LIMIT", 1 << 24)
    monkeypatch.setattr(golden, "OFFSET_INT32_LIMIT", 8)
    want_model = GoldenModel(net, numba=False)
    want = want_model.run(60)
    for k in (1, 2):
        m = threaded(net, k)
        assert m.ring.dtype == m._syn_off.dtype == np.int64
        assert_same_result(m.run(60), want)
        assert_same_state(m, want_model, f"wide, {k} threads")
    monkeypatch.undo()
    m = threaded(net, 1)
    assert m.ring.dtype == m._syn_off.dtype == np.int32


def test_memory_per_synapse() -> None:
    """The kernel reads 6 bytes per synapse (int32 ring offset, int16 value)."""
    net = load(EXAMPLES[0])
    for k in (1, 2):
        m = GoldenModel(net, numba=True, threads=k)
        tb = m.table_bytes()
        assert tb["synapses"] == 6 * net.n_synapses
        assert m.syn_val.dtype == np.int16 and m._syn_off.dtype == np.int32
        assert tb["pointers"] == 8 * k * (m.n + 1)
    assert max(-P.WEIGHT_MIN, P.WEIGHT_MAX) << P.WEIGHT_EXP_MAX < 1 << 15


def test_threads_argument() -> None:
    net = load(EXAMPLES[0])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            GoldenModel(net, threads=bad)  # type: ignore[arg-type]
    assert GoldenModel(net, numba=False, threads=4).threads == 1
    assert GoldenModel(net, numba=True).threads == 1
