"""SQLiteStorage.apply: one transaction per Change, preconditions that commit nothing, the ranked
claim inside the unit, the agent compare-and-set, the schema migration, and agreement with the
pure load rules (and with the memory adapter once it has ``apply``)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from chatmgmt.assignment._load import (
    CENSUS_CATEGORIES,
    census_category,
    claimed,
    eligible,
    in_group,
    moved_inactive,
    rank_entry,
    released,
    touched,
    updated_agent,
)
from chatmgmt.errors import ConflictError, PreconditionFailed, StorageError, ValidationError
from chatmgmt.model import (
    RANK_FIELDS,
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    Event,
    Message,
    MessageId,
    MessageRole,
    Ranking,
    RankKey,
    Sticky,
    Timer,
    evolve,
)
from chatmgmt.ports import (
    PICKED,
    Applied,
    Census,
    Change,
    Claim,
    QueuePush,
    RankedClaim,
)
from chatmgmt.storage._codec import encode
from chatmgmt.storage._sqlite_schema import _MIGRATIONS
from chatmgmt.storage._sqlite_unit import _pick_sql
from chatmgmt.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
from chatmgmt.testing import claim_slot


def drop_census_summary(conn: sqlite3.Connection) -> None:
    """Undo migration 7 (the census summary and its triggers), as in a file of schema 6."""
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'agent_census%'"
    ).fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE agent_census")


LEAST_BUSY = Ranking("least_busy", (RankKey("active"), RankKey("last_assigned_at")))
NS = "t1"


# --------------------------------------------------------------------------- helpers


def _agent(
    aid: str,
    limit: int = 2,
    status: AgentStatus = AgentStatus.ONLINE,
    groups: frozenset[str] = frozenset({"g"}),
    **kw: Any,
) -> Agent:
    return Agent(AgentId(aid), reception_limit=limit, status=status, skill_groups=groups, **kw)


def _chat(
    cid: str,
    version: int = 0,
    state: ChatState = ChatState.QUEUED,
    agent: str | None = None,
    **kw: Any,
) -> Chat:
    return Chat(
        ChatId(cid),
        CustomerInfo(partner_id="u_1"),
        "web",
        skill_group="g",
        state=state,
        agent_id=None if agent is None else AgentId(agent),
        version=version,
        **kw,
    )


def _event(name: str, agent: str | None = None, chat: str | None = None) -> Event:
    data: dict[str, Any] = {"n": name}
    if agent is not None:
        data["agent_id"] = agent
    return Event(f"evt_{name}", "chat.test", 1.0, data, chat_id=chat)


def _msg(cid: str, n: int) -> Message:
    return Message(MessageId(f"m{n}"), ChatId(cid), MessageRole.CUSTOMER, "u_1", f"hi {n}", 1.0)


def _timer(cid: str, kind: str, due: float) -> Timer:
    return Timer(f"{cid}:{kind}", due, cid, kind)


_TABLES = {
    "chats": "SELECT id, version, state, agent_id, data FROM chats WHERE ns = ? ORDER BY rowid",
    "agents": "SELECT * FROM agents WHERE ns = ? ORDER BY id",
    "agent_ranks": "SELECT * FROM agent_ranks WHERE ns = ? ORDER BY grp, agent_id",
    "queue_entries": "SELECT * FROM queue_entries WHERE ns = ? ORDER BY seq",
    "timers": "SELECT key, due_at, data FROM timers WHERE ns = ? ORDER BY key",
    "outbox": "SELECT * FROM outbox WHERE ns = ? ORDER BY seq",
    "messages": "SELECT * FROM messages WHERE ns = ? ORDER BY seq",
    "sticky": "SELECT * FROM sticky WHERE ns = ? ORDER BY partner_id",
}


def _snapshot(storage: SQLiteStorage) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the namespace, table by table (what 'nothing committed' compares)."""
    conn = storage.database.connection()
    return {name: conn.execute(sql, (NS,)).fetchall() for name, sql in _TABLES.items()}


@pytest.fixture
def storage() -> Iterator[SQLiteStorage]:
    s = SQLiteStorage(":memory:", namespace=NS)
    yield s
    s.close()


def _populated(storage: SQLiteStorage) -> None:
    """Agents a (2), b (1), full (1, holding c0), off (offline); chat c0 ACTIVE with full, cq
    QUEUED in queue g with a timer, a message and an event in the outbox."""
    for agent in (
        _agent("a", 2),
        _agent("b", 1),
        _agent("full", 1),
        _agent("off", 2, AgentStatus.OFFLINE),
    ):
        storage.agents.put(agent, 1.0)
    storage.apply(
        Change(
            ChatId("c0"),
            None,
            2.0,
            chat=_chat("c0", state=ChatState.ACTIVE, agent="full"),
            claim=Claim(AgentId("full")),
            events=(_event("c0", "full", "c0"),),
        )
    )
    storage.apply(
        Change(
            ChatId("cq"),
            None,
            3.0,
            chat=_chat("cq"),
            push=QueuePush("g", 3.0),
            schedule=(_timer("cq", "queue", 60.0),),
            message=_msg("cq", 1),
            events=(_event("cq", chat="cq"),),
        )
    )


def _rich(change: Change) -> Change:
    """``change`` plus one of every effect, so a refusal has much to (not) commit."""
    return evolve(
        change,
        release=AgentId("full"),
        inactive=(AgentId("a"), True),
        remove=("g",),
        push=QueuePush("other", 1.0),
        cancel=("cq:queue", "c0:queue"),
        schedule=(_timer(change.chat_id, "idle", 99.0),),
        message=_msg(change.chat_id, 9),
        sticky=Sticky("u_1", AgentId("a"), 5.0, "closed"),
        events=(_event("x", PICKED, change.chat_id), _event("y", chat=change.chat_id)),
    )


# --------------------------------------------------------------------------- preconditions

_REFUSALS: dict[str, tuple[str, Change]] = {
    "version": (
        "version",
        Change(
            ChatId("cq"),
            5,
            10.0,
            chat=_chat("cq", 6, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("a")),
        ),
    ),
    "version_guard_only": ("version", Change(ChatId("c0"), 7, 10.0)),
    "exists": ("exists", Change(ChatId("cq"), None, 10.0, chat=_chat("cq"))),
    "missing": ("missing", Change(ChatId("nope"), 0, 10.0, chat=_chat("nope", 1))),
    "agent_unknown": (
        "agent_unavailable",
        Change(
            ChatId("cn"),
            None,
            10.0,
            chat=_chat("cn", 0, ChatState.ACTIVE, "ghost"),
            claim=Claim(AgentId("ghost")),
        ),
    ),
    "agent_offline": (
        "agent_unavailable",
        Change(
            ChatId("cn"),
            None,
            10.0,
            chat=_chat("cn", 0, ChatState.ACTIVE, "off"),
            claim=Claim(AgentId("off")),
        ),
    ),
    "agent_full": (
        # b is at its limit (the test fills it first)
        "agent_unavailable",
        Change(
            ChatId("cq"),
            0,
            10.0,
            chat=_chat("cq", 1, ChatState.ACTIVE, "b"),
            claim=Claim(AgentId("b")),
        ),
    ),
    "no_agent": (
        "no_agent",
        Change(
            ChatId("cq"),
            0,
            10.0,
            chat=_chat("cq", 1, ChatState.ACTIVE, PICKED),
            claim=RankedClaim(
                "g", LEAST_BUSY, frozenset({AgentId("a"), AgentId("b"), AgentId("full")})
            ),
        ),
    ),
    "no_agent_in_group": (
        "no_agent",
        Change(
            ChatId("cq"),
            0,
            10.0,
            chat=_chat("cq", 1, ChatState.ACTIVE, PICKED),
            claim=RankedClaim("nobody", LEAST_BUSY),
        ),
    ),
    "queue_not_empty": (
        "queue_not_empty",
        Change(ChatId("cn"), None, 10.0, chat=_chat("cn"), require_empty="g"),
    ),
}


