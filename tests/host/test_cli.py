"""The command line, run as users run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from spikefab.host.cli import main
from spikefab.mapping.loader import load
from spikefab.sim.golden import GoldenModel

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_check_every_example(path):
    code, out, _ = invoke("check", str(path))
    assert code == 0
    assert ": ok: " in out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_run_every_example(path, tmp_path):
    out_file = tmp_path / "s.npz"
    code, out, _ = invoke("run", str(path), "--steps", "50", "-o", str(out_file))
    assert code == 0, out
    with np.load(out_file) as f:
        for key in ("step", "population", "neuron", "populations"):
            assert key in f.files
        step, pop, neuron = f["step"], f["population"], f["neuron"]
        assert step.dtype.kind == pop.dtype.kind == neuron.dtype.kind == "i"
        # sorted by step, then population, then neuron
        key = np.stack([step, pop, neuron], axis=1)
        assert all(tuple(key[i]) < tuple(key[i + 1]) for i in range(len(key) - 1))
        names = [str(x) for x in f["populations"]]
        assert names == list(load(path).populations)
        sizes = f["population_sizes"]
        assert np.all(neuron < sizes[pop])


def test_run_matches_the_golden_model(tmp_path):
    path = tmp_path / "s.npz"
    code, _, _ = invoke("run", "synfire", "-n", "100", "-o", str(path))
    assert code == 0
    ref = GoldenModel(load(EXAMPLES[0].parent / "synfire.yaml")).run(100)
    with np.load(path) as f:
        np.testing.assert_array_equal(f["step"], ref.step)
        np.testing.assert_array_equal(f["neuron"], ref.neuron)
        np.testing.assert_array_equal(f["probe/group0/v"], ref.probes["group0/v"].values)


def test_malformed_network_exits_nonzero_naming_each_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "spikefab: 1\nname: bad\npopulations:\n"
        "  a: {size: 2, neuron: {du: 9999, dv: 1, vth: 1, tau: 3}}\n"
        "projections:\n  - {pre: a, post: b, connect: all_to_all, weight: 1}\n"
    )
    code, out, err = invoke("check", str(bad))
    assert code == 1
    assert out == ""
    assert f"{bad}:4: populations.a.neuron.du: 9999 is out of range" in err
    assert f"{bad}:4: populations.a.neuron.tau: unknown key 'tau'" in err
    assert f"{bad}:6: projections[0].post: names population 'b'" in err


def test_unknown_network_name():
    code, _, err = invoke("run", "no_such_net")
    assert code == 2
    assert "'no_such_net' is neither a file nor a bundled example" in err
    assert "synfire" in err


def test_info_reports_sizes_and_events(tmp_path):
    code, out, _ = invoke("info", "synfire", "--steps", "100")
    assert code == 0
    assert "160 neurons" in out and "2820 synapses" in out
    # group0 spikes once per volley: 20 neurons x 2 volleys in 100 steps, fan-out 20
    line = next(ln for ln in out.splitlines() if ln.startswith("group0 "))
    assert line.split()[-2:] == ["0.40", "8.0"]


def test_plot_writes_a_png(tmp_path):
    s = tmp_path / "s.npz"
    invoke("run", "synfire", "-n", "80", "-o", str(s))
    code, _, _ = invoke("plot", str(s), "-o", str(tmp_path / "r.png"))
    assert code == 0
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_rejects_a_foreign_npz(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    code, _, err = invoke("plot", str(tmp_path / "x.npz"))
    assert code == 1
    assert "not a spikefab spike file; missing arrays" in err


def test_console_script_is_installed(tmp_path):
    exe = Path(sys.executable).parent / "spikefab"
    r = subprocess.run([str(exe), "check", "-q", "synfire"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
