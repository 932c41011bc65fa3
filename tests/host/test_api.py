"""The public API (``import spikefab``): the README's example, devices step by step, inputs.

Every run is checked against the golden model (an independent computation of the same
network), never against a recorded output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spikefab
from spikefab.mapping.loader import load_text

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"

TINY = """
spikefab: 1
name: tiny
dt_ms: 1.0
populations:
  inp: {kind: spike_source, size: 4, times: [[], [], [], []]}
  exc: {size: 6, neuron: {du: 1000, dv: 200, vth: 40, refractory: 1}}
projections:
  - {pre: inp, post: exc, connect: all_to_all, weight: 90, delay: 2}
  - {pre: exc, post: exc, connect: {kind: fixed_probability, p: 0.5, seed: 3}, weight: 30,
     delay: 3}
probes:
  - {population: exc, variable: v}
"""


def readme_example() -> str:
    """The Python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    """The README's example, as a user runs it: a fresh interpreter, golden and Verilator."""
    code = readme_example()
    assert 'backend="verilator"' in code and "compare" in code
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "identical" in r.stdout


def test_load_takes_every_form() -> None:
    by_name = spikefab.load("synfire")
    by_path = spikefab.load(EXAMPLES / "synfire.yaml")
    builder = spikefab.NetworkBuilder("b")
    builder.spike_source("s", 2, times=[[0], [1]])
    builder.population("p", 3, du=4095, dv=100, vth=10)
    builder.project("s", "p", weight=50)
    built = spikefab.load(builder)
    assert by_name.n_synapses == by_path.n_synapses > 0
    assert built.n_neurons == 3 and "name: b" in built.to_yaml()
    assert spikefab.load(built) is built
    with pytest.raises(FileNotFoundError, match="neither a file nor a bundled example"):
        spikefab.load("no_such_network")


def test_run_checks_its_arguments() -> None:
    net = spikefab.load("synfire")
    with pytest.raises(ValueError, match="unknown backend 'fpga'; accepted: golden"):
        spikefab.run(net, 10, backend="fpga")
    with pytest.raises(ValueError, match="steps must be an integer >= 1, not 0"):
        spikefab.run(net, 0)
    with pytest.raises(ValueError, match="the serial backend needs a board and a port"):
        spikefab.run(net, 10, backend="serial")


def test_result_accessors_agree_with_the_spike_arrays() -> None:
    net = spikefab.load("synfire")
    r = spikefab.run(net, 200)
    steps, _ = r.spikes("group0")
    k = r.populations.index("group0")
    assert steps.size == int((r.population == k).sum()) > 0
    rate = r.rates()["group0"]
    assert rate.shape == (net.populations["group0"].size,)
    assert rate.sum() == pytest.approx(steps.size / (200 * net.dt_ms / 1000.0))
    assert r.probe("group0", "v") is r.probe("group0/v")
    with pytest.raises(KeyError, match="'nope' is not a population of synfire"):
        r.spikes("nope")
    with pytest.raises(KeyError, match="no probe 'group0/w'"):
        r.probe("group0/w")


@pytest.mark.parametrize("backend", ["system", "verilator"])
def test_a_device_driven_step_by_step_equals_golden(backend: str) -> None:
    net = spikefab.load("synfire")
    golden = spikefab.run(net, 80)
    seen: list[int] = []
    with spikefab.open_device(net, backend) as dev:
        first = dev.run(30, on_step=lambda t, spikes: seen.append(t))
        rest = list(dev.steps(50))
        v = dev.read("group0", "v")
        status = dev.status()
    assert seen == list(range(30))
    assert [t for t, _ in rest] == list(range(30, 80))
    got = {(int(t), net.populations[p].index, int(n))
           for t, spikes in rest for p, ns in spikes.items() for n in ns}  # fmt: skip
    got |= set(zip(first.step.tolist(), first.population.tolist(), first.neuron.tolist(),
                   strict=True))  # fmt: skip
    want = set(zip(golden.step.tolist(), golden.population.tolist(), golden.neuron.tolist(),
                   strict=True))  # fmt: skip
    assert got == want
    probe = golden.probe("group0", "v")
    assert np.array_equal(v[probe.index], probe.values[-1])
    assert status["step"] == 80


def test_injected_spikes_equal_a_network_with_those_source_times() -> None:
    rng = np.random.default_rng(5)
    plan = {t: sorted(rng.choice(4, size=rng.integers(0, 4), replace=False).tolist())
            for t in range(25)}  # fmt: skip
    net = load_text(TINY, source="tiny")
    with spikefab.open_device(net, "system") as dev:
        for t in range(25):
            dev.inject("inp", plan[t])
            dev.run(1)
        v = dev.read("exc", "v")
        with pytest.raises(
            ValueError, match="'exc' is not a spike source of tiny; its sources: inp"
        ):
            dev.inject("exc", [0])
        with pytest.raises(ValueError, match=r"neuron 4 of 'inp' does not exist; accepted 0\.\.3"):
            dev.inject("inp", [4])
        with pytest.raises(ValueError, match="'inp' is not a LIF population of tiny"):
            dev.read("inp", "v")
    times = [[t for t in range(25) if i in plan[t]] for i in range(4)]
    driven = load_text(TINY.replace("times: [[], [], [], []]", f"times: {times}"), source="t")
    golden = spikefab.run(driven, 25)
    assert np.array_equal(v, golden.probe("exc", "v").values[-1])


def test_a_device_context_ends_the_simulation_even_on_an_error() -> None:
    net = spikefab.load("synfire")
    procs = []

    def fail_inside() -> None:
        with spikefab.open_device(net, "verilator") as dev:
            procs.append(dev.device.transport.proc)
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fail_inside()
    assert procs and procs[0].poll() is not None


def nir_graph_with_a_bias(path: Path) -> None:
    import nir

    n_in, n_out = 5, 4
    rng = np.random.default_rng(2)
    nodes = {
        "input": nir.Input(np.array([n_in])),
        # a bias that differs per neuron becomes an internal spike source
        "fc": nir.Affine(weight=rng.uniform(0.2, 0.6, (n_out, n_in)), bias=np.linspace(0, 0.3, 4)),
        "lif": nir.LIF(
            tau=np.full(n_out, 0.02),
            r=np.full(n_out, 20.0),
            v_leak=np.zeros(n_out),
            v_threshold=np.ones(n_out),
            v_reset=np.zeros(n_out),
        ),
        "out": nir.Output(np.array([n_out])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "out")]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))


def test_a_plain_array_drives_the_only_input_of_a_nir_graph(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SPIKEFAB_CACHE", str(tmp_path / "cache"))
    nir_graph_with_a_bias(tmp_path / "g.nir")
    plain = spikefab.load(tmp_path / "g.nir", dt_ms=1.0)
    internal = [p.name for p in plain.populations.values() if p.internal]
    assert internal, "the graph's per-neuron bias should come from an internal source"
    dense = np.random.default_rng(4).random((40, 5)) < 0.3
    net = spikefab.load(tmp_path / "g.nir", dt_ms=1.0, inputs=dense)
    r = spikefab.run(net, 40)
    st, ne = r.spikes("input")
    want_st, want_ne = np.nonzero(dense)
    assert np.array_equal(st, want_st) and np.array_equal(ne, want_ne)
    # the same spikes named by population give the same run, on the system model too
    named = spikefab.load(plain, inputs={"input": (want_st, want_ne)})
    assert spikefab.compare(r, spikefab.run(named, 40, backend="system")).equal
    with pytest.raises(spikefab.InputError, match="is not an input of the network"):
        spikefab.load(plain, inputs={internal[0]: dense[:, :1]})
