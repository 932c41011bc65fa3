"""Speed of the golden model against Brian2, on the balanced, CUBA and a 100k-neuron network.

The benchmark loads each network (timing the load: YAML to the network's tables) and
measures, for each backend, the wall time of a run of ``--steps`` steps, the simulated
seconds per wall second (``steps * dt / wall``) and the synaptic events per second (an event
is one synapse traversed by a spike: the sum over all spikes, Poisson sources included, of
the out-degree of the neuron that spiked). The ``spikes`` column counts the sources' spikes
too; the rates are those of the LIF populations. ``cpu s`` is the CPU time of this process
over the run (golden and Brian2 runtime only): on a shared machine it is steadier than the
wall time, on which the figures and ratios are based.

Networks (``--network FILE``, repeatable, replaces them): ``examples/balanced.yaml`` (1000
LIF neurons, 200 Poisson sources, 120k synapses), ``examples/cuba.yaml`` (4000 neurons, 319k
synapses) and ``balanced_x100``: the balanced network 100 times larger with 100 times smaller
connection probabilities (:func:`large_network_yaml`; 100k LIF neurons, 20k sources, 12.0M
synapses, the same in-degrees and rates), written to a temporary file and loaded like the
others (``--large-scale N`` scales by ``N`` instead, 0 leaves it out). On the large network
the golden model's numpy path, Brian2's runtime mode and the float reference are not run.

Every golden and Brian2 cpp_standalone row runs on each of ``--threads`` (default 1 and 2);
the closing summary prints, per network and thread count, both event rates and their ratio,
the golden model's bytes per synapse and the load and setup times, and the large network's
event rate as a fraction of the balanced network's (target: at least 0.8).

Figures of ``make bench`` on this project's 2-core machine (AMD EPYC; another engineer's
builds ran beside it), 1000 steps, best of 3, events per second::

    network        threads   golden (numba)   brian2 cpp_standalone   golden/brian2
    balanced             1        2.736e+08               2.636e+08          1.038x
    balanced             2        2.475e+08               1.314e+08          1.883x
    cuba                 1        2.660e+08               1.463e+08          1.819x
    cuba                 2        2.349e+08               3.028e+07          7.756x
    balanced_x100        1        2.819e+08               9.847e+07          2.862x
    balanced_x100        2        3.285e+08               1.013e+08          3.243x

6.00 bytes per synapse in the golden model's tables (plus 0.08 of pointers); the large
network loads in 1.64 s and sets up (``GoldenModel(net)``) in 0.56 s, and its golden event
rate is 1.03 of the balanced network's. A run before it gave 1.040x, 1.745x and 2.632x with
one thread; one after it 1.259x, 1.720x and 2.824x (2.227x, 2.565x and 4.036x with two, the
large network's event rate 0.91 of the balanced one's). The 2-thread figures swing with the
other work on the machine: Brian2's OpenMP build and the golden model's threads both wait
for a core at every step when the other is
busy (``docs/golden.md``); the golden model runs small networks' steps on one thread.

Backends:

``golden (numba, K threads)``, ``golden (numpy)``
    :class:`spikefab.sim.golden.GoldenModel` on each of its two paths (``numba=True``, with
    ``threads=K``, and ``numba=False``), timed over ``run(steps)``, which includes drawing the
    sources' Poisson spikes (the time that takes is printed below the table); building the
    model (the synapse tables) is timed apart as setup. Best of ``--repeat`` fresh models.
    The numba kernels are compiled on their first call and cached on disk
    (``sim/__pycache__``), so before the timed runs the benchmark imports numba and runs one
    step on every thread count, and prints both times above the tables: the compile time of
    a first run ever (or after ``sim/_kernels.py`` changed), else the time to load the cached
    kernels. The timed runs never include it. All golden rows must give the same spikes (the
    script stops otherwise). Without numba installed (``pip install "spikefab[fast]"``), or
    with ``SPIKEFAB_NO_NUMBA=1``, only the numpy path runs, and the script says so.
``brian2 runtime``
    Brian2 in runtime mode with the numpy code generation target. Code generation and the
    other preparation of the first ``run`` are done by a run of 0 ms and timed apart. Best of
    ``--repeat`` fresh networks.
``brian2 cpp_standalone, K threads``
    Brian2's C++ standalone device, built in a temporary directory with the machine's g++:
    single-threaded for one thread (``openmp_threads = 0``), with OpenMP on ``K`` threads
    otherwise (``openmp_threads = K``); compiled once and run ``--repeat`` times. The figure
    is the best time of the simulation loop as the binary itself reports it
    (``device._last_run_time``); the row ``(binary)`` is the best time of the whole binary
    (loading the arrays, the loop, writing the results), and the compile time is printed
    below the table.

Both Brian2 networks are the same graph as the golden model's: the synapse arrays ``pre_idx``,
``post_idx``, ``weight_real`` and ``delay`` of the loaded network's projections, the per-neuron
constants of its ``RealLIF`` parameters and initial ``v`` (``v0_real``), and the Poisson
spikes of its sources (``SpikeSource.spikes``) played back by a ``SpikeGeneratorGroup``. All
LIF populations form one ``NeuronGroup`` and all projections between them one ``Synapses``
(likewise for the sources), as in Brian2's own CUBA example, so that Brian2 runs as few code
objects per step as it can. The neurons follow the model's discrete equations in real
arithmetic (those of :class:`spikefab.sim.reference.FloatReference`)::

    u = alpha*u + (sum of the weights arriving this step)
    v = beta*v + u + bias              (held while refractory)
    spike when v > theta; v = 0 (or v -= theta); refractory for `refractory` steps

Brian2 processes a spike's ``on_pre`` in the ``synapses`` slot, after the ``groups`` slot of
the same step, so a golden delay of ``d`` steps is a Brian2 delay of ``(d - 1) * dt`` adding
to ``acc``, which the next step's update moves into ``u``. The Brian2 spikes are then compared
with those of the float reference: with the same equations they agree step for step, unless a
difference in float rounding (another order of the additions, say) flips one threshold
crossing, after which the chaotic network diverges and only the rates should still agree. On
``balanced.yaml`` they agree over 10000 steps, on ``cuba.yaml`` over the 1000 steps of the
benchmark. The golden model's own spikes differ from the
float reference's by its quantization, so they are compared by rate only.

Brian2 2.9 does not import with numpy 2.4 (it uses ``ndarray.ptp``, which numpy 2.4 removed),
while the project's ``.venv`` has numpy 2.4; the benchmark therefore has its own venv. Set it
up once, from the repository root::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install "numpy<2.4" -e ".[bench,fast]"

and run it, also from the repository root (``make bench`` does both)::

    .venv-bench/bin/python bench/golden.py

Options: ``--steps N`` (default 1000), ``--repeat N`` (runs per backend, the best kept;
default 3), ``--network FILE``, ``--threads K ...`` (default ``1 2``), ``--large-scale N``,
``--golden-only`` (the golden model alone: that needs no Brian2 and runs in ``.venv`` too),
``--no-standalone`` (skip the C++ builds, which take g++ 5 to 15 s each) and ``--no-numpy``
(skip the golden model's numpy path). Without Brian2 (and without ``--golden-only``) the
script says what to install and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from spikefab.mapping.loader import load
from spikefab.mapping.network import Network
from spikefab.sim import golden
from spikefab.sim.golden import GoldenModel
from spikefab.sim.reference import FloatReference

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NETWORK = ROOT / "examples" / "balanced.yaml"
SETUP = (
    "python3 -m venv .venv-bench\n"
    '    .venv-bench/bin/pip install "numpy<2.4" -e ".[bench,fast]"\n'
    "    .venv-bench/bin/python bench/golden.py"
)


@dataclass
class Graph:
    """The network flattened for Brian2: one group of LIF neurons, one of sources.

    Attributes
    ----------
    lif_offset, src_offset
        First index of each population in the LIF group or in the source group.
    params
        Per-neuron constants of the LIF group: ``alpha``, ``beta``, ``theta``, ``bias``,
        ``ref_steps`` and ``sub`` (1 for reset by subtraction), and ``v0``, the initial ``v``.
    rec, inp
        ``(pre, post, weight, delay)`` of the synapses from LIF neurons and from sources.
    src_step, src_neuron
        Every spike of the sources over the run, ``neuron`` indexed in the source group.
    outdeg_lif, outdeg_src
        Number of outgoing synapses of each neuron of the two groups.
    """

    lif_offset: dict[str, int]
    src_offset: dict[str, int]
    n_lif: int
    n_src: int
    params: dict[str, np.ndarray]
    rec: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    inp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    src_step: np.ndarray
    src_neuron: np.ndarray
    outdeg_lif: np.ndarray
    outdeg_src: np.ndarray


@dataclass
class Measure:
    """What one backend did in one run."""

    backend: str
    wall_s: float
    spikes: int
    events: int
    rates_hz: dict[str, float]
    notes: list[str] = field(default_factory=list)
    #: CPU time of this process over the run, for the backends that run in it.
    cpu_s: float | None = None


def flatten(net: Network, steps: int) -> Graph:
    """Flatten ``net`` into one LIF group and one source group, with ``steps`` of input.

    Parameters
    ----------
    net
        A loaded network whose LIF populations all have ``real`` parameters.
    steps
        Number of steps of Poisson (or explicit) source spikes to draw.
    """
    lif_offset: dict[str, int] = {}
    src_offset: dict[str, int] = {}
    n_lif = n_src = 0
    for p in net.populations.values():
        if p.is_source:
            src_offset[p.name], n_src = n_src, n_src + p.size
        else:
            lif_offset[p.name], n_lif = n_lif, n_lif + p.size
    params = {
        k: np.zeros(n_lif) for k in ("alpha", "beta", "theta", "bias", "ref_steps", "sub", "v0")
    }
    steps_l: list[np.ndarray] = []
    neurons_l: list[np.ndarray] = []
    for p in net.populations.values():
        if p.source is not None:
            st, nr = p.source.spikes(p.size, steps, net.dt_ms)
            steps_l.append(st)
            neurons_l.append(nr + src_offset[p.name])
            continue
        r = p.real
        if r is None:
            raise ValueError(f"population {p.name!r} has no real-arithmetic parameters")
        sl = slice(lif_offset[p.name], lif_offset[p.name] + p.size)
        params["alpha"][sl], params["beta"][sl], params["theta"][sl] = r.alpha, r.beta, r.theta
        params["bias"][sl], params["ref_steps"][sl] = r.bias, r.refractory
        params["sub"][sl] = float(r.subtract)
        if p.v0_real is not None:
            params["v0"][sl] = p.v0_real
    parts: dict[bool, list[tuple[np.ndarray, ...]]] = {True: [], False: []}
    for pr in net.projections:
        if pr.stdp is not None:
            raise ValueError(f"projection {pr.name!r} is plastic; the benchmark runs fixed weights")
        assert pr.weight_real is not None
        from_src = net.populations[pr.pre].is_source
        pre = pr.pre_idx + (src_offset if from_src else lif_offset)[pr.pre]
        post = pr.post_idx + lif_offset[pr.post]
        parts[from_src].append((pre, post, pr.weight_real, pr.delay))

    def cat(items: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        if not items:
            z = np.zeros(0, dtype=np.int64)
            return z, z, np.zeros(0), z
        return tuple(np.concatenate(col) for col in zip(*items, strict=True))

    rec, inp = cat(parts[False]), cat(parts[True])
    src_step = np.concatenate(steps_l) if steps_l else np.zeros(0, dtype=np.int64)
    src_neuron = np.concatenate(neurons_l) if neurons_l else np.zeros(0, dtype=np.int64)
    return Graph(
        lif_offset=lif_offset,
        src_offset=src_offset,
        n_lif=n_lif,
        n_src=n_src,
        params=params,
        rec=(rec[0], rec[1], rec[2], rec[3]),
        inp=(inp[0], inp[1], inp[2], inp[3]),
        src_step=src_step,
        src_neuron=src_neuron,
        outdeg_lif=np.bincount(rec[0], minlength=n_lif),
        outdeg_src=np.bincount(inp[0], minlength=n_src),
    )


def _rates(net: Network, steps: int, counts: dict[str, int]) -> dict[str, float]:
    seconds = steps * net.dt_ms / 1000.0
    return {name: counts[name] / net.populations[name].size / seconds for name in counts}


def prepare_numba(threads: list[int]) -> list[str]:
    """Import numba and load (or compile) the golden model's kernels; say how long each took.

    Returns
    -------
    list of str
        Notes for the table, or an empty list when numba cannot be imported or
        ``SPIKEFAB_NO_NUMBA`` is set.
    """
    t0 = time.perf_counter()
    if os.environ.get(golden.NO_NUMBA_ENV, "") not in ("", "0") or not golden.numba_available():
        return []
    t1 = time.perf_counter()
    tiny = load(ROOT / "examples" / "synfire.yaml")
    for k in sorted(set(threads)):
        GoldenModel(tiny, numba=True, threads=k).step()
    t2 = time.perf_counter()
    kernels = golden.fast_kernels()
    assert kernels is not None
    stats = kernels.advance.stats
    how = "loaded from the on-disk cache" if sum(stats.cache_hits.values()) else "compiled"
    import numba

    return [
        f"numba {numba.__version__}: import {t1 - t0:.2f} s; kernels {how} in {t2 - t1:.2f} s "
        f"({stats.cache_path}); neither is in the timed runs; numba has "
        f"{numba.config.NUMBA_NUM_THREADS} threads ({numba.threading_layer()} layer)"
    ]


def _label(base: str, threads: int) -> str:
    return f"{base}, {threads} thread{'s' if threads > 1 else ''}"


def run_golden(
    net: Network, steps: int, repeat: int, numba: bool, threads: int = 1
) -> tuple[Measure, Any, GoldenModel]:
    """Time ``GoldenModel(net, numba=numba, threads=threads).run(steps)``, best of ``repeat``
    fresh models.

    Returns
    -------
    tuple
        The measure, the :class:`~spikefab.sim.results.RunResult` of the last run and its
        model.
    """
    best = float("inf")
    setup = cpu = 0.0
    result = None
    model = None
    for _ in range(repeat):
        del result, model
        t0 = time.perf_counter()
        model = GoldenModel(net, numba=numba, threads=threads)
        t1, c1 = time.perf_counter(), time.process_time()
        result = model.run(steps)
        t2, c2 = time.perf_counter(), time.process_time()
        if t2 - t1 < best:
            best, setup, cpu = t2 - t1, t1 - t0, c2 - c1
    assert result is not None and model is not None
    if any(pb.variable == "spikes" for pb in net.probes):
        raise ValueError("the network has spike probes, so a run does not record every spike")
    offsets = np.array([model.offset[name] for name in result.populations])
    gid = offsets[result.population] + result.neuron
    events = int(model.syn_count[gid].sum())
    counts = {
        name: int(np.count_nonzero(result.population == k))
        for k, name in enumerate(result.populations)
        if not net.populations[name].is_source
    }
    per_step = best / steps * 1e6
    label = f"golden ({model.path})"
    if model.path == "numba":
        label = _label("golden (numba", threads) + ")"
    measure = Measure(
        label,
        best,
        result.n_spikes,
        events,
        _rates(net, steps, counts),
        [
            f"{per_step:.1f} us/step, {events / steps:.0f} events/step; setup "
            f"(GoldenModel(net)) {setup:.3f} s; best of {repeat} runs"
        ],
        cpu,
    )
    return measure, result, model


def source_draw_seconds(net: Network, steps: int) -> float:
    """Time drawing the sources' spikes of ``steps`` steps, in the golden model's blocks."""
    offset, streams = 0, []
    for p in net.populations.values():
        if p.source is not None:
            streams.append((offset, p.size, p.source.stream(p.size, net.dt_ms)))
        offset += p.size
    sources = golden._Sources(streams)
    t0 = time.perf_counter()
    t = 0
    while streams and t < steps:
        sources.window(t)
        t = sources.t1
    return time.perf_counter() - t0


def reference_spikes(net: Network, steps: int, g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Return the LIF spikes ``(step, index in the LIF group)`` of the float reference."""
    res = FloatReference(net).run(steps)
    names = res.populations
    lif = np.array([not net.populations[n].is_source for n in names])
    offs = np.array([g.lif_offset.get(n, 0) for n in names])
    keep = lif[res.population]
    return res.step[keep], offs[res.population[keep]] + res.neuron[keep]


