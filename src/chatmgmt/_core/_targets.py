"""Targets: how the core claims an agent for a chat, one attempt at a time.

Each attempt is one unit of work: the chat's new state together with the slot it claims (a named
agent, or the first eligible agent of a group picked by the store) and the queue entry it
leaves. Nothing is claimed on its own, so nothing is given back when an attempt fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from .._plan import Plan, leaving
from ..assignment import (
    Target,
    agent_queue,
    builtin_ranking,
    effective_hours,
    on_duty,
    pool_name,
    queue_name,
    strategy_for_group,
    strategy_name,
)
from ..assignment._load import fits
from ..assignment._plans import plan_assignment
from ..assignment._strategies import Strategy
from ..errors import NotFoundError, PreconditionFailed
from ..lifecycle._offers import plan_offer
from ..model import AgentId, AgentLoad, Chat, Ranking, ReceptionMode
from ..ports import PICKED, AgentStore, Census, Claim, RankedClaim
from ..settings import StrategyName, resolve
from ._ending import Ending
from ._ops import Eff, call
from ._pick import Picker, PickFailed

__all__ = ["Targets", "ineligible"]

_CUSTOM_RETRIES = 8
_SKIP = ("agent_unavailable", "no_agent", "queue_not_empty")


def ineligible(census: Census, chat: Chat) -> dict[str, int]:
    """Why the group's other agents could not take the chat, for the explanation."""
    return {
        "full": census.full,
        "busy": census.busy,
        "away": census.away,
        "offline": census.offline,
        "excluded": len(chat.excluded),
    }


