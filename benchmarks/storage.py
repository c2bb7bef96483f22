"""Storage benchmark: end-to-end ``ChatManager.open_chat`` per second, by adapter.

One *open* is ``ChatManager.open_chat`` on a shared store (customer auto-save, routing, the
ranked claim, the chat, its timers and events in one unit of work); every worker holds at most
40 chats and ends its oldest (``end_chat``) before opening again, so each open also pays for
one end, as in production. 200 agents ONLINE with limit 3 in one skill group: capacity is
never the limit. Workers are separate processes (spawn) on one SQLite file or one Redis.

Baseline, measured in the same run on the same backend and process count: a **naive unsafe
read-modify-write** (:class:`_Naive`, written here, never to be used): read every agent's load,
pick the least busy in Python, write the chat record and the load back as separate statements
with no transaction or script, and on end write the chat and a load read just before. It gives
agents more chats than their limit under concurrency; it is the speed the atomic unit of work
is paid against. ``ratio`` > 1 means ``open_chat`` beats it.

Lines: ``storage.<sqlite|redis|postgres>.open_per_s.<1|4>proc``, and
``storage.<...>.claim_per_s.<1|4>proc``: the unit of work alone (a slot-only ``Storage.apply``:
a ranked claim for a made-up chat, the release of the oldest held one) beside the same unsafe
baseline; each value is the median of ``--repeats`` runs (default 3). Targets at 4
processes: SQLite >= 1,500, Redis >= 2,500, PostgreSQL >= 1,500. First, the run prints
``machine.python.capacity.4proc`` (``benchmarks/machine.py``, median of 3 rounds of at most
1 s): what 4 processes at once did together, in units of one process alone, at this hour — the
ceiling of every ``4proc`` line, which the host moves (2.0 on two free cores, ~1.3 when they
share one; meaningful on a quiet machine only: see ``machine.py``).

PostgreSQL also prints ``storage.postgres.commit_per_s.<1|4>proc`` (one-row durable
transactions in a loop: what the WAL flush of this disk allows, group commit included) beside
the same with ``synchronous_commit=off``, and every PostgreSQL line again with the suffix
``.synchronous_commit_off``: the same server, the sessions' ``synchronous_commit=off`` —
**not durable**: a server crash may lose the commits of the last ~0.6 s (never half of one).
Uses ``CHATMGMT_REDIS_URL`` or starts its own ``redis-server`` on a free loopback port;
``CHATMGMT_POSTGRES_URL`` or a private PostgreSQL server (``tests/storage/postgres_helpers``:
``initdb`` into a temporary directory, loopback, ``synchronous_commit=on``).
``--quick``: shorter runs. ``--seconds S``: measuring time per run. ``--only``: one adapter.
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))

import machine
from _common import emit, free_port, redis_server_argv

from chatmgmt import ChatManager
from chatmgmt.assignment import LEAST_BUSY
from chatmgmt.errors import PreconditionFailed
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId, CustomerInfo, EndReason
from chatmgmt.ports import Change, RankedClaim

AGENTS = 200
LIMIT = 3
HELD = 40
GROUP = "g"


# --------------------------------------------------------------------------- stores


def _open(kind: str, target: str, namespace: str) -> Any:
    if kind == "sqlite":
        from chatmgmt.storage.sqlite import SQLiteStorage

        return SQLiteStorage(target, namespace)
    if kind == "postgres":
        from chatmgmt.storage.postgres import PostgresStorage

        return PostgresStorage(target, namespace)
    from chatmgmt.storage.redis import RedisStorage

    return RedisStorage(target, namespace)


def _setup(storage: Any) -> None:
    manager = ChatManager(storage=storage)
    for i in range(AGENTS):
        manager.register_agent(
            Agent(
                AgentId(f"agent-{i:03d}"),
                skill_groups=frozenset({GROUP}),
                reception_limit=LIMIT,
                account_order=i,
                status=AgentStatus.ONLINE,
            ),
            now=0.0,
        )


class _Naive:
    """UNSAFE: read-modify-write without a transaction or script (the baseline only).

    Open: read every agent's load, pick the least busy below the limit in Python, write the
    chat record, write the load read earlier plus one. End: write the chat record, read the
    load and write it minus one. Two workers racing read the same load and both write it:
    agents go over their limit and counts drift. Never do this.
    """

    def __init__(self, kind: str, target: str, namespace: str) -> None:
        self.kind = kind
        self.loads_key = f"naive:{{{namespace}}}:loads"
        self.chats_key = f"naive:{{{namespace}}}:chats"
        if kind == "sqlite":
            self.db = sqlite3.connect(target, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS naive_loads (id TEXT PRIMARY KEY, n INT)")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS naive_chats (id TEXT PRIMARY KEY, data TEXT)"
            )
        elif kind == "postgres":  # autocommit: every statement its own transaction
            import psycopg

            self.db = psycopg.connect(target, autocommit=True)  # type: ignore[assignment]
            self.loads_table = "naive_loads_" + namespace.replace("-", "_")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.loads_table} (id TEXT PRIMARY KEY, n INT)"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS naive_chats (id TEXT PRIMARY KEY, data TEXT)"
            )
        else:
            import redis

            self.r = redis.Redis.from_url(target)

    def setup(self) -> None:
        ids = [f"agent-{i:03d}" for i in range(AGENTS)]
        if self.kind == "sqlite":
            self.db.executemany(
                "INSERT OR REPLACE INTO naive_loads VALUES (?, 0)", [(i,) for i in ids]
            )
        elif self.kind == "postgres":
            self.db.cursor().executemany(
                f"INSERT INTO {self.loads_table} VALUES (%s, 0) "
                "ON CONFLICT (id) DO UPDATE SET n = 0",
                [(i,) for i in ids],
            )
        else:
            self.r.hset(self.loads_key, mapping=dict.fromkeys(ids, 0))

    @staticmethod
    def _record(chat_id: str, state: str, agent: str, now: float) -> str:
        return json.dumps(
            {
                "id": chat_id,
                "state": state,
                "agent_id": agent,
                "skill_group": GROUP,
                "channel": "web",
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )

    def open(self, chat_id: str) -> str | None:
        now = time.time()
        if self.kind == "sqlite":
            rows = self.db.execute("SELECT id, n FROM naive_loads").fetchall()
            free = [(n, i) for i, n in rows if n < LIMIT]
            if not free:
                return None
            n, agent = min(free)
            self.db.execute(
                "INSERT OR REPLACE INTO naive_chats VALUES (?, ?)",
                (chat_id, self._record(chat_id, "active", agent, now)),
            )
            self.db.execute("UPDATE naive_loads SET n = ? WHERE id = ?", (n + 1, agent))
            return str(agent)
        if self.kind == "postgres":
            rows = self.db.execute(f"SELECT id, n FROM {self.loads_table}").fetchall()
            free = [(n, i) for i, n in rows if n < LIMIT]
            if not free:
                return None
            n, agent = min(free)
            self.db.execute(
                "INSERT INTO naive_chats VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (chat_id, self._record(chat_id, "active", agent, now)),
            )
            self.db.execute(f"UPDATE {self.loads_table} SET n = %s WHERE id = %s", (n + 1, agent))
            return str(agent)
        loads = {k.decode(): int(v) for k, v in self.r.hgetall(self.loads_key).items()}
        free = [(v, k) for k, v in loads.items() if v < LIMIT]
        if not free:
            return None
        n, agent = min(free)
        self.r.hset(self.chats_key, chat_id, self._record(chat_id, "active", agent, now))
        self.r.hset(self.loads_key, agent, n + 1)
        return agent

    def end(self, chat_id: str, agent: str) -> None:
        now = time.time()
        record = self._record(chat_id, "ended", agent, now)
        if self.kind == "sqlite":
            self.db.execute("INSERT OR REPLACE INTO naive_chats VALUES (?, ?)", (chat_id, record))
            row = self.db.execute("SELECT n FROM naive_loads WHERE id = ?", (agent,)).fetchone()
            self.db.execute("UPDATE naive_loads SET n = ? WHERE id = ?", (row[0] - 1, agent))
            return
        if self.kind == "postgres":
            self.db.execute(
                "INSERT INTO naive_chats VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (chat_id, record),
            )
            row = self.db.execute(
                f"SELECT n FROM {self.loads_table} WHERE id = %s", (agent,)
            ).fetchone()
            self.db.execute(
                f"UPDATE {self.loads_table} SET n = %s WHERE id = %s", (row[0] - 1, agent)
            )
            return
        self.r.hset(self.chats_key, chat_id, record)
        n = int(self.r.hget(self.loads_key, agent) or 0)
        self.r.hset(self.loads_key, agent, n - 1)


# --------------------------------------------------------------------------- workers


class _Claims:
    """The unit of work alone: a ranked claim (least busy) for a made-up chat, and the release
    of the oldest held one — each one atomic ``Storage.apply`` of a slot-only change."""

    def __init__(self, storage: Any, index: int) -> None:
        self.storage = storage
        self.rng = random.Random(index)
        self.claim = RankedClaim(GROUP, LEAST_BUSY)

    def open(self, chat_id: str) -> str | None:
        change = Change(ChatId(chat_id), None, time.time(), claim=self.claim)
        try:
            return str(self.storage.apply(change).agent_id)
        except PreconditionFailed:
            return None

    def end(self, chat_id: str, agent_id: str) -> None:
        self.storage.apply(Change(ChatId(chat_id), None, time.time(), release=AgentId(agent_id)))


def _worker(
    kind: str,
    target: str,
    namespace: str,
    naive: bool | str,
    index: int,
    seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    claims = naive == "claim"
    if naive is True:
        store: Any = _Naive(kind, target, namespace)
    elif claims:
        store = _Claims(_open(kind, target, namespace), index)
    else:
        store = ChatManager(storage=_open(kind, target, namespace), rng=random.Random(index))
    held: deque[tuple[str, str]] = deque()
    count = 0
    barrier.wait(120)
    end = time.perf_counter() + seconds
    n = 0
    customer = CustomerInfo(channel="web")
    while time.perf_counter() < end:
        if len(held) >= HELD:
            cid, aid = held.popleft()
            if naive is True or claims:
                store.end(cid, aid)
            else:
                store.end_chat(cid, reason=EndReason.AGENT)
        n += 1
        cid = f"p{index}-{n}"
        if naive is True or claims:
            got = store.open(cid)
        else:
            got = store.open_chat(customer, skill_group=GROUP, chat_id=cid).agent_id
        if got is not None:
            count += 1
            held.append((cid, got))
    results.put(count)


def _measure(kind: str, target: str, procs: int, seconds: float, naive: bool | str) -> float:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    if naive is True:
        _Naive(kind, target, namespace).setup()
    else:
        storage = _open(kind, target, namespace)
        _setup(storage)
        storage.close()
    return _spawn(_worker, (kind, target, namespace, naive), procs, seconds)


def _spawn(work: Any, args: tuple[Any, ...], procs: int, seconds: float) -> float:
    """Run ``work(*args, index, seconds, barrier, results)`` in ``procs`` spawned processes
    started together; the sum of what they put in ``results``, per second."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=work, args=(*args, i, seconds, barrier, results)) for i in range(procs)
    ]
    for w in workers:
        w.start()
    total = sum(results.get(timeout=seconds + 180) for _ in workers)
    for w in workers:
        w.join(30)
    return total / seconds