def first_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> int:
    """Return the first step at which two ``(step, neuron)`` spike lists differ, or -1."""
    ka = np.sort(a[0] * (1 << 32) + a[1])
    kb = np.sort(b[0] * (1 << 32) + b[1])
    n = min(ka.size, kb.size)
    diff = np.flatnonzero(ka[:n] != kb[:n])
    if diff.size:
        return int(min(ka[diff[0]], kb[diff[0]]) >> 32)
    if ka.size != kb.size:
        longer = ka if ka.size > kb.size else kb
        return int(longer[n] >> 32)
    return -1


def import_brian2() -> ModuleType:
    """Import Brian2, or exit with status 2 saying how to install it."""
    try:
        import brian2
    except Exception as e:  # numpy 2.4 makes the import fail with AttributeError
        sys.stderr.write(
            f"error: Brian2 cannot be imported with {sys.executable} "
            f"({type(e).__name__}: {e}).\n"
            "Brian2 2.9 needs numpy < 2.4; set up the benchmark venv from the repository "
            f"root and run the benchmark with it:\n    {SETUP}\n"
            "(or pass --golden-only to measure the golden model alone)\n"
        )
        raise SystemExit(2) from None
    return brian2


def build_brian2(b2: ModuleType, net: Network, g: Graph, steps: int) -> dict[str, Any]:
    """Create the Brian2 objects of the flattened network on the current device.

    Returns
    -------
    dict
        ``network`` (a ``brian2.Network``), ``spikes`` (the LIF ``SpikeMonitor``),
        ``duration`` (a Brian2 quantity).
    """
    dt = net.dt_ms * b2.ms
    b2.defaultclock.dt = dt
    model = """
    u : 1
    v : 1
    acc : 1
    ref : 1
    active : 1
    alpha : 1 (constant)
    beta : 1 (constant)
    theta : 1 (constant)
    bias : 1 (constant)
    ref_steps : 1 (constant)
    sub : 1 (constant)
    """
    update = """
    u = alpha*u + acc
    acc = 0
    active = int(ref < 0.5)
    v = active*(beta*v + u + bias) + (1 - active)*v
    ref = ref - (1 - active)
    """
    lif = b2.NeuronGroup(
        g.n_lif,
        model,
        threshold="v > theta and active > 0.5",
        reset="v = (v - theta)*sub\nref = ref_steps",
        name="lif",
    )
    for k, vals in g.params.items():
        if k != "v0":
            setattr(lif, k, vals)
    lif.v = g.params["v0"]
    lif.run_regularly(update, when="groups", name="lif_update")
    objects: list[Any] = [lif]
    pathways = [("rec", g.rec, lif)]
    if g.n_src:
        src = b2.SpikeGeneratorGroup(g.n_src, g.src_neuron, g.src_step * dt, name="sources")
        objects.append(src)
        pathways.append(("inp", g.inp, src))
    for label, (pre, post, w, d), pre_group in pathways:
        if not pre.size:
            continue
        homogeneous = bool(np.all(d == d[0]))
        kw: dict[str, Any] = {"delay": (int(d[0]) - 1) * dt} if homogeneous else {}
        syn = b2.Synapses(
            pre_group, lif, "w : 1 (constant)", on_pre="acc_post += w", name=f"syn_{label}", **kw
        )
        syn.connect(i=pre, j=post)
        syn.w = w
        if not homogeneous:
            syn.delay = (d - 1) * dt
        objects.append(syn)
    spikes = b2.SpikeMonitor(lif, name="lif_spikes")
    objects.append(spikes)
    rec: set[int] = set()
    variables: set[str] = set()
    for pb in net.probes:
        if pb.variable in ("u", "v") and pb.target in g.lif_offset:
            idx = np.arange(net.populations[pb.target].size) if pb.neurons is None else pb.neurons
            rec.update(int(i) + g.lif_offset[pb.target] for i in idx)
            variables.add(pb.variable)
    if rec:
        objects.append(b2.StateMonitor(lif, sorted(variables), record=sorted(rec), name="probes"))
    return {"network": b2.Network(*objects), "spikes": spikes, "duration": steps * dt}


