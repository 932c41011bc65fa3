"""The network description: YAML and builder agree, and every error names its place."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from spikefab.mapping.loader import load, load_text
from spikefab.mapping.network import NetworkBuilder, NetworkError

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))

GOOD = """\
spikefab: 1
name: small
dt_ms: 0.5
populations:
  inp:
    kind: spike_source
    size: 3
    times: [[0, 4], [2], []]
  exc:
    size: 4
    neuron: {du: 100, dv: 200, vth: 300, bias_mant: -5, bias_exp: 1, refractory: 2}
  phys:
    size: 2
    neuron: {tau_syn_ms: 5, tau_mem_ms: 20, v_threshold: 2.0, reset: subtract}
projections:
  - pre: inp
    post: exc
    connect: all_to_all
    weight: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    weight_exp: 3
    delay: {kind: uniform, low: 1, high: 4, seed: 9}
  - name: fb
    pre: exc
    post: phys
    connect: {kind: fixed_probability, p: 0.5, seed: 2}
    weight: 0.25
probes:
  - {population: exc, variable: v, neurons: [0, 3]}
"""


def build_good() -> NetworkBuilder:
    b = NetworkBuilder("small", dt_ms=0.5)
    b.spike_source("inp", 3, times=[[0, 4], [2], []])
    b.population("exc", 4, du=100, dv=200, vth=300, bias_mant=-5, bias_exp=1, refractory=2)
    b.population("phys", 2, tau_syn_ms=5, tau_mem_ms=20, v_threshold=2.0, reset="subtract")
    b.project(
        "inp",
        "exc",
        connect="all_to_all",
        weight=np.arange(1, 13),
        weight_exp=3,
        delay={"kind": "uniform", "low": 1, "high": 4, "seed": 9},
    )
    b.project(
        "exc",
        "phys",
        connect={"kind": "fixed_probability", "p": 0.5, "seed": 2},
        weight=0.25,
        name="fb",
    )
    b.probe("exc", "v", neurons=[0, 3])
    return b


def errors(text: str) -> str:
    with pytest.raises(NetworkError) as e:
        load_text(textwrap.dedent(text), source="net.yaml")
    return str(e.value)


def test_yaml_and_builder_give_the_same_network():
    a = load_text(GOOD)
    b = build_good().build()
    assert list(a.populations) == list(b.populations) == ["inp", "exc", "phys"]
    for name in a.populations:
        pa, pb = a.populations[name], b.populations[name]
        assert (pa.size, pa.neuron, pa.physical, pa.scale) == (
            pb.size,
            pb.neuron,
            pb.physical,
            pb.scale,
        )
    assert len(a.projections) == len(b.projections) == 2
    for pa, pb in zip(a.projections, b.projections, strict=True):
        assert pa.name == pb.name
        for arr in ("pre_idx", "post_idx", "weight", "delay"):
            np.testing.assert_array_equal(getattr(pa, arr), getattr(pb, arr))
        assert pa.weight_exp == pb.weight_exp
    # the builder's YAML reads back to the same network too
    c = load_text(build_good().to_yaml())
    np.testing.assert_array_equal(c.projections[1].post_idx, a.projections[1].post_idx)


def test_good_network_contents():
    net = load_text(GOOD)
    inp, exc = net.projections
    # all_to_all is pre-major: pre 0 -> posts 0..3, then pre 1, ...
    np.testing.assert_array_equal(inp.pre_idx, np.repeat(np.arange(3), 4))
    np.testing.assert_array_equal(inp.post_idx, np.tile(np.arange(4), 3))
    np.testing.assert_array_equal(inp.weight, np.arange(1, 13))
    assert inp.delay.min() >= 1 and inp.delay.max() <= 4
    assert net.populations["phys"].neuron.vth == 4096
    assert net.populations["phys"].scale == pytest.approx((4096 << 6) / 2.0)
    # 0.25 V at a threshold of 2.0 V is 1/8 of 4096 << 6 = 32768 in u, i.e. a = 512 = 128 << 2:
    # 128 does not fit in 8 bits, so the exponent is 3 and the mantissa 64.
    assert (exc.weight_exp, set(exc.weight.tolist())) == (3, {64})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_load(path):
    net = load(path)
    assert net.n_neurons > 0


def test_unknown_key_suggests_the_right_one():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a:
            size: 1
            neuron: {du: 1, dv: 1, vth: 1, treshold: 3}
        """)
    assert "net.yaml:6: populations.a.neuron.treshold: unknown key 'treshold'" in msg
    assert "did you mean 'v_threshold'?" in msg
    assert "accepted: du, dv, vth" in msg


