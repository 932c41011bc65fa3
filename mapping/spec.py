"""The schema of the network description, version 1 (``docs/network-format.md``).

These pydantic models check structure and types: unknown keys, wrong types, missing fields.
Ranges of fixed-point values and cross-references (a projection naming a missing population,
a list of the wrong length) are checked when the description is resolved into a
:class:`~spikefab.mapping.network.Network`, where the widths of the contract are at hand.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FORMAT_VERSION = 1


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NeuronSpec(_Spec):
    """A LIF neuron, either in fixed point or in physical units (not both)."""

    # fixed point (contract section 2)
    du: int | None = None
    dv: int | None = None
    vth: int | None = None
    bias_mant: int | None = None
    bias_exp: int | None = None
    refractory: int | None = None
    # physical units, NIR's names
    tau_syn_ms: float | None = None
    tau_mem_ms: float | None = None
    v_threshold: float | None = None
    bias: float | None = None
    refractory_ms: float | None = None
    # both
    reset: Literal["zero", "subtract"] = "zero"


FIXED_NEURON_KEYS = ("du", "dv", "vth", "bias_mant", "bias_exp", "refractory")
PHYSICAL_NEURON_KEYS = ("tau_syn_ms", "tau_mem_ms", "v_threshold", "bias", "refractory_ms")


class PoissonSpec(_Spec):
    rate_hz: float
    seed: int


class ConnectSpec(_Spec):
    kind: Literal["all_to_all", "one_to_one", "fixed_probability", "list"]
    p: float | None = None
    seed: int | None = None
    allow_self: bool = True
    pairs: list[list[int]] | None = None

    @classmethod
    def normalize(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"kind": value}
        return value


class ValueSpec(_Spec):
    """A weight or delay: a constant, one value per synapse, or a seeded distribution."""

    kind: Literal["constant", "list", "uniform", "normal"]
    value: float | None = None
    values: list[float] | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    seed: int | None = None
    clip: bool = False

    @classmethod
    def normalize(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value  # rejected by the strict float check below, with the key's location
        if isinstance(value, int | float):
            return {"kind": "constant", "value": value}
        if isinstance(value, list):
            return {"kind": "list", "values": value}
        return value


class PopulationSpec(_Spec):
    """A population: LIF neurons (``neuron:``) or a spike source (``kind: spike_source``)."""

    kind: Literal["lif", "spike_source"] = "lif"
    size: int
    neuron: NeuronSpec | None = None
    times: list[list[int]] | None = None
    poisson: PoissonSpec | None = None
    file: str | None = None
    internal: bool = False
    initial_v: ValueSpec | None = None

    @field_validator("initial_v", mode="before")
    @classmethod
    def _initial_v(cls, value: Any) -> Any:
        return ValueSpec.normalize(value)


class STDPSpec(_Spec):
    """Pair-based STDP with traces (contract section 5)."""

    a_plus: int
    a_minus: int
    # trace decays in fixed point, or time constants that are quantized like ``dv``
    d_pre: int | None = None
    d_post: int | None = None
    tau_pre_ms: float | None = None
    tau_post_ms: float | None = None
    bump_pre: int
    bump_post: int
    shift: int = 0
    w_min: int = -128
    w_max: int = 127
    stochastic_rounding: bool = False
    seed: int = 0


class ProjectionSpec(_Spec):
    name: str | None = None
    pre: str
    post: str
    connect: ConnectSpec
    weight: ValueSpec
    weight_exp: int | None = None
    delay: ValueSpec = Field(default_factory=lambda: ValueSpec(kind="constant", value=1))
    stdp: STDPSpec | None = None

    @field_validator("connect", mode="before")
    @classmethod
    def _connect(cls, value: Any) -> Any:
        return ConnectSpec.normalize(value)

    @field_validator("weight", "delay", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        return ValueSpec.normalize(value)


class ProbeSpec(_Spec):
    population: str | None = None
    projection: str | None = None
    variable: Literal["v", "u", "spikes", "weights"]
    neurons: list[int] | None = None
    every: int = 1


class NetworkSpec(_Spec):
    spikefab: int
    name: str
    dt_ms: float = 1.0
    populations: dict[str, PopulationSpec]
    projections: list[ProjectionSpec] = Field(default_factory=list)
    probes: list[ProbeSpec] = Field(default_factory=list)