def _b2_measure(
    backend: str, net: Network, g: Graph, steps: int, mon: Any, wall: float, notes: list[str]
) -> tuple[Measure, tuple[np.ndarray, np.ndarray]]:
    i = np.asarray(mon.i[:], dtype=np.int64)
    t_steps = np.rint(np.asarray(mon.t[:]) / (net.dt_ms / 1000.0)).astype(np.int64)
    events = int(g.outdeg_lif[i].sum() + g.outdeg_src[g.src_neuron].sum())
    counts = {}
    for name, off in g.lif_offset.items():
        size = net.populations[name].size
        counts[name] = int(np.count_nonzero((i >= off) & (i < off + size)))
    spikes = int(i.size + g.src_neuron.size)
    return Measure(backend, wall, spikes, events, _rates(net, steps, counts), notes), (t_steps, i)


def run_brian2_runtime(
    b2: ModuleType, net: Network, g: Graph, steps: int, repeat: int
) -> tuple[Measure, tuple[np.ndarray, np.ndarray]]:
    """Run in Brian2's runtime mode with the numpy target, best of ``repeat`` fresh networks.

    The preparation of each network (code generation) is done by a run of 0 ms, timed apart.
    """
    b2.set_device("runtime")
    b2.prefs.codegen.target = "numpy"
    best = None
    for _ in range(repeat):
        objs = build_brian2(b2, net, g, steps)
        bnet = objs["network"]
        t0 = time.perf_counter()
        bnet.run(0 * b2.ms)
        t1, c1 = time.perf_counter(), time.process_time()
        bnet.run(objs["duration"])
        t2, c2 = time.perf_counter(), time.process_time()
        if best is None or t2 - t1 < best[0]:
            best = (t2 - t1, t1 - t0, objs["spikes"], c2 - c1)
        del bnet, objs
    assert best is not None
    notes = [f"preparation (run of 0 ms: code generation) {best[1]:.3f} s; best of {repeat} runs"]
    m, spikes = _b2_measure("brian2 runtime", net, g, steps, best[2], best[0], notes)
    m.cpu_s = best[3]
    return m, spikes


