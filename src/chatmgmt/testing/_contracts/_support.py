"""What every contract module shares: the test-case base with its hooks, builders, the pure
oracles (the load rules of :mod:`chatmgmt.assignment._load`), thread helpers and snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs

from ..._text import id_problem
from ...assignment import (
    LEAST_BUSY,
    LONGEST_IDLE,
    ROUND_ROBIN,
    SATURATION_LONGEST,
    SATURATION_RANDOM,
    with_tiers,
)
from ...assignment._load import census_category, cost, eligible, in_group, rank_entry
from ...errors import PreconditionFailed
from ...model import (
    RANK_FIELDS,
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    EndReason,
    Event,
    Message,
    MessageId,
    MessageRole,
    Ranking,
    RankKey,
    ReceptionMode,
    Sticky,
)
from ...ports import Applied, Census, Change, Claim, QueuePush, RankedClaim, Storage

__all__ = [
    "BUILTIN_RANKINGS",
    "EVERY_RANKING",
    "HOSTILE_IDS",
    "HOSTILE_STRINGS",
    "StorageCase",
]

_T = TypeVar("_T")

BUILTIN_RANKINGS: tuple[Ranking, ...] = (
    ROUND_ROBIN,
    LEAST_BUSY,
    SATURATION_RANDOM,
    SATURATION_LONGEST,
    LONGEST_IDLE,
    with_tiers(ROUND_ROBIN),
    with_tiers(LEAST_BUSY),
    with_tiers(SATURATION_RANDOM),
    with_tiers(SATURATION_LONGEST),
    with_tiers(LONGEST_IDLE),
)
"""Every built-in ranking, plain and wrapped in priority tiers."""

EVERY_RANKING: tuple[Ranking, ...] = (
    *(
        Ranking(f"{field}-{'desc' if descending else 'asc'}", (RankKey(field, descending),))
        for field in sorted(RANK_FIELDS)
        for descending in (False, True)
    ),
    *BUILTIN_RANKINGS,
    Ranking(
        "custom-tier-saturation-idle",
        (RankKey("tier", True), RankKey("saturation"), RankKey("idle_since")),
    ),
    Ranking(
        "custom-free-order-tiebreak",
        (RankKey("free", True), RankKey("account_order", True), RankKey("tiebreak")),
    ),
    Ranking(
        "custom-assigned-active",
        (RankKey("last_assigned_at", True), RankKey("active", True)),
    ),
    Ranking(
        "custom-every-field",
        tuple(RankKey(f, i % 2 == 1) for i, f in enumerate(sorted(RANK_FIELDS))),
    ),
)
"""Every :data:`~chatmgmt.model.RANK_FIELDS` entry alone in both directions, every built-in
ranking, and custom multi-key rankings: a ranked claim must pick what the pure rules pick
(the smallest :func:`~chatmgmt.assignment._load.rank_entry` among eligible agents) on each."""

HOSTILE_STRINGS: tuple[str, ...] = (
    "a:b",
    "{tag}",
    "}{",
    "{",
    "*",
    "?",
    "[x]",
    "-",
    "+",
    "'",
    '"',
    "'; DROP TABLE chats; --",
    '"); DELETE FROM agents; --',
    "%",
    "%25",
    "%7B",
    "_",
    "line\nbreak",
    "tab\there",
    "back\\slash",
    "nul\x00byte",
    "ünïcødé 中文 🙂",
    " ",
    "cm:{default}:agent",
    "\\u0000picked",
    "return redis.call('FLUSHALL')",
    "KEYS[1]",
)
"""Namespaces, queue names and keys that must be stored as data, never read as syntax."""

HOSTILE_IDS: tuple[str, ...] = tuple(h for h in HOSTILE_STRINGS if id_problem(h) is None)
"""The :data:`HOSTILE_STRINGS` the model accepts as ids (no control characters): agent,
chat, message and partner ids, skill groups."""


# --------------------------------------------------------------------------- small helpers


class Raised:
    """What :func:`raises` caught."""

    def __init__(self) -> None:
        self.value: BaseException | None = None


@contextlib.contextmanager
def raises(exc_type: type[BaseException]) -> Iterator[Raised]:
    """Like ``pytest.raises`` without importing pytest."""
    info = Raised()
    try:
        yield info
    except exc_type as exc:
        info.value = exc
        return
    raise AssertionError(f"expected {exc_type.__name__} to be raised")


def refused(reason: str, call: Callable[[], object]) -> PreconditionFailed:
    """Run ``call``; assert it raises :class:`PreconditionFailed` with ``reason``."""
    try:
        call()
    except PreconditionFailed as exc:
        assert exc.reason == reason, f"expected reason {reason!r}, got {exc.reason!r}: {exc}"
        assert exc.reason in PreconditionFailed.REASONS
        return exc
    raise AssertionError(f"expected PreconditionFailed({reason!r})")


def agent(
    agent_id: str,
    *,
    groups: Sequence[str] = ("g",),
    limit: int = 3,
    status: AgentStatus = AgentStatus.ONLINE,
    tier: int = 0,
    order: int = 0,
) -> Agent:
    """An agent for the contracts (ONLINE in group ``g`` unless told otherwise)."""
    return Agent(
        id=AgentId(agent_id),
        display_name=f"Agent {agent_id}",
        skill_groups=frozenset(groups),
        reception_limit=limit,
        tier=tier,
        account_order=order,
        status=status,
    )


def chat(chat_id: str, **kwargs: Any) -> Chat:
    """A chat (QUEUED, version 0, group ``g`` unless told otherwise)."""
    customer = kwargs.pop("customer", CustomerInfo(partner_id="p-" + chat_id, name="Ada"))
    kwargs.setdefault("skill_group", "g")
    return Chat(
        id=ChatId(chat_id), customer=customer, channel=kwargs.pop("channel", "web"), **kwargs
    )


def nxt(current: Chat, **changes: Any) -> Chat:
    """``current`` with ``changes`` at the next version."""
    return attrs.evolve(current, version=current.version + 1, **changes)


def event(n: int | str, chat_id: str | None = None, seq: int = 0, **data: Any) -> Event:
    """An event with a nested JSON payload."""
    payload: dict[str, Any] = {"n": str(n), "nested": {"list": [1, 2.5, None, "x"]}}
    payload.update(data)
    return Event(
        id=f"evt-{n}",
        type="test.event",
        timestamp=1_700_000_000.0 + 0.125,
        data=payload,
        chat_id=chat_id,
        seq=seq,
    )


def message(mid: str, chat_id: str, text: str = "hi", at: float = 1.0) -> Message:
    """A customer message."""
    return Message(MessageId(mid), ChatId(chat_id), MessageRole.CUSTOMER, "u", text, at)


def rich_chat(chat_id: str) -> Chat:
    """A chat with every field set to an awkward value."""
    return Chat(
        id=ChatId(chat_id),
        customer=CustomerInfo(
            partner_id="u:{1}",
            channel="app",
            name="Zoë \"quotes\" 'single'",
            email="z@example.com",
            phone="+1 555",
            vip_level=3,
            ip="10.0.0.1",
            custom_fields={"k:1": "v{1}", "": "empty key"},
        ),
        channel="app",
        skill_group="sales:{eu}",
        mode=ReceptionMode.ALWAYS_ON,
        state=ChatState.ACTIVE,
        agent_id=AgentId("ann"),
        created_at=1_700_000_000.123456789,
        updated_at=1_700_000_001.1,
        assigned_at=1_700_000_000.5,
        ended_at=None,
        end_reason=EndReason.CUSTOMER_INACTIVITY,
        ended_by="system",
        last_customer_message_at=0.1 + 0.2,
        last_agent_message_at=None,
        agent_replied=True,
        inactive=True,
        priority=7,
        excluded=frozenset({AgentId("bob"), AgentId("c:d")}),
        served_by=(AgentId("bob"), AgentId("ann")),
        route_reason={"via": "queue", "tried": [{"kind": "group", "id": "g"}], "n": 1.5},
        attributes={"queue": "queue/sales", "enqueued_at": 12.75, "flag": True, "none": None},
        position_event=(3, 1_700_000_000.25),
        event_seq=4,
        version=0,
    )


# --------------------------------------------------------------------------- changes


def create(
    s: Storage,
    new: Chat,
    *,
    now: float = 1.0,
    claim: Claim | RankedClaim | None = None,
    push: QueuePush | None = None,
    **kwargs: Any,
) -> Applied:
    """Create ``new`` (version 0) with the given effects in one unit of work."""
    return s.apply(Change(new.id, None, now, chat=new, claim=claim, push=push, **kwargs))


def update(s: Storage, new: Chat, *, now: float = 1.0, **kwargs: Any) -> Applied:
    """Replace the chat by ``new`` (compare-and-set from ``new.version - 1``) with effects."""
    return s.apply(Change(new.id, new.version - 1, now, chat=new, **kwargs))


def open_queued(s: Storage, chat_id: str, queue: str, score: float, **kwargs: Any) -> Chat:
    """Create a QUEUED chat and its queue entry; returns the stored chat."""
    new = chat(chat_id, **kwargs)
    create(s, new, push=QueuePush(queue, score))
    return new


def open_with(
    s: Storage, chat_id: str, agent_id: str, *, now: float = 1.0, tiebreak: float = 0.0
) -> Chat:
    """Create a chat ACTIVE with ``agent_id`` (a checked claim); returns the stored chat."""
    new = chat(chat_id, state=ChatState.ACTIVE, agent_id=AgentId(agent_id), assigned_at=now)
    s.apply(
        Change(
            new.id,
            None,
            now,
            chat=new,
            claim=Claim(AgentId(agent_id)),
            tiebreak=tiebreak,
        )
    )
    return new


def end(s: Storage, chat_id: str, *, now: float = 2.0, tiebreak: float = 0.0) -> Chat:
    """End a stored chat: release its agent's slot in the same unit; returns the new chat."""
    current = s.chats.get(ChatId(chat_id))
    assert current is not None, chat_id
    new = nxt(current, state=ChatState.ENDED, ended_at=now, end_reason=EndReason.AGENT)
    update(s, new, now=now, release=current.agent_id, tiebreak=tiebreak)
    return new


