"""The memory image of a single neuron core holding a whole network.

Every LIF neuron of the network gets a core neuron (populations in order); every neuron
with outgoing synapses, spike sources first, gets an axon. Synapse entries are grouped by
axon. This is the image a core regression loads; the multi-core mapper builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spikefab.hdl.layouts import NEURON_PARAMS, NEURON_STATE, CoreConfig, CoreMem, pack
from spikefab.mapping.network import Network

__all__ = ["CoreImage", "FitError", "single_core_image"]


class FitError(ValueError):
    """A network does not fit the hardware; the message says which limit and by how much."""


@dataclass
class CoreImage:
    """Words of every memory of one core, and where each network neuron lives.

    Attributes
    ----------
    words
        Memory -> list of packed words (address order); memories not listed are zero.
    neuron_of
        For every population, the core neuron of each of its neurons (``-1`` for sources).
    axon_of
        For every population, the axon of each of its neurons (``-1`` without synapses).
    """

    config: CoreConfig
    words: dict[CoreMem, list[int]]
    neuron_of: dict[str, np.ndarray]
    axon_of: dict[str, np.ndarray]
    n_neurons: int
    n_axons: int
    n_entries: int


def single_core_image(net: Network, config: CoreConfig) -> CoreImage:
    """Place a whole network on one core and pack the core's memories.

    Raises
    ------
    FitError
        When the network needs more neurons, axons, synapse entries or delay slots than the
        core has.
    """
    neuron_of: dict[str, np.ndarray] = {}
    axon_of: dict[str, np.ndarray] = {}
    n_lif = 0
    for p in net.populations.values():
        if p.is_source:
            neuron_of[p.name] = np.full(p.size, -1, dtype=np.int64)
        else:
            neuron_of[p.name] = np.arange(n_lif, n_lif + p.size, dtype=np.int64)
            n_lif += p.size
    has_out = {name: np.zeros(p.size, dtype=bool) for name, p in net.populations.items()}
    for pr in net.projections:
        has_out[pr.pre][pr.pre_idx] = True
    n_ax = 0
    order = sorted(net.populations.values(), key=lambda p: (not p.is_source, p.index))
    for p in order:
        ax = np.full(p.size, -1, dtype=np.int64)
        k = int(has_out[p.name].sum())
        ax[has_out[p.name]] = np.arange(n_ax, n_ax + k)
        axon_of[p.name] = ax
        n_ax += k
    problems = []
    if n_lif > config.neurons:
        problems.append(
            f"{n_lif} neurons; the core holds {config.neurons} ({n_lif - config.neurons} too many)"
        )
    if n_ax > config.axons:
        problems.append(
            f"{n_ax} axons; the core has {config.axons} ({n_ax - config.axons} too many)"
        )
    if net.n_synapses > config.synapses:
        problems.append(
            f"{net.n_synapses} synapse entries; the core holds {config.synapses} "
            f"({net.n_synapses - config.synapses} too many)"
        )
    if net.max_delay > config.delay_slots:
        problems.append(
            f"delays up to {net.max_delay} steps; the core has {config.delay_slots} delay slots"
        )
    # contract 3.3: the exact sum of a neuron's inputs must fit the accumulator
    worst = np.zeros(max(n_lif, 1), dtype=np.int64)
    for pr in net.projections:
        np.add.at(worst, neuron_of[pr.post][pr.post_idx], np.abs(pr.weight) << pr.weight_exp)
    if n_lif and worst.max() > config.acc_limit:
        k = int(np.argmax(worst))
        pop = next(
            p for p in net.populations.values() if not p.is_source and k in neuron_of[p.name]
        )
        idx = int(np.flatnonzero(neuron_of[pop.name] == k)[0])
        problems.append(
            f"neuron {idx} of {pop.name!r} can receive a sum of {int(worst[k])} in one step; "
            f"the core's {config.acc_bits}-bit accumulator holds {config.acc_limit} "
            f"(use acc_bits >= {int(worst[k]).bit_length() + 1})"
        )
    if any(pr.stdp is not None for pr in net.projections):
        problems.append("plastic projections; the core has no learning unit yet")
    if problems:
        raise FitError(f"network {net.name!r} does not fit one core: needs " + "; ".join(problems))

    # synapse entries, grouped by axon
    axon = np.concatenate([axon_of[pr.pre][pr.pre_idx] for pr in net.projections] or [[]])
    target = np.concatenate([neuron_of[pr.post][pr.post_idx] for pr in net.projections] or [[]])
    weight = np.concatenate([pr.weight for pr in net.projections] or [[]])
    wexp = np.concatenate([np.full(pr.n_synapses, pr.weight_exp) for pr in net.projections] or [[]])
    delay = np.concatenate([pr.delay for pr in net.projections] or [[]])
    order_e = np.argsort(axon, kind="stable")
    axon, target, weight, wexp, delay = (
        x[order_e].astype(np.int64) for x in (axon, target, weight, wexp, delay)
    )
    starts = np.searchsorted(axon, np.arange(n_ax))
    counts = np.bincount(axon, minlength=n_ax) if axon.size else np.zeros(n_ax, np.int64)

    words: dict[CoreMem, list[int]] = {}
    syn_layout, ax_layout = config.synapse_layout, config.axon_layout
    words[CoreMem.SYNAPSES] = [
        pack(syn_layout, {"target": t, "weight": w, "weight_exp": e, "delay": d - 1})
        for t, w, e, d in zip(target, weight, wexp, delay, strict=True)
    ]
    words[CoreMem.AXONS] = [
        pack(ax_layout, {"start": int(s) if c else 0, "count": int(c)})
        for s, c in zip(starts, counts, strict=True)
    ]
    params = []
    for p in net.populations.values():
        if p.neuron is None:
            continue
        n = p.neuron
        word = pack(
            NEURON_PARAMS,
            {
                "du": n.du,
                "dv": n.dv,
                "vth": n.vth,
                "bias_mant": n.bias_mant,
                "bias_exp": n.bias_exp,
                "refractory": n.refractory,
                "reset_subtract": int(n.reset == "subtract"),
            },
        )
        params += [word] * p.size
    words[CoreMem.PARAMS] = params
    words[CoreMem.STATE] = [pack(NEURON_STATE, {"u": 0, "v": 0, "ref": 0})] * n_lif
    return CoreImage(config, words, neuron_of, axon_of, n_lif, n_ax, int(axon.size))
