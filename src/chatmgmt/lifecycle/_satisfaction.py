"""Satisfaction: schemes, invitations, ratings — pure rules over values.

A chat's satisfaction state is a :class:`SatisfactionState` (invitations sent, the rating),
kept as plain values in ``Chat.satisfaction`` (:data:`SATISFACTION_KEY`) through
:meth:`SatisfactionState.to_dict` / :meth:`SatisfactionState.from_dict`.

* :func:`resolve_scheme` — the scheme of a skill group (or the global one);
* :func:`invitation_refusal` / :func:`invite` — may the customer be invited, and record it;
* :func:`validate_rating` — a rating's level, tags, comment and "resolved" answer;
* :func:`rate` — the rules around a rating (invited, window, second rating) and the new state;
* :func:`agent_view` — the chat as an agent may see it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..errors import FormValidationError, RatingRefusedError, ValidationError
from ..model import Chat, ChatState
from ..settings import SatisfactionScheme, SatisfactionSettings, SecondRating

__all__ = [
    "SATISFACTION_KEY",
    "InviteRefusal",
    "InviteTrigger",
    "Rating",
    "SatisfactionState",
    "agent_view",
    "attributed_agent",
    "invitation_refusal",
    "invite",
    "rate",
    "resolve_scheme",
    "satisfaction_of",
    "validate_rating",
]

SATISFACTION_KEY = "satisfaction"
"""``Chat`` field holding ``SatisfactionState.to_dict()``."""


def resolve_scheme(settings: SatisfactionSettings, group: str | None) -> SatisfactionScheme:
    """The scheme for a skill group: its override in ``settings.groups``, else the global one."""
    if group and group in settings.groups:
        return settings.groups[group]
    return settings.scheme


def attributed_agent(chat: Chat) -> str | None:
    """The agent a rating is attributed to: the last agent who served the chat; for a chat
    that never left its bot stage, the bot's id (or None)."""
    if chat.agent_id is not None:
        return chat.agent_id
    if chat.served_by:
        return chat.served_by[-1]
    bot = chat.bot
    value = bot.get("id") if bot and "handoff" not in bot else None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- values


