"""kill -9 of the PostgreSQL SERVER under load, with ``synchronous_commit=on``: nothing a worker
saw committed is lost.

A private server of this test's own (never the shared one) serves four hammer workers
(``hammer_helpers``: every chat whose ``open_chat`` returned is logged before anything else
happens to it). The postmaster and its backends are SIGKILLed twice at random moments and
restarted (crash recovery replays the WAL); the workers see :class:`StorageError` while it is
down and go on. Afterwards every logged chat is stored, and ``reconcile()`` + ``tick()`` leave
every invariant true (``check_end``, which also runs ``chatmgmt.testing.check_invariants``).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from storage.hammer_helpers import (
    check_end,
    hammer_worker,
    read_opened,
    read_stats,
    restore_agents,
    setup_agents,
)
from storage.postgres_helpers import start_private
from storage.test_hammer import WORKERS, _postgres

pytestmark = pytest.mark.postgres


def test_server_kill_9_loses_nothing_committed(tmp_path: Path) -> None:
    server = start_private(synchronous_commit="on")
    b = None
    procs: list[Any] = []
    try:
        b = _postgres(server.url)
        setup_agents(b.storage)
        ctx = multiprocessing.get_context("spawn")
        counts = ctx.Array("i", WORKERS)
        log_dir = str(tmp_path / "log")
        os.mkdir(log_dir)
        rng = random.Random(15)
        procs = [
            ctx.Process(
                target=hammer_worker,
                args=(b.factory, i, 0, 500 + i, counts, log_dir),
                daemon=True,
            )
            for i in range(WORKERS)
        ]
        for p in procs:
            p.start()
        deadline = time.monotonic() + 60
        while min(counts[:]) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        crashes = 0
        for _ in range(2):
            before = sum(counts[:])
            time.sleep(rng.uniform(0.3, 1.0))
            server.kill9()
            crashes += 1
            time.sleep(0.3)
            server.start()  # crash recovery
            deadline = time.monotonic() + 60
            while sum(counts[:]) < before + 8 and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.5)
        for p in procs:
            assert p.pid is not None
            os.kill(p.pid, signal.SIGKILL)
            p.join(10)
        tally, refusals, crashed, _done = read_stats(log_dir)
        print(f"crashes={crashes} tally={dict(tally)} refusals={dict(refusals)}")
        assert not crashed, crashed
        opened = read_opened(log_dir)
        assert crashes == 2 and len(opened) > 0
        b.storage.close()  # its connections died with the server: a fresh pool, same namespace
        b.storage = b.factory()
        manager = restore_agents(b.storage)
        manager.tick()
        stats = check_end(b.storage, b.snapshot(), opened)
        assert stats["opened"] == len(set(opened)) > 0, stats
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        if b is not None:
            b.storage.close()
        server.stop()
