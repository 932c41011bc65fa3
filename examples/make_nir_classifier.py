"""Write ``nir_classifier.nir``: a small spiking classifier as a NIR graph, with NIR's own API.

Three classes of input patterns over 24 input neurons: a sample of class ``k`` makes the
eight inputs ``8k .. 8k+7`` fire at 150 Hz and the others at 10 Hz. A hidden layer of 16
current-based LIF neurons (``CubaLIF``) detects the patterns, an output layer of 3 ``LIF``
neurons votes (the class is the output neuron with the most spikes) and 3 leaky integrators
(``LI``) give a non-spiking readout of the same vote.

The weights are made here, not trained: hidden neuron ``j`` listens to the inputs of class
``j mod 3`` (plus noise), output ``k`` to the hidden neurons of class ``k`` and against the
others. The graph records its step (1 ms) and the input spikes of three samples, one per
class, 60 steps each, in spikefab's metadata (``docs/nir.md``); the same spikes are also
written to ``nir_classifier_input.npz`` for ``--input``.

Run from the repository root::

    python examples/make_nir_classifier.py
    spikefab compare examples/nir_classifier.nir
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np

HERE = Path(__file__).parent
DT_MS = 1.0
N_IN, N_HID, N_OUT, CLASSES = 24, 16, 3, 3
SAMPLE_STEPS = 60
SEED = 2024


def weights(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three weight matrices, (out, in) as NIR's Linear and Affine nodes hold them."""
    w1 = rng.normal(0.0, 0.05, (N_HID, N_IN))
    for j in range(N_HID):
        k = j % CLASSES
        w1[j, 8 * k : 8 * k + 8] += rng.uniform(0.25, 0.4, 8)
    w2 = np.full((N_OUT, N_HID), -0.4)
    w3 = np.full((N_OUT, N_HID), -0.1)
    for j in range(N_HID):
        w2[j % CLASSES, j] = rng.uniform(0.8, 1.1)
        w3[j % CLASSES, j] = 0.5
    return w1, w2, w3


def samples(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input spikes of one sample per class: (step, neuron) arrays and each sample's label."""
    steps, neurons = [], []
    labels = np.arange(CLASSES)
    for s, k in enumerate(labels):
        rate = np.full(N_IN, 10.0)
        rate[8 * k : 8 * k + 8] = 150.0
        spikes = rng.random((SAMPLE_STEPS, N_IN)) < rate * DT_MS / 1000.0
        t, i = np.nonzero(spikes)
        steps.append(t + s * SAMPLE_STEPS)
        neurons.append(i)
    return np.concatenate(steps), np.concatenate(neurons), labels


def graph() -> nir.NIRGraph:
    rng = np.random.default_rng(SEED)
    w1, w2, w3 = weights(rng)
    step, neuron, _ = samples(rng)
    dt = DT_MS / 1000.0  # NIR times are in seconds

    def full(n: int, x: float) -> np.ndarray:
        return np.full(n, float(x))

    tau_syn, tau_mem = 0.005, 0.02
    source = {"source": {"kind": "explicit", "steps": step.tolist(), "neurons": neuron.tolist()}}
    nodes = {
        "input": nir.Input(np.array([N_IN]), metadata={"spikefab": json.dumps(source)}),
        "fc1": nir.Affine(weight=w1, bias=np.zeros(N_HID)),
        "hidden": nir.CubaLIF(
            tau_syn=full(N_HID, tau_syn),
            tau_mem=full(N_HID, tau_mem),
            # R = tau_mem / dt and w_in = tau_syn / dt: each weight adds itself to the current,
            # and the current adds itself to v, every step (the snnTorch convention)
            r=full(N_HID, tau_mem / dt),
            w_in=full(N_HID, tau_syn / dt),
            v_leak=full(N_HID, 0.0),
            v_threshold=full(N_HID, 1.0),
            v_reset=full(N_HID, 0.0),
        ),
        "fc2": nir.Linear(weight=w2),
        "vote": nir.LIF(
            tau=full(N_OUT, tau_mem),
            r=full(N_OUT, tau_mem / dt),
            v_leak=full(N_OUT, 0.0),
            v_threshold=full(N_OUT, 1.5),
            v_reset=full(N_OUT, 0.0),
        ),
        "fc3": nir.Linear(weight=w3),
        "readout": nir.LI(
            tau=full(N_OUT, tau_mem), r=full(N_OUT, tau_mem / dt), v_leak=full(N_OUT, 0.0)
        ),
        "vote_out": nir.Output(np.array([N_OUT])),
        "readout_out": nir.Output(np.array([N_OUT])),
    }
    edges = [
        ("input", "fc1"),
        ("fc1", "hidden"),
        ("hidden", "fc2"),
        ("fc2", "vote"),
        ("vote", "vote_out"),
        ("hidden", "fc3"),
        ("fc3", "readout"),
        ("readout", "readout_out"),
    ]
    meta = {"spikefab": json.dumps({"name": "nir_classifier", "dt_ms": DT_MS})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def main() -> None:
    nir.write(HERE / "nir_classifier.nir", graph())
    rng = np.random.default_rng(SEED)
    weights(rng)
    step, neuron, labels = samples(rng)
    np.savez(HERE / "nir_classifier_input.npz", step=step, neuron=neuron)
    print(f"{HERE / 'nir_classifier.nir'}: {N_IN} inputs, {N_HID} hidden, {N_OUT} outputs")
    print(f"{HERE / 'nir_classifier_input.npz'}: {step.size} spikes, labels {labels.tolist()}")


if __name__ == "__main__":
    main()
