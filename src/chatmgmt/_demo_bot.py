"""The demo's bot scene: a bot answers a chat first and hands it off to an agent with what it
learned; another chat the bot settles alone and ends (kept apart from ``_demo.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import ChatState, CustomerInfo, EndReason, MessageRole

if TYPE_CHECKING:
    from ._demo import _Printer
    from .manager import ChatManager
    from .testing import ManualClock

__all__ = ["bot_scene"]

BOT = "helpdesk-bot"


def bot_scene(manager: ChatManager, clock: ManualClock, p: _Printer) -> None:
    """Print the scene: Radia's chat handed off, Ivan's ended by the bot."""
    p.section("13:45  a bot answers first and hands off to a human")
    clock.advance(660)
    radia = manager.open_chat(CustomerInfo("u13", name="Radia"), skill_group="sales", bot=BOT)
    held = sum(manager.agent(a).active for a in ("ann", "bob", "vera"))
    p.row("Radia's chat starts with the bot", f"{radia.state.value}; agents hold {held} chats")
    turns = (
        (MessageRole.CUSTOMER, "u13", "I was charged twice for my order"),
        (MessageRole.BOT, BOT, "Sorry about that! What is the order number?"),
        (MessageRole.CUSTOMER, "u13", "#4711"),
    )
    for role, sender, text in turns:
        clock.advance(10)
        manager.send_message(radia.id, text, role=role, sender=sender)
    p.row("the bot asks for the order number", f"{len(manager.messages(radia.id))} messages kept")
    clock.advance(5)
    fields = {"order": "4711", "topic": "double charge"}
    done = manager.handoff(radia.id, reason="refund needs a human", fields=fields, by=BOT)
    context = done.route_reason.get("handoff", {})
    p.row(
        f"the bot hands off -> {done.agent_id or 'the queue'}",
        f"reason '{context.get('reason')}'; fields {context.get('fields')}",
    )
    manager.send_message(
        done.id,
        "Hi Radia, refunding order 4711 now.",
        role=MessageRole.AGENT,
        sender=done.agent_id or "",
    )
    manager.end_chat(done.id, reason=EndReason.AGENT, by=done.agent_id or "agent")

    ivan = manager.open_chat(CustomerInfo("u14", name="Ivan"), skill_group="sales", bot=BOT)
    manager.send_message(ivan.id, "When do you open tomorrow?", sender="u14")
    manager.send_message(ivan.id, "At 8:00. Anything else?", role=MessageRole.BOT, sender=BOT)
    clock.advance(20)
    ended = manager.end_chat(ivan.id, reason=EndReason.BOT, by=BOT)
    invited = "invited to rate" if ended.satisfaction else "no rating asked (bot only)"
    assert ended.state is ChatState.ENDED
    p.row("Ivan's question: the bot answers and ends it", f"end reason bot; {invited}")
