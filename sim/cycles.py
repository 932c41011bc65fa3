"""A cycle model of a step of the system (``docs/contract.md`` 6.3 and 7.2), from the golden
model's spikes and the image's tables.

A step of the system runs the update of every core at once, then the delivery of the
events its spikes (and the step's injected sources) send (contract 6.3): every core takes
its events after its update and delivers one synapse entry per clock. The step therefore
lasts

    T(t) = N + 15 + (max over cores c of E_c(t)) + 10      (0 instead of the last two
                                                             terms when no event is sent)

clock cycles, where ``N + 11`` is the update (contract 6.3), 4 the step controller's
drain, pulse and routing (7.2), and ``E_c(t)`` the synapse entries core ``c`` delivers for
the spikes of step ``t``: for every spike, the entries of every axon its route entries
name on ``c``. The model counts them from the golden model's spikes and the image's route
and axon tables, so it holds for any placement.

What it leaves out (so where it is not exact):

- the router serves one route entry per clock: a step whose spikes have more route
  entries than an update has cycles can deliver late (the model then undercounts);
- a core's delivery of the step's events may run on into the next step's drain; the
  system counts that tail in the next step (``STEP_CYCLES`` per step), the model in the step
  whose spikes sent the events, so per step they differ and over a run they agree;
- configuration reads (the runtime's probes) that overlap a delivery tail keep the cores
  busy, and the system counts those cycles too;
- learning phases (``LEARN_CYCLES``, contract 6.4) and the SDRAM core's delivery, whose
  rate depends on the SDRAM (contract 6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spikefab.hdl.layouts import CoreMem, unpack
from spikefab.mapping.image import Image
from spikefab.mapping.network import Network

__all__ = ["DELIVERY_EXTRA", "STEP_EXTRA", "UPDATE_EXTRA", "CyclePrediction", "predict_cycles"]

#: Cycles of an update beyond one per neuron (contract 6.3).
UPDATE_EXTRA = 11
#: Cycles of the step controller around the update: drain, pulse, routing (contract 7.2).
STEP_EXTRA = 4
#: Cycles of a delivery phase beyond one per synapse entry: the pipeline's fill and drain.
DELIVERY_EXTRA = 10


@dataclass
class CyclePrediction:
    """Predicted clock cycles of every step, and what they are made of."""

    cycles: np.ndarray  # per step
    events: np.ndarray  # (steps, cores): synapse entries each core delivers
    route_entries: np.ndarray  # per step: route entries the router serves

    @property
    def mean(self) -> float:
        return float(self.cycles.mean()) if self.cycles.size else 0.0

    @property
    def total(self) -> int:
        return int(self.cycles.sum())

    def real_time_factor(self, clock_hz: float, dt_ms: float) -> float:
        """How many times faster than real time the steps run at ``clock_hz``."""
        return clock_hz * dt_ms / 1000.0 / max(self.mean, 1e-9)


def sender_loads(image: Image) -> tuple[np.ndarray, np.ndarray]:
    """For every sender id of the system (core neurons, then host sources): the synapse
    entries its spike makes each core deliver (``(senders, cores)``), and its route entries."""
    cfg = image.config
    C, N = cfg.cores, cfg.core.neurons
    ids = C * N + cfg.sources
    load = np.zeros((ids, C), dtype=np.int64)
    routes = np.zeros(ids, dtype=np.int64)
    counts = []
    for c in range(C):
        axons = image.core_words[c][CoreMem.AXONS]
        counts.append([unpack(cfg.core.axon_layout, w)["count"] for w in axons])
    for sid in range(min(ids, len(image.route_pointers))):
        p = unpack(cfg.route_pointer_layout, image.route_pointers[sid])
        routes[sid] = p["count"]
        for e in range(p["start"], p["start"] + p["count"]):
            ent = unpack(cfg.route_entry_layout, image.route_entries[e])
            if ent["dest"] < C:
                load[sid, ent["dest"]] += counts[ent["dest"]][ent["axon"]]
    return load, routes


def predict_cycles(net: Network, image: Image, steps: int) -> CyclePrediction:
    """Predict the clock cycles of each of ``steps`` steps of ``net`` on ``image``'s
    system, from the golden model's spikes (see the module's text for what it leaves out).

    Raises
    ------
    ValueError
        For a network that learns, or a core with its synapses in SDRAM: the model does
        not cover them.
    """
    from spikefab.sim.golden import GoldenModel

    plastic = [pr.name for pr in net.projections if pr.stdp is not None]
    if plastic:
        raise ValueError(
            f"the cycle model leaves out learning phases, and {net.name!r} learns "
            f"(plastic projections: {', '.join(plastic)}); measure LEARN_CYCLES on the RTL"
        )
    if image.config.core.synapse_memory == "sdram":
        raise ValueError(
            "the cycle model covers cores with their synapses in block RAM; an SDRAM core's "
            "delivery rate depends on the SDRAM (contract 6.3)"
        )
    cfg = image.config
    C, N = cfg.cores, cfg.core.neurons
    load, routes = sender_loads(image)
    model = GoldenModel(net)
    sys_id = np.full(model.n, -1, dtype=np.int64)
    for p in net.populations.values():
        off = model.offset[p.name]
        if p.is_source:
            sys_id[off : off + p.size] = C * N + image.source_of[p.name]
        else:
            sys_id[off : off + p.size] = image.core_of[p.name] * N + image.neuron_of[p.name]
    events = np.zeros((steps, C), dtype=np.int64)
    entries = np.zeros(steps, dtype=np.int64)
    for t in range(steps):
        s = sys_id[model.step()]
        events[t] = load[s].sum(axis=0)
        entries[t] = routes[s].sum()
    busiest = events.max(axis=1) if C else np.zeros(steps, dtype=np.int64)
    cycles = N + UPDATE_EXTRA + STEP_EXTRA + np.where(busiest > 0, busiest + DELIVERY_EXTRA, 0)
    return CyclePrediction(cycles.astype(np.int64), events, entries)
