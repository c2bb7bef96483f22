"""Offers and pull mode on every adapter: they use the existing unit of work (a claim on offer,
a release plus a ranked claim excluding the decliner on decline or expiry, a checked claim on
take), so every adapter runs them with no code of its own; the stored records agree."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmgmt import ChatManager, ChatSettings, ChatState
from chatmgmt.errors import AssignmentError
from chatmgmt.model import CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.testing import ManualClock, check_invariants, make_agent, sequential_ids

SETTINGS = ChatSettings.from_dict(
    {
        "assignment": {
            "offers": {"enabled": True, "timeout_s": 20},
            "groups": {"desk": {"pull": True}},
        }
    }
)


@pytest.fixture(params=["memory", "sqlite", "redis", "redis_cluster", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    ns = f"offers-{uuid.uuid4().hex}"
    if request.param == "memory":
        from chatmgmt.storage import MemoryStorage

        yield MemoryStorage()
    elif request.param == "sqlite":
        from chatmgmt.storage.sqlite import SQLiteStorage

        sqlite = SQLiteStorage(tmp_path / "o.db")
        yield sqlite
        sqlite.close()
    elif request.param.startswith("redis"):
        from chatmgmt.storage.redis import RedisStorage

        if request.param == "redis":
            redis = RedisStorage(request.getfixturevalue("redis_url"), ns)
        else:
            from storage.redis_helpers import redis_cluster_url

            redis = RedisStorage.cluster(redis_cluster_url(), ns)
        yield redis
        redis.delete_namespace()
        redis.close()
    else:
        from chatmgmt.storage.postgres import PostgresStorage

        pg = PostgresStorage(request.getfixturevalue("postgres_url"), ns)
        yield pg
        pg.delete_namespace()
        pg.close()


def test_offer_decline_expire_accept_and_take(storage: Storage) -> None:
    clock = ManualClock(1_000.0)
    m = ChatManager(storage, SETTINGS, clock=clock, rng=random.Random(2), ids=sequential_ids())
    for order, name in enumerate(("ann", "bob", "cid")):
        m.register_agent(make_agent(name, groups=["sales", "desk"], limit=1, order=order))
    first = m.open_chat(CustomerInfo(), skill_group="sales", chat_id="c1")
    assert first.state is ChatState.OFFERED and first.agent_id == "ann"
    declined = m.decline_offer("c1", "ann", reason="busy")
    assert declined.agent_id == "bob" and declined.excluded == {"ann"}
    clock.advance(20)
    assert m.tick() == 1
    expired = m.get_chat("c1")
    assert expired.agent_id == "cid" and expired.excluded == {"ann", "bob"}
    accepted = m.accept_offer("c1", "cid")
    assert accepted.state is ChatState.ACTIVE
    # the pull-mode group: ann and bob are free (the chat they declined went on)
    m.open_chat(CustomerInfo(), skill_group="desk", chat_id="d1")
    m.open_chat(CustomerInfo(), skill_group="desk", chat_id="d2")
    assert m.get_chat("d1").state is ChatState.QUEUED
    assert m.take_chat("bob", chat_id="d2").agent_id == "bob"  # type: ignore[union-attr]
    with pytest.raises(AssignmentError):
        m.take_chat("cid")  # holds c1: at the limit
    assert m.take_chat("ann").id == "d1"  # type: ignore[union-attr]
    assert {ld.agent.id: set(ld.chats) for ld in storage.agents.list()} == {
        "ann": {"d1"},
        "bob": {"d2"},
        "cid": {"c1"},
    }
    check_invariants(storage, opened=["c1", "d1", "d2"], drained=True, off_duty=["desk"])
    fixed = m.reconcile()
    assert fixed == dict.fromkeys(fixed, 0)