def run_brian2_standalone(
    b2: ModuleType, net: Network, g: Graph, steps: int, repeat: int, threads: int = 1
) -> tuple[Measure, tuple[np.ndarray, np.ndarray], Measure]:
    """Build the network with Brian2's cpp_standalone device in a temporary directory and run it.

    One thread is the plain single-threaded build (``openmp_threads = 0``); more threads is
    the OpenMP build with that many threads. The binary is compiled once and run ``repeat``
    times; the best times are kept.

    Returns
    -------
    tuple
        The measure of the simulation loop, its spikes, and the measure of the whole binary.
    """
    with tempfile.TemporaryDirectory(prefix="spikefab-brian2-") as tmp:
        b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads == 1 else threads
        objs = build_brian2(b2, net, g, steps)
        objs["network"].run(objs["duration"])
        t0 = time.perf_counter()
        b2.device.build(directory=tmp, compile=True, run=True, with_output=False)
        total = time.perf_counter() - t0
        compile_s = float(b2.device.timers["compile"]["make"])
        loop = float(b2.device._last_run_time)
        binary = float(b2.device.timers["run_binary"])
        for _ in range(repeat - 1):
            b2.device.run(directory=tmp, with_output=False)
            loop = min(loop, float(b2.device._last_run_time))
            binary = min(binary, float(b2.device.timers["run_binary"]))
        how = "single-threaded" if threads == 1 else f"OpenMP, {threads} threads"
        notes = [
            f"{how}; build + first run {total:.2f} s, of which g++ (make) {compile_s:.2f} s; "
            f"best of {repeat} runs of the binary",
            "(binary): the whole binary: loading the arrays, the loop, writing the results",
        ]
        label = _label("brian2 cpp_standalone", threads)
        loop_m, sp = _b2_measure(label, net, g, steps, objs["spikes"], loop, notes)
        whole = Measure(f"{label} (binary)", binary, loop_m.spikes, loop_m.events, loop_m.rates_hz)
        b2.device.reinit()
        b2.set_device("runtime")
    return loop_m, sp, whole


