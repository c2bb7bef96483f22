"""The deadlines a ranked open commits are kept for the chat's next change: the plan the core
keeps must be the one a fresh planning of the stored chat gives (the picked agent in it, never
the placeholder), and the end must cancel every timer the open stored."""

from __future__ import annotations

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
    kept = core._plans.get((chat.id, stored.version))
    assert kept is not None  # the end reuses it instead of planning the open's deadlines again
    assert core._timer_plan(stored) == {t.key: t for t in core._planned(stored)}
    assert all(PICKED not in repr(t.payload) for t in core._timer_plan(stored).values())
    assert any(chat.agent_id in repr(t.payload) for t in core._timer_plan(stored).values())
    clock.advance(5.0)
    manager.end_chat(chat.id, reason=EndReason.AGENT)
    left = storage.timers.claim_due(1_000_000.0, 100, 30.0)
    assert [t for t in left if t.chat_id == chat.id] == []