def test_unknown_key_in_projection_and_top_level():
    msg = errors("""\
        spikefab: 1
        name: x
        dt: 1.0
        populations:
          a: {size: 1, neuron: {du: 1, dv: 1, vth: 1}}
        projections:
          - {pre: a, post: a, connect: one_to_one, weight: 1, wieght_exp: 2}
        """)
    assert "net.yaml:3: dt: unknown key 'dt' (did you mean 'dt_ms'?)" in msg
    assert (
        "net.yaml:7: projections[0].wieght_exp: unknown key 'wieght_exp' "
        "(did you mean 'weight_exp'?)" in msg
    )


def test_wrong_type():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a:
            size: ten
            neuron: {du: 1.5, dv: 1, vth: 1}
        """)
    assert "net.yaml:5: populations.a.size: 'ten' (str) is not accepted; expected an integer" in msg
    assert (
        "net.yaml:6: populations.a.neuron.du: 1.5 (float) is not accepted; expected an integer"
        in msg
    )


def test_out_of_range_fixed_point_values():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a:
            size: 2
            neuron:
              du: 4096
              dv: -1
              vth: 131072
              bias_mant: 4096
              bias_exp: 8
              refractory: 16
        projections:
          - {pre: a, post: a, connect: all_to_all, weight: 128, weight_exp: 1}
        """)
    assert (
        "7: populations.a.neuron.du: 4096 is out of range; accepted: 0..4095 (12-bit unsigned)"
        in msg
    )
    assert "8: populations.a.neuron.dv: -1 is out of range; accepted: 0..4095" in msg
    assert (
        "9: populations.a.neuron.vth: 131072 is out of range; accepted: 0..131071 (17-bit unsigned)"
        in msg
    )
    assert (
        "10: populations.a.neuron.bias_mant: 4096 is out of range; "
        "accepted: -4096..4095 (13-bit signed)" in msg
    )
    assert "11: populations.a.neuron.bias_exp: 8 is out of range; accepted: 0..7" in msg
    assert "12: populations.a.neuron.refractory: 16 is out of range; accepted: 0..15" in msg
    assert (
        "14: projections[0].weight: 128 is out of range; "
        "accepted: -128..127 (8-bit signed mantissa)" in msg
    )


def test_missing_population_and_wrong_length_list_reported_together():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a: {size: 2, neuron: {du: 1, dv: 1, vth: 1}}
          s: {kind: spike_source, size: 3, times: [[1], [2]]}
        projections:
          - {pre: a, post: nowhere, connect: all_to_all, weight: 1}
          - {pre: a, post: a, connect: all_to_all, weight: [1, 2, 3]}
        probes:
          - {population: b, variable: v}
        """)
    assert msg.startswith("4 problems in network net.yaml:")
    assert "5: populations.s.times: has 2 lists of spike steps but size is 3" in msg
    assert (
        "7: projections[0].post: names population 'nowhere', which does not exist; "
        "populations: a, s"
    ) in msg
    assert "8: projections[1].weight: lists 3 values but the projection has 4 synapses" in msg
    assert "10: probes[0].population: names population 'b', which does not exist" in msg


def test_missing_required_and_mixed_neuron_forms():
    msg = errors("""\
        spikefab: 1
        populations:
          a: {size: 2, neuron: {du: 1, tau_mem_ms: 20}}
          b: {size: 2, neuron: {dv: 1}}
          c: {size: 2}
        """)
    assert "1: name: is required but missing" in msg
    assert (
        "populations.a.neuron: mixes fixed-point keys (du) with physical keys (tau_mem_ms)" in msg
    )
    assert "populations.b.neuron: missing du, vth" in msg
    assert "populations.c: a lif population needs `neuron:` parameters" in msg


def test_unrepresentable_physical_values():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a:
            size: 2
            neuron: {tau_syn_ms: 100000, tau_mem_ms: 0.01, v_threshold: 1.0, bias: 5.0}
          b: {size: 1, neuron: {tau_syn_ms: 5, tau_mem_ms: 20, v_threshold: 1.0}}
        projections:
          - {pre: b, post: b, connect: all_to_all, weight: 10.0}
        """)
    assert "populations.a.neuron.tau_syn_ms: a.tau_syn_ms 100000" in msg
    assert "accepted: up to about" in msg
    assert "populations.a.neuron.tau_mem_ms" in msg and "accepted: at least about" in msg
    assert "populations.a.neuron.bias" in msg and "beyond the largest 13-bit mantissa" in msg
    assert "projections[0].weight: b->b.weight: the largest weight is 40960" in msg