def print_table(measures: list[Measure], steps: int, dt_ms: float) -> None:
    """Print one line per backend: wall time, speed, event rate, spikes and rates."""
    sim_s = steps * dt_ms / 1000.0
    pops = list(measures[0].rates_hz)
    head = (
        f"{'backend':<32}{'wall s':>10}{'cpu s':>9}{'sim s/wall s':>14}{'events/s':>14}"
        f"{'spikes':>10}{'events':>11}"
    )
    head += "".join(f"{p + ' Hz':>10}" for p in pops)
    print(head)
    print("-" * len(head))
    for m in measures:
        cpu = "-" if m.cpu_s is None else f"{m.cpu_s:.4f}"
        line = (
            f"{m.backend:<32}{m.wall_s:>10.4f}{cpu:>9}{sim_s / m.wall_s:>14.3f}"
            f"{m.events / m.wall_s:>14.4g}{m.spikes:>10d}{m.events:>11d}"
        )
        line += "".join(f"{m.rates_hz[p]:>10.2f}" for p in pops)
        print(line)
    for m in measures:
        for note in m.notes:
            print(f"  {m.backend}: {note}")


def large_network_yaml(scale: int = 100) -> str:
    """Return ``examples/balanced.yaml`` scaled up ``scale`` times, as a network file.

    Every population is ``scale`` times larger and every connection probability ``scale``
    times smaller, so that each neuron keeps the in-degrees, weights and so the dynamics of
    the balanced network (about 100 recurrent and 20 input synapses), with 100,000 LIF
    neurons and 12M synapses at the default scale. The same seeds; no probes.
    """
    import yaml

    def lif() -> dict:
        return {
            "tau_syn_ms": 5.0,
            "tau_mem_ms": 20.0,
            "v_threshold": 20.0,
            "bias": 0.5,
            "refractory_ms": 2.0,
            "reset": "zero",
        }

    p = 0.1 / scale
    projs = []
    for k, (pre, post, w) in enumerate(
        [
            ("input", "exc", 0.8),
            ("input", "inh", 0.8),
            ("exc", "exc", 0.2),
            ("exc", "inh", 0.2),
            ("inh", "exc", -1.5),
            ("inh", "inh", -1.5),
        ]
    ):
        connect: dict[str, Any] = {"kind": "fixed_probability", "p": p, "seed": k + 1}
        if pre == post:
            connect["allow_self"] = False
        projs.append({"pre": pre, "post": post, "connect": connect, "weight": w, "delay": 2})
    doc = {
        "spikefab": 1,
        "name": f"balanced_x{scale}",
        "dt_ms": 1.0,
        "populations": {
            "input": {
                "kind": "spike_source",
                "size": 200 * scale,
                "poisson": {"rate_hz": 10.0, "seed": 7},
            },
            "exc": {"size": 800 * scale, "neuron": lif()},
            "inh": {"size": 200 * scale, "neuron": lif()},
        },
        "projections": projs,
    }
    head = "# bench/golden.py: examples/balanced.yaml scaled up (large_network_yaml).\n"
    return head + yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Summary:
    """The figures of one network that the closing summary prints."""

    name: str
    golden: dict[int, Measure]
    brian2: dict[int, Measure]
    load_s: float
    setup_s: float
    bytes_per_synapse: float
    pointer_bytes_per_synapse: float


