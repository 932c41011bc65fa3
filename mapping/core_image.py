"""The memory image of a single neuron core holding a whole network.

Every LIF neuron of the network gets a core neuron (populations in order); every neuron
with outgoing synapses, spike sources first, gets an axon, and a second one if it has both
plastic and static synapses: plastic axons come first (contract 6.4). Synapse entries are
grouped by axon. This is the image a core regression loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from spikefab.hdl.layouts import (
    NEURON_PARAMS,
    NEURON_STATE,
    POST_TRACE,
    CoreConfig,
    CoreMem,
    CoreReg,
    pack,
)
from spikefab.mapping.network import Network, STDPParams

__all__ = ["CoreImage", "FitError", "learning_registers", "post_trace_seed", "single_core_image"]


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
        For every population, the axon of each of its neurons that carries its static
        synapses (``-1``: none).
    plastic_axon_of
        The same for plastic synapses.
    entry_of
        For every projection, the synapse entry of each of its synapses.
    regs
        Register values to write (the learning rule).
    """

    config: CoreConfig
    words: dict[CoreMem, list[int]]
    neuron_of: dict[str, np.ndarray]
    axon_of: dict[str, np.ndarray]
    n_neurons: int
    n_axons: int
    n_entries: int
    plastic_axon_of: dict[str, np.ndarray] = field(default_factory=dict)
    entry_of: dict[str, np.ndarray] = field(default_factory=dict)
    regs: dict[CoreReg, int] = field(default_factory=dict)

    def axons_of(self, pop: str) -> list[np.ndarray]:
        """The axons (static, plastic) of every neuron of ``pop``; ``-1`` where none."""
        none = np.full_like(self.axon_of[pop], -1)
        return [self.axon_of[pop], self.plastic_axon_of.get(pop, none)]


def rule_of(net: Network, where: str) -> STDPParams | None:
    """The one learning rule of the plastic projections of ``net`` (a core has one).

    Raises
    ------
    FitError
        When plastic projections differ in any rule parameter.
    """
    plastic = [pr for pr in net.projections if pr.stdp is not None]
    if not plastic:
        return None
    first = plastic[0]
    keys = ("a_plus", "a_minus", "d_pre", "d_post", "bump_pre", "bump_post", "shift")
    keys += ("w_min", "w_max", "stochastic_rounding", "seed")
    for pr in plastic[1:]:
        diff = [k for k in keys if getattr(pr.stdp, k) != getattr(first.stdp, k)]
        if diff:
            k = diff[0]
            raise FitError(
                f"{where} holds plastic projections {first.name!r} and {pr.name!r}, whose "
                f"rules differ in {', '.join(diff)} ({k} = {getattr(first.stdp, k)} and "
                f"{getattr(pr.stdp, k)}); a core has one learning rule: give them the same "
                "rule or place their targets on different cores"
            )
    return first.stdp


def learning_registers(rule: STDPParams, plastic_axons: int, learn_neurons: int) -> dict:
    """The register values of a learning core (contract 6.4)."""
    from spikefab.hdl.layouts import STDP_AMP, STDP_BUMP, STDP_CLAMP, STDP_DECAY

    return {
        CoreReg.STDP_AMP: pack(
            STDP_AMP,
            {
                "a_plus": rule.a_plus,
                "a_minus": rule.a_minus,
                "shift": rule.shift,
                "stochastic": int(rule.stochastic_rounding),
            },
        ),
        CoreReg.STDP_DECAY: pack(STDP_DECAY, {"d_pre": rule.d_pre, "d_post": rule.d_post}),
        CoreReg.STDP_BUMP: pack(
            STDP_BUMP, {"bump_pre": rule.bump_pre, "bump_post": rule.bump_post}
        ),
        CoreReg.STDP_CLAMP: pack(STDP_CLAMP, {"w_min": rule.w_min, "w_max": rule.w_max}),
        CoreReg.PLASTIC_AXONS: plastic_axons,
        CoreReg.LEARN_NEURONS: learn_neurons,
        CoreReg.LEARN_PENDING: 0,
    }


def post_trace_seed(rule: STDPParams, j: np.ndarray) -> np.ndarray:
    """The LFSR word a core stores for post-synaptic neuron ``j`` before its first learning
    phase: the seed of contract 5.4 advanced once (the core keeps the state the next phase
    uses)."""
    from spikefab.sim import arith

    return arith.lfsr_advance(arith.lfsr_seed(rule.seed, np.asarray(j)))


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
    has_plastic = {name: np.zeros(p.size, dtype=bool) for name, p in net.populations.items()}
    for pr in net.projections:
        (has_out if pr.stdp is None else has_plastic)[pr.pre][pr.pre_idx] = True
    n_ax = 0
    order = sorted(net.populations.values(), key=lambda p: (not p.is_source, p.index))
    plastic_axon_of: dict[str, np.ndarray] = {}
    for flags, out in ((has_plastic, plastic_axon_of), (has_out, axon_of)):
        for p in order:
            ax = np.full(p.size, -1, dtype=np.int64)
            k = int(flags[p.name].sum())
            ax[flags[p.name]] = np.arange(n_ax, n_ax + k)
            out[p.name] = ax
            n_ax += k
    n_plastic_axons = sum(int(f.sum()) for f in has_plastic.values())
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
    rule = rule_of(net, f"network {net.name!r} on one core")
    if rule is not None and not config.learning:
        name = next(pr.name for pr in net.projections if pr.stdp is not None)
        problems.append(
            f"a learning unit for plastic projection {name!r}; the core has none "
            "(a core with CoreConfig(learning=True) has one)"
        )
    if problems:
        raise FitError(f"network {net.name!r} does not fit one core: needs " + "; ".join(problems))

    # synapse entries, grouped by axon
    axon = np.concatenate(
        [
            (axon_of if pr.stdp is None else plastic_axon_of)[pr.pre][pr.pre_idx]
            for pr in net.projections
        ]
        or [[]]
    )
    target = np.concatenate([neuron_of[pr.post][pr.post_idx] for pr in net.projections] or [[]])
    weight = np.concatenate([pr.weight for pr in net.projections] or [[]])
    wexp = np.concatenate([np.full(pr.n_synapses, pr.weight_exp) for pr in net.projections] or [[]])
    delay = np.concatenate([pr.delay for pr in net.projections] or [[]])
    order_e = np.argsort(axon, kind="stable")
    entry = np.empty_like(order_e)
    entry[order_e] = np.arange(order_e.size)
    entry_of, k0 = {}, 0
    for pr in net.projections:
        entry_of[pr.name] = entry[k0 : k0 + pr.n_synapses]
        k0 += pr.n_synapses
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
    regs: dict[CoreReg, int] = {}
    if rule is not None:
        # the LFSR of every post-synaptic neuron of a plastic projection (contract 5.4)
        lfsr = np.zeros(n_lif, dtype=np.int64)
        for pr in net.projections:
            if pr.stdp is not None:
                j = net.populations[pr.post].lfsr_numbers()
                lfsr[neuron_of[pr.post]] = post_trace_seed(rule, j)
        words[CoreMem.POST_TRACES] = [
            pack(POST_TRACE, {"y": 0, "lfsr": int(x), "spiked": 0}) for x in lfsr
        ]
        regs = learning_registers(rule, n_plastic_axons, n_lif)
    return CoreImage(
        config,
        words,
        neuron_of,
        axon_of,
        n_lif,
        n_ax,
        int(axon.size),
        plastic_axon_of,
        entry_of,
        regs,
    )