def test_connect_and_value_errors():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a: {size: 2, neuron: {du: 1, dv: 1, vth: 1}}
          b: {size: 3, neuron: {du: 1, dv: 1, vth: 1}}
        projections:
          - {pre: a, post: b, connect: one_to_one, weight: 1}
          - {pre: a, post: b, connect: {kind: fixed_probability, p: 1.5, seed: 1}, weight: 1}
          - {pre: a, post: b, connect: {kind: list, pairs: [[0, 3]]}, weight: 1}
          - {pre: a, post: b, connect: all_to_all, weight: 1, delay: 65}
          - {pre: a, post: b, connect: all_to_all, weight: {kind: uniform, low: 1}}
          - {pre: a, post: b, connect: all_to_all, weight: 1.5}
        """)
    assert "projections[0].connect: one_to_one needs equal sizes; pre has 2, post has 3" in msg
    assert "projections[1].connect.p: 1.5 is not a probability; accepted: 0..1" in msg
    assert "projections[2].connect.pairs[0]: post index 3 is out of range" in msg
    assert "projections[3].delay: 65 is out of range; accepted: 1..64 (steps)" in msg
    assert "projections[4].weight: a uniform value needs high, seed" in msg
    assert "projections[5].weight: 1.5 is not an integer" in msg


def test_duplicate_spike_and_bad_stdp():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          s: {kind: spike_source, size: 1, times: [[3, 3]]}
          a: {size: 1, neuron: {du: 1, dv: 1, vth: 1}}
        projections:
          - pre: s
            post: a
            connect: all_to_all
            weight: 100
            stdp: {a_plus: 200, a_minus: 1, d_pre: 10, bump_pre: 1, bump_post: 1, w_max: 50}
        """)
    assert "populations.s.times[0]: lists a step twice" in msg
    assert "stdp.a_plus: 200 is out of range; accepted: -128..127 (8-bit signed)" in msg
    assert "give exactly one of d_post (fixed point) and tau_post_ms" in msg


def test_invalid_yaml_has_a_line():
    msg = errors("spikefab: 1\nname: [x\n")
    assert msg.startswith("1 problem in network net.yaml:")
    assert "is not valid YAML" in msg


def test_builder_errors_name_the_field():
    b = NetworkBuilder("x")
    b.population("a", 2, du=1, dv=1, vth=1)
    b.project("a", "missing", weight=1)
    with pytest.raises(NetworkError, match=r"projections\[0\]\.post: names population 'missing'"):
        b.build()


