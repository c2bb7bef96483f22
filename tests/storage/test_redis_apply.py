"""The Redis unit of work (``lua/apply.lua``) and the Lua load rules, pinned to the pure rules.

The same random sequence of agent updates and changes is applied to a reference model built
on :mod:`chatmgmt.assignment._load` (eligibility, claim, release, inactive move, census
category, rank entries, capacity per channel and the fairness cap: agents with random channel
weights and limits, claims with random channels and caps), to :class:`MemoryStorage` and to
:class:`RedisStorage`; after every
step the outcomes (the applied chat, the picked agent, the precondition that failed) and the
whole state (chats, loads, census of every group, queues, timers, messages, sticky marks,
outbox) must be equal. Rankings cover every rank field in both directions and random custom
rankings of several keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import struct
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from chatmgmt.assignment._load import (
    census_category,
    claimed,
    eligible,
    fits_claim,
    forced,
    in_group,
    moved_inactive,
    rank_entry,
    released,
    touched,
    updated_agent,
)
from chatmgmt.errors import ConflictError, PreconditionFailed, StorageError
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
    MessageRole,
    Ranking,
    RankKey,
    Sticky,
    Timer,
)
from chatmgmt.ports import (
    CENSUS_MARKS,
    PICKED,
    Applied,
    Census,
    Change,
    Claim,
    QueueHead,
    QueuePush,
    RankedClaim,
)
from chatmgmt.storage._redis_keys import _enc
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.redis import AsyncRedisStorage, RedisStorage
from storage.redis_helpers import redis_cluster_url, redis_url

pytestmark = pytest.mark.redis

AGENTS = [AgentId(f"a{i}") for i in range(6)] + [AgentId("ü:{x}%")]
GROUPS = ["", "g1", "g2", "g:3"]
CHATS = [ChatId(f"c{i}") for i in range(8)]
QUEUES = ["q1", "q:2"]
TIMERS = ["t1", "t2", "t3"]
PARTNERS = ["p1", "p2"]
CHANNELS = ["web", "wa", "mail"]


# --------------------------------------------------------------------------- reference model


class Model:
    """The unit of work over the pure load rules (the specification the adapters follow)."""

    def __init__(self) -> None:
        self.loads: dict[AgentId, AgentLoad] = {}
        self.chats: dict[ChatId, Chat] = {}
        self.queues: dict[str, list[tuple[float, int, ChatId]]] = {}
        self.qseq = 0
        self.timers: dict[str, Timer] = {}
        self.messages: dict[ChatId, list[Message]] = {}
        self.sticky: dict[str, Sticky] = {}
        self.events: list[Event] = []

    def put(self, agent: Agent, now: float, tiebreak: float, expected: int | None) -> AgentLoad:
        old = self.loads.get(agent.id)
        if expected != (None if old is None else old.version):
            raise ConflictError("agent", agent.id)
        load = self.loads[agent.id] = updated_agent(old, agent, now, tiebreak)
        return load

    def census(self, group: str) -> Census:
        counts = dict.fromkeys(("eligible", "full", "busy", "away", "offline"), 0)
        capacity = load_sum = 0
        for load in self.loads.values():
            if not in_group(load.agent, group):
                continue
            counts[census_category(load)] += 1
            if load.agent.status is AgentStatus.ONLINE:
                capacity += load.agent.reception_limit
                load_sum += load.active
        return Census(**counts, capacity=capacity, load=load_sum)

    def peek(self, queue: str) -> list[tuple[ChatId, float]]:
        return [(c, s) for s, _, c in sorted(self.queues.get(queue, []))]

    def head(self, queue: str) -> QueueHead:
        entries = self.queues.get(queue, [])
        if not entries:
            return QueueHead(queue)
        first = min(entries)[2]
        oldest = min(entries, key=lambda e: e[1])[2]
        chat = self.chats.get(oldest)
        since = None
        if chat is not None:
            since = chat.queued_at if chat.queued_at is not None else chat.created_at
        return QueueHead(queue, len(entries), first, oldest, since)

    def apply(self, change: Change) -> Applied:
        cid = change.chat_id
        stored = self.chats.get(cid)
        if change.expected_version is None:
            if stored is not None:
                raise PreconditionFailed("exists", cid, None, stored.version)
        elif stored is None:
            raise PreconditionFailed("missing", cid, change.expected_version)
        elif stored.version != change.expected_version:
            raise PreconditionFailed("version", cid, change.expected_version, stored.version)
        waiting = self.queues.get(change.require_empty or "", [])
        if change.require_empty is not None and any(c != cid for _, _, c in waiting):
            # empty but for this chat itself (ports.Change: a chat waiting there may be routed)
            raise PreconditionFailed("queue_not_empty", cid, queue=change.require_empty)
        # the reports' census: read before any effect, reported by a failed claim too
        census = None if change.census is None else self.census(change.census)
        claim = change.claim
        picked: AgentId | None = None
        if isinstance(claim, Claim):
            picked = claim.agent_id
            load = self.loads.get(picked)
            if load is None or not (
                claim.force
                or cid in load.chats
                or cid in load.inactive
                or (fits_claim(load, claim, change.now) and picked != change.release)
            ):
                raise PreconditionFailed("agent_unavailable", cid, agent_id=picked, census=census)
        elif claim is not None:
            excluded = claim.excluded | ({change.release} if change.release else set())
            entries = [
                rank_entry(load, claim.ranking)
                for load in self.loads.values()
                if in_group(load.agent, claim.group)
                and eligible(load)
                and load.agent.id not in excluded
                and (not claim.hold or fits_claim(load, claim, change.now))
            ]
            if not entries:
                raise PreconditionFailed("no_agent", cid, queue=claim.group, census=census)
            picked = min(entries)[1]
        if isinstance(claim, RankedClaim) or census is not None:
            change = change.bind(picked if isinstance(claim, RankedClaim) else None, census)
        now, tb = change.now, change.tiebreak
        if change.release is not None and change.release in self.loads:
            self.loads[change.release] = released(self.loads[change.release], cid, now, tb)
        if isinstance(claim, RankedClaim) and not claim.hold:
            self.loads[picked] = touched(self.loads[picked], now, tb)
        elif isinstance(claim, Claim) and claim.force:
            self.loads[picked] = forced(self.loads[picked], cid, now, tb, claim.channel)
        elif claim is not None and picked is not None:
            self.loads[picked] = claimed(
                self.loads[picked], cid, now, tb, claim.channel, claim.keep_s
            )
        if change.inactive is not None and change.inactive[0] in self.loads:
            aid, flag = change.inactive
            self.loads[aid] = moved_inactive(self.loads[aid], cid, flag)
        for q in change.remove:
            self.queues[q] = [e for e in self.queues.get(q, []) if e[2] != cid]
        if change.push is not None:
            entries = self.queues.setdefault(change.push.queue, [])
            if all(e[2] != cid for e in entries):
                self.qseq += 1
                entries.append((change.push.score, self.qseq, cid))
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
        self.events.extend(change.events)
        # the reports read after the effects
        heads = tuple(self.head(q) for q in change.watch)
        gone = None if change.release is None else self.loads.get(change.release)
        return Applied(change.chat, picked, change.events, census, heads, gone)


# --------------------------------------------------------------------------- random steps


def _ranking(rng: random.Random) -> Ranking:
    fields = sorted(RANK_FIELDS)
    keys = tuple(
        RankKey(rng.choice(fields), descending=rng.random() < 0.5) for _ in range(rng.randint(1, 3))
    )
    return Ranking("custom", keys)


def _agent(rng: random.Random, aid: AgentId) -> Agent:
    return Agent(
        aid,
        skill_groups=frozenset(g for g in GROUPS[1:] if rng.random() < 0.5),
        reception_limit=rng.randint(0, 3),
        tier=rng.randint(-1, 2),
        account_order=rng.randint(0, 3),
        status=rng.choice(
            [AgentStatus.ONLINE] * 4 + [AgentStatus.BUSY, AgentStatus.AWAY, AgentStatus.OFFLINE]
        ),
        channel_weights=rng.choice([{}, {}, {"wa": 2}, {"wa": 2, "mail": 3}, {"web": 1}]),
        channel_limits=rng.choice([{}, {}, {"wa": 1}, {"web": 1, "mail": 0}]),
    )


def _terms(rng: random.Random) -> dict[str, Any]:
    """A claim's random channel and fairness terms (sometimes none: a plain claim)."""
    if rng.random() < 0.25:
        return {}
    return {
        "channel": rng.choice(CHANNELS),
        "cap": rng.choice([0, 0, 1, 2]),
        "window_s": rng.choice([1.0, 2.5, 4.0]),
        "keep_s": rng.choice([0.0, 4.0, 4.0]),
    }