@pytest.mark.parametrize("case", sorted(_REFUSALS))
def test_a_refused_change_commits_nothing(storage: SQLiteStorage, case: str) -> None:
    _populated(storage)
    if case == "agent_full":  # b at its limit with another chat
        storage.apply(
            Change(
                ChatId("cb"),
                None,
                4.0,
                chat=_chat("cb", 0, ChatState.ACTIVE, "b"),
                claim=Claim(AgentId("b")),
            )
        )
    reason, change = _REFUSALS[case]
    before = _snapshot(storage)
    with pytest.raises(PreconditionFailed) as info:
        storage.apply(_rich(change))
    assert info.value.reason == reason
    assert info.value.chat_id == change.chat_id
    assert _snapshot(storage) == before
    # and the port's own reads agree
    assert storage.queues.peek("g", 10) == [(ChatId("cq"), 3.0)]
    assert storage.queues.length("other") == 0
    assert storage.timers.get("cq:queue") is not None
    assert len(storage.chats.messages(ChatId("cq"))) == 1
    assert storage.chats.sticky("u_1") is None
    assert storage.outbox.pending() == 2
    full = storage.agents.get(AgentId("full"))
    assert full is not None and full.chats == {ChatId("c0")}


def test_the_refusal_says_which_agent_and_which_versions(storage: SQLiteStorage) -> None:
    _populated(storage)
    with pytest.raises(PreconditionFailed) as info:
        storage.apply(Change(ChatId("cq"), 3, 5.0, chat=_chat("cq", 4)))
    assert (info.value.expected, info.value.actual) == (3, 0)
    with pytest.raises(PreconditionFailed) as info:
        storage.apply(
            Change(ChatId("cq"), 0, 5.0, chat=_chat("cq", 1), claim=Claim(AgentId("off")))
        )
    assert info.value.agent_id == "off"
    with pytest.raises(PreconditionFailed) as info:
        storage.apply(Change(ChatId("cn"), None, 5.0, chat=_chat("cn"), require_empty="g"))
    assert info.value.queue == "g"
    assert "nothing was committed" in str(info.value)


@pytest.mark.parametrize(
    "change",
    [
        Change(ChatId("cn"), None, 1.0, chat=_chat("cn", 1)),  # a new chat is version 0
        Change(ChatId("cq"), 0, 1.0, chat=_chat("cq", 0)),  # must be expected + 1
        Change(ChatId("cq"), 0, 1.0, chat=_chat("other", 1)),  # another chat
    ],
)
def test_a_malformed_change_is_refused_before_the_transaction(
    storage: SQLiteStorage, change: Change
) -> None:
    _populated(storage)
    before = _snapshot(storage)
    with pytest.raises(ValidationError):
        storage.apply(change)
    assert _snapshot(storage) == before


# --------------------------------------------------------------------------- effects


def test_a_full_change_commits_every_effect_at_once(storage: SQLiteStorage) -> None:
    _populated(storage)
    change = Change(
        ChatId("cq"),
        0,
        10.0,
        chat=_chat("cq", 1, ChatState.ACTIVE, PICKED, served_by=(PICKED,)),
        claim=RankedClaim("g", LEAST_BUSY, frozenset({AgentId("full")})),
        remove=("g",),
        cancel=("cq:queue",),
        schedule=(_timer("cq", "reply", 70.0),),
        message=_msg("cq", 2),
        sticky=Sticky("u_1", AgentId("a"), 10.0, "closed"),
        events=(_event("assigned", PICKED, "cq"),),
        tiebreak=0.25,
    )
    applied = storage.apply(change)
    # a (limit 2) and b (limit 1) both hold 0; LEAST_BUSY ties on active and
    # last_assigned_at (0.0), so the agent id decides
    assert applied.agent_id == "a"
    assert storage.chats.get(ChatId("cq")) == applied.chat
    load = storage.agents.get(AgentId("a"))
    assert load is not None
    assert load.chats == {ChatId("cq")}
    assert (load.last_assigned_at, load.tiebreak) == (10.0, 0.25)
    assert storage.queues.length("g") == 0
    assert storage.timers.get("cq:queue") is None
    assert storage.timers.get("cq:reply") == _timer("cq", "reply", 70.0)
    assert [m.id for m in storage.chats.messages(ChatId("cq"))] == ["m1", "m2"]
    assert storage.chats.sticky("u_1") == Sticky("u_1", AgentId("a"), 10.0, "closed")
    assert storage.outbox.events()[-1].data["agent_id"] == "a"


def test_a_ranked_claim_fills_in_the_picked_agent_everywhere(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("zed", 3, tier=1), 1.0)
    chat = _chat(
        "c1",
        0,
        ChatState.ACTIVE,
        PICKED,
        served_by=(AgentId("old"), PICKED),
        route_reason={"agent_id": PICKED, "strategy": "priority", "sticky": "old"},
    )
    events = (
        _event("assigned", PICKED, "c1"),
        _event("other", "old", "c1"),
        _event("plain", chat="c1"),
    )
    applied = storage.apply(
        Change(
            ChatId("c1"),
            None,
            1.0,
            chat=chat,
            claim=RankedClaim("g", Ranking("tier", (RankKey("tier", True),))),
            events=events,
        )
    )
    assert applied.agent_id == "zed"
    stored = storage.chats.get(ChatId("c1"))
    assert stored is not None and stored == applied.chat
    assert stored.agent_id == "zed"
    assert stored.served_by == ("old", "zed")
    assert stored.route_reason == {"agent_id": "zed", "strategy": "priority", "sticky": "old"}
    assert [e.data.get("agent_id") for e in applied.events] == ["zed", "old", None]
    assert list(applied.events) == storage.outbox.events()
    assert storage.chats.list(ChatState.ACTIVE, AgentId("zed")) == [stored]
    assert PICKED not in json.dumps([encode(e) for e in storage.outbox.events()])


def test_a_named_claim_is_idempotent_per_chat(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("a", 1), 1.0)
    storage.apply(
        Change(
            ChatId("c1"),
            None,
            2.0,
            chat=_chat("c1", 0, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("a")),
        )
    )
    # a is at its limit, but it already holds c1: claiming again is allowed and changes nothing
    before = storage.agents.get(AgentId("a"))
    applied = storage.apply(
        Change(
            ChatId("c1"),
            0,
            3.0,
            chat=_chat("c1", 1, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("a")),
            tiebreak=0.9,
        )
    )
    assert applied.agent_id == "a"
    assert storage.agents.get(AgentId("a")) == before


