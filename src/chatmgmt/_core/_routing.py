"""Routing: the rules in order (designation, sticky, routing rules, default group), the overflow
layers, then the queue or the pool. Each attempt is one unit of work (:mod:`._targets`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._plan import STICKY_WAIT, sticky_wait_key
from ..assignment import (
    RouteRequest,
    Target,
    agent_queue,
    overflow_condition,
    plan_route,
    pool_name,
)
from ..model import Chat, ReceptionMode, Timer, evolve
from ..ports import AgentStore, ChatStore
from ._base import QUEUE
from ._ops import Eff, call
from ._queueing import OPEN, Queueing
from ._targets import ineligible

__all__ = ["OPEN", "Routing"]


class Routing(Queueing):
    """Assign, queue or pool a chat."""

    def route(
        self,
        stored: Chat | None,
        chat: Chat,
        request: RouteRequest,
        now: float,
        *,
        items: Sequence[tuple[str, Mapping[str, Any]]] = (),
        explain: Mapping[str, Any] | None = None,
    ) -> Eff[Chat]:
        """Try the plan's targets and overflow layers; queue or pool the chat if none fits.

        ``stored`` is the chat as stored (None: ``chat`` is new and is created by the same
        unit of work); ``items`` are events raised with it; ``explain`` goes into every
        explanation (a bot's handoff context).
        """
        settings = self.settings.assignment
        partner_id = chat.customer.partner_id
        sticky = None
        sticky_on = settings.sticky.after_close_s or settings.sticky.after_offline_message_s
        if partner_id and sticky_on and not chat.sticky_waited:
            sticky = yield from call(ChatStore.sticky, partner_id)
        plan = plan_route(chat, request, settings, partner_id, sticky, now)
        if plan.group != chat.skill_group:
            chat = evolve(chat, skill_group=plan.group)
        passed: list[dict[str, Any]] = []
        for target in plan.targets:
            extra = {**(explain or {}), "passed_over": list(passed)} if passed else explain
            done = yield from self.try_target(
                target, stored, chat, now, items=items, reason_extra=extra, passed=passed
            )
            if done is not None:
                return done
            if target.via == "sticky" and settings.sticky.wait_s > 0:
                return (yield from self._wait_for_sticky(stored, chat, target, now, items))
        census = yield from call(AgentStore.census, plan.group)
        duty = self.on_duty(plan.group, now)
        condition = overflow_condition(census, duty)
        tried: list[dict[str, Any]] = []
        for i, layer in enumerate(plan.overflow):
            if condition not in layer.conditions:
                break
            kind = "group" if layer.target_group is not None else "agent"
            target = Target(kind, layer.target_group or layer.target_agent or "", f"overflow[{i}]")
            tried.append({"layer": i, "condition": condition.value})
            done = yield from self.try_target(
                target,
                stored,
                chat,
                now,
                items=items,
                reason_extra={**(explain or {}), "overflow": list(tried)},
            )
            if done is not None:
                return done
            if kind == "group":
                layer_census = yield from call(AgentStore.census, target.id)
                condition = overflow_condition(layer_census, self.on_duty(target.id, now))
        reason = {
            "via": "queue" if chat.mode is ReceptionMode.REAL_TIME else "pool",
            "group": plan.group,
            "condition": condition.value,
            "tried": [t.describe() for t in plan.targets],
            "overflow": tried,
            "eligible": census.eligible,
            "ineligible": ineligible(census, chat),
        }
        if explain:
            reason.update(explain)
        queue = plan.wait_queue
        if chat.mode is ReceptionMode.ALWAYS_ON:
            queue = pool_name(plan.group)
        return (
            yield from self.enqueue(
                stored, chat, queue, reason, now, census=census, duty=duty, items=items
            )
        )

    def _wait_for_sticky(
        self,
        stored: Chat | None,
        chat: Chat,
        target: Target,
        now: float,
        items: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> Eff[Chat]:
        """The sticky agent is unavailable and the rule says wait: queue for that agent."""
        wait_s = self.settings.assignment.sticky.wait_s
        queue = agent_queue(target.id)
        waiting = evolve(chat, sticky_waited=True)
        reason = {"via": "sticky_wait", "agent": target.id, "wait_s": wait_s}
        timer = Timer(
            sticky_wait_key(chat.id), now + wait_s, chat.id, STICKY_WAIT, 0, {QUEUE: queue}
        )
        return (
            yield from self.enqueue(stored, waiting, queue, reason, now, items=items, timer=timer)
        )
