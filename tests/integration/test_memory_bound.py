"""Memory stays bounded: 100k chats opened and ended, a consumer acking the outbox, retention
on (memory adapter). A memory bound, not a timing: RSS is read from ``/proc/self/statm``."""

from __future__ import annotations

import gc
import resource
import sys

import pytest

from chatmgmt import ChatManager, ChatSettings, CustomerInfo
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import make_agent, sequential_ids

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads RSS from /proc/self/statm"
)

TOTAL = 100_000
WARM_UP = 20_000
STEP_S = 0.01  # clock time between two chats: 100k chats span 1000 s
RETENTION_S = 60.0  # so about 6,000 ended chats are retained at any moment


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _drain(storage: MemoryStorage, now: float) -> None:
    """The webhook dispatcher's part: claim and acknowledge every event."""
    while batch := storage.outbox.claim("consumer", 5000, now, 30.0):
        storage.outbox.ack([entry.id for entry in batch])


def test_rss_is_flat_over_100k_chats_with_retention_and_a_consumer() -> None:
    settings = ChatSettings.from_dict(
        {"retention": {"ended_chats_s": RETENTION_S, "purge_interval_s": 5.0}}
    )
    storage = MemoryStorage()
    manager = ChatManager(storage, settings, ids=sequential_ids())
    manager.register_agent(make_agent("ann", limit=10), now=0.0)
    now = 1_000.0
    rss_warm = 0
    for i in range(TOTAL):
        now += STEP_S
        chat = manager.open_chat(CustomerInfo(), now=now)
        manager.end_chat(chat.id, now=now)
        if i % 500 == 0:
            _drain(storage, now)
            manager.tick(now=now)
        if i + 1 == WARM_UP:
            gc.collect()
            rss_warm = _rss()
    _drain(storage, now)
    manager.tick(now=now)
    gc.collect()
    grown = _rss() - rss_warm
    retained = len(manager.list_chats())
    assert retained <= (RETENTION_S + 10) / STEP_S  # what retention keeps, plus one interval
    assert storage.outbox.pending() == 0
    # 80,000 more chats went through; kept, they would cost ~5 kB each (400 MB)
    assert grown < 24 * 2**20, f"RSS grew {grown / 2**20:.1f} MiB over {TOTAL - WARM_UP} chats"
