"""The typed settings tree: what a product's "Settings > Chat" page configures.

:class:`ChatSettings` holds one section per function and the reception mode. Every section has
defaults that work out of the box, so ``ChatSettings()`` is a valid configuration.

* ``ChatSettings.from_dict(d)`` / ``.to_dict()`` convert to and from plain JSON-ready dicts
  (through cattrs) and round-trip exactly.
* Every invalid input raises :class:`~chatmgmt.errors.SettingsError` whose ``path`` names the bad
  field, e.g. ``end_of_chat.channels.app.end_after_s``.
* Sections that can be overridden carry ``channels`` and/or ``groups``: mappings from a channel
  or skill-group name to a partial section (only the fields to change). :func:`resolve` applies
  them: a value set for the channel beats the skill group's, which beats the global one.
"""

from __future__ import annotations

import contextvars
import enum
import ipaddress
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from ._conditions import parse_condition
from ._settings_autosave import AutoSaveSettings
from ._settings_base import MAX_COUNT as MAX_COUNT  # the explicit re-exports keep the pieces'
from ._settings_base import MAX_SECONDS as MAX_SECONDS  # `from .settings import _need` working
from ._settings_base import _check_text_leaves as _check_text_leaves
from ._settings_base import _fail as _fail
from ._settings_base import _need as _need
from ._settings_base import _number as _number
from ._settings_bot import BotSettings
from ._settings_enums import (
    FieldType,
    LeaveAction,
    OverflowCondition,
    QueueLimitAction,
    SecondRating,
    StrategyName,
    SubmissionMode,
    UnverifiedIdentity,
)
from ._settings_limits import LimitsSettings, RetentionSettings
from ._settings_reopen import ReopenSettings
from ._settings_sla import SlaPolicy, SlaSettings
from ._settings_webhooks import WebhookEndpoint, WebhookSettings
from ._settings_words import SensitiveWordSettings, WordEntry
from .errors import SettingsError
from .model import EndReason, ReceptionMode

__all__ = [
    "AssignmentSettings",
    "AutoSaveSettings",
    "BotSettings",
    "ChatSettings",
    "CustomStrategySettings",
    "EndOfChatSettings",
    "FairnessCap",
    "FieldType",
    "FormField",
    "GroupSettings",
    "LeaveAction",
    "LeaveSettings",
    "LimitsSettings",
    "OfferSettings",
    "OverflowCondition",
    "OverflowLayer",
    "QueueLimitAction",
    "QueueSettings",
    "ReopenSettings",
    "RetentionSettings",
    "RoutingRule",
    "SatisfactionScheme",
    "SatisfactionSettings",
    "SecondRating",
    "SensitiveWordSettings",
    "SlaPolicy",
    "SlaSettings",
    "StickySettings",
    "StrategyName",
    "SubmissionMode",
    "SubmissionSettings",
    "UnverifiedIdentity",
    "WebhookEndpoint",
    "WebhookSettings",
    "WordEntry",
    "WorkingHours",
    "resolve",
    "resolve_satisfaction",
]

_S = TypeVar("_S")


