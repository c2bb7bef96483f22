"""Messages: moderate, store the message and the chat's new state in one unit of work."""

from __future__ import annotations

from typing import Any

from .. import lifecycle as lc
from .._plan import Items, Plan
from .._text import check_message_text, check_text
from ..assignment import RouteRequest, pool_name, queue_score
from ..errors import (
    MessageBlockedError,
    NotAllowedError,
    ValidationError,
)
from ..model import Chat, ChatId, ChatState, Message, MessageId, MessageRole, evolve
from ..moderation import Action
from ..ports import Outbox, QueuePush, RateCounter
from ..webhook import _payloads as payloads
from ._ops import Eff, call
from ._pull import Pull

__all__ = ["Messages"]


class Messages(Pull):
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
            new, items = lc.plan_message(current, message, moderation, now)
            items.extend(hit_items)
            push = None
            if current.state is ChatState.ENDED and new.state is ChatState.UNASSIGNED:
                # an Always On chat the customer reopens waits in its pool from this very unit,
                # so no moment exists where it waits nowhere; routing then takes it from there
                pool = pool_name(new.skill_group)
                score = queue_score(
                    now, new.priority, self.settings.assignment.queue.priority_step_s
                )
                new = evolve(new, queue=pool, queued_at=now)
                push = QueuePush(pool, score)
            return Plan(
                new,
                items,
                message=message,
                push=push,
                inactive=self.counted(current, False) if current.inactive else None,
            )

        old, new = yield from self.update(chat_id, planner, now)
        if old.state is ChatState.ENDED and new.state is ChatState.UNASSIGNED:
            yield from self.route(new, new, RouteRequest(), now)
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
