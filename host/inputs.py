"""Network files as the command line takes them: YAML or NIR, with recorded input spikes.

``spikefab run`` and ``compare`` take ``--input FILE`` to drive a network's spike-source
populations from recorded spikes (``docs/nir.md``, "Recorded inputs"). The file is one of:

- an ``.npz`` with integer arrays ``<population>/step`` and ``<population>/neuron`` for each
  spike source it drives (others keep their own spikes);
- a spike file written by ``spikefab run`` (``docs/spike-file.md``): the spikes of the
  populations named like the network's spike sources are replayed into them;
- for a network with a single spike source: an ``.npz`` with arrays ``step`` and ``neuron``,
  or a dense ``steps x neurons`` array (``.npy``, or the only array of an ``.npz``), where a
  nonzero entry is a spike.

The network is then described again with each driven source reading its spikes from a file
(``file:`` in ``docs/network-format.md``); the description is written into the cache, so
that every backend, including those that load the description themselves, sees the same
spikes.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from spikefab.mapping.network import Network, NetworkError, Problem
from spikefab.sim.verilator import digest

__all__ = [
    "InputError",
    "input_arrays",
    "inputs_from_arrays",
    "network_file",
    "read_inputs",
    "with_inputs",
]


class InputError(ValueError):
    """A recorded-input file cannot drive the network's spike sources."""


