"""The LIF update datapath (hdl/lif.py) against ``sim/arith.py``'s ``lif_update``.

The datapath alone, on Icarus and Verilator: named corner cases of contract 2.2 (decay
truncation toward zero, the wrap of ``u`` at +-2^23, the clip of ``v``, a voltage equal to
the threshold and one above it, the refractory period, reset by subtraction, bias exponents
0 and 7 with extreme mantissas, saturation of the input) and random neurons over the whole
range of every field. Every neuron's new state and spike must equal the reference's. The
neurons go through with ``i_neuron`` always valid and ``o_neuron`` always ready, then with
random idle cycles on the input and random backpressure (with long stalls) on the output.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
from spikefab.hdl import params as P
from spikefab.hdl.layouts import NEURON_PARAMS, NEURON_STATE, pack, unpack
from spikefab.hdl.lif import lif_input_layout, lif_output_layout
from spikefab.sim import arith

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
ACC_BITS = 24
TAG_BITS = 16

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge
except ImportError:  # the pytest side reports the missing tool
    cocotb = None

FIELDS = ("u", "v", "ref", "acc", "du", "dv", "vth", "bias_mant", "bias_exp", "refractory", "sub")
U_MAX = (1 << (P.UV_BITS - 1)) - 1


def _neuron(**kw: int) -> dict[str, int]:
    """A neuron that does nothing unless told: zero state and input, du = dv = 0."""
    n = dict.fromkeys(FIELDS, 0)
    n["vth"] = 100
    n.update(kw)
    return n


def corner_cases() -> dict[str, list[dict[str, int]]]:
    """Named corner cases of contract 2.2, a few neurons each."""
    acc_max = (1 << (ACC_BITS - 1)) - 1
    theta = 100 << P.VTH_SHIFT
    return {
        # sign(x) * (|x| * f >> 12): a negative value decays toward zero, never past it
        "decay_toward_zero": [
            _neuron(u=-1, v=-1, du=0, dv=1),
            _neuron(u=-4097, v=-4095, du=100, dv=100),
            _neuron(u=-U_MAX, v=-U_MAX, du=4094, dv=4095, vth=P.VTH_MAX),
            _neuron(u=4097, v=12345, du=100, dv=3000, vth=P.VTH_MAX),
            _neuron(u=-(1 << 23), du=1, vth=P.VTH_MAX),
        ],
        # u = wrap24(decay(u) + (a << 6)) wraps past +-2^23
        "u_wraps": [
            _neuron(u=U_MAX, acc=32767, vth=P.VTH_MAX),
            _neuron(u=-(1 << 23), acc=-32768, vth=P.VTH_MAX),
            _neuron(u=U_MAX - (32767 << 6) + 1, acc=32767, vth=P.VTH_MAX),
            _neuron(u=U_MAX - (32767 << 6), acc=32767, vth=P.VTH_MAX),
        ],
        # v clips to +-(2^23 - 1), symmetric: -2^23 is never reached
        "v_clips": [
            _neuron(u=U_MAX, v=U_MAX, bias_mant=4095, bias_exp=7, vth=P.VTH_MAX),
            _neuron(u=-(1 << 23), v=-U_MAX, bias_mant=-4096, bias_exp=7, vth=P.VTH_MAX),
            _neuron(u=-(1 << 23), v=-1, vth=P.VTH_MAX),
            _neuron(u=U_MAX, v=U_MAX, vth=P.VTH_MAX, sub=1),
            _neuron(u=U_MAX, v=U_MAX, vth=0, sub=1),
            _neuron(u=U_MAX, v=U_MAX, vth=0),
        ],
        # a spike needs v > vth << 6, strictly
        "threshold_equal": [
            _neuron(v=theta, dv=0, vth=100),
            _neuron(v=theta + 1, dv=0, vth=100),
            _neuron(v=theta, dv=0, vth=100, sub=1),
            _neuron(v=theta + 1, dv=0, vth=100, sub=1),
            _neuron(v=0, vth=0),
            _neuron(v=1, vth=0),
            _neuron(v=P.VTH_MAX << P.VTH_SHIFT, vth=P.VTH_MAX),
            _neuron(v=U_MAX, vth=P.VTH_MAX),
        ],
        # while ref > 0: v held, ref counts down, no spike; a spike loads `refractory`
        "refractory": [
            _neuron(v=U_MAX, ref=1, vth=0),
            _neuron(v=U_MAX, ref=15, vth=0, acc=500),
            _neuron(v=-5, ref=2, vth=0, bias_mant=4095, bias_exp=7),
            _neuron(v=theta + 1, vth=100, refractory=15),
            _neuron(v=theta + 1, vth=100, refractory=1, sub=1),
        ],
        # reset by subtraction keeps vi - (vth << 6); reset to zero clears v
        "reset_subtract": [
            _neuron(v=theta * 3, vth=100, sub=1),
            _neuron(v=theta * 3, vth=100, sub=0),
            _neuron(v=U_MAX, u=U_MAX, vth=P.VTH_MAX, sub=1),
            _neuron(v=U_MAX, u=U_MAX, bias_mant=4095, bias_exp=7, vth=1, sub=1),
        ],
        # bias = bias_mant << bias_exp, at both ends of both fields
        "bias_exponent": [
            _neuron(bias_mant=m, bias_exp=e, vth=P.VTH_MAX)
            for m in (-4096, -1, 1, 4095)
            for e in (0, 7)
        ],
        # a = clip(acc, -2^15, 2^15 - 1): the exact sum saturates, it does not wrap
        "input_saturates": [
            _neuron(acc=a, du=4095, vth=P.VTH_MAX)
            for a in (32767, 32768, -32768, -32769, 65536, -65537, acc_max, -acc_max - 1)
        ],
    }


def random_neurons(rng: np.random.Generator, n: int) -> list[dict[str, int]]:
    """Random neurons over every field's whole range, half of them near the threshold."""
    acc_hi = 1 << (ACC_BITS - 1)
    out = []
    for _ in range(n):
        vth = int(rng.integers(0, P.VTH_MAX + 1)) if rng.random() < 0.5 else int(rng.integers(200))
        near = rng.random() < 0.5
        out.append(
            {
                "u": int(rng.integers(-(1 << 23), 1 << 23)),
                "v": int(
                    rng.integers(-U_MAX, U_MAX + 1)
                    if not near
                    else (vth << P.VTH_SHIFT) + rng.integers(-5000, 5000)
                ),
                "ref": int(rng.choice([0, 0, 0, 1, int(rng.integers(16))])),
                "acc": int(
                    rng.integers(-acc_hi, acc_hi)
                    if rng.random() < 0.3
                    else rng.integers(-40000, 40000)
                ),
                "du": int(rng.integers(0, P.DECAY_MAX + 1)),
                "dv": int(rng.integers(0, P.DECAY_MAX + 1)),
                "vth": vth,
                "bias_mant": int(rng.integers(P.BIAS_MANT_MIN, P.BIAS_MANT_MAX + 1)),
                "bias_exp": int(rng.integers(0, P.BIAS_EXP_MAX + 1)),
                "refractory": int(rng.integers(0, P.REFRACTORY_MAX + 1)),
                "sub": int(rng.integers(2)),
            }
        )
    for x in out:
        x["v"] = max(-U_MAX, min(U_MAX, x["v"]))
    return out


