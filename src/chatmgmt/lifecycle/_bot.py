"""The bot stage, pure: a chat a bot handles before (or instead of) an agent.

:func:`plan_bot_start` is the unit of work that creates a chat in the ``bot`` state (no routing,
no queue entry, no slot). :func:`plan_handoff` is the bot handing the chat to a human: the chat
waits in its queue (pool) from that very unit, with the bot's context on the chat and in the
``chat.handed_off`` event; the core then routes it like any waiting chat, the context in the
explanation. Modelled on Chatwoot's ``pending`` status and its bot handoff.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._plan import Plan
from .._text import check_text, text_problem
from ..errors import ValidationError
from ..model import Chat, ChatState, evolve
from ..ports import QueuePush
from ..settings import BotSettings, resolve
from ..webhook import _payloads as payloads
from ._state import ChatEvent, transition

__all__ = [
    "HANDOFF_VIA",
    "MAX_REASON_LENGTH",
    "bot_id",
    "bot_only",
    "check_fields",
    "check_reason",
    "handoff_context",
    "handoff_explanation",
    "plan_bot_start",
    "plan_handoff",
    "skips_satisfaction",
    "waiting_handoff",
]

MAX_REASON_LENGTH = 500
"""The longest handoff reason accepted, in characters."""

HANDOFF_VIA = "handoff"
"""``route_reason["via"]`` of a chat that waits because its bot handed it off."""

_JSON_SCALARS = (str, int, float, bool, type(None))


def check_reason(reason: object) -> str:
    """The handoff reason, or :class:`~chatmgmt.errors.ValidationError` naming ``reason``:
    a non-empty string of at most :data:`MAX_REASON_LENGTH` characters."""
    check_text("reason", reason)
    assert isinstance(reason, str)
    if not reason.strip():
        raise ValidationError("reason: must be a non-empty string")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationError(f"reason: longer than {MAX_REASON_LENGTH} characters")
    return reason


def check_fields(fields: object, path: str = "fields") -> dict[str, Any]:
    """The bot's context as a JSON object, or :class:`~chatmgmt.errors.ValidationError`
    naming the bad part (``fields.order``, ``fields.items[2]``): string keys; strings,
    finite numbers, booleans, None, lists and objects of them; storable text throughout."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise ValidationError(f"{path}: must be a mapping, got {type(fields).__name__}")
    _check_json(fields, path)
    return dict(fields)


def _check_json(value: object, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{path}: keys must be strings, got {key!r}")
            problem = text_problem(key)
            if problem is not None:
                raise ValidationError(f"{path} key {key!r}: {problem}")
            _check_json(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
    elif isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValidationError(f"{path}: {problem}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{path}: must be a finite number, got {value!r}")
    elif not isinstance(value, _JSON_SCALARS):
        raise ValidationError(
            f"{path}: must be a string, number, boolean, null, list or object, "
            f"got {type(value).__name__}"
        )


def bot_id(chat: Chat) -> str | None:
    """The id of the bot that handled (or handles) ``chat``, or None."""
    bot = chat.bot
    value = bot.get("id") if bot else None
    return value if isinstance(value, str) else None


def bot_only(chat: Chat) -> bool:
    """True when ``chat`` had a bot stage and never left it (no handoff, no agent)."""
    bot = chat.bot
    return bool(bot) and "handoff" not in bot and not chat.served_by  # type: ignore[operator]


def handoff_context(chat: Chat) -> Mapping[str, Any] | None:
    """The handoff recorded on ``chat`` (``{"reason", "fields", "by", "at"}``), or None."""
    bot = chat.bot
    value = bot.get("handoff") if bot else None
    return value if isinstance(value, Mapping) else None


def skips_satisfaction(bot: BotSettings, chat: Chat) -> bool:
    """Whether ``chat``, ending now in the bot stage, gets no satisfaction invitation
    (``bot.skip_satisfaction`` for its channel and group)."""
    if chat.state is not ChatState.BOT:
        return False
    return resolve(bot, channel=chat.channel, group=chat.skill_group or None).skip_satisfaction


def plan_bot_start(
    chat: Chat, bot: str, now: float, items: Sequence[tuple[str, Mapping[str, Any]]]
) -> Plan:
    """The new ``chat`` (not stored yet) in the bot stage of ``bot``: no queue, no slot, its
    ``items`` (``chat.started``) and ``chat.bot_started``."""
    new = evolve(chat, state=ChatState.BOT, bot={"id": bot, "since": now})
    return Plan(new, [*items, payloads.chat_bot_started(bot)], owned=True)


def plan_handoff(
    chat: Chat,
    reason: str,
    fields: Mapping[str, Any],
    by: str,
    now: float,
    *,
    queue: str,
    score: float,
    group: str,
) -> Plan:
    """The bot hands ``chat`` to a human: it waits in ``queue`` (Real-Time: queued; Always On:
    unassigned) in skill group ``group`` from this unit, with ``score`` as a newcomer's, the
    context on ``chat.bot["handoff"]`` and ``chat.handed_off``. The bot-stage timers go with
    the state. Raises :class:`~chatmgmt.errors.InvalidTransitionError` unless in the bot stage."""
    state = transition(chat.id, chat.mode, chat.state, ChatEvent.HANDOFF)
    bot = dict(chat.bot or {})
    context = {"reason": reason, "fields": dict(fields), "by": by, "at": now}
    bot["handoff"] = context
    since = bot.get("since")
    spent = now - float(since) if isinstance(since, (int, float)) else 0.0
    explain = {"via": HANDOFF_VIA, "group": group, "handoff": _explained(bot, context)}
    new = evolve(
        chat,
        state=state,
        bot=bot,
        skill_group=group,
        queue=queue,
        queued_at=now,
        route_reason=explain,
    )
    item = payloads.chat_handed_off(str(bot.get("id", "")), reason, fields, by, round(spent, 3))
    return Plan(new, [item], push=QueuePush(queue, score))


def _explained(bot: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    return {"bot": bot.get("id"), "reason": context["reason"], "fields": context["fields"]}


def handoff_explanation(chat: Chat) -> dict[str, Any] | None:
    """What a routing explanation of ``chat`` says about its handoff, or None."""
    context = handoff_context(chat)
    if context is None or chat.bot is None:
        return None
    return {"handoff": _explained(chat.bot, context)}


def waiting_handoff(chat: Chat) -> Mapping[str, Any] | None:
    """The handoff context in the explanation of ``chat`` while it waits since its handoff
    (queued by the handoff, or by the handoff's routing that found nobody free): whoever
    assigns it next — a drain, perhaps before the handoff's own routing — explains the
    assignment with it, so the agent sees what the bot gathered. None otherwise."""
    value = chat.route_reason.get("handoff")
    return value if isinstance(value, Mapping) else None