class Targets(Ending):
    """Claim for one target: an agent, or a group by its strategy."""

    def _strategy(self, group: str) -> Strategy:
        strategy = self._strategies.get(group)
        if strategy is None:
            strategy = strategy_for_group(self.settings.assignment, group, self.strategies)
            self._strategies[group] = strategy
        return strategy

    def on_duty(self, group: str, now: float) -> bool:
        """Whether ``group`` is open by its business calendar (own or the tenant's) at ``now``."""
        return on_duty(effective_hours(self.settings.assignment, group), now)

    def is_pull(self, group: str) -> bool:
        """Whether ``group`` is in pull mode: its chats are never pushed to an agent."""
        group_settings = self.settings.assignment.groups.get(group)
        return group_settings is not None and group_settings.pull

    def offer_timeout(self, group: str) -> float | None:
        """How long an offer runs in ``group`` (None: offers are off there, assign at once)."""
        offers = self.settings.assignment.offers
        if not offers.enabled and not offers.groups:
            return None
        offers = resolve(offers, group=group)
        return offers.timeout_s if offers.enabled else None

    def claim_terms(self, group: str | None, chat: Chat) -> dict[str, Any]:
        """The capacity terms of a claim for ``chat``: its channel (capacity per channel), the
        fairness cap of ``group`` (None: an explicit assignment, no cap) and how long stores
        keep assignment times (:attr:`AssignmentSettings.fairness_keep_s`)."""
        assignment = self.settings.assignment
        if self._keep_s[0] is not assignment:  # computed once per settings value
            self._keep_s = (assignment, assignment.fairness_keep_s)
        terms: dict[str, Any] = {"channel": chat.channel, "keep_s": self._keep_s[1]}
        if group is not None:
            cap = assignment.fairness_for(group)
            if cap.max_assignments > 0:
                terms["cap"] = cap.max_assignments
                terms["window_s"] = cap.window_s
        return terms

    def wait_queue(self, chat: Chat, group: str) -> str:
        """Where ``chat`` waits for ``group``: its queue (Real-Time) or its pool (Always On)."""
        return pool_name(group) if chat.mode is ReceptionMode.ALWAYS_ON else queue_name(group)

    def attempt(self, stored: Chat | None, plan: Plan, now: float) -> Eff[Chat | str]:
        """Apply one routing attempt. Returns the chat as committed, or the reason its target
        could not take it (``agent_unavailable``, ``no_agent``, ``queue_not_empty``: nothing
        was committed). A chat that moved on meanwhile is returned as it is now."""
        try:
            applied = yield from self.commit(stored, plan, now)
        except PreconditionFailed as exc:
            if exc.reason in _SKIP:
                return exc.reason
            if stored is None or exc.reason not in ("version", "missing"):
                raise
            return (yield from self.get_chat(stored.id))
        assert applied.chat is not None
        return applied.chat

    def claim_for(
        self, target: Target, chat: Chat, now: float, *, fresh: bool
    ) -> Eff[tuple[Claim | RankedClaim | None, dict[str, Any], str | None]]:
        """How to claim for ``target``: the claim (None: the target cannot take the chat now),
        the explanation, and the queue that must be empty (``fresh``: a newcomer does not
        overtake the chats already waiting there)."""
        reason = target.describe()
        if target.kind == "agent":
            aid = AgentId(target.id)
            if aid in chat.excluded:
                return None, reason, None
            # a transfer to a named agent is a person's choice: no fairness cap
            capped = None if target.via == "transfer" else chat.skill_group
            terms = self.claim_terms(capped, chat)
            return Claim(aid, **terms), reason, agent_queue(aid) if fresh else None
        group = target.id
        if self.is_pull(group):
            reason["pull"] = True  # agents take the group's chats themselves
            return None, reason, None
        if not self.on_duty(group, now):
            reason["off_duty"] = True
            return None, reason, None
        strategy = self._strategy(group)
        reason["strategy"] = strategy_name(strategy)
        census = yield from call(AgentStore.census, group)
        reason["eligible"] = census.eligible
        reason["ineligible"] = ineligible(census, chat)
        empty = self.wait_queue(chat, group) if fresh else None
        terms = self.claim_terms(group, chat)
        if isinstance(strategy, Ranking):
            if chat.excluded:
                return RankedClaim(group, strategy, chat.excluded, **terms), reason, empty
            key = (group, chat.channel)
            claim = self._claims.get(key)
            if claim is None or claim.ranking is not strategy or claim.keep_s != terms["keep_s"]:
                claim = self._claims[key] = RankedClaim(group, strategy, **terms)
            return claim, reason, empty
        loads = yield from call(AgentStore.list, group)
        cap, window_s = terms.get("cap", 0), terms.get("window_s", 0.0)
        pool = [
            ld
            for ld in loads
            if fits(ld, chat.channel, now, cap, window_s) and ld.agent.id not in chat.excluded
        ]
        if not pool:
            return None, reason, None
        custom = self.settings.assignment.custom_strategy
        pick = yield from call(Picker.pick, strategy, pool, chat, custom.timeout_s)
        if isinstance(pick, PickFailed):
            reason["custom_failed"] = {"why": pick.why, "detail": pick.detail}
            fallback = self._fallback(group)
            if fallback is None:
                return None, reason, None
            reason["strategy"] = fallback.name
            return RankedClaim(group, fallback, chat.excluded, **terms), reason, empty
        if pick is None:
            return None, reason, None
        return Claim(pick.agent.id, **terms), reason, empty

    def _fallback(self, group: str) -> Ranking | None:
        """The ranking that picks when the group's custom strategy failed (None: queue)."""
        settings = self.settings.assignment
        name = settings.custom_strategy.fallback
        if name == "queue":
            return None
        if name == "group":
            return cast(Ranking, strategy_for_group(settings, group))
        return builtin_ranking(
            StrategyName(name),
            priority_tiers=settings.priority_tiers,
            saturation_tiebreak=settings.saturation_tiebreak,
        )

    def try_target(
        self,
        target: Target,
        stored: Chat | None,
        chat: Chat,
        now: float,
        *,
        items: Sequence[tuple[str, Mapping[str, Any]]] = (),
        reason_extra: Mapping[str, Any] | None = None,
        fresh: bool = True,
        transfer: str | None = None,
        automatic: bool = False,
        release: AgentId | None = None,
        passed: list[dict[str, Any]] | None = None,
        offer: bool = True,
    ) -> Eff[Chat | None]:
        """Assign ``chat`` to ``target`` in one unit (with ``items`` before its own events,
        leaving the queue it waited in); None when the target cannot take it.

        ``transfer``: who transfers the chat away from ``release`` (its agent, whose slot goes
        in the same unit). Where offers are on (the target group's, else the chat's group's
        ``assignment.offers``) an assignment is an offer instead; a transfer, or
        ``offer=False``, assigns at once."""
        timeout = None
        if offer and transfer is None:
            timeout = self.offer_timeout(target.id if target.kind == "group" else chat.skill_group)
        for _ in range(_CUSTOM_RETRIES):
            claim, reason, empty = yield from self.claim_for(target, chat, now, fresh=fresh)
            if claim is None:
                break
            reason.update(reason_extra or {})
            if transfer is not None:
                reason["by"] = transfer
            agent = claim.agent_id if isinstance(claim, Claim) else PICKED
            if timeout is not None:
                new, own = plan_offer(chat, agent, reason, now, timeout)
            else:
                new, own = plan_assignment(
                    chat,
                    agent,
                    reason,
                    now,
                    transfer=transfer is not None,
                    automatic=automatic,
                    from_agent_id=release,
                )
            remove, cancel = leaving(stored)
            plan = Plan(
                new,
                [*items, *own],
                claim=claim,
                release=release,
                require_empty=empty,
                remove=remove,
                cancel=cancel,
                owned=True,  # plan_assignment built ``new`` for this plan alone
            )
            done = yield from self.attempt(stored, plan, now)
            if not isinstance(done, str):
                return done
            if done != "agent_unavailable" or target.kind == "agent":
                break
            # a custom strategy's pick lost a race: choose again from a fresh snapshot
        if passed is not None:
            passed.append(reason)
        return None

    def require_target(self, agent_id: AgentId | None, group: str | None) -> Eff[None]:
        """NotFoundError when the caller named an agent that is not registered, or a skill
        group that neither the settings nor any agent knows."""
        if agent_id is not None:
            yield from self.require_agent(agent_id)
        if group is not None and group not in self.settings.assignment.groups:
            census = yield from call(AgentStore.census, group)
            if census.total == 0:
                raise NotFoundError("skill group", group)

    def require_agent(self, agent_id: AgentId) -> Eff[AgentLoad]:
        """The agent's load; NotFoundError naming the agent when it is not registered."""
        load = yield from call(AgentStore.get, agent_id)
        if load is None:
            raise NotFoundError("agent", agent_id)
        return load