def test_a_change_never_claims_back_the_agent_it_releases(storage: SQLiteStorage) -> None:
    """Preconditions see the state before any write: the released agent is not a candidate."""
    storage.agents.put(_agent("a", 2), 1.0)
    storage.agents.put(_agent("b", 2, tier=-1), 1.0)
    storage.apply(
        Change(
            ChatId("c1"),
            None,
            2.0,
            chat=_chat("c1", 0, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("a")),
        )
    )
    storage.apply(
        Change(
            ChatId("c2"),
            None,
            2.0,
            chat=_chat("c2", 0, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("b")),
        )
    )
    # a named claim of the agent the same change releases is refused, even with a free slot
    with pytest.raises(PreconditionFailed) as info:
        storage.apply(
            Change(
                ChatId("c1"),
                0,
                2.5,
                chat=_chat("c1", 1, ChatState.ACTIVE, "b"),
                release=AgentId("b"),
                claim=Claim(AgentId("b")),
            )
        )
    assert info.value.reason == "agent_unavailable"
    # a transfer from a (first by tier) goes to b, not back to a
    tier = Ranking("tier", (RankKey("tier", True),))
    applied = storage.apply(
        Change(
            ChatId("c1"),
            0,
            3.0,
            chat=_chat("c1", 1, ChatState.ACTIVE, PICKED),
            release=AgentId("a"),
            claim=RankedClaim("g", tier),
        )
    )
    assert applied.agent_id == "b"
    # ...unless it holds the chat: then the claim is idempotent and the slot stays taken
    storage.apply(
        Change(
            ChatId("c1"),
            1,
            5.0,
            chat=_chat("c1", 2, ChatState.ACTIVE, "b"),
            release=AgentId("b"),
            claim=Claim(AgentId("b")),
        )
    )
    load = storage.agents.get(AgentId("b"))
    assert load is not None and load.chats == {ChatId("c1"), ChatId("c2")}


def test_a_pick_without_hold_takes_no_slot_but_counts_as_assigned(
    storage: SQLiteStorage,
) -> None:
    storage.agents.put(_agent("a", 1), 1.0)
    storage.agents.put(_agent("b", 1), 1.0)
    rr = Ranking("rr", (RankKey("last_assigned_at"),))
    for n, expected in ((1, "a"), (2, "b"), (3, "a")):
        applied = storage.apply(
            Change(
                ChatId(f"m{n}"),
                None,
                float(n),
                chat=_chat(f"m{n}", 0, ChatState.LEFT_MESSAGE, PICKED),
                claim=RankedClaim("g", rr, hold=False),
                schedule=(Timer(f"m{n}:reply", 9.0, f"m{n}", "reply", payload={"to": PICKED}),),
            )
        )
        assert applied.agent_id == expected
        assert storage.timers.get(f"m{n}:reply") == Timer(
            f"m{n}:reply", 9.0, f"m{n}", "reply", payload={"to": expected}
        )
    a = storage.agents.get(AgentId("a"))
    assert a is not None and a.chats == frozenset() and a.last_assigned_at == 3.0
    assert storage.agents.census("g") == Census(eligible=2, capacity=2)


def test_a_forced_claim_takes_the_slot_whatever_the_agent_status(
    storage: SQLiteStorage,
) -> None:
    storage.agents.put(_agent("a", 1, AgentStatus.OFFLINE), 1.0)
    storage.apply(Change(ChatId("c1"), None, 1.0, chat=_chat("c1", 0, ChatState.ACTIVE, "a")))
    with pytest.raises(PreconditionFailed):
        storage.apply(Change(ChatId("c1"), 0, 2.0, claim=Claim(AgentId("a"))))
    storage.apply(Change(ChatId("c1"), 0, 2.0, claim=Claim(AgentId("a"), force=True)))
    load = storage.agents.get(AgentId("a"))
    assert load is not None and load.chats == {ChatId("c1")}
    with pytest.raises(PreconditionFailed) as info:  # but the agent must exist
        storage.apply(Change(ChatId("c1"), 0, 2.0, claim=Claim(AgentId("ghost"), force=True)))
    assert info.value.reason == "agent_unavailable"


def test_inactive_moves_the_chat_out_of_the_count_and_back(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("a", 1), 1.0)
    storage.apply(
        Change(
            ChatId("c1"),
            None,
            2.0,
            chat=_chat("c1", 0, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("a")),
        )
    )
    assert storage.agents.census("g") == Census(full=1, capacity=1, load=1)
    storage.apply(
        Change(
            ChatId("c1"),
            0,
            3.0,
            chat=_chat("c1", 1, ChatState.ACTIVE, "a"),
            inactive=(AgentId("a"), True),
        )
    )
    load = storage.agents.get(AgentId("a"))
    assert load is not None and (load.chats, load.inactive) == (frozenset(), frozenset({"c1"}))
    assert storage.agents.census("g") == Census(eligible=1, capacity=1, load=0)
    storage.apply(Change(ChatId("c1"), 1, 4.0, inactive=(AgentId("a"), False)))  # guard only
    assert storage.chats.get(ChatId("c1")) == _chat("c1", 1, ChatState.ACTIVE, "a")
    load = storage.agents.get(AgentId("a"))
    assert load is not None and (load.chats, load.inactive) == (frozenset({"c1"}), frozenset())


def test_a_push_into_the_queue_the_chat_is_in_keeps_its_place(storage: SQLiteStorage) -> None:
    for n in (1, 2, 3):
        storage.apply(
            Change(ChatId(f"c{n}"), None, 1.0, chat=_chat(f"c{n}"), push=QueuePush("g", 5.0))
        )
    storage.apply(Change(ChatId("c1"), 0, 2.0, chat=_chat("c1", 1), push=QueuePush("g", 9.0)))
    assert storage.queues.peek("g", 5) == [("c1", 5.0), ("c2", 5.0), ("c3", 5.0)]
    # remove then push: the chat goes to the back of its score
    storage.apply(
        Change(ChatId("c1"), 1, 3.0, chat=_chat("c1", 2), remove=("g",), push=QueuePush("g", 5.0))
    )
    assert storage.queues.peek("g", 5) == [("c2", 5.0), ("c3", 5.0), ("c1", 5.0)]
    assert storage.queues.position("g", ChatId("c1")) == 2


def test_timers_are_cancelled_then_scheduled(storage: SQLiteStorage) -> None:
    storage.apply(
        Change(ChatId("c1"), None, 1.0, chat=_chat("c1"), schedule=(_timer("c1", "queue", 10.0),))
    )
    storage.apply(
        Change(
            ChatId("c1"),
            0,
            2.0,
            chat=_chat("c1", 1),
            cancel=("c1:queue",),
            schedule=(_timer("c1", "queue", 20.0),),
        )
    )
    assert storage.timers.get("c1:queue") == _timer("c1", "queue", 20.0)
    assert storage.timers.claim_due(15.0, 10, 5.0) == []
    assert [t.key for t in storage.timers.claim_due(25.0, 10, 5.0)] == ["c1:queue"]


