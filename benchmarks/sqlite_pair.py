"""Where an open and its end spend their time on SQLite: the write lock, CPU, instructions.

The workload of ``benchmarks/storage.py`` (200 agents ONLINE with limit 3 in one skill group;
every open also pays the end of the oldest of 40 held chats) on one SQLite file.

Default: 1 and then 4 spawned processes (``--procs``) for ``--seconds`` each; every worker
times its own units (a unit's *hold* runs from its writer's turn taken to its turn given
back, ``COMMIT`` included; its *wait* is the time to get the turn) and its CPU time
(``time.process_time``).
Lines, per process count (no baseline: these explain ``storage.sqlite.open_per_s``):

- ``storage.sqlite.pair.per_s.<n>proc``: open+end pairs per second;
- ``storage.sqlite.pair.cpu_us.<n>proc``: the workers' CPU time per pair;
- ``storage.sqlite.pair.cores.<n>proc``: cores the workers used (CPU time over wall time);
- ``storage.sqlite.lock.held.<n>proc``: the share of the time some worker held the lock;
- ``storage.sqlite.lock.hold_us.<n>proc`` and ``.wait_us.<n>proc``: per unit;
- ``storage.sqlite.lock.handoff_us.<n>proc``: from one unit's turn given back to the next
  unit's turn taken, when that unit was already waiting (the kernel woke it at the release;
  the lock stays free until it runs), and ``.idle_waited.<n>proc``: the share of the time the
  lock sat free so while a writer waited;
- ``storage.sqlite.pair.switches.<n>proc`` and ``.preempted.<n>proc``: the workers' voluntary
  and involuntary context switches per unit (a waiter that the kernel wakes at a release
  and that finds the lock taken again sleeps once more: more than one voluntary switch per
  unit);
- ``storage.sqlite.lock.hold_cpu_us.<n>proc``: the holder's own CPU time per unit, from its
  turn taken to its turn given back (``time.thread_time``: user and system, ``COMMIT``'s
  writes included; unlike the wall-clock hold it does not grow while the holder waits for a
  core on a busy machine, so it compares two trees measured at different loads).

``--frames``: WAL frames written per commit (one process, 200 pairs after 400, the WAL
started over first and not checkpointed meanwhile; every frame is one page written by a
``COMMIT``), line ``storage.sqlite.pair.wal_frames``, and per B-tree (table or index) the
frames per commit, lines ``storage.sqlite.pair.wal_frames.<name>``; with ``--baseline DIR``
the tree in ``DIR`` is counted too (its ``src``, in a subprocess) as each line's baseline.

``--lock-instructions``: instructions inside the write lock per unit (one process, 200 pairs
after 400: callgrind collects only from a writer's turn taken to its turn given back, toggled
by the client request ``CALLGRIND_TOGGLE_COLLECT``, issued through a few bytes of x86-64 code;
``COMMIT`` included, the kernel's side of its writes not), line
``storage.sqlite.lock.instructions``, with ``--baseline DIR`` as for ``--instructions``. With
``--dropped`` (line ``storage.sqlite.lock.instructions.dropped``) another connection commits a
write before each turn (not counted): every unit then starts with its page cache dropped and
reads its pages again, as under several processes (the kernel's side of those reads not
counted).

``--instructions``: instructions per open+end pair of one process, counted by callgrind (600
pairs after 400 of warm-up, minus the same run with none; ``PYTHONHASHSEED=0``), line
``storage.sqlite.pair.instructions``; with ``--baseline DIR`` the same count for the tree in
``DIR`` (its ``src``) as the baseline, in the same run. Needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import callgrind_count, emit, emit_instructions

AGENTS, LIMIT, HELD, GROUP = 200, 3, 40, "g"


def _store(path: str, namespace: str) -> Any:
    from chatmgmt.storage.sqlite import SQLiteStorage

    return SQLiteStorage(path, namespace)


def _setup(path: str, namespace: str) -> None:
    from chatmgmt import ChatManager
    from chatmgmt.model import Agent, AgentId, AgentStatus

    storage = _store(path, namespace)
    manager = ChatManager(storage=storage)
    for i in range(AGENTS):
        agent = Agent(
            AgentId(f"agent-{i:03d}"),
            skill_groups=frozenset({GROUP}),
            reception_limit=LIMIT,
            account_order=i,
            status=AgentStatus.ONLINE,
        )
        manager.register_agent(agent, now=0.0)
    storage.close()


class _Pairs:
    """Open+end pairs on one manager: each open ends the oldest held chat first."""

    def __init__(self, path: str, namespace: str, seed: int, prefix: str) -> None:
        from chatmgmt import ChatManager
        from chatmgmt.model import CustomerInfo

        self.manager = ChatManager(storage=_store(path, namespace), rng=random.Random(seed))
        self.held: deque[str] = deque()
        self.customer = CustomerInfo(channel="web")
        self.prefix = prefix
        self.n = 0

    def pair(self) -> bool:
        from chatmgmt.model import EndReason

        if len(self.held) >= HELD:
            self.manager.end_chat(self.held.popleft(), reason=EndReason.AGENT)
        self.n += 1
        chat_id = f"{self.prefix}{self.n}"
        chat = self.manager.open_chat(self.customer, skill_group=GROUP, chat_id=chat_id)
        if chat.agent_id is None:
            return False
        self.held.append(chat_id)
        return True


class _LockTimes:
    """Times this process's units: wraps the database's turn taking and giving back."""

    def __init__(self) -> None:
        from chatmgmt.storage import _sqlite_db

        self.units, self.wait, self.hold, self._entered = 0, 0.0, 0.0, 0.0
        self.hold_cpu, self._entered_cpu, self._asked = 0.0, 0.0, 0.0
        #: (asked, taken, given back) of each unit, perf_counter (CLOCK_MONOTONIC: one clock
        #: for every process of the machine), for the hand-offs (see :func:`handoffs`)
        self.spans: list[tuple[float, float, float]] = []
        begin, turn = _sqlite_db.SQLiteDatabase._begin, _sqlite_db._turn

        def timed_begin(db: Any, conn: Any) -> Any:
            start = self._asked = time.perf_counter()
            fd = begin(db, conn)
            self._entered = time.perf_counter()
            self._entered_cpu = time.thread_time()
            self.wait += self._entered - start
            return fd

        def timed_turn(fd: int, *, take: bool) -> None:
            if not take:
                self.units += 1
                self.hold_cpu += time.thread_time() - self._entered_cpu
                given = time.perf_counter()
                self.hold += given - self._entered
                turn(fd, take=take)
                self.spans.append((self._asked, self._entered, given))
                return
            turn(fd, take=take)

        _sqlite_db.SQLiteDatabase._begin = timed_begin
        _sqlite_db._turn = timed_turn

    def reset(self) -> None:
        self.units, self.wait, self.hold, self.hold_cpu = 0, 0.0, 0.0, 0.0
        self.spans = []


def handoffs(spans: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(mean hand-off in seconds, share of the time the lock was free while a writer waited)
    from every unit's (asked, taken, given back): a hand-off runs from one unit's turn given
    back to the next unit's turn taken, counted when that next unit had asked before (it was
    waiting: the lock sat free only because the woken waiter had not run yet)."""
    ordered = sorted(spans, key=lambda span: span[1])
    gaps = [
        after[1] - before[2]
        for before, after in itertools.pairwise(ordered)
        if after[0] < before[2] <= after[1]
    ]
    if not gaps or len(ordered) < 2:
        return 0.0, 0.0
    return sum(gaps) / len(gaps), sum(gaps) / (ordered[-1][2] - ordered[0][1])


