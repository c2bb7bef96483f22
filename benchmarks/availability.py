"""Agents coming and going: the leave policy, queue position events, live overflow.

Lines (JSON, one per figure; memory storage):
- ``leave.requeue.per_chat``: µs per chat the leave policy returns to the queue when an agent
  holding 200 chats goes offline (grace 0, one ``set_agent_status``); baseline the same 200
  chats returned one by one with ``unassign`` on the same data in the same run.
- ``positions.tick.per_chat``: µs per waiting chat told its new place by ``tick()`` after the
  head of a 100-chat queue is served; baseline a host polling ``queue_status()`` for the same
  100 chats (what it did without events).
- ``open_chat.watched``: opens per second with position events and live overflow on (every
  queued chat sets two timers in its unit of work); baseline the same opens with both off.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock

QUIET: dict[str, Any] = {"end_of_chat": {"warn_after_s": 0, "end_after_s": 0}}
REPEATS = 5


def _manager(settings: dict[str, Any]) -> ChatManager:
    return ChatManager(
        MemoryStorage(),
        ChatSettings.from_dict({**QUIET, **settings}),
        clock=ManualClock(0.0),
        rng=random.Random(1),
    )


def _held(n: int) -> ChatManager:
    m = _manager({"assignment": {"leave": {"action": "requeue", "grace_s": 0}}})
    m.register_agent(Agent("ann", skill_groups={"g"}, reception_limit=n, status="online"), now=0)
    for i in range(n):
        m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=1.0)
    return m


def _leave(n: int) -> tuple[float, float]:
    policy, by_hand = [], []
    for _ in range(REPEATS):
        m = _held(n)
        t0 = time.perf_counter()
        m.set_agent_status("ann", AgentStatus.OFFLINE, now=2.0)
        policy.append((time.perf_counter() - t0) / n * 1e6)
        assert m.agent("ann").active == 0
        m = _held(n)
        m.set_agent_status("ann", AgentStatus.BUSY, now=2.0)  # no drain gives them back
        t0 = time.perf_counter()
        for i in range(n):
            m.unassign(f"c{i}", now=2.0)
        by_hand.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(policy), statistics.median(by_hand)


def _queue(n: int) -> ChatManager:
    m = _manager({"assignment": {"queue": {"position_events_s": 1}}})
    m.register_agent(Agent("ann", skill_groups={"g"}, reception_limit=1, status="online"), now=0)
    for i in range(n + 1):
        m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=1.0 + i)
    m.tick(now=n + 2.0)  # the first places are told
    return m


def _positions(n: int) -> tuple[float, float]:
    events, polls = [], []
    for _ in range(REPEATS):
        m = _queue(n)
        m.end_chat("c0", now=n + 3.0)  # c1 is served: c2 .. cn move up
        t0 = time.perf_counter()
        m.tick(now=n + 10.0)
        events.append((time.perf_counter() - t0) / (n - 1) * 1e6)
        t0 = time.perf_counter()
        for i in range(2, n + 1):
            m.queue_status(f"c{i}", now=n + 10.0)
        polls.append((time.perf_counter() - t0) / (n - 1) * 1e6)
    return statistics.median(events), statistics.median(polls)


def _opens(settings: dict[str, Any], n: int) -> float:
    m = _manager(settings)
    m.register_agent(Agent("ann", skill_groups={"g"}, reception_limit=1, status="online"), now=0)
    t0 = time.perf_counter()
    for i in range(n):
        m.open_chat(CustomerInfo(name="x"), skill_group="g", now=1.0 + i * 0.001)
    return n / (time.perf_counter() - t0)


def main() -> None:
    policy, by_hand = _leave(200)
    emit("leave.requeue.per_chat", policy, "us", by_hand, by_hand / policy)
    events, polls = _positions(100)
    emit("positions.tick.per_chat", events, "us", polls, polls / events)
    watched = {
        "assignment": {
            "queue": {"position_events_s": 5},
            "overflow": [{"target_group": "h", "conditions": ["all_busy"]}],
        }
    }
    on, off = [], []
    for _ in range(REPEATS):  # interleaved, so load changes hit both alike
        on.append(_opens(watched, 3000))
        off.append(_opens({}, 3000))
    value, baseline = statistics.median(on), statistics.median(off)
    emit("open_chat.watched", value, "opens/s", baseline, value / baseline)


if __name__ == "__main__":
    main()