# --------------------------------------------------------------------------- 2. assignment

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@attrs.frozen
class WorkingHours:
    """A business calendar: weekly duty hours, holidays and date overrides in one time zone.

    ``weekly`` maps ``mon`` .. ``sun`` to spans such as ``"09:00-18:00"``; a day that is missing
    is off duty. An empty ``weekly`` means always on duty (holidays and overrides still apply).
    A span whose end is before its start crosses midnight (``"22:00-06:00"``: until 06:00 the next
    day); a span belongs to the day it starts on. Holidays beat overrides, overrides beat weekly.
    """

    timezone: str = attrs.field(
        default="UTC", metadata={"doc": "IANA time zone of the weekly hours, e.g. Europe/Berlin."}
    )
    weekly: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    holidays: tuple[str, ...] = attrs.field(
        default=(),
        metadata={"doc": "Local dates closed all day, e.g. 2026-12-25 (beats the rest)."},
    )
    overrides: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict,
        metadata={
            "doc": "Other hours on a local date (e.g. 2026-12-24: [09:00-13:00]) instead of that "
            "weekday's; an empty list closes the day."
        },
    )
    out_of_office_message: str = attrs.field(
        default="",
        metadata={
            "doc": "System message sent to the customer of a new chat that waits because its "
            "group is closed ('': none)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _fail(f"{path}.timezone", f"unknown time zone {self.timezone!r}") from None
        for day, spans in self.weekly.items():
            _need(day in _DAYS, f"{path}.weekly.{day}", f"day must be one of {', '.join(_DAYS)}")
            _check_spans(spans, f"{path}.weekly.{day}")
        for i, date in enumerate(self.holidays):
            _check_date(date, f"{path}.holidays[{i}]")
        for date, spans in self.overrides.items():
            _check_date(date, f"{path}.overrides.{date}")
            _check_spans(spans, f"{path}.overrides.{date}")
        _need(
            isinstance(self.out_of_office_message, str),
            f"{path}.out_of_office_message",
            "must be a string ('': none)",
        )


def _check_date(date: object, path: str) -> None:
    import datetime

    try:
        ok = isinstance(date, str) and datetime.date.fromisoformat(date).isoformat() == date
    except ValueError:
        ok = False
    _need(ok, path, "must be a date like '2026-12-25'")


def _check_spans(spans: Sequence[str], path: str) -> None:
    for i, span in enumerate(spans):
        m = _HHMM.match(span) if isinstance(span, str) else None
        _need(m is not None, f"{path}[{i}]", "must look like '09:00-18:00' or '22:00-06:00'")
        assert m is not None
        start, end = m.group(1, 2), m.group(3, 4)
        _need(start != end, f"{path}[{i}]", "the span must not be empty (start equals end)")
        _need(end[0] != "24" or end[1] == "00", f"{path}[{i}]", "24:MM is only 24:00")
        _need(start[0] != "24", f"{path}[{i}]", "a span cannot start at 24:00")


@attrs.frozen
class FairnessCap:
    """Fair distribution: at most ``max_assignments`` chats assigned to one agent within any
    ``window_s`` seconds (0: no cap). An agent at the cap is passed over by automatic routing
    until the window slides past its oldest assignment in it."""

    max_assignments: int = attrs.field(
        default=0, metadata={"doc": "Assignments per agent per window (0: no cap)."}
    )
    window_s: float = attrs.field(
        default=3600.0, metadata={"doc": "The sliding window, in seconds."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(
            self.max_assignments,
            f"{path}.max_assignments",
            hi=MAX_COUNT,
            integer=True,
            note="0: no cap",
        )
        _number(self.window_s, f"{path}.window_s", above=True)


@attrs.frozen
class GroupSettings:
    """Per skill group: its strategy (None: the global one), its duty hours, ``pull`` and its
    fairness cap (None: the global one)."""

    strategy: StrategyName | None = None
    priority_tiers: bool | None = None
    hours: WorkingHours | None = None
    pull: bool = attrs.field(
        default=False,
        metadata={
            "doc": "Pull mode: chats of the group wait in its queue (or pool) and are never "
            "pushed; agents take them with take_chat."
        },
    )
    fairness: FairnessCap | None = None


@attrs.frozen
class OfferSettings:
    """Offers: an assignment is first an offer the agent accepts or declines; overridable per
    skill group.

    ``enabled``: offer instead of assigning at once (off by default). ``timeout_s``: how long
    an offer waits for the agent's answer; an offer that runs out goes to the next agent, as a
    declined one does. The agent holds the chat's slot while the offer runs.
    """

    enabled: bool = False
    timeout_s: float = 30.0
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial offers section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.timeout_s, f"{path}.timeout_s", above=True)

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "assignment.offers")


@attrs.frozen
class RoutingRule:
    """An intelligent-routing rule: conditions (all that are set must hold) and a target.

    Conditions: ``channels`` (any of), ``min_vip_level``, ``ip_ranges`` (CIDR, any of),
    ``partner_ids`` (any of), ``customer_fields`` (each key equals the value). Target: an agent,
    a skill group, or both (the agent, falling back to the group unless ``strict``).
    ``when`` adds a condition tree (all / any / not, ranges, time of day, weekday, tags,
    attributes; see ``docs/assignment.md``) that must hold too.
    """

    name: str = attrs.field(
        metadata={"doc": "The rule's name; it appears in the explanation of each decision."}
    )
    target_agent: str | None = None
    target_group: str | None = None
    strict: bool = False
    channels: tuple[str, ...] = ()
    min_vip_level: int | None = None
    ip_ranges: tuple[str, ...] = ()
    partner_ids: tuple[str, ...] = ()
    customer_fields: Mapping[str, str] = attrs.field(factory=dict)
    when: Mapping[str, Any] | None = attrs.field(
        default=None,
        metadata={
            "doc": "A condition tree that must hold too: one-key objects all / any / not, "
            "channel, vip_level, ip, partner_id, attribute, customer_field, tags, time, weekday "
            "(docs/assignment.md#routing-rules)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(bool(self.name), f"{path}.name", "must be a non-empty string")
        if self.when is not None:
            parse_condition(self.when, f"{path}.when")
        _need(
            self.target_agent is not None or self.target_group is not None,
            path,
            "a routing rule needs target_agent or target_group",
        )
        if self.min_vip_level is not None:
            _number(self.min_vip_level, f"{path}.min_vip_level", hi=MAX_COUNT, integer=True)
        for i, cidr in enumerate(self.ip_ranges):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise _fail(f"{path}.ip_ranges[{i}]", f"not an IP network: {cidr!r}") from None


@attrs.frozen
class StickySettings:
    """Direct assignment to the customer's last agent.

    ``after_offline_message_s``: window after that agent replied to the customer's offline
    message; ``after_close_s``: window after the agent's chat with the customer closed (0: off).
    ``wait_s``: how long to wait for an unavailable sticky agent (0: never wait, route normally).
    """

    after_offline_message_s: float = 0.0
    after_close_s: float = 0.0
    wait_s: float = 0.0

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        for name in ("after_offline_message_s", "after_close_s", "wait_s"):
            _number(getattr(self, name), f"{path}.{name}", note="0: off")


_FALLBACKS = ("group", "queue", *(m.value for m in StrategyName))


@attrs.frozen
class CustomStrategySettings:
    """What happens when a custom strategy (registered with ``strategies=``) fails.

    ``timeout_s``: how long ``AsyncChatManager`` awaits an async strategy (an external router)
    before it gives up (0: no limit). A sync call cannot be interrupted, so the timeout applies
    to awaited strategies only. ``fallback``: what picks instead when the strategy raised,
    timed out or answered with an agent that is not eligible.
    """

    timeout_s: float = attrs.field(
        default=2.0,
        metadata={
            "doc": "Seconds AsyncChatManager awaits an async strategy before it gives up and "
            "uses the fallback (0: no limit; sync strategies cannot be interrupted)."
        },
    )
    fallback: str = attrs.field(
        default="group",
        metadata={
            "doc": "What picks when the strategy fails: `group` (the group's built-in strategy "
            "from these settings), a built-in strategy's name, or `queue` (no pick: the chat "
            "waits as if nobody were free)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.timeout_s, f"{path}.timeout_s", hi=3600, note="0: no limit")
        _need(
            self.fallback in _FALLBACKS,
            f"{path}.fallback",
            f"must be one of {', '.join(repr(f) for f in _FALLBACKS)}, got {self.fallback!r}",
        )


@attrs.frozen
class OverflowLayer:
    """One overflow layer: where chats go when the previous target meets ``conditions``.

    ``after_wait_s``: live overflow (``assignment.overflow_check_s``) moves a waiting chat to
    this layer only once it has waited this long (0: as soon as the condition holds).
    """

    target_group: str | None = None
    target_agent: str | None = None
    conditions: tuple[OverflowCondition, ...] = (
        OverflowCondition.NO_AGENT_ONLINE,
        OverflowCondition.ALL_BUSY,
        OverflowCondition.OFF_DUTY,
    )
    after_wait_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "Live overflow: a waiting chat moves to this layer only after waiting this "
            "long (0: as soon as the condition holds)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(
            (self.target_group is None) != (self.target_agent is None),
            path,
            "an overflow layer names exactly one of target_group or target_agent",
        )
        _need(bool(self.conditions), f"{path}.conditions", "must name at least one condition")
        _number(self.after_wait_s, f"{path}.after_wait_s", note="0: at once")


@attrs.frozen
class QueueSettings:
    """The real-time queue per skill group.

    ``priority_step_s``: how many seconds of waiting one priority level is worth (aging: a chat
    of priority p is ordered as if it had arrived ``p * priority_step_s`` earlier, so a lower
    priority chat that waited longer than that goes first — nothing starves).
    ``queue_first_priority``: the priority a request's queue-first flag gives.
    ``max_length`` / ``max_wait_s``: limits (0: none); ``on_limit`` says what happens then.
    ``estimate_handle_s``: the mean handle time used for the wait estimate.
    ``position_events_s``: send ``chat.queue_position`` events when a waiting chat's place
    changes, at most one per chat per this many seconds (0: none).
    """

    max_length: int = 0
    max_wait_s: float = 0.0
    on_limit: QueueLimitAction = QueueLimitAction.LEAVE_MESSAGE
    priority_step_s: float = 300.0
    queue_first_priority: int = 10
    estimate_handle_s: float = 300.0
    position_events_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "At most one chat.queue_position event per waiting chat per this many "
            "seconds, sent when its place changes (0: none)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.max_length, f"{path}.max_length", hi=MAX_COUNT, integer=True, note="0: none")
        _number(self.max_wait_s, f"{path}.max_wait_s", note="0: none")
        _number(self.priority_step_s, f"{path}.priority_step_s")
        _number(self.queue_first_priority, f"{path}.queue_first_priority", hi=1000, integer=True)
        _number(self.estimate_handle_s, f"{path}.estimate_handle_s", above=True)
        _number(self.position_events_s, f"{path}.position_events_s", note="0: none")


@attrs.frozen
class LeaveSettings:
    """The agent leave policy: what happens to the chats of an agent who goes offline (or away,
    when ``away_counts``) once ``grace_s`` has passed without the agent coming back.

    ``action``: ``keep``, ``requeue``, ``forward`` or ``pool`` (see :class:`LeaveAction`);
    ``grace_s``: how long the chats wait for the agent (0: moved at once);
    ``away_counts``: an AWAY agent has left too (OFFLINE always counts). Overridable per
    skill group (the chat's group decides).
    """

    action: LeaveAction = attrs.field(
        default=LeaveAction.KEEP,
        metadata={"doc": "keep, requeue (keeping their place), forward (to the group) or pool."},
    )
    grace_s: float = attrs.field(
        default=60.0,
        metadata={"doc": "Seconds the chats wait for the agent to come back (0: moved at once)."},
    )
    away_counts: bool = attrs.field(
        default=False, metadata={"doc": "An AWAY agent has left too (OFFLINE always has)."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial leave section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.grace_s, f"{path}.grace_s", note="0: at once")

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "assignment.leave")


@attrs.frozen
class AssignmentSettings:
    """Assignment: strategy, routing rules, sticky agent, overflow, queue, auto-transfer.

    ``strategy`` is the global default; ``groups`` carries per-group strategies and hours.
    ``saturation_tiebreak``: ``"random"`` (the injected RNG) or ``"longest_since_assigned"``.
    ``inactive_chats_count``: whether chats that went inactive still count toward the limit.
    ``auto_transfer_s``: transfer a chat when its agent has not answered within this many seconds
    of the chat's assignment (0: off), counted against the chat's age, not per step;
    ``max_auto_transfers`` bounds how often.
    ``fairness``: at most so many assignments per agent per window (per group in ``groups``).
    """

    strategy: StrategyName = StrategyName.ROUND_ROBIN
    priority_tiers: bool = attrs.field(
        default=False,
        metadata={"doc": "Rank agents by tier first (highest first), then by the strategy."},
    )
    saturation_tiebreak: str = "random"
    inactive_chats_count: bool = True
    on_hold_chats_count: bool = attrs.field(
        default=False,
        metadata={
            "doc": "Whether chats on hold still count toward the agent's limit (false: the "
            "slot is freed while on hold and counts again on resume)."
        },
    )
    hours: WorkingHours | None = attrs.field(
        default=None,
        metadata={
            "doc": "The tenant default business calendar: groups without their own hours "
            "inherit it (null: always on duty)."
        },
    )
    groups: Mapping[str, GroupSettings] = attrs.field(factory=dict)
    routing_rules: tuple[RoutingRule, ...] = ()
    sticky: StickySettings = attrs.field(factory=StickySettings)
    overflow: tuple[OverflowLayer, ...] = ()
    queue: QueueSettings = attrs.field(factory=QueueSettings)
    auto_transfer_s: float = 0.0
    max_auto_transfers: int = 3
    custom_strategy: CustomStrategySettings = attrs.field(factory=CustomStrategySettings)
    overflow_check_s: float = attrs.field(
        default=10.0,
        metadata={
            "doc": "Live overflow: how often tick() checks a queue with waiting chats for an "
            "overflow layer whose condition became true (0: only when a chat is routed)."
        },
    )
    leave: LeaveSettings = attrs.field(
        factory=LeaveSettings,
        metadata={"doc": "The agent leave policy (what happens to a leaving agent's chats)."},
    )
    offers: OfferSettings = attrs.field(factory=OfferSettings)
    fairness: FairnessCap = attrs.field(factory=FairnessCap)

    def fairness_for(self, group: str) -> FairnessCap:
        """The fairness cap of ``group``: its own, else the global one."""
        own = self.groups.get(group)
        return own.fairness if own is not None and own.fairness is not None else self.fairness

    @property
    def fairness_keep_s(self) -> float:
        """How long stores keep assignment times: the longest window of any cap that is on
        (0: no cap anywhere, none kept)."""
        caps = [self.fairness, *(g.fairness for g in self.groups.values() if g.fairness)]
        return max((c.window_s for c in caps if c.max_assignments > 0), default=0.0)

    def __attrs_post_init__(self) -> None:
        p = "assignment"
        self.custom_strategy.check(f"{p}.custom_strategy")
        _need(
            self.saturation_tiebreak in ("random", "longest_since_assigned"),
            f"{p}.saturation_tiebreak",
            "must be 'random' or 'longest_since_assigned'",
        )
        if self.hours is not None:
            self.hours.check(f"{p}.hours")
        for name, group in self.groups.items():
            if group.hours is not None:
                group.hours.check(f"{p}.groups.{name}.hours")
            if group.fairness is not None:
                group.fairness.check(f"{p}.groups.{name}.fairness")
        self.fairness.check(f"{p}.fairness")
        for i, rule in enumerate(self.routing_rules):
            rule.check(f"{p}.routing_rules[{i}]")
        self.sticky.check(f"{p}.sticky")
        _need(len(self.overflow) <= 4, f"{p}.overflow", "at most 4 overflow layers")
        for i, layer in enumerate(self.overflow):
            layer.check(f"{p}.overflow[{i}]")
        self.queue.check(f"{p}.queue")
        _number(self.auto_transfer_s, f"{p}.auto_transfer_s", note="0: off")
        _number(self.overflow_check_s, f"{p}.overflow_check_s", note="0: off")
        _number(self.max_auto_transfers, f"{p}.max_auto_transfers", hi=1000, integer=True)


# --------------------------------------------------------------------------- 3. submission


@attrs.frozen
class FormField:
    """A leave-a-message form field."""

    name: str = attrs.field(metadata={"doc": "Key of the field in the submitted values."})
    type: FieldType = FieldType.TEXT
    label: str = attrs.field(default="", metadata={"doc": "Label shown to the customer."})
    required: bool = attrs.field(
        default=False, metadata={"doc": "The submission is refused without a value."}
    )
    max_length: int = attrs.field(
        default=500,
        metadata={
            "doc": "Maximum length of a text value (or of each option, or the attachment count)."
        },
    )
    options: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "Choices of a select or multi-select field."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(bool(self.name), f"{path}.name", "must be a non-empty string")
        _number(self.max_length, f"{path}.max_length", lo=1, hi=MAX_COUNT, integer=True)
        if self.type in (FieldType.SELECT, FieldType.MULTI_SELECT):
            _need(bool(self.options), f"{path}.options", "a select field needs options")


_DEFAULT_FORM = (
    FormField("name", FieldType.TEXT, "Name", required=False, max_length=100),
    FormField("email", FieldType.EMAIL, "Email", required=True, max_length=254),
    FormField("message", FieldType.TEXT, "Message", required=True, max_length=2000),
)


@attrs.frozen
class SubmissionSettings:
    """Leave a message (Real-Time Reception Mode only; ignored in Always On Mode).

    When it is offered: ``when_no_agent_online``, ``when_off_duty``, ``when_queue_longer_than``
    (0: never), ``when_waited_longer_than_s`` (0: never). Overridable per channel and per group.
    """

    enabled: bool = attrs.field(default=True, metadata={"doc": "Offer leave-a-message at all."})
    mode: SubmissionMode = SubmissionMode.OFFLINE_MESSAGE
    when_no_agent_online: bool = True
    when_off_duty: bool = True
    when_queue_longer_than: int = 0
    when_waited_longer_than_s: float = 0.0
    prompt: str = attrs.field(
        default="All our agents are busy. Leave us a message and we will get back to you.",
        metadata={"doc": "Text shown with the form."},
    )
    fields: tuple[FormField, ...] = _DEFAULT_FORM
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial submission section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial submission section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(
            self.when_queue_longer_than,
            f"{path}.when_queue_longer_than",
            hi=MAX_COUNT,
            integer=True,
            note="0: never",
        )
        _number(
            self.when_waited_longer_than_s, f"{path}.when_waited_longer_than_s", note="0: never"
        )
        names: set[str] = set()
        for i, f in enumerate(self.fields):
            f.check(f"{path}.fields[{i}]")
            _need(f.name not in names, f"{path}.fields[{i}].name", f"duplicate field {f.name!r}")
            names.add(f.name)

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "submission")


# --------------------------------------------------------------------------- 5. satisfaction


@attrs.frozen
class SatisfactionScheme:
    """An evaluation scheme: 2, 3 or 5 levels (1 = worst), a label and tags per level."""

    levels: int = attrs.field(default=5, metadata={"doc": "2, 3 or 5 levels; 1 is the worst."})
    labels: tuple[str, ...] = attrs.field(
        default=(
            "Very dissatisfied",
            "Dissatisfied",
            "Neutral",
            "Satisfied",
            "Very satisfied",
        ),
        metadata={"doc": "One label per level, worst first."},
    )
    tags: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict,
        metadata={"doc": "Tags the customer may pick, per level (keys '1'..'levels')."},
    )
    ask_resolved: bool = attrs.field(
        default=True, metadata={"doc": "Ask 'was your problem solved?'."}
    )
    comment_required_below: int = attrs.field(
        default=0, metadata={"doc": "A comment is required for levels below this (0: never)."}
    )
    comment_max_length: int = attrs.field(
        default=500, metadata={"doc": "Longest accepted comment."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(self.levels in (2, 3, 5), f"{path}.levels", "must be 2, 3 or 5")
        _need(
            len(self.labels) == self.levels,
            f"{path}.labels",
            f"needs one label per level ({self.levels}), got {len(self.labels)}",
        )
        for key in self.tags:
            _need(
                key.isdigit() and 1 <= int(key) <= self.levels,
                f"{path}.tags.{key}",
                f"keys are levels 1..{self.levels}",
            )
        _number(
            self.comment_required_below,
            f"{path}.comment_required_below",
            hi=self.levels + 1,
            integer=True,
            note="0: never",
        )
        _number(
            self.comment_max_length, f"{path}.comment_max_length", lo=1, hi=MAX_COUNT, integer=True
        )


_DEFAULT_INVITE_REASONS = (EndReason.AGENT, EndReason.CUSTOMER)


@attrs.frozen
class SatisfactionSettings:
    """Satisfaction evaluation: scheme (global, per group), invitation and rating rules."""

    enabled: bool = attrs.field(
        default=True, metadata={"doc": "Satisfaction evaluation on or off."}
    )
    scheme: SatisfactionScheme = attrs.field(factory=SatisfactionScheme)
    groups: Mapping[str, SatisfactionScheme] = attrs.field(
        factory=dict,
        metadata={"doc": "Schemes per skill group, replacing the global scheme there."},
    )
    invite_on_end_reasons: tuple[EndReason, ...] = _DEFAULT_INVITE_REASONS
    agent_may_invite: bool = attrs.field(
        default=True, metadata={"doc": "Agents may send the invitation themselves."}
    )
    skip_if_agent_never_replied: bool = attrs.field(
        default=True, metadata={"doc": "No invitation when the agent never wrote in the chat."}
    )
    max_invitations: int = attrs.field(
        default=1, metadata={"doc": "How many invitations one chat may get."}
    )
    second_rating: SecondRating = SecondRating.REFUSE
    refuse_message: str = attrs.field(
        default="You have already rated this chat. Thank you!",
        metadata={"doc": "Shown when a second rating is refused."},
    )
    window_s: float = attrs.field(
        default=14 * 24 * 3600.0,
        metadata={"doc": "Ratings are accepted this long after the chat ended."},
    )
    visible_to_agent: bool = attrs.field(
        default=True, metadata={"doc": "Agents see the rating of their chats."}
    )
    customer_initiated: bool = attrs.field(
        default=False, metadata={"doc": "Customers may rate without an invitation."}
    )
    invite_prompt: str = attrs.field(
        default="How would you rate this chat?",
        metadata={
            "doc": "Text of the invitation: stored as a system message with every invitation "
            "(an agent's, or at chat end after the end prompt) ('': none)."
        },
    )
    reminder_after_s: float = attrs.field(
        default=0.0,
        metadata={"doc": "One reminder this long after an invitation left unrated (0: none)."},
    )
    reminder_prompt: str = attrs.field(
        default="You can still rate this chat: how did we do?",
        metadata={"doc": "Text of the reminder, stored as a system message."},
    )
    min_interval_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "No invitation to a customer (partner id with a CRM record) invited less "
            "than this long ago (0: no limit)."
        },
    )
    skip_tags: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "A chat with one of these tags is never invited."}
    )
    invite_tags: tuple[str, ...] = attrs.field(
        default=(),
        metadata={
            "doc": "A chat with one of these tags is invited at its end whatever the end "
            "reason, agent reply or customer interval (skip_tags win)."
        },
    )
    group_rules: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict,
        metadata={
            "doc": "Invitation rules per skill group: a partial satisfaction section of the "
            "invitation rules (schemes per group stay in groups)."
        },
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict,
        metadata={"doc": "Invitation rules per channel (over the group's): a partial section."},
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when an invitation rule is invalid."""
        _number(self.max_invitations, f"{path}.max_invitations", lo=1, hi=1000, integer=True)
        _number(self.reminder_after_s, f"{path}.reminder_after_s", note="0: none")
        _number(self.min_interval_s, f"{path}.min_interval_s", note="0: no limit")
        for name in ("skip_tags", "invite_tags"):
            for i, tag in enumerate(getattr(self, name)):
                _need(
                    bool(tag) and tag == tag.strip() and len(tag) <= 100,
                    f"{path}.{name}[{i}]",
                    "a tag: non-empty, at most 100 characters, without surrounding spaces",
                )

    def __attrs_post_init__(self) -> None:
        if _SKIP_CHECK.get():  # an override laid over a checked section (resolve_satisfaction)
            return
        p = "satisfaction"
        self.scheme.check(f"{p}.scheme")
        for name, scheme in self.groups.items():
            scheme.check(f"{p}.groups.{name}")
        _number(self.window_s, f"{p}.window_s", above=True)
        self.check(p)
        for kind in ("group_rules", "channels"):
            for name, partial in getattr(self, kind).items():
                path = f"{p}.{kind}.{name}"
                _invitation_rules_only(partial, path)
                _apply(self, partial, path).check(path)


_INVITATION_RULES = frozenset(
    {
        "enabled",
        "invite_on_end_reasons",
        "agent_may_invite",
        "skip_if_agent_never_replied",
        "max_invitations",
        "invite_prompt",
        "reminder_after_s",
        "reminder_prompt",
        "min_interval_s",
        "skip_tags",
        "invite_tags",
    }
)
"""The ``satisfaction`` settings a group (``group_rules``) or channel (``channels``) may
override: the invitation rules; schemes, rating rules and the window stay global."""


def _invitation_rules_only(partial: object, path: str) -> None:
    if not isinstance(partial, Mapping):
        raise _fail(path, "an override must be a mapping of field names to values")
    for key in partial:
        why = "only invitation rules can be overridden here"
        _need(key in _INVITATION_RULES, f"{path}.{key}", why)


def resolve_satisfaction(
    section: SatisfactionSettings, *, channel: str | None = None, group: str | None = None
) -> SatisfactionSettings:
    """The satisfaction rules for a chat: its channel's ``channels`` override over its
    group's ``group_rules`` override over the global section (the section itself when
    neither has one)."""
    out = section
    rules = section.group_rules
    if group and rules and group in rules:
        out = _apply(out, rules[group], f"satisfaction.group_rules.{group}")
    channels = section.channels
    if channel is not None and channels and channel in channels:
        out = _apply(out, channels[channel], f"satisfaction.channels.{channel}")
    return out


# --------------------------------------------------------------------------- 6. end of chat


@attrs.frozen
class EndOfChatSettings:
    """End-of-chat prompts and inactivity timeouts; overridable per skill group and channel.

    Customer inactivity: ``warn_prompt`` after ``warn_after_s`` seconds of customer silence,
    the end (with ``timeout_prompt``) after ``end_after_s`` (0: never). Any customer message
    resets both. ``agent_reminder_s``: remind the agent after this long without a reply (0: off).
    Real-Time Reception Mode only: Always On chats never time out. A chat's effective section
    is the channel's override over its skill group's over the global one (``resolve``).
    """

    end_prompt: str = attrs.field(
        default="This chat has ended. Thank you for contacting us.",
        metadata={"doc": "System message stored and shown when a chat ends."},
    )
    timeout_prompt: str = "This chat was closed because we did not hear from you."
    warn_prompt: str = "Are you still there? This chat will close soon if we do not hear from you."
    warn_after_s: float = 300.0
    end_after_s: float = 600.0
    agent_reminder_s: float = 0.0
    agent_reminder_prompt: str = attrs.field(
        default="The customer is waiting for your reply.",
        metadata={"doc": "System message reminding the agent to reply."},
    )
    inactive_after_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "Mark an active chat inactive after this many seconds without a message "
            "from either side (0: off); frees its slot when inactive_chats_count is false."
        },
    )
    hold_close_after_s: float = attrs.field(
        default=0.0,
        metadata={
            "doc": "End a chat that has been on hold this many seconds (reason hold_timeout; "
            "0: never). Real-Time Reception Mode only."
        },
    )
    hold_close_prompt: str = attrs.field(
        default="This chat was closed while it was on hold. Write to us again at any time.",
        metadata={"doc": "System message stored and shown when a chat on hold is closed."},
    )
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial end-of-chat section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict,
        metadata={"doc": "Overrides per skill group: a partial end-of-chat section."},
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(self.warn_after_s, f"{path}.warn_after_s", note="0: never")
        _number(self.end_after_s, f"{path}.end_after_s", note="0: never")
        if self.end_after_s and self.warn_after_s:
            _need(
                self.end_after_s > self.warn_after_s,
                f"{path}.end_after_s",
                "must be greater than warn_after_s",
            )
        _number(self.agent_reminder_s, f"{path}.agent_reminder_s", note="0: off")
        _number(self.inactive_after_s, f"{path}.inactive_after_s", note="0: off")
        _number(self.hold_close_after_s, f"{path}.hold_close_after_s", note="0: never")

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "end_of_chat")


# --------------------------------------------------------------------------- the tree


@attrs.frozen
class ChatSettings:
    """The whole settings tree. ``ChatSettings()`` works out of the box.

    Build it from plain values with :meth:`from_dict`; every string in it must be storable text
    (no NUL character, no lone surrogate), every number finite and within its documented range.
    """

    reception_mode: ReceptionMode = ReceptionMode.REAL_TIME
    auto_save: AutoSaveSettings = attrs.field(factory=AutoSaveSettings)
    assignment: AssignmentSettings = attrs.field(factory=AssignmentSettings)
    submission: SubmissionSettings = attrs.field(factory=SubmissionSettings)
    sensitive_words: SensitiveWordSettings = attrs.field(factory=SensitiveWordSettings)
    satisfaction: SatisfactionSettings = attrs.field(factory=SatisfactionSettings)
    end_of_chat: EndOfChatSettings = attrs.field(factory=EndOfChatSettings)
    webhooks: WebhookSettings = attrs.field(factory=WebhookSettings)
    limits: LimitsSettings = attrs.field(factory=LimitsSettings)
    retention: RetentionSettings = attrs.field(factory=RetentionSettings)
    sla: SlaSettings = attrs.field(factory=SlaSettings)
    reopen: ReopenSettings = attrs.field(factory=ReopenSettings)
    bot: BotSettings = attrs.field(factory=BotSettings)

    def __attrs_post_init__(self) -> None:
        _check_text_leaves(self, "")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatSettings:
        """Build settings from plain values; raise SettingsError naming the bad field.

        ``data`` is what ``json.loads`` gives: mappings with string keys, lists where the tree
        holds tuples, enum settings as their string values. Keys left out keep their defaults.
        """
        if not isinstance(data, Mapping):
            raise SettingsError(
                "",
                f"settings must be a mapping (a JSON object), got {type(data).__name__}",
            )
        _check_keys(data, "")
        try:
            return _converter.structure(dict(data), cls)
        except SettingsError:
            raise
        except (ClassValidationError, ForbiddenExtraKeysError) as exc:
            raise _translate(exc) from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise SettingsError("", f"invalid settings: {exc}") from None

    @classmethod
    def coerce(cls, settings: ChatSettings | Mapping[str, Any] | None) -> ChatSettings:
        """``settings`` as a tree: None gives the defaults, a mapping goes through
        :meth:`from_dict` (so its errors name the path); anything else is a ``TypeError``."""
        if settings is None:
            return cls()
        if isinstance(settings, ChatSettings):
            return settings
        if isinstance(settings, Mapping):
            return cls.from_dict(settings)
        raise TypeError(
            f"settings must be a ChatSettings or a mapping for ChatSettings.from_dict, "
            f"got {type(settings).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; ``from_dict(s.to_dict()) == s``."""
        out: dict[str, Any] = _converter.unstructure(self)
        return out


