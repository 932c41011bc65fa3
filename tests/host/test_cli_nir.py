"""NIR on the command line: import-nir, export-nir, and .nir files where networks go."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from spikefab.host.cli import main
from spikefab.mapping.loader import load

nir = pytest.importorskip("nir", reason="the NIR tests need the `nir` package (spikefab[nir])")

EXAMPLES = Path(__file__).parents[2] / "examples"
CLASSIFIER = EXAMPLES / "nir_classifier.nir"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIKEFAB_CACHE", str(tmp_path / "cache"))


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def test_import_nir_writes_yaml_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "net.yaml"
    code, stdout, _ = invoke("import-nir", str(CLASSIFIER), "-o", str(out))
    assert code == 0
    assert "hidden (CubaLIF, 16 neurons)" in stdout
    assert "hidden.tau_mem_ms" in stdout and "fc1.weight" in stdout
    assert out.read_text().startswith("# Imported from nir_classifier.nir (NIR) at dt_ms 1.")
    code, stdout, _ = invoke("check", str(out))
    assert code == 0 and "ok: nir_classifier" in stdout


def test_export_then_import_gives_the_same_spikes(tmp_path: Path) -> None:
    code, _, _ = invoke("export-nir", "synfire", "-o", str(tmp_path / "s.nir"))
    assert code == 0
    for name in ("synfire", str(tmp_path / "s.nir")):
        code, _, _ = invoke(
            "run", name, "-n", "100", "-o", str(tmp_path / f"{Path(name).stem}.npz")
        )
        assert code == 0
    with np.load(tmp_path / "synfire.npz") as a, np.load(tmp_path / "s.npz") as b:
        for key in ("step", "population", "neuron"):
            np.testing.assert_array_equal(a[key], b[key])


def test_run_a_nir_file_with_recorded_input(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert invoke("run", str(CLASSIFIER), "-n", "200", "-o", str(a))[0] == 0
    # the input file holds the spikes the graph records: the same run
    inp = EXAMPLES / "nir_classifier_input.npz"
    assert invoke("run", str(CLASSIFIER), "-n", "200", "-o", str(b), "--input", str(inp))[0] == 0
    with np.load(a) as fa, np.load(b) as fb:
        np.testing.assert_array_equal(fa["step"], fb["step"])
        np.testing.assert_array_equal(fa["neuron"], fb["neuron"])
    # silence for the classifier: nothing but the input spikes that the file gives
    np.save(tmp_path / "quiet.npy", np.zeros((200, 24), dtype=bool))
    code, stdout, _ = invoke(
        "run", str(CLASSIFIER), "-n", "200", "-o", str(a), "--input", str(tmp_path / "quiet.npy")
    )
    assert code == 0 and "0 spikes ->" in stdout


def test_compare_a_nir_file_on_the_system_model() -> None:
    code, stdout, _ = invoke("compare", str(CLASSIFIER), "--against", "system", "--no-progress")
    assert code == 0, stdout
    assert "spike mismatches:      0" in stdout
    assert "probe readout/v: 600 values compared, 0 mismatches" in stdout


def test_the_classifier_classifies() -> None:
    net = load(CLASSIFIER)
    from spikefab.sim.golden import GoldenModel

    res = GoldenModel(net).run(180)
    vote = net.populations["vote"].index
    sel = res.population == vote
    for k in range(3):
        in_sample = sel & (res.step // 60 == k)
        assert np.argmax(np.bincount(res.neuron[in_sample], minlength=3)) == k


def test_an_unsupported_node_fails_naming_it(tmp_path: Path) -> None:
    g = nir.NIRGraph(
        nodes={
            "inp": nir.Input(np.array([2])),
            "thr": nir.Threshold(threshold=np.ones(2)),
            "out": nir.Output(np.array([2])),
        },
        edges=[("inp", "thr"), ("thr", "out")],
    )
    path = tmp_path / "bad.nir"
    nir.write(path, g)
    for args in (("import-nir", str(path), "--dt-ms", "1"), ("run", str(path), "--dt-ms", "1")):
        code, _, stderr = invoke(*args)
        assert code == 1
        assert f"{path}: thr: node type Threshold is not supported by the hardware" in stderr


def test_a_graph_without_its_step_asks_for_it(tmp_path: Path) -> None:
    g = nir.NIRGraph(
        nodes={
            "inp": nir.Input(np.array([1])),
            "lif": nir.LIF(
                tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1)
            ),
        },
        edges=[("inp", "lif")],
    )
    path = tmp_path / "g.nir"
    nir.write(path, g)
    code, _, stderr = invoke("run", str(path))
    assert code == 1 and "dt_ms: the graph does not record its time step" in stderr
    assert invoke("run", str(path), "--dt-ms", "0.5", "-o", str(tmp_path / "s.npz"))[0] == 0


def test_without_the_package_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nir", None)
    code, _, stderr = invoke("run", str(CLASSIFIER))
    assert code == 1
    assert "needs the `nir` package, which is not installed; install it with: pip install " in (
        stderr
    )
    assert "'spikefab[nir]'" in stderr
