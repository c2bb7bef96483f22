"""Model-based test of hold and the inactivity release: the lifecycle state machine of
tests/integration, with holds, resumes and manual (in)activity at random, the inactivity release
after 50 s and the hold's close after 200 s, held and inactive chats not counting, in both
reception modes.

Checked on the stored records after every step: each open chat's slot sits where its record
says (counted unless on hold or inactive), a held chat is active, and an agent over its limit got
there only by chats it already held (a chat woke up or resumed): no agent at or over its limit
ever gains a chat.
"""

from __future__ import annotations

import contextlib
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import invariant, precondition, rule

from chatmgmt import ChatManager, ChatSettings, ChatState, MessageRole
from chatmgmt.errors import ChatMgmtError, InvalidTransitionError
from chatmgmt.lifecycle import counts, on_hold
from integration.test_stateful import LifecycleMachine


class HoldMachine(LifecycleMachine):
    """Holds and inactivity on top of the opens, messages, ends, transfers and ticks."""

    def __init__(self) -> None:
        super().__init__()
        raw = self.manager.settings.to_dict()
        raw["assignment"].update(on_hold_chats_count=False, inactive_chats_count=False)
        raw["end_of_chat"].update(inactive_after_s=50, hold_close_after_s=200)
        # the same storage, clock and agents; settings with hold and the release on
        self.manager = ChatManager(
            self.storage,
            ChatSettings.from_dict(raw),
            clock=self.clock,
            rng=self.manager._core.rng,
            event_sink=self.sink,
        )
        self.held_before: dict[str, int] = {}

    def _pick(self, data: st.DataObject) -> Any:
        return self.manager.get_chat(data.draw(st.sampled_from(self.opened)))

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), reason=st.sampled_from(["", "asking billing"]))
    def hold(self, data: st.DataObject, reason: str) -> None:
        before = self._pick(data)
        try:
            after = self.manager.hold_chat(before.id, by=before.agent_id or "x", reason=reason)
        except InvalidTransitionError:
            assert before.state is not ChatState.ACTIVE
            return
        assert on_hold(after) and after.agent_id == before.agent_id
        if not on_hold(before):
            assert after.hold is not None and after.hold["since"] == self.clock.now()

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        before = self._pick(data)
        try:
            after = self.manager.resume_chat(before.id, by="ann")
        except InvalidTransitionError:
            assert before.state is not ChatState.ACTIVE
            return
        assert not on_hold(after) and after.agent_id == before.agent_id

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), flag=st.booleans())
    def set_inactive(self, data: st.DataObject, flag: bool) -> None:
        chat = self._pick(data)
        with contextlib.suppress(ChatMgmtError):
            self.manager.set_inactive(chat.id, flag)

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def customer_writes_to_a_held_chat(self, data: st.DataObject) -> None:
        chat = self._pick(data)
        if not on_hold(chat):
            return
        self.manager.send_message(chat.id, "any news?", role=MessageRole.CUSTOMER)
        after = self.manager.get_chat(chat.id)
        assert not on_hold(after) and after.hold is not None
        assert after.hold["resumed_by"] == "customer"

    # ------------------------------------------------------------------ invariants

    @invariant()
    def slots_match_chats(self) -> None:  # replaces the base check: slots may be uncounted
        assignment = self.manager.settings.assignment
        loads = {ld.agent.id: ld for ld in self.storage.agents.list()}
        holders: dict[str, str] = {}
        for load in loads.values():
            for chat_id in load.chats | load.inactive:
                assert chat_id not in holders, "a chat held by two agents"
                holders[chat_id] = load.agent.id
        for chat in self.storage.chats.list():
            if chat.state is ChatState.ACTIVE:
                assert chat.agent_id is not None and holders.get(chat.id) == chat.agent_id
                counted = chat.id in loads[chat.agent_id].chats
                assert counted == counts(chat, assignment), (chat.id, chat.inactive, chat.hold)
            else:
                assert chat.id not in holders, f"a {chat.state.value} chat holds a slot"
                assert not on_hold(chat)
        for aid, load in loads.items():
            held = len(load.chats | load.inactive)
            if len(load.chats) > load.agent.reception_limit:
                # over the limit only by chats it already held: it gained none
                assert held <= self.held_before.get(aid, 0), (aid, load)
            self.held_before[aid] = held


class AlwaysOnHoldMachine(HoldMachine):
    mode = "always_on"


RUN = settings(max_examples=30, stateful_step_count=40, deadline=None)
TestRealTimeHold = HoldMachine.TestCase
TestRealTimeHold.settings = RUN
TestAlwaysOnHold = AlwaysOnHoldMachine.TestCase
TestAlwaysOnHold.settings = RUN
