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
  busy, and the system counts those cycles too.

Two terms extend the formula (contract 7.2 states them):

- **Learning** (contract 6.4). A core with plastic axons runs a learning phase in every
  step, after its delivery has drained and before the next update, whatever spiked: the
  phase visits every plastic axon and entry. It costs ``2 * (plastic entries) + (plastic
  axons without entries) + LEARN_NEURONS + 24`` cycles, plus one for each axon whose first
  entry waits for an even cycle, which the model counts as half of the plastic axons with
  entries (the parity depends on the phase's start). It adds to the core's delivery:
  ``T = N + 15 + max_c (D_c + L_c)``.
- **Synapses in SDRAM** (contract 6.3, ``docs/sdram.md``). The entries of an axon are one
  burst read; a read of ``k`` entries keeps delivery busy ``max(k, SDRAM_MIN_READ)``
  cycles, and the refreshes that fall into a delivery take ``SDRAM_REFRESH_SHARE`` of it.
  Both constants are measured on the simulated ULX3S system (the SDRAM at twice the core's
  clock; ``bench/cycle_model.py --board ulx3s``), not derived, and refreshes land where the
  SDRAM's timer puts them, so on such a core the model is within 1% of the RTL, not exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from spikefab.hdl.layouts import CoreMem, CoreReg, unpack
from spikefab.mapping.image import Image
from spikefab.mapping.network import Network

__all__ = [
    "DELIVERY_EXTRA",
    "LEARN_EXTRA",
    "SDRAM_MIN_READ",
    "SDRAM_REFRESH_SHARE",
    "SDRAM_SHORT_READS",
    "STEP_EXTRA",
    "UPDATE_EXTRA",
    "CyclePrediction",
    "learning_cycles",
    "predict_cycles",
]

#: Cycles of an update beyond one per neuron (contract 6.3).
UPDATE_EXTRA = 11
#: Cycles of the step controller around the update: drain, pulse, routing (contract 7.2).
STEP_EXTRA = 4
#: Cycles of a delivery phase beyond one per synapse entry: the pipeline's fill and drain.
DELIVERY_EXTRA = 10
#: Cycles of a learning phase beyond its axons, entries and neurons (contract 6.4).
LEARN_EXTRA = 24
#: Core cycles the shortest burst read of an axon's entries keeps an SDRAM core's delivery
#: busy (the SDRAM at twice the core's clock; measured: reads of 1 and 2 entries both cost
#: 2.76 cycles, of 3 entries 3.0).
SDRAM_MIN_READ = 2.75
#: Share of an SDRAM core's delivery cycles taken by the refreshes that fall into it
#: (measured 2.3% to 2.8% from long to short reads; a refresh pauses the burst, precharges,
#: refreshes and reopens the row: about 11 SDRAM clocks every 390).
SDRAM_REFRESH_SHARE = 0.025
#: Synapse entries per read, on average, from which the SDRAM terms have been measured
#: within 1% of the RTL; shorter reads change rows more often than the terms allow for.
SDRAM_SHORT_READS = 5


@dataclass
class CyclePrediction:
    """Predicted clock cycles of every step, and what they are made of."""

    cycles: np.ndarray  # per step (float: an SDRAM core's terms are not whole cycles)
    events: np.ndarray  # (steps, cores): synapse entries each core delivers
    route_entries: np.ndarray  # per step: route entries the router serves
    learn: np.ndarray  # per core: cycles of its learning phase in every step (0: none)
    spikes: np.ndarray  # per step: spikes of the system's neurons (sources not counted)
    sources: np.ndarray  # per step: host source spikes (injected)
    host_spikes: np.ndarray  # per step: spikes the system sends to the host
    #: Where the prediction is less sure than the model's stated bounds, and why.
    notes: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(self.cycles.mean()) if self.cycles.size else 0.0

    @property
    def max(self) -> float:
        return float(self.cycles.max()) if self.cycles.size else 0.0

    @property
    def total(self) -> float:
        return float(self.cycles.sum())

    def real_time_factor(self, clock_hz: float, dt_ms: float, worst: bool = False) -> float:
        """How many times faster than real time the steps run at ``clock_hz`` (the mean
        step, or with ``worst`` the longest)."""
        cycles = self.max if worst else self.mean
        return clock_hz * dt_ms / 1000.0 / max(cycles, 1e-9)


def _axon_counts(image: Image, c: int) -> np.ndarray:
    cfg = image.config
    axons = image.core_words[c].get(CoreMem.AXONS, [])
    return np.array([unpack(cfg.core.axon_layout, w)["count"] for w in axons], dtype=np.int64)


def sender_loads(image: Image, sdram: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For every sender id of the system (core neurons, then host sources): the synapse
    entries its spike makes each core deliver (``(senders, cores)``), and its route entries.

    With ``sdram``, a core with its synapses in SDRAM counts each of its axons' reads as
    ``max(entries, SDRAM_MIN_READ)`` (a float array)."""
    cfg = image.config
    C, N = cfg.cores, cfg.core.neurons
    ids = C * N + cfg.sources
    in_sdram = sdram and cfg.core.synapse_memory == "sdram"
    load = np.zeros((ids, C), dtype=np.float64 if in_sdram else np.int64)
    routes = np.zeros(ids, dtype=np.int64)
    costs = []
    for c in range(C):
        counts = _axon_counts(image, c)
        if in_sdram:
            costs.append(np.where(counts > 0, np.maximum(counts, SDRAM_MIN_READ), 0.0))
        else:
            costs.append(counts)
    for sid in range(min(ids, len(image.route_pointers))):
        p = unpack(cfg.route_pointer_layout, image.route_pointers[sid])
        routes[sid] = p["count"]
        for e in range(p["start"], p["start"] + p["count"]):
            ent = unpack(cfg.route_entry_layout, image.route_entries[e])
            if ent["dest"] < C:
                load[sid, ent["dest"]] += costs[ent["dest"]][ent["axon"]]
    return load, routes


def learning_cycles(image: Image) -> np.ndarray:
    """Cycles of each core's learning phase, which runs in every step (contract 6.4): 0 for
    a core that does not learn."""
    cfg = image.config
    out = np.zeros(cfg.cores, dtype=np.float64)
    if not cfg.core.learning:
        return out
    for c in range(cfg.cores):
        regs = image.core_words[c].get(CoreMem.REGS, [])
        plastic = int(regs[CoreReg.PLASTIC_AXONS]) if len(regs) > CoreReg.PLASTIC_AXONS else 0
        if plastic == 0:
            continue
        learn_neurons = int(regs[CoreReg.LEARN_NEURONS])
        counts = _axon_counts(image, c)[:plastic]
        with_entries = int((counts > 0).sum())
        out[c] = 2 * int(counts.sum()) + (plastic - with_entries) + learn_neurons + LEARN_EXTRA
    return out


def predict_cycles(net: Network, image: Image, steps: int) -> CyclePrediction:
    """Predict the clock cycles of each of ``steps`` steps of ``net`` on ``image``'s
    system, from the golden model's spikes (see the module's text for what it leaves out
    and where it is not exact)."""
    from spikefab.sim.golden import GoldenModel

    cfg = image.config
    C, N = cfg.cores, cfg.core.neurons
    load, routes = sender_loads(image)
    sdram = cfg.core.synapse_memory == "sdram"
    cost = sender_loads(image, sdram=True)[0] if sdram else load
    learn = learning_cycles(image)
    model = GoldenModel(net)
    sys_id = np.full(model.n, -1, dtype=np.int64)
    for p in net.populations.values():
        off = model.offset[p.name]
        if p.is_source:
            sys_id[off : off + p.size] = C * N + image.source_of[p.name]
        else:
            sys_id[off : off + p.size] = image.core_of[p.name] * N + image.neuron_of[p.name]
    host_of = _host_routed(image)
    events = np.zeros((steps, C), dtype=np.int64)
    busy = np.zeros((steps, C), dtype=cost.dtype)  # delivery cycles, but for the drain
    entries = np.zeros(steps, dtype=np.int64)
    spikes = np.zeros(steps, dtype=np.int64)
    sources = np.zeros(steps, dtype=np.int64)
    host = np.zeros(steps, dtype=np.int64)
    for t in range(steps):
        s = sys_id[model.step()]
        events[t] = load[s].sum(axis=0)
        busy[t] = cost[s].sum(axis=0)
        entries[t] = routes[s].sum()
        src = int((s >= C * N).sum())
        sources[t] = src
        spikes[t] = s.size - src
        host[t] = int(host_of[s].sum())
    # a learning phase starts while the delivery pipeline drains: it hides the drain
    extra = np.where(learn > 0, 0, DELIVERY_EXTRA)[None, :]
    delivery = np.where(events > 0, busy + extra, 0).astype(np.float64)
    if sdram:
        delivery *= 1.0 + SDRAM_REFRESH_SHARE
    busiest = (delivery + learn[None, :]).max(axis=1) if C else np.zeros(steps)
    cycles = N + UPDATE_EXTRA + STEP_EXTRA + busiest
    notes = []
    if sdram:
        per_read = _entries_per_read(image, sys_id, net, steps)
        if per_read < SDRAM_SHORT_READS:
            notes.append(
                f"the SDRAM core's reads average {per_read:.1f} synapse entries; below "
                f"{SDRAM_SHORT_READS} the SDRAM's row changes show and the model has been "
                "measured up to 5% under the RTL (docs/contract.md 7.2)"
            )
    return CyclePrediction(cycles, events, entries, learn, spikes, sources, host, notes)


def _entries_per_read(image: Image, sys_id: np.ndarray, net: Network, steps: int) -> float:
    """The synapse entries of an SDRAM core's reads over a run, on average."""
    from spikefab.sim.golden import GoldenModel

    entries, _ = sender_loads(image)
    cfg = image.config
    reads = np.zeros(len(entries), dtype=np.int64)
    counts = [_axon_counts(image, c) for c in range(cfg.cores)]
    for sid in range(min(len(reads), len(image.route_pointers))):
        p = unpack(cfg.route_pointer_layout, image.route_pointers[sid])
        for e in range(p["start"], p["start"] + p["count"]):
            ent = unpack(cfg.route_entry_layout, image.route_entries[e])
            if ent["dest"] < cfg.cores and counts[ent["dest"]][ent["axon"]] > 0:
                reads[sid] += 1
    model = GoldenModel(net)
    n_entries = n_reads = 0
    for _ in range(steps):
        s = sys_id[model.step()]
        n_entries += int(entries[s].sum())
        n_reads += int(reads[s].sum())
    return n_entries / n_reads if n_reads else float("inf")


def _host_routed(image: Image) -> np.ndarray:
    """Whether each sender id's spikes are sent to the host (a route entry with ``dest =
    C``)."""
    cfg = image.config
    C, N = cfg.cores, cfg.core.neurons
    out = np.zeros(C * N + cfg.sources, dtype=bool)
    for sid in range(min(out.size, len(image.route_pointers))):
        p = unpack(cfg.route_pointer_layout, image.route_pointers[sid])
        for e in range(p["start"], p["start"] + p["count"]):
            if unpack(cfg.route_entry_layout, image.route_entries[e])["dest"] == C:
                out[sid] = True
    return out
