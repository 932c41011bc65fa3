"""A mapping drawn to PNG: where the neurons are and the traffic between cores.

Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from spikefab.mapping.mapper import Mapping

__all__ = ["plot_mapping", "pyplot"]


def pyplot():  # type: ignore[no-untyped-def]
    """Return ``matplotlib.pyplot`` on the Agg backend (files, no screen).

    Raises
    ------
    RuntimeError
        When matplotlib is not installed, saying how to install it.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install 'spikefab[plot]'") from None
    return plt


def plot_mapping(m: Mapping, path: str | Path) -> None:
    """Draw the placement and the traffic of a mapping to a PNG.

    Left: the neurons of each core, stacked by population, over the use of the core's axons
    and synapse entries (as a share of each limit). Right: the spike events per step (or
    routes, without firing rates) from each core (rows) to each core (columns), the host's
    sources in the last row and the host in the last column, on a log scale.
    """
    plt = pyplot()
    from matplotlib.colors import LogNorm

    hw, c = m.hardware, m.hardware.core
    used = np.flatnonzero([t.neurons or t.axons for t in m.cores])
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]}, constrained_layout=True
    )
    x = np.arange(used.size)
    bottom = np.zeros(used.size)
    cmap = plt.get_cmap("tab20")
    core_of = m.core_of()
    for i, (name, cores) in enumerate(core_of.items()):
        counts = np.bincount(cores, minlength=hw.cores)[used] / c.neurons
        ax.bar(x, counts, bottom=bottom, color=cmap(i % 20), width=0.8, label=name)
        bottom += counts
    axons = np.array([m.cores[k].axons for k in used]) / c.axons
    entries = np.array([m.cores[k].entries for k in used]) / c.synapses
    ax.plot(x, axons, "k^", markersize=4, label="axons used")
    ax.plot(x, entries, "kv", markersize=4, label="synapse entries used")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("core")
    ax.set_ylabel("share of the core's limit")
    ticks = x if used.size <= 32 else x[:: max(1, used.size // 16)]
    ax.set_xticks(ticks, [str(used[t]) for t in ticks])
    ax.set_title(
        f"{m.net.name}: {m.flat.n} neurons on {used.size} of {hw.cores} cores ({m.stats['method']})"
    )
    if len(core_of) <= 20:
        ax.legend(fontsize="small", ncols=2, loc="upper right")
    rows = np.append(used, hw.cores)
    t = m.traffic[np.ix_(rows, rows)]
    shown = np.where(t > 0, t, np.nan)
    vmin = np.nanmin(shown) if np.isfinite(shown).any() else 1.0
    vmax = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    im = bx.imshow(shown, cmap="viridis", norm=LogNorm(vmin=vmin, vmax=max(vmax, vmin * 1.01)))
    what = "events per step" if m.rates is not None else "routes (events if every sender spikes)"
    fig.colorbar(im, ax=bx, label=what)
    labels = [str(k) for k in used] + ["host"]
    if rows.size <= 32:
        bx.set_xticks(np.arange(rows.size), labels, rotation=90, fontsize="small")
        bx.set_yticks(np.arange(rows.size), labels, fontsize="small")
    bx.set_xlabel("to core")
    bx.set_ylabel("from core")
    if m.rates is not None:
        bx.set_title(f"traffic: {m.stats['inter_core_events']:.1f} inter-core events per step")
    else:
        bx.set_title(f"traffic: {m.stats['inter_core_routes']} inter-core routes")
    fig.savefig(path, dpi=110)
    plt.close(fig)
