"""Random networks for runs over several devices, and random partitions of them.

Kept apart from the tests so that the MPI ranks of ``test_multidevice_mpi.py`` build the
same networks as the test that starts them.
"""

from __future__ import annotations

import numpy as np
from spikefab.mapping.devices import groups
from spikefab.mapping.network import Network, NetworkBuilder

#: The delay slots of the simulated core: delays go up to it.
MAX_DELAY = 16


def random_multi_net(seed: int, steps: int = 120) -> Network:
    """Sources and two to four LIF populations joined by random synapse lists.

    Delays run from 1 to :data:`MAX_DELAY`, from a random smallest delay (1 in three
    projections), which sets the exchange rounds of a cut. One or two projections are
    plastic, with one rule (a core holds one), with stochastic rounding on odd seeds.
    ``u``/``v``, weights and, on some seeds, spikes probes are added.
    """
    rng = np.random.default_rng(seed)
    b = NetworkBuilder(f"multi{seed}")
    sizes: dict[str, int] = {}
    sizes["inp"] = int(rng.integers(4, 24))
    b.spike_source("inp", sizes["inp"], poisson={"rate_hz": 200.0, "seed": seed})
    times = [np.flatnonzero(rng.random(steps) < 0.05).tolist() for _ in range(3)]
    b.spike_source("kick", 3, times=times)
    sizes["kick"] = 3
    lifs = []
    for k in range(int(rng.integers(2, 5))):
        name = f"n{k}"
        sizes[name] = int(rng.integers(3, 40))
        b.population(
            name,
            sizes[name],
            du=int(rng.integers(0, 4096)),
            dv=int(rng.integers(0, 1200)),
            vth=int(rng.integers(30, 400)),
            refractory=int(rng.integers(0, 4)),
            reset=str(rng.choice(["zero", "subtract"])),
        )
        lifs.append(name)
    rule = {
        "a_plus": int(rng.integers(-40, 60)),
        "a_minus": int(rng.integers(-20, 60)),
        "d_pre": int(rng.integers(50, 900)),
        "d_post": int(rng.integers(50, 900)),
        "bump_pre": int(rng.integers(100, 3000)),
        "bump_post": int(rng.integers(100, 3000)),
        "shift": int(rng.integers(0, 9)),
        "w_min": -100,
        "w_max": 110,
        "stochastic_rounding": seed % 2 == 1,
        "seed": int(rng.integers(0, 65536)),
    }
    projections = []
    for post in lifs:
        for k in range(int(rng.integers(2, 4))):
            pre = str(rng.choice(["inp", "kick"] if k == 0 else ["inp", *lifs]))
            p = float(rng.choice([0.1, 0.3, 0.7]))
            pairs = [
                [i, j] for i in range(sizes[pre]) for j in range(sizes[post]) if rng.random() < p
            ] or [[0, 0]]
            n = len(pairs)
            dmin = 1 if rng.random() < 0.3 else int(rng.integers(2, 6))
            projections.append(
                {
                    "pre": pre,
                    "post": post,
                    "connect": {"kind": "list", "pairs": pairs},
                    "weight": rng.integers(-60, 110, size=n).tolist(),
                    "delay": rng.integers(dmin, MAX_DELAY + 1, size=n).tolist(),
                    "weight_exp": int(rng.integers(0, 5)),
                    "name": f"p{len(projections)}",
                }
            )
    lif_projs = [pr for pr in projections if pr["pre"] in lifs] or projections
    for k in rng.choice(len(lif_projs), size=min(len(lif_projs), 2), replace=False):
        lif_projs[int(k)]["stdp"] = rule
    for pr in projections:
        b.project(**pr)
    b.probe(lifs[0], "v", neurons=[sizes[lifs[0]] - 1, 0])
    b.probe(lifs[-1], "u", every=int(rng.integers(1, 4)))
    plastic = next(pr for pr in projections if "stdp" in pr)
    b.probe(plastic["name"], "weights", every=int(rng.integers(1, 7)))
    if seed % 3 == 1:
        b.probe(lifs[0], "spikes")
        b.probe(lifs[-1], "spikes", neurons=[0])
        b.probe("inp", "spikes", neurons=[1])
    return b.build()


def random_partition(net: Network, devices: int, seed: int) -> np.ndarray:
    """A random device for every group of neurons that must share one (delay 1, plastic)."""
    g = groups(net)
    roots, inverse = np.unique(g, return_inverse=True)
    rng = np.random.default_rng(seed + 1000)
    return rng.integers(0, devices, size=roots.size)[inverse]
