"""The port contract suites: every promise of :mod:`chatmgmt.ports`, as tests a host can run.

Subclass a suite in a test module (its name must start with ``Test`` for pytest to collect it)
and implement the hook that makes a storage, as ``trio.testing`` does for streams::

    from chatmgmt.testing import StorageContract

    class TestMyStorage(StorageContract):
        def make_storage(self, namespace):
            return MyStorage(self.database, namespace)

* :class:`StorageContract` checks the sync ports: behaviour (compare-and-set conflicts, create
  twice, not found), atomicity under concurrency with threads, idempotency, ranked claims that
  agree with :func:`chatmgmt.assignment.rank_scan` for every built-in ranking, census counts,
  timer and outbox leases, events that commit with their change (a failed compare-and-set
  appends none), tenant isolation and hostile ids (``:``, ``{``, ``}``, ``*``, quotes, SQL,
  ``%``, newlines… are data, never syntax).
* :class:`AsyncStorageContract` runs the same checks against an async face
  (``make_async_storage``): every call goes through the event loop, concurrently from many
  threads, plus tests of its own with ``asyncio.gather``.
* :class:`ProcessStorageContract` adds process-level atomicity (``multiprocessing`` with the
  spawn context): hook ``storage_factory`` returns a picklable callable that opens the storage
  in a child process.

Within one test, every ``make_storage`` call must return a storage over the **same** database
or server (only the namespace differs), so that the isolation tests mean something; each test
gets fresh, unique namespaces. ``close_storage`` (default: ``storage.close()`` when it exists)
is called for every storage at the end of a test. The suites need no pytest import: they use
the xunit hooks ``setup_method`` / ``teardown_method`` (call ``super()`` when overriding them).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar, cast

from ..assignment import (
    LEAST_BUSY,
    LONGEST_IDLE,
    ROUND_ROBIN,
    SATURATION_LONGEST,
    SATURATION_RANDOM,
    rank_scan,
    with_tiers,
)
from ..errors import ConflictError, NotFoundError
from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    Customer,
    CustomerInfo,
    EndReason,
    Event,
    Message,
    MessageId,
    MessageRole,
    Ranking,
    ReceptionMode,
    Sticky,
    Timer,
)
from ..ports import AsyncStorage, Census, OutboxEntry, Storage

__all__ = [
    "BUILTIN_RANKINGS",
    "HOSTILE_STRINGS",
    "AsyncStorageContract",
    "ProcessStorageContract",
    "StorageContract",
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
"""Every built-in ranking, plain and wrapped in priority tiers; ranked claims must agree with
:func:`~chatmgmt.assignment.rank_scan` on each."""

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
)
"""Ids, group names and namespaces that must be stored as data, never read as syntax."""


# --------------------------------------------------------------------------- helpers


class _Raises:
    def __init__(self, exc_type: type[BaseException]) -> None:
        self.exc_type = exc_type
        self.value: BaseException | None = None


@contextlib.contextmanager
def _raises(exc_type: type[BaseException]) -> Iterator[_Raises]:
    info = _Raises(exc_type)
    try:
        yield info
    except exc_type as exc:
        info.value = exc
        return
    raise AssertionError(f"expected {exc_type.__name__} to be raised")


def _agent(
    agent_id: str,
    *,
    groups: Sequence[str] = (),
    limit: int = 3,
    status: AgentStatus = AgentStatus.ONLINE,
    tier: int = 0,
    order: int = 0,
) -> Agent:
    return Agent(
        id=AgentId(agent_id),
        display_name=f"Agent {agent_id}",
        skill_groups=frozenset(groups),
        reception_limit=limit,
        tier=tier,
        account_order=order,
        status=status,
    )


def _chat(chat_id: str, **kwargs: Any) -> Chat:
    customer = kwargs.pop("customer", CustomerInfo(partner_id="p-" + chat_id, name="Ada"))
    return Chat(
        id=ChatId(chat_id), customer=customer, channel=kwargs.pop("channel", "web"), **kwargs
    )


def _event(n: int | str, chat_id: str | None = None, seq: int = 0) -> Event:
    return Event(
        id=f"evt-{n}",
        type="test.event",
        timestamp=1_700_000_000.0 + 0.125,
        data={"n": str(n), "nested": {"list": [1, 2.5, None, "x"]}},
        chat_id=chat_id,
        seq=seq,
    )


def _rich_chat(chat_id: str) -> Chat:
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
        event_seq=4,
        version=3,
    )


def _threads(n: int, target: Callable[[int], _T]) -> list[_T]:
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
        w.join(120)
    if errors:
        raise errors[0]
    if any(w.is_alive() for w in workers):
        raise AssertionError("a worker thread did not finish within 120 s")
    return cast(list[_T], results)


def _census_of(loads: Sequence[AgentLoad]) -> Census:
    counts = dict.fromkeys(("eligible", "full", "busy", "away", "offline", "capacity", "load"), 0)
    for load in loads:
        status = load.agent.status
        if status is AgentStatus.ONLINE:
            counts["eligible" if load.free > 0 else "full"] += 1
            counts["capacity"] += load.agent.reception_limit
            counts["load"] += load.active
        else:
            counts[status.value] += 1
    return Census(**counts)


# --------------------------------------------------------------------------- the sync suite


class StorageContract:
    """The contract of every sync storage port; subclass it and implement :meth:`make_storage`.

    ``self.storage`` is a fresh storage (unique namespace) in every test; :meth:`new_storage`
    opens another namespace on the same database. ``threads`` sets how many threads the
    concurrency tests start.
    """

    threads: int = 16

    # hooks ---------------------------------------------------------------------

    def make_storage(self, namespace: str) -> Storage:
        """Hook: a storage for ``namespace`` over the database shared by this test."""
        raise NotImplementedError("subclass StorageContract and implement make_storage()")

    def close_storage(self, storage: Storage) -> None:
        """Hook: release what :meth:`make_storage` opened (default: ``storage.close()``)."""
        close = getattr(storage, "close", None)
        if callable(close):
            close()

    # fixtures ------------------------------------------------------------------

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

    # customers -----------------------------------------------------------------

    def test_customer_create_get_round_trip(self) -> None:
        """A created customer reads back equal; a missing one is None."""
        s = self.storage
        assert s.customers.get("nobody") is None
        customer = Customer(
            partner_id="u:{1}",
            name="Ada 'Lovelace'",
            email="ada@example.com",
            vip_level=2,
            custom_fields={"plan": "gold", "k:{x}": "v"},
            channels=frozenset({"web", "app"}),
            created_at=1_700_000_000.25,
            updated_at=1_700_000_000.5,
        )
        s.customers.create(customer, [_event(1)])
        assert s.customers.get("u:{1}") == customer
        assert s.outbox.pending() == 1

    def test_customer_create_twice_conflicts_and_appends_nothing(self) -> None:
        """Creating an existing partner_id raises ConflictError; the record and outbox stay."""
        s = self.storage
        first = Customer(partner_id="u1", name="first")
        s.customers.create(first, [_event(1)])
        with _raises(ConflictError):
            s.customers.create(Customer(partner_id="u1", name="second"), [_event(2)])
        assert s.customers.get("u1") == first
        assert s.outbox.pending() == 1

    def test_customer_replace_is_compare_and_set(self) -> None:
        """replace stores only from the expected version; stale raises, missing raises."""
        s = self.storage
        v0 = Customer(partner_id="u1", name="a", version=0)
        s.customers.create(v0)
        v1 = Customer(partner_id="u1", name="b", version=1)
        s.customers.replace(v1, 0, [_event(1)])
        assert s.customers.get("u1") == v1
        with _raises(ConflictError):
            s.customers.replace(Customer(partner_id="u1", name="c", version=1), 0, [_event(2)])
        assert s.customers.get("u1") == v1
        with _raises(NotFoundError):
            s.customers.replace(Customer(partner_id="ghost", version=1), 0, [_event(3)])
        assert s.customers.get("ghost") is None
        assert s.outbox.pending() == 1

    def test_concurrent_customer_create_gives_one_record(self) -> None:
        """Concurrent first messages: exactly one create wins, the others conflict."""
        s = self.storage

        def create(i: int) -> bool:
            try:
                s.customers.create(Customer(partner_id="same", name=f"n{i}"), [_event(i)])
            except ConflictError:
                return False
            return True

        results = _threads(self.threads, create)
        assert results.count(True) == 1
        winner = results.index(True)
        stored = s.customers.get("same")
        assert stored is not None and stored.name == f"n{winner}"
        assert s.outbox.pending() == 1

    def test_concurrent_customer_replace_one_winner_per_version(self) -> None:
        """Concurrent compare-and-sets from one version: exactly one wins."""
        s = self.storage
        s.customers.create(Customer(partner_id="u", version=0))

        def replace(i: int) -> bool:
            try:
                s.customers.replace(Customer(partner_id="u", name=f"n{i}", version=1), 0)
            except ConflictError:
                return False
            return True

        assert _threads(self.threads, replace).count(True) == 1

    # agents --------------------------------------------------------------------

    def test_agent_put_get_list(self) -> None:
        """put registers (idle since now, the given tiebreak) and updates keeping the load."""
        s = self.storage
        assert s.agents.get(AgentId("nobody")) is None
        b = _agent("b", groups=["g"], order=2)
        a = _agent("a", groups=["g", "h"], order=2)
        c = _agent("c", groups=["h"], order=1)
        load = s.agents.put(b, 10.0, [_event(1)], 0.5)
        assert load == AgentLoad(agent=b, idle_since=10.0, tiebreak=0.5)
        s.agents.put(a, 11.0)
        s.agents.put(c, 12.0)
        assert s.agents.get(AgentId("b")) == load
        assert [ld.agent.id for ld in s.agents.list()] == ["c", "a", "b"]
        assert [ld.agent.id for ld in s.agents.list("g")] == ["a", "b"]
        assert [ld.agent.id for ld in s.agents.list("h")] == ["c", "a"]
        assert s.agents.list("nope") == []
        assert s.agents.claim(AgentId("b"), ChatId("c1"), 20.0, 0.25)
        b2 = _agent("b", groups=["h"], limit=4, order=2, status=AgentStatus.AWAY)
        updated = s.agents.put(b2, 30.0, [], 0.9)
        assert updated.agent == b2
        assert updated.chats == frozenset({"c1"})
        assert updated.last_assigned_at == 20.0 and updated.idle_since == 10.0
        assert updated.tiebreak == 0.25
        assert [ld.agent.id for ld in s.agents.list("g")] == ["a"]
        assert s.agents.get(AgentId("b")) == updated
        assert s.outbox.pending() == 1

    def test_checked_claim(self) -> None:
        """claim: only ONLINE agents below the limit; idempotent per chat; records time."""
        s = self.storage
        s.agents.put(_agent("a", limit=2), 0.0)
        s.agents.put(_agent("off", status=AgentStatus.OFFLINE), 0.0)
        assert s.agents.claim(AgentId("a"), ChatId("c1"), 5.0, 0.1)
        load = s.agents.get(AgentId("a"))
        assert load is not None
        assert load.chats == {"c1"} and load.last_assigned_at == 5.0 and load.tiebreak == 0.1
        assert s.agents.claim(AgentId("a"), ChatId("c1"), 6.0, 0.2)  # idempotent
        assert s.agents.get(AgentId("a")) == load
        assert s.agents.claim(AgentId("a"), ChatId("c2"), 7.0, 0.3)
        assert not s.agents.claim(AgentId("a"), ChatId("c3"), 8.0, 0.4)  # full
        full = s.agents.get(AgentId("a"))
        assert full is not None and full.chats == {"c1", "c2"}
        assert s.agents.claim(AgentId("a"), ChatId("c2"), 9.0, 0.5)  # held: still True
        assert not s.agents.claim(AgentId("off"), ChatId("c4"), 8.0, 0.4)
        assert not s.agents.claim(AgentId("ghost"), ChatId("c5"), 8.0, 0.4)
        zero = _agent("z", limit=0)
        s.agents.put(zero, 0.0)
        assert not s.agents.claim(AgentId("z"), ChatId("c6"), 8.0, 0.4)

    def test_release_is_idempotent(self) -> None:
        """release frees one slot once; idle_since moves when the agent holds nothing."""
        s = self.storage
        s.agents.put(_agent("a", limit=2), 0.0)
        s.agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.1)
        s.agents.claim(AgentId("a"), ChatId("c2"), 2.0, 0.2)
        assert s.agents.release(AgentId("a"), ChatId("c1"), 3.0, 0.3)
        load = s.agents.get(AgentId("a"))
        assert load is not None
        assert load.chats == {"c2"} and load.idle_since == 0.0 and load.tiebreak == 0.3
        assert not s.agents.release(AgentId("a"), ChatId("c1"), 4.0, 0.4)
        assert s.agents.get(AgentId("a")) == load
        assert s.agents.release(AgentId("a"), ChatId("c2"), 5.0, 0.5)
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == frozenset() and load.idle_since == 5.0
        assert not s.agents.release(AgentId("a"), ChatId("c2"), 6.0, 0.6)
        assert not s.agents.release(AgentId("ghost"), ChatId("c2"), 6.0, 0.6)

    def test_set_inactive_moves_between_counted_and_uncounted(self) -> None:
        """An inactive chat stops counting toward the limit; both moves are idempotent."""
        s = self.storage
        s.agents.put(_agent("a", limit=1), 0.0)
        assert s.agents.claim(AgentId("a"), ChatId("c1"), 1.0, 0.1)
        assert not s.agents.claim(AgentId("a"), ChatId("c2"), 1.0, 0.1)
        s.agents.set_inactive(AgentId("a"), ChatId("c1"), True)
        s.agents.set_inactive(AgentId("a"), ChatId("c1"), True)
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == frozenset() and load.inactive == {"c1"}
        assert s.agents.census("").eligible == 1
        assert s.agents.claim(AgentId("a"), ChatId("c1"), 2.0, 0.2)  # held (inactive): True
        assert s.agents.claim(AgentId("a"), ChatId("c2"), 2.0, 0.2)
        s.agents.set_inactive(AgentId("a"), ChatId("c1"), False)  # back over: allowed
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c1", "c2"} and load.inactive == frozenset()
        s.agents.set_inactive(AgentId("a"), ChatId("c1"), True)
        assert s.agents.release(AgentId("a"), ChatId("c1"), 3.0, 0.3)
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c2"} and load.inactive == frozenset()
        s.agents.set_inactive(AgentId("ghost"), ChatId("c1"), True)  # unknown: no error

    def test_census_counts(self) -> None:
        """census agrees with the agents' statuses and loads, per group and for ``""``."""
        s = self.storage
        s.agents.put(_agent("on1", groups=["g"], limit=2), 0.0)
        s.agents.put(_agent("on2", groups=["g", "h"], limit=1), 0.0)
        s.agents.put(_agent("busy", groups=["g"], status=AgentStatus.BUSY), 0.0)
        s.agents.put(_agent("away", groups=["h"], status=AgentStatus.AWAY), 0.0)
        s.agents.put(_agent("off", groups=["g"], status=AgentStatus.OFFLINE), 0.0)
        s.agents.put(_agent("zero", groups=["g"], limit=0), 0.0)
        s.agents.claim(AgentId("on2"), ChatId("c1"), 1.0, 0.0)
        s.agents.claim(AgentId("on1"), ChatId("c2"), 1.0, 0.0)
        assert s.agents.census("g") == Census(
            eligible=1, full=2, busy=1, away=0, offline=1, capacity=3, load=2
        )
        assert s.agents.census("h") == Census(eligible=0, full=1, away=1, capacity=1, load=1)
        assert s.agents.census("") == _census_of(s.agents.list())
        assert s.agents.census("unknown") == Census()
        s.agents.release(AgentId("on2"), ChatId("c1"), 2.0, 0.0)
        s.agents.put(_agent("busy", groups=["h"], status=AgentStatus.ONLINE), 2.0)
        for group in ("g", "h", ""):
            assert s.agents.census(group) == _census_of(s.agents.list(group)), group

    def test_claim_ranked_agrees_with_rank_scan(self) -> None:
        """For every built-in ranking, the ranked claim picks what rank_scan picks."""
        for ranking in BUILTIN_RANKINGS:
            self._rank_scenario(ranking, f"g-{ranking.name}-{len(ranking.keys)}")

    def _rank_scenario(self, ranking: Ranking, group: str) -> None:
        s = self.storage
        rng = random.Random(f"{ranking}")
        ids: list[AgentId] = []
        for i in range(14):
            aid = AgentId(f"{group}/agent-{i:02d}")
            ids.append(aid)
            groups = [group] if i % 5 else [group, group + "-other"]
            agent = _agent(
                aid,
                groups=groups,
                limit=rng.choice([0, 1, 2, 2, 3]),
                tier=rng.choice([0, 1, 2]),
                order=rng.choice([1, 2, 3]),
                status=rng.choice([AgentStatus.ONLINE] * 4 + [AgentStatus.AWAY]),
            )
            s.agents.put(agent, rng.choice([0.0, 1.0, 2.0]), [], rng.choice([0.25, 0.5]))
        s.agents.put(_agent(f"{group}/outsider", groups=["elsewhere"]), 0.0)
        held: list[tuple[AgentId, ChatId]] = []
        for step in range(70):
            op = rng.random()
            now = float(rng.choice([3, 4, 5, step]))
            tiebreak = rng.choice([0.125, 0.75, rng.random()])
            if op < 0.6:
                excluded = frozenset(rng.sample(ids, rng.randint(0, 3)))
                loads = [
                    ld
                    for ld in s.agents.list(group)
                    if ld.agent.status is AgentStatus.ONLINE
                    and ld.free > 0
                    and ld.agent.id not in excluded
                ]
                best = rank_scan(loads, ranking)
                chat_id = ChatId(f"{group}/chat-{step}")
                got = s.agents.claim_ranked(group, ranking, chat_id, excluded, now, tiebreak)
                expected = None if best is None else best.agent.id
                assert got == expected, (ranking, step, got, expected)
                if got is not None:
                    held.append((got, chat_id))
                    load = s.agents.get(got)
                    assert load is not None and chat_id in load.chats
                    assert load.last_assigned_at == now and load.tiebreak == tiebreak
            elif op < 0.9 and held:
                aid, chat_id = held.pop(rng.randrange(len(held)))
                assert s.agents.release(aid, chat_id, now, tiebreak)
            else:
                aid = rng.choice(ids)
                current = s.agents.get(aid)
                assert current is not None
                status = (
                    AgentStatus.AWAY
                    if current.agent.status is AgentStatus.ONLINE
                    else AgentStatus.ONLINE
                )
                agent = Agent(
                    id=aid,
                    display_name=current.agent.display_name,
                    skill_groups=current.agent.skill_groups,
                    reception_limit=current.agent.reception_limit,
                    tier=current.agent.tier,
                    account_order=current.agent.account_order,
                    status=status,
                )
                s.agents.put(agent, now, [], tiebreak)
            assert s.agents.census(group) == _census_of(s.agents.list(group))

    def test_claim_ranked_respects_group_exclusions_and_limits(self) -> None:
        """Only ONLINE agents of the group below their limit and not excluded are picked."""
        s = self.storage
        s.agents.put(_agent("a", groups=["g"], limit=1, order=1), 0.0)
        s.agents.put(_agent("b", groups=["g"], limit=1, order=2), 0.0)
        s.agents.put(_agent("c", groups=["other"], limit=5, order=0), 0.0)
        s.agents.put(_agent("d", groups=["g"], status=AgentStatus.BUSY, order=0), 0.0)
        none: frozenset[AgentId] = frozenset()
        assert s.agents.claim_ranked("g", ROUND_ROBIN, ChatId("x1"), none, 1.0, 0.0) == "a"
        assert (
            s.agents.claim_ranked("g", ROUND_ROBIN, ChatId("x2"), frozenset({AgentId("b")}), 2.0, 0)
            is None
        )
        assert s.agents.claim_ranked("g", ROUND_ROBIN, ChatId("x3"), none, 3.0, 0.0) == "b"
        assert s.agents.claim_ranked("g", ROUND_ROBIN, ChatId("x4"), none, 4.0, 0.0) is None
        assert s.agents.claim_ranked("nobody", LEAST_BUSY, ChatId("x5"), none, 4.0, 0.0) is None
        assert s.agents.claim_ranked("", LEAST_BUSY, ChatId("x6"), none, 4.0, 0.0) == "c"

    def test_concurrent_ranked_claims_never_exceed_limits(self) -> None:
        """16 threads claiming slots of 5 agents of limit 3: exactly 15 claims, none over."""
        s = self.storage
        for i in range(5):
            s.agents.put(_agent(f"a{i}", groups=["g"], limit=3, order=i), 0.0)
        rankings = (ROUND_ROBIN, LEAST_BUSY, SATURATION_RANDOM)

        def work(i: int) -> list[tuple[AgentId, ChatId]]:
            got: list[tuple[AgentId, ChatId]] = []
            for k in range(4):
                chat_id = ChatId(f"t{i}-{k}")
                aid = s.agents.claim_ranked(
                    "g", rankings[(i + k) % 3], chat_id, frozenset(), float(k), random.random()
                )
                if aid is not None:
                    got.append((aid, chat_id))
            return got

        claimed = [pair for chunk in _threads(self.threads, work) for pair in chunk]
        assert len(claimed) == 15
        loads = s.agents.list("g")
        assert all(ld.active == 3 for ld in loads)
        held = Counter(c for ld in loads for c in ld.chats)
        assert all(n == 1 for n in held.values()) and len(held) == 15
        assert {(ld.agent.id, c) for ld in loads for c in ld.chats} == set(claimed)
        assert s.agents.census("g") == Census(full=5, capacity=15, load=15)

    def test_concurrent_checked_claims_never_exceed_limit(self) -> None:
        """Many threads claiming one agent of limit 3: exactly 3 succeed."""
        s = self.storage
        s.agents.put(_agent("a", limit=3), 0.0)
        results = _threads(
            self.threads, lambda i: s.agents.claim(AgentId("a"), ChatId(f"c{i}"), 1.0, 0.5)
        )
        assert results.count(True) == 3
        load = s.agents.get(AgentId("a"))
        assert load is not None and load.active == 3

    def test_concurrent_claims_and_releases_keep_limits_at_every_moment(self) -> None:
        """Claims and releases interleaved: a watcher never sees an agent over its limit."""
        s = self.storage
        for i in range(4):
            s.agents.put(_agent(f"a{i}", groups=["g"], limit=2, order=i), 0.0)
        stop = threading.Event()
        violations: list[str] = []

        def watch() -> None:
            while not stop.is_set():
                for ld in s.agents.list("g"):
                    if ld.active > ld.agent.reception_limit:
                        violations.append(f"{ld.agent.id}: {ld.active}")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def work(i: int) -> int:
            n = 0
            for k in range(12):
                chat_id = ChatId(f"w{i}-{k}")
                aid = s.agents.claim_ranked(
                    "g", LEAST_BUSY, chat_id, frozenset(), float(k), random.random()
                )
                if aid is not None:
                    n += 1
                    assert s.agents.release(aid, chat_id, float(k), random.random())
                    assert not s.agents.release(aid, chat_id, float(k), random.random())
            return n

        try:
            total = sum(_threads(min(self.threads, 8), work))
        finally:
            stop.set()
            watcher.join(10)
        assert not violations, violations[:5]
        assert total > 0
        assert all(ld.active == 0 for ld in s.agents.list("g"))
        assert s.agents.census("g") == Census(eligible=4, capacity=8, load=0)

    # chats ---------------------------------------------------------------------

    def test_chat_create_get_round_trip(self) -> None:
        """Every field of a chat survives the store exactly; a second create conflicts."""
        s = self.storage
        assert s.chats.get(ChatId("nope")) is None
        chat = _rich_chat("c:{1}")
        s.chats.create(chat, [_event(1, chat.id, 1)])
        assert s.chats.get(chat.id) == chat
        with _raises(ConflictError):
            s.chats.create(_chat("c:{1}"), [_event(2)])
        assert s.chats.get(chat.id) == chat
        assert s.outbox.pending() == 1

    def test_chat_replace_is_compare_and_set_with_events_and_sticky(self) -> None:
        """replace: CAS on version; a lost race changes nothing and appends no events."""
        s = self.storage
        v0 = _chat("c1", customer=CustomerInfo(partner_id="u1"))
        s.chats.create(v0)
        v1 = Chat(**{**_fields(v0), "state": ChatState.ACTIVE, "agent_id": "ann", "version": 1})
        sticky = Sticky("u1", AgentId("ann"), 5.0, "closed")
        s.chats.replace(v1, 0, [_event(1, "c1", 1), _event(2, "c1", 2)], sticky)
        assert s.chats.get(ChatId("c1")) == v1
        assert s.chats.sticky("u1") == sticky
        assert s.outbox.pending() == 2
        stale = Chat(**{**_fields(v0), "state": ChatState.ENDED, "version": 1})
        with _raises(ConflictError):
            s.chats.replace(stale, 0, [_event(3)], Sticky("u1", AgentId("bob"), 6.0, "closed"))
        assert s.chats.get(ChatId("c1")) == v1
        assert s.chats.sticky("u1") == sticky
        assert s.outbox.pending() == 2
        with _raises(NotFoundError):
            s.chats.replace(_chat("ghost", version=1), 0, [_event(4)])
        assert s.chats.get(ChatId("ghost")) is None
        assert s.outbox.pending() == 2
        assert s.chats.sticky("nobody") is None

    def test_append_message_is_compare_and_set(self) -> None:
        """A message is stored with the chat's new version, in order; stale appends nothing."""
        s = self.storage
        v0 = _chat("c1")
        s.chats.create(v0)
        m1 = Message(MessageId("m1"), ChatId("c1"), MessageRole.CUSTOMER, "u", "hi\n'; --", 1.5)
        v1 = Chat(**{**_fields(v0), "last_customer_message_at": 1.5, "version": 1})
        s.chats.append_message(m1, v1, 0, [_event(1, "c1", 1)])
        m2 = Message(
            MessageId("m2"), ChatId("c1"), MessageRole.AGENT, "ann", "{ok}", 2.5, frozenset({"x"})
        )
        v2 = Chat(**{**_fields(v1), "agent_replied": True, "version": 2})
        sticky = Sticky("p-c1", AgentId("ann"), 2.5, "offline")
        s.chats.append_message(m2, v2, 1, [_event(2, "c1", 2)], sticky)
        assert s.chats.sticky("p-c1") == sticky
        with _raises(ConflictError):
            s.chats.append_message(
                Message(MessageId("m3"), ChatId("c1"), MessageRole.CUSTOMER, "u", "late", 3.0),
                Chat(**{**_fields(v1), "version": 2}),
                1,
                [_event(3)],
                Sticky("p-c1", AgentId("bob"), 3.0, "offline"),
            )
        assert s.chats.sticky("p-c1") == sticky
        with _raises(NotFoundError):
            s.chats.append_message(
                Message(MessageId("m4"), ChatId("ghost"), MessageRole.CUSTOMER, "u", "x", 3.0),
                _chat("ghost", version=1),
                0,
                [_event(4)],
            )
        assert s.chats.messages(ChatId("c1")) == [m1, m2]
        assert s.chats.messages(ChatId("ghost")) == []
        assert s.chats.get(ChatId("c1")) == v2
        assert s.outbox.pending() == 2

    def test_concurrent_chat_replace_one_winner(self) -> None:
        """Concurrent compare-and-sets from one version: exactly one wins, one event."""
        s = self.storage
        v0 = _chat("c1")
        s.chats.create(v0)

        def replace(i: int) -> bool:
            new = Chat(**{**_fields(v0), "agent_id": f"a{i}", "version": 1})
            try:
                s.chats.replace(new, 0, [_event(i, "c1", 1)])
            except ConflictError:
                return False
            return True

        results = _threads(self.threads, replace)
        assert results.count(True) == 1
        stored = s.chats.get(ChatId("c1"))
        assert stored is not None and stored.agent_id == f"a{results.index(True)}"
        assert s.outbox.pending() == 1

    def test_chat_list_filters_in_creation_order(self) -> None:
        """list filters by state and agent and keeps creation order."""
        s = self.storage
        for i, (state, agent) in enumerate(
            [
                (ChatState.QUEUED, None),
                (ChatState.ACTIVE, "ann"),
                (ChatState.ACTIVE, "bob"),
                (ChatState.ENDED, "ann"),
                (ChatState.ACTIVE, "ann"),
            ]
        ):
            s.chats.create(_chat(f"c{9 - i}", state=state, agent_id=agent))
        assert [c.id for c in s.chats.list()] == ["c9", "c8", "c7", "c6", "c5"]
        assert [c.id for c in s.chats.list(ChatState.ACTIVE)] == ["c8", "c7", "c5"]
        assert [c.id for c in s.chats.list(None, AgentId("ann"))] == ["c8", "c6", "c5"]
        assert [c.id for c in s.chats.list(ChatState.ACTIVE, AgentId("ann"))] == ["c8", "c5"]
        # a state change moves a chat between filters
        c9 = s.chats.get(ChatId("c9"))
        assert c9 is not None
        s.chats.replace(
            Chat(**{**_fields(c9), "state": ChatState.ACTIVE, "agent_id": "ann", "version": 1}), 0
        )
        assert [c.id for c in s.chats.list(ChatState.ACTIVE, AgentId("ann"))] == [
            "c9",
            "c8",
            "c5",
        ]
        assert [c.id for c in s.chats.list(ChatState.QUEUED)] == []

    # queues --------------------------------------------------------------------

    def test_queue_order_idempotent_push_and_remove(self) -> None:
        """Ordered by score then insertion; push keeps the first position; remove idempotent."""
        s = self.storage
        q = "queue/g"
        s.queues.push(q, ChatId("c1"), 10.0)
        s.queues.push(q, ChatId("c2"), 5.0)
        s.queues.push(q, ChatId("c3"), 10.0)
        s.queues.push(q, ChatId("c0"), 10.0)  # ties keep insertion order, not id order
        s.queues.push(q, ChatId("c1"), 1.0)  # already queued: keeps its first position
        assert s.queues.peek(q, 10) == [("c2", 5.0), ("c1", 10.0), ("c3", 10.0), ("c0", 10.0)]
        assert s.queues.peek(q, 2) == [("c2", 5.0), ("c1", 10.0)]
        assert s.queues.peek(q, 0) == []
        assert s.queues.length(q) == 4
        assert [s.queues.position(q, ChatId(c)) for c in ("c2", "c1", "c3", "c0")] == [0, 1, 2, 3]
        assert s.queues.position(q, ChatId("nope")) is None
        assert s.queues.remove(q, ChatId("c1"))
        assert not s.queues.remove(q, ChatId("c1"))
        assert s.queues.position(q, ChatId("c3")) == 1
        assert s.queues.length(q) == 3
        assert s.queues.length("queue/other") == 0
        assert s.queues.peek("queue/other", 5) == []
        assert not s.queues.remove("queue/other", ChatId("c2"))
        s.queues.push(q, ChatId("c1"), 10.0)  # re-pushed after removal: goes to the back
        assert [c for c, _ in s.queues.peek(q, 10)] == ["c2", "c3", "c0", "c1"]
        s.queues.push(q, ChatId("neg"), -1e9)
        s.queues.push(q, ChatId("frac"), 0.1 + 0.2)
        assert s.queues.peek(q, 2) == [("neg", -1e9), ("frac", 0.1 + 0.2)]

    def test_concurrent_push_keeps_one_entry(self) -> None:
        """Concurrent pushes of one chat leave one entry."""
        s = self.storage
        _threads(self.threads, lambda i: s.queues.push("q", ChatId("c"), float(i)))
        assert s.queues.length("q") == 1

    # outbox --------------------------------------------------------------------

    def test_outbox_claim_lease_ack(self) -> None:
        """Oldest first; a live lease hides an entry; an expired one returns it; ack is final."""
        s = self.storage
        events = [_event(i, f"c{i}", i) for i in range(5)]
        s.outbox.append(events)
        assert s.outbox.pending() == 5
        first = s.outbox.claim("w1", 2, 100.0, 30.0)
        assert [e.event for e in first] == events[:2]
        assert [e.deliveries for e in first] == [1, 1]
        second = s.outbox.claim("w2", 10, 101.0, 30.0)
        assert [e.event for e in second] == events[2:]
        assert s.outbox.claim("w3", 10, 129.0, 30.0) == []
        s.outbox.ack([first[0].id])
        s.outbox.ack([first[0].id])  # idempotent
        assert s.outbox.pending() == 4
        again = s.outbox.claim("w3", 10, 130.0, 30.0)  # w1's lease expired at 130
        assert [e.event for e in again] == [events[1]]
        assert again[0].deliveries == 2 and again[0].id == first[1].id
        s.outbox.ack([e.id for e in again + second])
        assert s.outbox.pending() == 0
        assert s.outbox.claim("w1", 10, 1e9, 30.0) == []
        s.outbox.ack([])

    def test_outbox_leases_never_give_one_entry_to_two_consumers(self) -> None:
        """Concurrent consumers with live leases share the entries without overlap."""
        s = self.storage
        total = 120
        s.outbox.append([_event(i) for i in range(total)])

        def consume(i: int) -> list[str]:
            got: list[str] = []
            while True:
                batch: list[OutboxEntry] = s.outbox.claim(f"w{i}", 3, 1000.0, 3600.0)
                if not batch:
                    return got
                got.extend(e.event.id for e in batch)

        seen = [eid for chunk in _threads(min(self.threads, 8), consume) for eid in chunk]
        assert len(seen) == total and len(set(seen)) == total
        assert s.outbox.pending() == total

    def test_outbox_event_round_trip(self) -> None:
        """An event claimed from the outbox equals the event appended."""
        s = self.storage
        event = Event(
            id="e:{1}",
            type="chat.started",
            timestamp=1_700_000_000.123456,
            data={"text": "'; DROP TABLE outbox; --\n", "n": [1, 2.5, None], "ok": True},
            chat_id="c:{1}",
            seq=3,
            schema=2,
        )
        s.outbox.append([event])
        (entry,) = s.outbox.claim("w", 5, 0.0, 10.0)
        assert entry.event == event

    # timers --------------------------------------------------------------------

    def test_timers_schedule_claim_cancel(self) -> None:
        """Due timers are leased earliest first; a lease hides them until it ends."""
        s = self.storage
        t1 = Timer("k1", 10.0, "c1", "auto_transfer", 1, {"agent_id": "ann"})
        t2 = Timer("k2", 5.0, "c2", "queue_wait", 2, {"queue": "queue/g"})
        t3 = Timer("k3", 10.0, "c3", "x")
        t4 = Timer("k4", 50.0, "c4", "x")
        for t in (t1, t2, t3, t4):
            s.timers.schedule(t)
        assert s.timers.claim_due(4.0, 10, 30.0) == []
        assert s.timers.claim_due(10.0, 2, 30.0) == [t2, t1]
        assert s.timers.claim_due(10.0, 10, 30.0) == [t3]
        assert s.timers.claim_due(39.0, 10, 30.0) == []  # leased until 40
        leased = s.timers.claim_due(40.0, 10, 30.0)
        assert sorted(t.key for t in leased) == ["k1", "k2", "k3"]
        assert all(t.due_at == 40.0 for t in leased)
        s.timers.cancel("k1", 40.0)  # not due at 40 any more (re-leased to 70): survives
        s.timers.cancel("k2", 70.0)  # still due at 70: removed
        s.timers.cancel("k2", 70.0)
        s.timers.cancel("k3")
        s.timers.cancel("k3")
        s.timers.cancel("missing")
        due = s.timers.claim_due(1000.0, 10, 30.0)
        assert [t.key for t in due] == ["k4", "k1"]
        assert due[0] == t4 and due[1] == Timer("k1", 70.0, "c1", "auto_transfer", 1, t1.payload)

    def test_timer_reschedule_replaces(self) -> None:
        """Scheduling a key again replaces its deadline."""
        s = self.storage
        s.timers.schedule(Timer("k", 10.0, "c", "x", 1))
        s.timers.schedule(Timer("k", 20.0, "c", "x", 2))
        assert s.timers.claim_due(15.0, 10, 5.0) == []
        assert s.timers.claim_due(20.0, 10, 5.0) == [Timer("k", 20.0, "c", "x", 2)]
        s.timers.schedule(Timer("k", 30.0, "c", "x", 3))
        s.timers.cancel("k", 25.0)  # the lease's deadline: the rescheduled timer survives
        assert s.timers.claim_due(30.0, 10, 5.0) == [Timer("k", 30.0, "c", "x", 3)]

    def test_concurrent_timer_claims_fire_each_timer_once(self) -> None:
        """Workers claiming due timers together never get the same timer."""
        s = self.storage
        for i in range(60):
            s.timers.schedule(Timer(f"k{i}", float(i % 7), f"c{i}", "x"))

        def claim(i: int) -> list[str]:
            got: list[str] = []
            while True:
                batch = s.timers.claim_due(100.0, 4, 1000.0)
                if not batch:
                    return got
                got.extend(t.key for t in batch)

        keys = [k for chunk in _threads(min(self.threads, 8), claim) for k in chunk]
        assert sorted(keys) == sorted(f"k{i}" for i in range(60))

    # counters ------------------------------------------------------------------

    def test_rate_counter_sliding_window(self) -> None:
        """hit counts the hits of its key within the window."""
        s = self.storage
        assert s.counters.hit("k", 0.0, 10.0) == 1
        assert s.counters.hit("k", 5.0, 10.0) == 2
        assert s.counters.hit("other", 5.0, 10.0) == 1
        assert s.counters.hit("k", 9.0, 10.0) == 3
        assert s.counters.hit("k", 10.0, 10.0) == 3  # the hit at 0 left the window
        assert s.counters.hit("k", 30.0, 10.0) == 1

    def test_concurrent_hits_are_all_counted(self) -> None:
        """Concurrent hits are counted once each."""
        s = self.storage
        _threads(self.threads, lambda i: s.counters.hit("k", 1.0, 100.0))
        assert s.counters.hit("k", 2.0, 100.0) == self.threads + 1

    # tenants and hostile ids ---------------------------------------------------

    def _fill(self, s: Storage, tag: str, group: str = "g", ident: str = "x") -> None:
        s.customers.create(Customer(partner_id=ident, name=tag), [_event(f"{tag}-cust")])
        s.agents.put(_agent(ident, groups=[group], limit=2), 1.0, [_event(f"{tag}-agent")])
        s.chats.create(_chat(ident, skill_group=group), [_event(f"{tag}-chat")])
        s.queues.push(f"queue/{group}", ChatId(ident), 1.0)
        s.timers.schedule(Timer(ident, 1.0, ident, tag))
        s.counters.hit(ident, 1.0, 100.0)

    def _check(self, s: Storage, tag: str, group: str = "g", ident: str = "x") -> None:
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

    def test_tenant_isolation(self) -> None:
        """Two namespaces on one database never see each other's data."""
        pairs = [("a", "b"), ("t", "t:x"), ("{t}", "t"), ("x*", "x"), ("%", "%25")]
        for n, (left_name, right_name) in enumerate(pairs):
            left = self.new_storage(f"/{n}/{left_name}")
            right = self.new_storage(f"/{n}/{right_name}")
            self._fill(left, "left")
            self._fill(right, "right")
            self._check(left, "left")
            self._check(right, "right")
            none: frozenset[AgentId] = frozenset()
            aid = left.agents.claim_ranked("g", ROUND_ROBIN, ChatId("c"), none, 2.0, 0.0)
            assert aid == "x"
            right_load = right.agents.get(AgentId("x"))
            assert right_load is not None and right_load.chats == frozenset()
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
        """Namespaces with separators, wildcards, quotes and SQL stay apart."""
        stores = [self.new_storage(h) for h in HOSTILE_STRINGS]
        for i, s in enumerate(stores):
            self._fill(s, f"tenant{i}")
        for i, s in enumerate(stores):
            self._check(s, f"tenant{i}")

    def test_hostile_ids_are_data(self) -> None:
        """Ids, groups, queue names and keys with metacharacters round-trip as data."""
        s = self.storage
        none: frozenset[AgentId] = frozenset()
        for i, h in enumerate(HOSTILE_STRINGS):
            group = f"grp{h}"
            s.customers.create(Customer(partner_id=h, name=h))
            assert s.customers.get(h) == Customer(partner_id=h, name=h)
            agent = _agent(f"agent{h}", groups=[group, h], limit=1, order=i)
            s.agents.put(agent, 0.0)
            loaded = s.agents.get(agent.id)
            assert loaded is not None and loaded.agent == agent
            aid = s.agents.claim_ranked(group, LEAST_BUSY, ChatId(h), none, 1.0, 0.5)
            assert aid == agent.id
            assert s.agents.claim_ranked(h, LEAST_BUSY, ChatId(h + "2"), none, 1.0, 0.5) is None
            assert s.agents.census(group) == Census(full=1, capacity=1, load=1)
            assert s.agents.release(agent.id, ChatId(h), 2.0, 0.5)
            chat = _chat(h, skill_group=group)
            s.chats.create(chat)
            assert s.chats.get(ChatId(h)) == chat
            message = Message(MessageId(h), ChatId(h), MessageRole.CUSTOMER, h, h, 1.0)
            s.chats.append_message(message, Chat(**{**_fields(chat), "version": 1}), 0)
            assert s.chats.messages(ChatId(h)) == [message]
            s.queues.push(h, ChatId(h), 1.0)
            assert s.queues.peek(h, 5) == [(h, 1.0)]
            assert s.queues.position(h, ChatId(h)) == 0
            s.timers.schedule(Timer(h, 1.0, h, h))
            assert s.counters.hit(h, 1.0, 10.0) == 1
        n = len(HOSTILE_STRINGS)
        assert len(s.agents.list()) == n
        assert len(s.chats.list()) == n
        assert s.agents.census("") == Census(eligible=n, capacity=n)
        assert sorted(t.key for t in s.timers.claim_due(5.0, 100, 1.0)) == sorted(HOSTILE_STRINGS)
        for h in HOSTILE_STRINGS:
            assert s.queues.length(h) == 1
            assert s.queues.remove(h, ChatId(h))


