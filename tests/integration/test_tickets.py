"""Tickets: ``submission.mode: ticket`` raises ``ticket.created`` with what a ticketing system
needs, in the same unit of work as the submission."""

from __future__ import annotations

import random
from typing import Any

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, ChatState, CustomerInfo
from chatmgmt.ports import Change
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.testing import ManualClock, Operation, crash_points, sequential_ids
from chatmgmt.webhook import CATALOGUE

TICKET_FORM: dict[str, Any] = {
    "mode": "ticket",
    "fields": [
        {"name": "name", "type": "text", "label": "Name", "required": False},
        {"name": "email", "type": "email", "label": "Email", "required": True},
        {"name": "subject", "type": "text", "label": "Subject", "required": False},
        {"name": "message", "type": "text", "label": "Message", "required": True},
        {"name": "tags", "type": "text", "label": "Tags", "required": False},
    ],
}


def test_ticket_mode_raises_ticket_created_with_the_ticket_fields() -> None:
    m = manager({"submission": {"groups": {"billing": TICKET_FORM}}})
    m.register_agent(agent("ann", groups=("billing",), status=AgentStatus.OFFLINE))
    chat = m.open_chat(
        customer("u42", name="Ada", phone="+441234", channel="app", vip_level=2),
        skill_group="billing",
    )
    m.send_message(chat.id, "hello?", sender="u42")
    clock_of(m).advance(5)
    m.submit_message(
        chat.id,
        {
            "email": "ada@example.com",
            "message": "Invoice 7 is wrong\nIt charges twice.",
            "tags": "invoice, refund,invoice",
        },
    )
    assert m.get_chat(chat.id).state is ChatState.LEFT_MESSAGE
    (ticket,) = sink_of(m).of_type("ticket.created")
    assert ticket.data["ticket_id"] == chat.id and ticket.data["chat_id"] == chat.id
    assert (ticket.data["channel"], ticket.data["skill_group"]) == ("app", "billing")
    assert ticket.data["requester"] == {
        "name": "Ada",  # not in the form: the chat's customer
        "email": "ada@example.com",
        "phone": "+441234",
        "partner_id": "u42",
    }
    assert ticket.data["subject"] == "Invoice 7 is wrong"  # no subject: the first line
    assert ticket.data["description"] == "Invoice 7 is wrong\nIt charges twice."
    assert ticket.data["priority"] == 2  # the chat's priority (here its VIP level)
    assert ticket.data["tags"] == ["chat", "app", "billing", "invoice", "refund"]
    assert ticket.data["fields"]["email"] == "ada@example.com"
    assert ticket.data["created_at"] == 1005.0
    assert ticket.data["transcript"] == {"chat_id": chat.id, "until": 1005.0}
    # the transcript reference finds the conversation
    assert [msg.text for msg in m.messages(chat.id)] == ["hello?"]
    assert set(ticket.data) == set(CATALOGUE["ticket.created"].fields)
    # the submission event still comes, and says ticket
    created = sink_of(m).of_type("offline_message.created")
    assert [e.data["mode"] for e in created] == ["ticket"]


def test_a_subject_field_wins_and_other_groups_stay_offline_messages() -> None:
    m = manager({"submission": {"groups": {"billing": TICKET_FORM}}})
    m.register_agent(agent("ann", groups=("billing", "sales"), status=AgentStatus.OFFLINE))
    billing = m.open_chat(customer("u1"), skill_group="billing")
    sales = m.open_chat(customer("u2"), skill_group="sales")
    m.submit_message(
        billing.id, {"email": "a@example.com", "subject": "Refund", "message": "x", "name": "Bo"}
    )
    m.submit_message(sales.id, {"email": "b@example.com", "message": "call me"})
    (ticket,) = sink_of(m).of_type("ticket.created")
    assert ticket.data["chat_id"] == billing.id
    assert ticket.data["subject"] == "Refund"
    assert ticket.data["requester"]["name"] == "Bo"  # the form's value beats the profile
    modes = {
        e.data["chat_id"]: e.data["mode"] for e in sink_of(m).of_type("offline_message.created")
    }
    assert modes == {billing.id: "ticket", sales.id: "offline_message"}


class _Recording(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.changes: list[Change] = []

    def apply(self, change: Change) -> Any:
        self.changes.append(change)
        return super().apply(change)


def test_the_ticket_event_is_in_the_submissions_unit_of_work() -> None:
    storage = _Recording()
    m = ChatManager(storage, ChatSettings.from_dict({"submission": TICKET_FORM}))
    chat = m.open_chat(CustomerInfo(partner_id="u"))
    m.submit_message(chat.id, {"email": "a@example.com", "message": "hi"})
    units = [c for c in storage.changes if any(e.type.startswith("ticket.") for e in c.events)]
    (unit,) = units  # one ticket, raised once
    assert unit.chat is not None and unit.chat.state is ChatState.LEFT_MESSAGE
    assert [e.type for e in unit.events] == ["offline_message.created", "ticket.created"]
    # and what was stored is that unit's chat
    assert m.get_chat(chat.id).submission == unit.chat.submission


def _world() -> ChatManager:
    m = ChatManager(
        None,
        ChatSettings.from_dict({"submission": TICKET_FORM}),
        rng=random.Random(7),
        ids=sequential_ids(),
        clock=ManualClock(100.0),
    )
    m.register_agent(
        Agent("ann", skill_groups={"g"}, status=AgentStatus.OFFLINE, reception_limit=1), now=0
    )
    m.open_chat(CustomerInfo(name="c1"), skill_group="g", chat_id="c1", now=1.0)
    return m


def test_crash_points_of_a_ticket_submission() -> None:
    submit = Operation(
        "submit_ticket",
        lambda m: m.submit_message("c1", {"email": "a@example.com", "message": "hi"}, now=5.0),
    )
    report = crash_points(_world, submit, now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
