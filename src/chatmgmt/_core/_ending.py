"""The end of a chat as a plan: state, who and why, prompt, invitation, slot and queue entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import lifecycle as lc
from ..model import Chat, EndReason, Message, MessageRole, Sticky, evolve
from ..settings import resolve
from ..webhook import EventType
from ._base import Items, Plan, queue_of, queued_at, sticky_wait_key
from ._satisfaction import Satisfaction

__all__ = ["Ending", "message_item"]


def message_item(message: Message, moderation: str = "none") -> tuple[str, dict[str, Any]]:
    """The event of one stored message."""
    type_ = {
        MessageRole.CUSTOMER: EventType.MESSAGE_CUSTOMER,
        MessageRole.AGENT: EventType.MESSAGE_AGENT,
        MessageRole.SYSTEM: EventType.MESSAGE_SYSTEM,
        MessageRole.BOT: EventType.MESSAGE_BOT,
    }[message.role]
    return type_, {
        "message_id": message.id,
        "role": message.role.value,
        "sender": message.sender,
        "text": message.text,
        "moderation": moderation,
    }


class Ending(Satisfaction):
    """Plans the end (or abandonment) of a chat."""

    def ended_plan(
        self,
        chat: Chat,
        reason: EndReason,
        by: str,
        now: float,
        *,
        extra: Sequence[tuple[str, Mapping[str, Any]]] = (),
        abandon: bool = False,
    ) -> Plan:
        """Pure: the chat ended (or abandoned) by ``by`` for ``reason``, with everything it
        implies in the same unit: its slot released, its queue entry and sticky wait dropped,
        the end prompt, the satisfaction invitation, the sticky mark, the events."""
        if abandon:
            state = lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.ABANDON)
            event = lc.ChatEvent.ABANDON
        else:
            state = lc.check_end(chat.id, chat.mode, chat.state, reason)
            event = lc.ChatEvent.END
        new = evolve(
            chat,
            state=state,
            ended_at=now,
            end_reason=reason,
            ended_by=by,
            queue=None,
            **lc.track(chat, event, now),
        )
        sticky = None
        pid = chat.customer.partner_id
        if pid and chat.agent_id and self.settings.assignment.sticky.after_close_s:
            sticky = Sticky(pid, chat.agent_id, now, "closed")
        items: Items
        if abandon:
            items = [(EventType.CHAT_ABANDONED, {"waited_s": now - queued_at(chat, now)})]
        else:
            items = [
                (
                    EventType.CHAT_ENDED,
                    {
                        "agent_id": chat.agent_id,
                        "end_reason": reason.value,
                        "ended_by": by,
                        "duration_s": now - chat.created_at,
                    },
                )
            ]
        items.extend(extra)
        message = None
        if not abandon:
            eoc = resolve(self.settings.end_of_chat, channel=chat.channel)
            prompt = (
                eoc.timeout_prompt if reason is EndReason.CUSTOMER_INACTIVITY else eoc.end_prompt
            )
            if prompt:
                message = self.system_message(chat, prompt, now)
                items.append(message_item(message))
            new, invite_items = self.invite(new, lc.InviteTrigger.CHAT_END, "system", now)
            items.extend(invite_items)
        queue = queue_of(chat)
        return Plan(
            new,
            items,
            release=chat.agent_id if chat.state.is_open else None,
            remove=(queue,) if queue else (),
            cancel=(sticky_wait_key(chat.id),) if queue else (),
            message=message,
            sticky=sticky,
        )
