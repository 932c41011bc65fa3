"""One MPI rank of a run over several devices: ``mpiexec -n K python -m spikefab.host.ranks``.

Started by :func:`spikefab.host.multidevice.run_devices` (``spikefab run --devices K``) with
a multi-device image. Every rank opens its device and runs its part; rank 0 writes the
whole network's result (marked partial when a device failed) and the exchange figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from spikefab.host.multidevice import DeviceMapping, load_plan, run_devices
from spikefab.sim.results import RunAbortedError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spikefab.host.ranks")
    ap.add_argument("plan", type=Path, help="the multi-device image (a directory)")
    ap.add_argument("--backend", default="verilator")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="rank 0's result file")
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--sim-process",
        action="store_true",
        help="run each rank's Verilator simulation as a program of its own",
    )
    args = ap.parse_args(argv)
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.rank
    plan, images, names = load_plan(args.plan)
    dm = DeviceMapping(plan, [None] * plan.devices, images, names)
    try:
        result = run_devices(
            dm,
            args.steps,
            args.backend,
            timeout=args.timeout,
            progress=args.progress,
            in_process=not args.sim_process,
        )
    except RunAbortedError as e:
        # the parent reads the failure from the partial result; a non-zero status would
        # only add mpiexec's banner to the one line it prints
        result = e.partial
    except BaseException:
        # anything else leaves the other ranks waiting in a collective: end them all
        import traceback

        traceback.print_exc()
        MPI.COMM_WORLD.Abort(1)
        raise
    if rank == 0:
        stats = getattr(result, "exchange", None)
        result.save(args.out)
        meta = {"exchange": dataclasses.asdict(stats) if stats is not None else {}}
        args.out.with_suffix(".json").write_text(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
