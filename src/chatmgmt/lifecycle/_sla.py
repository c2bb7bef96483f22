"""SLA policies, pure: which policy covers a chat, its clocks, their warnings and breaches.

A chat's SLA (:class:`~chatmgmt.model.ChatSla`, stored in ``Chat.sla``) has up to three
clocks (:class:`~chatmgmt.model.SlaClock`), one per target of its policy:

* ``first_response`` runs from the chat's start (``created_at``; for a chat that began in the
  bot stage, its handoff) to the first agent message;
* ``next_response`` runs from a customer message that follows an agent message to the agent's
  next message (each such wait is one run);
* ``resolution`` runs from the start (the handoff) to the end (an Always On chat the
  customer reopens runs it again from the reopening).

Where the human part starts is :func:`~chatmgmt.assignment._routing.first_arrival` (the
creation, the handoff, or the last reopening), the rule the queue order uses too.

:func:`track_sla` is the one place that moves the clocks: the core calls it for every change
of a chat (``old`` as stored, ``new`` as planned) when SLA policies are configured, so the
clocks start, stop and re-select in the same unit of work as the change that causes it. A
clock that stops at or after its due time breaches (``sla.breached``) unless its breach went
out already; :func:`sla_due` is what the chat's ``sla`` timer (:func:`sla_timer`) does when
a warning or a breach falls due first. Every event goes out once: the ``warned`` / ``late``
flags on the stored chat say it went, and the chat's version guards them.

Business time: when the policy counts business hours and the chat's group has a calendar
(:func:`~chatmgmt.assignment._calendar.effective_hours`), a clock's due time is the moment
that many business seconds have passed (``business_deadline``) and achieved figures are
business seconds.

Re-selection: the policy is chosen when the chat starts and chosen again whenever its skill
group (a transfer), priority or tags change, while it is not ended. The same policy on the same
calendar changes nothing. Otherwise a clock the new policy keeps keeps its start, its finished
runs and its flags and takes the new target (its due time computed again from its start, on
the new group's calendar); a clock it adds starts where it would have started (first response
from the chat's start unless an agent already wrote; resolution from the start; next response
from the customer's last message if it is unanswered); a clock it drops is gone. When no policy
covers the chat any more, its running clocks stop without a result and its figures stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._plan import Items
from ..assignment._calendar import business_deadlines, business_seconds, effective_hours
from ..assignment._routing import first_arrival
from ..model import Chat, ChatSla, ChatState, SlaClock, Timer, evolve, maker
from ..settings import ChatSettings, SlaPolicy, SlaSettings, WorkingHours, resolve
from ..webhook import _payloads as payloads
from ..webhook._catalogue import EventType
from ._hold import on_hold

__all__ = [
    "SLA_METRICS",
    "SLA_TIMER",
    "select_sla_policy",
    "sla_due",
    "sla_timer",
    "track_sla",
]

SLA_TIMER = "sla"
"""The timer kind (and key suffix, ``f"{chat_id}:sla"``) of a chat's next SLA warning or
breach: one timer per chat, at the earliest of them."""
SLA_METRICS = ("first_response", "next_response", "resolution")
"""The clocks of an SLA, in the order of the policy's targets."""
_TARGETS = {m: f"{m}_s" for m in SLA_METRICS}
_NOT_TIMED = frozenset({ChatState.ENDED, ChatState.BOT})


def select_sla_policy(section: SlaSettings, chat: Chat) -> SlaPolicy | None:
    """The first policy of ``section`` (resolved for the chat's channel and group) that covers
    ``chat``: its group, priority and tags; None when none does."""
    for policy in section.policies:
        if policy.groups and chat.skill_group not in policy.groups:
            continue
        if policy.priorities and chat.priority not in policy.priorities:
            continue
        if policy.tags and chat.tags.isdisjoint(policy.tags):
            continue
        return policy
    return None


def _hours(settings: ChatSettings, sla: ChatSla) -> WorkingHours | None:
    if not sla.business_hours:
        return None
    return effective_hours(settings.assignment, sla.calendar_group)


def _start(clock: SlaClock, at: float, hours: WorkingHours | None, warn_before: float) -> SlaClock:
    fresh = evolve(clock, started_at=at, paused_s=0.0, warned=False, late=False)
    return _timed(fresh, hours, warn_before)


