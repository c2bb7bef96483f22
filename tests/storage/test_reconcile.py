"""reconcile() repairs indexes that name a chat that is gone, on every adapter."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, CustomerInfo
from chatmgmt.model import AgentId, ChatId, ChatState
from chatmgmt.ports import Change, Claim, QueuePush, Storage
from chatmgmt.storage import MemoryStorage
from chatmgmt.storage.sqlite import SQLiteStorage
from chatmgmt.testing import ManualClock, check_invariants, sequential_ids
from storage.test_offers_pull_adapters import storage as all_storage  # noqa: F401


@pytest.fixture(params=["memory", "sqlite", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
    elif request.param == "sqlite":
        sqlite = SQLiteStorage(tmp_path / "r.db")
        yield sqlite
        sqlite.close()
    else:
        from chatmgmt.storage.redis import RedisStorage

        redis = RedisStorage(request.getfixturevalue("redis_url"), f"rec-{uuid.uuid4().hex}")
        yield redis
        redis.delete_namespace()


def test_a_slot_and_an_entry_of_a_chat_that_is_gone_are_repaired(storage: Storage) -> None:
    manager = ChatManager(storage, rng=random.Random(1))
    manager.register_agent(Agent("a", status=AgentStatus.ONLINE, reception_limit=2))
    # indexes naming a chat that does not exist (as a broken adapter or a hand edit leaves)
    storage.apply(Change(ChatId("gone"), None, 0.0, claim=Claim(AgentId("a"))))
    storage.apply(Change(ChatId("lost"), None, 0.0, push=QueuePush("queue/", 1.0)))
    assert manager.agent("a").chats == {"gone"}
    fixed = manager.reconcile()
    assert (fixed["released"], fixed["removed"]) == (1, 1)
    assert manager.agent("a").chats == frozenset()
    assert storage.queues.length("queue/") == 0
    assert manager.reconcile() == dict.fromkeys(fixed, 0)


def test_require_empty_ignores_the_chat_itself(storage: Storage) -> None:
    # a chat already waiting in a queue may still be routed with "no newcomer overtakes" on
    from chatmgmt.errors import PreconditionFailed
    from chatmgmt.model import Chat, CustomerInfo

    def chat(cid: str, version: int) -> Chat:
        return Chat(ChatId(cid), CustomerInfo(), "web", queue="queue/", version=version)

    storage.apply(Change(ChatId("w"), None, 0.0, chat=chat("w", 0), push=QueuePush("queue/", 1.0)))
    storage.apply(Change(ChatId("w"), 0, 1.0, chat=chat("w", 1), require_empty="queue/"))
    with pytest.raises(PreconditionFailed) as info:
        storage.apply(Change(ChatId("n"), None, 1.0, chat=chat("n", 0), require_empty="queue/"))
    assert info.value.reason == "queue_not_empty"


def test_a_chat_sent_back_whose_entry_is_lost_gets_its_place_back(
    all_storage: Storage,  # noqa: F811  (the fixture of every adapter)
) -> None:
    # x (created at 1000) was sent back at 1010 and keeps its place by its first arrival,
    # ahead of z (1008). When its entry is lost (a broken adapter, a hand edit), reconcile()
    # puts it back by the same rule as the live path, not by when it was last queued (1010,
    # behind z): FIFO within a priority holds after the repair
    storage = all_storage
    clock = ManualClock(1000.0)
    m = ChatManager(storage, clock=clock, rng=random.Random(1), ids=sequential_ids())
    m.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=1))
    assert m.open_chat(CustomerInfo(), chat_id="x").agent_id == "ann"
    assert m.open_chat(CustomerInfo(), chat_id="y", now=1005).state is ChatState.QUEUED
    assert m.open_chat(CustomerInfo(), chat_id="z", now=1008).state is ChatState.QUEUED
    m.unassign("x", exclude=True, now=1010)  # back to the queue; ann takes y instead
    assert m.get_chat("y").agent_id == "ann"
    assert [c for c, _ in storage.queues.peek("queue/", 10)] == ["x", "z"]
    live = dict(storage.queues.peek("queue/", 10))
    x = storage.chats.get(ChatId("x"))
    assert x is not None and x.queued_at == 1010.0
    storage.apply(Change(ChatId("x"), x.version, 1011.0, remove=("queue/",)))
    assert storage.queues.position("queue/", ChatId("x")) is None
    fixed = m.reconcile(now=1012)
    assert fixed["requeued"] == 1
    assert storage.queues.peek("queue/", 10) == [("x", live["x"]), ("z", live["z"])]
    check_invariants(storage, opened=["x", "y", "z"], drained=True)
    m.register_agent(Agent("bob", status=AgentStatus.ONLINE, reception_limit=1), now=1013)
    assert m.get_chat("x").agent_id == "bob" and m.get_chat("z").state is ChatState.QUEUED
