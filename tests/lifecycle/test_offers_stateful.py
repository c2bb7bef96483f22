"""Model-based test of offers: the lifecycle state machine of tests/integration, with offers
on and agents that accept or decline at random, in both reception modes. The invariants are
checked on the stored chat records after every step: an OFFERED chat holds its agent's slot
(so pending offers count toward the limit), is in no queue, and is never with an agent who
declined it or let it expire."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import invariant, precondition, rule

from chatmgmt import ChatState, EndReason
from chatmgmt.errors import ChatMgmtError
from integration.test_stateful import LifecycleMachine


class OffersMachine(LifecycleMachine):
    """Offers (timeout 40 s) on top of the opens, messages, ends, transfers and ticks."""

    offers = {"enabled": True, "timeout_s": 40}

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            after = self.manager.accept_offer(chat_id, before.agent_id or "a0")
        except ChatMgmtError:
            assert before.state is not ChatState.OFFERED or before.agent_id is None
        else:
            assert before.state is ChatState.OFFERED
            assert after.state is ChatState.ACTIVE and after.agent_id == before.agent_id
            assert after.assigned_at == self.clock.now()  # timers count from acceptance

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), reason=st.sampled_from(["", "busy", "wrong language"]))
    def decline(self, data: st.DataObject, reason: str) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        agent = before.agent_id or "a0"
        try:
            after = self.manager.decline_offer(chat_id, agent, reason=reason)
        except ChatMgmtError:
            assert before.state is not ChatState.OFFERED
            return
        assert before.state is ChatState.OFFERED
        assert agent in after.excluded and after.agent_id != agent

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), reason=st.sampled_from([EndReason.AGENT, EndReason.CUSTOMER]))
    def end(self, data: st.DataObject, reason: EndReason) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        with contextlib.suppress(ChatMgmtError):
            self.manager.end_chat(chat_id, reason=reason)

    @invariant()
    def slots_match_chats(self) -> None:
        holders: dict[str, str] = {}
        for load in self.storage.agents.list():
            assert load.active <= load.agent.reception_limit
            for chat_id in load.chats:
                assert chat_id not in holders, "a chat held by two agents"
                holders[chat_id] = load.agent.id
        for chat in self.storage.chats.list():
            if chat.state.holds_slot:  # ACTIVE, and OFFERED: a pending offer holds the slot
                assert holders.get(chat.id) == chat.agent_id
            else:
                assert chat.id not in holders, f"a {chat.state.value} chat holds a slot"

    @invariant()
    def offers_are_sound(self) -> None:
        for chat in self.storage.chats.list():
            if chat.state is ChatState.OFFERED:
                assert chat.agent_id is not None and chat.agent_id not in chat.excluded
                assert chat.offer_expires_at is not None
                assert chat.queue is None
            else:
                assert chat.offer_expires_at is None


class AlwaysOnOffersMachine(OffersMachine):
    mode = "always_on"


RUN = settings(max_examples=30, stateful_step_count=40, deadline=None)
TestRealTimeOffers = OffersMachine.TestCase
TestRealTimeOffers.settings = RUN
TestAlwaysOnOffers = AlwaysOnOffersMachine.TestCase
TestAlwaysOnOffers.settings = RUN
