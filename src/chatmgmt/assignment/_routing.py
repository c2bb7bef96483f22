"""Request-level routing: designation, sticky agent, routing rules, overflow, queue keys (pure).

:func:`plan_route` turns a chat, its request and the settings into a :class:`RoutePlan`: the
targets to try in order, the group whose queue the chat waits in when none can take it, and the
overflow layers to try when that group cannot. The manager executes the plan against the
storage's atomic claims; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._conditions import Facts, Predicate, compile_condition, ip_in, parse_condition
from ..model import AgentId, Chat, CustomerInfo, Sticky
from ..ports import Census
from ..settings import (
    AssignmentSettings,
    OverflowCondition,
    OverflowLayer,
    RoutingRule,
    StickySettings,
    WorkingHours,
)
from ._calendar import effective_hours, is_open

__all__ = [
    "RoutePlan",
    "RouteRequest",
    "Target",
    "agent_queue",
    "estimate_wait_s",
    "match_rule",
    "on_duty",
    "overflow_condition",
    "plan_route",
    "pool_name",
    "queue_name",
    "queue_score",
    "sticky_agent",
]


@attrs.frozen
class RouteRequest:
    """What the caller asks for one chat.

    ``designated_agent`` / ``designated_group``: send the chat there; ``strict``: only there
    (the chat waits for that target), else fall back to the normal rules. ``queue_first``: the
    VIP flag, ahead of the rest of the queue.
    """

    designated_agent: AgentId | None = None
    designated_group: str | None = None
    strict: bool = False
    queue_first: bool = False


@attrs.frozen
class Target:
    """One place to try: an agent or a group, and why (``via``)."""

    kind: str
    id: str
    via: str
    rule: str | None = None

    def describe(self) -> dict[str, Any]:
        """Plain data for the explanation of a decision."""
        out: dict[str, Any] = {"via": self.via, self.kind: self.id}
        if self.rule is not None:
            out["rule"] = self.rule
        return out


@attrs.frozen
class RoutePlan:
    """Targets to try in order; where to wait; overflow layers after ``group`` fails."""

    targets: tuple[Target, ...]
    group: str
    wait_queue: str
    overflow: tuple[OverflowLayer, ...]
    strict: bool


def queue_name(group: str) -> str:
    """The real-time queue of a skill group."""
    return f"queue/{group}"


def pool_name(group: str) -> str:
    """The Always On unassigned pool of a skill group."""
    return f"pool/{group}"


def agent_queue(agent_id: str) -> str:
    """Chats waiting for one agent (strict designation, sticky wait)."""
    return f"agent/{agent_id}"


def drain_queues(agent_id: str, groups: Iterable[str]) -> tuple[str, ...]:
    """The queues a slot freed at ``agent_id``, who serves ``groups``, drains: its own, then
    the queue and the pool of each group and of the default group ``""``, by group name."""
    out = [agent_queue(agent_id)]
    for group in sorted({*groups, ""}):
        out.append(queue_name(group))
        out.append(pool_name(group))
    return tuple(out)


def queue_score(enqueued_at: float, priority: int, priority_step_s: float) -> float:
    """Queue order: FIFO within a priority, and priority as a head start of bounded seconds.

    A chat of priority ``p`` is ordered as if it had arrived ``p * priority_step_s`` earlier,
    so a VIP goes ahead of recent chats, yet any chat that waited longer than that head start
    goes first: aging, so low priority never starves. Scores never change, so the order of
    two queued chats never flips.
    """
    return enqueued_at - priority * priority_step_s


def first_arrival(chat: Chat) -> float:
    """When ``chat`` first came to wait for a person: its creation, or for a chat that began
    in a bot's stage its handoff (time with the bot is not waiting for an agent), or for an
    Always On chat that was reopened its last reopening (``Chat.reopened_at``: the customer
    starts a new wait then; the time it spent ended is not waiting). A chat is ordered in its
    queue by this (:func:`wait_score`), so a chat sent back keeps the place it had and goes
    ahead of no chat that was waiting for a person before it was; ``reconcile()`` puts a
    missing entry back by the same rule. The SLA clocks of the human part start here too
    (:mod:`chatmgmt.lifecycle._sla`)."""
    reopened = chat.reopened_at
    if reopened is not None:
        return reopened
    bot = chat.bot
    handoff = bot.get("handoff") if bot is not None else None
    if isinstance(handoff, Mapping):
        at = handoff.get("at")
        if isinstance(at, (int, float)):
            return float(at)
    return chat.created_at


def wait_score(chat: Chat, priority_step_s: float) -> float:
    """The score of ``chat``'s entry in the queue or pool it waits in: its priority's head
    start (:func:`queue_score`) from when it first waited for a person
    (:func:`first_arrival`). Every push of a waiting chat (queued, sent back, moved between
    queues, reopened into its pool, put back by ``reconcile()``) uses it, so the order of a
    queue does not depend on the path a chat took into it."""
    return queue_score(first_arrival(chat), chat.priority, priority_step_s)


def estimate_wait_s(position: int, census: Census, handle_s: float) -> float:
    """Expected wait of the chat at 0-based ``position``: chats ahead over the service rate.

    With ``capacity`` slots online each freeing every ``handle_s`` on average, the queue moves
    ``capacity / handle_s`` chats per second. With no capacity online the wait is unknown: inf.
    """
    if census.capacity <= 0:
        return float("inf")
    return (position + 1) * handle_s / census.capacity


_COMPILED: dict[int, tuple[RoutingRule, Predicate]] = {}


def rule_condition(rule: RoutingRule) -> Predicate | None:
    """The compiled ``when`` tree of a rule (compiled once per rule object), or None."""
    if rule.when is None:
        return None
    entry = _COMPILED.get(id(rule))
    if entry is not None and entry[0] is rule:
        return entry[1]
    predicate = compile_condition(parse_condition(rule.when, "when"))
    if len(_COMPILED) >= 4096:
        _COMPILED.clear()
    _COMPILED[id(rule)] = (rule, predicate)
    return predicate


def _facts(
    info: CustomerInfo,
    partner_id: str | None,
    attributes: Mapping[str, Any] | None,
    now: float | None,
    timezone: str,
    tags: frozenset[str] = frozenset(),
) -> Facts:
    return Facts(
        info.channel,
        info.vip_level,
        info.ip,
        partner_id,
        attributes if attributes is not None else {},
        info.custom_fields,
        now,
        timezone,
        tags,
    )


def _flat(rule: RoutingRule, info: CustomerInfo, partner_id: str | None) -> bool:
    """Whether the rule's flat conditions (the original syntax) hold."""
    if rule.channels and info.channel not in rule.channels:
        return False
    if rule.min_vip_level is not None and info.vip_level < rule.min_vip_level:
        return False
    if rule.ip_ranges and not ip_in(info.ip, rule.ip_ranges):
        return False
    if rule.partner_ids and partner_id not in rule.partner_ids:
        return False
    return all(info.custom_fields.get(k) == v for k, v in rule.customer_fields.items())


