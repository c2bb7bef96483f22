"""reconcile() repairs indexes that name a chat that is gone, on every adapter."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager
from chatmgmt.model import AgentId, ChatId
from chatmgmt.ports import Change, Claim, QueuePush, Storage
from chatmgmt.storage import MemoryStorage
from chatmgmt.storage.sqlite import SQLiteStorage


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
