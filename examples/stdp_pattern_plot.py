"""Plot what the neuron of ``examples/stdp_pattern.yaml`` learned, and print the figures.

Run the network, then this script on its spike file::

    spikefab run examples/stdp_pattern.yaml --steps 20000 -o stdp.npz
    python examples/stdp_pattern_plot.py stdp.npz -o stdp.png

It reads the spike file (the weights probe of the plastic projection and the neuron's
spikes) and the input file ``stdp_pattern_input.npz`` (which afferents form the pattern,
where each of them fires in it, and when it is presented), prints the learning figures and
draws a PNG with

(a) the weights of pattern and other afferents over time: means and a few single synapses;
(b) the final weight of every afferent, coloured by membership of the pattern;
(c) the neuron's spikes against the pattern windows, in the first and the last 2 s;
(d) the latency of the neuron's first spike in each presentation, over the run;
(e) the final weight of each pattern afferent against the offset of its spike in the
    pattern, with the latencies of the neuron's spikes in the last 5 s.

A *pattern window* is the span of steps in which a presentation's spikes reach the neuron:
from its onset to onset + length + jitter (the synapses have a delay of one step). A
presentation is *hit* when the neuron spikes in its window. With several neurons in the
population, neuron 0 is shown.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from spikefab.sim.results import RunResult, load_result

INPUT = Path(__file__).with_name("stdp_pattern_input.npz")
PATTERN_COLOUR = "tab:red"
OTHER_COLOUR = "tab:blue"


@dataclass
class Pattern:
    """The pattern of the input file and its presentations."""

    neurons: np.ndarray  # afferents in the pattern
    offsets: np.ndarray  # offset of each one's spike in the pattern
    onsets: np.ndarray  # first step of every presentation
    length: int
    jitter: int
    n_afferents: int

    @classmethod
    def load(cls, path: Path) -> Pattern:
        with np.load(path) as f:
            return cls(
                neurons=f["pattern_neurons"].astype(np.int64),
                offsets=f["pattern_offsets"].astype(np.int64),
                onsets=f["pattern_onsets"].astype(np.int64),
                length=int(f["pattern_length"]),
                jitter=int(f["jitter"]),
                n_afferents=int(f["n_afferents"]),
            )

    @property
    def is_member(self) -> np.ndarray:
        member = np.zeros(self.n_afferents, dtype=bool)
        member[self.neurons] = True
        return member

    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the first and last step (inclusive) of every pattern window."""
        return self.onsets, self.onsets + self.length + self.jitter

    def window_of(self, steps: np.ndarray) -> np.ndarray:
        """Return the index of the window holding each step, or -1."""
        lo, hi = self.windows()
        k = np.searchsorted(lo, steps, side="right") - 1
        inside = (k >= 0) & (steps <= hi[np.maximum(k, 0)])
        return np.where(inside, k, -1)


def _spikes(result: RunResult, population: str) -> np.ndarray:
    steps, neurons = result.spikes_of(population)
    return steps[neurons == 0]


def _final(result: RunResult, projection: str) -> np.ndarray:
    if projection in result.weights:
        return result.weights[projection]
    return result.probes[f"{projection}/weights"].values[-1]


def _per_afferent(w: np.ndarray, pat: Pattern) -> np.ndarray:
    """Return the weights onto post neuron 0, one per afferent (all_to_all, pre-major order)."""
    n_post = w.shape[-1] // pat.n_afferents
    return w[..., ::n_post]


def selectivity(spikes: np.ndarray, pat: Pattern, t0: int, t1: int, dt_ms: float) -> dict:
    """Return firing figures of the neuron over steps ``t0 .. t1 - 1``."""
    s = spikes[(spikes >= t0) & (spikes < t1)]
    win = pat.window_of(s)
    lo, hi = pat.windows()
    full = np.flatnonzero((lo >= t0) & (hi < t1))
    covered = np.zeros(t1 - t0, dtype=bool)
    for a, b in zip(lo, hi, strict=True):
        covered[max(a - t0, 0) : max(min(b + 1, t1) - t0, 0)] = True
    outside_s = (~covered).sum() * dt_ms / 1000.0
    first = {k: int(s[win == k][0] - lo[k]) for k in np.unique(win[win >= 0])}
    return {
        "spikes": int(s.size),
        "rate_hz": s.size / ((t1 - t0) * dt_ms / 1000.0),
        "in_windows": float((win >= 0).mean()) if s.size else float("nan"),
        "chance": float(covered.mean()),
        "hit_rate": float(np.isin(full, win).mean()) if full.size else float("nan"),
        "presentations": int(full.size),
        "false_per_s": float((win < 0).sum() / outside_s) if outside_s else float("nan"),
        "latency": float(np.median(list(first.values()))) if first else float("nan"),
    }


