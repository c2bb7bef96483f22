"""Targets: how the core claims an agent for a chat, one attempt at a time.

Each attempt is one unit of work: the chat's new state together with the slot it claims (a named
agent, or the first eligible agent of a group picked by the store) and the queue entry it
leaves. Nothing is claimed on its own, so nothing is given back when an attempt fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs

from .._plan import leaving, new_plan
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
from ..ports import CENSUS_MARKS, PICKED, AgentStore, Census, Claim, RankedClaim
from ..settings import StrategyName, WorkingHours, resolve
from ._ending import Ending
from ._ops import Eff, call
from ._pick import Picker, PickFailed

__all__ = ["Claiming", "Targets", "ineligible"]

_CUSTOM_RETRIES = 8
# read on every routing attempt: module globals (3.11 does not specialize class attributes)
_ALWAYS_ON = ReceptionMode.ALWAYS_ON
_CENSUS = AgentStore.census
_SKIP = ("agent_unavailable", "no_agent", "queue_not_empty")
_NOT_WAITING: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
"""What a new chat leaves (``leaving(None)``, without its call)."""


def ineligible(census: Census | None, chat: Chat) -> dict[str, int | str]:
    """Why the group's other agents could not take the chat, for the explanation (None: the
    census the unit of work reads, as its :data:`~chatmgmt.ports.CENSUS_MARKS`)."""
    if census is None:
        return {**_INELIGIBLE_MARKS, "excluded": len(chat.excluded)}
    return {
        "full": census.full,
        "busy": census.busy,
        "away": census.away,
        "offline": census.offline,
        "excluded": len(chat.excluded),
    }


_INELIGIBLE_MARKS = {k: CENSUS_MARKS[k] for k in ("full", "busy", "away", "offline")}


Claiming = tuple[Claim | RankedClaim | None, dict[str, Any], str | None, str | None]
"""How to claim for a target: the claim (None: the target cannot take the chat now), the
explanation, the queue that must be empty, and the group whose census the unit reads for the
explanation's :data:`~chatmgmt.ports.CENSUS_MARKS` (``Change.census``)."""


@attrs.frozen
class _Group:
    """What the settings say of one skill group, resolved once (the settings never change
    under a core): read on every routing attempt. A slotted class, not a NamedTuple: reading
    a slot is a specialized attribute load, a NamedTuple field is not (Python 3.11)."""

    strategy: Strategy
    strategy_name: str
    pull: bool
    hours: WorkingHours | None
    offer_timeout: float | None
    cap: int  # the fairness cap's max_assignments (0: no cap)
    window_s: float
    queue: str
    pool: str