# --------------------------------------------------------------------------- pure oracles


def expected_pick(
    loads: Iterable[AgentLoad],
    group: str,
    ranking: Ranking,
    excluded: Iterable[str] = (),
    fit: Callable[[AgentLoad], bool] | None = None,
) -> AgentId | None:
    """The agent the pure rules pick: the smallest rank entry among the group's eligible,
    non-excluded agents for which ``fit`` holds (a claim's channel and fairness terms; None
    when there is none)."""
    skip = frozenset(excluded)
    entries = [
        rank_entry(ld, ranking)
        for ld in loads
        if in_group(ld.agent, group)
        and eligible(ld)
        and ld.agent.id not in skip
        and (fit is None or fit(ld))
    ]
    return min(entries)[1] if entries else None


def expected_census(loads: Iterable[AgentLoad], group: str = "") -> Census:
    """The census the pure rules give for ``group``: one :func:`census_category` per agent,
    plus the capacity and load of the ONLINE agents."""
    counts = dict.fromkeys(("eligible", "full", "busy", "away", "offline", "capacity", "load"), 0)
    for load in loads:
        if not in_group(load.agent, group):
            continue
        counts[census_category(load)] += 1
        if load.agent.status is AgentStatus.ONLINE:
            counts["capacity"] += load.agent.reception_limit
            counts["load"] += load.active
    return Census(**counts)