def _timed(clock: SlaClock, hours: WorkingHours | None, warn_before: float) -> SlaClock:
    """The running clock's warning and due times: its target (and the warning's share of it)
    counted from its start, plus the time it spent paused."""
    at = clock.started_at
    assert at is not None
    extra = clock.paused_s
    if warn_before > 0:
        warn, due = business_deadlines(
            hours, at, (clock.target_s * (1.0 - warn_before) + extra, clock.target_s + extra)
        )
    else:
        warn, due = None, business_deadlines(hours, at, (clock.target_s + extra,))[0]
    return evolve(clock, due_at=due, warn_at=warn)


def _unpaused(
    clock: SlaClock, since: float, until: float, hours: WorkingHours | None, warn_before: float
) -> SlaClock:
    """The running ``clock`` after a pause from ``since`` to ``until``: the paused part of its
    run added to ``paused_s`` and its due times moved that much later."""
    assert clock.started_at is not None
    paused = business_seconds(hours, max(clock.started_at, since), until)
    if paused <= 0:
        return clock
    return _timed(evolve(clock, paused_s=clock.paused_s + float(paused)), hours, warn_before)


def _stop(
    sla: ChatSla,
    metric: str,
    clock: SlaClock,
    at: float,
    hours: WorkingHours | None,
    items: Items,
    *,
    result: bool = True,
) -> SlaClock:
    """The clock stopped at ``at``: its figures, and ``sla.breached`` (into ``items``) when
    it stopped at or after its due time and its breach has not gone out."""
    assert clock.started_at is not None
    changes: dict[str, Any] = {
        "started_at": None,
        "warn_at": None,
        "due_at": None,
        "paused_s": 0.0,
    }
    if clock.due_at is not None and at >= clock.due_at and not clock.late:
        changes["late"] = True
        changes["warned"] = True
        changes["breaches"] = clock.breaches + 1
        items.append(_event(EventType.SLA_BREACHED, sla, metric, clock))
    if result:
        took = max(0.0, float(business_seconds(hours, clock.started_at, at)) - clock.paused_s)
        if metric == "next_response" and clock.achieved_s is not None:
            took = max(took, clock.achieved_s)  # the longest wait
        changes["achieved_s"] = took
        changes["runs"] = clock.runs + 1
    return evolve(clock, **changes)


def _event(type_: str, sla: ChatSla, metric: str, clock: SlaClock) -> tuple[str, Mapping[str, Any]]:
    return payloads.sla_event(
        type_,
        sla.policy,
        metric,
        clock.target_s,
        clock.started_at,
        clock.due_at,
        business_hours=sla.business_hours,
    )


def _answered(old: Chat | None, new: Chat, field: str) -> float | None:
    at: float | None = getattr(new, field)
    if at is None or (old is not None and getattr(old, field) == at):
        return None
    return at


def _select(settings: ChatSettings, sla: ChatSla | None, chat: Chat, now: float) -> ChatSla | None:
    section = resolve(settings.sla, channel=chat.channel, group=chat.skill_group or None)
    policy = select_sla_policy(section, chat)
    if policy is None:
        if sla is None:
            return None
        stopped = {
            m: evolve(c, started_at=None, warn_at=None, due_at=None, paused_s=0.0)
            for m, c in sla.clocks().items()
        }
        return evolve(sla, **stopped)
    group = chat.skill_group
    hours = effective_hours(settings.assignment, group) if section.business_hours else None
    business = hours is not None
    if sla is not None and (sla.policy, sla.calendar_group, sla.business_hours) == (
        policy.name,
        group,
        business,
    ):
        return sla
    old = sla.clocks() if sla is not None else {}
    clocks: dict[str, SlaClock | None] = {}
    for metric in SLA_METRICS:
        target = float(getattr(policy, _TARGETS[metric]))
        if not target:
            clocks[metric] = None
            continue
        kept = old.get(metric)
        if kept is not None:
            clock = evolve(kept, target_s=target)
            if clock.started_at is not None:
                clock = _restart(clock, clock.started_at, hours, section.warn_before)
            clocks[metric] = clock
            continue
        clock = SlaClock(target)
        start = _natural_start(metric, chat)
        clocks[metric] = (
            clock if start is None else _start(clock, start, hours, section.warn_before)
        )
    return ChatSla(
        policy.name,
        business,
        group,
        first_response=clocks["first_response"],
        next_response=clocks["next_response"],
        resolution=clocks["resolution"],
    )