def _check_keys(data: object, path: str) -> None:
    """Every mapping key in plain settings data is a string (JSON object keys are)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                raise SettingsError(
                    path,
                    f"setting names and mapping keys must be strings, got {key!r} "
                    f"({type(key).__name__})",
                )
            _check_keys(value, f"{path}.{key}" if path else key)
    elif isinstance(data, (list, tuple)):
        for i, item in enumerate(data):
            _check_keys(item, f"{path}[{i}]")


# --------------------------------------------------------------------------- overrides


_SKIP_CHECK: contextvars.ContextVar[bool] = contextvars.ContextVar("_SKIP_CHECK", default=False)


def _check_with_overrides(section: Any, root: str) -> None:
    if _SKIP_CHECK.get():
        return
    section.check(root)
    for kind in ("groups", "channels"):
        overrides = getattr(section, kind, None)
        if overrides is None or not isinstance(overrides, Mapping):
            continue
        for name, partial in overrides.items():
            _apply(section, partial, f"{root}.{kind}.{name}").check(f"{root}.{kind}.{name}")
    _check_layered(section, root)


def _check_layered(section: Any, root: str) -> None:
    """A chat of group g on channel c gets the channel's override over the group's: check
    each such pair too (each override alone was checked against the global section)."""
    groups = getattr(section, "groups", None)
    channels = getattr(section, "channels", None)
    if not (isinstance(groups, Mapping) and isinstance(channels, Mapping) and channels):
        return
    for group, g_partial in groups.items():
        if not isinstance(g_partial, Mapping):
            return  # groups of whole sections (not partial overrides): nothing is layered
        over_group = _apply(section, g_partial, f"{root}.groups.{group}")
        for channel, c_partial in channels.items():
            path = f"{root}.channels.{channel}"
            try:
                _apply(over_group, c_partial, path).check(path)
            except SettingsError as exc:
                why = f"{exc.problem} (for a chat of group {group!r}, over {root}.groups.{group})"
                raise _fail(exc.path, why) from None


_NOT_OVERRIDABLE = frozenset({"channels", "groups"})


def _apply(section: _S, partial: Mapping[str, Any], path: str) -> _S:
    if not isinstance(partial, Mapping):
        raise _fail(path, "an override must be a mapping of field names to values")
    attrs.resolve_types(type(section))  # type: ignore[type-var]
    fields = attrs.fields_dict(type(section))  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in partial.items():
        if key not in fields or key in _NOT_OVERRIDABLE:
            raise _fail(f"{path}.{key}", "not a setting that can be overridden here")
        field_type = fields[key].type
        try:
            changes[key] = _converter.structure(value, field_type)  # type: ignore[arg-type]
        except Exception as exc:
            messages = _leaf_messages(exc)
            why = messages[0].rpartition(" @ ")[0] if messages else ""
            raise _fail(f"{path}.{key}", why or f"invalid value {value!r}") from None
    token = _SKIP_CHECK.set(True)
    try:
        return attrs.evolve(section, **changes)  # type: ignore[misc]
    finally:
        _SKIP_CHECK.reset(token)


def resolve(section: _S, *, channel: str | None = None, group: str | None = None) -> _S:
    """The effective section for a chat: channel override > group override > global.

    Works for every section that carries ``channels`` and/or ``groups`` overrides
    (``submission``, ``end_of_chat``, ``bot``); other sections are returned unchanged.
    """
    groups = getattr(section, "groups", None)
    channels = getattr(section, "channels", None)
    out = section
    # ``groups and``/``channels and``: no override at all (the usual case) costs no
    # isinstance check against the Mapping ABC
    if group is not None and groups and isinstance(groups, Mapping) and group in groups:
        partial = groups[group]
        if isinstance(partial, Mapping):
            out = _apply(out, partial, f"groups.{group}")
    if channel is not None and channels and isinstance(channels, Mapping) and channel in channels:
        out = _apply(out, channels[channel], f"channels.{channel}")
    return out


# --------------------------------------------------------------------------- cattrs plumbing


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _structure_float(value: Any, _t: type) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"expected a number, got {_short(value)}")
        try:
            return float(value)  # inf and nan go on to the range check, which names the range
        except OverflowError:
            raise _Invalid(f"expected a finite number, got {_short(value)}") from None

    def _structure_int(value: Any, _t: type) -> int:
        if isinstance(value, float) and value.is_integer():
            return int(value)  # JSON has one number type: 3.0 is the integer 3
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected an integer, got {_short(value)}")
        return value

    def _structure_bool(value: Any, _t: type) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"expected true or false, got {_short(value)}")
        return value

    def _structure_str(value: Any, _t: type) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"expected a string, got {_short(value)}")
        return value

    def _structure_enum(value: Any, type_: type[enum.Enum]) -> enum.Enum:
        try:
            return type_(value)
        except ValueError:
            raise _Invalid(f"expected {_allowed(type_)}, got {_short(value)}") from None

    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(str, _structure_str)
    # str-based enums would dispatch to the str hook: give each its own, validating hook
    for enum_type in (
        ReceptionMode,
        EndReason,
        UnverifiedIdentity,
        StrategyName,
        OverflowCondition,
        QueueLimitAction,
        LeaveAction,
        SubmissionMode,
        FieldType,
        SecondRating,
    ):
        conv.register_structure_hook(enum_type, _structure_enum)
    conv.register_unstructure_hook(
        Mapping, lambda m: {k: conv.unstructure(v) for k, v in m.items()}
    )

    def _tuple_factory(type_: Any) -> Any:
        inner = homogenous_tuple_structure_factory(type_, conv)

        def structure(value: Any, t: Any) -> Any:
            # a string is iterable: "web" must not become ("w", "e", "b")
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise _Invalid(f"expected a list, got {_short(value)}")
            return inner(value, t)

        return structure

    conv.register_structure_hook_factory(
        lambda t: cast(Any, typing.get_origin(t)) is tuple and typing.get_args(t)[-1:] == (...,),
        _tuple_factory,
    )

    def _section_factory(type_: Any) -> Any:
        inner = conv.gen_structure_attrs_fromdict(type_)

        def structure(value: Any, t: Any) -> Any:
            # a section is a JSON object; a list or a string there says so, not "no .keys()"
            if not isinstance(value, Mapping):
                raise _Invalid(
                    f"expected a mapping of setting names to values (a JSON object), "
                    f"got {_short(value)}"
                )
            return inner(value, t)

        return structure

    conv.register_structure_hook_factory(attrs.has, _section_factory)

    def _mapping_factory(type_: Any) -> Any:
        inner = conv.gen_structure_mapping(type_)

        def structure(value: Any, t: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _Invalid(
                    f"expected a mapping of names to values (a JSON object), got {_short(value)}"
                )
            return inner(value, t)

        return structure

    conv.register_structure_hook_factory(
        lambda t: cast(Any, typing.get_origin(t)) in (Mapping, typing.Mapping), _mapping_factory
    )
    return conv


class _Invalid(ValueError):
    """A value refused by one of the converter's hooks; its message is the whole story."""