def check_records(s: Storage, *, limits: bool = True) -> None:
    """The invariants read from the stored CHAT RECORDS, with the loads as a cross-check.

    No agent holds more ACTIVE (not inactive) chats than its limit, counted in units of its
    channel weights, nor more of one channel than its limit for that channel (unless ``limits`` is
    False: a lowered limit or a forced claim may leave an agent above it); no chat is held by
    two agents; every ACTIVE chat is held (counted or inactive) by its agent and by no other;
    every held chat is ACTIVE with that agent; the census equals the pure census of the
    stored loads.
    """
    loads = {ld.agent.id: ld for ld in s.agents.list()}
    active = s.chats.list(ChatState.ACTIVE)
    per_agent: dict[str, list[str]] = {}
    for c in active:
        assert c.agent_id is not None, f"ACTIVE chat {c.id!r} without an agent"
        per_agent.setdefault(c.agent_id, []).append(c.id)
    for aid, chats in per_agent.items():
        load = loads.get(AgentId(aid))
        assert load is not None, f"chats {chats} are ACTIVE with unknown agent {aid!r}"
        counted = [c for c in active if c.agent_id == aid and c.id not in load.inactive]
        units = cost(load.agent, (c.channel for c in counted))
        assert not limits or units <= load.agent.reception_limit, (
            f"agent {aid!r} holds {len(counted)} active chats ({units} units) over its limit "
            f"{load.agent.reception_limit}: {sorted(c.id for c in counted)}"
        )
        for channel, most in load.agent.channel_limits.items():
            of_channel = sorted(c.id for c in counted if c.channel == channel)
            assert not limits or len(of_channel) <= most, (
                f"agent {aid!r} holds {len(of_channel)} active {channel} chats over its limit "
                f"{most} for that channel: {of_channel}"
            )
    holders: dict[str, list[str]] = {}
    for ld in loads.values():
        for held_id in ld.chats | ld.inactive:
            holders.setdefault(held_id, []).append(ld.agent.id)
    for cid, who in holders.items():
        assert len(who) == 1, f"chat {cid!r} held by several agents: {sorted(who)}"
        stored = s.chats.get(ChatId(cid))
        assert stored is not None and stored.state is ChatState.ACTIVE, (
            f"agent {who[0]!r} holds chat {cid!r}, which is "
            f"{None if stored is None else stored.state.value}"
        )
        assert stored.agent_id == who[0], (cid, stored.agent_id, who[0])
    for c in active:
        assert holders.get(c.id) == [c.agent_id], (
            f"ACTIVE chat {c.id!r} of {c.agent_id!r} is held by {holders.get(c.id)}"
        )
    for group in {g for ld in loads.values() for g in ld.agent.skill_groups} | {""}:
        assert s.agents.census(group) == expected_census(loads.values(), group), group


