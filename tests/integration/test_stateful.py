"""Model-based tests: a hypothesis state machine drives the manager in both reception modes."""

from __future__ import annotations

import collections
import contextlib
import itertools
import random
from typing import Any

import hypothesis.strategies as st
from hypothesis import event as hypothesis_event
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chatmgmt import (
    AgentStatus,
    ChatManager,
    ChatSettings,
    ChatState,
    EndReason,
    MessageRole,
)
from chatmgmt.errors import ChatMgmtError, ReopenRefusedError
from chatmgmt.lifecycle import satisfaction_of
from chatmgmt.model import Agent, CustomerInfo
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock, RecordingEventSink

AGENTS = ["a0", "a1", "a2"]
# invitation prompts, one reminder, a per-customer interval and a skip tag (issue 14 item 7)
SATISFACTION = {
    "max_invitations": 2,
    "invite_prompt": "Rate",
    "reminder_after_s": 100,
    "reminder_prompt": "Remind",
    "min_interval_s": 500,
    "skip_tags": ["nosurvey"],
}


class LifecycleMachine(RuleBasedStateMachine):
    """Random opens, messages, ends, transfers, ticks, ratings; a simple model alongside."""

    mode = "real_time"
    offers: dict[str, Any] | None = None  # assignment.offers (tests/lifecycle sets it)
    sla: dict[str, Any] | None = None  # the sla section (tests/lifecycle sets it)
    extra: dict[str, Any] | None = None  # more settings sections (tests/lifecycle sets them)

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(10_000.0)
        self.sink = RecordingEventSink()
        self.storage = MemoryStorage()
        self.manager = ChatManager(
            self.storage,
            ChatSettings.from_dict(
                {
                    "reception_mode": self.mode,
                    "end_of_chat": {"warn_after_s": 60, "end_after_s": 120},
                    "assignment": {
                        "auto_transfer_s": 45,
                        "queue": {"max_wait_s": 300},
                        **({"offers": self.offers} if self.offers else {}),
                    },
                    "satisfaction": {
                        "skip_if_agent_never_replied": False,
                        **SATISFACTION,
                    },
                    **({"sla": self.sla} if self.sla else {}),
                    **(self.extra or {}),
                }
            ),
            clock=self.clock,
            rng=random.Random(0),
            event_sink=self.sink,
        )
        for i, name in enumerate(AGENTS):
            self.manager.register_agent(Agent(name, reception_limit=2, account_order=i))
        self.opened: list[str] = []

    # ------------------------------------------------------------------ rules

    @rule(partner=st.sampled_from(["p1", "p2", "p3", None]))
    def open_chat(self, partner: str | None) -> None:
        chat = self.manager.open_chat(CustomerInfo(partner_id=partner))
        self.opened.append(chat.id)

    @rule(name=st.sampled_from(AGENTS), status=st.sampled_from(list(AgentStatus)))
    def set_status(self, name: str, status: AgentStatus) -> None:
        self.manager.set_agent_status(name, status)

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), role=st.sampled_from([MessageRole.CUSTOMER, MessageRole.AGENT]))
    def message(self, data: st.DataObject, role: MessageRole) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        chat = self.manager.get_chat(chat_id)
        try:
            self.manager.send_message(chat_id, "hi", role=role, sender=chat.agent_id or "c")
        except ChatMgmtError:
            assert not chat.state.is_open or role is MessageRole.AGENT

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), reason=st.sampled_from([EndReason.AGENT, EndReason.CUSTOMER]))
    def end(self, data: st.DataObject, reason: EndReason) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            self.manager.end_chat(chat_id, reason=reason)
        except ChatMgmtError:
            assert before.state is not ChatState.ACTIVE
        else:
            assert before.state in self.ends_from()

    def ends_from(self) -> tuple[ChatState, ...]:
        """The states ``end`` (reason agent or customer) may end a chat from."""
        return (ChatState.ACTIVE, ChatState.UNASSIGNED)

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            self.manager.abandon(chat_id)
        except ChatMgmtError:
            assert before.state is not ChatState.QUEUED

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), to=st.sampled_from(AGENTS))
    def transfer(self, data: st.DataObject, to: str) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        with contextlib.suppress(ChatMgmtError):
            self.manager.transfer(chat_id, to_agent=to)

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), level=st.integers(1, 5))
    def rate(self, data: st.DataObject, level: int) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        invited_before = bool(
            (self.manager.get_chat(chat_id).satisfaction or {}).get("invitations")
        )
        try:
            self.manager.rate(chat_id, level)
        except ChatMgmtError:
            return
        assert invited_before, "a rating without an invitation (customer_initiated is off)"

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), to=st.sampled_from(["pool", "last_agent"]))
    def reopen(self, data: st.DataObject, to: str) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            after = self.manager.reopen(chat_id, to=to, by="admin")  # type: ignore[arg-type]
        except ReopenRefusedError as exc:
            if self.mode == "real_time":
                assert exc.reason == "real_time"
            else:
                assert exc.reason == "not_ended" and before.state is not ChatState.ENDED
            return
        hypothesis_event(f"reopened to {to}")
        assert self.mode == "always_on" and before.state is ChatState.ENDED
        assert after.state.is_open and after.ended_at is None
        rating = (before.satisfaction or {}).get("rating")
        assert (after.satisfaction or {}).get("rating") == rating  # the rating stays
        event = self.sink.of_type("chat.reopened")[-1]
        assert event.chat_id == chat_id and event.data["requested"] == to
        if event.data["to"] == "last_agent":
            assert event.data["agent_id"] == before.served_by[-1] == after.agent_id
        else:
            assert event.data["fallback"] is not None or to == "pool"

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def invite(self, data: st.DataObject) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        with contextlib.suppress(ChatMgmtError):
            self.manager.invite_rating(chat_id, by="a0")

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), tag=st.sampled_from(["nosurvey", "vip"]))
    def tag(self, data: st.DataObject, tag: str) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        with contextlib.suppress(ChatMgmtError):
            self.manager.tag_chat(chat_id, tag, by="a0")

    @rule(seconds=st.sampled_from([1, 30, 45, 61, 130, 400]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.manager.tick()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def slots_match_chats(self) -> None:
        holders: dict[str, str] = {}
        for load in self.storage.agents.list():
            assert load.active <= load.agent.reception_limit
            for chat_id in load.chats:
                assert chat_id not in holders, "a chat held by two agents"
                holders[chat_id] = load.agent.id
        for chat in self.storage.chats.list():
            if chat.state is ChatState.ACTIVE:
                assert holders.get(chat.id) == chat.agent_id
            else:
                assert chat.id not in holders, f"a {chat.state.value} chat holds a slot"

    @invariant()
    def open_chats_keep_no_end(self) -> None:
        for chat in self.storage.chats.list():
            if chat.state.is_open:
                assert chat.ended_at is None and chat.end_reason is None, chat.id

    @invariant()
    def queued_xor_assigned(self) -> None:
        for chat in self.storage.chats.list():
            queue = chat.queue
            in_queue = (
                queue is not None and self.storage.queues.position(queue, chat.id) is not None
            )
            if chat.state is ChatState.ACTIVE:
                assert not in_queue and chat.agent_id is not None
            if chat.state in (ChatState.QUEUED, ChatState.UNASSIGNED):
                assert chat.agent_id is None

    @invariant()
    def nothing_lost_and_timeouts_warned_first(self) -> None:
        assert len(self.storage.chats.list()) == len(self.opened)
        warned: set[str] = set()
        for event in self.sink.events:
            if event.type == "chat.inactivity_warned":
                warned.add(event.chat_id or "")
            if event.type == "chat.ended" and event.data["end_reason"] == "customer_inactivity":
                assert event.chat_id in warned, "a timed-out chat that was never warned"

    @invariant()
    def always_on_never_times_out(self) -> None:
        if self.mode == "always_on":
            assert not any(
                e.type == "chat.ended" and e.data["end_reason"] == "customer_inactivity"
                for e in self.sink.events
            )

    @invariant()
    def satisfaction_on_the_records(self) -> None:
        """One invitation prompt per invitation, one reminder message exactly when the chat
        records it, reminders only after reminder_after_s and never after the rating, and no
        customer with a CRM record invited twice within min_interval_s."""
        counted = collections.Counter((e.chat_id, e.type) for e in self.sink.events)
        for chat in self.storage.chats.list():
            state = satisfaction_of(chat)
            messages = self.storage.chats.messages(chat.id)
            texts = [m.text for m in messages if m.role is MessageRole.SYSTEM]
            assert texts.count("Rate") == counted[chat.id, "satisfaction.invited"]
            assert texts.count("Remind") == counted[chat.id, "satisfaction.reminded"]
            if self.mode == "real_time":  # (an Always On reopen starts a new period)
                assert texts.count("Rate") == state.invitations
                assert texts.count("Remind") == (state.reminded_at is not None)
        rated: set[str] = set()
        invited: dict[str, list[float]] = {}
        for event in self.sink.events:
            if event.type == "satisfaction.submitted":
                rated.add(event.chat_id or "")
            elif event.type == "satisfaction.reminded":
                assert event.chat_id not in rated, "reminded after the rating"
                assert event.timestamp >= event.data["invited_at"] + 100
            elif event.type == "satisfaction.invited" and event.data["partner_id"]:
                invited.setdefault(event.data["partner_id"], []).append(event.timestamp)
        for partner, times in invited.items():
            if self.storage.customers.get(partner) is not None:
                gaps = [b - a for a, b in itertools.pairwise(times)]
                assert all(g >= 500 for g in gaps), (partner, times)


class AlwaysOnMachine(LifecycleMachine):
    mode = "always_on"


RUN = settings(max_examples=40, stateful_step_count=40, deadline=None)
TestRealTime = LifecycleMachine.TestCase
TestRealTime.settings = RUN
TestAlwaysOn = AlwaysOnMachine.TestCase
TestAlwaysOn.settings = RUN