def match_rule(
    rule: RoutingRule,
    info: CustomerInfo,
    partner_id: str | None,
    *,
    attributes: Mapping[str, Any] | None = None,
    now: float | None = None,
    timezone: str = "UTC",
    tags: frozenset[str] = frozenset(),
) -> bool:
    """Whether every condition the rule sets holds for this customer and chat.

    ``attributes`` (the chat's host attributes, tags among them), ``tags`` (the chat's own
    tags, :attr:`chatmgmt.model.Chat.tags`), ``now`` (a Unix time) and
    ``timezone`` (the default zone of time and weekday conditions) are what the rule's ``when``
    tree may test; a tree with a time condition needs ``now``.
    """
    if not _flat(rule, info, partner_id):
        return False
    predicate = rule_condition(rule)
    return predicate is None or predicate(_facts(info, partner_id, attributes, now, timezone, tags))


def group_timezone(settings: AssignmentSettings, group: str) -> str:
    """The time zone of a group's working hours (UTC when it has none)."""
    hours = effective_hours(settings, group)
    return "UTC" if hours is None else hours.timezone


def sticky_agent(sticky: Sticky | None, settings: StickySettings, now: float) -> AgentId | None:
    """The customer's last agent when the mark is within its window, else None."""
    if sticky is None:
        return None
    window = settings.after_close_s if sticky.kind == "closed" else settings.after_offline_message_s
    if window > 0 and now - sticky.at <= window:
        return sticky.agent_id
    return None


