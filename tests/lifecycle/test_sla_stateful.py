"""Model-based test of SLA policies: the lifecycle state machine of tests/integration with
two policies (one selected by a tag that comes and goes), in both reception modes. Checked
after every step on the stored chats and the events: every breach a clock counts went out as
exactly one sla.breached event, a target achieved late counts as breached, an ended chat has
no running clock and its chat.ended figures are the stored ones, and a chat with a warning or
breach still to raise has its SLA timer. Holds come and go (``sla.pause_on_hold`` on): a
chat's clocks are paused exactly while it is on hold, and a held chat has no SLA timer."""

from __future__ import annotations

import contextlib
from collections import Counter

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import invariant, precondition, rule

from chatmgmt import ChatManager, ChatSettings, ChatState
from chatmgmt.errors import ChatMgmtError
from chatmgmt.lifecycle import on_hold, sla_timer
from integration.test_stateful import LifecycleMachine


class SlaMachine(LifecycleMachine):
    """SLA policies on top of the opens, messages, ends, transfers and ticks; tags toggle."""

    sla = {
        "warn_before": 0.5,
        "policies": [
            {"name": "vip", "tags": ["vip"], "first_response_s": 20, "resolution_s": 200},
            {"name": "std", "first_response_s": 60, "next_response_s": 45, "resolution_s": 400},
        ],
    }

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), remove=st.booleans())
    def tag(self, data: st.DataObject, remove: bool) -> None:
        chat_id = data.draw(st.sampled_from(self.opened))
        with contextlib.suppress(ChatMgmtError):
            if remove:
                self.manager.untag_chat(chat_id, "vip", by="sup")
            else:
                self.manager.tag_chat(chat_id, "vip", by="sup")

    def __init__(self) -> None:
        super().__init__()
        # held chats keep counting, so the base machine's slot checks hold as they are (the
        # slot moves of uncounted holds are tests/lifecycle/test_hold_stateful.py's)
        raw = self.manager.settings.to_dict()
        raw["assignment"]["on_hold_chats_count"] = True
        self.manager = ChatManager(
            self.storage,
            ChatSettings.from_dict(raw),
            clock=self.clock,
            rng=self.manager._core.rng,
            event_sink=self.sink,
        )

    @precondition(lambda self: self.opened)
    @rule(data=st.data(), resume=st.booleans())
    def hold(self, data: st.DataObject, resume: bool) -> None:
        chat = self.manager.get_chat(data.draw(st.sampled_from(self.opened)))
        with contextlib.suppress(ChatMgmtError):
            if resume:
                self.manager.resume_chat(chat.id, by="ann")
            else:
                self.manager.hold_chat(chat.id, by=chat.agent_id or "x")

    @invariant()
    def paused_exactly_while_on_hold(self) -> None:
        for chat in self.storage.chats.list():
            assert chat.sla is not None
            paused = chat.sla.paused_since is not None
            assert paused == on_hold(chat), (chat.id, chat.state, chat.hold, chat.sla)
            if paused:
                assert sla_timer(chat) is None
                assert self.storage.timers.get(f"{chat.id}:sla") is None

    @invariant()
    def every_breach_went_out_once(self) -> None:
        raised = Counter(
            (e.chat_id, e.data["metric"]) for e in self.sink.events if e.type == "sla.breached"
        )
        for chat in self.storage.chats.list():
            assert chat.sla is not None, "every chat is covered by the std policy"
            for metric, clock in chat.sla.clocks().items():
                assert raised[(chat.id, metric)] == clock.breaches, (chat.id, metric)
                if clock.achieved_s is not None and clock.achieved_s >= clock.target_s:
                    assert clock.breached, "a target achieved late but not breached"

    @invariant()
    def ended_chats_stop_their_clocks(self) -> None:
        for chat in self.storage.chats.list():
            assert chat.sla is not None
            pending = sla_timer(chat)
            timer = self.storage.timers.get(f"{chat.id}:sla")
            if chat.state is ChatState.ENDED:
                assert not any(c.running for c in chat.sla.clocks().values())
                assert timer is None and pending is None
                ended = [
                    e for e in self.sink.events if e.chat_id == chat.id and e.type == "chat.ended"
                ]
                assert ended and ended[-1].data["sla"] == chat.sla.figures()
            elif pending is not None:
                assert timer is not None and timer.due_at == pending.due_at


class AlwaysOnSlaMachine(SlaMachine):
    mode = "always_on"


RUN = settings(max_examples=30, stateful_step_count=40, deadline=None)
TestRealTimeSla = SlaMachine.TestCase
TestRealTimeSla.settings = RUN
TestAlwaysOnSla = AlwaysOnSlaMachine.TestCase
TestAlwaysOnSla.settings = RUN
