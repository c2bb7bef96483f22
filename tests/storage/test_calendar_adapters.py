"""The out-of-office message on every adapter: it is stored in the unit of work that creates
and queues the chat (one Change holding the new chat and its system message)."""

from __future__ import annotations

import datetime as dt
import random

from chatmgmt import ChatManager, ChatSettings, ChatState, MessageRole
from chatmgmt.model import CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.testing import ManualClock, RecordingMessageSink, make_agent, sequential_ids
from storage.test_offers_pull_adapters import storage  # noqa: F401  (the adapter fixture)

TEXT = "We are closed for the holidays."
SETTINGS = ChatSettings.from_dict(
    {
        "assignment": {
            "hours": {
                "timezone": "America/New_York",
                "weekly": {"fri": ["22:00-06:00"]},
                "holidays": ["2026-12-25"],
                "out_of_office_message": TEXT,
            }
        }
    }
)


def test_out_of_office_message_is_stored_with_the_new_chat(storage: Storage) -> None:  # noqa: F811
    zone = dt.timezone(dt.timedelta(hours=-5))
    christmas_night = dt.datetime(2026, 12, 25, 23, 0, tzinfo=zone).timestamp()
    sink = RecordingMessageSink()
    m = ChatManager(
        storage,
        SETTINGS,
        clock=ManualClock(christmas_night),
        rng=random.Random(3),
        ids=sequential_ids(),
        message_sink=sink,
    )
    m.register_agent(make_agent("ann", groups=["sales"], limit=2))
    closed = m.open_chat(CustomerInfo(), skill_group="sales", chat_id="c1")
    assert closed.state is ChatState.QUEUED and closed.leave_message == "off_duty"
    assert [(x.role, x.text) for x in m.messages("c1")] == [(MessageRole.SYSTEM, TEXT)]
    assert m.get_chat("c1").version == closed.version
    # A Friday night that is no holiday: ann serves the chat, nothing is sent.
    m.clock.advance(7 * 86400)  # type: ignore[attr-defined]
    served = m.open_chat(CustomerInfo(), skill_group="sales", chat_id="c2")
    assert served.agent_id == "ann" and m.messages("c2") == []
    assert [x.text for x in sink.messages] == [TEXT]