def _fields(chat: Chat) -> dict[str, Any]:
    import attrs

    return attrs.asdict(chat, recurse=False)


# --------------------------------------------------------------------------- async suite


class _LoopThread:
    """An event loop running in a daemon thread; sync code submits coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 120.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class _BridgePort:
    def __init__(self, port: Any, loop: _LoopThread) -> None:
        self._port = port
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._port, name)
        loop = self._loop

        def call(*args: Any, **kwargs: Any) -> Any:
            return loop.run(method(*args, **kwargs))

        return call


class _Bridge:
    """A sync Storage whose every call awaits the async storage on the loop thread."""

    def __init__(self, storage: AsyncStorage, loop: _LoopThread) -> None:
        self.async_storage = storage
        self.namespace = storage.namespace
        for name in ("customers", "agents", "chats", "queues", "outbox", "timers", "counters"):
            setattr(self, name, _BridgePort(getattr(storage, name), loop))


class AsyncStorageContract(StorageContract):
    """The same contract for an async storage face; implement :meth:`make_async_storage`.

    Each test runs an event loop in a thread; every port call of the sync suite is awaited
    on it (from many threads at once in the concurrency tests), and the async-only tests use
    ``asyncio.gather``.
    """

    def make_async_storage(self, namespace: str) -> AsyncStorage:
        """Hook: an async storage for ``namespace`` (called on the event loop's thread)."""
        raise NotImplementedError(
            "subclass AsyncStorageContract and implement make_async_storage()"
        )

    async def aclose_async_storage(self, storage: AsyncStorage) -> None:
        """Hook: release what :meth:`make_async_storage` opened (default: ``aclose()``)."""
        aclose = getattr(storage, "aclose", None)
        if callable(aclose):
            await aclose()

    def setup_method(self, method: Any = None) -> None:
        """xunit hook: start the event loop thread, then the sync setup."""
        self._loop_thread = _LoopThread()
        super().setup_method(method)

    def teardown_method(self, method: Any = None) -> None:
        """xunit hook: close the storages, then stop the loop."""
        try:
            super().teardown_method(method)
        finally:
            self._loop_thread.stop()

    def make_storage(self, namespace: str) -> Storage:
        """A sync bridge over :meth:`make_async_storage` (do not override)."""

        async def make() -> AsyncStorage:
            return self.make_async_storage(namespace)

        storage = self._loop_thread.run(make())
        return cast(Storage, _Bridge(storage, self._loop_thread))

    def close_storage(self, storage: Storage) -> None:
        """Closes the bridged async storage (do not override)."""
        bridge = cast(_Bridge, storage)
        self._loop_thread.run(self.aclose_async_storage(bridge.async_storage))

    def run_async(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on this test's event loop and return its result."""
        return self._loop_thread.run(coro)

    @property
    def async_storage(self) -> AsyncStorage:
        """The async storage behind ``self.storage``."""
        return cast(_Bridge, self.storage).async_storage

    def test_async_gathered_ranked_claims_never_exceed_limits(self) -> None:
        """Ranked claims gathered on one loop: exactly the capacity, nobody over the limit."""
        s = self.async_storage

        async def scenario() -> list[AgentId | None]:
            for i in range(5):
                await s.agents.put(_agent(f"a{i}", groups=["g"], limit=3, order=i), 0.0)
            return await asyncio.gather(
                *(
                    s.agents.claim_ranked(
                        "g", SATURATION_RANDOM, ChatId(f"c{i}"), frozenset(), 1.0, random.random()
                    )
                    for i in range(40)
                )
            )

        results = self.run_async(scenario())
        assert sum(r is not None for r in results) == 15
        loads = self.run_async(s.agents.list("g"))
        assert all(ld.active == 3 for ld in loads)

    def test_async_gathered_creates_and_cas(self) -> None:
        """Gathered creates and compare-and-sets: one winner each."""
        s = self.async_storage

        async def create(i: int) -> bool:
            try:
                await s.customers.create(Customer(partner_id="p", name=str(i)))
            except ConflictError:
                return False
            return True

        async def replace(i: int, base: Chat) -> bool:
            try:
                await s.chats.replace(
                    Chat(**{**_fields(base), "agent_id": f"a{i}", "version": 1}), 0
                )
            except ConflictError:
                return False
            return True

        async def scenario() -> tuple[list[bool], list[bool]]:
            created = await asyncio.gather(*(create(i) for i in range(20)))
            base = _chat("c")
            await s.chats.create(base)
            replaced = await asyncio.gather(*(replace(i, base) for i in range(20)))
            return list(created), list(replaced)

        created, replaced = self.run_async(scenario())
        assert created.count(True) == 1 and replaced.count(True) == 1

    def test_async_gathered_outbox_claims_do_not_overlap(self) -> None:
        """Gathered outbox claims with live leases never share an entry."""
        s = self.async_storage

        async def scenario() -> list[str]:
            await s.outbox.append([_event(i) for i in range(50)])
            batches = await asyncio.gather(
                *(s.outbox.claim(f"w{i}", 4, 10.0, 100.0) for i in range(20))
            )
            return [e.event.id for batch in batches for e in batch]

        ids = self.run_async(scenario())
        assert len(ids) == len(set(ids)) == 50


# --------------------------------------------------------------------------- processes


def _proc_worker(
    factory: Callable[[], Storage],
    index: int,
    barrier: Any,
    results: Any,
    rounds: int,
) -> None:
    storage = factory()
    claimed: list[tuple[str, str]] = []
    created = False
    outbox_ids: list[str] = []
    try:
        barrier.wait(60)
        try:
            storage.customers.create(Customer(partner_id="shared", name=f"p{index}"))
            created = True
        except ConflictError:
            created = False
        for k in range(rounds):
            chat_id = ChatId(f"p{index}-{k}")
            aid = storage.agents.claim_ranked(
                "g", LEAST_BUSY, chat_id, frozenset(), float(k), random.random()
            )
            if aid is not None:
                claimed.append((aid, chat_id))
        while True:
            batch = storage.outbox.claim(f"proc{index}", 5, 1000.0, 3600.0)
            if not batch:
                break
            outbox_ids.extend(e.event.id for e in batch)
        results.put((index, created, claimed, outbox_ids, None))
    except BaseException as exc:  # report, never hang the parent
        results.put((index, created, claimed, outbox_ids, repr(exc)))
    finally:
        close = getattr(storage, "close", None)
        if callable(close):
            close()


class ProcessStorageContract:
    """Process-level atomicity; mix into a :class:`StorageContract` subclass.

    Implement :meth:`storage_factory`: a picklable callable (e.g. a ``functools.partial`` of
    the storage class) that a spawned child process calls to open ``namespace``.
    """

    processes: int = 4

    def storage_factory(self, namespace: str) -> Callable[[], Storage]:
        """Hook: a picklable callable opening ``namespace`` on the shared database."""
        raise NotImplementedError("implement storage_factory() for the process contract")

    def test_processes_share_slots_records_and_outbox_atomically(self) -> None:
        """Spawned processes: one customer record, claims exactly at capacity, no shared
        outbox entry."""
        namespace = f"ctp{uuid.uuid4().hex[:12]}:{{proc}}"
        factory = self.storage_factory(namespace)
        storage = factory()
        try:
            for i in range(5):
                storage.agents.put(_agent(f"a{i}", groups=["g"], limit=3, order=i), 0.0)
            storage.outbox.append([_event(i) for i in range(100)])
            ctx = multiprocessing.get_context("spawn")
            barrier = ctx.Barrier(self.processes)
            results = ctx.Queue()
            procs = [
                ctx.Process(
                    target=_proc_worker, args=(factory, i, barrier, results, 12), daemon=True
                )
                for i in range(self.processes)
            ]
            for p in procs:
                p.start()
            outcomes: list[Any] = []
            deadline = time.monotonic() + 180
            while len(outcomes) < self.processes and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    outcomes.append(results.get(timeout=1))
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
            assert len(outcomes) == self.processes, "a worker process did not report"
            errors = [o[4] for o in outcomes if o[4]]
            assert not errors, errors
            assert sum(o[1] for o in outcomes) == 1
            claimed = [pair for o in outcomes for pair in o[2]]
            assert len(claimed) == 15
            loads = storage.agents.list("g")
            assert all(ld.active == 3 for ld in loads)
            assert {(ld.agent.id, c) for ld in loads for c in ld.chats} == set(claimed)
            delivered = [eid for o in outcomes for eid in o[3]]
            assert len(delivered) == len(set(delivered)) == 100
        finally:
            close = getattr(storage, "close", None)
            if callable(close):
                close()
