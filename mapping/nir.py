"""NIR graphs in and out: the Neuromorphic Intermediate Representation (``docs/nir.md``).

:func:`import_nir` turns a NIR graph (a file written by ``nir.write`` or a ``nir.NIRGraph``)
into a network description in physical units, which the usual loader then validates and
quantizes, so that every rounding is reported as for a YAML file. :func:`export_nir` writes a
network as a NIR graph that imports back into the same network.

NIR neurons are continuous-time. With a step ``dt`` they are discretized by forward Euler,
the convention of the discrete-time frameworks that write NIR (``x' = -x / tau`` becomes
``x[t] = (1 - dt/tau) x[t-1]``); times in a graph (``tau``, ``delay``) are in seconds.
Then (``docs/nir.md`` for every node)::

    CubaLIF  u = alpha u + sum(w)   with alpha = 1 - dt/tau_syn,
             v = beta v + u + bias  with beta  = 1 - dt/tau_mem,
             a synapse w = (dt/tau_mem) r (dt/tau_syn) w_in W, bias = (dt/tau_mem) v_leak
    LIF      the same with alpha = 0 (the current is the step's input): w = (dt/tau) r W
    IF       beta = 1, alpha = 0, w = dt r W

which is the contract's neuron (``docs/contract.md`` section 2) in physical units
(``docs/network-format.md``). Every edge from a neuron (or input) to a neuron takes one step
(the contract's shortest synaptic delay), and a ``Delay`` node adds its delay to it.

What the hardware cannot hold is refused with :class:`NIRError`, naming the node, the field,
the value and what is supported; nothing is dropped silently.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from spikefab.hdl import params as P
from spikefab.mapping import spec as S
from spikefab.mapping.network import Network, NetworkError, Problem

__all__ = [
    "INSTALL_HINT",
    "NIRError",
    "NIRImport",
    "NIRNotInstalledError",
    "export_nir",
    "import_nir",
    "load_nir",
    "write_nir",
]

#: What to install to read and write NIR graphs.
INSTALL_HINT = "pip install 'spikefab[nir]'"

#: The key of spikefab's own metadata in NIR nodes and graphs (a JSON string).
META_KEY = "spikefab"

NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")
LINEAR = ("Affine", "Linear", "Scale", "Delay", "Flatten", "Conv1d", "Conv2d")
POOLS = ("SumPool2d", "AvgPool2d")
SUPPORTED = ("Input", "Output", *LINEAR, *POOLS, *NEURONS, "NIRGraph")
#: Node types that stand for nothing but a name (the inputs and outputs of a subgraph).
_PASS = "pass"

#: A readout's threshold is this much above the largest voltage it can reach.
READOUT_MARGIN = 1.05


class NIRError(NetworkError):
    """A NIR graph holds nodes, edges or parameters that the hardware cannot represent."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        super().__init__(problems, source or "NIR graph")


class NIRNotInstalledError(NIRError):
    """The ``nir`` package, which reads and writes NIR graphs, is not installed."""

    def __init__(self, source: str | None = None):
        what = f"reading {source}" if source else "reading and writing NIR graphs"
        message = f"{what} needs the `nir` package, which is not installed; install it with: "
        super().__init__([Problem(("nir",), message + INSTALL_HINT)], source)
        self.args = (message + INSTALL_HINT,)


def _nir(source: str | None = None) -> Any:
    try:
        import nir
    except ImportError:
        raise NIRNotInstalledError(source) from None
    return nir


# --------------------------------------------------------------------------------------------
# Import


@dataclass
class NIRImport:
    """A NIR graph as a network: the description, the validated network, what was done.

    Attributes
    ----------
    doc
        The network description as plain data (what ``spikefab import-nir`` writes as YAML).
    network
        The validated network; ``network.quantization`` holds every rounding.
    notes
        How each node was mapped: discretization, unrolled convolutions, readouts, biases.
    """

    doc: dict[str, Any]
    network: Network
    notes: list[str] = field(default_factory=list)

    def to_yaml(self, header: str = "") -> str:
        """Return the description as YAML text, with ``header`` as leading comment lines."""
        text = yaml.dump(self.doc, Dumper=_Dumper, sort_keys=False, width=100)
        lines = [f"# {x}".rstrip() for x in header.splitlines()] if header else []
        return "\n".join([*lines, text])

    def report(self) -> list[str]:
        """Return the mapping notes and then every quantization rounding, one per line."""
        return [*self.notes, *(str(r) for r in self.network.quantization)]


class _Dumper(yaml.SafeDumper):
    """Lists of numbers (weights, pairs, spike steps) on one line each."""

    def represent_list(self, data: list) -> yaml.Node:  # type: ignore[override]
        flow = all(not isinstance(x, dict) for x in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _Dumper.represent_list)


@dataclass
class _Op:
    """A linear node as a sparse matrix ``out[rows] += vals * in[cols]`` (and a bias)."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    n_out: int
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None  # Delay nodes: steps per element, identity otherwise

    def apply(self, x: np.ndarray) -> np.ndarray:
        if self.delay is not None:
            return x.copy()
        return np.bincount(self.rows, weights=self.vals * x[self.cols], minlength=self.n_out)


@dataclass
class _Synapses:
    """Synapses as parallel arrays: ``post[k] <- pre[k]`` with ``delay[k]`` extra steps."""

    post: np.ndarray
    pre: np.ndarray
    delay: np.ndarray
    weight: np.ndarray

    @classmethod
    def identity(cls, n: int) -> _Synapses:
        idx = np.arange(n, dtype=np.int64)
        return cls(idx, idx.copy(), np.zeros(n, np.int64), np.ones(n))

    @classmethod
    def concat(cls, parts: list[_Synapses]) -> _Synapses:
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in _SYN_FIELDS))

    def through(self, op: _Op) -> _Synapses:
        """Compose with a linear node: the result indexes the node's outputs."""
        if op.delay is not None:
            return _Synapses(self.post, self.pre, self.delay + op.delay[self.post], self.weight)
        order = np.argsort(op.cols, kind="stable")
        cols, rows, vals = op.cols[order], op.rows[order], op.vals[order]
        lo = np.searchsorted(cols, self.post, "left")
        cnt = np.searchsorted(cols, self.post, "right") - lo
        rep = np.repeat(np.arange(self.post.size), cnt)
        start = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
        idx = start + np.arange(int(cnt.sum()))
        return _Synapses(
            rows[idx], self.pre[rep], self.delay[rep], self.weight[rep] * vals[idx]
        ).merged()

    def merged(self) -> _Synapses:
        """Sum synapses with the same (pre, post, delay); drop exact zeros; pre-major order."""
        if self.post.size == 0:
            return self
        keys = np.stack([self.pre, self.post, self.delay])
        uniq, inv = np.unique(keys, axis=1, return_inverse=True)
        w = np.bincount(inv.reshape(-1), weights=self.weight, minlength=uniq.shape[1])
        keep = w != 0
        return _Synapses(uniq[1][keep], uniq[0][keep], uniq[2][keep], w[keep])


