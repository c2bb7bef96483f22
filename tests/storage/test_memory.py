"""MemoryStorage keeps the port contracts: CAS, idempotence, leases, census, no over-claim."""

from __future__ import annotations

import asyncio
import threading

import attrs
import pytest

from chatmgmt.errors import ConflictError, NotFoundError
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    Customer,
    CustomerInfo,
    Event,
    Message,
    MessageRole,
    Ranking,
    RankKey,
    Sticky,
    Timer,
)
from chatmgmt.ports import Census
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


def test_chat_create_twice_conflicts(storage: MemoryStorage) -> None:
    storage.chats.create(_chat(), [_event(1)])
    with pytest.raises(ConflictError):
        storage.chats.create(_chat(), [_event(2)])
    assert storage.outbox.pending() == 1


def test_chat_replace_cas_and_events_commit_together(storage: MemoryStorage) -> None:
    storage.chats.create(_chat())
    v1 = attrs.evolve(_chat(), state=ChatState.ACTIVE, agent_id=AgentId("a"), version=1)
    sticky = Sticky("u_1", AgentId("a"), 5.0, "closed")
    storage.chats.replace(v1, 0, [_event(1)], sticky)
    assert storage.chats.get(ChatId("c1")) == v1
    assert storage.chats.sticky("u_1") == sticky
    stale = attrs.evolve(_chat(), state=ChatState.ENDED, version=1)
    with pytest.raises(ConflictError):
        storage.chats.replace(stale, 0, [_event(2)], Sticky("u_1", AgentId("b"), 6.0, "closed"))
    assert storage.chats.get(ChatId("c1")) == v1
    assert storage.chats.sticky("u_1") == sticky  # the losing sticky mark was not written
    assert [e.id for e in storage.outbox.events()] == ["evt_1"]
    with pytest.raises(NotFoundError):
        storage.chats.replace(_chat("nope", 1), 0)


def test_append_message_is_cas_with_the_chat(storage: MemoryStorage) -> None:
    storage.chats.create(_chat())
    msg = Message("m1", ChatId("c1"), MessageRole.CUSTOMER, "u_1", "hi", 1.0)
    storage.chats.append_message(msg, _chat(version=1), 0, [_event(1)])
    with pytest.raises(ConflictError):
        storage.chats.append_message(attrs.evolve(msg, id="m2"), _chat(version=1), 0, [_event(2)])
    assert [m.id for m in storage.chats.messages(ChatId("c1"))] == ["m1"]
    assert storage.chats.get(ChatId("c1")).version == 1  # type: ignore[union-attr]
    assert storage.outbox.pending() == 1


def test_list_chats_filters(storage: MemoryStorage) -> None:
    storage.chats.create(_chat("a"))
    storage.chats.create(attrs.evolve(_chat("b"), state=ChatState.ACTIVE, agent_id=AgentId("x")))
    assert [c.id for c in storage.chats.list(ChatState.ACTIVE)] == ["b"]
    assert [c.id for c in storage.chats.list(agent_id=AgentId("x"))] == ["b"]
    assert len(storage.chats.list()) == 2


# --------------------------------------------------------------------------- agents


def test_claim_respects_limit_status_and_is_idempotent_per_chat(storage: MemoryStorage) -> None:
    agents = storage.agents
    agents.put(_agent("a", limit=2), 0.0)
    assert agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.5)
    assert agents.claim(AgentId("a"), ChatId("c1"), 2.0, 0.5)  # again: True, nothing changes
    assert agents.get(AgentId("a")).active == 1  # type: ignore[union-attr]
    assert agents.claim(AgentId("a"), ChatId("c2"), 3.0, 0.5)
    assert not agents.claim(AgentId("a"), ChatId("c3"), 4.0, 0.5)  # at the limit
    assert not agents.claim(AgentId("nobody"), ChatId("c3"), 4.0, 0.5)
    agents.put(_agent("b", status=AgentStatus.AWAY), 0.0)
    assert not agents.claim(AgentId("b"), ChatId("c3"), 4.0, 0.5)


def test_release_is_idempotent(storage: MemoryStorage) -> None:
    agents = storage.agents
    agents.put(_agent("a", limit=1), 0.0)
    agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.1)
    assert agents.release(AgentId("a"), ChatId("c1"), 2.0, 0.1)
    assert not agents.release(AgentId("a"), ChatId("c1"), 3.0, 0.1)
    assert not agents.release(AgentId("nobody"), ChatId("c1"), 3.0, 0.1)
    load = agents.get(AgentId("a"))
    assert load is not None and load.active == 0 and load.idle_since == 2.0


