"""Spike rasters and probe traces as PNG (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from spikefab.mapping.plot import pyplot
from spikefab.sim.results import RunResult

__all__ = ["plot_result"]


def plot_result(result: RunResult, path: str | Path) -> None:
    """Draw the spike raster of every population and each probe's traces to a PNG.

    Populations are stacked bottom to top in index order, each in its own colour, with
    their names on the y axis; probes follow as line plots against the step.
    """
    plt = pyplot()
    traces = [t for t in result.probes.values() if t.values.size]
    rows = 1 + len(traces)
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(10, 4 + 1.8 * len(traces)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3] + [1] * len(traces)},
    )
    ax = axes[0, 0]
    offsets = np.concatenate([[0], np.cumsum(result.population_sizes)])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    total = offsets[-1]
    marker = max(0.5, min(4.0, 2000.0 / max(1, total)))
    for k, name in enumerate(result.populations):
        steps, neurons = result.spikes_of(name)
        ax.scatter(
            steps,
            neurons + offsets[k],
            s=marker,
            marker="|" if total < 400 else ".",
            color=colors[k % len(colors)],
            linewidths=0.8,
        )
        if k:
            ax.axhline(offsets[k] - 0.5, color="0.85", lw=0.5)
    ax.set_yticks((offsets[:-1] + offsets[1:]) / 2, result.populations)
    ax.set_ylim(-0.5, total - 0.5)
    ax.set_xlim(-0.5, result.steps - 0.5)
    ax.set_title(
        f"{result.network}: {result.n_spikes} spikes in {result.steps} steps "
        f"({result.backend}, dt {result.dt_ms:g} ms)"
    )
    for i, tr in enumerate(traces, start=1):
        a = axes[i, 0]
        vals = tr.values.reshape(tr.values.shape[0], -1)
        for j in range(min(vals.shape[1], 16)):
            a.plot(tr.steps, vals[:, j], lw=0.8, label=f"{tr.index[j]}")
        a.set_ylabel(f"{tr.target}\n{tr.variable}")
        if vals.shape[1] <= 8:
            a.legend(fontsize=6, loc="upper right", ncol=min(vals.shape[1], 8))
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
