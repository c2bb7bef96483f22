"""Where an open and its end spend their time on PostgreSQL: client CPU, server time, statements.

One process, the workload of ``benchmarks/storage.py`` (200 agents ONLINE with limit 3 in one
skill group; every open also pays the end of the oldest of 40 held chats), on a private
PostgreSQL server this script starts (``tests/storage/postgres_helpers.py``:
``synchronous_commit=on``, with ``pg_stat_statements`` preloaded, ``track=top`` and
``track_planning=on``). Two workloads on that server run in alternating blocks of pairs, so
machine load hits both alike:

- ``ours``: ``ChatManager.open_chat`` / ``end_chat`` on ``PostgresStorage``;
- ``naive``: the unsafe read-modify-write of ``benchmarks/storage.py`` (autocommit statements,
  no transaction: never to be used) — the baseline.

Lines (medians over the blocks):

- ``storage.postgres.pair.client_cpu_us``: the worker's CPU time (``time.process_time``) per
  pair;
- ``storage.postgres.pair.server_cpu_us``: the CPU time of the server's processes (``/proc``:
  the postmaster and its children, background writers and autovacuum included) per pair;
- ``storage.postgres.pair.server_statements_us``: execution plus planning time of the
  statements the client sent (``pg_stat_statements``, top level) per pair;
- ``storage.postgres.pair.statements``: statements sent per pair (each unit of work's
  ``BEGIN``/``COMMIT`` included).

The statements of ``ours`` costing the most per pair go to stderr. ``--blocks N`` (default 8)
blocks of ``--pairs P`` (default 150) pairs per workload.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))

from _common import emit

from chatmgmt import ChatManager
from chatmgmt.model import CustomerInfo, EndReason
from chatmgmt.storage.postgres import PostgresDatabase, PostgresStorage
from storage import GROUP, HELD, _Naive, _setup

SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
    "pg_stat_statements.track_planning": "on",
}


class _Pairs:
    """One workload doing open+end pairs in blocks."""

    def __init__(self, url: str, naive: bool, *, one_connection: bool = False) -> None:
        namespace = f"pair-{uuid.uuid4().hex[:8]}"
        self.naive = naive
        self.store: Any
        if naive:
            self.store = _Naive("postgres", url, namespace)
            self.store.setup()
        else:
            # one_connection: every statement on one server backend (postgres_instructions.py)
            database = PostgresDatabase(url, min_size=1, max_size=1) if one_connection else url
            storage = PostgresStorage(database, namespace)
            _setup(storage)
            self.storage = storage
            self.store = ChatManager(storage=storage, rng=random.Random(1))
        self.held: collections.deque[tuple[str, str]] = collections.deque()
        self.n = 0
        self.customer = CustomerInfo(channel="web")

    def block(self, pairs: int) -> None:
        for _ in range(pairs):
            if len(self.held) >= HELD:
                cid, aid = self.held.popleft()
                if self.naive:
                    self.store.end(cid, aid)
                else:
                    self.store.end_chat(cid, reason=EndReason.AGENT)
            self.n += 1
            cid = f"c{self.n}"
            if self.naive:
                got = self.store.open(cid)
            else:
                chat = self.store.open_chat(self.customer, skill_group=GROUP, chat_id=cid)
                got = chat.agent_id
            assert got is not None
            self.held.append((cid, got))


def _server_cpu(postmaster: int) -> float:
    """CPU seconds (user + system) of the postmaster and its children so far."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _statements(conn: Any) -> list[tuple[int, float, str]]:
    """(calls, exec + plan ms, query) of every statement since the last reset but ours."""
    rows = conn.execute(
        "SELECT calls, total_exec_time + total_plan_time, query FROM pg_stat_statements "
        "WHERE query NOT LIKE '%%pg_stat_statements%%'"
    ).fetchall()
    return [(int(c), float(t), str(q)) for c, t, q in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=150)
    args = parser.parse_args()
    path = Path(__file__).resolve().parent.parent / "tests" / "storage" / "postgres_helpers.py"
    spec = importlib.util.spec_from_file_location("_pg_helpers", path)
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    server = helpers.start_private(synchronous_commit="on", settings=SETTINGS)
    try:
        import psycopg

        stats = psycopg.connect(server.url, autocommit=True)
        stats.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        postmaster = server.pid()
        workloads = {"ours": _Pairs(server.url, False), "naive": _Pairs(server.url, True)}
        for pairs in workloads.values():  # warm up: prepared statements, indexes, caches
            pairs.block(HELD + 20)
        figures: dict[str, dict[str, list[float]]] = {
            k: collections.defaultdict(list) for k in workloads
        }
        costly: collections.Counter[str] = collections.Counter()
        for _ in range(args.blocks):
            for name, pairs in workloads.items():
                stats.execute("SELECT pg_stat_statements_reset()")
                s0, c0 = _server_cpu(postmaster), time.process_time()
                pairs.block(args.pairs)
                cpu, server_cpu = time.process_time() - c0, _server_cpu(postmaster) - s0
                rows = _statements(stats)
                n = args.pairs
                figures[name]["client_cpu_us"].append(cpu / n * 1e6)
                figures[name]["server_cpu_us"].append(server_cpu / n * 1e6)
                figures[name]["server_statements_us"].append(sum(t for _c, t, _q in rows) / n * 1e3)
                figures[name]["statements"].append(sum(c for c, _t, _q in rows) / n)
                if name == "ours":
                    for _c, t, q in rows:
                        costly[" ".join(q.split())[:110]] += t / n * 1e3 / args.blocks
        units = {
            "client_cpu_us": "us/pair",
            "server_cpu_us": "us/pair",
            "server_statements_us": "us/pair",
            "statements": "statements/pair",
        }
        for key, unit in units.items():
            ours = statistics.median(figures["ours"][key])
            base = statistics.median(figures["naive"][key])
            emit(f"storage.postgres.pair.{key}", ours, unit, base, ours / base if base else None)
        print(f"# load average {os.getloadavg()[0]:.2f}; ours, per pair:", file=sys.stderr)
        for query, us in costly.most_common(10):
            print(f"# {us:7.1f} us  {query}", file=sys.stderr)
        stats.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
