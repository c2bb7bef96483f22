"""The ``assignment`` section of the settings tree: strategy, groups, routing rules, sticky agent,
overflow, queue, leave policy, offers and fairness.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs

from .._conditions import parse_condition
from ._base import MAX_COUNT, _fail, _need, _number
from ._enums import LeaveAction, OverflowCondition, QueueLimitAction, StrategyName
from ._hours import WorkingHours
from ._overrides import _check_with_overrides


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