def _late_under_new_targets(sla: ChatSla, items: Items) -> ChatSla:
    """``sla`` with each clock whose last finished run misses its (new) target breached, and
    its ``sla.breached`` into ``items``: a stricter policy chosen after a run ended counts
    that run late, as it does a running clock whose new due time has passed (at the next
    tick). A breach already sent is never sent again. A clock running again (an Always On
    chat reopened, a customer's next message) keeps its new run's flags: that run breaches,
    or not, on its own."""
    late: dict[str, SlaClock] = {}
    for metric, clock in sla.clocks().items():
        achieved = clock.achieved_s
        if achieved is not None and achieved >= clock.target_s and not clock.breached:
            breaches = clock.breaches + 1
            late[metric] = (
                evolve(clock, breaches=breaches)
                if clock.running
                else evolve(clock, late=True, warned=True, breaches=breaches)
            )
            items.append(_event(EventType.SLA_BREACHED, sla, metric, clock))
    return evolve(sla, **late) if late else sla


def _restart(
    clock: SlaClock, at: float, hours: WorkingHours | None, warn_before: float
) -> SlaClock:
    """The running clock on a new target or calendar: due times again (from its start, its
    pauses counted), flags kept."""
    return _timed(evolve(clock, started_at=at), hours, warn_before)


def _natural_start(metric: str, chat: Chat) -> float | None:
    if chat.state is ChatState.ENDED or chat.state is ChatState.BOT:
        return None  # a bot-stage chat's clocks start at its handoff
    if metric == "first_response":
        return first_arrival(chat) if chat.last_agent_message_at is None else None
    if metric == "resolution":
        return first_arrival(chat)
    customer, agent = chat.last_customer_message_at, chat.last_agent_message_at
    if customer is not None and agent is not None and customer > agent:
        return customer
    return None


def track_sla(
    settings: ChatSettings,
    old: Chat | None,
    new: Chat,
    items: Sequence[tuple[str, Mapping[str, Any]]],
    now: float,
) -> tuple[Chat, Sequence[tuple[str, Mapping[str, Any]]]]:
    """The planned chat ``new`` (stored as ``old``; None: being created) with its SLA moved
    by the change, and the change's events with the SLA's added: the clocks the change starts
    or stops, ``sla.breached`` for a clock stopped late whose breach has not gone out, the
    policy chosen again when the group, priority or tags changed, and the SLA figures in the
    ``chat.ended`` event. Returns ``new`` and ``items`` themselves when nothing changes."""
    sla = new.sla
    ended = new.state is ChatState.ENDED
    keyed = (
        old is None
        or old.skill_group != new.skill_group
        or old.priority != new.priority
        or old.tags != new.tags
    )
    if sla is None and not keyed:
        return new, items
    was_ended = old is not None and old.state is ChatState.ENDED
    out: Items = list(items)
    if keyed and not (ended and (was_ended or old is None)):
        sla = _select(settings, sla, new, now)
        if sla is not None:
            sla = _late_under_new_targets(sla, out)
    if sla is None:
        return new, items
    sla = _advance(settings, sla, old, new, out, now)
    if ended and not was_ended:
        figures = sla.figures()
        for i, (type_, data) in enumerate(out):
            if type_ == EventType.CHAT_ENDED:
                out[i] = (type_, {**data, "sla": figures})
    if sla == new.sla and len(out) == len(items) and not (ended and not was_ended):
        return new, items
    return evolve(new, sla=sla), out


