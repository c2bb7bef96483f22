"""Where an open and its end spend their time on Redis: client CPU, server time, round trips.

One process, the workload of ``benchmarks/storage.py`` (200 agents ONLINE with limit 3 in one
skill group; every open also pays the end of the oldest of 40 held chats; 640 pairs of warm-up),
on one loopback ``redis-server`` (``CHATMGMT_REDIS_URL`` or one this script starts). Two stores
on that server run in alternating blocks of pairs, so machine load hits both alike:

- ``short``: ``RedisStorage`` as shipped (a plain client takes the driver's short path,
  ``storage/_redis_wire.py``);
- ``redis-py``: the same storage with the short path turned off (every command through
  redis-py's ``execute_command`` and ``Script.__call__``) — the baseline.

Lines (medians over the blocks):

- ``storage.redis.pair.client_cpu_us``: the worker's CPU time (``time.process_time``: user and
  system) per open+end pair, beside the redis-py path;
- ``storage.redis.pair.server_us``: ``redis-server``'s own time in commands per pair (``INFO
  commandstats``, every command and script), with no baseline;
- ``storage.redis.pair.server_cpu_us``: ``redis-server``'s CPU time per pair, all of it (the
  commands, reading and writing the sockets, its event loop; ``/proc/<pid>/schedstat``, so only
  for a server on this machine), with no baseline;
- ``storage.redis.pair.round_trips``: commands sent per pair (each one round trip), counted by
  the driver, and ``storage.redis.pair.round_trips.<port call>`` per kind.
``--blocks N`` (default 12) blocks of ``--pairs P`` (default 200) pairs per store.
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))

from _common import emit

from chatmgmt import ChatManager
from chatmgmt.model import ChatId, CustomerInfo, EndReason
from chatmgmt.storage.redis import RedisStorage
from storage import GROUP, HELD, _redis_url, _setup


class _Pairs:
    """One store and its manager, doing open+end pairs in blocks."""

    def __init__(self, url: str, short: bool) -> None:
        self.storage = RedisStorage(url, f"pair-{uuid.uuid4().hex[:8]}")
        _setup(self.storage)
        if not short:
            self.storage._driver.wire = None
        self.manager = ChatManager(storage=self.storage, rng=random.Random(1))
        self.held: collections.deque[str] = collections.deque()
        self.n = 0
        self.customer = CustomerInfo(channel="web")

    def block(self, pairs: int) -> None:
        manager, held = self.manager, self.held
        for _ in range(pairs):
            if len(held) >= HELD:
                manager.end_chat(ChatId(held.popleft()), reason=EndReason.AGENT)
            self.n += 1
            cid = f"c{self.n}"
            manager.open_chat(self.customer, skill_group=GROUP, chat_id=cid)
            held.append(cid)


def _server_us(client: Any) -> float:
    return float(sum(v["usec"] for v in client.info("commandstats").values()))


def _server_cpu(client: Any, url: str) -> Path | None:
    """``/proc/<pid>/schedstat`` of the ``redis-server`` at ``url`` when it runs here."""
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    path = Path(f"/proc/{client.info('server')['process_id']}/schedstat")
    return path if path.exists() else None


def _cpu_ns(path: Path | None) -> float:
    return 0.0 if path is None else float(path.read_text().split()[0])


def _count_round_trips(pairs: _Pairs, n: int) -> collections.Counter[str]:
    """Commands per port call over ``n`` pairs, by wrapping the driver's two senders."""
    driver = pairs.storage._driver
    counts: collections.Counter[str] = collections.Counter()
    script, call = driver._script, driver._call

    def counted_script(name: str, keys: list[str], args: tuple[Any, ...]) -> Any:
        counts[f"script.{name}"] += 1
        return script(name, keys, args)

    def counted_call(args: tuple[Any, ...]) -> Any:
        counts[str(args[0])] += 1
        return call(args)

    driver._script, driver._call = counted_script, counted_call  # type: ignore[method-assign]
    try:
        pairs.block(n)
    finally:
        del driver._script, driver._call
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    url = _redis_url()
    if url is None:
        print("# redis-server not found and CHATMGMT_REDIS_URL unset: no figures", file=sys.stderr)
        return
    short, slow = _Pairs(url, True), _Pairs(url, False)
    assert short.storage._driver.wire is not None, "the short path should be on for a URL"
    for p in (short, slow):
        # every later open pays an end; past 512 chats the namespace's per-chat hashes are
        # hash tables, as in the 4-process benchmark's runs (below, Redis keeps them as
        # listpacks that every HGET and HSET walks)
        p.block(HELD + 600)
    client = short.storage.client
    schedstat = _server_cpu(client, url)
    cpu: dict[str, list[float]] = {"short": [], "redis-py": []}
    server: list[float] = []
    server_cpu: list[float] = []
    for _ in range(args.blocks):
        for name, p in (("short", short), ("redis-py", slow)):
            before = _server_us(client) if name == "short" else 0.0
            s0 = _cpu_ns(schedstat)
            c0 = time.process_time()
            p.block(args.pairs)
            cpu[name].append((time.process_time() - c0) / args.pairs * 1e6)
            if name == "short":
                server_cpu.append((_cpu_ns(schedstat) - s0) / args.pairs / 1e3)
                server.append((_server_us(client) - before) / args.pairs)
    ours, base = statistics.median(cpu["short"]), statistics.median(cpu["redis-py"])
    emit("storage.redis.pair.client_cpu_us", ours, "us/pair", base, base / ours)
    emit("storage.redis.pair.server_us", statistics.median(server), "us/pair", None, None)
    if schedstat is not None:
        value = statistics.median(server_cpu)
        emit("storage.redis.pair.server_cpu_us", value, "us/pair", None, None)
    counts = _count_round_trips(short, args.pairs)
    emit("storage.redis.pair.round_trips", sum(counts.values()) / args.pairs, "/pair", None, None)
    for kind, n in sorted(counts.items()):
        emit(f"storage.redis.pair.round_trips.{kind}", n / args.pairs, "/pair", None, None)
    print(
        f"# client cpu short={[round(x) for x in cpu['short']]} "
        f"redis-py={[round(x) for x in cpu['redis-py']]} server={[round(x) for x in server]} "
        f"server_cpu={[round(x) for x in server_cpu]}",
        file=sys.stderr,
    )
    for p in (short, slow):
        p.storage.delete_namespace()
        p.storage.close()


if __name__ == "__main__":
    main()