_SYN_FIELDS = ("post", "pre", "delay", "weight")


def _meta(node: Any) -> dict[str, Any]:
    """Return spikefab's metadata of a node or graph (empty when there is none)."""
    md = getattr(node, "metadata", None)
    if not isinstance(md, dict) or META_KEY not in md:
        return {}
    raw = md[META_KEY]
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        out = json.loads(str(raw))
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _arr(node: Any, key: str) -> np.ndarray:
    return np.asarray(getattr(node, key), dtype=np.float64).reshape(-1)


def _kind(node: Any) -> str:
    return type(node).__name__


class _Graph:
    """A NIR graph with its subgraphs inlined, node shapes inferred and problems collected."""

    def __init__(self, graph: Any):
        self.nodes: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.edges: list[tuple[str, str]] = []
        self.problems: list[Problem] = []
        self._inline(graph, "")
        self.succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.pred: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            self.succ[a].append(b)
            self.pred[b].append(a)
        self.shape: dict[str, tuple[int, ...]] = {}
        self._infer_shapes()

    def add(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(path, message))

    def _inline(self, graph: Any, prefix: str) -> None:
        ends: dict[str, tuple[list[str], list[str]]] = {}
        for name, node in graph.nodes.items():
            full = f"{prefix}{name}"
            kind = _kind(node)
            if kind == "NIRGraph":
                self._inline(node, f"{full}.")
                ins = [f"{full}.{k}" for k, n in node.nodes.items() if _kind(n) == "Input"]
                outs = [f"{full}.{k}" for k, n in node.nodes.items() if _kind(n) == "Output"]
                ends[full] = (ins, outs)
                continue
            self.nodes[full] = node
            self.kinds[full] = kind
            if prefix and kind in ("Input", "Output"):
                self.kinds[full] = _PASS
        for a, b in graph.edges:
            a, b = f"{prefix}{a}", f"{prefix}{b}"
            srcs = ends[a][1] if a in ends else [a]
            dsts = ends[b][0] if b in ends else [b]
            for x in srcs:
                for y in dsts:
                    self.edges.append((x, y))

    # shapes ---------------------------------------------------------------------------------

    def _own_shape(self, name: str, node: Any, kind: str, given: tuple | None) -> tuple | None:
        """The output shape of a node, from its parameters or from its input's shape."""
        if kind == "Input":
            return tuple(int(x) for x in np.asarray(node.input_type["input"]).reshape(-1))
        if kind in ("Affine", "Linear"):
            w = np.asarray(node.weight)
            return (int(w.shape[0]),) if w.ndim == 2 else None
        if kind == "Scale":
            return tuple(np.asarray(node.scale).shape) or given
        if kind == "Delay":
            return tuple(np.asarray(node.delay).shape) or given
        if kind in NEURONS:
            key = {"LIF": "tau", "LI": "tau", "IF": "r"}.get(kind, "tau_mem")
            shp = tuple(np.asarray(getattr(node, key)).shape)
            return shp if int(np.prod(shp)) > 1 else given
        if given is None:
            return None
        if kind in ("Output", _PASS):
            return given
        if kind == "Flatten":
            return (int(np.prod(given)),)
        if kind in ("Conv1d", "Conv2d", *POOLS):
            geo = _conv_geometry(name, node, kind, given, self)
            return None if geo is None else geo.out_shape
        return None

    def _infer_shapes(self) -> None:
        for name, kind in self.kinds.items():
            if kind not in SUPPORTED and kind != _PASS:
                self.add(
                    (name,),
                    f"node type {kind} is not supported by the hardware; supported: "
                    f"{', '.join(SUPPORTED)}",
                )
        for _ in range(len(self.nodes) + 1):
            changed = False
            for name, node in self.nodes.items():
                if name in self.shape or self.kinds[name] not in (*SUPPORTED, _PASS):
                    continue
                given = next((self.shape[p] for p in self.pred[name] if p in self.shape), None)
                shp = self._own_shape(name, node, self.kinds[name], given)
                if shp is not None:
                    self.shape[name] = shp
                    changed = True
            if not changed:
                break
        for name, kind in self.kinds.items():
            if kind in (*SUPPORTED, _PASS) and name not in self.shape:
                self.add((name,), "has no shape: nothing connects it to an input of known size")

    def size(self, name: str) -> int:
        return int(np.prod(self.shape[name]))

    def in_size(self, name: str) -> int | None:
        """The flat input size a node expects from its own parameters (None: any)."""
        node, kind = self.nodes[name], self.kinds[name]
        if kind in ("Affine", "Linear"):
            return int(np.asarray(node.weight).shape[-1])
        if kind in ("Conv1d", "Conv2d", *POOLS):
            pre = next((p for p in self.pred[name] if p in self.shape), None)
            return None if pre is None else self.size(pre)
        if kind in ("Flatten", _PASS, "Output", "Input"):
            return None
        return self.size(name)


# --- convolutions --------------------------------------------------------------------------


@dataclass
class _ConvGeometry:
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray  # (C_out, C_in / groups, *kernel)
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    bias: np.ndarray | None


def _tup(x: Any, n: int) -> tuple[int, ...]:
    a = np.asarray(x).reshape(-1)
    if a.size == 1:
        return (int(a[0]),) * n
    return tuple(int(v) for v in a[:n])