def _advance(
    settings: ChatSettings, sla: ChatSla, old: Chat | None, new: Chat, items: Items, now: float
) -> ChatSla:
    hours = _hours(settings, sla)
    section = resolve(settings.sla, channel=new.channel, group=new.skill_group or None)
    clocks = sla.clocks()
    before = dict(clocks)
    paused = sla.paused_since
    pause = section.pause_on_hold and on_hold(new)
    if paused is not None and not pause:  # the hold ended (resumed, moved, ended): run again
        for name, running in list(clocks.items()):
            if running.started_at is not None:
                clocks[name] = _unpaused(running, paused, now, hours, section.warn_before)
        paused = None
    agent_at = _answered(old, new, "last_agent_message_at")
    customer_at = _answered(old, new, "last_customer_message_at")
    ended = new.state is ChatState.ENDED and (old is None or old.state is not ChatState.ENDED)
    reopened = old is not None and old.state is ChatState.ENDED and new.state is not ChatState.ENDED
    if agent_at is not None:
        for metric in ("first_response", "next_response"):
            clock = clocks.get(metric)
            if clock is not None and clock.started_at is not None:
                if paused is not None:  # the agent answers while the chat is on hold
                    clock = _unpaused(clock, paused, agent_at, hours, section.warn_before)
                clocks[metric] = _stop(sla, metric, clock, agent_at, hours, items)
    nxt = clocks.get("next_response")
    first = clocks.get("first_response")
    if (
        customer_at is not None
        and new.state is not ChatState.ENDED
        and nxt is not None
        and nxt.started_at is None
        and new.last_agent_message_at is not None
        and (first is None or first.started_at is None)
    ):
        warn = resolve(settings.sla, channel=new.channel, group=new.skill_group or None)
        clocks["next_response"] = _start(nxt, customer_at, hours, warn.warn_before)
    handed_off = old is not None and old.state is ChatState.BOT and new.state not in _NOT_TIMED
    if handed_off:  # the human part starts now
        section = resolve(settings.sla, channel=new.channel, group=new.skill_group or None)
        for metric in ("first_response", "resolution"):
            clock = clocks.get(metric)
            if clock is not None and clock.started_at is None and not clock.runs:
                clocks[metric] = _start(clock, now, hours, section.warn_before)
    res = clocks.get("resolution")
    if reopened and res is not None and res.started_at is None:
        warn = resolve(settings.sla, channel=new.channel, group=new.skill_group or None)
        clocks["resolution"] = _start(res, now, hours, warn.warn_before)
    if ended:
        at = new.ended_at if new.ended_at is not None else now
        for metric, clock in list(clocks.items()):
            if clock.started_at is not None:
                done = metric == "resolution"
                clocks[metric] = _stop(sla, metric, clock, at, hours, items, result=done)
    if pause and paused is None:  # put on hold: the clocks stand still from now on
        hold = new.hold or {}
        since = hold.get("since")
        paused = float(since) if isinstance(since, (int, float)) else now
        for metric, clock in list(clocks.items()):  # a breach before the hold goes out with it
            due = clock.due_at
            if (
                clock.started_at is not None
                and due is not None
                and due <= paused
                and not clock.late
            ):
                items.append(_event(EventType.SLA_BREACHED, sla, metric, clock))
                clocks[metric] = evolve(clock, late=True, warned=True, breaches=clock.breaches + 1)
    if clocks == before and paused == sla.paused_since:
        return sla
    return evolve(sla, paused_since=paused, **clocks)


def sla_due(chat: Chat, now: float) -> tuple[ChatSla, Items] | None:
    """What the chat's SLA timer does at ``now``: every running clock whose due time passed
    breaches (``sla.breached``) and every one whose warning time passed is warned
    (``sla.warning``; not when it breaches at once), each once; None when nothing is due."""
    sla = chat.sla
    if sla is None or chat.state is ChatState.ENDED or sla.paused_since is not None:
        return None
    items: Items = []
    clocks = sla.clocks()
    for metric, clock in clocks.items():
        if clock.started_at is None:
            continue
        if not clock.late and clock.due_at is not None and clock.due_at <= now:
            items.append(_event(EventType.SLA_BREACHED, sla, metric, clock))
            clocks[metric] = evolve(clock, late=True, warned=True, breaches=clock.breaches + 1)
        elif not clock.warned and clock.warn_at is not None and clock.warn_at <= now:
            items.append(_event(EventType.SLA_WARNING, sla, metric, clock))
            clocks[metric] = evolve(clock, warned=True)
    if not items:
        return None
    return evolve(sla, **clocks), items


def sla_timer(chat: Chat) -> Timer | None:
    """The chat's one SLA timer (kind :data:`SLA_TIMER`), at the earliest warning or breach
    still to go out of its running clocks; None when there is none."""
    sla = chat.sla
    if sla is None or chat.state is ChatState.ENDED or sla.paused_since is not None:
        return None
    due: float | None = None
    for clock in (sla.first_response, sla.next_response, sla.resolution):
        if clock is None or clock.started_at is None or clock.late:
            continue
        at = clock.warn_at if not clock.warned and clock.warn_at is not None else clock.due_at
        if at is not None and (due is None or at < due):
            due = at
    if due is None:
        return None
    return _new_timer(
        f"{chat.id}:{SLA_TIMER}", due, chat.id, SLA_TIMER, chat.version, {"basis": (due,)}
    )


_new_timer = maker(Timer)