# --------------------------------------------------------------------------- ranked claims


def test_a_ranked_claim_skips_excluded_agents(storage: SQLiteStorage) -> None:
    for aid, level in (("a", 3), ("b", 2), ("c", 1)):
        storage.agents.put(_agent(aid, 5, tier=level), 1.0)
    tier = Ranking("tier", (RankKey("tier", True),))

    def pick(n: int, excluded: set[str]) -> AgentId | None:
        change = Change(
            ChatId(f"c{n}"),
            None,
            1.0,
            chat=_chat(f"c{n}", 0, ChatState.ACTIVE, PICKED),
            claim=RankedClaim("g", tier, frozenset(AgentId(x) for x in excluded)),
        )
        return storage.apply(change).agent_id

    assert pick(1, set()) == "a"
    assert pick(2, {"a"}) == "b"
    assert pick(3, {"a", "b"}) == "c"
    with pytest.raises(PreconditionFailed) as info:
        pick(4, {"a", "b", "c"})
    assert info.value.reason == "no_agent"


def _random_agents(storage: SQLiteStorage, rng: random.Random, n: int) -> None:
    for i in range(n):
        storage.agents.put(
            _agent(
                f"ag{i:02d}",
                rng.randint(0, 3),
                rng.choice([AgentStatus.ONLINE] * 4 + list(AgentStatus)),
                frozenset(rng.sample(["g", "h"], rng.randint(0, 2))),
                tier=rng.randint(-2, 2),
                account_order=rng.randint(0, 4),
            ),
            float(rng.randint(0, 5)),
            tiebreak=rng.choice([0.1, 0.5, 0.9]),
        )


def _expected_pick(
    loads: list[AgentLoad], group: str, ranking: Ranking, excluded: frozenset[AgentId]
) -> AgentId | None:
    candidates = [
        rank_entry(load, ranking)
        for load in loads
        if in_group(load.agent, group) and eligible(load) and load.agent.id not in excluded
    ]
    return min(candidates)[1] if candidates else None


def _rankings() -> list[Ranking]:
    out = [
        Ranking(f"{field}_{'d' if desc else 'a'}", (RankKey(field, desc),))
        for field in sorted(RANK_FIELDS)
        for desc in (False, True)
    ]
    out.append(LEAST_BUSY)
    out.append(
        Ranking("tier_sat", (RankKey("tier", True), RankKey("saturation"), RankKey("idle_since")))
    )
    out.append(Ranking("rr", (RankKey("last_assigned_at"), RankKey("tiebreak", True))))
    return out


def test_ranked_claims_follow_the_pure_ranking_on_every_field_both_ways(
    storage: SQLiteStorage,
) -> None:
    rng = random.Random(20240611)
    _random_agents(storage, rng, 14)
    picks: dict[tuple[str, bool], set[tuple[int, AgentId | None]]] = {}
    differ: dict[str, int] = dict.fromkeys(RANK_FIELDS, 0)
    n = 0
    now = 10.0
    for round_ in range(12):
        for ranking in _rankings():
            for group in ("g", "h", ""):
                loads = storage.agents.list()
                excluded = frozenset(load.agent.id for load in loads if rng.random() < 0.15)
                expected = _expected_pick(loads, group, ranking, excluded)
                n += 1
                now += rng.choice([0.0, 1.0])  # ties on last_assigned_at happen too
                cid = ChatId(f"c{n}")
                change = Change(
                    cid,
                    None,
                    now,
                    chat=_chat(cid, 0, ChatState.ACTIVE, PICKED),
                    claim=RankedClaim(group, ranking, excluded),
                    tiebreak=rng.choice([0.1, 0.5, 0.9, rng.random()]),
                )
                if expected is None:
                    with pytest.raises(PreconditionFailed):
                        storage.apply(change)
                    got: AgentId | None = None
                else:
                    got = storage.apply(change).agent_id
                assert got == expected, (ranking, group, excluded)
                if len(ranking.keys) == 1:
                    key = ranking.keys[0]
                    picks.setdefault((key.field, key.descending), set()).add((n, got))
                # keep the agents from filling up: release a random held chat now and then
                held = [(ld.agent.id, c) for ld in storage.agents.list() for c in ld.chats]
                if held and rng.random() < 0.6:
                    aid, chat_id = rng.choice(held)
                    stored = storage.chats.get(chat_id)
                    assert stored is not None
                    storage.apply(
                        Change(
                            chat_id,
                            stored.version,
                            now,
                            chat=evolve(stored, state=ChatState.ENDED, version=stored.version + 1),
                            release=aid,
                            tiebreak=rng.random(),
                        )
                    )
        del round_
    # the test means something: for every field, both directions were exercised and the
    # data made ascending and descending disagree at least once (same state, one after other)
    for field in RANK_FIELDS:
        assert picks[(field, False)] and picks[(field, True)]
        asc = {n: a for n, a in picks[(field, False)]}
        desc = {n - 1: a for n, a in picks[(field, True)]}
        differ[field] = sum(1 for k in asc if k in desc and asc[k] != desc[k])
    assert all(differ[f] > 0 for f in RANK_FIELDS), differ


def test_the_rank_index_is_used_for_the_pick(storage: SQLiteStorage) -> None:
    """A pick walks its ranking's partial index (schema 8): the one of the skill groups'
    rows for a group, the one of the rows of ``""`` for a claim without a group (created on
    its first use), never a sort."""
    storage.agents.put(_agent("a"), 1.0)
    conn = storage.database.connection()
    for n, group in enumerate(("g", "")):
        storage.apply(
            Change(
                ChatId(f"c{n}"),
                None,
                1.0,
                chat=_chat(f"c{n}", 0, ChatState.ACTIVE, PICKED),
                claim=RankedClaim(group, LEAST_BUSY),
            )
        )
        order = storage.database.rank_order(conn, LEAST_BUSY, group)
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + _pick_sql(order, 1, group), (NS, group, "x")
        ).fetchall()
        text = " ".join(str(row[-1]) for row in plan)
        index = "rank_active__last_assigned_at" + ("" if group else "__any")
        assert f"INDEX {index} (" in text, text
        assert "TEMP B-TREE" not in text
    # the groups' index holds no row of "" (a claim in g leaves the index of "" alone)
    (entries,) = conn.execute(
        "SELECT COUNT(*) FROM agent_ranks INDEXED BY rank_active__last_assigned_at "
        "WHERE ns = ? AND grp != ''",
        (NS,),
    ).fetchone()
    assert entries == 1


# --------------------------------------------------------------------------- agents


