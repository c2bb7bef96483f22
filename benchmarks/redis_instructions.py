"""Instructions ``redis-server`` runs per open+end pair, counted by callgrind: a figure that
machine load does not move (``benchmarks/redis_pair.py`` measures CPU time, which it does).

The workload of ``redis_pair.py`` (200 agents, every open paying the end of the oldest held
chat) from one worker holding ``--held`` chats (default 160: the 4-process benchmark's state,
4 x 40, whose timer index is a skiplist, not a listpack), on a private ``redis-server`` run
under ``valgrind --tool=callgrind``: counters zeroed after ``--warmup`` pairs (default 760),
dumped after ``--pairs`` more (default 400). The figure is ``readQueryFromClient`` inclusive
(the commands and scripts the worker sent; the server's timer-driven cron, which depends on
wall time, is left out) divided by the pairs:

- ``storage.redis.pair.server_instructions``: this tree, beside the same of the tree whose
  checkout ``--baseline DIR`` names (its ``src`` and ``benchmarks``), measured in the same run.

Repeated runs of one tree differ by up to ~2 % on a loaded machine (the wall clock and hash
seeds pick different agents and change the JSON's length); compare medians of ``--repeats``.
Needs ``valgrind`` and ``redis-server`` (``--redis-server PATH``: another build, e.g. one with
symbols for ``callgrind_annotate``; ``--keep`` prints the dump files and keeps them).

``--client``: the worker's instructions instead (``storage.redis.pair.client_instructions``):
the same workload from one process holding ``--held`` chats (40 here unless given: one of the
4-process benchmark's workers) on a plain private ``redis-server``, the worker under callgrind
with the collector off after ``--warmup`` pairs (640 unless given); the count of a run doing
``--pairs`` pairs (200 unless given) more minus the count of the same run doing none, over the
pairs (``PYTHONHASHSEED=0``; repeated runs agree within ~0.1 %).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve()


def _worker(url: str, held: int, warmup: int, pairs: int) -> None:
    """Set up, warm up, zero the server's counters, run ``pairs`` pairs, dump them."""
    # chatmgmt first, from PYTHONPATH (the tree measured): storage.py puts this tree's src first
    from chatmgmt import ChatManager
    from chatmgmt.model import ChatId, CustomerInfo, EndReason
    from chatmgmt.storage.redis import RedisStorage

    sys.path.insert(0, str(_HERE.parent))
    from storage import GROUP, _setup

    storage = RedisStorage(url, "instructions")
    _setup(storage)
    manager = ChatManager(storage=storage, rng=random.Random(1))
    chats: collections.deque[str] = collections.deque()
    customer = CustomerInfo(channel="web")
    count = 0

    def block(n: int) -> None:
        nonlocal count
        for _ in range(n):
            if len(chats) >= held:
                manager.end_chat(ChatId(chats.popleft()), reason=EndReason.AGENT)
            count += 1
            manager.open_chat(customer, skill_group=GROUP, chat_id=f"c{count}")
            chats.append(f"c{count}")

    pid = str(storage.client.info("server")["process_id"])
    block(warmup)
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    block(pairs)
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)


def _client_worker(url: str, held: int, warmup: int, pairs: int) -> None:
    """Set up, warm up, then ``pairs`` pairs with the collector off (run under callgrind)."""
    import gc

    from chatmgmt import ChatManager
    from chatmgmt.model import ChatId, CustomerInfo, EndReason
    from chatmgmt.storage.redis import RedisStorage

    sys.path.insert(0, str(_HERE.parent))
    from storage import GROUP, _setup

    storage = RedisStorage(url, "client-instructions")
    storage.delete_namespace()
    _setup(storage)
    manager = ChatManager(storage=storage, rng=random.Random(1))
    chats: collections.deque[str] = collections.deque()
    customer = CustomerInfo(channel="web")
    for count in range(warmup + pairs):
        if count == warmup:
            gc.collect()
            gc.disable()
        if len(chats) >= held:
            manager.end_chat(ChatId(chats.popleft()), reason=EndReason.AGENT)
        manager.open_chat(customer, skill_group=GROUP, chat_id=f"c{count}")
        chats.append(f"c{count}")