class Targets(Ending):
    """Claim for one target: an agent, or a group by its strategy."""

    def _group(self, group: str) -> _Group:
        facts = self._groups.get(group)
        if facts is None:
            assignment = self.settings.assignment
            strategy = strategy_for_group(assignment, group, self.strategies)
            own = assignment.groups.get(group)
            offers = assignment.offers
            timeout = None
            if offers.enabled or offers.groups:
                offers = resolve(offers, group=group)
                timeout = offers.timeout_s if offers.enabled else None
            cap = assignment.fairness_for(group)
            facts = self._groups[group] = _Group(
                strategy,
                strategy_name(strategy),
                own is not None and own.pull,
                effective_hours(assignment, group),
                timeout,
                cap.max_assignments if cap.max_assignments > 0 else 0,
                cap.window_s,
                queue_name(group),
                pool_name(group),
            )
        return facts

    def _strategy(self, group: str) -> Strategy:
        return self._group(group).strategy

    def on_duty(self, group: str, now: float) -> bool:
        """Whether ``group`` is open by its business calendar (own or the tenant's) at ``now``."""
        hours = self._group(group).hours
        return hours is None or on_duty(hours, now)  # no calendar: always (is_open)

    def is_pull(self, group: str) -> bool:
        """Whether ``group`` is in pull mode: its chats are never pushed to an agent."""
        return self._group(group).pull

    def claim_terms(self, group: str | None, chat: Chat) -> dict[str, Any]:
        """The capacity terms of a claim for ``chat``: its channel (capacity per channel), the
        fairness cap of ``group`` (None: an explicit assignment, no cap) and how long stores
        keep assignment times (:attr:`AssignmentSettings.fairness_keep_s`)."""
        assignment = self.settings.assignment
        if self._keep_s[0] is not assignment:  # computed once per settings value
            self._keep_s = (assignment, assignment.fairness_keep_s)
        terms: dict[str, Any] = {"channel": chat.channel, "keep_s": self._keep_s[1]}
        if group is not None:
            facts = self._group(group)
            if facts.cap > 0:
                terms["cap"] = facts.cap
                terms["window_s"] = facts.window_s
        return terms

    def wait_queue(self, chat: Chat, group: str) -> str:
        """Where ``chat`` waits for ``group``: its queue (Real-Time) or its pool (Always On)."""
        facts = self._group(group)
        return facts.pool if chat.mode is _ALWAYS_ON else facts.queue

    def claim_for(self, target: Target, chat: Chat, now: float, *, fresh: bool) -> Eff[Claiming]:
        """How to claim for ``target`` (:class:`Claiming`); ``fresh``: a newcomer does not
        overtake the chats already waiting in the target's queue."""
        reason = target.describe()
        if target.kind == "agent":
            aid = AgentId(target.id)
            if aid in chat.excluded:
                return None, reason, None, None
            # a transfer to a named agent is a person's choice: no fairness cap
            capped = None if target.via == "transfer" else chat.skill_group
            terms = self.claim_terms(capped, chat)
            return Claim(aid, **terms), reason, agent_queue(aid) if fresh else None, None
        group = target.id
        facts = self._group(group)
        if facts.pull:
            reason["pull"] = True  # agents take the group's chats themselves
            return None, reason, None, None
        if facts.hours is not None and not on_duty(facts.hours, now):
            reason["off_duty"] = True
            return None, reason, None, None
        strategy = facts.strategy
        reason["strategy"] = facts.strategy_name
        empty = None
        if fresh:
            empty = facts.pool if chat.mode is _ALWAYS_ON else facts.queue
        in_unit = None  # the group whose census the claim's unit reads (Change.census)
        if self.census_in_unit and isinstance(strategy, Ranking):
            in_unit = group
            reason["eligible"] = CENSUS_MARKS["eligible"]
            reason["ineligible"] = ineligible(None, chat)
        else:
            census = yield from call(_CENSUS, group)
            reason["eligible"] = census.eligible
            reason["ineligible"] = ineligible(census, chat)
        if isinstance(strategy, Ranking):
            if chat.excluded:
                terms = self.claim_terms(group, chat)
                excluding = RankedClaim(group, strategy, chat.excluded, **terms)
                return excluding, reason, empty, in_unit
            # one claim value per group and channel (its terms never change under a core)
            key = (group, chat.channel)
            claim = self._claims.get(key)
            if claim is None or claim.ranking is not strategy:
                terms = self.claim_terms(group, chat)
                claim = self._claims[key] = RankedClaim(group, strategy, **terms)
            return claim, reason, empty, in_unit
        terms = self.claim_terms(group, chat)
        loads = yield from call(AgentStore.list, group)
        cap, window_s = terms.get("cap", 0), terms.get("window_s", 0.0)
        pool = [
            ld
            for ld in loads
            if fits(ld, chat.channel, now, cap, window_s) and ld.agent.id not in chat.excluded
        ]
        if not pool:
            return None, reason, None, None
        custom = self.settings.assignment.custom_strategy
        pick = yield from call(Picker.pick, strategy, pool, chat, custom.timeout_s)
        if isinstance(pick, PickFailed):
            reason["custom_failed"] = {"why": pick.why, "detail": pick.detail}
            fallback = self._fallback(group)
            if fallback is None:
                return None, reason, None, None
            reason["strategy"] = fallback.name
            return RankedClaim(group, fallback, chat.excluded, **terms), reason, empty, None
        if pick is None:
            return None, reason, None, None
        return Claim(pick.agent.id, **terms), reason, empty, None

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
            group = target.id if target.kind == "group" else chat.skill_group
            timeout = self._group(group).offer_timeout  # None: offers are off there
        for _ in range(_CUSTOM_RETRIES):
            claim, reason, empty, census = yield from self.claim_for(target, chat, now, fresh=fresh)
            if claim is None:
                break
            if reason_extra:
                reason.update(reason_extra)
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
            remove, cancel = _NOT_WAITING if stored is None else leaving(stored)
            plan = new_plan(  # Plan without attrs' __init__ (no validators: model.maker)
                new,
                [*items, *own],
                claim=claim,
                release=release,
                require_empty=empty,
                remove=remove,
                cancel=cancel,
                owned=True,  # plan_assignment built ``new`` for this plan alone
                census=census,
            )
            # the attempt, applied in this frame (no generator of its own): the chat as
            # committed; or, when the target could not take it (``agent_unavailable``,
            # ``no_agent``, ``queue_not_empty``: nothing committed), the next try or None; a
            # chat that moved on meanwhile is returned as it is now
            try:
                applied = yield from self.commit(stored, plan, now)
            except PreconditionFailed as exc:
                if exc.reason not in _SKIP:
                    if stored is None or exc.reason not in ("version", "missing"):
                        raise
                    return (yield from self.get_chat(stored.id))
                if exc.reason != "agent_unavailable" or target.kind == "agent":
                    break
            else:
                assert applied.chat is not None
                return applied.chat
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
            census = yield from call(_CENSUS, group)
            if census.total == 0:
                raise NotFoundError("skill group", group)

    def require_agent(self, agent_id: AgentId) -> Eff[AgentLoad]:
        """The agent's load; NotFoundError naming the agent when it is not registered."""
        load = yield from call(AgentStore.get, agent_id)
        if load is None:
            raise NotFoundError("agent", agent_id)
        return load
