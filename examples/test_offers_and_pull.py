"""Offers and pull mode from an agent console's point of view.

A support team with two desks: ``sales`` pushes chats to agents as offers they accept or
decline (the offer holds the agent's slot for 20 s), ``tickets`` lets agents pull the next
chat themselves. The host's agent console would call ``accept_offer`` / ``decline_offer`` when
the agent clicks, ``take_chat`` for "next chat", and ``tick()`` from a timer. Run it with
pytest; it is part of the project's test suite.
"""

from __future__ import annotations

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, ChatState, CustomerInfo
from chatmgmt.testing import ManualClock, RecordingEventSink

SETTINGS = ChatSettings.from_dict(
    {
        "assignment": {
            "offers": {"groups": {"sales": {"enabled": True, "timeout_s": 20}}},
            "groups": {"tickets": {"pull": True}},
        }
    }
)


def team() -> tuple[ChatManager, ManualClock, RecordingEventSink]:
    clock = ManualClock(1_000.0)
    events = RecordingEventSink()
    manager = ChatManager(settings=SETTINGS, clock=clock, event_sink=events)
    for order, name in enumerate(("ana", "ben", "cleo")):
        groups = {"sales", "tickets"}
        manager.register_agent(
            Agent(name, skill_groups=groups, reception_limit=2, account_order=order)
        )
        manager.set_agent_status(name, AgentStatus.ONLINE)
    return manager, clock, events


def test_an_offer_declined_goes_to_the_next_agent_and_is_accepted() -> None:
    manager, clock, events = team()
    chat = manager.open_chat(CustomerInfo(partner_id="u1"), skill_group="sales")
    assert chat.state is ChatState.OFFERED  # the console rings for chat.agent_id
    first = chat.agent_id
    assert first is not None

    moved = manager.decline_offer(chat.id, first, reason="on a call")
    assert moved.agent_id not in (None, first)  # rings for the next agent

    clock.advance(25)  # nobody answers within 20 s: the offer expires on the next tick
    manager.tick()
    third = manager.get_chat(chat.id)
    assert third.state is ChatState.OFFERED
    assert third.agent_id not in (first, moved.agent_id)

    served = manager.accept_offer(chat.id, third.agent_id or "")
    assert served.state is ChatState.ACTIVE
    kinds = [e.type for e in events.events if e.chat_id == chat.id]
    assert kinds[-2:] == ["chat.offer_accepted", "chat.assigned"]
    assert "chat.offer_declined" in kinds and "chat.offer_expired" in kinds


def test_agents_pull_tickets_themselves() -> None:
    manager, clock, _events = team()
    for partner in ("u2", "u3", "u4"):
        manager.open_chat(CustomerInfo(partner_id=partner), skill_group="tickets")
        clock.advance(1)
    # nothing was pushed: three chats wait next to three free agents
    assert manager.agent("ana").chats == frozenset()
    taken = manager.take_chat("ana")  # "next chat": the oldest
    assert taken is not None and taken.customer.partner_id == "u2"
    waiting = [c for c in manager.list_chats() if c.state is ChatState.QUEUED]
    chosen = manager.take_chat("ben", chat_id=waiting[-1].id)  # a chosen one
    assert chosen is not None and chosen.agent_id == "ben"
