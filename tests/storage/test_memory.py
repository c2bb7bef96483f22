"""MemoryStorage keeps the port contracts: CAS, idempotence, leases, census, no over-claim."""

from __future__ import annotations

import asyncio

import pytest

from chatmgmt.errors import ConflictError, NotFoundError
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentStatus,
    Chat,
    ChatId,
    Customer,
    CustomerInfo,
    Event,
    Ranking,
    RankKey,
    Timer,
)
from chatmgmt.ports import Change, Claim
from chatmgmt.storage import MemoryDatabase, MemoryStorage

LEAST_BUSY = Ranking("least_busy", (RankKey("active"), RankKey("last_assigned_at")))


def _event(n: int) -> Event:
    return Event(f"evt_{n}", "chat.started", float(n), {"n": n})


def _chat(chat_id: str = "c1", version: int = 0) -> Chat:
    return Chat(ChatId(chat_id), CustomerInfo(partner_id="u_1"), "web", version=version)


def _agent(
    aid: str, limit: int = 2, status: AgentStatus = AgentStatus.ONLINE, **kw: object
) -> Agent:
    return Agent(AgentId(aid), reception_limit=limit, status=status, **kw)  # type: ignore[arg-type]


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage("t1")


# --------------------------------------------------------------------------- customers


def test_customer_create_twice_conflicts_and_keeps_the_first(storage: MemoryStorage) -> None:
    storage.customers.create(Customer("u_1", name="Ada", version=1), [_event(1)])
    with pytest.raises(ConflictError):
        storage.customers.create(Customer("u_1", name="Eve", version=1), [_event(2)])
    assert storage.customers.get("u_1").name == "Ada"  # type: ignore[union-attr]
    assert [e.id for e in storage.outbox.events()] == ["evt_1"]  # the loser's event is gone


def test_customer_replace_is_compare_and_set(storage: MemoryStorage) -> None:
    storage.customers.create(Customer("u_1", version=1))
    storage.customers.replace(Customer("u_1", name="Ada", version=2), 1, [_event(1)])
    with pytest.raises(ConflictError) as info:
        storage.customers.replace(Customer("u_1", name="Old", version=2), 1, [_event(2)])
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert storage.customers.get("u_1").name == "Ada"  # type: ignore[union-attr]
    assert [e.id for e in storage.outbox.events()] == ["evt_1"]
    with pytest.raises(NotFoundError):
        storage.customers.replace(Customer("nobody", version=1), 0)


# --------------------------------------------------------------------------- chats


# chats, agents, slots, queues and census: every write is a Change given to apply(); the
# exported contract suites (tests/storage/test_storage_contract_local.py) cover them on memory


# --------------------------------------------------------------------------- outbox, timers


def test_outbox_leases_ack_and_redelivery(storage: MemoryStorage) -> None:
    box = storage.outbox
    box.append([_event(1), _event(2), _event(3)])
    first = box.claim("w1", 2, now=100.0, lease_s=30.0)
    assert [e.event.id for e in first] == ["evt_1", "evt_2"]
    assert all(e.deliveries == 1 for e in first)
    second = box.claim("w2", 10, now=101.0, lease_s=30.0)
    assert [e.event.id for e in second] == ["evt_3"]  # leased entries are skipped
    box.ack([first[0].id])
    box.ack([first[0].id])  # idempotent
    assert box.pending() == 2
    assert box.claim("w2", 10, now=110.0, lease_s=30.0) == []
    again = box.claim("w2", 10, now=131.0, lease_s=30.0)  # w1 died: its lease expired
    assert [e.event.id for e in again] == ["evt_2", "evt_3"]
    assert again[0].deliveries == 2
    box.ack([e.id for e in again])
    assert box.pending() == 0 and box.claim("w1", 10, now=1e9, lease_s=1.0) == []


# --------------------------------------------------------------------------- timers


def _timer(key: str, due: float) -> Timer:
    return Timer(key, due, "c1", "auto_transfer")


def _schedule(storage: MemoryStorage, timer: Timer) -> None:
    # timers are set inside a chat's unit of work; here a unit for a chat that does not exist
    storage.apply(Change(ChatId(f"chat-of-{timer.key}"), None, 0.0, schedule=(timer,)))


def test_timers_schedule_replace_claim_and_lease(storage: MemoryStorage) -> None:
    timers = storage.timers
    _schedule(storage, _timer("t1", 10.0))
    _schedule(storage, _timer("t2", 20.0))
    _schedule(storage, _timer("t1", 30.0))  # replaces t1's deadline
    assert timers.claim_due(15.0, 10, 5.0) == []
    due = timers.claim_due(25.0, 10, 3.0)
    assert [t.key for t in due] == ["t2"]
    assert timers.claim_due(26.0, 10, 5.0) == []  # leased until 28
    redo = timers.claim_due(31.0, 10, 5.0)  # the worker died: fires again, earliest first
    assert [t.key for t in redo] == ["t2", "t1"]


