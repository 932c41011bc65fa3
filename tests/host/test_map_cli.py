"""`spikefab map`, and `run`/`compare` on images, run as users run them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from spikefab.host.cli import main
from spikefab.mapping.hardware import sim_core
from spikefab.mapping.image import load_image
from spikefab.mapping.loader import load
from spikefab.sim.golden import GoldenModel

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_map_reports_every_example(path):
    code, out, err = invoke("map", str(path), "--rate-steps", "50")
    assert code == 0, err
    net = load(path)
    n = net.n_neurons
    head = re.search(r": (\d+) neurons, (\d+) sources, (\d+) synapses -> (\d+) of 15 cores", out)
    assert head is not None, out
    assert int(head[1]) == n and int(head[3]) == net.n_synapses
    # one row per core used, with every limit
    core, _ = sim_core(net)  # the simulated system's core for a network of this size
    rows = re.findall(
        rf"^\s+(\d+)\s+(\d+)/{core.neurons}\s+\d+%\s+(\d+)/{core.axons}\s+\d+%\s+"
        rf"(\d+)/{core.synapses}",
        out,
        re.M,
    )
    assert len(rows) == int(head[4])
    assert sum(int(r[1]) for r in rows) == n
    assert "expected events per step" in out and "inter-core" in out and "core->host" in out
    assert re.search(r"^time: .*; mapping \d+\.\d\d s$", out, re.M)


def test_map_writes_an_image_that_runs(tmp_path):
    image = tmp_path / "balanced.npz"
    code, out, _ = invoke(
        "map", "balanced", "--placement", "partition", "--rate-steps", "0", "-o", str(image)
    )
    assert code == 0
    assert "routes per spike" in out and f"-> {image}" in out
    img = load_image(image)
    assert img.stats["method"] == "partition"
    spikes = tmp_path / "s.npz"
    code, out, _ = invoke("run", str(image), "-b", "system", "-n", "80", "-o", str(spikes))
    assert code == 0, out
    ref = GoldenModel(load(EXAMPLES[0].parent / "balanced.yaml")).run(80)
    with np.load(spikes) as f:
        np.testing.assert_array_equal(f["step"], ref.step)
        np.testing.assert_array_equal(f["neuron"], ref.neuron)
        np.testing.assert_array_equal(f["population"], ref.population)
    code, out, _ = invoke("compare", str(image), "--against", "system", "-n", "60")
    assert code == 0 and "identical" in out


@pytest.mark.parametrize("placement", ["greedy", "partition", "random"])
def test_compare_maps_on_the_fly(placement):
    code, out, _ = invoke("compare", "synfire", "--against", "system", "--placement", placement)
    assert code == 0 and "identical" in out and "spike mismatches:      0" in out


def test_map_plot(tmp_path):
    png = tmp_path / "p.png"
    code, _, _ = invoke("map", "synfire", "--placement", "random", "--plot", str(png))
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_map_refuses_an_oversize_network(tmp_path):
    net = tmp_path / "big.yaml"
    net.write_text(
        "spikefab: 1\nname: big\ndt_ms: 1.0\npopulations:\n"
        "  inp: {kind: spike_source, size: 2400, poisson: {rate_hz: 5, seed: 1}}\n"
        "  exc: {size: 10, neuron: {du: 100, dv: 100, vth: 100}}\n"
        "projections:\n  - {pre: inp, post: exc, connect: all_to_all, weight: 1}\n"
    )
    code, _, err = invoke(
        "map", str(net), "--synapses", "2048", "--sources", "4096", "--axons", "4096"
    )
    assert code == 1
    assert (
        "population 'exc' needs 2400 synapse entries on one core for its neuron 0 alone "
        "(10 neuron(s) over); a core holds 2048 (352 too many); lower the fan-in or use cores "
        "with at least 4096 synapse entries" in err
    )


def test_map_beyond_the_system_reports_but_writes_no_image(tmp_path):
    out_file = tmp_path / "x.npz"
    code, out, err = invoke(
        "map",
        "balanced",
        "--cores",
        "40",
        "--neurons",
        "32",
        "--route-entries",
        "65536",
        "--rate-steps",
        "0",
        "-o",
        str(out_file),
    )
    assert code == 1
    assert "of 40 cores" in out
    assert "no image written" in err and "cores must be an integer from 1 to 15" in err
    assert not out_file.exists()


def test_map_plastic_network_on_learning_cores(tmp_path):
    out_file = tmp_path / "x.npz"
    code, out, err = invoke("map", "stdp_pattern", "-o", str(out_file))
    assert code == 0, err
    assert "are plastic: their synapses have rows of their own" in out
    assert out_file.exists()
    # the iCEBreaker's core has no learning unit
    code, out, err = invoke("map", "stdp_pattern", "--board", "icebreaker")
    assert code == 1
    assert "plastic synapses need a learning unit; the cores have none" in err


def test_map_bad_sizes():
    code, _, err = invoke("map", "synfire", "--neurons", "100")
    assert code == 2 and "neurons must be a power of two from 2 to 4096, not 100" in err
    code, _, err = invoke("map", "synfire", "--rate-steps", "-1")
    assert code == 2 and "must be >= 0, not -1" in err


def test_run_refuses_a_foreign_npz(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.zeros(2))
    code, _, err = invoke("run", str(bad), "-b", "system")
    assert code == 1 and "not a spikefab image" in err
