"""Load a network description from YAML (or plain data) into a validated :class:`Network`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pydantic
import yaml
from spikefab.mapping import spec as S
from spikefab.mapping.network import Network, NetworkError, Problem, pydantic_problems, resolve

__all__ = ["from_dict", "load", "load_text"]


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path of a composed YAML tree to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = k.start_mark.line + 1
            _line_map(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)
    return out


def load_text(text: str, source: str = "<string>", base: Path | None = None) -> Network:
    """Parse and validate a network description given as YAML text.

    Raises
    ------
    NetworkError
        Every problem found, each with ``source:line``, the field and what is accepted.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        lines = {(): mark.line + 1} if mark is not None else {}
        raise NetworkError([Problem((), f"is not valid YAML: {e}")], source, lines) from None
    lines = _line_map(node) if node is not None else {}
    if not isinstance(data, dict):
        raise NetworkError(
            [
                Problem(
                    (),
                    f"must be a mapping with keys spikefab, name, populations, ...; "
                    f"found {type(data).__name__}",
                )
            ],
            source,
            lines,
        )
    net = from_dict(data, source=source, lines=lines, base=base)
    net.source_text = text
    net.source_base = base
    return net


def load(path: str | Path, dt_ms: float | None = None) -> Network:
    """Load a network description from a YAML file, or a NIR graph from a ``.nir`` file.

    ``dt_ms`` is the step with which a NIR graph is discretized (``docs/nir.md``); without
    it, the step the graph records. A YAML description states its own ``dt_ms``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    NetworkError
        Every problem found in the description (for a NIR graph, a
        :class:`~spikefab.mapping.nir.NIRError`, also when the ``nir`` package is missing).
    """
    path = Path(path)
    if path.suffix == ".nir":
        from spikefab.mapping.nir import load_nir

        return load_nir(path, dt_ms)
    if dt_ms is not None:
        raise ValueError(f"dt_ms applies to NIR graphs; {path} states its own dt_ms")
    text = path.read_text()
    return load_text(text, source=str(path), base=path.parent)


def from_dict(
    data: dict[str, Any],
    source: str | None = None,
    lines: dict[tuple, int] | None = None,
    base: Path | None = None,
) -> Network:
    """Validate a description given as plain data (as YAML would give it).

    Structure and types are checked part by part, so that one broken population does not
    hide the problems of the others; then the contract's ranges and cross-references.
    """
    problems: list[Problem] = []
    parts: dict[str, Any] = {}
    top = {k: v for k, v in data.items() if k not in ("populations", "projections", "probes")}
    top["populations"] = {}
    try:
        S.NetworkSpec.model_validate(top)
    except pydantic.ValidationError as e:
        problems += [p for p in pydantic_problems(e) if p.path != ("populations",)]
    pops_raw = data.get("populations")
    pops: dict[str, S.PopulationSpec] = {}
    if pops_raw is None:
        problems.append(Problem(("populations",), "is required but missing"))
    elif not isinstance(pops_raw, dict):
        problems.append(
            Problem(
                ("populations",),
                f"must be a mapping of name -> population, not {type(pops_raw).__name__}",
            )
        )
    else:
        for name, p in pops_raw.items():
            spec, found = _validate(S.PopulationSpec, p, ("populations", name))
            problems += found
            if spec is not None:
                pops[str(name)] = spec
    for key, model in (("projections", S.ProjectionSpec), ("probes", S.ProbeSpec)):
        raw = data.get(key, [])
        items = []
        if not isinstance(raw, list):
            problems.append(Problem((key,), f"must be a list, not {type(raw).__name__}"))
            raw = []
        for i, item in enumerate(raw):
            spec, found = _validate(model, item, (key, i))
            problems += found
            items.append(spec)
        parts[key] = items
    # Resolve what is structurally sound, so that range and reference problems are reported
    # together with the structural ones; broken parts still count as existing by name.
    try:
        spec_top = S.NetworkSpec.model_validate(top)
    except pydantic.ValidationError:
        spec_top = S.NetworkSpec(spikefab=S.FORMAT_VERSION, name="?", populations={})
    spec = spec_top.model_copy(
        update={
            "populations": pops,
            "projections": [x for x in parts["projections"] if x is not None],
            "probes": [x for x in parts["probes"] if x is not None],
        }
    )
    known_pops = set(pops_raw) if isinstance(pops_raw, dict) else set()
    known_projs = set()
    for i, item in enumerate(data.get("projections") or []):
        if parts["projections"][i] is None and isinstance(item, dict):
            known_projs.add(str(item.get("name") or f"{item.get('pre')}->{item.get('post')}"))
    index = [i for i, x in enumerate(parts["projections"]) if x is not None]
    pindex = [i for i, x in enumerate(parts["probes"]) if x is not None]
    try:
        net = resolve(spec, base=base, known_populations=known_pops, known_projections=known_projs)
    except NetworkError as e:
        problems += [_renumber(p, index, pindex) for p in e.problems]
        net = None
    if problems:
        raise NetworkError(problems, source, lines)
    assert net is not None
    net.source_doc = data
    return net


def _validate(
    model: type[pydantic.BaseModel], data: Any, prefix: tuple
) -> tuple[Any, list[Problem]]:
    """Validate one part; on unknown keys only, also check the rest of the part.

    A misspelt key is reported, and the part is validated again without it, so that its
    other values (ranges, references) are still checked in the same run.
    """
    try:
        return model.model_validate(data), []
    except pydantic.ValidationError as e:
        problems = pydantic_problems(e, prefix)
        unknown = [x["loc"] for x in e.errors() if x["type"] == "extra_forbidden"]
        if len(unknown) < len(e.errors()):
            return None, problems
        data = copy.deepcopy(data)
        for loc in unknown:
            parent = data
            for part in loc[:-1]:
                parent = parent[part]
            parent.pop(loc[-1], None)
        try:
            return model.model_validate(data), problems
        except pydantic.ValidationError:
            return None, problems


def _renumber(p: Problem, index: list[int], pindex: list[int]) -> Problem:
    """Map a problem's list position among the valid items back to the file's position."""
    if len(p.path) >= 2 and p.path[0] in ("projections", "probes") and isinstance(p.path[1], int):
        table = index if p.path[0] == "projections" else pindex
        return Problem((p.path[0], table[p.path[1]], *p.path[2:]), p.message)
    return p