def _serve(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start a server by ``argv`` and wait (up to a minute) until ``port`` accepts."""
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return server


def _measure_client(tree: Path, args: argparse.Namespace) -> float:
    """Worker instructions per pair for the checkout ``tree`` (one private plain server)."""
    from _common import callgrind_count, free_port, redis_server_argv

    tmp = Path(tempfile.mkdtemp(prefix="chatmgmt-redis-client-cg-"))
    port = free_port()
    server = _serve(redis_server_argv(args.redis_server, port, str(tmp)), port)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        counts = [
            callgrind_count(
                str(_HERE),
                ["--client-worker", url, str(args.held), str(args.warmup), str(n)],
                tree / "src",
            )
            for n in (args.pairs, 0)
        ]
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)
    return (counts[0] - counts[1]) / args.pairs


def _inclusive(dump: Path, function: str) -> int:
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(dump)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(rf"^\s*([\d,]+) .*[:]{function} ", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"{function} not in {dump}")
    return int(found.group(1).replace(",", ""))


def _measure(tree: Path, args: argparse.Namespace) -> float:
    """Server instructions per pair for the checkout ``tree`` (one private server)."""
    from _common import free_port, redis_server_argv

    tmp = Path(tempfile.mkdtemp(prefix="chatmgmt-redis-cg-"))
    port = free_port()
    server = _serve(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp / 'cg.out'}",
            *redis_server_argv(args.redis_server, port, str(tmp)),
        ],
        port,
    )
    try:
        env = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONHASHSEED="0")
        subprocess.run(  # this script's worker over the tree's library
            [
                sys.executable,
                str(_HERE),
                "--worker",
                f"redis://127.0.0.1:{port}/0",
                str(args.held),
                str(args.warmup),
                str(args.pairs),
            ],
            env=env,
            check=True,
        )
    finally:
        server.terminate()
        server.wait(60)
    dumps = sorted(tmp.glob("cg.out.*"))
    if not dumps:
        raise RuntimeError(f"no callgrind dump in {tmp}")
    value = _inclusive(dumps[-1], "readQueryFromClient") / args.pairs
    if args.keep:
        print(f"# {tree}: {dumps[-1]}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return value


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, held, warmup, pairs = sys.argv[2:6]
        _worker(url, int(held), int(warmup), int(pairs))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--client-worker":
        url, held, warmup, pairs = sys.argv[2:6]
        _client_worker(url, int(held), int(warmup), int(pairs))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=None, help="400 (--client: 200)")
    parser.add_argument("--warmup", type=int, default=None, help="760 (--client: 640)")
    parser.add_argument("--held", type=int, default=None, help="160 (--client: 40)")
    parser.add_argument("--client", action="store_true", help="the worker's instructions")
    parser.add_argument("--repeats", type=int, default=1, help="runs per tree (median)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--keep", action="store_true", help="keep and name the dump files")
    args = parser.parse_args()
    defaults = (200, 640, 40) if args.client else (400, 760, 160)
    for name, default in zip(("pairs", "warmup", "held"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    measure = _measure_client if args.client else _measure
    if shutil.which("valgrind") is None or shutil.which(args.redis_server) is None:
        sys.exit("needs valgrind and redis-server")
    from _common import emit

    ours: list[float] = []
    base: list[float] = []
    for _ in range(args.repeats):  # the two trees alternated
        ours.append(measure(_HERE.parent.parent, args))
        if args.baseline is not None:
            base.append(measure(args.baseline.resolve(), args))
    value = statistics.median(ours)
    baseline = statistics.median(base) if base else None
    emit(
        "storage.redis.pair.client_instructions"
        if args.client
        else "storage.redis.pair.server_instructions",
        value,
        "instructions/pair",
        baseline,
        None if baseline is None else baseline / value,
    )
    print(
        f"# runs: ours={[round(v) for v in ours]} baseline={[round(v) for v in base]}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(_HERE.parent))
    main()