def _change(rng: random.Random, model: Model, step: int) -> Change:
    cid = rng.choice(CHATS)
    stored = model.chats.get(cid)
    expected = None if stored is None else stored.version
    if rng.random() < 0.08:  # a stale or wrong expectation
        expected = rng.choice([None, 0, 1, 5])
    claim: Claim | RankedClaim | None = None
    r = rng.random()
    terms = _terms(rng)
    if r < 0.35:
        claim = RankedClaim(
            rng.choice(GROUPS),
            _ranking(rng),
            frozenset(a for a in AGENTS if rng.random() < 0.15),
            hold=rng.random() < 0.85,
            **terms,
        )
    elif r < 0.55:
        claim = Claim(rng.choice(AGENTS), force=rng.random() < 0.1, **terms)
    ranked = isinstance(claim, RankedClaim)
    agent: AgentId | None = PICKED if ranked else (claim.agent_id if claim else None)
    # census marks at depth (filled in only when the change names a census group)
    marks = {"n": [CENSUS_MARKS["full"], {"o": CENSUS_MARKS["offline"]}], "b": CENSUS_MARKS["busy"]}
    if rng.random() < 0.3:
        marks["a"] = CENSUS_MARKS["away"]
    now = float(step // 3)
    chat: Chat | None = None
    if expected is None or rng.random() < 0.9:
        chat = Chat(
            cid,
            CustomerInfo(partner_id=rng.choice(PARTNERS)),
            channel=terms.get("channel") or "web",
            skill_group=rng.choice(GROUPS),
            state=rng.choice(list(ChatState)),
            agent_id=agent,
            served_by=(AgentId("x"), agent) if agent else (),
            route_reason={"agent": agent, "n": step, "why": marks} if agent else {"why": marks},
            attributes={"text": "ü \u0000 \\u0000picked"},
            updated_at=now,
            version=0 if expected is None else expected + 1,
        )
    events = tuple(
        Event(
            f"e{step}.{i}",
            "chat.assigned",
            now,
            {
                "agent_id": agent if (ranked and i == 0) else "a1",
                "i": i,
                "x": 0.1 * step,
                "eligible": CENSUS_MARKS["eligible"],
                "why": marks,
            },
            chat_id=cid,
        )
        for i in range(rng.randint(0, 2))
    )
    return Change(
        chat_id=cid,
        expected_version=expected,
        now=now,
        chat=chat,
        claim=claim,
        release=rng.choice(AGENTS) if rng.random() < 0.3 else None,
        inactive=(rng.choice(AGENTS), rng.random() < 0.5) if rng.random() < 0.2 else None,
        require_empty=rng.choice(QUEUES) if rng.random() < 0.1 else None,
        remove=tuple(q for q in QUEUES if rng.random() < 0.25),
        push=QueuePush(rng.choice(QUEUES), float(rng.randint(0, 3)))
        if rng.random() < 0.3
        else None,
        cancel=tuple(k for k in TIMERS if rng.random() < 0.2),
        schedule=tuple(
            Timer(
                k,
                now + rng.randint(1, 9),
                cid,
                "kind",
                payload={"s": step, "agent_id": agent, "agents": [agent, "z"], "why": marks},
            )
            for k in TIMERS
            if rng.random() < 0.2
        ),
        message=Message(f"m{step}", cid, MessageRole.CUSTOMER, "cust", f"hi {step} ü", now)
        if rng.random() < 0.3
        else None,
        sticky=Sticky(rng.choice(PARTNERS), rng.choice(AGENTS), now, "closed")
        if rng.random() < 0.1
        else None,
        events=events,
        tiebreak=rng.choice([0.0, 0.25, 0.5, rng.random()]),
        census=rng.choice(GROUPS) if rng.random() < 0.5 else None,
        watch=tuple(rng.sample(QUEUES, rng.randint(0, 2))) if rng.random() < 0.5 else (),
    )


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except PreconditionFailed as exc:
        return "refused", (exc.reason, exc.chat_id, exc.agent_id, exc.queue, exc.census)
    except ConflictError:
        return "conflict", None


def _snapshot(storage: Any) -> dict[str, Any]:
    return {
        "loads": {a: storage.agents.get(a) for a in AGENTS},
        "census": {g: storage.agents.census(g) for g in GROUPS},
        "lists": {g: storage.agents.list(g or None) for g in GROUPS},
        "chats": {c: storage.chats.get(c) for c in CHATS},
        "messages": {c: storage.chats.messages(c) for c in CHATS},
        "sticky": {p: storage.chats.sticky(p) for p in PARTNERS},
        "queues": {q: storage.queues.peek(q, 100) for q in QUEUES},
        "lengths": {q: storage.queues.length(q) for q in QUEUES},
        "timers": {k: storage.timers.get(k) for k in TIMERS},
        "events": storage.outbox.events(),
    }


def _model_snapshot(model: Model) -> dict[str, Any]:
    return {
        "loads": {a: model.loads.get(a) for a in AGENTS},
        "census": {g: model.census(g) for g in GROUPS},
        "lists": {
            g: sorted(
                (ld for ld in model.loads.values() if in_group(ld.agent, g)),
                key=lambda ld: (ld.agent.account_order, ld.agent.id),
            )
            for g in GROUPS
        },
        "chats": {c: model.chats.get(c) for c in CHATS},
        "messages": {c: model.messages.get(c, []) for c in CHATS},
        "sticky": {p: model.sticky.get(p) for p in PARTNERS},
        "queues": {q: model.peek(q) for q in QUEUES},
        "lengths": {q: len(model.queues.get(q, [])) for q in QUEUES},
        "timers": {k: model.timers.get(k) for k in TIMERS},
        "events": list(model.events),
    }


def _open(kind: str, namespace: str) -> RedisStorage:
    if kind == "cluster":
        return RedisStorage.cluster(redis_cluster_url(), namespace)
    return RedisStorage(redis_url(), namespace)


def _aopen(storage: RedisStorage) -> AsyncRedisStorage:
    if isinstance(storage.client, __import__("redis").RedisCluster):
        return AsyncRedisStorage.cluster(redis_cluster_url(), storage.namespace)
    return AsyncRedisStorage(redis_url(), storage.namespace)


@pytest.fixture(params=["server", "cluster"])
def redis_storage(request: pytest.FixtureRequest) -> Iterator[RedisStorage]:
    """A clean namespace on a single Redis server, then on a 3-master Redis Cluster."""
    storage = _open(request.param, f"apply-{request.node.name}")
    storage.delete_namespace()
    yield storage
    storage.delete_namespace()
    storage.close()


def _memory() -> Any:
    memory = MemoryStorage()
    return memory if hasattr(memory, "apply") else None


@pytest.mark.parametrize("seed", range(8))
def test_the_same_changes_give_the_same_state_as_the_pure_rules(
    redis_storage: RedisStorage, seed: int
) -> None:
    rng = random.Random(seed)
    model = Model()
    memory = _memory()
    targets: list[Any] = [redis_storage] + ([memory] if memory is not None else [])
    picks = 0
    for step in range(160):
        if rng.random() < 0.25:
            aid = rng.choice(AGENTS)
            agent = _agent(rng, aid)
            old = model.loads.get(aid)
            expected = None if old is None else old.version
            if rng.random() < 0.1:
                expected = rng.choice([None, 1, 7])
            tb = rng.choice([0.0, 0.5, rng.random()])
            now = float(step // 3)
            want = _outcome(lambda: model.put(agent, now, tb, expected))  # noqa: B023
            for target in targets:
                got = _outcome(
                    lambda t=target: t.agents.put(  # type: ignore[misc]
                        agent,  # noqa: B023
                        now,  # noqa: B023
                        tiebreak=tb,  # noqa: B023
                        expected_version=expected,  # noqa: B023
                    )
                )
                assert got == want, (seed, step, type(target).__name__)
        else:
            change = _change(rng, model, step)
            want = _outcome(lambda: model.apply(change))  # noqa: B023
            for target in targets:
                got = _outcome(lambda t=target: t.apply(change))  # type: ignore[misc]  # noqa: B023
                assert got == want, (seed, step, type(target).__name__, change)
            if want[0] == "ok" and isinstance(change.claim, RankedClaim):
                picks += 1
                applied = want[1]
                assert applied.agent_id != PICKED
                # what apply returns is what was stored
                assert redis_storage.chats.get(change.chat_id) == (
                    applied.chat if applied.chat is not None else model.chats.get(change.chat_id)
                )
        if step % 8 == 0 or step == 159:
            expected_state = _model_snapshot(model)
            for target in targets:
                assert _snapshot(target) == expected_state, (seed, step, type(target).__name__)
            assert _counts(redis_storage) == _held(redis_storage), (seed, step)
    assert picks > 3


def _counts(storage: RedisStorage, ids: Any = AGENTS) -> dict[str, tuple[int, int]]:
    """Each registered agent's kept chat numbers (data version 5: ``n``, ``ni``)."""
    prefix, client = storage.key_prefix, storage.client
    out = {}
    for aid in ids:
        akey = f"{prefix}:ag:{_enc(aid)}"
        if client.exists(akey):
            n, ni = client.hmget(akey, "n", "ni")
            out[aid] = (int(n), int(ni))
    return out


def _held(storage: RedisStorage, ids: Any = AGENTS) -> dict[str, tuple[int, int]]:
    """Each registered agent's chat sets' sizes, counted and inactive."""
    prefix, client = storage.key_prefix, storage.client
    keys = {aid: f"{prefix}:ag:{_enc(aid)}" for aid in ids}
    return {
        aid: (client.scard(f"{akey}:chats"), client.scard(f"{akey}:inactive"))
        for aid, akey in keys.items()
        if client.exists(akey)
    }


@pytest.mark.parametrize("field", sorted(RANK_FIELDS))
@pytest.mark.parametrize("descending", [False, True])
def test_every_rank_field_in_both_directions_picks_as_the_pure_rules(
    redis_storage: RedisStorage, field: str, descending: bool
) -> None:
    rng = random.Random(f"{field}{descending}")
    model = Model()
    ranking = Ranking("r", (RankKey(field, descending),))
    for i, aid in enumerate(AGENTS):
        agent = Agent(
            aid,
            skill_groups=frozenset({"g1"}),
            reception_limit=rng.randint(1, 4),
            tier=rng.randint(0, 3),
            account_order=rng.randint(0, 3),
            status=AgentStatus.ONLINE,
        )
        tb = rng.choice([0.0, 0.5, rng.random()])
        model.put(agent, float(i % 3), tb, None)
        redis_storage.agents.put(agent, float(i % 3), tiebreak=tb)
    for n in range(14):
        cid = ChatId(f"r{n}")
        change = Change(
            cid,
            None,
            now=float(n % 4),
            chat=Chat(cid, CustomerInfo(), channel="web", agent_id=PICKED),
            claim=RankedClaim("g1", ranking),
            tiebreak=rng.choice([0.0, 0.25, rng.random()]),
            events=(Event(f"e{n}", "chat.assigned", 1.0, {"agent_id": PICKED}, chat_id=cid),),
        )
        want = _outcome(lambda: model.apply(change))  # noqa: B023
        got = _outcome(lambda: redis_storage.apply(change))  # noqa: B023
        assert got == want, (n, change)
        if n % 3 == 2:  # give some back, so idle_since and free move both ways
            holder = model.chats[ChatId(f"r{n - 1}")].agent_id
            assert holder is not None
            back = Change(ChatId(f"r{n - 1}"), 0, now=float(n), release=holder, tiebreak=0.75)
            assert _outcome(lambda: redis_storage.apply(back)) == _outcome(  # noqa: B023
                lambda: model.apply(back)  # noqa: B023
            )
    assert {a: redis_storage.agents.get(a) for a in AGENTS} == model.loads
    assert redis_storage.agents.census("g1") == model.census("g1")


def test_a_failed_precondition_writes_nothing(redis_storage: RedisStorage) -> None:
    redis_storage.agents.put(Agent(AgentId("ann"), reception_limit=1), 0.0)
    before = _snapshot(redis_storage)
    cid = ChatId("c1")
    change = Change(
        cid,
        None,
        now=1.0,
        chat=Chat(cid, CustomerInfo(), channel="web", agent_id=AgentId("ann")),
        claim=Claim(AgentId("ann")),  # offline: unavailable
        push=QueuePush("q1", 1.0),
        schedule=(Timer("t1", 5.0, cid, "k"),),
        message=Message("m1", cid, MessageRole.CUSTOMER, "c", "hi", 1.0),
        events=(Event("e1", "chat.started", 1.0, {}, chat_id=cid),),
    )
    with pytest.raises(PreconditionFailed) as info:
        redis_storage.apply(change)
    assert info.value.reason == "agent_unavailable"
    assert info.value.agent_id == "ann"
    assert _snapshot(redis_storage) == before


def test_repeated_timer_keys_in_one_unit_end_as_on_memory(redis_storage: RedisStorage) -> None:
    """The script schedules and cancels a unit's timers in batches; a key given twice (or
    cancelled and scheduled in one unit) ends as one at a time would leave it."""
    memory = MemoryStorage()
    cid = ChatId("c1")
    first = Change(
        cid,
        None,
        now=1.0,
        chat=Chat(cid, CustomerInfo(), channel="web"),
        schedule=(
            Timer("t1", 5.0, cid, "k", payload={"n": 1}),
            Timer("t2", 6.0, cid, "k"),
            Timer("t1", 7.0, cid, "k", payload={"n": 2}),
        ),
    )
    second = Change(
        cid,
        0,
        now=2.0,
        chat=Chat(cid, CustomerInfo(), channel="web", version=1),
        cancel=("t2", "t2", "t3", "t1"),
        schedule=(Timer("t1", 9.0, cid, "k", payload={"n": 3}),),
    )
    for storage in (memory, redis_storage):
        storage.apply(first)
    assert redis_storage.timers.get("t1") == memory.timers.get("t1")
    assert redis_storage.timers.get("t1").due_at == 7.0  # type: ignore[union-attr]
    assert redis_storage.timers.get("t2") == memory.timers.get("t2")
    for storage in (memory, redis_storage):
        storage.apply(second)
    for key in ("t1", "t2", "t3"):
        assert redis_storage.timers.get(key) == memory.timers.get(key)
    assert redis_storage.timers.get("t2") is None
    due = [t.key for t in redis_storage.timers.claim_due(100.0, 10, 5.0)]
    assert due == [t.key for t in memory.timers.claim_due(100.0, 10, 5.0)] == ["t1"]


def _as_version_3_timers(storage: RedisStorage) -> None:
    """Rewrite the namespace's timers as data version 3 kept them: members
    ``<zero-padded number><key>`` in ``tm:z``, ``tm:m`` key -> member, ``tm:seq`` (and the
    namespace marked 3)."""
    client, prefix = storage.client, storage.key_prefix
    rows = client.zrange(f"{prefix}:tm:z", 0, -1, withscores=True)
    client.delete(f"{prefix}:tm:z")
    for n, (key, due) in enumerate(rows, start=1):
        member = f"{n:020d}{_s(key)}"
        client.zadd(f"{prefix}:tm:z", {member: due})
        client.hset(f"{prefix}:tm:m", _s(key), member)
    client.set(f"{prefix}:tm:seq", str(len(rows)))
    client.set(f"{prefix}:dv", "3")


def test_version_3_timers_are_converted_by_the_first_write(redis_storage: RedisStorage) -> None:
    """Data version 3 kept a timer as ``<insertion number><key>`` in ``tm:z`` with ``tm:m`` and
    ``tm:seq``; version 4 keys it by its key. A version 3 namespace's timers read as they are;
    the first write (here a timer lease) converts every one, keeping its due time and JSON,
    drops the two keys and marks the namespace 4; the timers then lease, reschedule and cancel
    as any other."""
    cid = ChatId("c1")
    timers = tuple(Timer(f"t{i}", 5.0 + i, cid, "k") for i in range(3))
    redis_storage.apply(
        Change(cid, None, now=1.0, chat=Chat(cid, CustomerInfo(), channel="web"), schedule=timers)
    )
    _as_version_3_timers(redis_storage)
    client, prefix = redis_storage.client, redis_storage.key_prefix
    kind = "cluster" if isinstance(client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        assert [fresh.timers.get(t.key) for t in timers] == list(timers)  # read as version 3
        assert _s(client.get(f"{prefix}:dv")) == "3"
        leased = fresh.timers.claim_due(5.5, 10, 10.0)  # the first write: converted, then leased
        assert leased == [timers[0]]
        assert _s(client.get(f"{prefix}:dv")) == "6"
        assert client.exists(f"{prefix}:tm:m", f"{prefix}:tm:seq") == 0
        assert sorted(_s(m) for m in client.zrange(f"{prefix}:tm:z", 0, -1)) == ["t0", "t1", "t2"]
        assert fresh.timers.get("t0") == attrs.evolve(timers[0], due_at=15.5)
        assert fresh.timers.get("t2") == timers[2]
        fresh.apply(
            Change(
                cid,
                0,
                now=2.0,
                chat=Chat(cid, CustomerInfo(), channel="web", version=1),
                cancel=("t1",),
                schedule=(Timer("t2", 6.5, cid, "k2"),),
            )
        )
        assert fresh.timers.get("t1") is None
        assert [(t.key, t.kind) for t in fresh.timers.claim_due(100.0, 10, 5.0)] == [
            ("t2", "k2"),
            ("t0", "k"),
        ]
    finally:
        fresh.close()


def test_version_3_agents_get_their_flags_and_groups_when_the_namespace_is_marked_4(
    redis_storage: RedisStorage,
) -> None:
    """Version 4 keeps two flags in an agent's hash (``rec``: its assignment times may be
    kept; ``chn``: its chats' channels may be recorded), so claims, releases and load reports
    skip the commands on keys that are empty, and its groups (``grp``), read with its state. A
    version 3 namespace has none: the write that marks it 4 sets them from what each agent
    holds, and the agent's times and channels are then reported, cleared and released as
    before."""
    ann = Agent(
        AgentId("ann"),
        status=AgentStatus.ONLINE,
        reception_limit=3,
        channel_weights={"web": 1},
        skill_groups=frozenset({"g"}),
    )
    bob = Agent(AgentId("bob"), status=AgentStatus.ONLINE, reception_limit=3)
    redis_storage.agents.put(ann, 0.0)
    redis_storage.agents.put(bob, 0.0)
    c1, c2, c3 = ChatId("c1"), ChatId("c2"), ChatId("c3")
    redis_storage.apply(
        Change(
            c1,
            None,
            1.0,
            Chat(c1, CustomerInfo(), channel="web", state=ChatState.ACTIVE, agent_id=ann.id),
            Claim(ann.id, channel="web", keep_s=60.0),
        )
    )
    held = redis_storage.agents.get(ann.id)
    assert held is not None and (held.channels, held.recent) == ({c1: "web"}, (1.0,))
    client, prefix = redis_storage.client, redis_storage.key_prefix
    for aid in ("ann", "bob"):
        client.hdel(f"{prefix}:ag:{aid}", "rec", "chn", "grp")
    client.set(f"{prefix}:dv", "3")
    kind = "cluster" if isinstance(client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        assert fresh.agents.get(ann.id) == held  # read as version 3
        fresh.apply(Change(c3, None, 2.0, Chat(c3, CustomerInfo(), channel="web")))
        assert _s(client.get(f"{prefix}:dv")) == "6"
        flags = {
            aid: [_s(v) for v in client.hmget(f"{prefix}:ag:{aid}", "rec", "chn")]
            for aid in ("ann", "bob")
        }
        assert flags == {"ann": ["1", "1"], "bob": ["0", "0"]}
        groups = {aid: _s(client.hget(f"{prefix}:ag:{aid}", "grp")) for aid in ("ann", "bob")}
        assert (sorted(groups["ann"].split(":")), groups["bob"]) == (["", "g"], "")
        assert fresh.agents.get(ann.id) == held
        # a claim without a fairness cap keeps no times: the list goes, the flag says so
        fresh.apply(
            Change(
                c2,
                None,
                3.0,
                Chat(c2, CustomerInfo(), channel="web", state=ChatState.ACTIVE, agent_id=ann.id),
                Claim(ann.id, channel="web"),
            )
        )
        got = fresh.agents.get(ann.id)
        assert got is not None and (got.channels, got.recent) == ({c1: "web", c2: "web"}, ())
        assert _s(client.hget(f"{prefix}:ag:ann", "rec")) == "0"
        ended = Chat(c1, CustomerInfo(), channel="web", state=ChatState.ENDED, version=1)
        applied = fresh.apply(Change(c1, 0, 4.0, ended, release=ann.id, watch=("g",)))
        assert applied.released is not None
        assert (applied.released.channels, applied.released.recent) == ({c2: "web"}, ())
        assert applied.released == fresh.agents.get(ann.id)
    finally:
        fresh.close()


def test_timers_due_together_are_claimed_in_key_order_and_a_repeated_key_keeps_its_last(
    redis_storage: RedisStorage,
) -> None:
    """Timers are keyed by their key: those due at the same moment lease in key order, a key
    scheduled twice in one unit keeps its last due time and JSON, and a cancel of a key that
    does not exist (beside one that does) leaves the others alone."""
    cid = ChatId("c1")
    redis_storage.apply(
        Change(
            cid,
            None,
            now=1.0,
            chat=Chat(cid, CustomerInfo(), channel="web"),
            schedule=(
                Timer("tb", 5.0, cid, "x"),
                Timer("ta", 5.0, cid, "y"),
                Timer("tc", 9.0, cid, "z"),
                Timer("tc", 4.0, cid, "last"),
            ),
        )
    )
    assert redis_storage.timers.get("tc") == Timer("tc", 4.0, cid, "last")
    redis_storage.apply(
        Change(
            cid,
            0,
            now=2.0,
            chat=Chat(cid, CustomerInfo(), channel="web", version=1),
            cancel=("nope", "tc"),
        )
    )
    assert redis_storage.timers.get("tc") is None
    assert [t.key for t in redis_storage.timers.claim_due(100.0, 10, 5.0)] == ["ta", "tb"]
    assert redis_storage.timers.claim_due(100.0, 10, 5.0) == []  # leased until 105
    assert [t.key for t in redis_storage.timers.claim_due(105.0, 1, 5.0)] == ["ta"]


def test_the_async_face_applies_the_same_unit(redis_storage: RedisStorage) -> None:
    async def run() -> tuple[Applied, Chat | None, list[Event]]:
        storage = _aopen(redis_storage)
        try:
            await storage.agents.put(
                Agent(AgentId("ann"), status=AgentStatus.ONLINE, skill_groups=frozenset({"g"})),
                0.0,
            )
            cid = ChatId("c1")
            applied = await storage.apply(
                Change(
                    cid,
                    None,
                    now=1.0,
                    chat=Chat(cid, CustomerInfo(), channel="web", agent_id=PICKED),
                    claim=RankedClaim("g", Ranking("r", (RankKey("active"),))),
                    events=(Event("e1", "chat.assigned", 1.0, {"agent_id": PICKED}, chat_id=cid),),
                )
            )
            with pytest.raises(PreconditionFailed) as info:
                await storage.apply(Change(cid, 7, now=2.0))
            assert (info.value.reason, info.value.actual) == ("version", 0)
            return applied, await storage.chats.get(cid), await storage.outbox.events()  # type: ignore[attr-defined]
        finally:
            await storage.aclose()

    applied, stored, events = asyncio.run(run())
    assert applied.agent_id == "ann"
    assert stored == applied.chat
    assert stored is not None and stored.agent_id == "ann"
    assert events == list(applied.events)
    assert events[0].data["agent_id"] == "ann"


def test_agent_put_is_a_compare_and_set_and_keeps_the_load(redis_storage: RedisStorage) -> None:
    ann = Agent(AgentId("ann"), status=AgentStatus.ONLINE, reception_limit=2)
    assert redis_storage.agents.put(ann, 0.0).version == 1
    cid = ChatId("c1")
    redis_storage.apply(
        Change(cid, None, 1.0, Chat(cid, CustomerInfo(), channel="web"), Claim(ann.id))
    )
    with pytest.raises(ConflictError):
        redis_storage.agents.put(ann, 2.0)  # exists: None is not its version
    offline = Agent(ann.id, status=AgentStatus.OFFLINE, reception_limit=2)
    load = redis_storage.agents.put(offline, 2.0, expected_version=1)
    assert (load.version, load.chats, load.agent.status) == (2, {cid}, AgentStatus.OFFLINE)
    with pytest.raises(ConflictError):  # a concurrent change made with the old version loses
        redis_storage.agents.put(ann, 3.0, expected_version=1)
    assert redis_storage.agents.get(ann.id) == load


AB = ("ann", "bob")


def test_version_4_agents_get_their_chat_numbers_and_the_rankings_their_pairs_at_6(
    redis_storage: RedisStorage,
) -> None:
    """A version 4 namespace (no ``n``/``ni`` in the agents' hashes, no ``rkl``) reads as it
    is; its first write sets each agent's chat numbers from its sets and the ranking pairs in
    use from the rankings' set (every ranking with every group) and marks it 6; picks, inactive
    moves and releases then keep them in step."""
    ann = Agent(AgentId("ann"), status=AgentStatus.ONLINE, reception_limit=3)
    bob = Agent(AgentId("bob"), status=AgentStatus.ONLINE, reception_limit=3)
    redis_storage.agents.put(ann, 0.0)
    redis_storage.agents.put(bob, 0.0)
    ranking = Ranking("r", (RankKey("active"), RankKey("account_order")))
    c1, c2, c3, c4 = (ChatId(f"c{i}") for i in range(1, 5))
    for cid in (c1, c2):
        redis_storage.apply(
            Change(cid, None, 1.0, Chat(cid, CustomerInfo(), channel="web"), Claim(ann.id))
        )
    redis_storage.apply(Change(c1, 0, 2.0, inactive=(ann.id, True)))
    held = redis_storage.agents.get(ann.id)
    assert held is not None and (held.chats, held.inactive) == ({c2}, {c1})
    client, prefix = redis_storage.client, redis_storage.key_prefix
    for aid in AB:
        client.hdel(f"{prefix}:ag:{aid}", "n", "ni")
    client.delete(f"{prefix}:rkl")
    client.sadd(f"{prefix}:rankings", "tier-")  # a ranking a version 4 release indexed
    client.set(f"{prefix}:dv", "4")
    kind = "cluster" if isinstance(client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        assert fresh.agents.get(ann.id) == held  # read as version 4
        assert _s(client.get(f"{prefix}:dv")) == "4"  # reads do not mark it
        picked = fresh.apply(
            Change(
                c3,
                None,
                3.0,
                Chat(c3, CustomerInfo(), channel="web", agent_id=PICKED),
                RankedClaim("", ranking),
            )
        )
        assert picked.agent_id == bob.id  # fewer active chats
        assert _s(client.get(f"{prefix}:dv")) == "6"
        # marked 6: the rankings' list became the pairs in use, every group of the old ones
        assert _s(client.get(f"{prefix}:rkp")) == "tier-:{active+account_order+:"
        assert client.exists(f"{prefix}:rkl", f"{prefix}:rankings") == 0
        assert _counts(fresh, AB) == _held(fresh, AB) == {"ann": (1, 1), "bob": (1, 0)}
        fresh.apply(Change(c1, 0, 4.0, inactive=(ann.id, False)))
        assert _counts(fresh, AB) == _held(fresh, AB) == {"ann": (2, 0), "bob": (1, 0)}
        fresh.apply(Change(c4, None, 5.0, inactive=(ann.id, False)))  # holds no such chat
        ended = Chat(c2, CustomerInfo(), channel="web", state=ChatState.ENDED, version=1)
        applied = fresh.apply(Change(c2, 0, 6.0, ended, release=ann.id, watch=("",)))
        assert _counts(fresh, AB) == _held(fresh, AB) == {"ann": (1, 0), "bob": (1, 0)}
        assert applied.released == fresh.agents.get(ann.id)
        assert applied.released is not None and applied.released.chats == {c1}
    finally:
        fresh.close()


def test_version_1_data_reads_the_same_and_is_marked_6_by_a_write(
    redis_storage: RedisStorage,
) -> None:
    """A namespace of the release before capacity per channel (data version 1: no channel
    fields anywhere) is read as it is; the first write marks it version 6."""
    ann = Agent(AgentId("ann"), status=AgentStatus.ONLINE, reception_limit=2)
    load = redis_storage.agents.put(ann, 0.0)
    dv = f"{redis_storage.key_prefix}:dv"
    redis_storage.client.set(dv, "1")
    kind = "cluster" if isinstance(redis_storage.client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        assert fresh.agents.get(AgentId("ann")) == load
        assert _s(redis_storage.client.get(dv)) == "1"  # reads do not mark it
        cid = ChatId("c1")
        chat = Chat(cid, CustomerInfo(), channel="web", state=ChatState.ACTIVE, agent_id=ann.id)
        fresh.apply(Change(cid, None, 1.0, chat, claim=Claim(ann.id, channel="web")))
        assert _s(redis_storage.client.get(dv)) == "6"
        got = fresh.agents.get(ann.id)
        assert got is not None and got.chats == {cid} and got.channels == {}
    finally:
        fresh.close()


def _s(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _as_version_2(storage: RedisStorage, ids: list[ChatId]) -> None:
    """Rewrite these chats' bookkeeping as data version 2 kept it: the version alone in
    ``chv``, the state in ``chs``, the creation order in ``cho`` (and the namespace marked 2)."""
    client, prefix = storage.client, storage.key_prefix
    for cid in ids:
        version, state, order = _s(client.hget(f"{prefix}:chv", cid)).split(" ")
        assert int(float(_s(client.zscore(f"{prefix}:chall", cid)))) == int(order)
        client.hset(f"{prefix}:chv", cid, version)
        client.hset(f"{prefix}:chs", cid, state)
        client.hset(f"{prefix}:cho", cid, order)
    client.set(f"{prefix}:dv", "2")


def test_version_2_chats_read_change_and_purge_as_they_did(redis_storage: RedisStorage) -> None:
    """Data version 2 kept a chat's version, state and creation number in three hashes;
    version 3 keeps them in one field. A version 2 namespace is read as it is (get, list
    by state in creation order, the preconditions), a chat moves to the one field at its next
    change (its state list kept in order), a purge finds an unchanged one's state, and the
    first write marks the namespace 4 (the current version)."""
    cids = [ChatId(f"c{i}") for i in range(4)]
    for i, cid in enumerate(cids):
        chat = Chat(cid, CustomerInfo(), channel="web", state=ChatState.ACTIVE)
        if i == 3:
            chat = attrs.evolve(chat, state=ChatState.ENDED, ended_at=1.0)
        redis_storage.apply(Change(cid, None, 1.0 + i, chat))
    before = {cid: redis_storage.chats.get(cid) for cid in cids}
    _as_version_2(redis_storage, cids)
    prefix, client = redis_storage.key_prefix, redis_storage.client
    kind = "cluster" if isinstance(client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        assert {cid: fresh.chats.get(cid) for cid in cids} == before
        assert [c.id for c in fresh.chats.list(ChatState.ACTIVE)] == cids[:3]
        with pytest.raises(PreconditionFailed) as exists:
            fresh.apply(Change(cids[0], None, 5.0, before[cids[0]]))
        assert (exists.value.reason, exists.value.actual) == ("exists", 0)
        with pytest.raises(PreconditionFailed) as moved:
            fresh.apply(Change(cids[1], 7, 5.0))
        assert (moved.value.reason, moved.value.actual) == ("version", 0)
        old = before[cids[1]]
        assert old is not None
        ended = attrs.evolve(old, state=ChatState.ENDED, version=1, ended_at=6.0)
        fresh.apply(Change(cids[1], 0, 6.0, ended))
        assert _s(client.get(f"{prefix}:dv")) == "6"
        order = int(float(_s(client.zscore(f"{prefix}:chall", cids[1]))))
        assert _s(client.hget(f"{prefix}:chv", cids[1])) == f"1 ended {order}"
        assert client.hget(f"{prefix}:chs", cids[1]) is None
        assert client.hget(f"{prefix}:cho", cids[1]) is None
        assert [c.id for c in fresh.chats.list(ChatState.ACTIVE)] == [cids[0], cids[2]]
        assert [c.id for c in fresh.chats.list(ChatState.ENDED)] == [cids[1], cids[3]]
        assert [c.id for c in fresh.chats.list()] == cids
        # an unchanged version 2 chat (c3, ended) and a moved one (c1) are purged whole
        assert fresh.chats.purge(100.0, 10) == 2
        assert [c.id for c in fresh.chats.list()] == [cids[0], cids[2]]
        assert fresh.chats.list(ChatState.ENDED) == []
        for key in ("chv", "chs", "cho"):
            assert client.hget(f"{prefix}:{key}", cids[3]) is None
    finally:
        fresh.close()


def test_data_of_a_newer_version_is_refused(redis_storage: RedisStorage) -> None:
    redis_storage.agents.put(Agent(AgentId("ann")), 0.0)
    redis_storage.client.set(f"{redis_storage.key_prefix}:dv", "99")
    kind = "cluster" if isinstance(redis_storage.client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        with pytest.raises(StorageError, match="version 99"):
            fresh.agents.get(AgentId("ann"))
        with pytest.raises(StorageError, match="upgrade chatmgmt"):
            redis_storage.agents.put(Agent(AgentId("bob")), 0.0)
        cid = ChatId("c1")
        with pytest.raises(StorageError, match="version 99"):
            redis_storage.apply(Change(cid, None, 1.0, Chat(cid, CustomerInfo(), channel="web")))
        assert redis_storage.chats.get(cid) is None
    finally:
        fresh.close()


def _index(storage: RedisStorage, group: str, rid: str) -> list[str]:
    """The agent ids of one ranking index, in its order (8 bytes per rank value first)."""
    key = f"{storage.key_prefix}:rk:{_enc(group)}:{rid}"
    width = 8 * (rid.count("+") + rid.count("-"))
    return [m[width:].decode() for m in storage.client.zrange(key, 0, -1)]


def _member(values: tuple[float, ...], agent_id: str) -> bytes:
    """An index member as the Lua's ``member`` writes it (``encnum`` of each value, the id)."""
    out = b""
    for v in values:
        raw = struct.pack(">d", float(v) + 0.0)
        out += bytes(255 - b for b in raw) if raw[0] >= 128 else bytes([raw[0] + 128]) + raw[1:]
    return out + agent_id.encode()


def test_ranking_indexes_are_kept_for_the_pairs_in_use_and_a_version_5_namespace_keeps_all(
    redis_storage: RedisStorage,
) -> None:
    """Data version 6 keeps a ranking's index only for the groups picks have used it in (an
    open in group ``g`` no longer rewrites the all-agents group's index); the first pick in
    another group builds that one, in the pure rules' order. A version 5 namespace (an index
    for every group of every ranking) is marked 6 by its first write with all those pairs in
    use, and every one of them stays in step."""
    up = Ranking("up", (RankKey("account_order"),))
    down = Ranking("down", (RankKey("account_order", descending=True),))
    rid_up, rid_down = "account_order+", "account_order-"
    agents = [
        Agent(
            AgentId(f"a{i}"),
            skill_groups=frozenset({"g", "h"} if i % 2 else {"g"}),
            status=AgentStatus.ONLINE,
            reception_limit=1,
            account_order=i,
        )
        for i in range(5)
    ]
    for agent in agents:
        redis_storage.agents.put(agent, 0.0)
    client, prefix = redis_storage.client, redis_storage.key_prefix

    def open_(store: RedisStorage, n: int, group: str, ranking: Ranking) -> str | None:
        cid = ChatId(f"c{n}")
        chat = Chat(cid, CustomerInfo(), channel="web", agent_id=PICKED)
        change = Change(cid, None, float(n), chat, RankedClaim(group, ranking))
        return store.apply(change).agent_id

    def in_step(store: RedisStorage, groups: tuple[str, ...]) -> None:
        loads = [store.agents.get(a.id) for a in agents]
        for ranking, rid in ((up, rid_up), (down, rid_down)):
            for group in groups:
                ranked = sorted(
                    rank_entry(load, ranking)
                    for load in loads
                    if load is not None and in_group(load.agent, group) and eligible(load)
                )
                assert _index(store, group, rid) == [aid for _, aid in ranked], (group, rid)

    assert open_(redis_storage, 1, "g", up) == "a0"
    assert _s(client.get(f"{prefix}:rkp")) == f"{rid_up}:g"
    # what each call reads with the data version: the list's digest
    assert _s(client.get(f"{prefix}:rkh")) == hashlib.sha1(f"{rid_up}:g".encode()).hexdigest()
    assert client.exists(f"{prefix}:rk::{rid_up}", f"{prefix}:rk:h:{rid_up}") == 0
    assert _index(redis_storage, "g", rid_up) == ["a1", "a2", "a3", "a4"]  # a0 is full
    assert open_(redis_storage, 2, "h", down) == "a3"
    assert _s(client.get(f"{prefix}:rkp")) == f"{rid_up}:g{{{rid_down}:h"
    assert _index(redis_storage, "h", rid_down) == ["a1"]
    assert _index(redis_storage, "g", rid_up) == ["a1", "a2", "a4"]  # kept in step
    assert client.exists(f"{prefix}:rk:g:{rid_down}") == 0
    # as version 5 kept it: an index of every ranking for every group, an entry per ranking
    for ranking, rid in ((up, rid_up), (down, rid_down)):
        client.sadd(f"{prefix}:rankings", rid)
        for agent in agents:
            load = redis_storage.agents.get(agent.id)
            assert load is not None
            if not eligible(load):
                continue
            member = _member(*rank_entry(load, ranking))
            client.hset(f"{prefix}:ag:{agent.id}", f"m:{rid}", member)
            for group in ("", *agent.skill_groups):
                client.zadd(f"{prefix}:rk:{_enc(group)}:{rid}", {member: 0})
    client.set(f"{prefix}:rkl", f"{rid_up} {rid_down}")
    client.delete(f"{prefix}:rkp")
    client.set(f"{prefix}:dv", "5")
    kind = "cluster" if isinstance(client, __import__("redis").RedisCluster) else ""
    fresh = _open(kind, redis_storage.namespace)
    try:
        in_step(fresh, ("", "g", "h"))
        assert open_(fresh, 3, "g", down) == "a4"  # the first write: marked 6, then claimed
        assert _s(client.get(f"{prefix}:dv")) == "6"
        assert _s(client.get(f"{prefix}:rkp")) == f"{rid_up}::g:h{{{rid_down}::g:h"
        assert client.exists(f"{prefix}:rkl", f"{prefix}:rankings") == 0
        assert (
            _s(client.get(f"{prefix}:rkh")) == hashlib.sha1(client.get(f"{prefix}:rkp")).hexdigest()
        )
        in_step(fresh, ("", "g", "h"))  # every pair kept in step
        assert open_(fresh, 4, "", up) == "a1"
        in_step(fresh, ("", "g", "h"))
    finally:
        fresh.close()
