"""Make the input of the STDP pattern demo: a repeated spike pattern hidden in Poisson noise.

Run it (it needs numpy only and is deterministic; the output goes beside this script)::

    python examples/make_stdp_pattern.py            # writes examples/stdp_pattern_input.npz
    python examples/make_stdp_pattern.py -o other.npz

It writes the spike file that ``examples/stdp_pattern.yaml`` reads as a spike source
(``file: stdp_pattern_input.npz``), in the spirit of Masquelier, Guyonneau & Thorpe (2008),
scaled down:

- ``N_AFFERENTS`` afferents fire Poisson background at ``RATE_HZ`` (one Bernoulli draw per
  afferent and 1 ms step, so no afferent ever spikes twice in one step);
- half of them (``pattern_neurons``, chosen at random) take part in a frozen pattern of
  ``PATTERN_LENGTH`` steps in which each of them fires exactly once, at a fixed random
  offset. ``1000 / PATTERN_LENGTH`` Hz equals ``RATE_HZ``, so the pattern afferents keep
  their mean rate and the input's population rate does not change during a pattern: the
  pattern is visible only in the timing of the spikes;
- the pattern is pasted in at random onsets (``pattern_onsets``), separated by gaps of
  ``MIN_GAP .. MAX_GAP`` steps of pure noise (so presentations never overlap or touch), which
  puts about a third of the time inside patterns. During a presentation the pattern
  afferents replay the pattern (their background is replaced) while the other afferents
  keep firing Poisson noise; every spike of the pattern is moved by ``JITTER`` steps at most,
  independently at each presentation.

Arrays in the ``.npz`` file (the loader reads only ``step`` and ``neuron``):

| array | meaning |
|---|---|
| ``step``, ``neuron`` | the spikes, sorted by step then neuron (int32, int16) |
| ``n_afferents``, ``n_steps`` | size of the source population, length of the input |
| ``pattern_neurons`` | sorted afferent indices that take part in the pattern |
| ``pattern_offsets`` | offset of each pattern neuron's spike in the pattern, same order |
| ``pattern_onsets`` | first step of every presentation |
| ``pattern_length`` | steps in one presentation |
| ``rate_hz``, ``jitter``, ``seed`` | the generator's settings |
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

N_AFFERENTS = 200
N_STEPS = 20000
RATE_HZ = 20.0
PATTERN_LENGTH = 50
PATTERN_FRACTION = 0.5
MIN_GAP = 50
MAX_GAP = 150
JITTER = 1
SEED = 2008

OUTPUT = Path(__file__).with_name("stdp_pattern_input.npz")


def make(
    n_afferents: int = N_AFFERENTS,
    n_steps: int = N_STEPS,
    rate_hz: float = RATE_HZ,
    pattern_length: int = PATTERN_LENGTH,
    pattern_fraction: float = PATTERN_FRACTION,
    min_gap: int = MIN_GAP,
    max_gap: int = MAX_GAP,
    jitter: int = JITTER,
    seed: int = SEED,
) -> dict[str, np.ndarray]:
    """Return the arrays of the input file (see the module docstring)."""
    rng = np.random.default_rng(seed)
    spikes = rng.random((n_steps, n_afferents)) < rate_hz / 1000.0

    n_pat = round(n_afferents * pattern_fraction)
    pattern_neurons = np.sort(rng.choice(n_afferents, size=n_pat, replace=False))
    offsets = rng.integers(0, pattern_length, size=n_pat)

    onsets = []
    t = int(rng.integers(min_gap, max_gap + 1))
    while t + pattern_length + jitter <= n_steps:
        onsets.append(t)
        t += pattern_length + int(rng.integers(min_gap, max_gap + 1))
    pattern_onsets = np.asarray(onsets, dtype=np.int64)

    for t0 in pattern_onsets:
        # the pattern afferents' own noise is replaced by the pattern, jitter included
        lo, hi = max(t0 - jitter, 0), t0 + pattern_length + jitter
        spikes[lo:hi, pattern_neurons] = False
        shift = rng.integers(-jitter, jitter + 1, size=n_pat) if jitter else 0
        spikes[np.clip(t0 + offsets + shift, 0, n_steps - 1), pattern_neurons] = True

    step, neuron = np.nonzero(spikes)  # row-major: sorted by step, then neuron
    return {
        "step": step.astype(np.int32),
        "neuron": neuron.astype(np.int16),
        "n_afferents": np.asarray(n_afferents),
        "n_steps": np.asarray(n_steps),
        "pattern_neurons": pattern_neurons.astype(np.int16),
        "pattern_offsets": offsets.astype(np.int16),
        "pattern_onsets": pattern_onsets.astype(np.int32),
        "pattern_length": np.asarray(pattern_length),
        "rate_hz": np.asarray(rate_hz),
        "jitter": np.asarray(jitter),
        "seed": np.asarray(seed),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = ap.parse_args()
    arrays = make()
    np.savez_compressed(args.output, **arrays)
    onsets, length = arrays["pattern_onsets"], int(arrays["pattern_length"])
    n_steps = int(arrays["n_steps"])
    n_spikes, n_aff = arrays["step"].size, int(arrays["n_afferents"])
    print(
        f"{args.output}: {n_spikes} spikes from {n_aff} afferents over {n_steps} steps "
        f"({n_spikes / n_steps / n_aff * 1e3:.1f} Hz mean); "
        f"{arrays['pattern_neurons'].size} pattern afferents; {onsets.size} "
        f"presentations of {length} steps ({onsets.size * length / n_steps:.0%} of the time); "
        f"{args.output.stat().st_size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