def test_put_is_a_compare_and_set_on_the_agent_version(storage: SQLiteStorage) -> None:
    first = storage.agents.put(_agent("a", 1), 1.0, tiebreak=0.3)
    assert (first.version, first.idle_since, first.tiebreak) == (1, 1.0, 0.3)
    with pytest.raises(ConflictError):
        storage.agents.put(_agent("a", 2), 2.0)  # None: must not exist
    with pytest.raises(ConflictError):
        storage.agents.put(_agent("b", 2), 2.0, expected_version=1)  # missing
    storage.apply(
        Change(
            ChatId("c1"),
            None,
            2.0,
            chat=_chat("c1", 0, ChatState.ACTIVE, "a"),
            claim=Claim(AgentId("a")),
        )
    )
    second = storage.agents.put(_agent("a", 3, groups=frozenset({"h"})), 3.0, expected_version=1)
    assert second.version == 2
    assert second.chats == {ChatId("c1")}  # the load keeps its chats
    assert second.idle_since == 1.0
    with pytest.raises(ConflictError) as info:  # a concurrent change that read version 1
        storage.agents.put(_agent("a", 1, AgentStatus.OFFLINE), 4.0, expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert storage.agents.get(AgentId("a")) == second
    # the rank rows followed the groups and the limit
    assert storage.agents.census("g") == Census()
    assert storage.agents.census("h") == Census(eligible=1, capacity=3, load=1)
    assert storage.agents.census("") == Census(eligible=1, capacity=3, load=1)
    assert [ld.agent.id for ld in storage.agents.list("h")] == ["a"]


def test_put_events_commit_with_the_agent_and_not_without(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("a"), 1.0, [_event("reg")])
    with pytest.raises(ConflictError):
        storage.agents.put(_agent("a"), 1.0, [_event("lost")], expected_version=0)
    assert [e.id for e in storage.outbox.events()] == ["evt_reg"]


# --------------------------------------------------------------------------- async face


def test_the_async_face_applies_too(storage: SQLiteStorage) -> None:
    storage.agents.put(_agent("a", 1), 1.0)

    async def main() -> tuple[Applied, str]:
        aio = storage.aio()
        applied = await aio.apply(
            Change(
                ChatId("c1"),
                None,
                1.0,
                chat=_chat("c1", 0, ChatState.ACTIVE, PICKED),
                claim=RankedClaim("g", LEAST_BUSY),
            )
        )
        try:
            await aio.apply(
                Change(ChatId("c2"), None, 1.0, chat=_chat("c2"), claim=Claim(AgentId("a")))
            )
        except PreconditionFailed as exc:
            return applied, exc.reason
        raise AssertionError("claimed over the limit")

    applied, reason = asyncio.run(main())
    assert applied.agent_id == "a"
    assert reason == "agent_unavailable"


# --------------------------------------------------------------------------- migrations

_V1_DDL = """
CREATE TABLE customers (
    ns TEXT NOT NULL, partner_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (ns, partner_id)
) WITHOUT ROWID;
CREATE TABLE agents (
    ns TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE TABLE agent_ranks (
    ns TEXT NOT NULL, grp TEXT NOT NULL, agent_id TEXT NOT NULL,
    eligible INTEGER NOT NULL, status TEXT NOT NULL, lim INTEGER NOT NULL,
    active INTEGER NOT NULL, saturation REAL NOT NULL, free INTEGER NOT NULL,
    last_assigned_at REAL NOT NULL, idle_since REAL NOT NULL, tier INTEGER NOT NULL,
    account_order INTEGER NOT NULL, tiebreak REAL NOT NULL,
    PRIMARY KEY (ns, grp, agent_id)
) WITHOUT ROWID;
CREATE INDEX agent_ranks_by_agent ON agent_ranks (ns, agent_id);
CREATE TABLE chats (
    ns TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
    agent_id TEXT, data TEXT NOT NULL,
    UNIQUE (ns, id)
);
CREATE INDEX chats_by_state ON chats (ns, state);
CREATE INDEX chats_by_agent ON chats (ns, agent_id);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, chat_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX messages_by_chat ON messages (ns, chat_id, seq);
CREATE TABLE sticky (
    ns TEXT NOT NULL, partner_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (ns, partner_id)
) WITHOUT ROWID;
CREATE TABLE queue_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, queue TEXT NOT NULL,
    chat_id TEXT NOT NULL, score REAL NOT NULL,
    UNIQUE (ns, queue, chat_id)
);
CREATE INDEX queue_order ON queue_entries (ns, queue, score, seq);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, data TEXT NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_by_ns ON outbox (ns, seq);
CREATE TABLE timers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, key TEXT NOT NULL,
    due_at REAL NOT NULL, data TEXT NOT NULL,
    UNIQUE (ns, key)
);
CREATE INDEX timers_due ON timers (ns, due_at, seq);
CREATE TABLE hits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, key TEXT NOT NULL,
    t REAL NOT NULL
);
CREATE INDEX hits_by_key ON hits (ns, key, t);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
"""


def _v1_agent(conn: sqlite3.Connection, agent: Agent, chats: tuple[str, ...]) -> None:
    """An agent row as version 1 wrote it: the JSON has no ``version``, no version column."""
    data = json.loads(encode(AgentLoad(agent, chats=frozenset(ChatId(c) for c in chats))))
    data.pop("version")
    conn.execute(
        "INSERT INTO agents (ns, id, data) VALUES (?, ?, ?)", (NS, agent.id, json.dumps(data))
    )
    lim, active = agent.reception_limit, len(chats)
    online = agent.status is AgentStatus.ONLINE
    for group in sorted({*agent.skill_groups, ""}):
        conn.execute(
            "INSERT INTO agent_ranks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                NS,
                group,
                agent.id,
                int(online and active < lim),
                agent.status.value,
                lim,
                active,
                active / lim if lim else 1.0,
                max(0, lim - active),
                0.0,
                0.0,
                agent.tier,
                agent.account_order,
                0.0,
            ),
        )


_LIBRARY_FIELDS = (
    "queue",
    "queued_at",
    "leave_message",
    "submission",
    "satisfaction",
    "escalation",
    "timers_fired",
    "sticky_waited",
    "unverified_partner_id",
)


