"""spikefab: spiking networks on open neuromorphic hardware.

Describe a network once (YAML, Python or NIR); run it on the bit-exact golden model, on the
generated RTL in Verilator or Icarus, or on an FPGA board, and get the same spikes back::

    import spikefab

    net = spikefab.load("synfire")
    golden = spikefab.run(net, 200)
    rtl = spikefab.run(net, 200, backend="verilator")
    assert spikefab.compare(golden, rtl).equal

The functions are those of :mod:`spikefab.host.api`; the command line ``spikefab`` is a thin
shell over them.
"""

from spikefab.host.api import (
    BACKENDS,
    Session,
    compare,
    estimate,
    examples,
    image_for,
    load,
    load_mapped,
    map_network,
    open_device,
    open_system,
    run,
)
from spikefab.host.inputs import InputError
from spikefab.host.multidevice import DeviceMapping, map_devices
from spikefab.mapping.core_image import FitError
from spikefab.mapping.network import Network, NetworkBuilder, NetworkError
from spikefab.sim.results import Comparison, ProbeTrace, RunAbortedError, RunResult, load_result

__all__ = [
    "BACKENDS",
    "Comparison",
    "DeviceMapping",
    "FitError",
    "InputError",
    "Network",
    "NetworkBuilder",
    "NetworkError",
    "ProbeTrace",
    "RunAbortedError",
    "RunResult",
    "Session",
    "compare",
    "estimate",
    "examples",
    "image_for",
    "load",
    "load_mapped",
    "load_result",
    "map_devices",
    "map_network",
    "open_device",
    "open_system",
    "run",
]