def reference(neurons: list[dict[str, int]]) -> list[dict[str, int]]:
    """The new state and spike of every neuron, from ``arith.lif_update``."""
    col = {k: np.array([x[k] for x in neurons], dtype=np.int64) for k in FIELDS}
    u, v, ref, spiked = arith.lif_update(
        col["u"],
        col["v"],
        col["ref"],
        col["acc"],
        col["du"],
        col["dv"],
        col["vth"],
        col["bias_mant"],
        col["bias_exp"],
        col["refractory"],
        col["sub"].astype(bool),
    )
    return [
        {"u": int(u[i]), "v": int(v[i]), "ref": int(ref[i]), "fire": int(spiked[i])}
        for i in range(len(neurons))
    ]


def encode(x: dict[str, int], tag: int) -> int:
    """The ``i_neuron`` payload of neuron ``x``."""
    state = pack(NEURON_STATE, {"u": x["u"], "v": x["v"], "ref": x["ref"]})
    params = pack(
        NEURON_PARAMS,
        {
            "du": x["du"],
            "dv": x["dv"],
            "vth": x["vth"],
            "bias_mant": x["bias_mant"],
            "bias_exp": x["bias_exp"],
            "refractory": x["refractory"],
            "reset_subtract": x["sub"],
        },
    )
    layout = lif_input_layout(ACC_BITS, TAG_BITS)
    return pack(layout, {"state": state, "params": params, "acc": x["acc"], "tag": tag})


