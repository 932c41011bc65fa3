"""The image: everything a system needs to run a network (``docs/contract.md``, section 9).

An :class:`Image` holds the words of every core memory and of the router tables, the symbol
table that says where each network neuron lives (population/index <-> core/neuron, and the
host source id of each spike-source neuron), and the network description itself, so that an
image file alone can be run, on hardware or on the golden model.

:func:`place_sequential` is the simple placement: LIF neurons fill cores in population
order. Each core gets one axon per neuron (anywhere) that has synapses onto it, and each
spiking neuron one route entry per core it reaches, plus one to the host.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from spikefab.hdl import params as P
from spikefab.hdl.layouts import (
    NEURON_PARAMS,
    NEURON_STATE,
    CoreMem,
    SystemConfig,
    pack,
)
from spikefab.mapping.core_image import FitError
from spikefab.mapping.network import Network

__all__ = ["IMAGE_VERSION", "Image", "load_image", "place_sequential"]

IMAGE_VERSION = 1


@dataclass
class Image:
    """A mapped network.

    Attributes
    ----------
    config
        The system the image is for.
    core_words
        For each core, memory -> words from address 0 (missing memories and words are 0).
    route_pointers, route_entries
        Packed words of the router's tables.
    core_of, neuron_of
        For every LIF population, the core and the core neuron of each of its neurons.
    source_of
        For every spike-source population, the host source id of each neuron (-1: none).
    network_yaml
        The network description the image was made from.
    """

    config: SystemConfig
    core_words: list[dict[CoreMem, list[int]]]
    route_pointers: list[int]
    route_entries: list[int]
    core_of: dict[str, np.ndarray]
    neuron_of: dict[str, np.ndarray]
    source_of: dict[str, np.ndarray]
    network_yaml: str = ""
    stats: dict = field(default_factory=dict)

    def gid_table(self, net: Network) -> tuple[np.ndarray, np.ndarray]:
        """Return arrays mapping a global id ``core * N + neuron`` to (population, index).

        Ids that hold no network neuron map to population -1.
        """
        n = self.config.cores * self.config.core.neurons
        pop = np.full(n, -1, dtype=np.int64)
        idx = np.full(n, -1, dtype=np.int64)
        for p in net.populations.values():
            if p.is_source:
                continue
            g = self.core_of[p.name] * self.config.core.neurons + self.neuron_of[p.name]
            pop[g] = p.index
            idx[g] = np.arange(p.size)
        return pop, idx

    def save(self, path: str | Path) -> None:
        """Write the image as one ``.npz`` file (format in contract section 9)."""
        c = self.config
        header = {
            "format": IMAGE_VERSION,
            "contract": P.CONTRACT_VERSION,
            "system": {
                "cores": c.cores,
                "sources": c.sources,
                "route_entries": c.route_entries,
                "inject_depth": c.inject_depth,
                "core_fifo_depth": c.core_fifo_depth,
                "core": {
                    "neurons": c.core.neurons,
                    "axons": c.core.axons,
                    "synapses": c.core.synapses,
                    "delay_slots": c.core.delay_slots,
                    "acc_bits": c.core.acc_bits,
                },
            },
            "stats": self.stats,
        }
        arrays: dict[str, np.ndarray] = {
            "header": np.array(json.dumps(header)),
            "network": np.array(self.network_yaml),
            "route_pointers": np.array(self.route_pointers, dtype=np.uint64),
            "route_entries": np.array(self.route_entries, dtype=np.uint64),
        }
        for k, words in enumerate(self.core_words):
            for mem, ws in words.items():
                arrays[f"core{k}/{mem.name}"] = np.array(ws, dtype=np.uint64)
        for name in self.core_of:
            arrays[f"symbols/{name}/core"] = self.core_of[name]
            arrays[f"symbols/{name}/neuron"] = self.neuron_of[name]
        for name in self.source_of:
            arrays[f"symbols/{name}/source"] = self.source_of[name]
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        Path(path).write_bytes(buf.getvalue())


def load_image(path: str | Path) -> Image:
    """Read an image written by :meth:`Image.save`.

    Raises
    ------
    ValueError
        When the file is not an image of a supported format.
    """
    from spikefab.hdl.layouts import CoreConfig

    with np.load(path) as f:
        if "header" not in f.files:
            raise ValueError(f"{path}: not a spikefab image (no header)")
        header = json.loads(str(f["header"]))
        if header.get("format") != IMAGE_VERSION:
            raise ValueError(
                f"{path}: image format {header.get('format')!r} is not supported; "
                f"accepted: {IMAGE_VERSION}"
            )
        if header.get("contract") != P.CONTRACT_VERSION:
            raise ValueError(
                f"{path}: image is for contract version {header.get('contract')!r}; this "
                f"spikefab implements {P.CONTRACT_VERSION}"
            )
        s = header["system"]
        config = SystemConfig(
            cores=s["cores"],
            sources=s["sources"],
            route_entries=s["route_entries"],
            inject_depth=s["inject_depth"],
            core_fifo_depth=s["core_fifo_depth"],
            core=CoreConfig(**s["core"]),
        )
        core_words: list[dict[CoreMem, list[int]]] = [{} for _ in range(config.cores)]
        core_of, neuron_of, source_of = {}, {}, {}
        for key in f.files:
            if key.startswith("core"):
                k, mem = key.split("/")
                core_words[int(k[4:])][CoreMem[mem]] = [int(w) for w in f[key]]
            elif key.startswith("symbols/"):
                _, name, kind = key.split("/")
                {"core": core_of, "neuron": neuron_of, "source": source_of}[kind][name] = f[key]
        return Image(
            config=config,
            core_words=core_words,
            route_pointers=[int(w) for w in f["route_pointers"]],
            route_entries=[int(w) for w in f["route_entries"]],
            core_of=core_of,
            neuron_of=neuron_of,
            source_of=source_of,
            network_yaml=str(f["network"]),
            stats=header.get("stats", {}),
        )


def place_sequential(net: Network, config: SystemConfig, network_yaml: str = "") -> Image:
    """Fill cores with the network's LIF neurons in order and build every table.

    Raises
    ------
    FitError
        Naming each limit the network exceeds, where, and by how much.
    """
    N = config.core.neurons
    C = config.cores
    problems: list[str] = []
    core_of: dict[str, np.ndarray] = {}
    neuron_of: dict[str, np.ndarray] = {}
    source_of: dict[str, np.ndarray] = {}
    pos = 0
    n_src = 0
    for p in net.populations.values():
        if p.is_source:
            source_of[p.name] = np.arange(n_src, n_src + p.size, dtype=np.int64)
            n_src += p.size
        else:
            g = np.arange(pos, pos + p.size, dtype=np.int64)
            core_of[p.name], neuron_of[p.name] = g // N, g % N
            pos += p.size
    if pos > C * N:
        problems.append(f"{pos} neurons; {C} cores of {N} hold {C * N} ({pos - C * N} too many)")
    if n_src > config.sources:
        problems.append(
            f"{n_src} source neurons; the router has {config.sources} source ids "
            f"({n_src - config.sources} too many)"
        )
    if net.max_delay > config.core.delay_slots:
        problems.append(
            f"delays up to {net.max_delay} steps; cores have {config.core.delay_slots} delay slots"
        )
    if any(pr.stdp is not None for pr in net.projections):
        problems.append("plastic projections; the cores have no learning unit yet")
    if problems:
        raise FitError(f"network {net.name!r} does not fit: needs " + "; ".join(problems))

    # every synapse as (sender key, target core, target neuron, weight, exp, delay); a sender
    # is a core neuron (its global id) or a host source (C * N + source id)
    send, tcore, tneu, w, e, d = [], [], [], [], [], []
    for pr in net.projections:
        pre = net.populations[pr.pre]
        if pre.is_source:
            send.append(C * N + source_of[pr.pre][pr.pre_idx])
        else:
            send.append(core_of[pr.pre][pr.pre_idx] * N + neuron_of[pr.pre][pr.pre_idx])
        tcore.append(core_of[pr.post][pr.post_idx])
        tneu.append(neuron_of[pr.post][pr.post_idx])
        w.append(pr.weight)
        e.append(np.full(pr.n_synapses, pr.weight_exp))
        d.append(pr.delay)
    cat = [
        np.concatenate(x).astype(np.int64) if x else np.zeros(0, np.int64)
        for x in (send, tcore, tneu, w, e, d)
    ]
    send_a, tcore_a, tneu_a, w_a, e_a, d_a = cat

    core_words: list[dict[CoreMem, list[int]]] = []
    # (sender, core) -> axon, per core
    axon_of_pair: dict[tuple[int, int], int] = {}
    for k in range(C):
        sel = np.flatnonzero(tcore_a == k)
        senders = np.unique(send_a[sel])
        if senders.size > config.core.axons:
            problems.append(
                f"core {k}: {senders.size} axons; a core has {config.core.axons} "
                f"({senders.size - config.core.axons} too many)"
            )
        if sel.size > config.core.synapses:
            problems.append(
                f"core {k}: {sel.size} synapse entries; a core holds "
                f"{config.core.synapses} ({sel.size - config.core.synapses} too many)"
            )
        axon = np.searchsorted(senders, send_a[sel])
        for a, s in enumerate(senders):
            axon_of_pair[(int(s), k)] = a
        order = np.argsort(axon, kind="stable")
        sel, axon = sel[order], axon[order]
        worst = np.zeros(N, dtype=np.int64)
        np.add.at(worst, tneu_a[sel], np.abs(w_a[sel]) << e_a[sel])
        if worst.size and worst.max() > config.core.acc_limit:
            n = int(np.argmax(worst))
            problems.append(
                f"core {k} neuron {n} can receive a sum of {int(worst[n])} in one step; the "
                f"{config.core.acc_bits}-bit accumulator holds {config.core.acc_limit}"
            )
        if problems:
            continue
        sl, al = config.core.synapse_layout, config.core.axon_layout
        words: dict[CoreMem, list[int]] = {}
        words[CoreMem.SYNAPSES] = [
            pack(
                sl,
                {"target": int(t), "weight": int(ww), "weight_exp": int(ee), "delay": int(dd) - 1},
            )
            for t, ww, ee, dd in zip(tneu_a[sel], w_a[sel], e_a[sel], d_a[sel], strict=True)
        ]
        starts = np.searchsorted(axon, np.arange(senders.size))
        counts = np.bincount(axon, minlength=senders.size)
        words[CoreMem.AXONS] = [
            pack(al, {"start": int(s) if c else 0, "count": int(c)})
            for s, c in zip(starts, counts, strict=True)
        ]
        params = [0] * N
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
            for j in neuron_of[p.name][core_of[p.name] == k]:
                params[int(j)] = word
        words[CoreMem.PARAMS] = params
        words[CoreMem.STATE] = [pack(NEURON_STATE, {"u": 0, "v": 0, "ref": 0})] * N
        core_words.append(words)
    if problems:
        raise FitError(f"network {net.name!r} does not fit: needs " + "; ".join(problems))

    # routes: each sender -> one entry per core it reaches, plus the host for LIF neurons
    recorded = _recorded(net)
    dest_of: dict[int, list[tuple[int, int]]] = {}
    for (s, k), a in axon_of_pair.items():
        dest_of.setdefault(s, []).append((k, a))
    for name, cores_arr in core_of.items():
        if not recorded[name].any():
            continue
        g = cores_arr * N + neuron_of[name]
        for gg in g[recorded[name]]:
            dest_of.setdefault(int(gg), []).append((C, 0))
    pl, el = config.route_pointer_layout, config.route_entry_layout
    pointers = [pack(pl, {"start": 0, "count": 0})] * config.pointer_depth
    entries: list[int] = []
    for s in sorted(dest_of):
        dests = sorted(dest_of[s])
        pointers[s] = pack(pl, {"start": len(entries), "count": len(dests)})
        entries += [pack(el, {"dest": k, "axon": a}) for k, a in dests]
    if len(entries) > config.route_entries:
        raise FitError(
            f"network {net.name!r} does not fit: needs {len(entries)} route entries; the "
            f"router holds {config.route_entries} ({len(entries) - config.route_entries} too many)"
        )
    stats = {
        "neurons": pos,
        "sources": n_src,
        "synapses": int(send_a.size),
        "route_entries": len(entries),
        "axons": [len(cw[CoreMem.AXONS]) for cw in core_words],
        "entries": [len(cw[CoreMem.SYNAPSES]) for cw in core_words],
    }
    return Image(
        config, core_words, pointers, entries, core_of, neuron_of, source_of, network_yaml, stats
    )


def _recorded(net: Network) -> dict[str, np.ndarray]:
    """Which neurons' spikes go to the host: all, or those of the `spikes` probes."""
    spike_probes = [pb for pb in net.probes if pb.variable == "spikes"]
    out = {}
    for name, p in net.populations.items():
        if p.is_source:
            continue
        mask = np.ones(p.size, dtype=bool)
        if spike_probes:
            mask[:] = False
            for pb in spike_probes:
                if pb.target == name:
                    mask[np.arange(p.size) if pb.neurons is None else pb.neurons] = True
        out[name] = mask
    return out