def _worker(
    path: str, namespace: str, index: int, seconds: float, barrier: Any, results: Any
) -> None:
    times = _LockTimes()
    pairs = _Pairs(path, namespace, index, f"p{index}-")
    barrier.wait(120)
    times.reset()
    count = 0
    switches = _switches()
    cpu, start = time.process_time(), time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        count += pairs.pair()
    wall = time.perf_counter() - start
    switches = tuple(now - before for now, before in zip(_switches(), switches, strict=True))
    results.put(
        (
            count,
            time.process_time() - cpu,
            wall,
            times.units,
            times.wait,
            times.hold,
            times.hold_cpu,
            times.spans,
            switches,
        )
    )


def _switches() -> tuple[int, int]:
    """This process's (voluntary, involuntary) context switches so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw


def measure(procs: int, seconds: float) -> None:
    path = str(Path(tempfile.mkdtemp(prefix="chatmgmt-sqlite-pair-")) / "bench.db")
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    _setup(path, namespace)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(path, namespace, i, seconds, barrier, results))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    rows = [results.get(timeout=seconds + 180) for _ in workers]
    for w in workers:
        w.join(30)
    shutil.rmtree(Path(path).parent, ignore_errors=True)
    pairs = sum(r[0] for r in rows)
    cpu, wall = sum(r[1] for r in rows), max(r[2] for r in rows)
    units, wait, hold = sum(r[3] for r in rows), sum(r[4] for r in rows), sum(r[5] for r in rows)
    hold_cpu = sum(r[6] for r in rows)
    handoff, idle = handoffs([span for r in rows for span in r[7]])
    voluntary, involuntary = sum(r[8][0] for r in rows), sum(r[8][1] for r in rows)
    tag = f"{procs}proc"
    emit(f"storage.sqlite.pair.per_s.{tag}", pairs / wall, "pairs/s", None, None)
    emit(f"storage.sqlite.pair.cpu_us.{tag}", cpu / pairs * 1e6, "us/pair", None, None)
    emit(f"storage.sqlite.pair.cores.{tag}", cpu / wall, "cores", None, None)
    emit(f"storage.sqlite.lock.held.{tag}", hold / wall, "share of time", None, None)
    emit(f"storage.sqlite.lock.hold_us.{tag}", hold / units * 1e6, "us/unit", None, None)
    emit(f"storage.sqlite.lock.wait_us.{tag}", wait / units * 1e6, "us/unit", None, None)
    emit(f"storage.sqlite.lock.hold_cpu_us.{tag}", hold_cpu / units * 1e6, "us/unit", None, None)
    emit(f"storage.sqlite.lock.handoff_us.{tag}", handoff * 1e6, "us/hand-off", None, None)
    emit(f"storage.sqlite.lock.idle_waited.{tag}", idle, "share of time", None, None)
    emit(f"storage.sqlite.pair.switches.{tag}", voluntary / units, "voluntary/unit", None, None)
    emit(
        f"storage.sqlite.pair.preempted.{tag}", involuntary / units, "involuntary/unit", None, None
    )


# --------------------------------------------------------------------------- WAL frames


def _warmed(what: str) -> tuple[str, _Pairs]:
    """A new database (in its own temporary directory) set up, and a manager on it that has
    made 400 open+end pairs: the one-process counts below start from there."""
    path = str(Path(tempfile.mkdtemp(prefix=f"chatmgmt-sqlite-{what}-")) / "bench.db")
    _setup(path, "p1")
    run = _Pairs(path, "p1", 1, "c")
    for _ in range(400):
        run.pair()
    return path, run


def frames_per_commit(pairs: int = 200) -> dict[str, float]:
    """WAL frames per commit of ``pairs`` open+end pairs after 400 (one process): the total
    under ``""``, and by the B-tree each page belongs to (``dbstat``; page 1, the header, is
    ``sqlite_schema``)."""
    import sqlite3
    import struct
    from collections import Counter

    from chatmgmt.storage import _sqlite_db

    _sqlite_db.CHECKPOINT_EVERY = 1 << 62  # no checkpoint while counting
    path, run = _warmed("frames")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for _ in range(pairs):
        run.pair()
    wal = Path(path + "-wal").read_bytes()
    size = struct.unpack(">I", wal[8:12])[0]
    owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    conn.close()
    shutil.rmtree(Path(path).parent, ignore_errors=True)
    pages: Counter[str] = Counter()
    commits = 0
    for at in range(32, len(wal) - size - 23, size + 24):
        page, commit = struct.unpack(">II", wal[at : at + 8])
        pages[owner.get(page, "(new)")] += 1
        commits += commit != 0
    return {"": sum(pages.values()) / commits} | {k: v / commits for k, v in pages.items()}


def emit_frames(baseline: Path | None) -> None:
    """The ``--frames`` lines: this tree's counts, the baseline tree's beside them."""
    import subprocess

    ours = frames_per_commit()
    base: dict[str, float] = {}
    if baseline is not None:
        env = {**os.environ, "PYTHONPATH": str(baseline / "src")}
        out = subprocess.run(
            [sys.executable, __file__, "--frames-json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        base = json.loads(out.stdout)
    for name in sorted(set(ours) | set(base), key=lambda n: (n != "", -ours.get(n, 0.0), n)):
        value, before = ours.get(name, 0.0), base.get(name)
        ratio = None if before is None or not value else before / value
        line = "storage.sqlite.pair.wal_frames" + (f".{name}" if name else "")
        emit(line, value, "frames/commit", before, ratio)


# --------------------------------------------------------------------------- lock instructions

#: ``CALLGRIND_TOGGLE_COLLECT`` for x86-64: load the request block's address, zero the result,
#: valgrind's magic rotations of ``rdi`` (a no-op on a real CPU) and ``xchg rbx, rbx``.
_TOGGLE_CODE = bytes.fromhex("4889f831d248c1c70348c1c70d48c1c73d48c1c7334887db4889d0c3")
_TOGGLE_COLLECT = 0x43540002  # VG_USERREQ_TOOL_BASE('C', 'T') + 2


def _toggler() -> Any:
    """A function that toggles callgrind's collection (a no-op outside valgrind)."""
    import ctypes
    import mmap

    code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(_TOGGLE_CODE)
    call = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)(
        ctypes.addressof(ctypes.c_char.from_buffer(code))
    )
    block = (ctypes.c_ulong * 6)(_TOGGLE_COLLECT, 0, 0, 0, 0, 0)
    where = ctypes.addressof(block)

    def toggle() -> None:
        call(where)

    toggle.keep = (code, call, block)  # type: ignore[attr-defined]
    return toggle


