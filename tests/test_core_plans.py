"""The keys of the deadlines a ranked open commits are kept for the chat's end: they must be
those a fresh planning of the stored chat gives (whose payloads hold the picked agent, never
the placeholder), and the end must cancel every timer the open stored."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo, EndReason
from chatmgmt.ports import PICKED, Storage
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.sqlite import SQLiteStorage
from chatmgmt.testing import ManualClock


def _storage(kind: str, tmp_path: Path) -> Storage:
    return MemoryStorage() if kind == "memory" else SQLiteStorage(tmp_path / "plans.db")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_ranked_open_keeps_the_stored_chats_plan_and_its_end_cancels_it(
    kind: str, tmp_path: Path
) -> None:
    clock = ManualClock(1_000.0)
    settings = ChatSettings.from_dict(
        {
            # the auto-transfer deadline's basis names the agent: planned with the placeholder
            "end_of_chat": {"warn_after_s": 60, "end_after_s": 120},
            "assignment": {"auto_transfer_s": 45},
        }
    )
    storage = _storage(kind, tmp_path)
    manager = ChatManager(storage, settings, clock=clock, rng=random.Random(3))
    for i in range(3):
        manager.register_agent(
            Agent(f"a{i}", skill_groups={"g"}, reception_limit=2, status=AgentStatus.ONLINE)
        )
    chat = manager.open_chat(CustomerInfo(channel="web"), skill_group="g")
    assert chat.agent_id is not None and chat.agent_id != PICKED
    core = manager._core
    stored = storage.chats.get(chat.id)
    assert stored is not None
    kept = core._opened.get((chat.id, stored.created_at, stored.version))
    assert kept is not None  # the end cancels them instead of planning the deadlines again
    assert kept == tuple(t.key for t in core._planned(stored))
    assert len(kept) == 3  # inactivity warning and end, auto-transfer
    gc.collect()  # a tuple of strings: the collector stops tracking it when it sees it
    assert not gc.is_tracked(kept)
    assert all(PICKED not in repr(t.payload) for t in core._timer_plan(stored).values())
    assert any(chat.agent_id in repr(t.payload) for t in core._timer_plan(stored).values())
    clock.advance(5.0)
    manager.end_chat(chat.id, reason=EndReason.AGENT)
    left = storage.timers.claim_due(1_000_000.0, 100, 30.0)
    assert [t for t in left if t.chat_id == chat.id] == []


def test_an_end_after_the_kept_keys_were_dropped_plans_the_deadlines_again() -> None:
    """The kept keys are dropped after 4,096 opens: an end past them plans the open's
    deadlines again, with the same result (every timer the open stored is cancelled)."""
    clock = ManualClock(1_000.0)
    storage = MemoryStorage()
    settings = ChatSettings.from_dict({"end_of_chat": {"warn_after_s": 60, "end_after_s": 120}})
    manager = ChatManager(storage, settings, clock=clock, rng=random.Random(3))
    manager.register_agent(
        Agent("a0", skill_groups={"g"}, reception_limit=10_000, status=AgentStatus.ONLINE)
    )
    chats = [manager.open_chat(CustomerInfo(channel="web"), skill_group="g") for _ in range(4100)]
    core = manager._core
    assert 0 < len(core._opened) < 4096
    first = storage.chats.get(chats[0].id)
    assert first is not None and (first.id, first.created_at, first.version) not in core._opened
    last = storage.chats.get(chats[-1].id)
    assert last is not None and (last.id, last.created_at, last.version) in core._opened
    keys = [f"{chat.id}:{kind}" for chat in chats for kind in ("inactivity_warn", "inactivity_end")]
    assert all(storage.timers.get(key) is not None for key in keys)
    clock.advance(1.0)
    for chat in chats:
        manager.end_chat(chat.id, reason=EndReason.AGENT)
    assert [key for key in keys if storage.timers.get(key) is not None] == []
