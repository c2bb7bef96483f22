"""Crash points: each operation abandoned after each of its storage calls (the host died
there) leaves a state that keeps the invariants, and reconcile() + tick() then find nothing to
repair and leave no chat waiting next to a free agent (chatmgmt.testing.crash_points)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from chatmgmt import ChatManager
from chatmgmt.testing import crash_points
from test_explorer import OPERATIONS, build


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_each_operation_at_each_call(name: str) -> None:
    report = crash_points(build, OPERATIONS[name], now=50.0)
    report.assert_ok()
    assert report.points > 1  # the operation made storage calls, each one a crash point
    assert report.repairs == {}, report.repairs  # a unit of work leaves nothing to repair


def test_sqlite(tmp_path: Path) -> None:
    from chatmgmt.storage.sqlite import SQLiteStorage

    counter = itertools.count()

    def world() -> ChatManager:
        return build(SQLiteStorage(tmp_path / f"w{next(counter)}.db"))

    report = crash_points(world, OPERATIONS["transfer_group"], now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}


# regression: an Always On customer message reopened an ENDED chat as UNASSIGNED in one unit and
# pooled it in a second; between the two the chat waited in no pool and reconcile() did not see
# it. The reopen now puts it in its pool in the same unit.
def test_always_on_reopen_is_one_unit() -> None:
    import random

    from chatmgmt import Agent, AgentStatus, ChatSettings, CustomerInfo
    from chatmgmt.testing import ManualClock, Operation, sequential_ids

    settings = ChatSettings.coerce({"reception_mode": "always_on"})

    def world() -> ChatManager:
        m = ChatManager(
            None, settings, rng=random.Random(1), ids=sequential_ids(), clock=ManualClock(1.0)
        )
        m.register_agent(
            Agent("ann", skill_groups={"g"}, status=AgentStatus.OFFLINE, reception_limit=1), now=0
        )
        m.set_agent_status("ann", AgentStatus.ONLINE, now=0)
        m.open_chat(CustomerInfo(name="a"), skill_group="g", chat_id="a", now=1)
        m.end_chat("a", now=2)
        return m

    reopen = Operation("reopen", lambda m: m.send_message("a", "back", now=3))
    crash_points(world, reopen, now=50.0).assert_ok()
