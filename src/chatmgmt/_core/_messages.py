"""Messages: moderate, store the message and the chat's new state in one unit of work."""

from __future__ import annotations

from typing import Any

from .. import lifecycle as lc
from .._plan import Items, Plan
from .._text import check_message_text, check_text
from ..errors import (
    MessageBlockedError,
    NotAllowedError,
    PreconditionFailed,
    ValidationError,
)
from ..lifecycle._hold import wake
from ..model import AgentId, Chat, ChatId, ChatState, Message, MessageId, MessageRole, evolve
from ..moderation import Action
from ..ports import Outbox, RateCounter
from ..webhook import _payloads as payloads
from ._ops import Eff, call
from ._reopen import Reopening

__all__ = ["Messages"]


class Messages(Reopening):
    """Send messages (customer, agent, bot, system) with moderation."""

    def send_message(
        self, chat_id: ChatId, role: MessageRole, sender: str, text: str, now: float
    ) -> Eff[Message]:
        """Moderate, store a message and update the chat in one unit of work."""
        if not isinstance(text, str):
            raise ValidationError(f"text: must be a string, got {type(text).__name__}")
        check_message_text(text, self.settings.limits.max_message_chars)
        check_text("sender", sender)
        if role is MessageRole.WHISPER:
            raise ValidationError("role: a whisper is a supervisor's note; use whisper()")
        chat = yield from self.get_chat(chat_id)
        verdict = self.filter.check(text, role) if self.filter is not None else None
        delivered = text
        moderation = "none"
        hit_items: Items = []
        message_id = MessageId(self.new_id("msg"))
        if verdict is not None and verdict.hits:
            moderation = verdict.action.name.lower()
            hit_items = yield from self._moderation_items(
                message_id, role, sender, text, verdict, now
            )
            if verdict.action is Action.BLOCK:
                # the text is neither stored nor forwarded; the monitoring events still go out
                events, _seq = self.chat_events(chat, hit_items, now)
                events = [evolve(e, seq=0) for e in events]
                yield from call(Outbox.append, events)
                yield from self.emit(events)
                raise MessageBlockedError(chat.id, verdict.prompt or "")
            delivered = verdict.text
        flags = frozenset({moderation}) if moderation != "none" else frozenset()
        message = Message(message_id, chat.id, role, sender, delivered, now, flags)
        agent: AgentId | None = None  # a customer's reopen: the agent to claim (None: the pool)
        fallback: str | None = None
        if role is MessageRole.CUSTOMER and chat.state is ChatState.ENDED:
            section = lc.check_reopen(self.settings, chat, now, customer=True)
            agent, fallback = yield from self.reopen_target(chat, section.customer_to)

        def planner(current: Chat) -> Plan:
            if role is MessageRole.AGENT and current.agent_id != sender:
                why = (
                    f"it is held by agent {current.agent_id!r}"
                    if current.agent_id
                    else "no agent holds it"
                )
                raise NotAllowedError(
                    current.id,
                    sender,
                    f"only the agent holding the chat writes as its agent; {why}",
                )
            reopen = role is MessageRole.CUSTOMER and current.state is ChatState.ENDED
            section = (
                lc.check_reopen(self.settings, current, now, customer=True) if reopen else None
            )
            new, items = lc.plan_message(current, message, moderation, now)
            move = None
            if current.inactive or current.hold is not None:  # it wakes up (or resumes)
                customer = role is MessageRole.CUSTOMER
                new, woke, move = wake(current, new, customer, now, self.settings.assignment)
                items.extend(woke)
            items.extend(hit_items)
            if section is not None:  # its customer reopens it, in the message's unit
                to = section.customer_to
                return self.reopen_plan(
                    current, new, items, to, agent, fallback, "customer", now, message=message
                )
            return Plan(
                new,
                items,
                message=message,
                inactive=move,
            )

        try:
            old, new = yield from self.update(chat_id, planner, now)
        except PreconditionFailed as exc:
            if exc.reason != "agent_unavailable" or agent is None:
                raise
            # the last agent is full, offline or gone: nothing was committed; to the pool
            fallback = yield from self.why_unavailable(agent)
            agent = None
            old, new = yield from self.update(chat_id, planner, now)
        if old.state is ChatState.ENDED:
            yield from self.after_reopen(new, now)
        return message

    def _moderation_items(
        self,
        message_id: MessageId,
        role: MessageRole,
        sender: str,
        text: str,
        verdict: Any,
        now: float,
    ) -> Eff[Items]:
        words = self.settings.sensitive_words
        action = verdict.action.name.lower()
        original = text if words.original_in_webhooks else None
        hit = payloads.moderation_hit(
            message_id, role.value, sender, action, verdict.words, verdict.categories, original
        )
        items: Items = [hit]
        if words.alert_hits:
            count = yield from call(
                RateCounter.hit, f"moderation:{role.value}:{sender}", now, words.alert_window_s
            )
            if count == words.alert_hits:
                items.append(
                    payloads.moderation_alert(role.value, sender, count, words.alert_window_s)
                )
        return items
