"""Test order: the two longest tests first, one on each worker of ``make test``.

The two ECP5 bitstream builds take most of the run's time (``tests/boards``). ``make test``
runs pytest-xdist with ``--maxschedchunk 1``: each worker starts with two tests, the first
worker the first two, the second the next two, and then takes one test at a time as it
finishes one. With the ULX3S build first, a test of no time second and the OrangeCrab build
third, each worker starts on one of the builds, and the rest of the suite runs beside them
instead of after them.
"""

from __future__ import annotations

import pytest

#: The long tests and the places they take (a substring of the test's node id each).
FIRST = {
    "test_ecp5_bitstreams[ulx3s]": 0,
    "test_dfu_suffix_is_what_dfu_util_checks": 1,  # milliseconds
    "test_ecp5_bitstreams[orangecrab]": 2,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    long = {place: item for item in items for key, place in FIRST.items() if key in item.nodeid}
    rest = [item for item in items if item not in long.values()]
    for place in sorted(long):
        rest.insert(min(place, len(rest)), long[place])
    items[:] = rest
