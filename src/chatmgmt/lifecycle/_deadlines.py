"""Deadlines of a chat, computed from its values: no clock, no store.

:func:`plan_timers` says which :class:`~chatmgmt.model.Timer` values a chat should have right now
(and which keys to cancel); the manager puts them in the timer store after every change of the
chat, and ``ChatManager.tick(now)`` fires the due ones. Before firing, :func:`is_stale` decides
whether the chat has moved on since the timer was computed; after firing, :func:`mark_fired`
records it in the chat so the same deadline is neither planned nor fired again.

Staleness, exactly: every timer stores in ``payload["basis"]`` the values its deadline was
computed from (a JSON-ready list, see :func:`timer_basis`). A timer is stale when the chat's
current basis for that kind differs (the chat left the state the deadline belongs to, the
customer wrote, the agent answered, the chat was transferred or requeued, ...), or when the
chat records that kind as already fired for that basis. ``Timer.version`` is the chat's version
at planning time, for logs; it is not used to decide, because changes that do not touch the
basis (a system message, a moderation flag) must not cancel a deadline.

Bookkeeping the manager keeps in typed fields of :class:`~chatmgmt.model.Chat` (plain JSON
values): ``queued_at`` (when the chat last entered the queue), ``escalation`` (the auto-transfer
round, an :class:`Escalation`) and ``timers_fired`` (kind -> basis). :func:`track` computes the
first two for each event; :func:`mark_fired` the last. Both return the changed fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import ValidationError
from ..model import Chat, ChatState, ReceptionMode, Timer, maker
from ..settings import AssignmentSettings, BotSettings, EndOfChatSettings, resolve
from ._hold import on_hold, resumed_at
from ._state import ChatEvent

__all__ = [
    "ESCALATION_KEY",
    "FIRED_KEY",
    "QUEUED_AT_KEY",
    "Escalation",
    "TimerKind",
    "TimerPlan",
    "is_stale",
    "mark_fired",
    "plan_timers",
    "planned_timers",
    "timer_basis",
    "timer_key",
    "track",
]

QUEUED_AT_KEY = "queued_at"
"""``Chat`` field: when the chat last entered a queue (falls back to ``created_at``)."""
ESCALATION_KEY = "escalation"
"""``Chat`` field: the current auto-transfer round, ``Escalation.to_dict()``."""
FIRED_KEY = "timers_fired"
"""``Chat`` field: ``{kind: basis}`` of deadlines already fired."""


class TimerKind(str, enum.Enum):
    """The kinds of deadline a chat can have; one timer per chat and kind."""

    INACTIVITY_WARN = "inactivity_warn"
    """Warn the customer (``warn_prompt``) after ``warn_after_s`` of customer silence."""
    INACTIVITY_END = "inactivity_end"
    """End the chat (reason ``customer_inactivity``) after ``end_after_s`` of silence."""
    AGENT_REMINDER = "agent_reminder"
    """Remind the agent that the customer's last message is unanswered."""
    AUTO_TRANSFER = "auto_transfer"
    """Transfer the chat away from an agent who did not answer in time."""
    QUEUE_TIMEOUT = "queue_timeout"
    """The chat waited ``queue.max_wait_s`` in the queue: apply ``queue.on_limit``."""
    OFFER_EXPIRY = "offer_expiry"
    """The agent let the offer run out (``offers.timeout_s``): the chat goes to the next agent."""
    INACTIVITY_RELEASE = "inactivity_release"
    """Mark the chat inactive after ``inactive_after_s`` without a message (both modes)."""
    HOLD_CLOSE = "hold_close"
    """End the chat (reason ``hold_timeout``) after ``hold_close_after_s`` on hold."""
    BOT_END = "bot_end"
    """The customer was silent ``bot.end_after_s`` in the bot stage: end the chat (reason
    ``customer_inactivity``)."""
    BOT_HANDOFF = "bot_handoff"
    """The bot stage lasted ``bot.handoff_after_s``: hand the chat off (reason ``timeout``)."""