def test_a_version_1_file_opens_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(_V1_DDL)
    _v1_agent(conn, _agent("a", 2), ("c1",))
    _v1_agent(conn, _agent("b", 1), ("c2",))
    _v1_agent(conn, _agent("off", 1, AgentStatus.AWAY), ())
    for cid, agent in (("c1", "a"), ("c2", "b")):
        chat = _chat(cid, 3, ChatState.ACTIVE, agent)
        conn.execute(
            "INSERT INTO chats VALUES (?, ?, ?, ?, ?, ?)",
            (NS, cid, 3, "active", agent, encode(chat)),
        )
    conn.execute(
        "INSERT INTO queue_entries (ns, queue, chat_id, score) VALUES (?, 'g', 'cq', 1.0)", (NS,)
    )
    # a queued chat as releases before schema 3 kept it: the library's bookkeeping in the
    # host's attributes, next to a host key
    legacy = json.loads(encode(_chat("cq", 1, ChatState.QUEUED, None)))
    for field in _LIBRARY_FIELDS:
        legacy.pop(field)
    legacy["attributes"] = {
        "queue": "g",
        "queued_at": 1.0,
        "offer_leave_message": "no_agent_online",
        "timers_fired": {"queue_timeout": [1.0]},
        "sticky_waited": True,
        "unverified_partner_id": "p",
        "host": "kept",
    }
    conn.execute(
        "INSERT INTO chats VALUES (?, 'cq', 1, 'queued', NULL, ?)", (NS, json.dumps(legacy))
    )
    # an ended chat and a counter hit: schema 4 indexes the chat for retention and gives the
    # hit an expiry
    ended = attrs.evolve(_chat("ce", 2, ChatState.ENDED, None), updated_at=7.0)
    conn.execute("INSERT INTO chats VALUES (?, 'ce', 2, 'ended', NULL, ?)", (NS, encode(ended)))
    conn.execute("INSERT INTO hits (ns, key, t) VALUES (?, 'k', 5.0)", (NS,))
    conn.commit()
    conn.close()

    storage = SQLiteStorage(path, namespace=NS)
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION == 10
        assert storage.chats.purge(7.0, 10) == 0
        assert storage.chats.purge(8.0, 10) == 1
        assert storage.chats.get(ChatId("ce")) is None
        assert storage.counters.hit("k", 6.0, 10.0) == 2
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.version == 0 and load.chats == {ChatId("c1")}
        # schema 3 moved the library's bookkeeping out of the host's attributes
        cq = storage.chats.get(ChatId("cq"))
        assert cq is not None and cq.attributes == {"host": "kept"}
        assert (cq.queue, cq.queued_at, cq.leave_message) == ("g", 1.0, "no_agent_online")
        assert cq.timers_fired == {"queue_timeout": [1.0]} and cq.sticky_waited is True
        assert cq.unverified_partner_id == "p" and cq.satisfaction is None
        # the census category was backfilled from the version 1 columns
        assert storage.agents.census("g") == Census(eligible=1, full=1, away=1, capacity=3, load=2)
        # the agent compare-and-set works on migrated rows (version 0)
        updated = storage.agents.put(_agent("a", 3), 5.0, expected_version=0)
        assert updated.version == 1 and updated.chats == {ChatId("c1")}
        # units of work work on migrated chats and rank rows: b (full) and a (released) are
        # not candidates, so the transfer finds nobody until a new agent registers
        transfer = Change(
            ChatId("c1"),
            3,
            6.0,
            chat=_chat("c1", 4, ChatState.ACTIVE, PICKED),
            release=AgentId("a"),
            claim=RankedClaim("g", LEAST_BUSY),
        )
        with pytest.raises(PreconditionFailed) as info:
            storage.apply(transfer)
        assert info.value.reason == "no_agent"
        storage.agents.put(_agent("n", 1), 6.0)
        assert storage.apply(transfer).agent_id == "n"
        assert storage.chats.list(ChatState.ACTIVE, AgentId("n")) == [
            _chat("c1", 4, ChatState.ACTIVE, "n")
        ]
    finally:
        storage.close()
    storage = SQLiteStorage(path, namespace=NS)  # opening again is a no-op
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION
        assert storage.queues.peek("g", 5) == [("cq", 1.0)]
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.version == 1 and load.chats == frozenset()
    finally:
        storage.close()


