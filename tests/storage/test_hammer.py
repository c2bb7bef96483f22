"""Process hammer and kill -9 runs on SQLite, Redis, a 3-master Redis Cluster and PostgreSQL.

Four worker processes run a seeded mix of every chat operation against one shared store while
a sampler reads the stored chat records (with the agents and queue entries, in one consistent
read) every few milliseconds; then the full invariants on the records (``hammer_helpers``).
The kill -9 run SIGKILLs workers at random moments, restarts them, and requires
``reconcile()`` + ``tick()`` to leave zero violations with no chat lost.

Each test also asserts that the run really contended (refused preconditions and version
conflicts seen, chats queued and transferred, agents seen at their limit), so a run that did
nothing cannot pass. Size: ``CHATMGMT_HAMMER_OPS`` operations per worker (CI default 250; the
full size, recorded in docs/deployment.md "Stress runs", is 5000).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatmgmt.storage.redis import RedisStorage
from chatmgmt.storage.sqlite import SQLiteStorage
from storage.hammer_helpers import (
    ALWAYS_ON_SETTINGS,
    SETTINGS,
    Sampler,
    Snapshot,
    check_end,
    hammer_ops,
    hammer_worker,
    postgres_snapshot,
    read_opened,
    read_stats,
    redis_snapshot,
    restore_agents,
    setup_agents,
    sqlite_snapshot,
)
from storage.postgres_helpers import census_kept, postgres_url
from storage.redis_helpers import redis_cluster_url, redis_url

WORKERS = 4


class Backend:
    """A shared store: a factory for the workers, the test's own storage, its snapshot."""

    def __init__(
        self,
        factory: Callable[[], Any],
        snapshot: Callable[[Any], Snapshot],
        cleanup: Callable[[Any], None],
    ) -> None:
        self.factory = factory
        self.storage = factory()
        self._snapshot = snapshot
        self._cleanup = cleanup

    def snapshot(self) -> Snapshot:
        return self._snapshot(self.storage)

    def close(self) -> None:
        self._cleanup(self.storage)


def _sqlite(tmp_path: Path) -> Backend:
    factory = functools.partial(SQLiteStorage, str(tmp_path / "hammer.db"), "hammer")
    return Backend(factory, sqlite_snapshot, lambda s: s.close())


def _redis_cleanup(storage: Any) -> None:
    storage.delete_namespace()
    storage.close()


def _redis(cluster: bool) -> Backend:
    namespace = f"hammer-{uuid.uuid4().hex[:8]}"
    if cluster:
        factory: Callable[[], Any] = functools.partial(
            RedisStorage.cluster, redis_cluster_url(), namespace
        )
    else:
        factory = functools.partial(RedisStorage, redis_url(), namespace)
    return Backend(factory, redis_snapshot, _redis_cleanup)


def _postgres(url: str | None = None) -> Backend:
    from chatmgmt.storage.postgres import PostgresStorage

    namespace = f"hammer-{uuid.uuid4().hex[:8]}"
    factory = functools.partial(PostgresStorage, url or postgres_url(), namespace)
    return Backend(factory, postgres_snapshot, _redis_cleanup)


def _make(kind: str, tmp_path: Path) -> Backend:
    if kind == "sqlite":
        return _sqlite(tmp_path)
    if kind == "postgres":
        return _postgres()
    return _redis(cluster=kind == "redis-cluster")