def lock_workload(pairs: int, dropped: bool = False) -> None:
    """The measured process of ``--lock-instructions``: collection toggled on at each turn
    taken and off at each turn given back, for ``pairs`` pairs after 400. ``dropped``: before
    each turn (not counted) another connection commits a write, so that every unit starts as
    under several processes: SQLite drops a connection's page cache when another one has
    committed since its last transaction, and the unit reads its pages again."""
    import sqlite3

    from chatmgmt.storage import _sqlite_db

    toggle, measuring = _toggler(), [False]
    begin, turn = _sqlite_db.SQLiteDatabase._begin, _sqlite_db._turn
    other: list[sqlite3.Connection] = []

    def counted_begin(db: Any, conn: Any) -> Any:
        if measuring[0]:
            if dropped:
                if not other:
                    other.append(sqlite3.connect(db.path, isolation_level=None))
                    other[0].execute("CREATE TABLE IF NOT EXISTS bench_other (n INTEGER)")
                other[0].execute("INSERT INTO bench_other VALUES (1)")
            toggle()
        return begin(db, conn)

    def counted_turn(fd: int, *, take: bool) -> None:
        turn(fd, take=take)
        if not take and measuring[0]:
            toggle()

    _sqlite_db.SQLiteDatabase._begin = counted_begin
    _sqlite_db._turn = counted_turn
    path, run = _warmed("lock")
    gc.collect()
    gc.disable()
    measuring[0] = True
    for _ in range(pairs):
        run.pair()
    measuring[0] = False
    for conn in other:
        conn.close()
    shutil.rmtree(Path(path).parent, ignore_errors=True)