def test_spike_file_source(tmp_path):
    np.savez(tmp_path / "in.npz", step=np.array([3, 1, 1]), neuron=np.array([0, 1, 0]))
    (tmp_path / "net.yaml").write_text(
        textwrap.dedent("""\
        spikefab: 1
        name: x
        populations:
          s: {kind: spike_source, size: 2, file: in.npz}
        """)
    )
    src = load(tmp_path / "net.yaml").populations["s"].source
    steps, neurons = src.spikes(2, 10, 1.0)
    np.testing.assert_array_equal(steps, [1, 1, 3])
    np.testing.assert_array_equal(neurons, [0, 1, 0])
    np.savez(tmp_path / "in.npz", step=np.array([1]), neuron=np.array([2]))
    with pytest.raises(
        NetworkError,
        match=r"spike 0 is \(step 1, neuron 2\); accepted steps >= 0 "
        r"and neurons 0..1",
    ):
        load(tmp_path / "net.yaml")


def test_initial_v_in_physical_and_fixed_units():
    """v before the first step: scaled like v_threshold, or raw fixed point; with no input,
    the float reference decays it exactly as exp(-k dt / tau_mem), and the golden model
    stays within its fixed-point rounding of that."""
    from spikefab.hdl import params as P
    from spikefab.sim.golden import GoldenModel
    from spikefab.sim.reference import FloatReference

    b = NetworkBuilder("iv", dt_ms=1.0)
    b.population("a", 4, tau_syn_ms=5, tau_mem_ms=20, v_threshold=10.0, initial_v=[0, 5, 9.5, 25])
    b.population("f", 3, du=100, dv=200, vth=300, initial_v={"kind": "uniform", "low": -50,
                                                              "high": 50, "seed": 3})  # fmt: skip
    b.probe("a", "v")
    net = b.build()
    a, f = net.populations["a"], net.populations["f"]
    np.testing.assert_array_equal(a.v0, np.rint(np.array([0, 5, 9.5, 25]) * a.scale))
    want_f = np.random.default_rng(3).integers(-50, 51, size=3)
    np.testing.assert_array_equal(f.v0, want_f)
    steps = 6
    ref = FloatReference(net).run(steps)
    gold = GoldenModel(net).run(steps)
    # neuron 3 starts above threshold and spikes at step 0; the others never do
    pop = net.populations["a"].index
    assert list(zip(gold.step[gold.population == pop], gold.neuron[gold.population == pop],
                    strict=True)) == [(0, 3)]  # fmt: skip
    k = np.arange(1, steps + 1)[:, None]
    analytic = np.array([0, 5, 9.5]) * np.exp(-k / 20.0)
    np.testing.assert_allclose(ref.probes["a/v"].values[:, :3], analytic, rtol=1e-12)
    got = gold.probes["a/v"].values[:, :3] / a.scale
    np.testing.assert_allclose(got, analytic, atol=2e-3 * 10)
    assert P.V_MAX / a.scale > 25


def test_initial_v_errors_name_the_place():
    msg = errors("""\
        spikefab: 1
        name: x
        populations:
          a: {size: 3, neuron: {du: 1, dv: 1, vth: 1}, initial_v: [1, 2]}
          b: {size: 2, neuron: {du: 1, dv: 1, vth: 1}, initial_v: 0.5}
          c: {size: 2, neuron: {tau_syn_ms: 5, tau_mem_ms: 20, v_threshold: 1.0},
              initial_v: {kind: uniform, low: 0, high: 1000, seed: 1}}
          s: {kind: spike_source, size: 1, times: [[1]], initial_v: 0}
        """)
    assert (
        "4: populations.a.initial_v: lists 2 values but population a has 3 neurons; give "
        "one value per neuron, or a scalar"
    ) in msg
    assert "5: populations.b.initial_v: 0.5 is not an integer" in msg
    # v holds +-(2**23 - 1) fixed-point units; at v_threshold 1.0 a unit is 1 / (4096 << 6)
    hi = ((1 << 23) - 1) / (4096 << 6)
    assert f"accepted: {-hi:.6g} .. {hi:.6g} (the population's units)" in msg
    first = np.random.default_rng(1).uniform(0, 1000, size=2)[0]  # the draw of population c
    assert f"7: populations.c.initial_v: neuron 0: v {first:g} is outside what v holds" in msg
    assert "populations.s.initial_v: a spike_source has no v; remove the key" in msg