def bench_network(
    path: Path, args: argparse.Namespace, b2: ModuleType | None, large: bool
) -> Summary:
    """Measure every backend on one network, print its table and ratios; return a summary."""
    steps = args.steps
    t0 = time.perf_counter()
    net = load(path)
    load_s = time.perf_counter() - t0
    print("=" * 100)
    print(
        f"network {net.name} ({os.path.relpath(path)}): {net.n_neurons} LIF neurons, "
        f"{sum(p.size for p in net.populations.values() if p.is_source)} sources, "
        f"{net.n_synapses} synapses; {steps} steps of {net.dt_ms} ms"
    )
    print(f"load (YAML to the network's tables, spikefab.mapping.loader.load): {load_s:.3f} s")
    print()
    measures: list[Measure] = []
    golden_by_threads: dict[int, Measure] = {}
    results = []
    setup_s = bytes_syn = bytes_ptr = 0.0
    if args.numba_notes:
        for k in args.threads:
            m, res, model = run_golden(net, steps, args.repeat, numba=True, threads=k)
            measures.append(m)
            results.append((m.backend, res))
            golden_by_threads[k] = m
            if k == 1:
                t1 = time.perf_counter()
                GoldenModel(net, numba=True)
                setup_s = time.perf_counter() - t1
                tb = model.table_bytes()
                bytes_syn = tb["synapses"] / max(net.n_synapses, 1)
                bytes_ptr = tb["pointers"] / max(net.n_synapses, 1)
            del model
    numpy_ok = not args.no_numpy and not large
    if not args.numba_notes or numpy_ok:
        m, res, _ = run_golden(net, steps, 1 if large else args.repeat, numba=False)
        measures.append(m)
        results.append((m.backend, res))
    for name, res in results[1:]:
        same = all(
            np.array_equal(getattr(res, k), getattr(results[0][1], k))
            for k in ("step", "population", "neuron")
        )
        if not same:
            raise SystemExit(f"error: {name} and {results[0][0]} give different spikes")
    n_golden = len(measures)
    brian2_by_threads: dict[int, Measure] = {}
    agree = []
    if b2 is not None:
        g = flatten(net, steps)
        if not large:
            rt, rt_spikes = run_brian2_runtime(b2, net, g, steps, args.repeat)
            measures.append(rt)
            agree.append(("brian2 runtime", rt_spikes))
        if not args.no_standalone:
            for k in args.threads:
                sa, sa_spikes, whole = run_brian2_standalone(b2, net, g, steps, args.repeat, k)
                measures += [sa, whole]
                brian2_by_threads[k] = sa
                agree.append((sa.backend, sa_spikes))
    print_table(measures, steps, net.dt_ms)
    draw = source_draw_seconds(net, steps)
    if draw > 0:
        print(
            f"  the golden runs include drawing the sources' Poisson spikes ({draw:.4f} s for "
            f"{steps} steps); Brian2 plays back the same spikes, drawn before its runs"
        )
    if args.numba_notes and 1 in args.threads:
        print(
            f"  golden (numba) tables: {bytes_syn:.2f} bytes per synapse (ring offset int32 + "
            f"value int16) and {bytes_ptr:.3f} bytes per synapse of pointers; setup "
            f"GoldenModel(net) {setup_s:.3f} s after a load of {load_s:.3f} s"
        )
    if agree:
        print()
        if large:
            print("(the float reference is not run on the large network: rates only)")
        else:
            ref = reference_spikes(net, steps, flatten(net, steps))
            for name, sp in agree:
                k = first_difference(ref, sp)
                same = "identical over the run" if k < 0 else f"identical before step {k}"
                print(f"{name} spikes vs spikefab FloatReference: {same}")
    if n_golden > 1:
        print()
        print(f"{', '.join(m.backend for m in measures[:n_golden])}: identical spikes")
    if len(measures) > n_golden:
        print()
        for gold in measures[:n_golden]:
            for m in measures[n_golden:]:
                ev = (gold.events / gold.wall_s) / (m.events / m.wall_s)
                print(
                    f"{gold.backend} / {m.backend + ':':<46} events/s {ev:8.3f}x   "
                    f"sim s per wall s {m.wall_s / gold.wall_s:8.3f}x"
                )
    print()
    return Summary(
        net.name,
        golden_by_threads,
        brian2_by_threads,
        load_s,
        setup_s,
        bytes_syn,
        bytes_ptr,
    )