def lock_per_unit(src: Path, pairs: int, dropped: bool = False) -> float:
    """Instructions inside the write lock per unit (two units per pair) over ``src``."""
    more = ["--dropped"] if dropped else []
    collected = callgrind_count(
        __file__, ["--lock-workload", str(pairs), *more], src, ["--collect-atstart=no"]
    )
    return collected / (2 * pairs)


# --------------------------------------------------------------------------- instructions


def workload(pairs: int) -> None:
    """The measured process of ``--instructions``: set up, 400 pairs, then ``pairs`` pairs."""
    path, run = _warmed("pair")
    gc.collect()
    gc.disable()
    for _ in range(pairs):
        run.pair()
    shutil.rmtree(Path(path).parent, ignore_errors=True)


def count(src: Path, pairs: int) -> int:
    """Instructions of one run of :func:`workload` over the package in ``src``."""
    return callgrind_count(__file__, ["--workload", str(pairs)], src)


def per_pair(src: Path, pairs: int) -> float:
    return (count(src, pairs) - count(src, 0)) / pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per run")
    parser.add_argument("--procs", default="1,4", help="process counts, comma-separated")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--pairs", type=int, default=600, help="pairs counted (--instructions)")
    parser.add_argument("--baseline", type=Path, help="another tree: its src is the baseline")
    parser.add_argument("--frames", action="store_true", help="count WAL frames per commit")
    parser.add_argument("--lock-instructions", action="store_true", help="callgrind, in lock")
    parser.add_argument("--workload", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--dropped", action="store_true", help="--lock-instructions with the page cache dropped"
    )
    parser.add_argument("--lock-workload", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--frames-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:  # the package from PYTHONPATH (see count)
        workload(args.workload)
        return
    if args.lock_workload is not None:  # the package from PYTHONPATH (see lock_per_unit)
        lock_workload(args.lock_workload, args.dropped)
        return
    if args.lock_instructions:
        emit_instructions(
            "storage.sqlite.lock.instructions" + (".dropped" if args.dropped else ""),
            "instructions/unit",
            lambda src: lock_per_unit(src, 200, args.dropped),
            args.baseline,
        )
        return
    if args.frames_json:  # the package from PYTHONPATH (see emit_frames)
        print(json.dumps(frames_per_commit()))
        return
    if args.frames:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        emit_frames(args.baseline)
        return
    if not args.instructions:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        for procs in (int(n) for n in args.procs.split(",")):
            measure(procs, args.seconds)
        return
    emit_instructions(
        "storage.sqlite.pair.instructions",
        "instructions/pair",
        lambda src: per_pair(src, args.pairs),
        args.baseline,
    )


if __name__ == "__main__":
    main()