def test_timer_claim_respects_limit_and_order(storage: MemoryStorage) -> None:
    for i in range(5):
        _schedule(storage, _timer(f"t{i}", float(10 - i)))
    assert [t.key for t in storage.timers.claim_due(100.0, 2, 5.0)] == ["t4", "t3"]


def test_timer_cancel_with_due_at_spares_a_rescheduled_timer(storage: MemoryStorage) -> None:
    timers = storage.timers
    _schedule(storage, _timer("t1", 10.0))
    [fired] = timers.claim_due(10.0, 1, 30.0)  # leased: due again at 40
    _schedule(storage, _timer("t1", 100.0))  # rescheduled meanwhile
    timers.cancel("t1", 40.0)  # the worker's cleanup of the lease must not cancel it
    assert timers.get("t1") == _timer("t1", 100.0)
    timers.cancel("t1", 100.0)
    assert timers.get("t1") is None
    timers.cancel("t1")  # idempotent
    _schedule(storage, _timer("t2", 5.0))
    timers.cancel("t2")
    assert timers.claim_due(1e9, 10, 1.0) == []
    assert fired.key == "t1"


def test_many_cancellations_keep_claims_correct(storage: MemoryStorage) -> None:
    timers = storage.timers
    for i in range(500):
        _schedule(storage, _timer(f"t{i}", float(i)))
    for i in range(0, 500, 2):
        timers.cancel(f"t{i}")
    due = timers.claim_due(1e9, 1000, 1.0)
    assert [t.key for t in due] == [f"t{i}" for i in range(1, 500, 2)]


# --------------------------------------------------------------------------- counters, async


def test_rate_counter_sliding_window(storage: MemoryStorage) -> None:
    c = storage.counters
    assert [c.hit("k", t, 10.0) for t in (0.0, 1.0, 2.0)] == [1, 2, 3]
    assert c.hit("k", 11.5, 10.0) == 2  # hits at 0 and 1 fell out
    assert c.hit("other", 11.5, 10.0) == 1


def test_async_face_shares_state() -> None:
    storage = MemoryStorage("t1")
    aio = storage.aio()
    assert aio.namespace == "t1"

    async def scenario() -> None:
        await aio.customers.create(Customer("u_1", version=1))
        await aio.agents.put(_agent("a"), 0.0)
        await aio.apply(Change(ChatId("c1"), None, 1.0, claim=Claim(AgentId("a"))))
        with pytest.raises(ConflictError):
            await aio.customers.create(Customer("u_1", version=1))

    asyncio.run(scenario())
    assert storage.customers.get("u_1") is not None
    assert storage.agents.get(AgentId("a")).active == 1  # type: ignore[union-attr]


def test_namespaces_share_one_database_but_not_data() -> None:
    db = MemoryDatabase()
    one, two = MemoryStorage("one", db), MemoryStorage("two", db)
    one.customers.create(Customer("u_1", version=1))
    assert two.customers.get("u_1") is None
    two.customers.create(Customer("u_1", version=1))  # no conflict across tenants
    assert one.database is two.database


def test_a_chat_stored_before_the_typed_fields_decodes_into_them() -> None:
    # what Redis (and any JSON store) holds from releases that kept the library's
    # bookkeeping in the host's attributes
    import json

    from chatmgmt.model import Chat, CustomerInfo
    from chatmgmt.storage._codec import decode, encode

    new = Chat(id="c", customer=CustomerInfo(), channel="web", queue="queue/g", queued_at=2.0)
    assert decode(encode(new), Chat) == new
    old = json.loads(encode(new))
    for field in ("queue", "queued_at", "timers_fired", "leave_message", "sticky_waited"):
        old.pop(field)
    old["attributes"] = {"queue": "queue/g", "queued_at": 2.0, "offer_leave_message": "x", "h": 1}
    upgraded = decode(json.dumps(old), Chat)
    assert (upgraded.queue, upgraded.queued_at, upgraded.leave_message) == ("queue/g", 2.0, "x")
    assert upgraded.attributes == {"h": 1}


def test_equal_rankings_built_apart_share_one_index(storage: MemoryStorage) -> None:
    # the adapter finds a ranking's index by the value's identity first: an equal ranking
    # built anew must still reach the same index (the same agents, kept in step)
    from chatmgmt.ports import RankedClaim

    for aid in ("a", "b", "c"):
        storage.agents.put(_agent(aid, limit=1), 0.0)
    picked = []
    for i in range(3):
        ranking = Ranking("least_busy", (RankKey("active"), RankKey("last_assigned_at")))
        applied = storage.apply(
            Change(ChatId(f"c{i}"), None, float(i + 1), claim=RankedClaim("", ranking))
        )
        picked.append(applied.agent_id)
    assert sorted(picked) == ["a", "b", "c"]  # each agent once: one index saw every claim
    with pytest.raises(Exception, match="no_agent"):
        storage.apply(Change(ChatId("c9"), None, 9.0, claim=RankedClaim("", LEAST_BUSY)))
