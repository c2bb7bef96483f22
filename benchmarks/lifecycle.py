"""Lifecycle benchmark: the cost of ``ChatManager.tick`` follows what is due, not what is open.

Setup, through the public API on the in-memory default: N open Real-Time chats (opened with
``ChatManager.open_chat``, so every deadline is planned and stored the way a host's would be),
in six cohorts of 1% of N opened 10 s apart, then the other 94% later. Customer inactivity ends
a chat after 600 s (no warning, to fire exactly one deadline per chat). Tick ``k`` runs when
cohort ``k`` (and only it) is past its deadline, so each tick fires 1% of N deadlines: every
fired deadline ends a chat through the real code (compare-and-set, prompt message, events,
slot release, queue drain).

Ours: ``ChatManager.tick(now)`` (the timer store's index). Baseline, in the same run on the same
data, alternating with ours: a tick without the index — scan every open chat, plan its deadlines
with the same pure core, end those that are due through the same manager.

Lines (JSON, one per figure):
- ``lifecycle.tick_us_per_due.{10k,100k}``: median µs per fired deadline; baseline the scan.
- ``lifecycle.tick_growth.10k_to_100k``: the 100k figure over the 10k one (target <= 1.5);
  baseline the scan's growth; ``ratio`` > 1 means we grow less than the scan.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, ChatState, CustomerInfo
from chatmgmt.lifecycle import planned_timers
from chatmgmt.model import AgentId, EndReason
from chatmgmt.testing import ManualClock

END_AFTER = 600.0
COHORTS = 6
T0 = 1_000_000.0


def _setup(n: int) -> tuple[ChatManager, ManualClock]:
    settings = ChatSettings.from_dict(
        {"end_of_chat": {"warn_after_s": 0, "end_after_s": END_AFTER}}
    )
    clock = ManualClock(T0)
    manager = ChatManager(settings=settings, clock=clock, rng=random.Random(5))
    for i in range(max(1, n // 50)):
        manager.register_agent(
            Agent(AgentId(f"a{i}"), reception_limit=60, account_order=i, status=AgentStatus.ONLINE)
        )
    cohort = n // 100
    opened = 0
    for k in range(COHORTS):
        clock.set(T0 + 10 * k)
        for _ in range(cohort):
            manager.open_chat(CustomerInfo(partner_id=f"c{opened}"))
            opened += 1
    clock.set(T0 + 500)
    while opened < n:
        manager.open_chat(CustomerInfo(partner_id=f"c{opened}"))
        opened += 1
    return manager, clock


def _scan_tick(manager: ChatManager, now: float) -> int:
    fired = 0
    settings = manager.settings
    for chat in manager.list_chats(state=ChatState.ACTIVE):
        for timer in planned_timers(
            chat, end_of_chat=settings.end_of_chat, assignment=settings.assignment
        ):
            if timer.due_at <= now:
                manager.end_chat(chat.id, reason=EndReason.CUSTOMER_INACTIVITY, now=now)
                fired += 1
    return fired


def measure(n: int) -> tuple[float, float]:
    manager, clock = _setup(n)
    ours: list[float] = []
    scan: list[float] = []
    for k in range(COHORTS):
        now = T0 + 10 * k + END_AFTER + 1
        clock.set(now)
        t0 = time.perf_counter()
        fired = manager.tick(now, limit=1_000_000) if k % 2 == 0 else _scan_tick(manager, now)
        elapsed = time.perf_counter() - t0
        assert fired == n // 100, (k, fired)
        (ours if k % 2 == 0 else scan).append(elapsed / fired * 1e6)
    return statistics.median(ours), statistics.median(scan)


def main() -> None:
    results = {}
    for n, label in ((10_000, "10k"), (100_000, "100k")):
        value, baseline = measure(n)
        results[label] = (value, baseline)
        emit(f"lifecycle.tick_us_per_due.{label}", value, "us", baseline, baseline / value)
    growth = results["100k"][0] / results["10k"][0]
    base_growth = results["100k"][1] / results["10k"][1]
    emit("lifecycle.tick_growth.10k_to_100k", growth, "x", base_growth, base_growth / growth)


if __name__ == "__main__":
    main()