def test_put_keeps_the_load(storage: MemoryStorage) -> None:
    agents = storage.agents
    agents.put(_agent("a", limit=3), 0.0)
    agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.1)
    load = agents.put(_agent("a", limit=5, display_name="Ann"), 2.0)
    assert load.chats == frozenset({"c1"}) and load.agent.reception_limit == 5


def test_claim_ranked_picks_by_ranking_and_skips_excluded(storage: MemoryStorage) -> None:
    agents = storage.agents
    for aid in ("a", "b", "c"):
        agents.put(_agent(aid, limit=2, skill_groups=frozenset({"sales"})), 0.0)
    agents.put(_agent("z", limit=2), 0.0)  # not in sales
    agents.claim(AgentId("a"), ChatId("x"), 1.0, 0.0)
    got = agents.claim_ranked("sales", LEAST_BUSY, ChatId("c1"), frozenset(), 2.0, 0.0)
    assert got == "b"  # a holds one chat; b and c tie, agent id breaks the tie
    got = agents.claim_ranked("sales", LEAST_BUSY, ChatId("c2"), frozenset({"c"}), 3.0, 0.0)
    assert got == "a"  # c excluded; a and b both hold one, a was assigned earlier
    assert (
        agents.claim_ranked("nobody-group", LEAST_BUSY, ChatId("c3"), frozenset(), 4.0, 0.0) is None
    )


def test_claim_ranked_never_returns_an_ineligible_agent(storage: MemoryStorage) -> None:
    agents = storage.agents
    agents.put(_agent("a", limit=1), 0.0)
    assert agents.claim_ranked("", LEAST_BUSY, ChatId("c1"), frozenset(), 1.0, 0.0) == "a"
    assert agents.claim_ranked("", LEAST_BUSY, ChatId("c2"), frozenset(), 1.0, 0.0) is None
    agents.release(AgentId("a"), ChatId("c1"), 2.0, 0.0)
    agents.put(_agent("a", limit=1, status=AgentStatus.OFFLINE), 2.0)
    assert agents.claim_ranked("", LEAST_BUSY, ChatId("c2"), frozenset(), 3.0, 0.0) is None


def test_set_inactive_moves_a_chat_out_of_the_count(storage: MemoryStorage) -> None:
    agents = storage.agents
    agents.put(_agent("a", limit=1), 0.0)
    agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.0)
    agents.set_inactive(AgentId("a"), ChatId("c1"), True)
    agents.set_inactive(AgentId("a"), ChatId("c1"), True)  # idempotent
    load = agents.get(AgentId("a"))
    assert load is not None and load.active == 0 and load.inactive == frozenset({"c1"})
    assert agents.claim(AgentId("a"), ChatId("c2"), 2.0, 0.0)
    assert agents.release(AgentId("a"), ChatId("c1"), 3.0, 0.0)  # an inactive slot releases too


def test_census_counts(storage: MemoryStorage) -> None:
    agents = storage.agents
    agents.put(_agent("a", limit=2, skill_groups=frozenset({"g"})), 0.0)
    agents.put(_agent("b", limit=1, skill_groups=frozenset({"g"})), 0.0)
    agents.put(_agent("c", limit=3, status=AgentStatus.BUSY, skill_groups=frozenset({"g"})), 0.0)
    agents.put(_agent("d", limit=3, status=AgentStatus.AWAY), 0.0)
    agents.put(_agent("e", limit=3, status=AgentStatus.OFFLINE), 0.0)
    agents.claim(AgentId("b"), ChatId("c1"), 1.0, 0.0)
    agents.claim(AgentId("a"), ChatId("c2"), 1.0, 0.0)
    assert agents.census("g") == Census(eligible=1, full=1, busy=1, capacity=3, load=2)
    everyone = agents.census("")
    assert everyone == Census(eligible=1, full=1, busy=1, away=1, offline=1, capacity=3, load=2)
    assert everyone.online == 2 and everyone.total == 5
    agents.release(AgentId("b"), ChatId("c1"), 2.0, 0.0)
    agents.put(_agent("a", limit=2, status=AgentStatus.OFFLINE, skill_groups=frozenset({"g"})), 2.0)
    assert agents.census("g") == Census(eligible=1, busy=1, offline=1, capacity=1, load=0)
    assert agents.census("unknown") == Census()