def report(result: RunResult, pat: Pattern, projection: str, population: str) -> dict:
    """Print the learning figures and return them."""
    dt = result.dt_ms
    spikes = _spikes(result, population)
    w = _per_afferent(_final(result, projection), pat)
    member = pat.is_member
    n = result.steps
    start = (0, min(2000, n // 4))
    end = (_late_start(n), n)
    figs = {
        "w_pattern": float(w[member].mean()),
        "w_other": float(w[~member].mean()),
        "start": selectivity(spikes, pat, *start, dt),
        "end": selectivity(spikes, pat, *end, dt),
    }
    print(
        f"{result.network}: {n} steps, {spikes.size} spikes of {population!r}, "
        f"{pat.onsets.size} presentations of a {pat.length}-step pattern "
        f"({member.sum()} of {pat.n_afferents} afferents)"
    )
    print(
        f"final weights: pattern afferents mean {w[member].mean():.1f}, others mean "
        f"{w[~member].mean():.1f} (ratio {w[member].mean() / max(w[~member].mean(), 1e-9):.1f}); "
        f"others at 0: {(w[~member] == 0).mean():.0%}, <= 5: {(w[~member] <= 5).mean():.0%}; "
        f"pattern afferents >= 100: {(w[member] >= 100).sum()}"
    )
    for name, (t0, t1) in (("start", start), ("end", end)):
        f = figs[name]
        print(
            f"{name:5s} steps {t0}..{t1 - 1}: {f['spikes']} spikes ({f['rate_hz']:.1f} Hz), "
            f"{f['in_windows']:.0%} in pattern windows (chance {f['chance']:.0%}), "
            f"{f['hit_rate']:.0%} of {f['presentations']} presentations hit, "
            f"{f['false_per_s']:.1f} spikes/s outside, "
            f"median latency {f['latency']:g} steps"
        )
    return figs


def _late_start(n: int) -> int:
    """Return the first step of the "end" period: the last 5000 steps (or quarter)."""
    return max(n - 5000, n * 3 // 4)


def draw(result: RunResult, pat: Pattern, projection: str, population: str, out: Path) -> None:
    """Draw the panels to ``out``."""
    dt = result.dt_ms
    member = pat.is_member
    trace = result.probes[f"{projection}/weights"]
    vals = _per_afferent(trace.values, pat)
    final = _per_afferent(_final(result, projection), pat)
    spikes = _spikes(result, population)
    n = result.steps

    fig = Figure(figsize=(13, 12), layout="constrained")
    gs = fig.add_gridspec(3, 2, height_ratios=[1, 0.5, 1])
    _weights_over_time(fig.add_subplot(gs[0, 0]), trace.steps * dt / 1000.0, vals, final, member)
    _final_weights(fig.add_subplot(gs[0, 1]), final, member)
    span = min(2000, n // 2)
    for col, (t0, name) in enumerate(((0, "start"), (n - span, "end"))):
        _spikes_vs_windows(fig.add_subplot(gs[1, col]), spikes, pat, t0, t0 + span, dt, name)
    _latency(fig.add_subplot(gs[2, 0]), spikes, pat, n, dt)
    _weight_vs_offset(fig.add_subplot(gs[2, 1]), spikes, pat, final, n, dt)
    fig.suptitle(
        f"{result.network}: STDP finds a repeating spike pattern ({member.sum()} of "
        f"{pat.n_afferents} afferents, {pat.length} steps) hidden in Poisson noise"
    )
    fig.savefig(out, dpi=110)


def _weights_over_time(
    ax: Axes, t_s: np.ndarray, vals: np.ndarray, final: np.ndarray, member: np.ndarray
) -> None:
    rng = np.random.default_rng(0)
    pat_idx, other_idx = np.flatnonzero(member), np.flatnonzero(~member)
    strong = pat_idx[final[pat_idx] >= 100]
    some = list(rng.choice(strong, size=min(3, strong.size), replace=False))
    rest = np.setdiff1d(pat_idx, some)
    some += list(rng.choice(rest, size=min(6 - len(some), rest.size), replace=False))
    for i in some:
        ax.plot(t_s, vals[:, i], color=PATTERN_COLOUR, lw=0.7, alpha=0.45)
    for i in rng.choice(other_idx, size=min(6, other_idx.size), replace=False):
        ax.plot(t_s, vals[:, i], color=OTHER_COLOUR, lw=0.7, alpha=0.45)
    for sel, colour, what in (
        (member, PATTERN_COLOUR, "pattern"),
        (~member, OTHER_COLOUR, "other"),
    ):
        ax.plot(
            t_s,
            vals[:, sel].mean(axis=1),
            color=colour,
            lw=2.5,
            label=f"{what} afferents ({sel.sum()}): mean",
        )
    ax.set(
        xlabel="time (s)",
        ylabel="weight mantissa",
        ylim=(-3, 130),
        title="(a) weights over time (thin lines: 6 single synapses of each kind)",
    )
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)


def _final_weights(ax: Axes, final: np.ndarray, member: np.ndarray) -> None:
    x = np.arange(final.size)
    ax.bar(x[member], final[member], width=1.0, color=PATTERN_COLOUR, label="pattern afferent")
    ax.bar(x[~member], final[~member], width=1.0, color=OTHER_COLOUR, label="other afferent")
    ax.set(
        xlabel="afferent",
        ylabel="final weight mantissa",
        ylim=(0, 130),
        xlim=(-1, x.size),
        title=f"(b) final weights: pattern afferents mean {final[member].mean():.1f}, "
        f"others {final[~member].mean():.1f}",
    )
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)


def _spikes_vs_windows(
    ax: Axes, spikes: np.ndarray, pat: Pattern, t0: int, t1: int, dt: float, name: str
) -> None:
    lo, hi = pat.windows()
    for a, b in zip(lo, hi, strict=True):
        if b >= t0 and a < t1:
            ax.axvspan(
                a * dt / 1000.0, (b + 1) * dt / 1000.0, color=PATTERN_COLOUR, alpha=0.18, lw=0
            )
    s = spikes[(spikes >= t0) & (spikes < t1)]
    inside = pat.window_of(s) >= 0
    ax.vlines(s[inside] * dt / 1000.0, 0, 1, color="black", lw=1.3, label="spike in a window")
    ax.vlines(s[~inside] * dt / 1000.0, 0, 1, color=OTHER_COLOUR, lw=1.3, label="spike outside")
    f = selectivity(spikes, pat, t0, t1, dt)
    ax.set(
        xlim=(t0 * dt / 1000.0, t1 * dt / 1000.0),
        ylim=(0, 1.3),
        yticks=[],
        xlabel="time (s)",
        title=f"(c) {name}: {f['spikes']} spikes, {f['in_windows']:.0%} in pattern windows "
        f"(shaded; chance {f['chance']:.0%}), {f['hit_rate']:.0%} of patterns hit",
    )
    ax.title.set_fontsize(10)
    ax.legend(loc="upper right", fontsize=7, ncols=2, framealpha=0.9)


def _latency(ax: Axes, spikes: np.ndarray, pat: Pattern, n: int, dt: float) -> None:
    lo, hi = pat.windows()
    win = pat.window_of(spikes)
    ks = np.unique(win[win >= 0])
    first = np.array([spikes[win == k][0] - lo[k] for k in ks])
    missed = np.setdiff1d(np.flatnonzero(hi < n), ks)
    ax.scatter(lo[ks] * dt / 1000.0, first, s=12, color=PATTERN_COLOUR, label="first spike")
    ax.scatter(
        lo[missed] * dt / 1000.0,
        np.full(missed.size, -3),
        marker="x",
        s=14,
        color="0.4",
        label="no spike (pattern missed)",
    )
    ax.set(
        xlabel="time of the presentation (s)",
        ylabel="latency (steps from the onset)",
        ylim=(-6, pat.length + pat.jitter + 2),
        title="(d) latency of the neuron's first spike in each presentation",
    )
    ax.legend(loc="best", fontsize=8, framealpha=0.9)


def _weight_vs_offset(
    ax: Axes, spikes: np.ndarray, pat: Pattern, final: np.ndarray, n: int, dt: float
) -> None:
    lo, _ = pat.windows()
    ax.scatter(pat.offsets, final[pat.neurons], s=14, color=PATTERN_COLOUR, label="final weight")
    late_from = _late_start(n)
    late = spikes[spikes >= late_from]
    win = pat.window_of(late)
    latency = late[win >= 0] - lo[win[win >= 0]]
    ax2 = ax.twinx()
    ax2.hist(
        latency,
        bins=np.arange(-0.5, pat.length + pat.jitter + 1.5),
        color="0.3",
        alpha=0.35,
        label=f"neuron's spikes after {late_from * dt / 1000.0:g} s, by latency",
    )
    ax2.set_ylabel("neuron's spikes")
    ax.set(
        xlabel="offset of the afferent's spike in the pattern / latency (steps)",
        ylabel="final weight mantissa",
        ylim=(-3, 130),
        xlim=(-2, pat.length + pat.jitter + 2),
        title="(e) final weight of each pattern afferent vs the offset of its spike",
    )
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="best", fontsize=8, framealpha=0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spikes", type=Path, help="spike file written by `spikefab run`")
    ap.add_argument("-i", "--input", type=Path, default=INPUT, help=f"default: {INPUT}")
    ap.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="PNG to write (default: beside the spike file)",
    )
    ap.add_argument(
        "--projection",
        default=None,
        help="plastic projection (default: the one with a weights probe)",
    )
    ap.add_argument("--population", default="neuron", help="the learning neuron's population")
    args = ap.parse_args()

    result = load_result(args.spikes)
    pat = Pattern.load(args.input)
    projection = args.projection
    if projection is None:
        probed = [t.target for t in result.probes.values() if t.variable == "weights"]
        if not probed:
            raise SystemExit(f"{args.spikes}: no weights probe; run examples/stdp_pattern.yaml")
        projection = probed[0]
    report(result, pat, projection, args.population)
    out = args.output or args.spikes.with_suffix(".png")
    draw(result, pat, projection, args.population, out)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