def test_a_version_4_file_keeps_every_load_field_exactly(tmp_path: Path) -> None:
    """Schema 5 moves each load out of its JSON into columns; every value survives exactly
    (floats with all their digits, inactive chats, the configuration and its version)."""
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    conn.executescript(_V1_DDL)
    for script in _MIGRATIONS[1:4]:
        assert isinstance(script, str)
        conn.executescript(script)
    conn.execute("UPDATE schema_version SET version = 4")
    stored = AgentLoad(
        _agent("a", 3, tier=2, groups=frozenset({"g", "h"})),
        chats=frozenset({ChatId("c1"), ChatId("c2")}),
        inactive=frozenset({ChatId("c3")}),
        last_assigned_at=1765432109.1234567,
        idle_since=0.1 + 0.2,
        tiebreak=0.7071067811865476,
        version=7,
    )
    conn.execute(
        "INSERT INTO agents (ns, id, version, data) VALUES (?, 'a', 7, ?)", (NS, encode(stored))
    )
    conn.commit()
    conn.close()
    storage = SQLiteStorage(path, namespace=NS)
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION == 10
        assert storage.agents.get(AgentId("a")) == stored
        assert storage.agents.list("h") == [stored]
        # the rank rows were rebuilt from the load: one counted chat below the limit of 3
        assert storage.agents.census("g") == Census(eligible=1, capacity=3, load=2)
        (held,) = storage.agents.censuses(["g"])
        assert (held.held, held.free) == (3, 1)
    finally:
        storage.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStorage(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer than this release"):
        SQLiteStorage(path)


# --------------------------------------------------------------------------- concurrency


def test_four_threads_never_put_more_than_the_limit_on_one_agent(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "hammer.db", namespace=NS, timeout=60.0)
    storage.agents.put(_agent("a", 2), 0.0)
    errors: list[BaseException] = []
    over: list[int] = []
    outcomes: list[str] = []  # list.append is atomic
    stop = threading.Event()

    def worker(w: int) -> None:
        rng = random.Random(w)
        mine: list[Chat] = []
        try:
            for i in range(60):
                cid = ChatId(f"w{w}_{i}")
                ranked = rng.random() < 0.5
                change = Change(
                    cid,
                    None,
                    float(i),
                    chat=_chat(cid, 0, ChatState.ACTIVE, PICKED if ranked else "a"),
                    claim=RankedClaim("g", LEAST_BUSY) if ranked else Claim(AgentId("a")),
                    tiebreak=rng.random(),
                )
                try:
                    applied = storage.apply(change)
                except PreconditionFailed as exc:
                    assert exc.reason in ("agent_unavailable", "no_agent")
                    outcomes.append("refused")
                else:
                    assert applied.chat is not None
                    mine.append(applied.chat)
                    outcomes.append("claimed")
                if mine and rng.random() < 0.5:
                    chat = mine.pop(rng.randrange(len(mine)))
                    storage.apply(
                        Change(
                            chat.id,
                            chat.version,
                            float(i),
                            chat=evolve(chat, state=ChatState.ENDED, version=chat.version + 1),
                            release=AgentId("a"),
                        )
                    )
        except BaseException as exc:
            errors.append(exc)

    def sampler() -> None:
        try:
            while not stop.is_set():
                active = storage.chats.list(ChatState.ACTIVE, AgentId("a"))
                if len(active) > 2:
                    over.append(len(active))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    watch = threading.Thread(target=sampler)
    watch.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watch.join()
    try:
        assert errors == []
        assert over == []
        assert {"claimed", "refused"} <= set(outcomes)  # the limit was reached and held
        active = storage.chats.list(ChatState.ACTIVE, AgentId("a"))
        load = storage.agents.get(AgentId("a"))
        assert load is not None
        assert len(active) <= 2
        assert load.chats == {c.id for c in active}  # the slots agree with the chats
    finally:
        storage.close()


# --------------------------------------------------------------------------- differential


class Reference:
    """The contract of :class:`~chatmgmt.ports.Change`, written plainly over the pure load
    rules: the oracle the SQLite adapter is compared with."""

    def __init__(self) -> None:
        self.chats: dict[ChatId, Chat] = {}
        self.loads: dict[AgentId, AgentLoad] = {}
        self.queues: dict[str, dict[ChatId, tuple[float, int]]] = {}
        self.timers: dict[str, Timer] = {}
        self.messages: dict[ChatId, list[Message]] = {}
        self.sticky: dict[str, Sticky] = {}
        self.outbox: list[Event] = []
        self.seq = 0

    def put(
        self, agent: Agent, now: float, tiebreak: float, expected_version: int | None
    ) -> AgentLoad:
        old = self.loads.get(agent.id)
        actual = None if old is None else old.version
        if actual != expected_version:
            raise ConflictError("agent", agent.id, expected_version, actual)
        load = self.loads[agent.id] = updated_agent(old, agent, now, tiebreak)
        return load

    def apply(self, change: Change) -> Applied:
        cid, now, tb = change.chat_id, change.now, change.tiebreak
        stored = self.chats.get(cid)
        if change.expected_version is None:
            if stored is not None:
                raise PreconditionFailed("exists", cid, None, stored.version)
        elif stored is None:
            raise PreconditionFailed("missing", cid, change.expected_version, None)
        elif stored.version != change.expected_version:
            raise PreconditionFailed("version", cid, change.expected_version, stored.version)
        if change.require_empty is not None and self.queues.get(change.require_empty):
            raise PreconditionFailed("queue_not_empty", cid, queue=change.require_empty)
        loads = dict(self.loads)
        release, claim = change.release, change.claim
        agent_id: AgentId | None = None
        if isinstance(claim, Claim):
            agent_id = claim.agent_id
            load = loads.get(agent_id)
            if load is None or not (
                claim.force
                or cid in load.chats
                or cid in load.inactive
                or (eligible(load) and agent_id != release)
            ):
                raise PreconditionFailed("agent_unavailable", cid, agent_id=agent_id)
        elif isinstance(claim, RankedClaim):
            excluded = claim.excluded | ({release} if release else set())
            agent_id = _expected_pick(list(loads.values()), claim.group, claim.ranking, excluded)
            if agent_id is None:
                raise PreconditionFailed("no_agent", cid)
            change = change.bind(agent_id)
        if release is not None and release in loads:
            loads[release] = released(loads[release], cid, now, tb)
        if agent_id is not None:
            if isinstance(claim, RankedClaim) and not claim.hold:
                loads[agent_id] = touched(loads[agent_id], now, tb)
            else:
                loads[agent_id] = claimed(loads[agent_id], cid, now, tb)
        if change.inactive is not None and change.inactive[0] in loads:
            aid, flag = change.inactive
            loads[aid] = moved_inactive(loads[aid], cid, flag)
        self.loads = loads
        for queue in change.remove:
            self.queues.get(queue, {}).pop(cid, None)
        if change.push is not None:
            entries = self.queues.setdefault(change.push.queue, {})
            if cid not in entries:
                self.seq += 1
                entries[cid] = (change.push.score, self.seq)
        for key in change.cancel:
            self.timers.pop(key, None)
        for timer in change.schedule:
            self.timers[timer.key] = timer
        if change.chat is not None:
            self.chats[cid] = change.chat
        if change.message is not None:
            self.messages.setdefault(cid, []).append(change.message)
        if change.sticky is not None:
            self.sticky[change.sticky.partner_id] = change.sticky
        self.outbox.extend(change.events)
        # the reports: the random changes ask for no census and watch no queue; the released
        # agent's load after the unit is always reported with the (empty) heads
        assert change.census is None and change.watch == ()
        gone = None if release is None else loads.get(release)
        return Applied(change.chat, agent_id, change.events, None, (), gone)

    def census(self, group: str) -> Census:
        counts = dict.fromkeys(CENSUS_CATEGORIES, 0)
        capacity = load_sum = 0
        for load in self.loads.values():
            if in_group(load.agent, group):
                counts[census_category(load)] += 1
                if load.agent.status is AgentStatus.ONLINE:
                    capacity += load.agent.reception_limit
                    load_sum += load.active
        return Census(**counts, capacity=capacity, load=load_sum)

    def peek(self, queue: str) -> list[tuple[ChatId, float]]:
        entries = sorted(self.queues.get(queue, {}).items(), key=lambda kv: kv[1])
        return [(cid, score) for cid, (score, _seq) in entries]


_GROUPS = ("g", "h")
_AGENTS = tuple(AgentId(f"ag{i}") for i in range(5))


def _random_change(rng: random.Random, ref: Reference, n: int) -> Change | Agent:
    """One random operation, planned from the reference's state (which the adapter must
    share); a few are planned to fail."""
    now = float(n)
    tb = rng.random()
    roll = rng.random()
    chats = sorted(ref.chats.values(), key=lambda c: c.id)
    if roll < 0.12:
        return _agent(
            rng.choice(_AGENTS),
            rng.randint(0, 3),
            rng.choice(list(AgentStatus)),
            frozenset(rng.sample(_GROUPS, rng.randint(0, 2))),
            tier=rng.randint(0, 2),
        )
    ranking = rng.choice(_rankings())
    group = rng.choice((*_GROUPS, ""))
    excluded = frozenset(a for a in _AGENTS if rng.random() < 0.2)
    if roll < 0.4 or not chats:  # open: queued, or straight to an agent
        taken = chats and rng.random() < 0.05
        cid = chats[0].id if taken else ChatId(f"c{n}")  # sometimes "exists"
        kind = rng.random()
        if kind < 0.4:
            return Change(
                cid,
                None,
                now,
                chat=_chat(cid),
                push=QueuePush(group, float(rng.randint(0, 3))),
                require_empty=group if rng.random() < 0.2 else None,
                schedule=(_timer(cid, "queue", now + 30),),
                message=_msg(cid, n),
                events=(_event(f"o{n}", chat=cid),),
                tiebreak=tb,
            )
        claim: Claim | RankedClaim = (
            RankedClaim(group, ranking, excluded) if kind < 0.75 else Claim(rng.choice(_AGENTS))
        )
        agent = PICKED if isinstance(claim, RankedClaim) else claim.agent_id
        return Change(
            cid,
            None,
            now,
            chat=_chat(cid, 0, ChatState.ACTIVE, agent, served_by=(agent,)),
            claim=claim,
            events=(_event(f"a{n}", agent, cid),),
            tiebreak=tb,
        )
    chat = rng.choice(chats)
    version = chat.version if rng.random() < 0.9 else chat.version + rng.choice((-1, 1))
    queues = tuple(q for q in (*_GROUPS, "") if chat.id in ref.queues.get(q, {}))
    if roll < 0.55:  # end
        return Change(
            chat.id,
            version,
            now,
            chat=evolve(chat, state=ChatState.ENDED, agent_id=None, version=version + 1),
            release=chat.agent_id,
            remove=queues,
            cancel=(f"{chat.id}:queue", f"{chat.id}:idle"),
            sticky=Sticky("u_1", chat.agent_id, now, "closed") if chat.agent_id else None,
            events=(_event(f"e{n}", chat.agent_id, chat.id),),
            tiebreak=tb,
        )
    if roll < 0.75:  # assign (drain) or transfer: release the old agent, claim a new one
        claim = (
            RankedClaim(group, ranking, excluded | ({chat.agent_id} if chat.agent_id else set()))
            if rng.random() < 0.7
            else Claim(rng.choice(_AGENTS), force=rng.random() < 0.1)
        )
        agent = PICKED if isinstance(claim, RankedClaim) else claim.agent_id
        return Change(
            chat.id,
            version,
            now,
            chat=evolve(
                chat,
                state=ChatState.ACTIVE,
                agent_id=agent,
                served_by=(*chat.served_by, agent),
                version=version + 1,
            ),
            release=chat.agent_id,
            claim=claim,
            remove=queues,
            cancel=(f"{chat.id}:queue",),
            schedule=(_timer(chat.id, "idle", now + 60),),
            events=(_event(f"t{n}", agent, chat.id),),
            tiebreak=tb,
        )
    if roll < 0.85 and chat.agent_id is not None:  # inactive / active again
        return Change(
            chat.id,
            version,
            now,
            chat=evolve(chat, inactive=not chat.inactive, version=version + 1),
            inactive=(chat.agent_id, not chat.inactive),
            tiebreak=tb,
        )
    if roll < 0.92:  # back to a queue (a transfer to a busy group keeps a place held)
        return Change(
            chat.id,
            version,
            now,
            chat=evolve(chat, state=ChatState.QUEUED, agent_id=None, version=version + 1),
            release=chat.agent_id,
            push=QueuePush(group, float(rng.randint(0, 3))),
            tiebreak=tb,
        )
    return Change(  # a message, or a bare repair under the version guard
        chat.id,
        version,
        now,
        chat=evolve(chat, version=version + 1) if rng.random() < 0.7 else None,
        message=_msg(chat.id, n),
        push=QueuePush(queues[0], 0.0) if queues else None,
        tiebreak=tb,
    )


def _memory_storage() -> Any:
    """The memory adapter, when it already implements ``apply`` (written concurrently)."""
    from chatmgmt.storage.memory import MemoryStorage

    return MemoryStorage(NS) if hasattr(MemoryStorage, "apply") else None


def _assert_same(ref: Reference, other: Any) -> None:
    chats = sorted(other.chats.list(), key=lambda c: c.id)
    assert chats == sorted(ref.chats.values(), key=lambda c: c.id)
    loads = other.agents.list()
    assert loads == sorted(ref.loads.values(), key=lambda ld: (ld.agent.account_order, ld.agent.id))
    for queue in (*_GROUPS, ""):
        assert other.queues.peek(queue, 1000) == ref.peek(queue), queue
        for group in (*_GROUPS, "", "none"):
            assert other.agents.census(group) == ref.census(group), group


def _run(rng: random.Random, ref: Reference, adapters: list[Any], steps: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for n in range(steps):
        op = _random_change(rng, ref, n)
        stale = rng.random() < 0.1  # an agent update that read an old version
        results: list[object] = []
        for target in (ref, *adapters):
            try:
                if isinstance(op, Agent):
                    old = ref.loads.get(op.id) if target is ref else target.agents.get(op.id)
                    expected = None if old is None else old.version
                    if stale:
                        expected = 7
                    res: object = (
                        target.put(op, float(n), 0.5, expected)
                        if target is ref
                        else target.agents.put(op, float(n), (), 0.5, expected)
                    )
                else:
                    res = target.apply(op)
            except PreconditionFailed as exc:
                res = ("refused", exc.reason)
            except ConflictError:
                res = ("conflict",)
            results.append(res)
        assert all(r == results[0] for r in results), (n, op, results)
        key = (
            results[0][1]
            if isinstance(results[0], tuple) and len(results[0]) > 1
            else ("conflict" if isinstance(results[0], tuple) else "ok")
        )
        outcomes[str(key)] = outcomes.get(str(key), 0) + 1
        for adapter in adapters:
            _assert_same(ref, adapter)
    return outcomes


@pytest.mark.parametrize("seed", range(6))
def test_sqlite_agrees_with_the_pure_rules_on_random_changes(seed: int) -> None:
    rng = random.Random(seed)
    ref = Reference()
    sqlite_storage = SQLiteStorage(":memory:", namespace=NS)
    adapters: list[Any] = [sqlite_storage]
    memory = _memory_storage()
    if memory is not None:
        adapters.append(memory)
    try:
        outcomes = _run(rng, ref, adapters, 300)
        for adapter in adapters:
            for cid, messages in ref.messages.items():
                assert adapter.chats.messages(cid) == messages
            assert adapter.chats.sticky("u_1") == ref.sticky.get("u_1")
        assert sqlite_storage.outbox.events() == ref.outbox
        for key, timer in ref.timers.items():
            assert sqlite_storage.timers.get(key) == timer
    finally:
        sqlite_storage.close()
    # the random walk reached the interesting outcomes
    assert outcomes.get("ok", 0) > 100
    assert {"version", "no_agent", "agent_unavailable"} <= set(outcomes), outcomes


def test_a_version_5_file_gets_the_capacity_columns(tmp_path: Path) -> None:
    """A file of schema 5 (loads in columns, before capacity per channel) opens: migration 6
    adds ``agents.channels`` and ``agents.recent`` (NULL: none) and every load reads as it was;
    a claim at an agent with channel weights then records the chat's channel there."""
    path = tmp_path / "v5.db"
    storage = SQLiteStorage(path, namespace=NS)
    storage.agents.put(_agent("a", 3), 0.0)
    before = storage.agents.get(AgentId("a"))
    storage.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE agents DROP COLUMN channels")
    conn.execute("ALTER TABLE agents DROP COLUMN recent")
    drop_census_summary(conn)
    conn.execute("UPDATE schema_version SET version = 5")
    conn.commit()
    conn.close()
    storage = SQLiteStorage(path, namespace=NS)
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION == 10
        assert storage.agents.get(AgentId("a")) == before
        weighted = attrs.evolve(_agent("a", 3), channel_weights={"wa": 2})
        storage.agents.put(weighted, 1.0, expected_version=1)
        assert claim_slot(storage, "a", "c1", now=2.0, channel="wa")
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.channels == {"c1": "wa"} and load.used == 2
    finally:
        storage.close()


def test_the_census_counts_each_category_and_the_online_capacity_and_load(
    storage: SQLiteStorage,
) -> None:
    """One agent per census category, the non-online ones holding chats too: only ONLINE
    (eligible or full) agents count towards capacity and load; the memory adapter agrees."""
    from chatmgmt.storage.memory import MemoryStorage

    memory = MemoryStorage(NS)
    for store in (storage, memory):
        for aid, limit in (("e", 3), ("f", 1), ("b", 2), ("w", 2), ("o", 4)):
            store.agents.put(_agent(aid, limit), 1.0)
        for aid, chat in (("e", "c1"), ("f", "c2"), ("b", "c3"), ("w", "c4"), ("w", "c5")):
            assert claim_slot(store, aid, chat, 2.0)
        for aid, limit, status in (
            ("b", 2, AgentStatus.BUSY),
            ("w", 2, AgentStatus.AWAY),
            ("o", 4, AgentStatus.OFFLINE),
        ):
            store.agents.put(_agent(aid, limit, status), 3.0, expected_version=1)
    expected = Census(eligible=1, full=1, busy=1, away=1, offline=1, capacity=4, load=2)
    assert storage.agents.census("g") == expected == memory.agents.census("g")
    assert storage.agents.census("") == expected
    assert storage.agents.census("h") == Census()
