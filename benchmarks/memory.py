"""Memory benchmark: what a chat costs in memory, and that retention keeps the total flat.

Each figure runs in a fresh Python process (``python benchmarks/memory.py <case>``), on the
in-memory default through the public API (anonymous customers, one agent, one customer message
per chat, a consumer claiming and acknowledging every outbox event as the webhook dispatcher
does). Memory is the process's RSS from ``/proc/self/statm`` (Linux), after ``gc.collect()``.

Lines (JSON, one per figure):
- ``memory.bytes_per_open_chat``: RSS growth per chat left open (ACTIVE), 20k chats.
- ``memory.bytes_per_ended_chat``: RSS growth per chat ended and not purged yet, 20k chats.
- ``memory.churn_growth_MiB.100k``: RSS growth over 100k chats opened and ended after a warm-up
  of 20k, retention on (60 s of clock time, about 6,000 chats kept); baseline the same run with
  retention off (``ended_chats_s=0``), ``ratio`` = baseline / ours.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

from chatmgmt import ChatManager, ChatSettings, CustomerInfo
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import make_agent, sequential_ids

SMALL = 20_000
TOTAL = 100_000
STEP_S = 0.01


def _rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _drain(storage: MemoryStorage, now: float) -> None:
    while batch := storage.outbox.claim("consumer", 5000, now, 30.0):
        storage.outbox.ack([entry.id for entry in batch])


def _manager(retention_s: float) -> tuple[ChatManager, MemoryStorage]:
    settings = ChatSettings.from_dict(
        {"retention": {"ended_chats_s": retention_s, "purge_interval_s": 5.0}}
    )
    storage = MemoryStorage()
    manager = ChatManager(storage, settings, ids=sequential_ids())
    manager.register_agent(make_agent("ann", limit=TOTAL), now=0.0)
    return manager, storage


def _run(manager: ChatManager, storage: MemoryStorage, count: int, end: bool, now: float) -> float:
    for i in range(count):
        now += STEP_S
        chat = manager.open_chat(CustomerInfo(), now=now)
        manager.send_message(chat.id, "hello, I need help with my order", now=now)
        if end:
            manager.end_chat(chat.id, now=now)
        if i % 500 == 0:
            _drain(storage, now)
            manager.tick(now=now)
    _drain(storage, now)
    return now


def case(name: str) -> float:
    """One measurement in this process: bytes per chat, or MiB grown over the churn."""
    if name in ("open", "ended"):
        manager, storage = _manager(0.0)
        now = _run(manager, storage, 500, name == "ended", 1_000.0)  # warm the caches
        before = _rss()
        _run(manager, storage, SMALL, name == "ended", now)
        return (_rss() - before) / SMALL
    manager, storage = _manager(60.0 if name == "churn" else 0.0)
    now = _run(manager, storage, SMALL, True, 1_000.0)
    before = _rss()
    _run(manager, storage, TOTAL, True, now)
    return (_rss() - before) / 2**20


def _in_child(name: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, name], check=True, capture_output=True, text=True
    ).stdout
    return float(json.loads(out)["value"])


def main() -> None:
    """Print every figure (each measured in its own process)."""
    if len(sys.argv) > 1:
        print(json.dumps({"value": case(sys.argv[1])}))
        return
    emit("memory.bytes_per_open_chat", _in_child("open"), "bytes", None, None)
    emit("memory.bytes_per_ended_chat", _in_child("ended"), "bytes", None, None)
    ours = _in_child("churn")
    baseline = _in_child("churn_kept")
    emit(
        "memory.churn_growth_MiB.100k",
        ours,
        "MiB",
        baseline,
        baseline / ours if ours > 0 else None,
    )


if __name__ == "__main__":
    main()
