"""Deadlines: fire the due timers (sticky wait, inactivity, reminders, auto-transfer, queue
timeout); every firing is a change of its chat, planned against the chat as it is now."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .. import lifecycle as lc
from ..assignment import RouteRequest
from ..errors import AssignmentError, ConflictError, InvalidTransitionError
from ..model import Chat, ChatId, EndReason, Timer, evolve
from ..ports import ChatStore, TimerStore
from ..settings import resolve
from ..webhook import EventType
from ._agents import Agents
from ._base import QUEUE, STICKY_WAIT, Plan, queue_of, queued_at
from ._ending import message_item
from ._ops import Eff, call
from ._routing import OPEN

__all__ = ["Deadlines"]

log = logging.getLogger("chatmgmt")

TIMER_LEASE_S = 30.0


class Deadlines(Agents):
    """``tick()``: fire what is due."""

    def tick(self, now: float, limit: int) -> Eff[int]:
        """Fire the due deadlines (at most ``limit``); returns how many fired."""
        timers = yield from call(TimerStore.claim_due, now, limit, TIMER_LEASE_S)
        fired = 0
        for timer in timers:
            try:
                chat = yield from call(ChatStore.get, ChatId(timer.chat_id))
                if chat is not None and (yield from self.fire(timer, chat, now)):
                    fired += 1
            except (InvalidTransitionError, AssignmentError, ConflictError) as exc:
                log.info("deadline %s did not fire: %s", timer.key, exc)
            yield from call(TimerStore.cancel, timer.key, now + TIMER_LEASE_S)
        return fired

    def fire(self, timer: Timer, chat: Chat, now: float) -> Eff[bool]:
        """Fire one deadline unless its chat moved on; True when it fired."""
        if timer.kind == STICKY_WAIT:
            queue = timer.payload.get(QUEUE)
            if chat.state not in OPEN or queue_of(chat) != queue:
                return False
            moved = evolve(chat, queue=None, sticky_waited=True)
            yield from self.route(chat, moved, RouteRequest(), now)
            return True
        if lc.is_stale(timer, chat):
            return False
        kind = lc.TimerKind(timer.kind)
        if kind is lc.TimerKind.AUTO_TRANSFER:
            yield from self.transfer(
                chat.id,
                to_agent=None,
                to_group=chat.skill_group,
                by="system",
                now=now,
                automatic=True,
            )
        elif kind is lc.TimerKind.QUEUE_TIMEOUT:
            reason = {**chat.route_reason, "waited_s": now - queued_at(chat, now)}
            yield from self.queue_limit(chat, "max_wait_s", reason, now, fired=timer)
        elif kind is lc.TimerKind.INACTIVITY_END:
            yield from self.end_chat(chat.id, EndReason.CUSTOMER_INACTIVITY, "system", now)
        else:
            yield from self._prompt(chat, timer, now)
        return True

    def _prompt(self, chat: Chat, timer: Timer, now: float) -> Eff[None]:
        """The inactivity warning to the customer, or the no-reply reminder to the agent."""
        eoc = resolve(self.settings.end_of_chat, channel=chat.channel)
        if timer.kind == lc.TimerKind.INACTIVITY_WARN.value:
            text = eoc.warn_prompt
            end_at = float(timer.payload["basis"][0]) + eoc.end_after_s if eoc.end_after_s else None
            extra: tuple[str, Mapping[str, Any]] = (
                EventType.CHAT_INACTIVITY_WARNED,
                {"end_at": end_at},
            )
        else:
            text = eoc.agent_reminder_prompt
            extra = (EventType.CHAT_AGENT_REMINDED, {"agent_id": chat.agent_id})
        message = self.system_message(chat, text, now)
        new = evolve(chat, **lc.mark_fired(chat, timer))
        yield from self.commit(
            chat, Plan(new, [message_item(message), extra], message=message), now
        )