# --------------------------------------------------------------------------- redis server


def _redis_url() -> str | None:
    url = os.environ.get("CHATMGMT_REDIS_URL")
    if url:
        return url
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="chatmgmt-bench-redis-")
    proc = subprocess.Popen(
        redis_server_argv(binary, port, tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    return None


#: Server settings of the private PostgreSQL server besides ``synchronous_commit=on`` and
#: ``fsync=on`` (none: the defaults; see docs/performance.md for what ``commit_delay`` did).
PG_SETTINGS: dict[str, str] = {}


def _no_sync_commit(url: str) -> str:
    """The DSN with ``synchronous_commit=off`` for its sessions: NOT DURABLE (a crash of the
    server may lose the last few hundred milliseconds of commits; never half of one)."""
    from psycopg.conninfo import make_conninfo

    return str(make_conninfo(url, options="-c synchronous_commit=off"))


def _commit_worker(target: str, index: int, seconds: float, barrier: Any, results: Any) -> None:
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        barrier.wait(120)
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            with conn.transaction():
                conn.execute("UPDATE naive_commits SET n = n + 1 WHERE id = %s", (index,))
            n += 1
    results.put(n)


def _commits(target: str, procs: int, seconds: float) -> float:
    """Durable commits/s of ``procs`` processes each updating its own row in a loop (one-row
    transactions): what the server's WAL flush allows, group commit included."""
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS naive_commits (id int PRIMARY KEY, n bigint)")
        for i in range(procs):
            conn.execute(
                "INSERT INTO naive_commits VALUES (%s, 0) ON CONFLICT (id) DO NOTHING", (i,)
            )
    return _spawn(_commit_worker, (target,), procs, seconds)


def _postgres_url() -> str | None:
    """``CHATMGMT_POSTGRES_URL``, or a private server started like the tests' fixture."""
    url = os.environ.get("CHATMGMT_POSTGRES_URL")
    if url:
        return url
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tests" / "storage" / "postgres_helpers.py"
    try:
        spec = importlib.util.spec_from_file_location("_pg_helpers", path)
        assert spec is not None and spec.loader is not None
        helpers = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(helpers)
        if helpers.pg_bindir() is None:
            return None
        server = helpers.start_private(synchronous_commit="on", settings=PG_SETTINGS)
    except Exception as exc:  # no server: no figures
        print(f"# PostgreSQL did not start: {exc}", file=sys.stderr)
        return None
    atexit.register(server.stop)
    return server.url


# --------------------------------------------------------------------------- main


def _capacity(seconds: float) -> None:
    """Emit ``machine.python.capacity.4proc`` (``benchmarks/machine.py``): what 4 processes at
    once did together in units of one alone at this hour, the ceiling of every ``4proc`` line
    of this run (it moved between ~1.3 and ~2.0 on one day's host): the median of 3 rounds."""
    ratios = [machine.run(4, seconds)[1] / machine.run(1, seconds)[1] for _ in range(3)]
    emit("machine.python.capacity.4proc", statistics.median(ratios), "x one alone", 1.0, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--seconds", type=float, default=None, help="measuring time per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--only", choices=("sqlite", "redis", "postgres"), default=None, help="one adapter"
    )
    args = parser.parse_args()
    seconds = args.seconds or (0.7 if args.quick else 3.0)
    repeats = 1 if args.quick else args.repeats
    _capacity(min(seconds, 1.0))
    tmp = tempfile.mkdtemp(prefix="chatmgmt-bench-")
    plan: list[tuple[str, str, str]] = []  # (backend, target, suffix of the figures' names)
    if args.only in (None, "sqlite"):
        plan.append(("sqlite", str(Path(tmp) / "bench.db"), ""))
    if args.only in (None, "redis"):
        url = _redis_url()
        if url is not None:
            plan.append(("redis", url, ""))
        else:
            print(
                "# redis-server not found and CHATMGMT_REDIS_URL unset: no Redis figures",
                file=sys.stderr,
            )
    if args.only in (None, "postgres"):
        pg = _postgres_url()
        if pg is not None:
            # durable (synchronous_commit=on) first; then the same server with the sessions'
            # synchronous_commit=off, labelled: a server crash may lose the last commits
            plan.append(("postgres", pg, ""))
            plan.append(("postgres", _no_sync_commit(pg), ".synchronous_commit_off"))
            for procs in (1, 4):
                durable = statistics.median(_commits(pg, procs, seconds) for _ in range(repeats))
                off = statistics.median(
                    _commits(_no_sync_commit(pg), procs, seconds) for _ in range(repeats)
                )
                emit(
                    f"storage.postgres.commit_per_s.{procs}proc",
                    durable,
                    "commits/s",
                    off,
                    durable / off if off else None,
                )
        else:
            print(
                "# PostgreSQL not found and CHATMGMT_POSTGRES_URL unset: no figures",
                file=sys.stderr,
            )
    for kind, target, suffix in plan:
        for procs in (1, 4):
            ours: list[float] = []
            base: list[float] = []
            for _ in range(repeats):  # interleaved, so drift hits both alike
                ours.append(_measure(kind, target, procs, seconds, naive=False))
                base.append(_measure(kind, target, procs, seconds, naive=True))
            o, b = statistics.median(ours), statistics.median(base)
            print(
                f"# {kind}{suffix} {procs}proc ours={[round(x) for x in ours]} "
                f"naive={[round(x) for x in base]} loadavg={os.getloadavg()[0]:.2f}",
                file=sys.stderr,
            )
            name = f"storage.{kind}.open_per_s.{procs}proc{suffix}"
            emit(name, o, "opens/s", b, o / b if b else None)
            claims = [_measure(kind, target, procs, seconds, naive="claim") for _ in range(repeats)]
            c = statistics.median(claims)
            print(
                f"# {kind}{suffix} {procs}proc claims={[round(x) for x in claims]}", file=sys.stderr
            )
            name = f"storage.{kind}.claim_per_s.{procs}proc{suffix}"
            emit(name, c, "claims/s", b, c / b if b else None)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