# --------------------------------------------------------------------------- snapshots


@attrs.frozen
class Snapshot:
    """Everything the read side of the ports shows about some chats, agents, queues and
    customers (the outbox by its pending count)."""

    chats: Mapping[str, Chat | None]
    messages: Mapping[str, tuple[Message, ...]]
    loads: tuple[AgentLoad, ...]
    census: Mapping[str, Census]
    queues: Mapping[str, tuple[tuple[ChatId, float], ...]]
    sticky: Mapping[str, Sticky | None]
    pending: int


def snapshot(
    s: Storage,
    chat_ids: Iterable[str],
    queues: Iterable[str] = (),
    groups: Iterable[str] = ("",),
    partners: Iterable[str] = (),
) -> Snapshot:
    """Read a :class:`Snapshot` (reads only; changes nothing)."""
    ids = list(chat_ids)
    return Snapshot(
        chats={c: s.chats.get(ChatId(c)) for c in ids},
        messages={c: tuple(s.chats.messages(ChatId(c))) for c in ids},
        loads=tuple(s.agents.list()),
        census={g: s.agents.census(g) for g in groups},
        queues={q: tuple(s.queues.peek(q, 1000)) for q in queues},
        sticky={p: s.chats.sticky(p) for p in partners},
        pending=s.outbox.pending(),
    )


def timer_keys(s: Storage, now: float = 1e12) -> list[str]:
    """The keys of every timer due by ``now``, sorted (leases them: call last)."""
    return sorted(t.key for t in s.timers.claim_due(now, 10_000, 1.0))


def outbox_ids(s: Storage) -> list[str]:
    """The ids of every unacknowledged event, oldest first (leases them: call last)."""
    return [e.event.id for e in s.outbox.claim("contract-check", 10_000, 0.0, 1.0)]


# --------------------------------------------------------------------------- threads


def run_threads(n: int, target: Callable[[int], _T]) -> list[_T]:
    """Run ``target(i)`` in ``n`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    if errors:
        raise errors[0]
    if any(w.is_alive() for w in workers):
        raise AssertionError("a worker thread did not finish within 300 s")
    return cast(list[_T], results)


class _LoopThread:
    """An event loop running in a daemon thread; sync code submits coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 300.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class _Awaiting:
    """A sync face of an async object: every method call is awaited on ``loop``'s thread."""

    def __init__(self, target: Any, loop: _LoopThread) -> None:
        self.target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.target, name)
        loop = self._loop

        def call(*args: Any, **kwargs: Any) -> Any:
            return loop.run(method(*args, **kwargs))

        return call


class _OnLoopThread:
    """The async suites' xunit hooks: an event loop thread per test, started before the sync
    setup and stopped after the teardown (which closes the bridged storages or stores)."""

    _loop_thread: _LoopThread

    def setup_method(self, method: Any = None) -> None:
        """xunit hook: start the event loop thread, then the sync setup."""
        self._loop_thread = _LoopThread()
        super().setup_method(method)  # type: ignore[misc]

    def teardown_method(self, method: Any = None) -> None:
        """xunit hook: the sync teardown, then stop the loop."""
        try:
            super().teardown_method(method)  # type: ignore[misc]
        finally:
            self._loop_thread.stop()


# --------------------------------------------------------------------------- the base case


class StorageCase:
    """The base of every storage contract: the hooks and the per-test storages.

    Implement :meth:`make_storage`. ``self.storage`` is a fresh storage (unique namespace) in
    every test; :meth:`new_storage` opens another namespace on the same database. ``threads``
    sets how many threads the concurrency tests start.
    """

    threads: int = 16

    def make_storage(self, namespace: str) -> Storage:
        """Hook: a storage for ``namespace`` over the database shared by this test."""
        raise NotImplementedError("subclass the contract and implement make_storage()")

    def close_storage(self, storage: Storage) -> None:
        """Hook: release what :meth:`make_storage` opened (default: ``storage.close()``)."""
        close = getattr(storage, "close", None)
        if callable(close):
            close()

    def setup_method(self, method: Any = None) -> None:
        """xunit hook: a fresh namespace prefix and ``self.storage``."""
        self._prefix = f"ct{uuid.uuid4().hex[:12]}"
        self._opened: list[Storage] = []
        self.storage = self.new_storage("main")

    def teardown_method(self, method: Any = None) -> None:
        """xunit hook: close every storage this test opened."""
        opened, self._opened = self._opened, []
        for storage in reversed(opened):
            with contextlib.suppress(Exception):
                self.close_storage(storage)

    def new_storage(self, suffix: str = "") -> Storage:
        """Another storage on the same database, namespace ``<unique prefix><suffix>``."""
        storage = self.make_storage(f"{self._prefix}{suffix}")
        self._opened.append(storage)
        return storage
