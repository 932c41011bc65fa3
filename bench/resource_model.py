"""The resource model of a core (``boards/resources.py``) against measured builds.

``spikefab estimate --core ...`` predicts the logic, block RAM and fmax of a core of any
size from a model fitted on synthesized, placed and routed cores. This script makes those
builds and checks the model on them:

``--measure``
    Builds every core of :data:`GRID` for the ECP5-85F and the iCE40UP5K with Yosys and
    nextpnr (the YoWASP packages of the ``fpga`` extra, as ``bench/synth_core.py`` does:
    each core behind shift chains, ``PinWrapper``) and writes the figures to
    ``boards/resource_builds.json`` (each build as soon as it is done, so an interrupted
    run keeps what it measured). About 2 minutes a core on a 2-core machine; it prints
    each tool's phase while it runs.
default
    Fits the model on the recorded builds and prints, for every build, the prediction
    of a model fitted on the *other* builds (leave one out) against the measurement, and
    the error: the model's calibration error on builds it was not fitted to.

Run from the repository root::

    .venv/bin/python bench/resource_model.py --measure     # the builds (about 25 minutes)
    .venv/bin/python bench/resource_model.py               # the calibration error
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: The cores measured, by name: (device keys of ``synth_core.DEVICES``, CoreConfig fields).
GRID: dict[str, tuple[tuple[str, ...], dict]] = {
    "n128-a128-s2k-d16": (("ecp5-85f", "up5k"), dict(neurons=128, axons=128, synapses=2048)),
    "n256-a256-s4k-d16": (("ecp5-85f", "up5k"), dict()),
    "n256-a256-s4k-d8-learn": (
        ("ecp5-85f", "up5k"),
        dict(delay_slots=8, learning=True),
    ),
    "n256-a512-s8k-d8": (("ecp5-85f", "up5k"), dict(axons=512, synapses=8192, delay_slots=8)),
    "n128-a256-s4k-d4-learn": (
        ("ecp5-85f", "up5k"),
        dict(neurons=128, delay_slots=4, learning=True),
    ),
    "n512-a512-s8k-d16": (("ecp5-85f",), dict(neurons=512, axons=512, synapses=8192)),
    "n64-a128-s2k-d16": (("up5k",), dict(neurons=64, axons=128, synapses=2048)),
    "n128-a512-s8k-d8": (("up5k",), dict(neurons=128, axons=512, synapses=8192, delay_slots=8)),
    "n1024-a1024-s16k-d16": (("ecp5-85f",), dict(neurons=1024, axons=1024, synapses=16384)),
    "n1024-a4096-s32k-d8": (
        ("ecp5-85f",),
        dict(neurons=1024, axons=4096, synapses=32768, delay_slots=8),
    ),
    "n2048-a2048-s16k-d8": (
        ("ecp5-85f",),
        dict(neurons=2048, axons=2048, synapses=16384, delay_slots=8),
    ),
    "n512-a1024-s16k-d16-learn": (
        ("ecp5-85f",),
        dict(neurons=512, axons=1024, synapses=16384, learning=True),
    ),
    "n4096-a1024-s8k-d4": (
        ("ecp5-85f",),
        dict(neurons=4096, axons=1024, synapses=8192, delay_slots=4),
    ),
    "n1024-a2048-s32k-d16-learn": (
        ("ecp5-85f",),
        dict(neurons=1024, axons=2048, synapses=32768, learning=True),
    ),
}


def measure(names: list[str], seed: int, build_dir: Path) -> int:
    from spikefab.boards.resources import BUILDS_FILE, FAMILY_OF
    from spikefab.hdl.layouts import CoreConfig
    from synth_core import build_core  # bench/ is on the path when this runs as a script

    data = json.loads(BUILDS_FILE.read_text()) if BUILDS_FILE.exists() else {"builds": []}
    data["made_by"] = "bench/resource_model.py --measure"
    done = {(b["name"], b["device"]) for b in data["builds"]}
    t0 = time.perf_counter()
    for name in names:
        devices, fields = GRID[name]
        todo = [d for d in devices if (name, d) not in done]
        if not todo:
            print(f"[{name}] measured already", flush=True)
            continue
        cfg = CoreConfig(**fields)
        for res in build_core(name, cfg, todo, build_dir, seed):
            family = FAMILY_OF[res.device]
            lut = res.util.get("TRELLIS_COMB" if family == "ecp5" else "ICESTORM_LC")
            if lut is None:
                print(f"  {name} on {res.device}: no figures ({res.error})", flush=True)
                continue
            fits = all(u <= a for u, a in res.util.values())
            if res.fmax is None or not fits:
                # placement failed (the device is too small): the counts stand, fmax does not
                print(f"  {name} on {res.device}: no fmax ({res.error})", flush=True)
            ebr = res.util.get("DP16KD" if family == "ecp5" else "ICESTORM_RAM", (0, 0))
            ff = res.util.get("TRELLIS_FF") if family == "ecp5" else None
            dsp = res.util.get("MULT18X18D" if family == "ecp5" else "ICESTORM_DSP", (0, 0))
            data["builds"].append(
                {
                    "name": name,
                    "device": res.device,
                    "core": fields,
                    "lut": lut[0],
                    "ff": ff[0] if ff else res.yosys_cells.get("ff", 0),
                    "ebr": ebr[0],
                    "spram": res.util.get("ICESTORM_SPRAM", (0, 0))[0],
                    "dsp": dsp[0],
                    "fmax_mhz": round(res.fmax, 2) if res.fmax and fits else None,
                    "seed": seed,
                }
            )
            BUILDS_FILE.write_text(json.dumps(data, indent=1) + "\n")
            print(f"  recorded {name} on {res.device} ({time.perf_counter() - t0:.0f} s in all)")
    return 0


def calibration() -> int:
    from spikefab.boards.resources import FIGURES, leave_one_out

    rows = leave_one_out()
    if not rows:
        print("no builds recorded: run with --measure first")
        return 1
    print("leave one out: each build predicted by the model fitted on the others")
    head = f"{'core':28s} {'device':9s}"
    for f in FIGURES:
        head += f" {f + ' meas':>10s} {'pred':>8s} {'err':>7s}"
    print(head)
    errs: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        line = f"{r['name']:28s} {r['device']:9s}"
        for f in FIGURES:
            if f not in r:  # no fmax: the core did not fit the device
                line += f" {'-':>10s} {'-':>8s} {'-':>7s}"
                continue
            m, p = r[f]
            err = (p - m) / m if m else 0.0
            errs.setdefault((r["device"], f), []).append(abs(err))
            line += f" {m:10.1f} {p:8.1f} {100 * err:+6.1f}%"
        print(line)
    print("\nmean and largest absolute error on builds the model was not fitted to:")
    for (dev, f), e in sorted(errs.items()):
        print(f"  {dev:9s} {f:9s} mean {100 * sum(e) / len(e):5.1f}%  max {100 * max(e):5.1f}%")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true", help="build the grid's cores first")
    ap.add_argument("--only", action="append", help="a core of the grid (repeatable)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr's seed")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "sim_build" / "bench_resources")
    args = ap.parse_args(argv)
    print(f"command: {' '.join(sys.argv)}")
    if args.measure:
        names = args.only or list(GRID)
        for n in names:
            if n not in GRID:
                ap.error(f"unknown core {n!r}; the grid has {', '.join(GRID)}")
        measure(names, args.seed, args.build_dir)
    return calibration()


if __name__ == "__main__":
    sys.exit(main())
