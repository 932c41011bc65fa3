"""Test order: the longest tests first, so that the two workers of ``make test`` overlap them.

The two ECP5 bitstream builds take most of the run's time (``tests/boards``). pytest-xdist
hands the first tests out one to each worker in turn, so with the ULX3S build first and the
OrangeCrab build second each worker starts on one of them, and the rest of the suite runs
beside them instead of after them.
"""

from __future__ import annotations

import pytest

#: Tests that run first, longest first (a substring of the test's node id each).
FIRST = ("test_ecp5_bitstreams[ulx3s]", "test_ecp5_bitstreams[orangecrab]")


def _rank(item: pytest.Item) -> int:
    for i, part in enumerate(FIRST):
        if part in item.nodeid:
            return i
    return len(FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the others keep their order
