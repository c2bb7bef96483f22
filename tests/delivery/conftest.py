"""Fixtures for the delivery tests: a manual clock and a real, fault-injecting HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatmgmt.testing import ManualClock
from webhook.webhook_helpers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_764_000_000.0)