@pytest.mark.parametrize("ranked", [True, False])
def test_claims_never_exceed_the_limit_under_16_threads(ranked: bool) -> None:
    storage = MemoryStorage()
    agents = storage.agents
    for i in range(4):
        agents.put(_agent(f"a{i}", limit=3), 0.0)
    barrier = threading.Barrier(16)
    won: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        barrier.wait()
        for j in range(10):
            chat = ChatId(f"c{t}-{j}")
            if ranked:
                aid = agents.claim_ranked("", LEAST_BUSY, chat, frozenset(), float(j), 0.0)
            else:
                target = AgentId(f"a{(t + j) % 4}")
                aid = target if agents.claim(target, chat, float(j), 0.0) else None
            if aid is not None:
                with lock:
                    won.append((aid, chat))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 12  # exactly the capacity, never more
    for load in agents.list():
        assert load.active <= load.agent.reception_limit == 3
        assert {c for a, c in won if a == load.agent.id} == set(load.chats)
    assert agents.census("") == Census(full=4, capacity=12, load=12)


# --------------------------------------------------------------------------- queues


def test_queue_order_idempotent_push_and_remove(storage: MemoryStorage) -> None:
    q = storage.queues
    q.push("queue/sales", ChatId("b"), 10.0)
    q.push("queue/sales", ChatId("a"), 5.0)
    q.push("queue/sales", ChatId("c"), 10.0)  # same score: insertion order
    q.push("queue/sales", ChatId("b"), 1.0)  # already there: keeps its first position
    assert q.peek("queue/sales", 10) == [("a", 5.0), ("b", 10.0), ("c", 10.0)]
    assert q.position("queue/sales", ChatId("c")) == 2
    assert q.length("queue/sales") == 3
    assert q.remove("queue/sales", ChatId("b"))
    assert not q.remove("queue/sales", ChatId("b"))
    assert not q.remove("queue/other", ChatId("a"))
    assert q.position("queue/sales", ChatId("b")) is None
    assert q.peek("queue/sales", 1) == [("a", 5.0)]
    assert q.length("queue/none") == 0 and q.peek("queue/none", 5) == []


# --------------------------------------------------------------------------- outbox


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


def test_timers_schedule_replace_claim_and_lease(storage: MemoryStorage) -> None:
    timers = storage.timers
    timers.schedule(_timer("t1", 10.0))
    timers.schedule(_timer("t2", 20.0))
    timers.schedule(_timer("t1", 30.0))  # replaces t1's deadline
    assert timers.claim_due(15.0, 10, 5.0) == []
    due = timers.claim_due(25.0, 10, 3.0)
    assert [t.key for t in due] == ["t2"]
    assert timers.claim_due(26.0, 10, 5.0) == []  # leased until 28
    redo = timers.claim_due(31.0, 10, 5.0)  # the worker died: fires again, earliest first
    assert [t.key for t in redo] == ["t2", "t1"]


def test_timer_claim_respects_limit_and_order(storage: MemoryStorage) -> None:
    for i in range(5):
        storage.timers.schedule(_timer(f"t{i}", float(10 - i)))
    assert [t.key for t in storage.timers.claim_due(100.0, 2, 5.0)] == ["t4", "t3"]


def test_timer_cancel_with_due_at_spares_a_rescheduled_timer(storage: MemoryStorage) -> None:
    timers = storage.timers
    timers.schedule(_timer("t1", 10.0))
    [fired] = timers.claim_due(10.0, 1, 30.0)  # leased: due again at 40
    timers.schedule(_timer("t1", 100.0))  # rescheduled meanwhile
    timers.cancel("t1", 40.0)  # the worker's cleanup of the lease must not cancel it
    assert timers.get("t1") == _timer("t1", 100.0)
    timers.cancel("t1", 100.0)
    assert timers.get("t1") is None
    timers.cancel("t1")  # idempotent
    timers.schedule(_timer("t2", 5.0))
    timers.cancel("t2")
    assert timers.claim_due(1e9, 10, 1.0) == []
    assert fired.key == "t1"


def test_many_cancellations_keep_claims_correct(storage: MemoryStorage) -> None:
    timers = storage.timers
    for i in range(500):
        timers.schedule(_timer(f"t{i}", float(i)))
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
        assert await aio.agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.0)
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
