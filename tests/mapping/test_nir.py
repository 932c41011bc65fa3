"""NIR graphs in and out: every supported node, the float reference against an independent
simulation of the graph's equations, the round trip, and every refusal."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from spikefab.hdl import params as P
from spikefab.mapping.loader import load
from spikefab.mapping.network import Network, NetworkBuilder
from spikefab.mapping.nir import NIRError, export_nir, import_nir, load_nir, write_nir
from spikefab.sim.golden import GoldenModel
from spikefab.sim.reference import FloatReference

nir = pytest.importorskip("nir", reason="the NIR tests need the `nir` package (spikefab[nir])")

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
DT_MS = 1.0
DT = DT_MS / 1000.0


def full(n: int | tuple[int, ...], x: float | np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=float), np.atleast_1d(n)).copy()


def graph(nodes: dict, edges: list, check: bool = True) -> object:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=check)


def lif(
    n: int | tuple[int, ...], tau: float = 0.02, r: float = 1.0, th: float = 1.0, **kw: object
) -> object:
    args = dict(tau=full(n, tau), r=full(n, r), v_leak=full(n, 0), v_threshold=full(n, th))
    args.update(kw)
    return nir.LIF(**args)


def cuba(n: int, tau_syn: float = 0.005, tau_mem: float = 0.02, **kw: object) -> object:
    args = dict(
        tau_syn=full(n, tau_syn),
        tau_mem=full(n, tau_mem),
        r=full(n, tau_mem / DT),
        v_leak=full(n, 0),
        v_threshold=full(n, 1.0),
        w_in=full(n, tau_syn / DT),
    )
    args.update(kw)
    return nir.CubaLIF(**args)


def chain(*nodes: object, check: bool = True) -> object:
    names = [f"n{i}" for i in range(len(nodes))]
    edges = list(itertools.pairwise(names))
    return graph(dict(zip(names, nodes, strict=True)), edges, check)


def dense(net: Network, proj: str) -> np.ndarray:
    """The real weights of a projection as a (post, pre) matrix."""
    pr = net.projection(proj)
    w = np.zeros((net.populations[pr.post].size, net.populations[pr.pre].size))
    np.add.at(w, (pr.post_idx, pr.pre_idx), pr.weight_real)
    return w


# --------------------------------------------------------------------------------------------
# Every supported node


def test_lif_discretized_by_forward_euler() -> None:
    w = np.arange(12, dtype=float).reshape(3, 4) / 10 - 0.5
    g = graph(
        {
            "inp": nir.Input(np.array([4])),
            "fc": nir.Affine(weight=w, bias=full(3, 0.2)),
            "lif": lif(3, tau=0.01, r=2.0, th=1.5, v_leak=full(3, 0.3)),
            "out": nir.Output(np.array([3])),
        },
        [("inp", "fc"), ("fc", "lif"), ("lif", "out")],
    )
    imp = import_nir(g, DT_MS)
    net = imp.network
    pop = net.populations["lif"]
    assert net.populations["inp"].is_source and net.populations["inp"].size == 4
    assert pop.real.alpha == 0.0  # no synaptic current: u is the step's input
    assert pop.real.beta == pytest.approx(1 - DT / 0.01)  # forward Euler
    assert pop.neuron.du == P.DECAY_MAX
    assert pop.neuron.dv == round(4096 * DT / 0.01)
    assert pop.real.theta == 1.5
    # dt/tau (v_leak + r b) reaches v every step: a uniform Affine bias is the neuron's bias
    assert pop.real.bias == pytest.approx(DT / 0.01 * (0.3 + 2.0 * 0.2))
    np.testing.assert_allclose(dense(net, "fc"), DT / 0.01 * 2.0 * w)
    assert "lif (LIF, 3 neurons)" in "\n".join(imp.report())
    assert any("lif.tau_mem_ms" in line for line in imp.report())


def test_cubalif_maps_current_and_voltage() -> None:
    w = np.array([[1.0, -0.5], [0.25, 2.0]])
    g = chain(nir.Input(np.array([2])), nir.Linear(weight=w), cuba(2, w_in=full(2, 3.0)))
    net = import_nir(g, DT_MS).network
    pop = net.populations["n2"]
    assert pop.real.alpha == pytest.approx(1 - DT / 0.005)
    assert pop.real.beta == pytest.approx(1 - DT / 0.02)
    assert pop.neuron.du == round(4096 * DT / 0.005) - 1
    # (dt/tau_mem) r (dt/tau_syn) w_in W
    gain = (DT / 0.02) * (0.02 / DT) * (DT / 0.005) * 3.0
    np.testing.assert_allclose(dense(net, "n1"), gain * w)


def test_if_has_no_leak() -> None:
    g = chain(
        nir.Input(np.array([2])),
        nir.Linear(weight=np.eye(2)),
        nir.IF(r=full(2, 500.0), v_threshold=full(2, 2.0)),
    )
    net = import_nir(g, DT_MS).network
    pop = net.populations["n2"]
    assert pop.physical.tau_mem_ms is None and pop.neuron.dv == 0
    np.testing.assert_allclose(dense(net, "n1"), DT * 500.0 * np.eye(2))


@pytest.mark.parametrize("kind", ["LI", "CubaLI"])
def test_leaky_integrators_are_readouts_that_never_spike(kind: str) -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(0, 3, (3, 8))
    if kind == "LI":
        ro = nir.LI(tau=full(3, 0.01), r=full(3, 10.0), v_leak=full(3, 0.0))
    else:
        ro = nir.CubaLI(
            tau_syn=full(3, 0.004),
            tau_mem=full(3, 0.01),
            r=full(3, 10.0),
            v_leak=full(3, 0.0),
            w_in=full(3, 4.0),
        )
    g = chain(nir.Input(np.array([8])), nir.Linear(weight=w), ro, nir.Output(np.array([3])))
    net = import_nir(g, DT_MS).network
    assert any(pb.target == "n2" and pb.variable == "v" for pb in net.probes)
    # every input spiking every step drives v as high as it can go: still no spike
    net.populations["n0"].source = type(net.populations["n0"].source)("poisson", rate_hz=1000.0)
    res = GoldenModel(net).run(300)
    assert res.counts()["n2"].sum() == 0
    ref = FloatReference(net).run(300)
    assert ref.counts()["n2"].sum() == 0
    assert np.abs(ref.probes["n2/v"].values).max() > 0


def test_scale_and_linear_compose() -> None:
    w = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 0.5]])
    g = chain(
        nir.Input(np.array([3])),
        nir.Scale(scale=np.array([1.0, 0.5, 2.0])),
        nir.Linear(weight=w),
        nir.Scale(scale=np.array([3.0, -1.0])),
        lif(2, tau=0.01, r=10.0),
    )
    net = import_nir(g, DT_MS).network
    want = np.diag([3.0, -1.0]) @ w @ np.diag([1.0, 0.5, 2.0])
    np.testing.assert_allclose(dense(net, "n1"), want * (DT / 0.01) * 10.0)
    # a zero of the product is no synapse
    assert net.projection("n1").n_synapses == np.count_nonzero(want)


def test_delay_adds_to_the_one_step_synapse() -> None:
    g = chain(
        nir.Input(np.array([3])),
        nir.Linear(weight=np.eye(3)),
        nir.Delay(delay=np.array([0.0, 0.002, 0.005])),
        lif(3, tau=0.01, r=10.0),
    )
    pr = import_nir(g, DT_MS).network.projection("n1")
    np.testing.assert_array_equal(pr.delay[np.argsort(pr.post_idx)], [1, 3, 6])


def _conv_direct(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """A 2-d convolution written out with loops (cross-correlation, as PyTorch)."""
    c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    xp = np.zeros((c_in, h + 2 * pad, wd + 2 * pad))
    xp[:, pad : pad + h, pad : pad + wd] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((c_out, oh, ow))
    per = c_out // groups
    for co in range(c_out):
        g0 = (co // per) * cg
        for i in range(oh):
            for j in range(ow):
                patch = xp[g0 : g0 + cg, i * stride : i * stride + kh, j * stride : j * stride + kw]
                out[co, i, j] = np.sum(patch * w[co])
    return out


@pytest.mark.parametrize(("stride", "pad", "groups"), [(1, 0, 1), (2, 1, 1), (1, 1, 2)])
def test_conv2d_unrolled_into_synapses(stride: int, pad: int, groups: int) -> None:
    rng = np.random.default_rng(stride * 10 + pad + groups)
    c_in, c_out = 2, 4
    w = rng.normal(0, 1, (c_out, c_in // groups, 3, 3))
    conv = nir.Conv2d(
        input_shape=(6, 5),
        weight=w,
        stride=stride,
        padding=pad,
        dilation=1,
        groups=groups,
        bias=np.zeros(c_out),
    )
    out_shape = tuple(int(x) for x in conv.output_type["output"])
    # NIR's own type check takes C_in / groups for the input's channels: skip it
    g = chain(
        nir.Input(np.array([c_in, 6, 5])),
        conv,
        lif(out_shape, tau=0.01, r=10.0),
        check=groups == 1,
    )
    imp = import_nir(g, DT_MS)
    m = dense(imp.network, "n1") / ((DT / 0.01) * 10.0)
    x = rng.normal(0, 1, (c_in, 6, 5))
    np.testing.assert_allclose(
        m @ x.reshape(-1), _conv_direct(x, w, stride, pad, groups).reshape(-1)
    )
    assert any(f"n1 (Conv2d 2x6x5 -> {'x'.join(map(str, out_shape))})" in s for s in imp.notes)


def test_conv1d_flatten_and_pooling() -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(0, 1, (3, 2, 3))
    conv = nir.Conv1d(
        input_shape=10, weight=w, stride=1, padding=1, dilation=2, groups=1, bias=np.zeros(3)
    )
    g = chain(
        nir.Input(np.array([2, 10])),
        conv,
        nir.Flatten(input_type={"input": np.array([3, 8])}, start_dim=0),
        lif(24, tau=0.01, r=10.0),
    )
    m = dense(import_nir(g, DT_MS).network, "n1") / 10.0 / (DT / 0.01)
    x = rng.normal(0, 1, (2, 10))
    want = np.zeros((3, 8))
    xp = np.pad(x, ((0, 0), (1, 1)))
    for co in range(3):
        for i in range(8):
            want[co, i] = sum(w[co, :, k] @ xp[:, i + 2 * k] for k in range(3))
    np.testing.assert_allclose(m @ x.reshape(-1), want.reshape(-1))
    # sum and average pooling, per channel
    for pool, div in ((nir.SumPool2d, 1.0), (nir.AvgPool2d, 4.0)):
        g = chain(
            nir.Input(np.array([2, 4, 4])),
            pool(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            lif((2, 2, 2), tau=0.01, r=10.0),
        )
        m = dense(import_nir(g, DT_MS).network, "n1") / 10.0 / (DT / 0.01)
        x = rng.normal(0, 1, (2, 4, 4))
        want = x.reshape(2, 2, 2, 2, 2).sum(axis=(2, 4)) / div
        np.testing.assert_allclose(m @ x.reshape(-1), want.reshape(-1))


def test_recurrent_subgraph_is_inlined() -> None:
    n = 4
    rec = graph(
        {
            "input": nir.Input(np.array([n])),
            "lif": cuba(n),
            "w_rec": nir.Linear(weight=0.1 * np.ones((n, n))),
            "output": nir.Output(np.array([n])),
        },
        [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    g = graph(
        {
            "inp": nir.Input(np.array([3])),
            "fc": nir.Linear(weight=np.ones((n, 3))),
            "rsyn": rec,
            "out": nir.Output(np.array([n])),
        },
        [("inp", "fc"), ("fc", "rsyn"), ("rsyn", "out")],
    )
    net = import_nir(g, DT_MS).network
    assert list(net.populations) == ["inp", "rsyn.lif"]
    assert {p.name for p in net.projections} == {"fc", "rsyn.w_rec"}


def test_heterogeneous_biases_come_from_an_always_on_source() -> None:
    g = chain(
        nir.Input(np.array([2])),
        nir.Affine(weight=np.eye(3, 2), bias=np.array([0.1, 0.2, 0.0])),
        lif(3, tau=0.01, r=1.0),
    )
    imp = import_nir(g, DT_MS)
    net = imp.network
    src = net.populations["n2.bias"]
    assert src.is_source and src.source.kind == "poisson"
    assert src.source.rate_hz * DT_MS / 1000 == 1.0  # a spike every step
    assert any("n2.bias" in s and "from step 1" in s for s in imp.notes)
    spikes = GoldenModel(net).run(20)
    assert spikes.counts()["n2.bias"].sum() == 20


def test_heterogeneous_thresholds_fold_into_the_weights() -> None:
    g = chain(
        nir.Input(np.array([2])),
        nir.Linear(weight=np.ones((2, 2))),
        lif(2, tau=0.01, r=10.0, v_threshold=np.array([1.0, 4.0])),
    )
    net = import_nir(g, DT_MS).network
    assert net.populations["n2"].real.theta == 1.0
    np.testing.assert_allclose(dense(net, "n1"), np.array([[1.0, 1.0], [0.25, 0.25]]))


# --------------------------------------------------------------------------------------------
# The float reference against an independent simulation of the graph's equations


def simulate_nir(g: object, dt: float, steps: int, drive: dict, substeps: int = 1) -> dict:
    """Step a NIR graph of dense linear nodes and neurons by forward Euler.

    Spikes of step ``t`` reach the next neuron at ``t + 1`` (the convention of docs/nir.md);
    a neuron's input is held for the whole step, which ``substeps`` integrates more finely.
    Returns per neuron node the spikes (steps, n) and v (steps, n).
    """
    nodes, edges = g.nodes, g.edges
    pred: dict = {k: [] for k in nodes}
    for a, b in edges:
        pred[b].append(a)
    kinds = {k: type(v).__name__ for k, v in nodes.items()}
    neurons = [k for k, kd in kinds.items() if kd in ("LIF", "CubaLIF", "IF", "LI")]
    size = {k: int(np.prod(np.asarray(nodes[k].output_type["output"]))) for k in nodes}
    state = {k: {"i": np.zeros(size[k]), "v": np.zeros(size[k])} for k in neurons}
    last = {k: np.zeros(size[k]) for k in (*neurons, *drive)}
    hist: dict = {k: [] for k, kd in kinds.items() if kd == "Delay"}
    out = {k: {"s": np.zeros((steps, size[k])), "v": np.zeros((steps, size[k]))} for k in neurons}

    def value(k: str, t: int) -> np.ndarray:
        kd, nd = kinds[k], nodes[k]
        if k in last:
            return last[k]
        x = sum(value(p, t) for p in pred[k])
        if kd == "Affine":
            return nd.weight @ x + nd.bias
        if kd == "Linear":
            return nd.weight @ x
        if kd == "Scale":
            return nd.scale * x
        if kd == "Delay":
            d = np.rint(nd.delay / dt).astype(int)
            h = hist[k]
            return np.array([h[-1 - di][j] if di < len(h) else 0.0 for j, di in enumerate(d)])
        raise AssertionError(kd)

    for t in range(steps):
        for k in hist:
            hist[k].append(sum(value(p, t) for p in pred[k]))
        inputs = {k: sum(value(p, t) for p in pred[k]) for k in neurons}
        for k in neurons:
            nd, st, x = nodes[k], state[k], inputs[k]
            h = dt / substeps
            spiked = np.zeros(size[k], dtype=bool)
            for _ in range(substeps):
                kd = kinds[k]
                if kd == "CubaLIF":
                    st["i"] = st["i"] + h / nd.tau_syn * (-st["i"] + nd.w_in * x)
                    dv = h / nd.tau_mem * (nd.v_leak - st["v"] + nd.r * st["i"])
                elif kd == "IF":
                    dv = h * nd.r * x
                else:
                    dv = h / nd.tau * (nd.v_leak - st["v"] + nd.r * x)
                st["v"] = st["v"] + dv
                if kd != "LI":
                    fire = st["v"] > nd.v_threshold
                    st["v"] = np.where(fire, nd.v_reset, st["v"])
                    spiked |= fire
            out[k]["s"][t], out[k]["v"][t] = spiked, st["v"]
        for k in neurons:
            last[k] = out[k]["s"][t]
        for k, spikes in drive.items():
            last[k] = spikes[t].astype(float)
    return out


def _mixed_graph(rng: np.random.Generator) -> object:
    return graph(
        {
            "inp": nir.Input(np.array([12])),
            "fc1": nir.Linear(weight=rng.normal(0.3, 0.6, (10, 12))),
            "hid": cuba(10, tau_syn=0.004, tau_mem=0.015, v_leak=full(10, 0.1)),
            "rec": nir.Linear(weight=rng.normal(0, 0.2, (10, 10))),
            "fc2": nir.Linear(weight=rng.normal(2.0, 1.0, (6, 10))),
            "delay": nir.Delay(delay=np.array([0.0, 0.001, 0.002, 0.0, 0.003, 0.001])),
            "lif": lif(6, tau=0.01, r=1.0, th=0.8),
            "if": nir.IF(r=full(4, 300.0), v_threshold=full(4, 1.0)),
            "fc3": nir.Affine(weight=rng.normal(0.5, 0.5, (4, 6)), bias=full(4, 0.4)),
            "fc4": nir.Linear(weight=rng.normal(0, 1, (3, 6))),
            "ro": nir.LI(tau=full(3, 0.02), r=full(3, 5.0), v_leak=full(3, 0.0)),
            "out": nir.Output(np.array([3])),
        },
        [
            ("inp", "fc1"),
            ("fc1", "hid"),
            ("hid", "rec"),
            ("rec", "hid"),
            ("hid", "fc2"),
            ("fc2", "delay"),
            ("delay", "lif"),
            ("lif", "fc3"),
            ("fc3", "if"),
            ("lif", "fc4"),
            ("fc4", "ro"),
            ("ro", "out"),
        ],
    )


def _drive(net: Network, name: str, spikes: np.ndarray) -> None:
    step, neuron = np.nonzero(spikes)
    src = type(net.populations[name].source)
    net.populations[name].source = src("explicit", steps=step, neurons=neuron)


def test_float_reference_equals_the_graphs_equations() -> None:
    rng = np.random.default_rng(11)
    g = _mixed_graph(rng)
    steps = 200
    spikes = rng.random((steps, 12)) < 0.15
    net = import_nir(g, DT_MS).network
    _drive(net, "inp", spikes)
    for name in ("hid", "lif", "if"):
        net.probes.append(type(net.probes[0])(name, "v"))
    ref = FloatReference(net).run(steps)
    sim = simulate_nir(g, DT, steps, {"inp": spikes})
    for name in ("hid", "lif", "if", "ro"):
        got = np.zeros((steps, net.populations[name].size), dtype=bool)
        sel = ref.population == net.populations[name].index
        got[ref.step[sel], ref.neuron[sel]] = True
        np.testing.assert_array_equal(got, sim[name]["s"], err_msg=name)
        np.testing.assert_allclose(
            ref.probes[f"{name}/v"].values, sim[name]["v"], rtol=1e-9, atol=1e-9, err_msg=name
        )
    assert sim["hid"]["s"].sum() > 50 and sim["lif"]["s"].sum() > 20 and sim["if"]["s"].sum() > 5


def test_float_reference_within_the_discretization_error_of_continuous_time() -> None:
    """A leaky readout stepped at dt against the same equations integrated 50 times finer."""
    rng = np.random.default_rng(5)
    tau = 0.02
    g = chain(
        nir.Input(np.array([6])),
        nir.Linear(weight=rng.normal(0.5, 1, (2, 6))),
        nir.LI(tau=full(2, tau), r=full(2, 1.0), v_leak=full(2, 0.0)),
        nir.Output(np.array([2])),
    )
    steps = 300
    spikes = rng.random((steps, 6)) < 0.2
    net = import_nir(g, DT_MS).network
    _drive(net, "n0", spikes)
    v = FloatReference(net).run(steps).probes["n2/v"].values
    fine = simulate_nir(g, DT, steps, {"n0": spikes}, substeps=50)["n2"]["v"]
    err = np.abs(v - fine).max() / np.abs(fine).max()
    assert err < DT / tau  # first order in dt / tau
    assert err > 0  # and really a different integration


# --------------------------------------------------------------------------------------------
# Round trip


def same_network(a: Network, b: Network) -> None:
    assert a.name == b.name and a.dt_ms == b.dt_ms
    assert list(a.populations) == list(b.populations)
    for name, p in a.populations.items():
        q = b.populations[name]
        assert (p.size, p.neuron, p.is_source) == (q.size, q.neuron, q.is_source), name
        assert (p.v0 is None) == (q.v0 is None), name
        if p.v0 is not None:
            np.testing.assert_array_equal(p.v0, q.v0, err_msg=f"{name}: initial_v")
        if p.is_source:
            assert p.source.kind == q.source.kind
            if p.source.kind == "poisson":
                assert (p.source.rate_hz, p.source.seed) == (q.source.rate_hz, q.source.seed)
            else:
                np.testing.assert_array_equal(p.source.steps, q.source.steps)
                np.testing.assert_array_equal(p.source.neurons, q.source.neurons)
    assert [pr.name for pr in a.projections] == [pr.name for pr in b.projections]
    for pr, qr in zip(a.projections, b.projections, strict=True):
        assert (pr.pre, pr.post, pr.weight_exp, pr.stdp) == (
            qr.pre,
            qr.post,
            qr.weight_exp,
            qr.stdp,
        )
        for key in ("pre_idx", "post_idx", "weight", "delay"):
            np.testing.assert_array_equal(getattr(pr, key), getattr(qr, key), err_msg=key)
    assert [(p.key, p.every) for p in a.probes] == [(p.key, p.every) for p in b.probes]


def same_spikes(a: Network, b: Network, steps: int = 300) -> None:
    ra, rb = GoldenModel(a).run(steps), GoldenModel(b).run(steps)
    for key in ("step", "population", "neuron"):
        np.testing.assert_array_equal(getattr(ra, key), getattr(rb, key))
    for key, tr in ra.probes.items():
        np.testing.assert_array_equal(tr.values, rb.probes[key].values)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_round_trip_of_every_example(path: Path, tmp_path: Path) -> None:
    net = load(path)
    write_nir(net, tmp_path / "net.nir")
    back = load_nir(tmp_path / "net.nir")
    same_network(net, back)
    same_spikes(net, back)


def _irregular_network() -> Network:
    b = NetworkBuilder("irregular", dt_ms=0.5)
    b.spike_source("inp", 4, poisson={"rate_hz": 100, "seed": 3})
    b.spike_source("cue", 2, times=[[1, 7], [3]])
    b.population("phys", 5, tau_syn_ms=3, tau_mem_ms=12, v_threshold=0.7, bias=0.01)
    b.population("fix", 3, du=1000, dv=300, vth=500, bias_mant=5, bias_exp=2, refractory=3)
    b.population("sub", 2, du=4095, dv=0, vth=80, reset="subtract")
    b.project(
        "inp",
        "phys",
        connect={"kind": "fixed_probability", "p": 0.6, "seed": 1},
        weight={"kind": "normal", "mean": 0.2, "std": 0.1, "seed": 2},
        delay={"kind": "uniform", "low": 1, "high": 5, "seed": 4},
    )
    # a list in no particular order, with a repeated pair and a zero weight
    b.project(
        "phys",
        "fix",
        connect={"kind": "list", "pairs": [[4, 0], [1, 2], [1, 2], [0, 1], [3, 1]]},
        weight=[50, -20, 7, 0, 127],
        delay=[2, 1, 1, 3, 1],
        weight_exp=2,
    )
    b.project("cue", "sub", connect="one_to_one", weight=100, delay=1, weight_exp=1)
    b.project(
        "fix",
        "sub",
        connect="all_to_all",
        weight=30,
        stdp=dict(a_plus=10, a_minus=8, tau_pre_ms=10, d_post=300, bump_pre=900, bump_post=800),
    )
    b.probe("phys", "v", neurons=[0, 2])
    b.probe("fix", "spikes", every=1)
    b.probe("fix->sub", "weights", every=5)
    return b.build()


def test_round_trip_keeps_what_nir_has_no_field_for(tmp_path: Path) -> None:
    net = _irregular_network()
    write_nir(net, tmp_path / "x.nir")
    back = load_nir(tmp_path / "x.nir")
    same_network(net, back)
    same_spikes(net, back)
    # and the in-memory graph, without a file
    same_network(net, import_nir(export_nir(net)).network)


def test_without_spikefab_metadata_the_dynamics_survive() -> None:
    """Another tool sees plain NIR: the float reference runs the same network."""
    net = load(EXAMPLES[0].parent / "synfire.yaml")
    g = export_nir(net)
    for node in g.nodes.values():
        node.metadata = {}
    g.metadata = {}
    back = import_nir(g, net.dt_ms).network
    src = net.populations["stimulus"].source
    back.populations["stimulus"].source = src
    # refractory periods are spikefab's own; the float model without them still carries the
    # volley down the chain
    a, b = FloatReference(net).run(120), FloatReference(back).run(120)
    assert a.n_spikes > 0 and b.n_spikes >= a.n_spikes
    for name in net.populations:
        first_a = a.step[a.population == net.populations[name].index].min()
        first_b = b.step[b.population == back.populations[name].index].min()
        assert first_a == first_b, name


def test_export_refuses_what_nir_cannot_hold() -> None:
    b = NetworkBuilder("bad")
    b.population("p", 2, du=100, dv=0, vth=10)
    b.population("q", 2, du=4095, dv=0, vth=10, bias_mant=3)
    with pytest.raises(NIRError) as e:
        export_nir(b.build())
    msg = str(e.value)
    assert "p: a synaptic current without membrane leak has no NIR node" in msg
    assert "q: a bias (3) on a neuron without leak has no NIR node" in msg


# --------------------------------------------------------------------------------------------
# Refusals


def _refused(g: object, dt_ms: float | None = DT_MS) -> str:
    with pytest.raises(NIRError) as e:
        import_nir(g, dt_ms)
    return str(e.value)


def test_unsupported_node_is_named() -> None:
    g = chain(nir.Input(np.array([2])), nir.Threshold(threshold=full(2, 1.0)))
    msg = _refused(g)
    assert "n1: node type Threshold is not supported by the hardware; supported: Input" in msg
    g = chain(nir.Input(np.array([2])), nir.Linear(weight=np.eye(2)), nir.I(r=full(2, 1.0)))
    assert "n2: node type I is not supported" in _refused(g)


def test_v_reset_is_refused() -> None:
    g = chain(nir.Input(np.array([2])), lif(2, v_reset=np.array([0.0, 0.5])))
    msg = _refused(g)
    assert "n1.v_reset: 0.5 (neuron 1) is not supported: the hardware resets v to 0" in msg


def test_heterogeneous_time_constants_are_refused() -> None:
    g = chain(nir.Input(np.array([2])), lif(2, tau=np.array([0.01, 0.02])))
    msg = _refused(g)
    assert "n1.tau: per-neuron values differ (0.01 .. 0.02 s); a population has one" in msg


def test_tau_shorter_than_dt_is_refused() -> None:
    g = chain(nir.Input(np.array([2])), cuba(2, tau_syn=0.0005))
    msg = _refused(g)
    assert "n1.tau_syn: 0.0005 s is shorter than the step dt 0.001 s; forward Euler" in msg


def test_lif_without_leak_and_bad_threshold_are_refused() -> None:
    g = chain(nir.Input(np.array([2])), lif(2, tau=math.inf, th=-1.0))
    msg = _refused(g)
    assert "n1.tau: inf makes the input vanish" in msg
    assert "n1.v_threshold: -1 (neuron 0) is not supported; accepted: > 0" in msg


def test_loop_of_linear_nodes_is_refused() -> None:
    g = graph(
        {
            "inp": nir.Input(np.array([2])),
            "a": nir.Linear(weight=np.eye(2)),
            "b": nir.Linear(weight=np.eye(2)),
            "lif": lif(2),
        },
        [("inp", "a"), ("a", "b"), ("b", "a"), ("b", "lif")],
    )
    assert "a: lies on a loop of linear nodes (a -> b -> a) with no neuron" in _refused(g)


def test_output_of_a_linear_map_is_refused() -> None:
    g = chain(
        nir.Input(np.array([2])),
        nir.Linear(weight=np.eye(2)),
        lif(2),
        nir.Linear(weight=np.ones((1, 2))),
        nir.Output(np.array([1])),
    )
    msg = _refused(g)
    assert "n4: is fed by Linear node 'n3': the hardware reports the spikes" in msg


def test_long_delay_is_refused() -> None:
    g = chain(
        nir.Input(np.array([1])),
        nir.Linear(weight=np.eye(1)),
        nir.Delay(delay=np.array([0.1])),
        lif(1),
    )
    assert "n2.delay: 0.1 s is 100 steps at dt_ms 1.0; accepted: 0..63 steps" in _refused(g)


def test_sizes_that_do_not_fit_are_refused() -> None:
    g = chain(nir.Input(np.array([3])), nir.Linear(weight=np.eye(2)), lif(2), check=False)
    assert "edge n0 -> n1: n0 gives 3 values, n1 takes 2" in _refused(g)


def test_heterogeneous_leak_with_a_current_is_refused() -> None:
    g = chain(nir.Input(np.array([2])), cuba(2, v_leak=np.array([0.0, 0.1])))
    assert "n1.v_leak: per-neuron values differ; with a synaptic current" in _refused(g)


def test_missing_step_is_refused() -> None:
    g = chain(nir.Input(np.array([2])), lif(2))
    msg = _refused(g, None)
    assert "dt_ms: the graph does not record its time step; give it" in msg


def test_missing_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "x.nir"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(NIRError) as e:
        load(path)
    assert str(e.value) == (
        f"reading {path} needs the `nir` package, which is not installed; install it with: "
        "pip install 'spikefab[nir]'"
    )