def _conv_geometry(
    name: str, node: Any, kind: str, given: tuple, graph: _Graph
) -> _ConvGeometry | None:
    dims = 1 if kind == "Conv1d" else 2
    if len(given) != dims + 1:
        graph.add(
            (name,),
            f"input shape {given} does not fit a {kind}; expected (channels, "
            f"{'length' if dims == 1 else 'height, width'})",
        )
        return None
    channels, spatial = given[0], given[1:]
    if kind in POOLS:
        k = _tup(node.kernel_size, dims)
        scale = 1.0 / float(np.prod(k)) if kind == "AvgPool2d" else 1.0
        weight = np.full((channels, 1, *k), scale)
        stride, groups, dilation, bias = _tup(node.stride, dims), channels, (1,) * dims, None
        padding: Any = node.padding
    else:
        weight = np.asarray(node.weight, dtype=np.float64)
        stride, dilation = _tup(node.stride, dims), _tup(node.dilation, dims)
        groups, padding = int(np.asarray(node.groups).reshape(-1)[0]), node.padding
        bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
        if weight.ndim != dims + 2 or weight.shape[1] * groups != channels:
            graph.add(
                (name, "weight"),
                f"shape {weight.shape} does not fit an input of {channels} channels in "
                f"{groups} group(s); expected (C_out, C_in / groups, *kernel)",
            )
            return None
    if isinstance(padding, bytes):
        padding = padding.decode()
    kernel = weight.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0,) * dims
        elif padding == "same" and all(s == 1 for s in stride):
            # as PyTorch: the total padding is split, the extra element on the far side
            pad = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel, strict=True))
        else:
            graph.add((name, "padding"), f"{padding!r} is not supported with stride {stride}")
            return None
    else:
        pad = _tup(padding, dims)
    same = isinstance(padding, str) and padding == "same"
    out = []
    for n, p, d, k, s in zip(spatial, pad, dilation, kernel, stride, strict=True):
        out.append(int(n if same else (n + 2 * p - d * (k - 1) - 1) // s + 1))
    if min(out) < 1:
        graph.add((name,), f"gives an empty output {tuple(out)} for the input {given}")
        return None
    return _ConvGeometry(
        tuple(given), (weight.shape[0], *out), weight, stride, pad, dilation, groups, bias
    )


def _unroll_conv(g: _ConvGeometry) -> _Op:
    """The convolution as explicit (output, input, weight) entries, zeros left out."""
    c_out, c_in_g = g.weight.shape[:2]
    kernel = g.weight.shape[2:]
    out_sp, in_sp = g.out_shape[1:], g.in_shape[1:]
    grids = np.meshgrid(
        np.arange(c_out),
        np.arange(c_in_g),
        *(np.arange(n) for n in out_sp),
        *(np.arange(k) for k in kernel),
        indexing="ij",
    )
    co, ci = grids[0].reshape(-1), grids[1].reshape(-1)
    dims = len(out_sp)
    o = [x.reshape(-1) for x in grids[2 : 2 + dims]]
    k = [x.reshape(-1) for x in grids[2 + dims :]]
    pos = [o[i] * g.stride[i] - g.padding[i] + k[i] * g.dilation[i] for i in range(dims)]
    inside = np.ones(co.size, dtype=bool)
    for i in range(dims):
        inside &= (pos[i] >= 0) & (pos[i] < in_sp[i])
    cin = (co // (c_out // g.groups)) * c_in_g + ci
    vals = g.weight[(co, ci, *k)]
    keep = inside & (vals != 0)
    col = cin[keep]
    row = co[keep]
    for i in range(dims):
        col = col * in_sp[i] + pos[i][keep]
        row = row * out_sp[i] + o[i][keep]
    n_out = int(np.prod(g.out_shape))
    bias = None
    if g.bias is not None and np.any(g.bias):
        bias = np.repeat(g.bias, int(np.prod(out_sp)))
    return _Op(row.astype(np.int64), col.astype(np.int64), vals[keep], n_out, bias)


# --- operators ------------------------------------------------------------------------------


def _operator(graph: _Graph, name: str, dt_ms: float, notes: list[str]) -> _Op | None:
    node, kind = graph.nodes[name], graph.kinds[name]
    n = graph.size(name)
    ident = np.arange(n, dtype=np.int64)
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 2:
            graph.add((name, "weight"), f"has shape {w.shape}; supported: 2-d (out, in)")
            return None
        rows, cols = np.nonzero(w)
        bias = None
        if kind == "Affine":
            b = np.broadcast_to(np.asarray(node.bias, dtype=np.float64).reshape(-1), (n,))
            bias = b.copy() if np.any(b) else None
        return _Op(rows.astype(np.int64), cols.astype(np.int64), w[rows, cols], n, bias)
    if kind == "Scale":
        s = np.broadcast_to(_arr(node, "scale"), (n,))
        return _Op(ident, ident, s.copy(), n)
    if kind in ("Flatten", _PASS):
        return _Op(ident, ident, np.ones(n), n)
    if kind == "Delay":
        d = np.broadcast_to(_arr(node, "delay"), (n,)) * 1000.0 / dt_ms
        steps = np.rint(d)
        bad = (d < 0) | (steps + 1 > P.MAX_DELAY)
        if bad.any():
            k = int(np.argmax(bad))
            graph.add(
                (name, "delay"),
                f"{float(_arr(node, 'delay')[k % _arr(node, 'delay').size]):g} s is "
                f"{float(d[k]):g} steps at dt_ms {dt_ms}; accepted: 0..{P.MAX_DELAY - 1} steps "
                f"(each synapse takes one more step, up to {P.MAX_DELAY})",
            )
            return None
        off = np.abs(d - steps)
        if off.max(initial=0) > 1e-6:
            notes.append(
                f"{name} (Delay): delays rounded to whole steps at dt_ms {dt_ms}, by up to "
                f"{float(off.max()):.3g} steps"
            )
        return _Op(ident, ident, np.ones(n), n, delay=steps.astype(np.int64))
    pre = next(p for p in graph.pred[name] if p in graph.shape)
    geo = _conv_geometry(name, node, kind, graph.shape[pre], graph)
    if geo is None:
        return None
    op = _unroll_conv(geo)
    notes.append(
        f"{name} ({kind} {'x'.join(map(str, geo.in_shape))} -> "
        f"{'x'.join(map(str, geo.out_shape))}): unrolled into {op.rows.size} weights"
    )
    return op


# --- neurons -------------------------------------------------------------------------------


@dataclass
class _Neuron:
    """A neuron node in the contract's physical form (one set of parameters)."""

    name: str
    kind: str
    size: int
    alpha: float  # u[t] = alpha u[t-1] + input
    beta: float  # v[t] = beta v[t-1] + u[t] + bias
    gain: np.ndarray  # per neuron: contract input per unit of NIR input signal
    vbias: np.ndarray  # per neuron: bias added to v by the leak
    theta: float  # threshold (inf for a readout, set later)
    readout: bool
    scale: np.ndarray  # per neuron: the voltage unit folded in (1 / threshold)
    notes: list[str] = field(default_factory=list)


def _uniform(x: np.ndarray) -> bool:
    return bool(np.allclose(x, x[0], rtol=1e-9, atol=0)) if x.size else True


def _factor(
    graph: _Graph, name: str, key: str, tau: np.ndarray, dt_s: float, allow_inf: bool
) -> float | None:
    """The per-step factor ``1 - dt/tau`` of a uniform time constant, or None after a problem."""
    if not _uniform(tau):
        graph.add(
            (name, key),
            f"per-neuron values differ ({float(tau.min()):g} .. {float(tau.max()):g} s); a "
            "population has one time constant; split the node into nodes of equal tau",
        )
        return None
    t = float(tau[0])
    if math.isinf(t) and t > 0 and allow_inf:
        return 1.0
    if not t > 0 or math.isinf(t):
        graph.add(
            (name, key),
            f"{t:g} s is not a time constant the hardware holds; accepted: > 0"
            + (" (inf: no leak)" if allow_inf else ""),
        )
        return None
    if t < dt_s * (1 - 1e-12):
        graph.add(
            (name, key),
            f"{t:g} s is shorter than the step dt {dt_s:g} s; forward Euler needs tau >= dt "
            "(choose a smaller --dt-ms)",
        )
        return None
    return max(0.0, 1.0 - dt_s / t)


def _neuron(graph: _Graph, name: str, dt_s: float) -> _Neuron | None:
    node, kind = graph.nodes[name], graph.kinds[name]
    n = graph.size(name)
    n0 = len(graph.problems)

    def param(key: str, default: float | None = None) -> np.ndarray:
        if getattr(node, key, None) is None:
            return np.full(n, default if default is not None else 0.0)
        a = _arr(node, key)
        if a.size not in (1, n):
            graph.add((name, key), f"has {a.size} values for {n} neurons")
            return np.full(n, np.nan)
        return np.broadcast_to(a, (n,)).astype(np.float64)

    alpha, syn = 0.0, np.ones(n)
    if kind in ("CubaLIF", "CubaLI"):
        a = _factor(graph, name, "tau_syn", param("tau_syn"), dt_s, allow_inf=False)
        alpha = 0.0 if a is None else a
        syn = (1.0 - alpha) * param("w_in", 1.0)
    if kind in ("LIF", "LI", "CubaLIF", "CubaLI"):
        key = "tau" if kind in ("LIF", "LI") else "tau_mem"
        b = _factor(graph, name, key, param(key), dt_s, allow_inf=True)
        beta = 1.0 if b is None else b
        if beta == 1.0:
            # tau = inf: the leak term (v_leak - v) / tau vanishes and so does R I / tau
            graph.add(
                (name, key),
                "inf makes the input vanish (R I / tau = 0); use an IF node for a neuron "
                "without leak",
            )
        leak = 1.0 - beta
        gain = leak * param("r") * syn
        vbias = leak * param("v_leak")
    else:  # IF
        beta = 1.0
        gain = dt_s * param("r")
        vbias = np.zeros(n)
    readout = kind in ("LI", "CubaLI")
    theta, scale = math.inf, np.ones(n)
    if not readout:
        th = param("v_threshold")
        reset = param("v_reset")
        if np.any(reset != 0):
            k = int(np.argmax(reset != 0))
            graph.add(
                (name, "v_reset"),
                f"{float(reset[k]):g} (neuron {k}) is not supported: the hardware resets v to 0 "
                "(or subtracts the threshold); accepted: 0. Shifting v_threshold and v_leak by "
                "-v_reset gives the same neuron started at v_reset",
            )
        if np.any(~(th > 0)):
            k = int(np.argmax(~(th > 0)))
            graph.add(
                (name, "v_threshold"),
                f"{float(th[k]):g} (neuron {k}) is not supported; accepted: > 0",
            )
        elif _uniform(th):
            theta = float(th[0])
        else:
            # v / v_threshold is the same neuron with threshold 1: fold it into the weights
            scale = 1.0 / th
            theta = 1.0
    if len(graph.problems) > n0:
        return None
    out = _Neuron(name, kind, n, alpha, beta, gain * scale, vbias * scale, theta, readout, scale)
    if not _uniform(scale):
        out.notes.append(
            f"{name}: per-neuron v_threshold folded into the weights and bias; its v is in units "
            "of each neuron's threshold"
        )
    return out


def _tau_ms(factor: float, dt_ms: float) -> float | None:
    """The time constant, in ms, of an exponential decay by ``factor`` per step."""
    if factor >= 1.0:
        return None
    if factor <= 0.0:
        return 0.0
    return -dt_ms / math.log(factor)


#: the shortest membrane time constant the 12-bit decay holds keeps 1/4096 of v per step
_MIN_BETA = 1.0 / (1 << P.DECAY_SHIFT)


def _physical_spec(nr: _Neuron, bias: float, dt_ms: float, notes: list[str]) -> dict[str, Any]:
    beta = nr.beta
    if beta < _MIN_BETA:
        notes.append(
            f"{nr.name}: membrane factor {beta:.4g} per step is below the shortest the hardware "
            f"holds; v keeps {_MIN_BETA:.4g} of itself per step (dv {P.DECAY_MAX})"
        )
        beta = _MIN_BETA
    spec: dict[str, Any] = {
        "tau_syn_ms": _tau_ms(nr.alpha, dt_ms),
        "tau_mem_ms": _tau_ms(beta, dt_ms),
        "v_threshold": nr.theta,
    }
    if bias:
        spec["bias"] = bias
    return spec


def _real_of_spec(spec: dict[str, Any], dt_ms: float) -> tuple[float, float, float, float]:
    """The (alpha, beta, theta, bias) a neuron spec stands for (as the float reference has)."""
    one = 1 << P.DECAY_SHIFT
    if "du" in spec:
        return (
            1 - (spec["du"] + P.DU_OFFSET) / one,
            1 - (spec["dv"] + P.DV_OFFSET) / one,
            float(spec["vth"] << P.VTH_SHIFT),
            float(spec.get("bias_mant", 0) << spec.get("bias_exp", 0)),
        )
    ts, tm = spec["tau_syn_ms"], spec.get("tau_mem_ms")
    return (
        0.0 if ts == 0 else math.exp(-dt_ms / ts),
        1.0 if tm is None else math.exp(-dt_ms / tm),
        float(spec["v_threshold"]),
        float(spec.get("bias", 0.0)),
    )


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --- the import ----------------------------------------------------------------------------


def import_nir(
    graph: Any,
    dt_ms: float | None = None,
    *,
    name: str | None = None,
    source: str | None = None,
) -> NIRImport:
    """Turn a NIR graph into a validated network.

    Parameters
    ----------
    graph
        A ``nir.NIRGraph``, or the path of a file written by ``nir.write``.
    dt_ms
        The step, in milliseconds, with which continuous time is discretized. Without it, the
        step the graph records (graphs written by :func:`export_nir` do) is used.
    name
        The network's name (default: the graph's, or the file's stem).
    source
        The name used in error messages (default: the file's path).

    Raises
    ------
    NIRError
        Naming every node, edge or parameter the hardware cannot represent (and when the
        ``nir`` package is missing).
    NetworkError
        When the imported network fails the checks of a network description.
    """
    if isinstance(graph, str | Path):
        path = Path(graph)
        source = source or str(path)
        nir = _nir(source)
        if not path.exists():
            raise FileNotFoundError(f"no such NIR file: {str(path)!r}")
        try:
            graph = nir.read(path)
        except Exception as e:  # the reader raises whatever h5py and the node classes raise
            raise NIRError([Problem((), f"cannot be read as a NIR graph: {e}")], source) from None
    gmeta = _meta(graph)
    if isinstance(source, str) and source.endswith(".nir"):
        name = name or gmeta.get("name") or Path(source).stem
    if dt_ms is None:
        dt_ms = gmeta.get("dt_ms")
        if dt_ms is None:
            raise NIRError(
                [
                    Problem(
                        ("dt_ms",),
                        "the graph does not record its time step; give it in milliseconds, as "
                        "the framework that wrote the graph used it (snnTorch: 0.1): dt_ms, "
                        "--dt-ms of run and compare, or convert the graph once with "
                        "`spikefab import-nir FILE --dt-ms X`",
                    )
                ],
                source,
            )
    dt_ms = float(dt_ms)
    if not dt_ms > 0:
        raise NIRError([Problem(("dt_ms",), f"{dt_ms!r} must be > 0")], source)
    name = name or gmeta.get("name") or "nir"
    grow: dict[str, float] = {}
    for _ in range(6):
        result, more = _import_once(graph, dt_ms, name, source, gmeta, grow)
        if not more:
            return result
        for k, v in more.items():
            grow[k] = grow.get(k, 1.0) * v
    raise NIRError(
        [Problem((k,), "no threshold keeps this readout from spiking") for k in grow], source
    )


def _import_once(
    graph: Any,
    dt_ms: float,
    name: str,
    source: str | None,
    gmeta: dict[str, Any],
    grow: dict[str, float],
) -> tuple[NIRImport, dict[str, float]]:
    from spikefab.mapping.loader import from_dict

    dt_s = dt_ms / 1000.0
    g = _Graph(graph)
    notes: list[str] = [f"discretized by forward Euler at dt_ms {dt_ms} (times in seconds)"]
    if g.problems:
        raise NIRError(g.problems, source)
    # linear nodes as matrices
    ops: dict[str, _Op] = {}
    for n, kind in g.kinds.items():
        if kind in (*LINEAR, *POOLS, _PASS):
            op = _operator(g, n, dt_ms, notes)
            if op is not None:
                ops[n] = op
    for a, b in g.edges:
        want = g.in_size(b)
        if a in g.shape and want is not None and g.size(a) != want:
            g.add((b,), f"edge {a} -> {b}: {a} gives {g.size(a)} values, {b} takes {want}")
        if g.kinds[b] == "Input":
            g.add((b,), f"edge {a} -> {b}: an Input node takes no edges")
    if g.problems:
        raise NIRError(g.problems, source)
    spiking = [
        n
        for n, k in g.kinds.items()
        if k in NEURONS or (k == "Input" and not _meta(g.nodes[n]).get("unconnected"))
    ]
    # every path pre -> linear nodes -> post becomes synapses
    contrib: dict[tuple[str, str, str | None], list[_Synapses]] = {}

    def walk(pre: str, at: str, syn: _Synapses, path: list[str], key: str | None) -> None:
        for nxt in g.succ[at]:
            kind = g.kinds[nxt]
            if kind in NEURONS:
                contrib.setdefault((pre, nxt, key), []).append(syn)
            elif kind == "Output":
                maps = [p for p in path if g.kinds[p] != _PASS]
                if maps:
                    g.add(
                        (nxt,),
                        f"is fed by {g.kinds[maps[-1]]} node {maps[-1]!r}: the hardware reports "
                        "the spikes and voltages of neurons, not linear maps of them; end the "
                        "graph on a neuron node (LI for a non-spiking readout)",
                    )
            elif nxt in ops:
                if nxt in path:
                    g.add(
                        (nxt,),
                        f"lies on a loop of linear nodes ({' -> '.join([*path, nxt])}) with no "
                        "neuron in it; such a loop has no meaning in discrete time",
                    )
                    continue
                # a projection is named after the first linear node on its way (or the name
                # spikefab's metadata gives it)
                first = None if g.kinds[nxt] == _PASS else nxt
                k = key or _meta(g.nodes[nxt]).get("projection") or first
                walk(pre, nxt, syn.through(ops[nxt]), [*path, nxt], k)

    for pre in spiking:
        walk(pre, pre, _Synapses.identity(g.size(pre)), [], None)
    # constant inputs: the biases of linear nodes, carried forward to the neurons
    bias_in: dict[str, np.ndarray] = {}

    def carry(at: str, vec: np.ndarray, path: list[str]) -> None:
        for nxt in g.succ[at]:
            kind = g.kinds[nxt]
            if kind in NEURONS:
                bias_in[nxt] = bias_in.get(nxt, np.zeros(g.size(nxt))) + vec
            elif nxt in ops and nxt not in path:
                carry(nxt, ops[nxt].apply(vec), [*path, nxt])

    for n, op in ops.items():
        if op.bias is not None:
            carry(n, op.bias.copy(), [n])
    neurons: dict[str, _Neuron] = {}
    for n, kind in g.kinds.items():
        if kind in NEURONS:
            nr = _neuron(g, n, dt_s)
            if nr is not None:
                neurons[n] = nr
    if g.problems:
        raise NIRError(g.problems, source)

    # the description ------------------------------------------------------------------------
    order = _population_order(g, spiking, gmeta)
    pops: dict[str, Any] = {}
    projs: list[dict[str, Any]] = []
    extra_notes: list[str] = []
    fixed_ok: dict[str, bool] = {}
    for pop in order:
        kind = g.kinds[pop]
        meta = _meta(g.nodes[pop])
        if kind == "Input":
            pops[pop] = _source_spec(g.size(pop), meta.get("source"))
            continue
        notes.extend(neurons[pop].notes)
    # projections, grouped by (pre, post, projection name from metadata)
    synapses: dict[tuple[str, str, str | None], _Synapses] = {
        k: _Synapses.concat(v).merged() for k, v in contrib.items()
    }
    for (_pre, post, _key), syn in synapses.items():
        syn.weight = syn.weight * neurons[post].gain[syn.post]
    # biases: onto a neuron without a synaptic current, a uniform constant input is a bias
    bias_v: dict[str, float] = {}
    bias_src: dict[str, np.ndarray] = {}
    for pop, nr in neurons.items():
        const = nr.gain * bias_in.get(pop, np.zeros(nr.size))
        if nr.alpha == 0.0:
            total = nr.vbias + const
            if _uniform(total):
                bias_v[pop] = float(total[0]) if total.size else 0.0
            else:
                base = float(nr.vbias[0]) if _uniform(nr.vbias) else 0.0
                bias_v[pop] = base
                bias_src[pop] = total - base
        else:
            if not _uniform(nr.vbias):
                g.add(
                    (pop, "v_leak"),
                    "per-neuron values differ; with a synaptic current (tau_syn) the hardware "
                    "holds one v_leak per population",
                )
                continue
            bias_v[pop] = float(nr.vbias[0]) if nr.size else 0.0
            if np.any(const):
                bias_src[pop] = const
    if g.problems:
        raise NIRError(g.problems, source)
    # neurons: spikefab's own parameters when the metadata agrees with the graph
    for pop in order:
        if pop not in neurons:
            continue
        nr = neurons[pop]
        if nr.readout:
            nr.theta = _readout_threshold(pop, nr, synapses, bias_src, bias_v[pop]) * grow.get(
                pop, 1.0
            )
        notes.append(_describe_neuron(nr, dt_ms))
        meta_spec = _meta(g.nodes[pop]).get("neuron")
        spec = _physical_spec(nr, bias_v[pop], dt_ms, notes)
        if isinstance(meta_spec, dict) and not nr.readout and _uniform(nr.scale):
            want = _real_of_spec(meta_spec, dt_ms)
            have = (nr.alpha, nr.beta, nr.theta, bias_v[pop])
            if all(_close(x, y) for x, y in zip(want, have, strict=True)):
                spec = dict(meta_spec)
                fixed_ok[pop] = "du" in spec
            else:
                extra_notes.append(
                    f"{pop}: its spikefab metadata no longer matches the node's parameters and "
                    "is ignored"
                )
        pops[pop] = {"size": nr.size, "neuron": spec}
        initial_v = _meta(g.nodes[pop]).get("initial_v")
        if isinstance(initial_v, list) and len(initial_v) == nr.size:
            pops[pop]["initial_v"] = list(initial_v)
    for pop, vec in bias_src.items():
        src_name = _unique(f"{pop}.bias", pops)
        rate = _always_rate(dt_ms)
        pops[src_name] = {
            "kind": "spike_source",
            "size": 1,
            "poisson": {"rate_hz": rate, "seed": 0},
            "internal": True,
        }
        k = np.flatnonzero(vec)
        synapses[(src_name, pop, None)] = _Synapses(
            k, np.zeros(k.size, np.int64), np.zeros(k.size, np.int64), vec[k]
        )
        notes.append(
            f"{pop}: its constant input (Affine/conv bias, or per-neuron v_leak) comes from "
            f"{src_name!r}, a source that spikes every step; it reaches {pop} from step 1 on"
        )
    names_used: set[str] = set()
    for (pre, post, key), syn in synapses.items():
        pname = key or f"{pre}->{post}"
        if pname in names_used:
            pname = _unique(pname, names_used)
        names_used.add(pname)
        meta = _projection_meta(g, key)
        proj = _projection_spec(pre, post, pname, syn, meta, fixed_ok.get(post, False))
        if proj is None:
            # integer mantissas are needed onto a fixed-point population: fall back to physical
            fixed_ok[post] = False
            nr = neurons[post]
            pops[post]["neuron"] = _physical_spec(nr, bias_v[post], dt_ms, [])
            proj = _projection_spec(pre, post, pname, syn, meta, False)
            extra_notes.append(f"{post}: weights onto it are not integer mantissas; physical units")
        assert proj is not None
        projs.append(proj)
    # any projection written in fixed point onto a population that went back to physical units
    for proj in projs:
        if not fixed_ok.get(proj["post"], False) and proj.pop("_fixed", False):
            proj["weight"] = proj.pop("_real")
            proj.pop("weight_exp", None)
        proj.pop("_fixed", None)
        proj.pop("_real", None)
    pops = {k: pops[k] for k in [*[o for o in order if o in pops], *pops] if k in pops}
    listed = [str(x) for x in gmeta.get("projections", [])]
    projs.sort(key=lambda p: listed.index(p["name"]) if p["name"] in listed else len(listed))
    probes = _probes(gmeta, neurons)
    doc: dict[str, Any] = {
        "spikefab": S.FORMAT_VERSION,
        "name": str(name),
        "dt_ms": dt_ms,
        "populations": pops,
        "projections": projs,
        "probes": probes,
    }
    net = from_dict(doc, source=source)
    result = NIRImport(doc, net, [*notes, *extra_notes])
    return result, _readouts_too_low(net, neurons)


def _unique(base: str, taken: Any) -> str:
    if base not in taken:
        return base
    k = 2
    while f"{base}#{k}" in taken:
        k += 1
    return f"{base}#{k}"


def _always_rate(dt_ms: float) -> float:
    """A Poisson rate whose spike probability per step is exactly 1 (a spike every step)."""
    rate = 1000.0 / dt_ms
    for _ in range(8):
        p = rate * dt_ms / 1000.0
        if p == 1.0:
            return rate
        rate = math.nextafter(rate, -math.inf if p > 1.0 else math.inf)
    raise NIRError([Problem(("dt_ms",), f"{dt_ms!r} gives no exact always-on source rate")])


def _population_order(g: _Graph, spiking: list[str], gmeta: dict[str, Any]) -> list[str]:
    """Inputs first, then neurons as a breadth-first walk from the inputs reaches them."""
    listed = [p for p in gmeta.get("populations", []) if p in spiking]
    if len(listed) == len(spiking):
        return listed
    seen: list[str] = []
    queue = deque(n for n in g.nodes if g.kinds[n] == "Input")
    visited = set(queue)
    while queue:
        n = queue.popleft()
        if n in spiking:
            seen.append(n)
        for m in g.succ[n]:
            if m not in visited:
                visited.add(m)
                queue.append(m)
    return [*seen, *(n for n in spiking if n not in seen)]


def _source_spec(size: int, meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "spike_source", "size": size}
    if isinstance(meta, dict) and meta.get("kind") == "poisson":
        spec["poisson"] = {"rate_hz": float(meta["rate_hz"]), "seed": int(meta["seed"])}
        return spec
    times: list[list[int]] = [[] for _ in range(size)]
    if isinstance(meta, dict) and meta.get("kind") == "explicit":
        for t, i in zip(meta.get("steps", []), meta.get("neurons", []), strict=True):
            if 0 <= int(i) < size:
                times[int(i)].append(int(t))
    spec["times"] = times
    return spec


def _describe_neuron(nr: _Neuron, dt_ms: float) -> str:
    what = "readout, never spikes" if nr.readout else f"threshold {nr.theta:g}"
    parts = [f"{nr.name} ({nr.kind}, {nr.size} neurons)"]
    if nr.alpha > 0:
        parts.append(
            f"current factor {nr.alpha:.6g}/step (tau_syn_ms {_tau_ms(nr.alpha, dt_ms):.6g})"
        )
    if nr.beta < 1:
        parts.append(
            f"membrane factor {nr.beta:.6g}/step (tau_mem_ms {_tau_ms(nr.beta, dt_ms):.6g})"
        )
    else:
        parts.append("no leak")
    parts.append(what)
    return ": ".join(parts[:1]) + ": " + ", ".join(parts[1:])


def _readout_threshold(
    pop: str,
    nr: _Neuron,
    synapses: dict[tuple[str, str, str | None], _Synapses],
    bias_src: dict[str, np.ndarray],
    bias: float,
) -> float:
    """A threshold above the largest |v| a readout's inputs can drive it to."""
    total = np.zeros(nr.size)
    for (_pre, post, _key), syn in synapses.items():
        if post == pop:
            total += np.bincount(syn.post, weights=np.abs(syn.weight), minlength=nr.size)
    if pop in bias_src:
        total += np.abs(bias_src[pop])
    u = total / (1.0 - nr.alpha)
    v = (u + abs(bias)) / (1.0 - nr.beta)
    top = float(v.max(initial=0.0))
    return top * READOUT_MARGIN if top > 0 else 1.0


def _readouts_too_low(net: Network, neurons: dict[str, _Neuron]) -> dict[str, float]:
    """Readouts whose quantized weights could still reach the threshold, and by how much."""
    grow: dict[str, float] = {}
    for pop, nr in neurons.items():
        if not nr.readout:
            continue
        p = net.populations[pop]
        lif = p.neuron
        assert lif is not None
        a = np.zeros(p.size)
        for pr in net.projections:
            if pr.post == pop:
                mag = np.abs(pr.weight.astype(np.float64)) * (1 << pr.weight_exp)
                a += np.bincount(pr.post_idx, weights=mag, minlength=p.size)
        a = np.minimum(a, P.INPUT_MAX) * (1 << P.ACT_SHIFT)
        one = 1 << P.DECAY_SHIFT
        u = a * one / (lif.du + P.DU_OFFSET)
        v = (u + abs(lif.bias_mant << lif.bias_exp)) * one / max(lif.dv + P.DV_OFFSET, 1)
        limit = lif.vth << P.VTH_SHIFT
        top = float(v.max(initial=0.0))
        if top >= limit:
            grow[pop] = top / limit * 1.01
    return grow


def _projection_meta(g: _Graph, key: str | None) -> dict[str, Any]:
    if key is None:
        return {}
    for n in g.nodes:
        m = _meta(g.nodes[n])
        if m.get("projection") == key:
            return m
    return {}


def _projection_spec(
    pre: str, post: str, name: str, syn: _Synapses, meta: dict[str, Any], fixed: bool
) -> dict[str, Any] | None:
    listed = meta.get("synapses")
    if isinstance(listed, dict):
        mine = _Synapses(
            np.asarray(listed["post"], np.int64),
            np.asarray(listed["pre"], np.int64),
            np.asarray(listed["delay"], np.int64) - 1,
            np.asarray(listed["weight"], np.float64),
        )
        agg = mine.merged()
        if (
            agg.post.size == syn.post.size
            and np.array_equal(agg.post, syn.post)
            and np.array_equal(agg.pre, syn.pre)
            and np.array_equal(agg.delay, syn.delay)
            and np.allclose(agg.weight, syn.weight, rtol=1e-9, atol=1e-12)
        ):
            syn = mine
    weights = syn.weight
    out: dict[str, Any] = {"name": name, "pre": pre, "post": post}
    wexp = meta.get("weight_exp")
    real = [float(x) for x in weights]
    if fixed:
        if wexp is None:
            return None
        m = weights / float((1 << int(wexp)) << P.ACT_SHIFT)
        mi = np.rint(m)
        if np.any(np.abs(m - mi) > 1e-6):
            return None
        out["_fixed"] = True
        out["_real"] = real
        weights_out: list[Any] = [int(x) for x in mi]
    else:
        weights_out = real
    pairs = np.stack([syn.pre, syn.post], axis=1).tolist()
    out["connect"] = {"kind": "list", "pairs": pairs}
    out["weight"] = _compact(weights_out)
    out["delay"] = _compact([int(d) + 1 for d in syn.delay])
    if wexp is not None:
        out["weight_exp"] = int(wexp)
    if isinstance(meta.get("stdp"), dict):
        out["stdp"] = dict(meta["stdp"])
    return out


def _compact(values: list[Any]) -> Any:
    if values and all(v == values[0] for v in values):
        return values[0]
    return values


def _probes(gmeta: dict[str, Any], neurons: dict[str, _Neuron]) -> list[dict[str, Any]]:
    if isinstance(gmeta.get("probes"), list):
        return [dict(p) for p in gmeta["probes"]]
    return [{"population": n, "variable": "v"} for n, nr in neurons.items() if nr.readout]


def load_nir(path: str | Path, dt_ms: float | None = None) -> Network:
    """Load a NIR file as a validated network (``dt_ms`` as in :func:`import_nir`)."""
    return import_nir(path, dt_ms).network


# --------------------------------------------------------------------------------------------
# Export


def _dump(obj: dict[str, Any]) -> dict[str, str]:
    return {META_KEY: json.dumps(obj, sort_keys=True)}


def export_nir(net: Network) -> Any:
    """Return the network as a ``nir.NIRGraph`` that :func:`import_nir` turns back into it.

    Spike sources become ``Input`` nodes, LIF populations ``LIF`` (no synaptic current),
    ``IF`` (no leak) or ``CubaLIF`` nodes, each projection one ``Linear`` node per distinct
    delay (with a ``Delay`` node for delays above one step). What NIR has no field for (spike
    sources, refractory periods, reset by subtraction, fixed-point parameters, weight
    exponents, STDP, probes) travels in each node's ``metadata["spikefab"]`` (JSON); other
    tools ignore it.

    Raises
    ------
    NIRError
        For a population no NIR node holds (a current without leak, a bias without leak).
    """
    nir = _nir()
    dt_ms = net.dt_ms
    dt = dt_ms / 1000.0
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for pop in net.populations.values():
        if pop.source is not None:
            src = pop.source
            meta: dict[str, Any] = (
                {"kind": "poisson", "rate_hz": src.rate_hz, "seed": src.seed}
                if src.kind == "poisson"
                else {
                    "kind": "explicit",
                    "steps": [int(x) for x in src.steps],  # type: ignore[union-attr]
                    "neurons": [int(x) for x in src.neurons],  # type: ignore[union-attr]
                }
            )
            nodes[pop.name] = nir.Input(np.array([pop.size]), metadata=_dump({"source": meta}))
            continue
        node = _neuron_node(nir, pop, dt, problems)
        if node is not None:
            nodes[pop.name] = node
    if problems:
        raise NIRError(problems, net.name)
    for pr in net.projections:
        n_pre, n_post = net.populations[pr.pre].size, net.populations[pr.post].size
        real = np.asarray(pr.weight_real, dtype=np.float64)
        meta = {"projection": pr.name, "weight_exp": int(pr.weight_exp)}
        if pr.stdp is not None:
            meta["stdp"] = _stdp_spec(pr.stdp)
        canon = _Synapses(pr.post_idx, pr.pre_idx, pr.delay - 1, real).merged()
        same = (
            canon.post.size == pr.n_synapses
            and np.array_equal(canon.pre, pr.pre_idx)
            and np.array_equal(canon.post, pr.post_idx)
            and np.array_equal(canon.delay, pr.delay - 1)
        )
        if not same:
            meta["synapses"] = {
                "pre": [int(x) for x in pr.pre_idx],
                "post": [int(x) for x in pr.post_idx],
                "delay": [int(x) for x in pr.delay],
                "weight": [float(x) for x in real],
            }
        delays = sorted({int(d) for d in pr.delay}) or [1]
        for d in delays:
            sel = pr.delay == d
            w = np.zeros((n_post, n_pre))
            np.add.at(w, (pr.post_idx[sel], pr.pre_idx[sel]), real[sel])
            lin = pr.name if len(delays) == 1 else f"{pr.name}.d{d}"
            lin = _unique(lin, nodes)
            nodes[lin] = nir.Linear(weight=w, metadata=_dump(meta))
            edges.append((pr.pre, lin))
            if d > 1:
                dl = _unique(f"{lin}.delay", nodes)
                nodes[dl] = nir.Delay(np.full(n_post, (d - 1) * dt))
                edges += [(lin, dl), (dl, pr.post)]
            else:
                edges.append((lin, pr.post))
    has_in = {pr.post for pr in net.projections}
    for pop in net.populations.values():
        if pop.source is not None:
            continue
        # every population's spikes are recorded: each is an output of the graph
        out = _unique(f"{pop.name}.output", nodes)
        nodes[out] = nir.Output(np.array([pop.size]))
        edges.append((pop.name, out))
        if pop.name not in has_in:
            # NIR gives every node without inputs an Input node; name it, and mark it as one
            # that stands for no population
            inp = _unique(f"{pop.name}.input", nodes)
            nodes[inp] = nir.Input(np.array([pop.size]), metadata=_dump({"unconnected": True}))
            edges.append((inp, pop.name))
    if not any(isinstance(node, nir.Input) for node in nodes.values()):
        # a graph whose populations all have inputs of their own (a self-sustained network)
        # still needs an Input node for NIR's type inference: one that stands for nothing
        first = next(p.name for p in net.populations.values() if p.name in nodes)
        inp = _unique(f"{first}.input", nodes)
        nodes[inp] = nir.Input(
            np.array([net.populations[first].size]), metadata=_dump({"unconnected": True})
        )
        edges.append((inp, first))
    probes = []
    for pb in net.probes:
        d: dict[str, Any] = {
            "projection" if pb.variable == "weights" else "population": pb.target,
            "variable": pb.variable,
        }
        if pb.neurons is not None:
            d["neurons"] = [int(x) for x in pb.neurons]
        if pb.every != 1:
            d["every"] = pb.every
        probes.append(d)
    gmeta = {
        "format": S.FORMAT_VERSION,
        "name": net.name,
        "dt_ms": dt_ms,
        "populations": list(net.populations),
        "projections": [pr.name for pr in net.projections],
        "probes": probes,
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_dump(gmeta))


def _neuron_spec(pop: Any) -> dict[str, Any]:
    if pop.physical is not None:
        ph = pop.physical
        return {
            "tau_syn_ms": ph.tau_syn_ms,
            "tau_mem_ms": ph.tau_mem_ms,
            "v_threshold": ph.v_threshold,
            "bias": ph.bias,
            "refractory_ms": ph.refractory_ms,
            "reset": ph.reset,
        }
    lif = pop.neuron
    return {
        "du": lif.du,
        "dv": lif.dv,
        "vth": lif.vth,
        "bias_mant": lif.bias_mant,
        "bias_exp": lif.bias_exp,
        "refractory": lif.refractory,
        "reset": lif.reset,
    }


def _neuron_node(nir: Any, pop: Any, dt: float, problems: list[Problem]) -> Any:
    r = pop.real
    n = pop.size
    own: dict[str, Any] = {"neuron": _neuron_spec(pop)}
    if pop.v0_real is not None:  # NIR's nodes have no initial state
        own["initial_v"] = [float(x) if pop.physical else int(x) for x in pop.v0_real]
    meta = _dump(own)

    def full(x: float) -> np.ndarray:
        return np.full(n, float(x))

    if r.alpha == 0.0 and r.beta == 1.0:
        if r.bias != 0:
            problems.append(
                Problem(
                    (pop.name,),
                    f"a bias ({r.bias:g}) on a neuron without leak has no NIR node (IF has no "
                    "bias); give the population a membrane time constant",
                )
            )
            return None
        # dv/dt = R I, stepped as v += dt R I: R = 1/dt makes a weight add itself to v
        return nir.IF(r=full(1.0 / dt), v_threshold=full(r.theta), metadata=meta)
    if r.beta == 1.0:
        problems.append(
            Problem(
                (pop.name,),
                "a synaptic current without membrane leak has no NIR node (CubaLIF with "
                "tau_mem = inf takes no input); give the population a membrane time constant",
            )
        )
        return None
    tau_mem = dt / (1.0 - r.beta)
    # R = tau_mem / dt (and w_in = tau_syn / dt) make a weight add itself to u
    common = dict(
        r=full(tau_mem / dt),
        v_leak=full(r.bias * tau_mem / dt),
        v_threshold=full(r.theta),
        v_reset=full(0.0),
        metadata=meta,
    )
    if r.alpha == 0.0:
        return nir.LIF(tau=full(tau_mem), **common)
    tau_syn = dt / (1.0 - r.alpha)
    return nir.CubaLIF(
        tau_syn=full(tau_syn), tau_mem=full(tau_mem), w_in=full(tau_syn / dt), **common
    )


def _stdp_spec(s: Any) -> dict[str, Any]:
    out = {
        k: getattr(s, k)
        for k in (
            "a_plus",
            "a_minus",
            "bump_pre",
            "bump_post",
            "shift",
            "w_min",
            "w_max",
            "stochastic_rounding",
            "seed",
        )
    }
    for side in ("pre", "post"):
        tau = getattr(s, f"tau_{side}_ms")
        if tau is not None:
            out[f"tau_{side}_ms"] = tau
        else:
            out[f"d_{side}"] = getattr(s, f"d_{side}")
    return out


def write_nir(net: Network, path: str | Path) -> None:
    """Write the network to a NIR file (HDF5, as ``nir.write`` does)."""
    nir = _nir()
    nir.write(Path(path), export_nir(net))