def _num(path: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{path}: must be a number, got {value!r}")
    return float(value)


def _int(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{path}: must be an integer >= 0, got {value!r}")
    return value


@attrs.frozen
class Rating:
    """A customer's rating of a chat.

    ``level`` is 1 (worst) .. ``levels``; ``label`` the level's label when rated (so the rating
    reads the same after the scheme changes); ``agent_id`` the agent it is attributed to;
    ``revision`` 0 for the first rating, +1 each time a later rating overwrote it.
    """

    level: int
    levels: int
    label: str
    tags: tuple[str, ...] = ()
    resolved: bool | None = None
    comment: str = ""
    agent_id: str | None = None
    submitted_at: float = 0.0
    revision: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "level": self.level,
            "levels": self.levels,
            "label": self.label,
            "tags": list(self.tags),
            "resolved": self.resolved,
            "comment": self.comment,
            "agent_id": self.agent_id,
            "submitted_at": self.submitted_at,
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rating:
        """Inverse of :meth:`to_dict`; raise :class:`~chatmgmt.errors.ValidationError`."""
        p = "satisfaction.rating"
        if not isinstance(data, Mapping):
            raise ValidationError(f"{p}: must be a mapping, got {data!r}")
        try:
            tags = data.get("tags", [])
            if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
                raise ValidationError(f"{p}.tags: must be a list of strings, got {tags!r}")
            resolved = data.get("resolved")
            if resolved is not None and not isinstance(resolved, bool):
                raise ValidationError(f"{p}.resolved: must be true, false or null")
            for name in ("label", "comment"):
                if not isinstance(data.get(name, ""), str):
                    raise ValidationError(f"{p}.{name}: must be a string")
            agent = data.get("agent_id")
            if agent is not None and not isinstance(agent, str):
                raise ValidationError(f"{p}.agent_id: must be a string or null")
            return cls(
                level=_int(f"{p}.level", data["level"]),
                levels=_int(f"{p}.levels", data["levels"]),
                label=data.get("label", ""),
                tags=tuple(tags),
                resolved=resolved,
                comment=data.get("comment", ""),
                agent_id=agent,
                submitted_at=_num(f"{p}.submitted_at", data.get("submitted_at", 0.0)) or 0.0,
                revision=_int(f"{p}.revision", data.get("revision", 0)),
            )
        except KeyError as exc:
            raise ValidationError(f"{p}.{exc.args[0]}: missing") from None
        except TypeError as exc:
            raise ValidationError(f"{p}: {exc}") from None


@attrs.frozen
class SatisfactionState:
    """A chat's satisfaction state: invitations sent, when the last went out, the rating,
    when the reminder went out."""

    invitations: int = 0
    last_invited_at: float | None = None
    rating: Rating | None = None
    reminded_at: float | None = None
    """When the one reminder went out (None: not sent)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, for ``Chat.satisfaction`` (``reminded_at`` only once a
        reminder went out, so older records read and write the same)."""
        out = {
            "invitations": self.invitations,
            "last_invited_at": self.last_invited_at,
            "rating": None if self.rating is None else self.rating.to_dict(),
        }
        if self.reminded_at is not None:
            out["reminded_at"] = self.reminded_at
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SatisfactionState:
        """Inverse of :meth:`to_dict`; raise :class:`~chatmgmt.errors.ValidationError`."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"satisfaction: must be a mapping, got {data!r}")
        rating = data.get("rating")
        return cls(
            invitations=_int("satisfaction.invitations", data.get("invitations", 0)),
            last_invited_at=_num(
                "satisfaction.last_invited_at", data.get("last_invited_at"), optional=True
            ),
            rating=None if rating is None else Rating.from_dict(rating),
            reminded_at=_num("satisfaction.reminded_at", data.get("reminded_at"), optional=True),
        )


_NO_SATISFACTION = SatisfactionState()  # frozen: one value for every chat without any


def satisfaction_of(chat: Chat) -> SatisfactionState:
    """The chat's satisfaction state (an empty one when the chat has none yet)."""
    raw = chat.satisfaction
    return _NO_SATISFACTION if raw is None else SatisfactionState.from_dict(raw)


# --------------------------------------------------------------------------- invitations


class InviteTrigger(str, enum.Enum):
    """Who asks for the invitation."""

    CHAT_END = "chat_end"
    """Automatically, when the chat ends."""
    AGENT = "agent"
    """The agent, by hand (while the chat is active, or after it ended)."""


class InviteRefusal(str, enum.Enum):
    """Why an invitation is not sent."""

    DISABLED = "disabled"
    """Satisfaction is off."""
    NOT_SERVED = "not_served"
    """No agent ever held the chat, or its state has nothing to rate (queued, left a message)."""
    END_REASON = "end_reason"
    """The chat ended for a reason not in ``invite_on_end_reasons``."""
    AGENT_MAY_NOT_INVITE = "agent_may_not_invite"
    """``agent_may_invite`` is off."""
    AGENT_NEVER_REPLIED = "agent_never_replied"
    """``skip_if_agent_never_replied`` is on and no agent wrote in the chat."""
    MAX_INVITATIONS = "max_invitations"
    """``max_invitations`` were already sent."""
    ALREADY_RATED = "already_rated"
    """The chat is rated and a second rating would be refused."""
    WINDOW_CLOSED = "window_closed"
    """The chat ended more than ``window_s`` ago."""
    SKIP_TAG = "skip_tag"
    """The chat has one of ``skip_tags``."""
    MIN_INTERVAL = "min_interval"
    """The customer was invited (for any chat) less than ``min_interval_s`` ago."""


# read on every end: module globals (3.11 does not specialize class attribute reads)
_ENDED = ChatState.ENDED
_RATED_STATES = (ChatState.ACTIVE, ChatState.ENDED)  # the states a rating may be asked in
_CHAT_END = InviteTrigger.CHAT_END
_BY_AGENT = InviteTrigger.AGENT
_NEVER_REPLIED = InviteRefusal.AGENT_NEVER_REPLIED
_REFUSE = SecondRating.REFUSE


def _window_closed(settings: SatisfactionSettings, chat: Chat, now: float) -> bool:
    return (
        chat.state is _ENDED
        and chat.ended_at is not None
        and now > chat.ended_at + settings.window_s
    )


def _agent_replied(chat: Chat) -> bool:
    if chat.agent_replied or chat.last_agent_message_at is not None:
        return True
    bot = chat.bot  # a chat only the bot served: the bot's answer counts
    return bool(bot and bot.get("replied") and "handoff" not in bot and not chat.served_by)


def invitation_refusal(
    settings: SatisfactionSettings,
    chat: Chat,
    state: SatisfactionState,
    *,
    trigger: InviteTrigger,
    now: float,
    customer_invited_at: float | None = None,
) -> InviteRefusal | None:
    """Why the customer of ``chat`` must not be invited now, or None when they may be.

    ``settings`` are the chat's own rules (:func:`~chatmgmt.settings.resolve_satisfaction`);
    ``customer_invited_at`` is when this chat's customer was last invited, for any chat (None:
    never, or unknown).

    Checked in this order: satisfaction on; the chat was served (an agent held it) and is
    ``ACTIVE`` or ``ENDED``; it has none of ``skip_tags``; for ``chat_end`` the chat ended
    for one of ``invite_on_end_reasons``; for ``agent`` ``agent_may_invite`` is on; the agent
    replied (when ``skip_if_agent_never_replied``); fewer than ``max_invitations`` were sent;
    no rating yet unless second ratings overwrite; the rating window is open; the customer
    was not invited within ``min_interval_s``. At chat end a chat with one of ``invite_tags``
    skips the end reason, agent reply and interval checks.
    """
    if type(trigger) is not InviteTrigger:  # a member: no enum call
        trigger = InviteTrigger(trigger)
    if not settings.enabled:
        return InviteRefusal.DISABLED
    if chat.state not in _RATED_STATES or attributed_agent(chat) is None:
        return InviteRefusal.NOT_SERVED
    tags = chat.tags
    if tags and settings.skip_tags and not tags.isdisjoint(settings.skip_tags):
        return InviteRefusal.SKIP_TAG
    end = trigger is _CHAT_END
    forced = end and bool(tags) and not tags.isdisjoint(settings.invite_tags)
    if end and (
        chat.state is not _ENDED
        or (chat.end_reason not in settings.invite_on_end_reasons and not forced)
    ):
        return InviteRefusal.END_REASON
    if trigger is _BY_AGENT and not settings.agent_may_invite:
        return InviteRefusal.AGENT_MAY_NOT_INVITE
    if settings.skip_if_agent_never_replied and not forced and not _agent_replied(chat):
        return _NEVER_REPLIED
    if state.invitations >= settings.max_invitations:
        return InviteRefusal.MAX_INVITATIONS
    if state.rating is not None and settings.second_rating is _REFUSE:
        return InviteRefusal.ALREADY_RATED
    if _window_closed(settings, chat, now):
        return InviteRefusal.WINDOW_CLOSED
    if (
        customer_invited_at is not None
        and not forced
        and now < customer_invited_at + settings.min_interval_s
    ):
        return InviteRefusal.MIN_INTERVAL
    return None


def invite(
    settings: SatisfactionSettings,
    chat: Chat,
    state: SatisfactionState,
    *,
    trigger: InviteTrigger,
    now: float,
    customer_invited_at: float | None = None,
) -> SatisfactionState | None:
    """The state after inviting the customer now, or None when :func:`invitation_refusal`
    refuses (nothing is sent then; ask it for the reason)."""
    refusal = invitation_refusal(
        settings, chat, state, trigger=trigger, now=now, customer_invited_at=customer_invited_at
    )
    if refusal is not None:
        return None
    return attrs.evolve(state, invitations=state.invitations + 1, last_invited_at=now)


# --------------------------------------------------------------------------- ratings


def validate_rating(
    scheme: SatisfactionScheme,
    *,
    level: int,
    tags: Sequence[str] = (),
    comment: str = "",
    resolved: bool | None = None,
) -> tuple[int, tuple[str, ...], str, bool | None]:
    """Check a rating against ``scheme``; return ``(level, tags, comment, resolved)`` cleaned.

    Raises ONE :class:`~chatmgmt.errors.FormValidationError` listing every bad part:
    ``level`` within 1..``levels``; ``tags`` distinct and among the tags of that level;
    ``comment`` (stripped) required when ``level < comment_required_below`` and at most
    ``comment_max_length`` characters; ``resolved`` true, false or None (unanswered), and None
    when the scheme does not ask it.
    """
    errors: dict[str, str] = {}
    level_ok = not isinstance(level, bool) and isinstance(level, int)
    if not level_ok or not 1 <= level <= scheme.levels:
        errors["level"] = f"must be an integer within 1..{scheme.levels}, got {level!r}"
        level_ok = False
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        errors["tags"] = "must be a list of strings"
        clean_tags: tuple[str, ...] = ()
    else:
        clean_tags = tuple(tags)
        if len(set(clean_tags)) != len(clean_tags):
            errors["tags"] = "a tag is chosen twice"
        elif level_ok:
            offered = scheme.tags.get(str(level), ())
            bad = [t for t in clean_tags if t not in offered]
            if bad:
                errors["tags"] = f"not a tag of level {level}: {', '.join(map(repr, bad))}"
    if not isinstance(comment, str):
        errors["comment"] = "must be a string"
        text = ""
    else:
        text = comment.strip()
        if len(text) > scheme.comment_max_length:
            errors["comment"] = f"at most {scheme.comment_max_length} characters, got {len(text)}"
        elif level_ok and level < scheme.comment_required_below and not text:
            errors["comment"] = f"is required for a level below {scheme.comment_required_below}"
    if resolved is not None and not isinstance(resolved, bool):
        errors["resolved"] = "must be true, false or null"
    elif resolved is not None and not scheme.ask_resolved:
        errors["resolved"] = "this scheme does not ask whether the problem was resolved"
    if errors:
        raise FormValidationError(errors)
    return level, clean_tags, text, resolved


_NOT_INVITED = "This chat is not open for rating."
_NOT_SERVED = "This chat cannot be rated: no agent served it."
_WINDOW = "The time to rate this chat has passed."
_DISABLED = "Ratings are not accepted."


def rate(
    settings: SatisfactionSettings,
    chat: Chat,
    state: SatisfactionState,
    *,
    level: int,
    tags: Sequence[str] = (),
    comment: str = "",
    resolved: bool | None = None,
    now: float,
) -> SatisfactionState:
    """The state after the customer rates the chat now; raise when the rules refuse.

    :class:`~chatmgmt.errors.RatingRefusedError` (its ``reason`` is the message to show the
    customer) when: satisfaction is off; no agent served the chat or it is neither ``ACTIVE``
    nor ``ENDED``; the customer was not invited and ``customer_initiated`` is off; the chat
    ended more than ``window_s`` ago; the chat is rated and ``second_rating`` is ``refuse``
    (reason: ``refuse_message``). :class:`~chatmgmt.errors.FormValidationError` when the
    rating itself is bad (:func:`validate_rating` with the chat's group scheme). With
    ``second_rating`` ``overwrite`` the new rating replaces the old, ``revision`` + 1.
    The rating is attributed to :func:`attributed_agent`.
    """
    if not settings.enabled:
        raise RatingRefusedError(chat.id, _DISABLED)
    agent = attributed_agent(chat)
    if chat.state not in _RATED_STATES or agent is None:
        raise RatingRefusedError(chat.id, _NOT_SERVED)
    if state.invitations == 0 and not settings.customer_initiated:
        raise RatingRefusedError(chat.id, _NOT_INVITED)
    if _window_closed(settings, chat, now):
        raise RatingRefusedError(chat.id, _WINDOW)
    if state.rating is not None and settings.second_rating is _REFUSE:
        raise RatingRefusedError(chat.id, settings.refuse_message)
    scheme = resolve_scheme(settings, chat.skill_group)
    lvl, clean_tags, text, answer = validate_rating(
        scheme, level=level, tags=tags, comment=comment, resolved=resolved
    )
    revision = 0 if state.rating is None else state.rating.revision + 1
    rating = Rating(
        level=lvl,
        levels=scheme.levels,
        label=scheme.labels[lvl - 1],
        tags=clean_tags,
        resolved=answer,
        comment=text,
        agent_id=agent,
        submitted_at=now,
        revision=revision,
    )
    return attrs.evolve(state, rating=rating)


def agent_view(settings: SatisfactionSettings, chat: Chat) -> Chat:
    """The chat as its agent may see it: without the rating when ``visible_to_agent`` is off.

    Invitations stay visible (the agent may need to know one went out); only the rating is
    removed. The chat is returned unchanged when the rating is visible or absent.
    """
    raw = chat.satisfaction
    if settings.visible_to_agent or raw is None:
        return chat
    state = SatisfactionState.from_dict(raw)
    if state.rating is None:
        return chat
    return attrs.evolve(chat, satisfaction=attrs.evolve(state, rating=None).to_dict())