def print_summary(summaries: list[Summary]) -> None:
    """Print the golden/Brian2 cpp_standalone ratios of every network and thread count."""
    print("=" * 100)
    print("summary: events/s of golden (numba) and Brian2 cpp_standalone, measured in this run")
    head = (
        f"{'network':<16}{'threads':>8}{'golden ev/s':>14}{'brian2 ev/s':>14}"
        f"{'golden/brian2':>15}{'bytes/syn':>11}{'load s':>9}{'setup s':>9}"
    )
    print(head)
    print("-" * len(head))
    for sm in summaries:
        for k, gm in sm.golden.items():
            ge = gm.events / gm.wall_s
            bm = sm.brian2.get(k)
            be = f"{bm.events / bm.wall_s:14.4g}" if bm else f"{'-':>14}"
            ratio = f"{ge / (bm.events / bm.wall_s):14.3f}x" if bm else f"{'-':>15}"
            print(
                f"{sm.name:<16}{k:>8}{ge:>14.4g}{be}{ratio}{sm.bytes_per_synapse:>11.2f}"
                f"{sm.load_s:>9.2f}{sm.setup_s:>9.2f}"
            )
    small = next((sm for sm in summaries if sm.name == "balanced" and 1 in sm.golden), None)
    for sm in summaries:
        if small is None or 1 not in sm.golden or not sm.name.startswith("balanced_x"):
            continue
        a, b = sm.golden[1], small.golden[1]
        frac = (a.events / a.wall_s) / (b.events / b.wall_s)
        print(
            f"{sm.name} / balanced, golden (numba, 1 thread) events/s: {frac:.3f} "
            f"(target >= 0.8: {'met' if frac >= 0.8 else 'MISSED'})"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on every network and print the tables, ratios and summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="steps to simulate (default 1000)")
    ap.add_argument(
        "--network",
        type=Path,
        action="append",
        help="network YAML file (repeatable; default: balanced, CUBA and the large network)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per backend, best kept (default 3)")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="thread counts of the golden model and of Brian2 cpp_standalone (default 1 2)",
    )
    ap.add_argument(
        "--large-scale",
        type=int,
        default=100,
        help="the large network is balanced.yaml this many times larger (default 100: 100k "
        "neurons); 0 leaves it out",
    )
    ap.add_argument("--golden-only", action="store_true", help="measure the golden model alone")
    ap.add_argument("--no-standalone", action="store_true", help="skip Brian2 cpp_standalone")
    ap.add_argument("--no-numpy", action="store_true", help="skip the golden model's numpy path")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.repeat < 1 or min(args.threads) < 1 or args.large_scale < 0:
        ap.error("--steps, --repeat and --threads must be >= 1, --large-scale >= 0")
    b2 = None if args.golden_only else import_brian2()
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}"
        + (f", brian2 {b2.__version__}" if b2 is not None else "")
        + f"; {os.cpu_count()} cores"
    )
    args.numba_notes = prepare_numba(args.threads)
    for note in args.numba_notes:
        print(note)
    if not args.numba_notes:
        print(
            "the golden model runs its numpy path only: numba is not installed (pip install "
            f'"spikefab[fast]") or {golden.NO_NUMBA_ENV} is set'
        )
    print()
    summaries = []
    with tempfile.TemporaryDirectory(prefix="spikefab-bench-") as tmp:
        networks = [(p, False) for p in args.network or []]
        if not args.network:
            networks = [(DEFAULT_NETWORK, False), (ROOT / "examples" / "cuba.yaml", False)]
            if args.large_scale:
                big = Path(tmp) / f"balanced_x{args.large_scale}.yaml"
                big.write_text(large_network_yaml(args.large_scale))
                networks.append((big, True))
        for path, large in networks:
            summaries.append(bench_network(path, args, b2, large))
    print_summary(summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
