"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from berth.network.ports import PortReservations


@pytest.fixture
def res() -> Iterator[PortReservations]:
    """Host-port reservations of the test's own (their sockets closed afterwards)."""
    reservations = PortReservations()
    try:
        yield reservations
    finally:
        reservations.close()