def decode(word: int) -> dict[str, int]:
    """The new state, spike and tag of an ``o_neuron`` payload."""
    out = unpack(lif_output_layout(TAG_BITS), word)
    return {**unpack(NEURON_STATE, out["state"]), "fire": out["fire"], "tag": out["tag"]}


def all_cases(seed: int) -> dict[str, list[dict[str, int]]]:
    cases = corner_cases()
    cases["random"] = random_neurons(np.random.default_rng(seed), 600)
    return cases


if cocotb is not None:
    from streams import StreamSink, StreamSource, random_pauses, random_stalls

    @cocotb.test()
    @cocotb.parametrize(stress=[False, True])
    async def lif_matches_reference(dut, stress: bool) -> None:  # type: ignore[no-untyped-def]
        seed = int(os.environ.get("SPIKEFAB_SEED", "1"))
        rng = random.Random(seed * 2 + stress)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        src = StreamSource(dut, "i_neuron", pause=random_pauses(rng, 0.3) if stress else None)
        sink = StreamSink(
            dut,
            "o_neuron",
            decode=decode,
            pause=random_stalls(rng, 0.4, 0.02, (5, 30)) if stress else None,
        )
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        cases = all_cases(seed)
        flat = [(name, i, x) for name, xs in cases.items() for i, x in enumerate(xs)]
        want = reference([x for _, _, x in flat])
        for tag, (_, _, x) in enumerate(flat):
            src.send_nowait(encode(x, tag))
        got = [await sink.recv(limit=50 * len(flat)) for _ in flat]
        for tag, ((name, i, x), g, w) in enumerate(zip(flat, got, want, strict=True)):
            assert g["tag"] == tag, f"{name}[{i}]: result of neuron {g['tag']} where {tag} was due"
            del g["tag"]
            assert g == w, f"{name}[{i}]: {x} -> {g}, reference {w}"
        assert src.empty()
        dut._log.info("%d neurons (stress=%s) in %d cycles", len(flat), stress, sink.cycles)


# pytest side ----------------------------------------------------------------------------------


def test_corner_cases_reach_their_corners() -> None:
    """Each named case exercises what it is named after, on the reference."""
    cases = corner_cases()

    def ref(name: str) -> list[dict[str, int]]:
        return reference(cases[name])

    wraps = [x["u"] + (max(-32768, min(32767, x["acc"])) << 6) for x in cases["u_wraps"]]
    assert any(w > U_MAX for w in wraps) and any(w < -(1 << 23) for w in wraps)
    assert {r["v"] for r in ref("v_clips")} >= {U_MAX, -U_MAX}
    assert [r["fire"] for r in ref("threshold_equal")][:4] == [0, 1, 0, 1]
    assert all(r["fire"] == 0 for r in ref("refractory")[:3])
    held = zip(ref("refractory")[:3], cases["refractory"][:3], strict=True)
    assert all(r["ref"] == x["ref"] - 1 and r["v"] == x["v"] for r, x in held)
    assert all(r["fire"] for r in ref("reset_subtract"))
    assert any(r["u"] == 0 for r in ref("decay_toward_zero"))
    assert {x["acc"] for x in cases["input_saturates"]} > {32767, -32768}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_lif(sim: str) -> None:
    from spikefab.hdl.lif import LIFDatapath
    from spikefab.sim.rtl import run_cocotb, write_verilog

    build = ROOT / "sim_build" / "lif" / sim
    verilog = write_verilog(LIFDatapath(ACC_BITS, TAG_BITS), "lif", build / "lif.v")
    run_cocotb(sim, [verilog], "lif", "test_lif", test_dir=HERE, build_dir=build)
