"""Tenants and hostile input: namespaces never see each other's data, and ids, groups, queue
names and keys with metacharacters (quotes, ``%``, ``{}``, ``:``, wildcards, SQL, unicode)
are stored as data, never read as syntax."""

from __future__ import annotations

from ...assignment import LEAST_BUSY, ROUND_ROBIN
from ...model import AgentId, ChatId, ChatState, Customer, Message, MessageId, MessageRole, Timer
from ...ports import PICKED, Census, Change, QueuePush, RankedClaim, Storage
from ._support import (
    HOSTILE_IDS,
    HOSTILE_STRINGS,
    StorageCase,
    agent,
    chat,
    check_records,
    create,
    event,
    nxt,
    refused,
    update,
)

__all__ = ["TenancyContract"]


def _fill(s: Storage, tag: str, group: str = "g", ident: str = "x") -> None:
    s.customers.create(Customer(partner_id=ident, name=tag), [event(f"{tag}-cust")])
    s.agents.put(agent(ident, groups=[group], limit=2), 1.0, [event(f"{tag}-agent")])
    create(
        s,
        chat(ident, skill_group=group),
        push=QueuePush(f"queue/{group}", 1.0),
        schedule=(Timer(ident, 1.0, ident, tag),),
        events=(event(f"{tag}-chat"),),
    )
    s.counters.hit(ident, 1.0, 100.0)


def _check(s: Storage, tag: str, group: str = "g", ident: str = "x") -> None:
    customer = s.customers.get(ident)
    assert customer is not None and customer.name == tag
    assert [ld.agent.id for ld in s.agents.list()] == [ident]
    assert [ld.agent.id for ld in s.agents.list(group)] == [ident]
    assert s.agents.census(group) == Census(eligible=1, capacity=2)
    assert s.agents.census("") == Census(eligible=1, capacity=2)
    assert [c.id for c in s.chats.list()] == [ident]
    assert s.queues.peek(f"queue/{group}", 5) == [(ident, 1.0)]
    assert s.outbox.pending() == 3
    assert s.counters.hit(ident, 2.0, 100.0) == 2


class TenancyContract(StorageCase):
    """Namespaces are isolated; hostile strings are data."""

    def test_tenant_isolation(self) -> None:
        """Two namespaces on one database never see each other's data, nor each other's
        agents in a ranked claim, timers or events."""
        pairs = [("a", "b"), ("t", "t:x"), ("{t}", "t"), ("x*", "x"), ("%", "%25")]
        for n, (left_name, right_name) in enumerate(pairs):
            left = self.new_storage(f"/{n}/{left_name}")
            right = self.new_storage(f"/{n}/{right_name}")
            _fill(left, "left")
            _fill(right, "right")
            _check(left, "left")
            _check(right, "right")
            stored = left.chats.get(ChatId("x"))
            assert stored is not None
            applied = update(
                left,
                nxt(stored, state=ChatState.ACTIVE, agent_id=PICKED),
                claim=RankedClaim("g", ROUND_ROBIN),
                remove=("queue/g",),
            )
            assert applied.agent_id == "x"
            right_load = right.agents.get(AgentId("x"))
            assert right_load is not None and right_load.chats == frozenset()
            assert right.queues.length("queue/g") == 1
            refused("exists", lambda right=right: create(right, chat("x")))  # type: ignore[misc]
            refused("missing", lambda right=right: right.apply(Change(ChatId("y"), 0, 1.0)))  # type: ignore[misc]
            (timer,) = left.timers.claim_due(5.0, 10, 10.0)
            assert timer.kind == "left"
            (timer,) = right.timers.claim_due(5.0, 10, 10.0)
            assert timer.kind == "right"
            entries = left.outbox.claim("w", 10, 0.0, 60.0)
            assert {e.event.id for e in entries} == {
                "evt-left-cust",
                "evt-left-agent",
                "evt-left-chat",
            }
            left.outbox.ack([e.id for e in entries])
            assert left.outbox.pending() == 0 and right.outbox.pending() == 3

    def test_hostile_namespaces(self) -> None:
        """Namespaces with separators, wildcards, quotes, SQL and Lua stay apart."""
        stores = [self.new_storage(h) for h in HOSTILE_STRINGS]
        for i, s in enumerate(stores):
            _fill(s, f"tenant{i}")
        for i, s in enumerate(stores):
            _check(s, f"tenant{i}")

    def test_hostile_ids_are_data(self) -> None:
        """Ids, groups, queue names, timer and counter keys with metacharacters round-trip
        through every port and the unit of work as data."""
        s = self.storage
        for i, h in enumerate(HOSTILE_IDS):
            group = f"grp{h}"
            s.customers.create(Customer(partner_id=h, name=h))
            assert s.customers.get(h) == Customer(partner_id=h, name=h)
            a = agent(f"agent{h}", groups=[group, h], limit=1, order=i)
            s.agents.put(a, 0.0)
            loaded = s.agents.get(a.id)
            assert loaded is not None and loaded.agent == a
            first = chat(h, skill_group=group, state=ChatState.ACTIVE, agent_id=PICKED)
            message = Message(MessageId(h), ChatId(h), MessageRole.CUSTOMER, h, h, 1.0)
            applied = create(
                s,
                first,
                claim=RankedClaim(group, LEAST_BUSY),
                message=message,
                schedule=(Timer(h, 1.0, h, h, 0, {h: h, "agent_id": PICKED}),),
                events=(event(h, h, 1, agent_id=PICKED),),
                tiebreak=0.5,
            )
            assert applied.agent_id == a.id
            assert s.chats.get(ChatId(h)) == applied.chat
            assert s.chats.messages(ChatId(h)) == [message]
            refused(
                "no_agent",
                lambda h=h: create(  # type: ignore[misc]
                    s, chat(h + "2", agent_id=PICKED), claim=RankedClaim(h, LEAST_BUSY)
                ),
            )
            assert s.agents.census(group) == Census(full=1, capacity=1, load=1)
            stored = s.chats.get(ChatId(h))
            assert stored is not None
            update(
                s,
                nxt(stored, state=ChatState.QUEUED, agent_id=None),
                release=a.id,
                push=QueuePush(h, 1.0),
            )
            assert s.queues.peek(h, 5) == [(h, 1.0)]
            assert s.queues.position(h, ChatId(h)) == 0
        for h in HOSTILE_STRINGS:
            assert s.counters.hit(h, 1.0, 10.0) == 1
        n = len(HOSTILE_IDS)
        assert len(s.agents.list()) == n
        assert len(s.chats.list()) == n
        assert s.agents.census("") == Census(eligible=n, capacity=n)
        check_records(s)
        due = s.timers.claim_due(5.0, 100, 1.0)
        assert sorted(t.key for t in due) == sorted(HOSTILE_IDS)
        assert all(t.payload == {t.key: t.key, "agent_id": f"agent{t.key}"} for t in due)
        events = [e.event for e in s.outbox.claim("w", 100, 0.0, 1.0)]
        assert sorted(e.data["agent_id"] for e in events) == sorted(
            f"agent{h}" for h in HOSTILE_IDS
        )
        for h in HOSTILE_IDS:
            assert s.queues.length(h) == 1
