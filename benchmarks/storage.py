"""Storage benchmark: atomic assignments per second and p99 claim latency, by adapter.

One *assignment* is an atomic ranked claim (``AgentStore.claim_ranked`` with ``LEAST_BUSY``
over 200 agents of limit 3 in one skill group); every worker holds at most 40 chats and
releases its oldest before claiming again, so each assignment also pays for one release, as in
production. Workers are separate processes (spawn) hammering one shared store: SQLite file,
Redis server. The in-memory adapter cannot be shared between processes, so it runs in one.

Baselines, measured in the same run on the same data and process count: a naive
read-modify-write without atomicity on the same backend (read every load, pick the least busy
in Python, write the count back: the race the atomic claim exists to prevent). ``ratio`` > 1
means the atomic claim beats it (throughput: ours / baseline; latency: baseline / ours).

Lines: ``storage.<adapter>.assign_per_s.<n>proc`` and ``storage.<adapter>.p99_ms.<n>proc``.
Targets: ``storage.redis.assign_per_s.2proc`` >= 3,000; ``storage.sqlite.assign_per_s.1proc``
>= 1,000. Uses ``CHATMGMT_REDIS_URL`` or starts its own ``redis-server``.
``--quick``: shorter runs. ``--seconds S``: measuring time per figure.
"""

from __future__ import annotations

import argparse
import atexit
import multiprocessing
import os
import random
import shutil
import socket
import sqlite3
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

from _common import emit

from chatmgmt.assignment import LEAST_BUSY
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId
from chatmgmt.ports import Storage

AGENTS = 200
LIMIT = 3
HELD = 40


# --------------------------------------------------------------------------- stores


def _open(kind: str, target: str, namespace: str) -> Any:
    if kind == "memory":
        from chatmgmt.storage.memory import MemoryStorage

        return MemoryStorage(namespace)
    if kind == "sqlite":
        from chatmgmt.storage.sqlite import SQLiteStorage

        return SQLiteStorage(target, namespace)
    from chatmgmt.storage.redis import RedisStorage

    return RedisStorage(target, namespace)


def _setup(storage: Storage) -> None:
    for i in range(AGENTS):
        storage.agents.put(
            Agent(
                AgentId(f"agent-{i:03d}"),
                skill_groups=frozenset({"g"}),
                reception_limit=LIMIT,
                account_order=i,
                status=AgentStatus.ONLINE,
            ),
            0.0,
        )


