"""The bot stage: a chat a bot handles (``open_chat(..., bot=...)``) and its handoff.

A chat in the ``bot`` state is stored, its messages recorded and moderated, but it is not
routed, waits in no queue and holds no slot. :meth:`Bots.handoff` is one unit of work (the
chat's compare-and-set, its queue entry, the ``chat.handed_off`` event, the bot-stage timers
cancelled): from then on it is a waiting chat, and routing it (a second unit, as for any
waiting chat) carries the bot's context in the explanation. A handoff racing the chat's end or
the customer leaving loses cleanly: the chat is read again and the handoff refused
(:class:`~chatmgmt.errors.InvalidTransitionError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .. import lifecycle as lc
from .._plan import Plan
from .._text import check_text
from ..assignment import RouteRequest, queue_score
from ..assignment._plans import WAITING
from ..lifecycle import _bot
from ..model import Chat, ChatId, EndReason
from ._base import RETRY, Retry
from ._chat import Chats
from ._ops import Eff

__all__ = ["Bots"]

HANDOFF = _bot.HANDOFF_VIA
"""``route_reason["via"]`` of a chat handed off and not routed yet."""


class Bots(Chats):
    """Hand a chat in the bot stage off to a human; its bot-stage deadlines."""

    def handoff(
        self,
        chat_id: ChatId,
        reason: object,
        fields: object,
        by: str,
        now: float,
        *,
        skill_group: str | None = None,
    ) -> Eff[Chat]:
        """Hand a chat in the bot stage to a human: it waits in its group's queue (pool) with
        the bot's context in one unit of work, then is routed with that context in the
        explanation. ``skill_group``: route it to that group instead of the chat's."""
        why = _bot.check_reason(reason)
        context = _bot.check_fields(fields)
        check_text("by", by)
        if skill_group is not None:
            check_text("skill_group", skill_group)
            yield from self.require_target(None, skill_group)
        step_s = self.settings.assignment.queue.priority_step_s

        def planner(chat: Chat) -> Plan:
            group = chat.skill_group if skill_group is None else skill_group
            queue = self.wait_queue(chat, group)
            score = queue_score(now, chat.priority, step_s)
            return _bot.plan_handoff(
                chat, why, context, by, now, queue=queue, score=score, group=group
            )

        _old, waiting = yield from self.update(chat_id, planner, now)
        request = RouteRequest(designated_group=skill_group) if skill_group else RouteRequest()
        explain = _bot.handoff_explanation(waiting)
        first = [waiting]

        def attempt() -> Eff[Chat | Retry]:
            chat = first.pop() if first else (yield from self.get_chat(chat_id))
            if chat.state not in WAITING or chat.route_reason.get("via") != HANDOFF:
                return chat  # routed meanwhile (a drain took it), or it ended
            done = yield from self.route(chat, chat, request, now, explain=explain)
            if done.state in WAITING and done.route_reason.get("via") == HANDOFF:
                return RETRY  # the chat moved on before routing committed: route it again
            return done

        return (yield from self.retrying("chat", chat_id, attempt))

    def fire_bot(self, kind: lc.TimerKind, chat: Chat, now: float) -> Eff[None]:
        """A bot-stage deadline of ``chat`` is due: end it for the customer's silence
        (``bot_end``), or hand it off with the reason ``timeout`` (``bot_handoff``)."""
        if kind is lc.TimerKind.BOT_END:
            yield from self.end_chat(chat.id, EndReason.CUSTOMER_INACTIVITY, "system", now)
        else:
            yield from self.handoff(chat.id, "timeout", _NO_FIELDS, "system", now)


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