_KINDS = tuple(TimerKind)
_VALUES = {k: k.value for k in TimerKind}
_QT = TimerKind.QUEUE_TIMEOUT
_WARN = TimerKind.INACTIVITY_WARN
_END = TimerKind.INACTIVITY_END
_REMIND = TimerKind.AGENT_REMINDER
_AUTO = TimerKind.AUTO_TRANSFER
_OFFER = TimerKind.OFFER_EXPIRY
_RELEASE = TimerKind.INACTIVITY_RELEASE
_HOLD = TimerKind.HOLD_CLOSE
_BOT_END = TimerKind.BOT_END
_BOT_HANDOFF = TimerKind.BOT_HANDOFF
_TIMED_STATES = frozenset({ChatState.QUEUED, ChatState.ACTIVE})
# members as module globals: reading one off its enum class is an unspecialized attribute
# lookup on every call (~3x a global's cost), and these are read on every change of a chat
_OFFERED = ChatState.OFFERED
_BOT = ChatState.BOT
_QUEUED = ChatState.QUEUED
_ACTIVE = ChatState.ACTIVE
_REAL_TIME = ReceptionMode.REAL_TIME
_QUEUE_EVENT = ChatEvent.QUEUE
_OFFER_EVENT = ChatEvent.OFFER
_REQUEUE_EVENT = ChatEvent.REQUEUE
_ASSIGN_EVENT = ChatEvent.ASSIGN
_ACCEPT_EVENT = ChatEvent.ACCEPT
_TRANSFER_EVENT = ChatEvent.TRANSFER
_LEAVING_EVENTS = frozenset(
    {
        ChatEvent.UNASSIGN,
        ChatEvent.END,
        ChatEvent.ABANDON,
        ChatEvent.LEAVE_MESSAGE,
        ChatEvent.REOPEN,
    }
)
"""The events after which a chat neither waits nor escalates (:func:`track`)."""


def timer_key(chat_id: str, kind: TimerKind) -> str:
    """The timer store key of a chat's deadline of ``kind``: ``f"{chat_id}:{kind}"``."""
    value = _VALUES[kind] if isinstance(kind, TimerKind) else TimerKind(kind).value
    return f"{chat_id}:{value}"


