"""The image: everything a system needs to run a network (``docs/contract.md``, section 9).

An :class:`Image` holds the words of every core memory and of the router tables, the symbol
table that says where each network neuron lives (population/index <-> core/neuron, and the
host source id of each spike-source neuron), and the network description itself, so that an
image file alone can be run, on hardware or on the golden model.

:func:`place_sequential` maps a network with the greedy placement; the mapper itself is
:mod:`spikefab.mapping.mapper` (``docs/mapping.md``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from spikefab.hdl import params as P
from spikefab.hdl.layouts import CoreMem, SystemConfig, SystemMem, SystemReg
from spikefab.hdl.protocol import Target
from spikefab.mapping.network import Network

__all__ = [
    "IMAGE_VERSION",
    "Image",
    "MemWrite",
    "load_image",
    "place_sequential",
    "recorded_neurons",
]

IMAGE_VERSION = 1

#: Zero words between two runs of non-zero words that are written rather than starting a
#: new run (a WRITE frame's header and framing cost about as much as two words).
RUN_GAP = 2


class MemWrite(NamedTuple):
    """One request of loading an image: write ``words`` from ``addr`` on, or, when
    ``words`` is None, clear ``count`` words from ``addr`` on."""

    target: int
    mem: int
    addr: int
    words: list[int] | None
    count: int

    @property
    def is_clear(self) -> bool:
        return self.words is None


def _runs(words: list[int], gap: int = RUN_GAP) -> list[tuple[int, list[int]]]:
    """Return ``(addr, words)`` runs covering every non-zero word; runs closer than
    ``gap`` zero words are merged."""
    a = np.asarray(words, dtype=np.uint64)
    nz = np.flatnonzero(a)
    if not nz.size:
        return []
    breaks = np.flatnonzero(np.diff(nz) > gap + 1)
    starts = np.concatenate([[nz[0]], nz[breaks + 1]])
    ends = np.concatenate([nz[breaks], [nz[-1]]]) + 1
    return [(int(s), [int(w) for w in words[s:e]]) for s, e in zip(starts, ends, strict=True)]


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
    #: For every plastic projection, the core and the synapse entry of each of its synapses.
    plastic_entries: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

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

    def writes(self) -> list[MemWrite]:
        """Return the requests that load the image, in order (contract 9).

        Every word of every memory is written once: the stretches of zero words between the
        runs of non-zero words are cleared, then the runs are written; each core's
        registers come after its other memories, the router's tables after the cores, and
        the system's ``STEP`` register is reset last.
        """
        cfg = self.config
        c = cfg.core
        out: list[MemWrite] = []

        def memory(target: int, mem: int, depth: int, words: list[int]) -> None:
            if not depth:
                return
            runs = _runs(words)
            # clear what the runs leave out (stretches of zero words), then write the runs
            at = 0
            for a, ws in [*runs, (depth, [])]:
                if a > at:
                    out.append(MemWrite(target, mem, at, None, a - at))
                at = a + len(ws)
            out.extend(MemWrite(target, mem, a, ws, len(ws)) for a, ws in runs)

        mems = [CoreMem.PARAMS, CoreMem.STATE, CoreMem.AXONS, CoreMem.SYNAPSES, CoreMem.RING]
        mems += [CoreMem.PRE_TRACES, CoreMem.POST_TRACES]  # learning cores only (depth 0 else)
        for k, words in enumerate(self.core_words):
            for mem in mems:
                memory(k, mem.value, c.depth_of(mem), list(words.get(mem, [])))
            # the registers last: NOW, the counters and (learning cores) the rule
            regs = list(words.get(CoreMem.REGS, [])) or [0]
            out.append(MemWrite(k, CoreMem.REGS.value, 0, regs, len(regs)))
        for mem, ws in (
            (SystemMem.ROUTE_POINTERS, self.route_pointers),
            (SystemMem.ROUTE_ENTRIES, self.route_entries),
        ):
            memory(Target.SYSTEM, mem.value, cfg.depth_of(mem), list(ws))
        out.append(MemWrite(Target.SYSTEM, SystemMem.REGS.value, SystemReg.STEP, [0], 1))
        return out

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
                    "learning": c.core.learning,
                    "stats": c.core.stats,
                    "synapse_memory": c.core.synapse_memory,
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
        for name, (cores, entries) in self.plastic_entries.items():
            arrays[f"plastic/{name}/core"] = cores
            arrays[f"plastic/{name}/entry"] = entries
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
        plastic: dict[str, dict[str, np.ndarray]] = {}
        for key in f.files:
            if key.startswith("core"):
                k, mem = key.split("/")
                core_words[int(k[4:])][CoreMem[mem]] = [int(w) for w in f[key]]
            elif key.startswith("symbols/"):
                _, name, kind = key.split("/")
                {"core": core_of, "neuron": neuron_of, "source": source_of}[kind][name] = f[key]
            elif key.startswith("plastic/"):
                _, name, kind = key.split("/")
                plastic.setdefault(name, {})[kind] = f[key]
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
            plastic_entries={k: (v["core"], v["entry"]) for k, v in plastic.items()},
        )


def place_sequential(net: Network, config: SystemConfig, network_yaml: str = "") -> Image:
    """Map a network onto a system with the greedy placement and return its image.

    Neurons fill cores in network order (see :mod:`spikefab.mapping.placement`).

    Raises
    ------
    FitError
        Naming each limit the network exceeds, where, and by how much.
    """
    from spikefab.mapping.mapper import place

    return place(net, config, "greedy", network_yaml=network_yaml)


def recorded_neurons(net: Network) -> dict[str, np.ndarray]:
    """Return, for each LIF population, which neurons' spikes go to the host.

    All of them, or only those of the network's ``spikes`` probes if it has any.
    """
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