def _short(value: object) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _allowed(type_: type[enum.Enum]) -> str:
    values = [repr(m.value) for m in type_]
    return "one of " + ", ".join(values)


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    inner = _strip_optional(type_)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return f"expected {_allowed(inner)}"
    if isinstance(exc, KeyError):
        return "required setting missing"
    return cattrs.v.format_exception(exc, type_)


def _strip_optional(type_: Any) -> Any:
    args = [a for a in typing.get_args(type_) if a is not type(None)]
    if len(args) == 1 and type(None) in typing.get_args(type_):
        return args[0]
    return type_


_converter = _make_converter()


def _leaf_messages(exc: BaseException) -> list[str]:
    if not isinstance(exc, (ClassValidationError, cattrs.IterableValidationError)) and not (
        isinstance(exc, cattrs.BaseValidationError)
    ):
        return [f"{_format_exception(exc, None)} @ $"]
    return list(cattrs.transform_error(exc, path="$", format_exception=_format_exception))


def _find_settings_error(exc: BaseException) -> SettingsError | None:
    if isinstance(exc, SettingsError):
        return exc
    for sub in getattr(exc, "exceptions", ()):
        found = _find_settings_error(sub)
        if found is not None:
            return found
    return None


def _translate(exc: BaseException) -> SettingsError:
    found = _find_settings_error(exc)
    if found is not None:
        return found
    messages = _leaf_messages(exc)
    first = messages[0] if messages else str(exc)
    problem, _, where = first.rpartition(" @ ")
    if not problem:
        problem, where = first, "$"
    path = where.removeprefix("$").lstrip(".")
    path = re.sub(r"\[['\"]([^'\"\]]*)['\"]\]", r".\1", path)
    path = re.sub(r"\.\[", "[", path)
    extra = re.match(r"extra fields found \((.*)\)", problem)
    if extra:
        name = extra.group(1).split(", ")[0]
        path = f"{path}.{name}" if path else name
        problem = "unknown setting"
    if len(messages) > 1:
        problem += f" (and {len(messages) - 1} more problem(s))"
    return SettingsError(path, problem)
