"""Lifecycle benchmark: the cost of a tick follows what is due, not how many chats are open.

Setup: N open Real-Time chats in the in-memory storage, each with its planned deadlines in the
timer store (``plan_timers``); 1% of them are past their customer-inactivity end. One tick fires
every due deadline the way the manager does: lease the due timers (``TimerStore.claim_due``),
read each chat, drop stale timers (``is_stale``), end the chat (``check_end``), record the
firing (``mark_fired``) with a compare-and-set, re-plan and cancel what the new state does not
need. The baseline is a tick without a timer index: scan every open chat, plan its deadlines and
fire the due ones — same data, same run.

Lines (JSON, one per figure):
- ``lifecycle.tick_us_per_due.{10k,100k}``: median µs per fired deadline; baseline the scan.
- ``lifecycle.tick_growth.10k_to_100k``: the 100k figure over the 10k one (target <= 1.5);
  baseline the scan's growth. ``ratio`` > 1 means we grow less than the scan.

This measures the pure core over the memory adapter (the manager's per-timer steps), not
``ChatManager.tick`` itself.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit

from chatmgmt.lifecycle import (
    TimerKind,
    check_end,
    is_stale,
    mark_fired,
    plan_timers,
)
from chatmgmt.model import (
    AgentId,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    EndReason,
    ReceptionMode,
)
from chatmgmt.settings import AssignmentSettings, EndOfChatSettings
from chatmgmt.storage import MemoryStorage

EOC = EndOfChatSettings(warn_after_s=300.0, end_after_s=600.0)
ASG = AssignmentSettings()
NOW = 10_000.0
LEASE = 30.0


def _setup(n: int) -> MemoryStorage:
    storage = MemoryStorage()
    customer = CustomerInfo()
    due_every = 100  # 1% due
    for i in range(n):
        # Due chats: the customer went silent long ago and was already warned.
        silent_since = NOW - 700.0 if i % due_every == 0 else NOW - 10.0 + (i % 7)
        chat = Chat(
            id=ChatId(f"c{i}"),
            customer=customer,
            channel="web",
            state=ChatState.ACTIVE,
            agent_id=AgentId(f"a{i % 500}"),
            created_at=silent_since - 60.0,
            assigned_at=silent_since - 50.0,
            last_customer_message_at=silent_since,
            last_agent_message_at=silent_since - 1.0,
        )
        if i % due_every == 0:
            warn = next(
                t
                for t in plan_timers(chat, end_of_chat=EOC, assignment=ASG).schedule
                if t.kind == TimerKind.INACTIVITY_WARN.value
            )
            chat = attrs.evolve(chat, attributes=mark_fired(chat, warn))
        storage.chats.create(chat)
        for timer in plan_timers(chat, end_of_chat=EOC, assignment=ASG).schedule:
            storage.timers.schedule(timer)
    return storage


def _fire(
    storage: MemoryStorage, chat: Chat, kind: TimerKind, attributes: dict[str, object]
) -> None:
    assert kind is TimerKind.INACTIVITY_END
    state = check_end(chat.id, chat.mode, chat.state, EndReason.CUSTOMER_INACTIVITY)
    new = attrs.evolve(
        chat,
        state=state,
        ended_at=NOW,
        end_reason=EndReason.CUSTOMER_INACTIVITY,
        ended_by="system",
        attributes=attributes,
        version=chat.version + 1,
    )
    storage.chats.replace(new, chat.version)
    plan = plan_timers(new, end_of_chat=EOC, assignment=ASG)
    for timer in plan.schedule:
        storage.timers.schedule(timer)
    for key in plan.cancel:
        storage.timers.cancel(key)


def tick_indexed(storage: MemoryStorage) -> int:
    fired = 0
    while True:
        batch = storage.timers.claim_due(NOW, 1000, LEASE)
        if not batch:
            return fired
        for timer in batch:
            chat = storage.chats.get(ChatId(timer.chat_id))
            if is_stale(timer, chat):
                storage.timers.cancel(timer.key)
                continue
            assert chat is not None
            _fire(storage, chat, TimerKind(timer.kind), mark_fired(chat, timer))
            fired += 1


def tick_scan(storage: MemoryStorage) -> int:
    fired = 0
    for chat in storage.chats.list(ChatState.ACTIVE):
        if chat.mode is not ReceptionMode.REAL_TIME:
            continue
        for timer in plan_timers(chat, end_of_chat=EOC, assignment=ASG).schedule:
            if timer.due_at <= NOW and timer.kind == TimerKind.INACTIVITY_END.value:
                _fire(storage, chat, TimerKind.INACTIVITY_END, mark_fired(chat, timer))
                fired += 1
                break
    return fired


def us_per_due(n: int, tick: Callable[[MemoryStorage], int], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        storage = _setup(n)
        t0 = time.perf_counter()
        fired = tick(storage)
        elapsed = time.perf_counter() - t0
        assert fired == n // 100, (fired, n)
        samples.append(elapsed / fired * 1e6)
    return statistics.median(samples)


def main() -> None:
    small_i = us_per_due(10_000, tick_indexed, 5)
    small_s = us_per_due(10_000, tick_scan, 5)
    emit("lifecycle.tick_us_per_due.10k", small_i, "us", small_s, small_s / small_i)
    big_i = us_per_due(100_000, tick_indexed, 3)
    big_s = us_per_due(100_000, tick_scan, 3)
    emit("lifecycle.tick_us_per_due.100k", big_i, "us", big_s, big_s / big_i)
    growth_i = big_i / small_i
    growth_s = big_s / small_s
    emit("lifecycle.tick_growth.10k_to_100k", growth_i, "x", growth_s, growth_s / growth_i)


if __name__ == "__main__":
    main()