@attrs.frozen
class Escalation:
    """An auto-transfer round: when it started and how many automatic transfers it had.

    Auto-transfer deadlines are cumulative against the round's start (REFERENCE.md): the k-th
    agent of a round (k = ``transfers`` + 1) must answer by ``since + k * auto_transfer_s``.
    A chat moved by hand at 8 s with a 20 s step still escalates at 20 s, not 28 s. A round
    starts when the chat is assigned out of the queue (or pool); transfers keep it.
    """

    since: float
    transfers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, for ``Chat.escalation``."""
        return {"since": self.since, "transfers": self.transfers}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        """Inverse of :meth:`to_dict`; raise :class:`~chatmgmt.errors.ValidationError`."""
        try:
            since = data["since"]
            transfers = data.get("transfers", 0)
        except (KeyError, AttributeError, TypeError):
            raise ValidationError(
                f"escalation: expected {{'since', 'transfers'}}, got {data!r}"
            ) from None
        if isinstance(since, bool) or not isinstance(since, (int, float)):
            raise ValidationError(f"escalation.since: must be a number, got {since!r}")
        if isinstance(transfers, bool) or not isinstance(transfers, int) or transfers < 0:
            raise ValidationError(f"escalation.transfers: must be an int >= 0, got {transfers!r}")
        return cls(float(since), transfers)


@attrs.frozen
class TimerPlan:
    """What the timer store should hold for one chat: timers to schedule, keys to cancel."""

    schedule: tuple[Timer, ...]
    cancel: tuple[str, ...]


# --------------------------------------------------------------------------- bases


def _queued_at(chat: Chat) -> float:
    value = chat.queued_at
    return chat.created_at if value is None else value


def _escalation(chat: Chat) -> Escalation:
    raw = chat.escalation
    if raw is not None:
        return Escalation.from_dict(raw)
    return Escalation(_assigned_at(chat))


def _assigned_at(chat: Chat) -> float:
    return chat.assigned_at if chat.assigned_at is not None else chat.created_at


def _silence_since(chat: Chat) -> float:
    # Customer silence counts from the customer's last message, but never from before the
    # current agent took the chat: time spent waiting for an agent is not customer silence;
    # nor from before a hold resumed (a hold stops the inactivity deadlines).
    assigned = chat.assigned_at  # _assigned_at(chat), without its call
    if assigned is None:
        assigned = chat.created_at
    if chat.hold is not None:
        resumed = resumed_at(chat)
        if resumed is not None:
            assigned = max(assigned, resumed)
    last = chat.last_customer_message_at
    return assigned if last is None else max(last, assigned)


def _quiet_since(chat: Chat) -> float:
    # No message from either side since (nor assignment, nor resumption)
    since = _silence_since(chat)
    agent = chat.last_agent_message_at
    return since if agent is None else max(since, agent)


def _held_since(chat: Chat) -> float | None:
    hold = chat.hold
    return float(hold["since"]) if hold is not None and on_hold(chat) else None


def _agent_answered(chat: Chat) -> bool:
    # The current agent answered: they wrote since they were assigned (or put it on hold).
    if chat.hold is not None:
        return True
    last = chat.last_agent_message_at
    return last is not None and last >= _assigned_at(chat)


def _unanswered(chat: Chat) -> bool:
    cust = chat.last_customer_message_at
    if cust is None:
        return False
    agent = chat.last_agent_message_at
    return agent is None or agent < cust


def timer_basis(kind: TimerKind, chat: Chat) -> list[Any] | None:
    """The values a deadline of ``kind`` depends on, or None when ``chat`` has no such deadline.

    Deadlines exist only in Real-Time Reception Mode (Always On chats never time out):

    * ``inactivity_warn`` / ``inactivity_end``: an active chat; basis ``[silence_since]`` where
      ``silence_since`` = the later of the customer's last message and the current assignment;
    * ``agent_reminder``: an active chat whose customer's last message is unanswered; basis
      ``[agent_id, max(last_customer_message_at, assigned_at)]``;
    * ``auto_transfer``: an active chat whose current agent has not written since assignment;
      basis ``[agent_id, assigned_at, escalation.since, escalation.transfers]``;
    * ``queue_timeout``: a queued chat; basis ``[queued_at]``;
    * ``offer_expiry`` (both modes: an offer expires in Always On Mode too): an offered chat;
      basis ``[agent_id, offer_expires_at]``;
    * ``inactivity_release`` (both modes): an active chat, not inactive, not on hold; basis
      ``[quiet_since]``, the later of the last message of either side, the assignment and the
      end of the last hold;
    * ``hold_close``: a chat on hold; basis ``[hold.since]``. While a chat is on hold it has no
      other deadline of an active chat;
    * ``bot_handoff`` (both modes): a chat in the bot stage; basis ``[bot.since]``;
    * ``bot_end``: a chat in the bot stage; basis ``[silence_since]``, the later of the
      customer's last message and the start of the bot stage.
    """
    if not isinstance(kind, TimerKind):
        kind = TimerKind(kind)
    if kind is TimerKind.OFFER_EXPIRY:
        return _offer_basis(chat)
    if kind is TimerKind.BOT_HANDOFF or kind is TimerKind.BOT_END:
        return _bot_basis(chat, kind)
    if kind is TimerKind.INACTIVITY_RELEASE:
        if chat.state is not ChatState.ACTIVE or chat.inactive or on_hold(chat):
            return None
        return [_quiet_since(chat)]
    if chat.mode is not ReceptionMode.REAL_TIME:
        return None
    if kind is TimerKind.QUEUE_TIMEOUT:
        return [_queued_at(chat)] if chat.state is ChatState.QUEUED else None
    if chat.state is not ChatState.ACTIVE:
        return None
    held = _held_since(chat)
    if kind is TimerKind.HOLD_CLOSE:
        return None if held is None else [held]
    if held is not None:
        return None
    if kind in (TimerKind.INACTIVITY_WARN, TimerKind.INACTIVITY_END):
        return [_silence_since(chat)]
    if kind is TimerKind.AGENT_REMINDER:
        if not _unanswered(chat):
            return None
        return [chat.agent_id, _silence_since(chat)]
    # AUTO_TRANSFER
    if _agent_answered(chat):
        return None
    esc = _escalation(chat)
    return [chat.agent_id, _assigned_at(chat), esc.since, esc.transfers]


def _offer_basis(chat: Chat) -> list[Any] | None:
    if chat.state is not ChatState.OFFERED or chat.offer_expires_at is None:
        return None
    return [chat.agent_id, chat.offer_expires_at]


def _bot_since(chat: Chat) -> float:
    bot = chat.bot
    since = bot.get("since") if bot else None
    return float(since) if isinstance(since, (int, float)) else chat.created_at


def _bot_silence(chat: Chat) -> float:
    since = _bot_since(chat)
    last = chat.last_customer_message_at
    return since if last is None else max(last, since)


def _bot_basis(chat: Chat, kind: TimerKind) -> list[Any] | None:
    if chat.state is not ChatState.BOT:
        return None
    if kind is TimerKind.BOT_HANDOFF:
        return [_bot_since(chat)]
    return [_bot_silence(chat)] if chat.mode is ReceptionMode.REAL_TIME else None


def _bot_timers(
    chat: Chat, bot: BotSettings | None
) -> list[tuple[TimerKind, tuple[Any, ...], float]]:
    if bot is None:
        return []
    stage = resolve(bot, channel=chat.channel, group=chat.skill_group or None)
    planned: list[tuple[TimerKind, tuple[Any, ...], float]] = []
    if stage.handoff_after_s > 0:
        since = _bot_since(chat)
        planned.append((_BOT_HANDOFF, (since,), since + stage.handoff_after_s))
    if stage.end_after_s > 0 and chat.mode is ReceptionMode.REAL_TIME:
        silence = _bot_silence(chat)
        planned.append((_BOT_END, (silence,), silence + stage.end_after_s))
    return planned


def _already_fired(chat: Chat, kind: TimerKind, basis: list[Any]) -> bool:
    fired = chat.timers_fired
    if not fired:
        return False
    done = fired.get(_VALUES[kind])
    return done is not None and list(done) == basis


# --------------------------------------------------------------------------- planning


def plan_timers(
    chat: Chat,
    *,
    end_of_chat: EndOfChatSettings,
    assignment: AssignmentSettings,
    bot: BotSettings | None = None,
) -> TimerPlan:
    """The deadlines ``chat`` should have now, and the keys of the kinds it should not have.

    ``end_of_chat`` is resolved for the chat's channel here (pass the global section).
    Deadlines (Real-Time Reception Mode only; an Always On chat gets none, and every key is
    cancelled):

    * ``inactivity_warn`` at ``silence_since + warn_after_s`` and ``inactivity_end`` at
      ``silence_since + end_after_s`` (each only when its setting is > 0);
    * ``agent_reminder`` at ``max(last customer message, assigned_at) + agent_reminder_s``
      while that message is unanswered (setting > 0);
    * ``auto_transfer`` at ``escalation.since + (escalation.transfers + 1) * auto_transfer_s``
      while the current agent has not written, and fewer than ``max_auto_transfers`` automatic
      transfers happened in the round (setting > 0);
    * ``queue_timeout`` at ``queued_at + queue.max_wait_s`` (setting > 0);
    * ``offer_expiry`` at ``offer_expires_at`` of an offered chat (in both modes);
    * ``inactivity_release`` at ``quiet_since + inactive_after_s`` (both modes; setting > 0);
    * ``hold_close`` at ``hold.since + hold_close_after_s`` (setting > 0) while on hold, and
      none of the other deadlines of an active chat;
    * in the bot stage (``bot``, resolved for the chat's channel and group; None: none):
      ``bot_handoff`` at ``bot.since + handoff_after_s`` (both modes) and ``bot_end`` at
      ``silence_since + end_after_s``.

    A deadline already fired for its current basis is not planned again.
    Every timer has ``version=chat.version`` and ``payload={"basis": [...]}``.
    """
    out = planned_timers(chat, end_of_chat=end_of_chat, assignment=assignment, bot=bot)
    planned = {t.key for t in out}
    keys = (timer_key(chat.id, k) for k in _KINDS)
    return TimerPlan(out, tuple(k for k in keys if k not in planned))


def planned_timers(
    chat: Chat,
    *,
    end_of_chat: EndOfChatSettings,
    assignment: AssignmentSettings,
    bot: BotSettings | None = None,
) -> tuple[Timer, ...]:
    """The timers of :func:`plan_timers` alone (no cancel list): the manager's hot path.

    Computes the same bases as :func:`timer_basis`, sharing the work between kinds.
    """
    state = chat.state
    if state is _OFFERED:
        offer = _offer_basis(chat)
        if offer is None:
            return ()
        return _timers(chat, [(_OFFER, tuple(offer), float(offer[1]))])
    if state is _BOT:
        return _timers(chat, _bot_timers(chat, bot))
    planned: list[tuple[TimerKind, tuple[Any, ...], float]] = []
    if chat.mode is not _REAL_TIME:
        if state is _ACTIVE and _may_release(end_of_chat):
            eoc = resolve(end_of_chat, channel=chat.channel, group=chat.skill_group or None)
            _plan_release(chat, eoc, planned)
        return _timers(chat, planned) if planned else ()
    if state is _QUEUED:
        wait = assignment.queue.max_wait_s
        if wait > 0:
            queued = _queued_at(chat)
            planned.append((_QT, (queued,), queued + wait))
    elif state is _ACTIVE:
        eoc = end_of_chat
        if end_of_chat.channels or end_of_chat.groups:  # overrides exist: this chat's section
            eoc = resolve(end_of_chat, channel=chat.channel, group=chat.skill_group or None)
        if chat.hold is not None and (held := _held_since(chat)) is not None:
            if eoc.hold_close_after_s > 0:
                planned.append((_HOLD, (held,), held + eoc.hold_close_after_s))
            return _timers(chat, planned)
        if eoc.inactive_after_s > 0:
            _plan_release(chat, eoc, planned)
        silence = _silence_since(chat)
        basis: tuple[Any, ...] = (silence,)  # both inactivity deadlines: one value, one payload
        if eoc.warn_after_s > 0:
            planned.append((_WARN, basis, silence + eoc.warn_after_s))
        if eoc.end_after_s > 0:
            planned.append((_END, basis, silence + eoc.end_after_s))
        if eoc.agent_reminder_s > 0 and _unanswered(chat):
            planned.append((_REMIND, (chat.agent_id, silence), silence + eoc.agent_reminder_s))
        step = assignment.auto_transfer_s
        if step > 0 and not _agent_answered(chat):
            esc = _escalation(chat)
            if esc.transfers < assignment.max_auto_transfers:
                basis = (chat.agent_id, _assigned_at(chat), esc.since, esc.transfers)
                planned.append((_AUTO, basis, float(esc.since + (esc.transfers + 1) * step)))
    return _timers(chat, planned) if planned else ()  # an ended chat has none


def _may_release(end_of_chat: EndOfChatSettings) -> bool:
    # an inactivity release may be set for some chat (globally, or in an override)
    return end_of_chat.inactive_after_s > 0 or bool(end_of_chat.channels or end_of_chat.groups)


def _plan_release(
    chat: Chat, eoc: EndOfChatSettings, planned: list[tuple[TimerKind, tuple[Any, ...], float]]
) -> None:
    after = eoc.inactive_after_s
    if after > 0 and not chat.inactive and not on_hold(chat):
        quiet = _quiet_since(chat)
        planned.append((_RELEASE, (quiet,), quiet + after))


def _timers(
    chat: Chat, planned: list[tuple[TimerKind, tuple[Any, ...], float]]
) -> tuple[Timer, ...]:
    out: list[Timer] = []
    fired = chat.timers_fired  # usually empty: then no call per deadline
    chat_id, version = chat.id, chat.version
    last: tuple[Any, ...] | None = None
    payload: dict[str, Any] = {}
    for kind, basis, due in planned:
        if fired and _already_fired(chat, kind, list(basis)):
            continue
        value = _VALUES[kind]
        # the basis as a tuple of atomic values (the collector can stop tracking it); deadlines
        # planned from the same basis value (the two inactivity ones) share one payload
        if basis is not last:
            last, payload = basis, {"basis": basis}
        # (key, due_at, chat_id, kind, version, payload)
        out.append(_new_timer(f"{chat_id}:{value}", due, chat_id, value, version, payload))
    return tuple(out)


_new_timer = maker(Timer)


def _due(
    kind: TimerKind,
    chat: Chat,
    basis: list[Any],
    eoc: EndOfChatSettings,
    assignment: AssignmentSettings,
) -> float | None:
    if kind is TimerKind.INACTIVITY_WARN:
        return basis[0] + eoc.warn_after_s if eoc.warn_after_s > 0 else None
    if kind is TimerKind.INACTIVITY_END:
        return basis[0] + eoc.end_after_s if eoc.end_after_s > 0 else None
    if kind is TimerKind.AGENT_REMINDER:
        return basis[1] + eoc.agent_reminder_s if eoc.agent_reminder_s > 0 else None
    if kind is TimerKind.OFFER_EXPIRY:
        return float(basis[1])
    if kind is TimerKind.INACTIVITY_RELEASE:
        return basis[0] + eoc.inactive_after_s if eoc.inactive_after_s > 0 else None
    if kind is TimerKind.HOLD_CLOSE:
        return basis[0] + eoc.hold_close_after_s if eoc.hold_close_after_s > 0 else None
    if kind is TimerKind.AUTO_TRANSFER:
        step = assignment.auto_transfer_s
        since, transfers = basis[2], basis[3]
        if step <= 0 or transfers >= assignment.max_auto_transfers:
            return None
        return float(since + (transfers + 1) * step)
    # QUEUE_TIMEOUT
    wait = assignment.queue.max_wait_s
    return basis[0] + wait if wait > 0 else None


# --------------------------------------------------------------------------- firing


def is_stale(timer: Timer, chat: Chat | None) -> bool:
    """True when the chat has moved on since ``timer`` was planned, so it must not fire.

    Stale when: the chat is gone (None) or is another chat; the kind is unknown; the chat's
    current basis for the kind differs from ``timer.payload["basis"]`` (or the chat no longer
    has such a deadline); or the chat records the kind as already fired for that basis.
    """
    if chat is None or chat.id != timer.chat_id:
        return True
    try:
        kind = TimerKind(timer.kind)
    except ValueError:
        return True
    basis = timer_basis(kind, chat)
    stored = timer.payload.get("basis")
    if basis is None or not isinstance(stored, (list, tuple)) or list(stored) != basis:
        return True
    return _already_fired(chat, kind, basis)


def mark_fired(chat: Chat, timer: Timer) -> dict[str, Any]:
    """The chat's changed fields recording that ``timer`` fired (store them with the firing):
    ``{"timers_fired": ...}``.

    After this, :func:`plan_timers` no longer plans the timer and :func:`is_stale` calls a
    duplicate of it stale, until its basis changes (e.g. the customer writes again).
    """
    fired = dict(chat.timers_fired)
    basis = timer.payload.get("basis")
    fired[TimerKind(timer.kind).value] = list(basis) if isinstance(basis, (list, tuple)) else None
    return {FIRED_KEY: fired}


_NEW_HOLDER: dict[str, Any] = {"hold": None, "inactive": False}


def track(chat: Chat, event: ChatEvent, now: float, *, automatic: bool = False) -> dict[str, Any]:
    """The chat's changed fields for ``event`` at ``now`` (the deadline bookkeeping):
    ``queued_at`` and ``escalation``.

    Call it with the chat as it was before the event and store the result with the new state:

    * ``queue``: ``queued_at`` is set if missing (an overflow to another queue keeps the wait);
    * ``requeue``: ``queued_at = now``; the escalation round ends;
    * ``assign``: a new escalation round starts at ``now``; ``queued_at`` is dropped;
    * ``offer``: ``queued_at`` is set if missing (an offer declined or expired goes back to
      the place it had); ``accept``: as ``assign``; ``decline``, ``expire``: nothing changes;
    * ``transfer``: with ``automatic=True`` the round counts one more automatic transfer; a
      manual transfer keeps the round unchanged (timeouts are cumulative);
    * ``assign``, ``accept``, ``transfer``: the new holder takes the chat counted, neither on
      hold nor inactive (``hold`` and ``inactive`` are reset);
    * ``unassign``, ``end``, ``abandon``, ``leave_message``, ``reopen``: both are dropped;
    * messages change nothing.
    """
    if type(event) is not ChatEvent:
        event = ChatEvent(event)
    if event is _QUEUE_EVENT or event is _OFFER_EVENT:
        return {QUEUED_AT_KEY: now if chat.queued_at is None else chat.queued_at}
    if event is _REQUEUE_EVENT:
        return {QUEUED_AT_KEY: now, ESCALATION_KEY: None}
    if event is _ASSIGN_EVENT or event is _ACCEPT_EVENT:
        # Escalation(now).to_dict(), without building the Escalation
        changes = {ESCALATION_KEY: {"since": now, "transfers": 0}, QUEUED_AT_KEY: None}
        if chat.hold is not None or chat.inactive:
            changes.update(_NEW_HOLDER)
        return changes
    if event is _TRANSFER_EVENT:
        out: dict[str, Any] = {}
        if automatic:
            esc = _escalation(chat)
            out[ESCALATION_KEY] = attrs.evolve(esc, transfers=esc.transfers + 1).to_dict()
        if chat.hold is not None or chat.inactive:
            out.update(_NEW_HOLDER)
        return out
    if event in _LEAVING_EVENTS:
        return {QUEUED_AT_KEY: None, ESCALATION_KEY: None}
    return {}
