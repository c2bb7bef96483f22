"""Model-based test of the bot stage: the lifecycle state machine of tests/integration with
chats opened in the bot stage, bot messages, handoffs, the bot ending chats and the bot-stage
timeouts, in both reception modes. Checked on the stored chat records after every step: a chat
in the bot stage holds no slot, waits in no queue and has no agent; a handoff happens once and
is never undone; no chat outlives its bot-stage limits after a tick."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import invariant, precondition, rule

from chatmgmt import ChatState, EndReason, MessageRole
from chatmgmt.errors import ChatMgmtError, InvalidTransitionError
from chatmgmt.model import CustomerInfo
from integration.test_stateful import LifecycleMachine

HANDOFF_AFTER_S = 200.0
END_AFTER_S = 90.0


class BotMachine(LifecycleMachine):
    """Bot chats beside ordinary ones; the bot hands off, writes and ends chats."""

    extra = {"bot": {"end_after_s": END_AFTER_S, "handoff_after_s": HANDOFF_AFTER_S}}

    def __init__(self) -> None:
        super().__init__()
        self.handed: set[str] = set()

    @rule(partner=st.sampled_from(["p1", "p2", None]))
    def open_bot_chat(self, partner: str | None) -> None:
        chat = self.manager.open_chat(CustomerInfo(partner_id=partner), bot="bot-1")
        assert chat.state is ChatState.BOT and chat.version == 0
        self.opened.append(chat.id)

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), fields=st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2))
    def handoff(self, data: st.DataObject, fields: dict[str, int]) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            after = self.manager.handoff(chat_id, reason="human", fields=fields)
        except InvalidTransitionError:
            assert before.state is not ChatState.BOT
            return
        assert before.state is ChatState.BOT and chat_id not in self.handed
        self.handed.add(chat_id)
        assert after.state is not ChatState.BOT
        assert after.bot is not None and after.bot["handoff"]["fields"] == fields

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def bot_message(self, data: st.DataObject) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            self.manager.send_message(chat_id, "beep", role=MessageRole.BOT, sender="bot-1")
        except ChatMgmtError:
            assert not before.state.is_open
        else:
            assert self.manager.get_chat(chat_id).state is before.state

    @precondition(lambda self: self.opened)
    @rule(data=st.data())
    def bot_ends(self, data: st.DataObject) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        before = self.manager.get_chat(chat_id)
        try:
            after = self.manager.end_chat(chat_id, reason=EndReason.BOT, by="bot-1")
        except ChatMgmtError:
            assert before.state is not ChatState.BOT
        else:
            assert before.state is ChatState.BOT and after.state is ChatState.ENDED
            assert after.satisfaction is None  # bot.skip_satisfaction

    def ends_from(self) -> tuple[ChatState, ...]:
        # an Always On customer may also end a chat in the bot stage
        extra = (ChatState.BOT,) if self.mode == "always_on" else ()
        return (*super().ends_from(), *extra)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def bot_stage_holds_nothing(self) -> None:
        now = self.clock.now()
        for chat in self.storage.chats.list():
            if chat.state is not ChatState.BOT:
                continue
            assert chat.agent_id is None and chat.queue is None and not chat.served_by
            assert chat.bot is not None and "handoff" not in chat.bot
            assert chat.id not in self.handed
            # a tick ran after every clock move: no bot stage outlives its limits
            assert now < chat.bot["since"] + HANDOFF_AFTER_S
            if self.mode == "real_time":
                last = max(chat.last_customer_message_at or 0.0, chat.bot["since"])
                assert now < last + END_AFTER_S

    @invariant()
    def handoffs_happen_once_and_stay(self) -> None:
        stored = {
            c.id for c in self.storage.chats.list() if c.bot is not None and "handoff" in c.bot
        }
        assert self.handed <= stored  # timeouts hand off too
        events = [e.chat_id for e in self.sink.events if e.type == "chat.handed_off"]
        assert sorted(events) == sorted(stored), "one chat.handed_off per handed-off chat"

    @invariant()
    def nothing_lost_and_timeouts_warned_first(self) -> None:
        # as the base machine, but a bot stage's silence ends a chat without a warning
        assert len(self.storage.chats.list()) == len(self.opened)
        warned: set[str] = set()
        bot_only = {c.id for c in self.storage.chats.list() if c.bot and "handoff" not in c.bot}
        for event in self.sink.events:
            if event.type == "chat.inactivity_warned":
                warned.add(event.chat_id or "")
            if event.type == "chat.ended" and event.data["end_reason"] == "customer_inactivity":
                assert event.chat_id in warned or event.chat_id in bot_only


class AlwaysOnBotMachine(BotMachine):
    mode = "always_on"


RUN = settings(max_examples=15, stateful_step_count=30, deadline=None)
TestRealTimeBot = BotMachine.TestCase
TestRealTimeBot.settings = RUN
TestAlwaysOnBot = AlwaysOnBotMachine.TestCase
TestAlwaysOnBot.settings = RUN
