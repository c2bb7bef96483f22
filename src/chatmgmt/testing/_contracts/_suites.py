"""The whole-storage suites: :class:`StorageContract` (every sync port and the unit of work),
:class:`AsyncStorageContract` (the same through an async face) and
:class:`ProcessStorageContract` (atomicity across processes)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from ...assignment import LEAST_BUSY, SATURATION_RANDOM
from ...errors import ConflictError, PreconditionFailed
from ...model import AgentId, ChatId, ChatState, Customer
from ...ports import PICKED, Applied, AsyncStorage, Change, RankedClaim, Storage
from ._support import _Awaiting, _LoopThread, _OnLoopThread, agent, chat, check_records, event
from .agents import AgentStoreContract
from .chats import ChatStoreContract
from .counters import RateCounterContract
from .customers import CustomerStoreContract
from .outbox import OutboxContract
from .queues import QueueStoreContract
from .reports import UnitReportsContract
from .retention import RetentionContract
from .tenancy import TenancyContract
from .timers import TimerStoreContract
from .unit_of_work import UnitOfWorkContract

__all__ = ["AsyncStorageContract", "ProcessStorageContract", "StorageContract"]

_T = TypeVar("_T")


class StorageContract(
    CustomerStoreContract,
    AgentStoreContract,
    ChatStoreContract,
    QueueStoreContract,
    OutboxContract,
    TimerStoreContract,
    RateCounterContract,
    RetentionContract,
    UnitOfWorkContract,
    UnitReportsContract,
    TenancyContract,
):
    """Every sync storage contract at once; subclass it and implement ``make_storage``.

    The per-port suites (:class:`CustomerStoreContract`, :class:`AgentStoreContract`,
    :class:`ChatStoreContract`, :class:`QueueStoreContract`, :class:`OutboxContract`,
    :class:`TimerStoreContract`, :class:`RateCounterContract`, :class:`RetentionContract`,
    :class:`UnitOfWorkContract`, :class:`UnitReportsContract`, :class:`TenancyContract`) can be
    subclassed alone as well.
    """


# --------------------------------------------------------------------------- async


class _Bridge:
    """A sync Storage whose every call awaits the async storage on the loop thread."""

    def __init__(self, storage: AsyncStorage, loop: _LoopThread) -> None:
        self.async_storage = storage
        self.namespace = storage.namespace
        self.reports_census = getattr(storage, "reports_census", False)
        self._loop = loop
        for name in ("customers", "agents", "chats", "queues", "outbox", "timers", "counters"):
            setattr(self, name, _Awaiting(getattr(storage, name), loop))

    def apply(self, change: Change) -> Applied:
        return self._loop.run(self.async_storage.apply(change))


class AsyncStorageContract(_OnLoopThread, StorageContract):
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
        """Ranked claims gathered on one loop: exactly the capacity of chats become ACTIVE,
        the rest are refused ``no_agent``; the chat records agree."""
        s = self.async_storage

        async def one(i: int) -> AgentId | None:
            new = chat(f"c{i}", state=ChatState.ACTIVE, agent_id=PICKED)
            change = Change(
                new.id,
                None,
                1.0,
                chat=new,
                claim=RankedClaim("g", SATURATION_RANDOM),
                tiebreak=random.random(),
            )
            try:
                return (await s.apply(change)).agent_id
            except PreconditionFailed as exc:
                assert exc.reason == "no_agent", exc
                return None

        async def scenario() -> list[AgentId | None]:
            for i in range(5):
                await s.agents.put(agent(f"a{i}", limit=3, order=i), 0.0)
            return list(await asyncio.gather(*(one(i) for i in range(40))))

        results = self.run_async(scenario())
        assert sum(r is not None for r in results) == 15
        check_records(self.storage)
        assert len(self.storage.chats.list(ChatState.ACTIVE)) == 15

    def test_async_gathered_creates_and_compare_and_sets(self) -> None:
        """Gathered creates and compare-and-sets: one winner each (customers, chats,
        agents)."""
        s = self.async_storage

        async def create_customer(i: int) -> bool:
            try:
                await s.customers.create(Customer(partner_id="p", name=str(i)))
            except ConflictError:
                return False
            return True

        async def create_chat(i: int) -> bool:
            try:
                await s.apply(Change(ChatId("c"), None, 1.0, chat=chat("c", priority=i)))
            except PreconditionFailed as exc:
                assert exc.reason == "exists", exc
                return False
            return True

        async def replace_chat(i: int) -> bool:
            base = chat("c", version=1, priority=100 + i)
            try:
                await s.apply(Change(ChatId("c"), 0, 1.0, chat=base, events=(event(i, "c", 1),)))
            except PreconditionFailed as exc:
                assert exc.reason == "version", exc
                return False
            return True

        async def put_agent(i: int) -> bool:
            try:
                await s.agents.put(agent("a", limit=i), 1.0, expected_version=1)
            except ConflictError:
                return False
            return True

        async def scenario() -> list[list[bool]]:
            created = await asyncio.gather(*(create_customer(i) for i in range(20)))
            chats = await asyncio.gather(*(create_chat(i) for i in range(20)))
            replaced = await asyncio.gather(*(replace_chat(i) for i in range(20)))
            await s.agents.put(agent("a"), 0.0)
            puts = await asyncio.gather(*(put_agent(i) for i in range(20)))
            return [list(created), list(chats), list(replaced), list(puts)]

        for outcome in self.run_async(scenario()):
            assert outcome.count(True) == 1, outcome
        assert self.storage.outbox.pending() == 1

    def test_async_gathered_outbox_claims_do_not_overlap(self) -> None:
        """Gathered outbox claims with live leases never share an entry."""
        s = self.async_storage

        async def scenario() -> list[str]:
            await s.outbox.append([event(i) for i in range(50)])
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
    """One child process: a customer create race, ranked claims until nobody is free, ends
    and re-opens, compare-and-set increments of one agent, and outbox claims."""
    storage = factory()
    claimed: list[tuple[str, str]] = []
    created = False
    outbox_ids: list[str] = []
    increments = 0
    try:
        barrier.wait(60)
        try:
            storage.customers.create(Customer(partner_id="shared", name=f"p{index}"))
            created = True
        except ConflictError:
            created = False
        for k in range(rounds):
            new = chat(f"p{index}-{k}", state=ChatState.ACTIVE, agent_id=PICKED)
            try:
                applied = storage.apply(
                    Change(
                        new.id,
                        None,
                        float(k),
                        chat=new,
                        claim=RankedClaim("g", LEAST_BUSY),
                        tiebreak=random.random(),
                    )
                )
            except PreconditionFailed as exc:
                if exc.reason != "no_agent":
                    raise
            else:
                assert applied.agent_id is not None
                claimed.append((applied.agent_id, new.id))
            while True:  # one increment of the shared agent's account_order, never lost
                load = storage.agents.get(AgentId("shared"))
                assert load is not None
                bumped = load.agent.account_order + 1
                try:
                    storage.agents.put(
                        agent("shared", groups=["other"], order=bumped),
                        float(k),
                        expected_version=load.version,
                    )
                    increments += 1
                    break
                except ConflictError:
                    pass
        while True:
            batch = storage.outbox.claim(f"proc{index}", 5, 1000.0, 3600.0)
            if not batch:
                break
            outbox_ids.extend(e.event.id for e in batch)
        results.put((index, created, claimed, outbox_ids, increments, None))
    except BaseException as exc:  # report, never hang the parent
        results.put((index, created, claimed, outbox_ids, increments, repr(exc)))
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
        """Spawned processes applying ranked claims on 5 agents of limit 3 at once: exactly
        15 chats become ACTIVE, none over a limit, none held twice (read from the chat
        records); one customer record; no agent update lost; no outbox entry shared."""
        namespace = f"ctp{uuid.uuid4().hex[:12]}:{{proc}}"
        factory = self.storage_factory(namespace)
        storage = factory()
        rounds = 12
        try:
            for i in range(5):
                storage.agents.put(agent(f"a{i}", limit=3, order=i), 0.0)
            storage.agents.put(agent("shared", groups=["other"]), 0.0)
            storage.outbox.append([event(i) for i in range(100)])
            ctx = multiprocessing.get_context("spawn")
            barrier = ctx.Barrier(self.processes)
            results = ctx.Queue()
            procs = [
                ctx.Process(
                    target=_proc_worker, args=(factory, i, barrier, results, rounds), daemon=True
                )
                for i in range(self.processes)
            ]
            for p in procs:
                p.start()
            outcomes: list[Any] = []
            deadline = time.monotonic() + 300
            while len(outcomes) < self.processes and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    outcomes.append(results.get(timeout=1))
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
            assert len(outcomes) == self.processes, "a worker process did not report"
            errors = [o[5] for o in outcomes if o[5]]
            assert not errors, errors
            assert sum(o[1] for o in outcomes) == 1
            claimed = sorted(pair for o in outcomes for pair in o[2])
            assert len(claimed) == 15
            active = storage.chats.list(ChatState.ACTIVE)
            assert sorted((str(c.agent_id), str(c.id)) for c in active) == claimed
            check_records(storage)
            shared = storage.agents.get(AgentId("shared"))
            assert shared is not None
            assert shared.agent.account_order == self.processes * rounds
            assert shared.version == 1 + self.processes * rounds
            delivered = [eid for o in outcomes for eid in o[3]]
            assert len(delivered) == len(set(delivered)) == 100
        finally:
            close = getattr(storage, "close", None)
            if callable(close):
                close()