class _Naive:
    """Read-modify-write without atomicity: read all loads, pick in Python, write back."""

    def __init__(self, kind: str, target: str, namespace: str) -> None:
        self.kind = kind
        self.key = f"naive:{{{namespace}}}"
        if kind == "sqlite":
            self.db = sqlite3.connect(target, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS naive (id TEXT PRIMARY KEY, active INT)")
        elif kind == "redis":
            import redis

            self.r = redis.Redis.from_url(target)
        else:
            self.loads: dict[str, int] = {}

    def setup(self) -> None:
        ids = [f"agent-{i:03d}" for i in range(AGENTS)]
        if self.kind == "sqlite":
            self.db.executemany("INSERT OR REPLACE INTO naive VALUES (?, 0)", [(i,) for i in ids])
        elif self.kind == "redis":
            self.r.hset(self.key, mapping=dict.fromkeys(ids, 0))
        else:
            self.loads = dict.fromkeys(ids, 0)

    def claim(self) -> str | None:
        if self.kind == "sqlite":
            row = self.db.execute(
                "SELECT id FROM naive WHERE active < ? ORDER BY active, id LIMIT 1", (LIMIT,)
            ).fetchone()
            if row is None:
                return None
            self.db.execute("UPDATE naive SET active = active + 1 WHERE id = ?", (row[0],))
            return str(row[0])
        if self.kind == "redis":
            loads = {k.decode(): int(v) for k, v in self.r.hgetall(self.key).items()}
            best = min((v, k) for k, v in loads.items() if v < LIMIT)
            self.r.hincrby(self.key, best[1], 1)
            return best[1]
        best = min((v, k) for k, v in self.loads.items() if v < LIMIT)
        self.loads[best[1]] += 1
        return best[1]

    def release(self, agent_id: str) -> None:
        if self.kind == "sqlite":
            self.db.execute("UPDATE naive SET active = active - 1 WHERE id = ?", (agent_id,))
        elif self.kind == "redis":
            self.r.hincrby(self.key, agent_id, -1)
        else:
            self.loads[agent_id] -= 1


# --------------------------------------------------------------------------- workers


def _worker(
    kind: str,
    target: str,
    namespace: str,
    naive: bool,
    index: int,
    seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    rng = random.Random(index)
    if naive:
        store: Any = _Naive(kind, target, namespace)
        if kind == "memory":
            store.setup()
    else:
        store = _open(kind, target, namespace)
        if kind == "memory":
            _setup(store)
    held: deque[tuple[str, str]] = deque()
    latencies: list[float] = []
    count = 0
    barrier.wait(120)
    end = time.perf_counter() + seconds
    n = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if len(held) >= HELD:
            aid, cid = held.popleft()
            if naive:
                store.release(aid)
            else:
                store.agents.release(AgentId(aid), ChatId(cid), now, rng.random())
        n += 1
        cid = f"p{index}-{n}"
        t0 = time.perf_counter()
        if naive:
            got = store.claim()
        else:
            got = store.agents.claim_ranked(
                "g", LEAST_BUSY, ChatId(cid), frozenset(), t0, rng.random()
            )
        latencies.append(time.perf_counter() - t0)
        if got is not None:
            count += 1
            held.append((got, cid))
    results.put((count, latencies))


def _measure(
    kind: str, target: str, procs: int, seconds: float, naive: bool
) -> tuple[float, float]:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    if kind != "memory":
        if naive:
            _Naive(kind, target, namespace).setup()
        else:
            storage = _open(kind, target, namespace)
            _setup(storage)
            close = getattr(storage, "close", None)
            if close:
                close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(kind, target, namespace, naive, i, seconds, barrier, results),
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=seconds + 180) for _ in workers]
    for w in workers:
        w.join(30)
    total = sum(c for c, _ in outcomes)
    lat = sorted(x for _, ls in outcomes for x in ls)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    return total / seconds, p99


# --------------------------------------------------------------------------- redis server


def _redis_url() -> str | None:
    url = os.environ.get("CHATMGMT_REDIS_URL")
    if url:
        return url
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="chatmgmt-bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],
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


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--seconds", type=float, default=None, help="measuring time per figure")
    parser.add_argument(
        "--only", choices=("memory", "sqlite", "redis"), default=None, help="one adapter"
    )
    args = parser.parse_args()
    seconds = args.seconds or (0.7 if args.quick else 2.5)
    tmp = tempfile.mkdtemp(prefix="chatmgmt-bench-")
    url = _redis_url()
    plan: list[tuple[str, str, tuple[int, ...]]] = [
        ("memory", "", (1,)),
        ("sqlite", str(Path(tmp) / "bench.db"), (1, 2, 4)),
    ]
    if url is not None:
        plan.append(("redis", url, (1, 2, 4)))
    else:
        print(
            "# redis-server not found and CHATMGMT_REDIS_URL unset: no Redis figures",
            file=sys.stderr,
        )
    for kind, target, counts in plan:
        if args.only is not None and kind != args.only:
            continue
        for procs in counts:
            ours, ours_p99 = _measure(kind, target, procs, seconds, naive=False)
            base, base_p99 = _measure(kind, target, procs, seconds, naive=True)
            emit(
                f"storage.{kind}.assign_per_s.{procs}proc",
                ours,
                "assignments/s",
                base,
                ours / base if base else None,
            )
            emit(
                f"storage.{kind}.p99_ms.{procs}proc",
                ours_p99,
                "ms",
                base_p99,
                base_p99 / ours_p99 if ours_p99 else None,
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