@pytest.fixture(params=["sqlite", "redis", "redis-cluster", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param in ("sqlite", "postgres"):
        b = _make(request.param, tmp_path)
    else:
        b = _redis(cluster=request.param == "redis-cluster")
    try:
        yield b
    finally:
        b.close()


def _assert_contended(
    tally: Any, refusals: Any, sampler: Sampler, *, always_on: bool = False
) -> None:
    """The run must have exercised the races it claims to survive."""
    assert sum(refusals.values()) > 0, f"no precondition ever refused: {dict(refusals)}"
    waiting = "open.unassigned" if always_on else "open.queued"
    assert tally[waiting] > 0, f"no chat ever waited: {dict(tally)}"
    assert tally["transfer.group"] > 0 and tally["transfer.agent.try"] > 0, dict(tally)
    assert tally["reconcile"] > 0 and tally["tick"] > 0, dict(tally)
    assert tally["limit.1"] > 0 and tally["status.offline"] > 0, dict(tally)
    assert tally["hold"] > 0 and tally["resume"] > 0, dict(tally)
    assert tally["open.bot"] > 0 and tally["handoff"] > 0, dict(tally)
    if always_on:
        assert tally["reopen.pool"] > 0 and tally["reopen.last_agent"] > 0, dict(tally)
        assert tally["reopen.message"] > 0, dict(tally)
    assert sampler.samples > 10, sampler.samples
    assert sampler.at_limit > 0, "the sampler never saw an agent at its limit"
    assert sampler.queued_seen > 0, "the sampler never saw a waiting chat"
    assert sampler.held_seen > 0, "the sampler never saw a chat on hold"
    assert sampler.bot_seen > 0, "the sampler never saw a chat in the bot stage"


def test_process_hammer(backend: Backend, tmp_path: Path) -> None:
    """4 processes × the mix; the sampler and the end check find no violation."""
    _hammer(backend, tmp_path, hammer_ops(250), SETTINGS)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_process_hammer_always_on(kind: str, tmp_path: Path) -> None:
    """The mix in Always On Mode: chats wait in pools, and ended chats are reopened (to the
    pool or their last agent, by a person or by the customer's message) while the others
    run; the sampler and the end check find no violation."""
    b = _make(kind, tmp_path)
    try:
        _hammer(b, tmp_path, hammer_ops(150), ALWAYS_ON_SETTINGS)
    finally:
        b.close()


def _hammer(backend: Backend, tmp_path: Path, ops: int, settings: dict[str, Any]) -> None:
    setup_agents(backend.storage)
    ctx = multiprocessing.get_context("spawn")
    counts = ctx.Array("i", WORKERS)
    log_dir = str(tmp_path / "log")
    os.mkdir(log_dir)
    procs = [
        ctx.Process(
            target=hammer_worker,
            args=(backend.factory, i, ops, 100 + i, counts, log_dir, settings),
            daemon=True,
        )
        for i in range(WORKERS)
    ]
    with Sampler(backend.snapshot) as sampler:
        for p in procs:
            p.start()
        for p in procs:
            p.join(600)
    tally, refusals, crashes, done = read_stats(log_dir)
    assert not crashes, crashes
    assert done == WORKERS, [p.exitcode for p in procs]
    assert not sampler.errors, sampler.errors[:3]
    assert not sampler.violations, "\n".join(sampler.violations[:20])
    print(
        f"tally={dict(tally)} refusals={dict(refusals)} samples={sampler.samples} "
        f"at_limit={sampler.at_limit} queued_seen={sampler.queued_seen} "
        f"held_seen={sampler.held_seen} bot_seen={sampler.bot_seen}"
    )
    always_on = settings is ALWAYS_ON_SETTINGS
    _assert_contended(tally, refusals, sampler, always_on=always_on)
    restore_agents(backend.storage, settings)
    stats = check_end(backend.storage, backend.snapshot(), read_opened(log_dir))
    assert stats["opened"] == tally["open"] > 0, (stats, dict(tally))
    _census_agrees(backend)


def _census_agrees(backend: Backend) -> None:
    """PostgreSQL keeps each group's census in rows of its own (schema 7): after the run
    they agree with the stored agent records."""
    if backend._snapshot is not postgres_snapshot:
        return
    storage = backend.storage
    with storage.database.pool.connection() as conn:
        kept, records = census_kept(conn, storage.namespace)
    assert kept == records


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_kill_9(kind: str, tmp_path: Path) -> None:
    """Workers SIGKILLed at random moments, several times, and restarted: afterwards
    reconcile() + tick() leave every invariant true and no opened chat lost."""
    b = _make(kind, tmp_path)
    try:
        setup_agents(b.storage)
        ctx = multiprocessing.get_context("spawn")
        counts = ctx.Array("i", WORKERS)
        log_dir = str(tmp_path / "log")
        os.mkdir(log_dir)
        rng = random.Random(9)
        generation = [0] * WORKERS

        def start(i: int) -> Any:
            generation[i] += 1
            p = ctx.Process(
                target=hammer_worker,
                args=(b.factory, i, 0, 1000 * generation[i] + i, counts, log_dir),
                daemon=True,
            )
            p.start()
            return p

        procs = [start(i) for i in range(WORKERS)]
        kills = 0
        with Sampler(b.snapshot) as sampler:
            # let every worker get going (spawn imports take a while), then kill at random
            deadline = time.monotonic() + 60
            while min(counts[:]) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            for _ in range(int(os.environ.get("CHATMGMT_KILL_ROUNDS", 8))):
                time.sleep(rng.uniform(0.05, 0.6))
                i = rng.randrange(WORKERS)
                assert procs[i].pid is not None
                os.kill(procs[i].pid, signal.SIGKILL)
                procs[i].join(10)
                assert procs[i].exitcode == -signal.SIGKILL
                kills += 1
                procs[i] = start(i)
            # then let the last generation work until the figures below can say something
            # (a loaded machine is slow: wait on progress, not on a fixed time)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(0.2)
                tally, refusals, _crashes, _done = read_stats(log_dir)
                if tally["open"] > 0 and sum(refusals.values()) > 0 and sampler.at_limit > 0:
                    break
            for p in procs:
                assert p.pid is not None
                os.kill(p.pid, signal.SIGKILL)
                p.join(10)
        tally, refusals, crashes, _done = read_stats(log_dir)
        print(
            f"kills={kills} tally={dict(tally)} refusals={dict(refusals)} "
            f"samples={sampler.samples} at_limit={sampler.at_limit}"
        )
        assert not crashes, crashes
        assert not sampler.errors, sampler.errors[:3]
        # a kill between two units of work leaves nothing to repair: the sampler saw none
        assert not sampler.violations, "\n".join(sampler.violations[:20])
        assert kills >= 8 and tally["open"] > 0, (kills, dict(tally))
        assert sum(refusals.values()) > 0 and sampler.at_limit > 0, (dict(refusals), sampler)
        manager = restore_agents(b.storage)
        manager.tick()
        stats = check_end(b.storage, b.snapshot(), read_opened(log_dir))
        assert stats["opened"] > 0, stats
        _census_agrees(b)
    finally:
        b.close()


def test_the_checks_see_a_broken_store() -> None:
    """The invariant checks are not vacuous: an index moved on its own is reported."""
    from chatmgmt import ChatManager
    from chatmgmt.model import ChatState, CustomerInfo
    from chatmgmt.ports import Change, QueuePush
    from chatmgmt.settings import ChatSettings
    from chatmgmt.storage.memory import MemoryStorage
    from storage.hammer_helpers import CAPS, check_snapshot, memory_snapshot

    storage = MemoryStorage()
    setup_agents(storage)
    manager = ChatManager(storage=storage, settings=ChatSettings.coerce(SETTINGS))
    chats = [manager.open_chat(CustomerInfo(channel="web"), skill_group="g1") for _ in range(8)]
    assert check_snapshot(memory_snapshot(storage), CAPS)[0] == []
    active = next(c for c in chats if c.state is ChatState.ACTIVE)
    queued = next(c for c in chats if c.state is ChatState.QUEUED)
    assert active.agent_id is not None
    # a slot released without its chat, a queue entry removed without its chat
    storage.apply(Change(active.id, active.version, 1.0, release=active.agent_id))
    storage.apply(Change(queued.id, queued.version, 1.0, remove=("queue/g1",)))
    storage.apply(Change(active.id, active.version, 1.0, push=QueuePush("queue/g2", 0.0)))
    bad, _obs = check_snapshot(memory_snapshot(storage), CAPS)
    text = "\n".join(bad)
    assert "its ACTIVE chats are" in text and active.id in text, bad
    assert f"{queued.id} queued missing from queue/g1" in text, bad
    assert f"queue/g2: entry {active.id} is not a chat waiting there" in text, bad
    with pytest.raises(AssertionError, match="violations"):
        check_end(storage, memory_snapshot(storage), [c.id for c in chats])


def test_the_checks_see_a_channel_limit_broken() -> None:
    """Two WhatsApp chats forced onto a3 (at most 1 WhatsApp) and one onto a1 (a WhatsApp chat
    weighs 2 of its 2 units, then a web chat): both reported, read from the records."""
    from chatmgmt.model import AgentId, Chat, ChatId, ChatState, CustomerInfo
    from chatmgmt.ports import Change, Claim
    from chatmgmt.storage.memory import MemoryStorage
    from storage.hammer_helpers import CAPS, check_snapshot, memory_snapshot

    storage = MemoryStorage()
    setup_agents(storage)
    for cid, aid, channel in (
        ("x1", "a3", "whatsapp"),
        ("x2", "a3", "whatsapp"),
        ("y1", "a1", "whatsapp"),
        ("y2", "a1", "web"),
    ):
        chat = Chat(
            ChatId(cid),
            CustomerInfo(channel=channel),
            channel=channel,
            skill_group="g1",
            state=ChatState.ACTIVE,
            agent_id=AgentId(aid),
        )
        claim = Claim(AgentId(aid), force=True, channel=channel)
        storage.apply(Change(chat.id, None, 1.0, chat=chat, claim=claim))
    bad, _obs = check_snapshot(memory_snapshot(storage), CAPS)
    text = "\n".join(bad)
    assert "a3 holds 2 ACTIVE whatsapp chats" in text, bad
    assert "a1 holds 2 ACTIVE chats (3)" in text, bad