def on_duty(hours: WorkingHours | None, now: float) -> bool:
    """Whether a group with this business calendar is on duty at ``now`` (no hours: always)."""
    return is_open(hours, now)


def overflow_condition(census: Census, duty: bool) -> OverflowCondition:
    """Why a group could not take a chat: off duty, nobody online, or everyone busy."""
    if not duty:
        return OverflowCondition.OFF_DUTY
    if census.online == 0:
        return OverflowCondition.NO_AGENT_ONLINE
    return OverflowCondition.ALL_BUSY


def plan_route(
    chat: Chat,
    request: RouteRequest,
    settings: AssignmentSettings,
    partner_id: str | None,
    sticky: Sticky | None,
    now: float,
) -> RoutePlan:
    """The order in which the rules apply (see ``docs/assignment.md``).

    1. a designated agent, then a designated group (strict: nothing else, the chat waits there);
    2. the sticky agent, when the customer's last agent is within the window;
    3. the first routing rule that matches (its agent, then its group; strict: nothing else);
    4. the chat's own skill group, with its overflow layers when it cannot take the chat.
    """
    targets: list[Target] = []
    group = chat.skill_group
    if request.designated_agent is not None:
        targets.append(Target("agent", request.designated_agent, "designation"))
        if request.strict and request.designated_group is None:
            return RoutePlan(tuple(targets), group, agent_queue(request.designated_agent), (), True)
    if request.designated_group is not None:
        targets.append(Target("group", request.designated_group, "designation"))
        if request.strict:
            return RoutePlan(
                tuple(targets),
                request.designated_group,
                queue_name(request.designated_group),
                (),
                True,
            )
        group = request.designated_group
    sticky_id = sticky_agent(sticky, settings.sticky, now) if partner_id and sticky else None
    if sticky_id is not None and sticky_id != request.designated_agent:
        targets.append(Target("agent", sticky_id, "sticky"))
    facts: Facts | None = None  # built once, for the first rule with a ``when`` tree
    for rule in settings.routing_rules:
        if not _flat(rule, chat.customer, partner_id):
            continue
        predicate = rule_condition(rule)
        if predicate is not None:
            if facts is None:
                zone = group_timezone(settings, group)
                facts = _facts(chat.customer, partner_id, chat.attributes, now, zone, chat.tags)
            if not predicate(facts):
                continue
        if rule.target_agent is not None:
            targets.append(Target("agent", rule.target_agent, "rule", rule.name))
        if rule.target_group is not None:
            targets.append(Target("group", rule.target_group, "rule", rule.name))
            group = rule.target_group
        if rule.strict:
            wait = (
                queue_name(group)
                if rule.target_group is not None
                else agent_queue(rule.target_agent or "")
            )
            return RoutePlan(tuple(targets), group, wait, (), True)
        break
    if not targets:  # the usual open: the group's default plan, built once
        return _default_plan(group, settings)
    for t in targets:  # a loop, not any(generator): this runs on every open
        if t.kind == "group" and t.id == group:
            break
    else:
        targets.append(Target("group", group, "default"))
    return RoutePlan(tuple(targets), group, queue_name(group), settings.overflow, False)


_DEFAULT_PLANS: dict[str, tuple[AssignmentSettings, RoutePlan]] = {}


def _default_plan(group: str, settings: AssignmentSettings) -> RoutePlan:
    """The plan of a chat that only its own ``group`` can take (no designation, sticky agent
    or matching rule): one shared value per group and settings value (plans are immutable)."""
    seen = _DEFAULT_PLANS.get(group)
    if seen is not None and seen[0] is settings:
        return seen[1]
    target = Target("group", group, "default")
    plan = RoutePlan((target,), group, queue_name(group), settings.overflow, False)
    if len(_DEFAULT_PLANS) >= 1024:
        _DEFAULT_PLANS.clear()
    _DEFAULT_PLANS[group] = (settings, plan)
    return plan