def read_inputs(
    path: str | Path, sources: dict[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read recorded spikes for spike-source populations from a file.

    Parameters
    ----------
    path
        The input file (formats in the module's docstring).
    sources
        The network's input populations (spike sources that are not internal): name -> size.

    Returns
    -------
    dict
        ``name -> (step, neuron)`` integer arrays, sorted by step then neuron, for each
        source the file drives.

    Raises
    ------
    InputError
        When the file's arrays do not fit the sources, naming what is accepted.
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            arrays = {"": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read recorded spikes ({e})") from None
    return inputs_from_arrays(arrays, sources, str(path))


def input_arrays(inputs: Any) -> dict[str, np.ndarray]:
    """Return recorded inputs given in Python as the arrays of an input file.

    ``inputs`` is a dense ``steps x neurons`` array (for the network's only input), a
    mapping ``population -> dense array`` or ``population -> (step, neuron)``, or a mapping
    of arrays as an input file holds them (``step``/``neuron``, ``<population>/step``, ...).

    Raises
    ------
    InputError
        When ``inputs`` is none of these.
    """
    if isinstance(inputs, np.ndarray | list):
        return {"": np.asarray(inputs)}
    if not isinstance(inputs, dict):
        raise InputError(
            f"inputs must be an array, a mapping or a file, not {type(inputs).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    for key, value in inputs.items():
        if isinstance(value, tuple):
            if len(value) != 2:
                raise InputError(f"inputs[{key!r}]: a tuple must be (step, neuron)")
            out[f"{key}/step"], out[f"{key}/neuron"] = map(np.asarray, value)
        else:
            out[str(key)] = np.asarray(value)
    return out


def inputs_from_arrays(
    arrays: dict[str, np.ndarray], sources: dict[str, int], where: str = "inputs"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Turn the arrays of an input file into ``name -> (step, neuron)`` (see
    :func:`read_inputs`); ``where`` names them in errors."""
    names = ", ".join(sources) or "(none)"
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def dense(name: str, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if arr.ndim != 2 or arr.shape[1] != sources[name]:
            what = f"{arr.shape[1]} columns" if arr.ndim == 2 else f"shape {arr.shape}"
            raise InputError(
                f"{where}: a dense array of {what} for {name!r}, which has "
                f"{sources[name]} neurons; expected steps x {sources[name]}"
            )
        step, neuron = np.nonzero(arr)
        return step, neuron

    if "populations" in arrays and "population" in arrays:
        # a spike file: replay the spikes of populations named like a source
        pops = [str(x) for x in arrays["populations"]]
        for idx, name in enumerate(pops):
            if name in sources:
                sel = arrays["population"] == idx
                out[name] = (arrays["step"][sel], arrays["neuron"][sel])
        if not out:
            raise InputError(
                f"{where}: a spike file of populations {', '.join(pops)}, none of which is an "
                f"input of the network; its inputs: {names}"
            )
    elif any("/" in k or k in sources for k in arrays):
        per: dict[str, dict[str, np.ndarray]] = {}
        for key, arr in arrays.items():
            if key in sources:
                out[key] = dense(key, arr)
                continue
            name, _, what = key.rpartition("/")
            if what not in ("step", "neuron") or not name:
                raise InputError(
                    f"{where}: array {key!r} is not <population>/step, <population>/neuron "
                    f"or a dense <population>; the network's inputs: {names}"
                )
            per.setdefault(name, {})[what] = arr
        for name, d in per.items():
            if name not in sources:
                raise InputError(
                    f"{where}: {name!r} is not an input of the network; its inputs: {names}"
                )
            if set(d) != {"step", "neuron"}:
                raise InputError(f"{where}: {name!r} needs both {name}/step and {name}/neuron")
            out[name] = (d["step"], d["neuron"])
    else:
        if len(sources) != 1:
            raise InputError(
                f"{where}: arrays without population names drive a network's only input, "
                f"but this network has {len(sources)} ({names}); give <population>/step and "
                "<population>/neuron arrays"
            )
        name = next(iter(sources))
        if set(arrays) == {"step", "neuron"}:
            out[name] = (arrays["step"], arrays["neuron"])
        elif len(arrays) == 1 and next(iter(arrays.values())).ndim == 2:
            out[name] = dense(name, next(iter(arrays.values())))
        else:
            raise InputError(
                f"{where}: arrays {', '.join(arrays)}; expected step and neuron, a single dense "
                "steps x neurons array, or <population>/step and <population>/neuron"
            )
    for name, (step, neuron) in list(out.items()):
        step, neuron = np.asarray(step), np.asarray(neuron)
        if step.shape != neuron.shape or step.ndim != 1:
            raise InputError(f"{where}: {name!r}: step and neuron must be 1-d arrays of one length")
        if step.size and (step.dtype.kind not in "iu" or neuron.dtype.kind not in "iu"):
            raise InputError(f"{where}: {name!r}: step and neuron must be integers")
        step, neuron = step.astype(np.int64), neuron.astype(np.int64)
        bad = (step < 0) | (neuron < 0) | (neuron >= sources[name])
        if bad.any():
            k = int(np.argmax(bad))
            raise InputError(
                f"{where}: {name!r}: spike {k} is (step {step[k]}, neuron {neuron[k]}); accepted "
                f"steps >= 0 and neurons 0..{sources[name] - 1}"
            )
        order = np.lexsort((neuron, step))
        step, neuron = step[order], neuron[order]
        if step.size > 1 and np.any((np.diff(step) == 0) & (np.diff(neuron) == 0)):
            raise InputError(f"{where}: {name!r}: a neuron spikes twice in one step")
        out[name] = (step, neuron)
    return out


def network_file(
    path: str | Path, dt_ms: float | None = None, input_file: str | Path | None = None
) -> tuple[Path, list[str]]:
    """Return the YAML description to load for a network file given on the command line.

    A YAML file without recorded inputs is returned as it is. A ``.nir`` file is imported
    (:func:`spikefab.mapping.nir.import_nir`) and recorded inputs are attached to the sources
    they drive; the description that results is written into the cache and its path returned.

    Returns
    -------
    tuple
        The path to load, and the notes of a NIR import (empty for YAML).

    Raises
    ------
    NetworkError
        For a network or NIR graph with problems (also when ``nir`` is not installed).
    InputError
        For recorded inputs that do not fit the network.
    ValueError
        For ``dt_ms`` given with a YAML network, which states its own step.
    """
    from spikefab.mapping.loader import from_dict
    from spikefab.sim.verilator import cache_dir

    path = Path(path)
    is_nir = path.suffix == ".nir"
    if dt_ms is not None and not is_nir:
        raise ValueError(
            f"--dt-ms applies to NIR graphs; {path} is a network description with its own dt_ms"
        )
    if not is_nir and input_file is None:
        return path, []
    notes: list[str] = []
    if is_nir:
        from spikefab.mapping.nir import import_nir

        imported = import_nir(path, dt_ms)
        doc, notes = imported.doc, imported.notes
    else:
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict):
            from spikefab.mapping.loader import load

            load(path)  # reports what is wrong with the file
            raise NetworkError([Problem((), "is not a network description")], str(path))
        for pop in (doc.get("populations") or {}).values():
            if isinstance(pop, dict) and isinstance(pop.get("file"), str):
                pop["file"] = str((path.parent / pop["file"]).resolve())
    parts = [path.read_bytes(), repr(dt_ms).encode()]
    if input_file is not None:
        parts.append(Path(input_file).read_bytes())
    folder = cache_dir() / "networks" / digest(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    if input_file is not None:
        net = from_dict(doc, source=str(path), base=path.parent)
        sources = _inputs_of(net)
        _attach(doc, read_inputs(input_file, sources), sources, folder)
        notes.append(f"spike sources driven from {input_file}")
    out = folder / f"{path.stem}.yaml"
    text = yaml.safe_dump(doc, sort_keys=False, width=1 << 16)
    _atomic(out, lambda f: f.write(text.encode()))
    return out, notes


def with_inputs(net: Network, inputs: Any) -> Network:
    """Return ``net`` with input populations driven by recorded spikes.

    ``inputs`` is an input file (module docstring) or arrays as :func:`input_arrays` takes
    them; inputs are named by population, and a plain array drives the network's only input
    (internal sources, such as a NIR import's biases, do not count). The new network's
    description reads the spikes from files in the cache, so that a backend that loads the
    description itself sees them too.

    Raises
    ------
    InputError
        When the inputs do not fit the network's inputs, or the network has no description.
    """
    from spikefab.mapping.loader import from_dict
    from spikefab.sim.verilator import cache_dir

    sources = _inputs_of(net)
    if isinstance(inputs, str | Path):
        driven = read_inputs(inputs, sources)
    else:
        if isinstance(inputs, dict):
            for key in inputs:
                name = str(key).rpartition("/")[0] or str(key)
                if name not in sources and key not in ("step", "neuron"):
                    raise InputError(
                        f"inputs: {name!r} is not an input of the network; its inputs: "
                        f"{', '.join(sources) or '(none)'}"
                    )
        driven = inputs_from_arrays(input_arrays(inputs), sources)
    doc = copy.deepcopy(net.source_doc) if net.source_doc is not None else None
    if doc is None and net.source_text:
        doc = yaml.safe_load(net.source_text)
    if not isinstance(doc, dict):
        raise InputError(
            f"network {net.name!r} has no description to attach inputs to; build it with "
            "NetworkBuilder or load it from a file"
        )
    base = net.source_base or Path.cwd()
    for pop in (doc.get("populations") or {}).values():
        if isinstance(pop, dict) and isinstance(pop.get("file"), str):
            pop["file"] = str((base / pop["file"]).resolve())
    parts = [net.to_yaml().encode()]
    for name, (step, neuron) in sorted(driven.items()):
        parts += [name.encode(), step.tobytes(), neuron.tobytes()]
    folder = cache_dir() / "networks" / digest(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    _attach(doc, driven, sources, folder)
    out = from_dict(doc, source=f"{net.name} (with recorded inputs)", base=folder)
    out.source_base = folder
    return out


def _inputs_of(net: Network) -> dict[str, int]:
    return {p.name: p.size for p in net.populations.values() if p.is_input}


def _attach(
    doc: dict[str, Any],
    driven: dict[str, tuple[np.ndarray, np.ndarray]],
    sources: dict[str, int],
    folder: Path,
) -> None:
    """Point the driven sources of a description at files of their spikes in ``folder``."""
    for name, (step, neuron) in driven.items():
        npz = folder / f"input{list(sources).index(name)}.npz"
        _atomic(npz, lambda f, s=step, n=neuron: np.savez(f, step=s, neuron=n))
        pop: dict[str, Any] = {"kind": "spike_source", "size": sources[name], "file": str(npz)}
        doc["populations"][name] = pop


def _atomic(path: Path, write: Any) -> None:
    """Write a file through a temporary one, so that a concurrent reader never sees half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
