"""Recorded input spikes (``--input``) in every documented form, and their refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spikefab.host.inputs import InputError, network_file, read_inputs
from spikefab.mapping.loader import load
from spikefab.sim.golden import GoldenModel

EXAMPLES = Path(__file__).parents[2] / "examples"
SOURCES = {"a": 3, "b": 2}


def test_per_population_arrays(tmp_path: Path) -> None:
    path = tmp_path / "in.npz"
    np.savez(path, **{"a/step": [4, 0, 0], "a/neuron": [1, 2, 0]})
    got = read_inputs(path, SOURCES)
    assert list(got) == ["a"]
    np.testing.assert_array_equal(got["a"][0], [0, 0, 4])
    np.testing.assert_array_equal(got["a"][1], [0, 2, 1])


def test_a_spike_file_replays_the_populations_named_like_sources(tmp_path: Path) -> None:
    path = tmp_path / "spikes.npz"
    np.savez(
        path,
        populations=np.array(["x", "b"]),
        population=np.array([0, 1, 1]),
        step=np.array([0, 2, 5]),
        neuron=np.array([0, 1, 0]),
    )
    got = read_inputs(path, SOURCES)
    np.testing.assert_array_equal(got["b"][0], [2, 5])
    np.testing.assert_array_equal(got["b"][1], [1, 0])


def test_dense_and_plain_arrays_drive_the_only_source(tmp_path: Path) -> None:
    dense = np.zeros((4, 3), dtype=np.uint8)
    dense[1, 2] = dense[3, 0] = 1
    np.save(tmp_path / "d.npy", dense)
    got = read_inputs(tmp_path / "d.npy", {"a": 3})
    np.testing.assert_array_equal(got["a"][0], [1, 3])
    np.testing.assert_array_equal(got["a"][1], [2, 0])
    np.savez(tmp_path / "p.npz", step=[2], neuron=[1])
    assert read_inputs(tmp_path / "p.npz", {"a": 3})["a"][0].tolist() == [2]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"c/step": [0], "c/neuron": [0]}, "'c' is not an input of the network; its inputs"),
        ({"a/step": [0]}, "'a' needs both a/step and a/neuron"),
        ({"a/step": [0], "a/neuron": [3]}, "spike 0 is (step 0, neuron 3); accepted steps >= 0"),
        ({"a/step": [1, 1], "a/neuron": [2, 2]}, "'a': a neuron spikes twice in one step"),
        (
            {"step": [0], "neuron": [0]},
            "drive a network's only input, but this network has 2",
        ),
        ({"x/y": [0]}, "array 'x/y' is not <population>/step, <population>/neuron"),
    ],
)
def test_refusals(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError) as e:
        read_inputs(path, SOURCES)
    assert message in str(e.value)


def test_dense_of_the_wrong_width(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.zeros((5, 4)))
    with pytest.raises(InputError, match=r"a dense array of 4 columns for 'a', which has 3"):
        read_inputs(tmp_path / "d.npy", {"a": 3})


def test_a_yaml_network_driven_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIKEFAB_CACHE", str(tmp_path / "cache"))
    dense = np.zeros((50, 20), dtype=bool)
    dense[10, :] = True
    np.save(tmp_path / "volley.npy", dense)
    path, _ = network_file(EXAMPLES / "synfire.yaml", input_file=tmp_path / "volley.npy")
    net = load(path)
    src = net.populations["stimulus"].source
    np.testing.assert_array_equal(np.unique(src.steps), [10])
    # the volley goes down the chain as the example's own stimulus does, 5 steps later
    ours = GoldenModel(net).run(60)
    theirs = GoldenModel(load(EXAMPLES / "synfire.yaml")).run(55)
    g1 = net.populations["group1"].index
    assert ours.step[ours.population == g1].min() == theirs.step[theirs.population == g1].min() + 5
    # YAML without inputs is loaded as it is; --dt-ms is for NIR graphs only
    assert network_file(EXAMPLES / "synfire.yaml") == (EXAMPLES / "synfire.yaml", [])
    with pytest.raises(ValueError, match="--dt-ms applies to NIR graphs"):
        network_file(EXAMPLES / "synfire.yaml", dt_ms=1.0)
