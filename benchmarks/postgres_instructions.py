"""Instructions per open+end pair on PostgreSQL, counted by callgrind: figures that machine
load does not move (``benchmarks/postgres_pair.py`` measures CPU time, which it does).

The workload of ``postgres_pair.py`` (200 agents, 40 held chats, every open paying one end),
ours (``ChatManager`` on ``PostgresStorage``, one connection) and the naive unsafe
read-modify-write as the baseline, on a private server (``synchronous_commit=on``). Each figure
is the count of a run of ``N2`` pairs minus that of a run of ``N1`` pairs (the same set-up and
warm-up), divided by ``N2 - N1``:

- ``storage.postgres.pair.client_instructions``: the worker process under
  ``valgrind --tool=callgrind`` (250 - 50 pairs);
- with ``--side server`` (or ``both``), ``storage.postgres.pair.server_instructions``: the
  server backend that served the pairs, ``postgres`` itself run under callgrind (a fresh
  server per run; 440 - 40 pairs; background processes and autovacuum workers not counted).
  Slow: ~1 minute per run. The server's autovacuum runs when it runs (wall time): its
  statistics change the plans of the statements prepared after it, and two runs of one tree
  differed by up to ~10 % (2026-12-07, late evening: 2,740k and 3,108k). ``--autovacuum off``
  leaves the tables unanalyzed: runs of one tree then agree within ~1 % (the figures to
  compare two trees by; a live database's plans are the ``on`` ones).

``--src DIR`` measures the library in another checkout's ``src`` (a comparison of two
trees). Needs ``valgrind`` and the PostgreSQL binaries (``tests/storage/postgres_helpers.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.append(str(Path(__file__).parent.parent / "src"))  # after PYTHONPATH (``--src``)

from _common import emit

_HERE = Path(__file__).resolve()

#: the library measured (``--src``: another checkout's ``src``, for a comparison)
_SRC = [str(_HERE.parent.parent / "src")]

#: the measured server's ``autovacuum`` setting (``--autovacuum``)
_AUTOVACUUM = ["on"]


def _helpers() -> Any:
    path = _HERE.parent.parent / "tests" / "storage" / "postgres_helpers.py"
    spec = importlib.util.spec_from_file_location("_pg_helpers", path)
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    return helpers


def _worker(url: str, pairs: int, naive: bool) -> None:
    """Set up, warm up, then ``pairs`` open+end pairs (the process callgrind counts); prints
    the process id of the server backend that served them."""
    # chatmgmt first, from PYTHONPATH (``--src``): postgres_pair puts this tree's src first
    importlib.import_module("chatmgmt")
    from postgres_pair import _Pairs

    from storage import HELD

    work = _Pairs(url, naive, one_connection=True)
    work.block(HELD + 50)
    work.block(pairs)
    if naive:
        print(work.store.db.info.backend_pid)
    else:
        with work.storage.database.pool.connection() as conn:
            print(conn.info.backend_pid)


def _run_worker(url: str, pairs: int, naive: bool, valgrind: bool) -> int:
    """Run :func:`_worker` in a new process; its instruction count if under callgrind, else
    the process id of its server backend."""
    cmd = [sys.executable, str(_HERE), "--worker", url, str(pairs), "naive" if naive else "ours"]
    if valgrind:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    env = dict(os.environ, PYTHONPATH=_SRC[0])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    if not valgrind:
        return int(done.stdout.split()[-1])
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr[-2000:]
    return int(found.group(1))


def _client(naive: bool, n1: int = 50, n2: int = 250) -> float:
    server = _helpers().start_private(synchronous_commit="on")
    try:
        a = _run_worker(server.url, n1, naive, valgrind=True)
        b = _run_worker(server.url, n2, naive, valgrind=True)
    finally:
        server.stop()
    return (b - a) / (n2 - n1)


def _backend(out: str, pid: int) -> int:
    """The instructions of server backend ``pid`` (its callgrind file is written when it
    exits, after its client has gone: waited for)."""
    deadline = time.monotonic() + 300
    while True:
        try:
            with open(f"{out}/cg.{pid}") as f:
                found = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.MULTILINE)
            if found:
                return int(found.group(1))
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no callgrind totals for backend {pid}")
        time.sleep(1)


def _server(naive: bool, n1: int = 40, n2: int = 440) -> float:
    helpers = _helpers()
    server = helpers.start_private(synchronous_commit="on")
    ctl = os.path.join(server.bindir, "pg_ctl")
    subprocess.run(
        helpers._as_user([ctl, "-D", server.data, "-m", "fast", "stop"]),
        check=True,
        capture_output=True,
    )
    out = tempfile.mkdtemp(prefix="chatmgmt-cg-")
    if os.geteuid() == 0:
        shutil.chown(out, helpers.PG_USER)
    opts = {
        "listen_addresses": "127.0.0.1",
        "port": str(server.port),
        "unix_socket_directories": "",
        "synchronous_commit": "on",
        "fsync": "on",
        "shared_buffers": "128MB",
        "autovacuum": _AUTOVACUUM[0],
    }
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p"]
    cmd += [os.path.join(server.bindir, "postgres"), "-D", server.data]
    for name, value in opts.items():
        cmd += ["-c", f"{name}={value}"]
    proc = subprocess.Popen(
        helpers._as_user(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        import psycopg

        deadline = time.monotonic() + 300
        while True:
            try:
                psycopg.connect(server.url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        counts = []
        for pairs in (n1, n2):
            counts.append(_backend(out, _run_worker(server.url, pairs, naive, valgrind=False)))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(server.tmp, ignore_errors=True)
    return (counts[1] - counts[0]) / (n2 - n1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--side", choices=("client", "server", "both"), default="client", help="what to count"
    )
    parser.add_argument("--src", help="measure the library in this src directory instead")
    parser.add_argument(
        "--autovacuum",
        choices=("on", "off"),
        default="on",
        help="the server's autovacuum (--side server; off: repeatable counts)",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("URL", "PAIRS", "KIND"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        url, pairs, kind = args.worker
        _worker(url, int(pairs), kind == "naive")
        return
    if args.src:
        _SRC[0] = str(Path(args.src).resolve())
    _AUTOVACUUM[0] = args.autovacuum
    for side, count in (("client", _client), ("server", _server)):
        if args.side in (side, "both"):
            ours, naive = count(False), count(True)
            name = f"storage.postgres.pair.{side}_instructions"
            emit(name, ours, "instructions/pair", naive, ours / naive)


if __name__ == "__main__":
    main()
