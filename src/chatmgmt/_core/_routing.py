"""Routing: targets, overflow, the queue and the pool, draining in order.

Each attempt is one unit of work: the chat's new state (assigned, queued, pooled) together with
the slot it claims (a named agent, or the first eligible agent of a group picked by the store),
the queue entry it leaves and the one it takes. Nothing is claimed or pushed on its own, so
there is nothing to give back when an attempt fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import lifecycle as lc
from ..assignment import (
    RouteRequest,
    Target,
    agent_queue,
    estimate_wait_s,
    on_duty,
    overflow_condition,
    plan_route,
    pool_name,
    queue_name,
    queue_score,
    strategy_for_group,
    strategy_name,
)
from ..assignment._load import eligible
from ..assignment._strategies import Strategy
from ..errors import NotFoundError, PreconditionFailed
from ..model import (
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    EndReason,
    Ranking,
    ReceptionMode,
    Timer,
    evolve,
)
from ..ports import PICKED, AgentStore, Census, ChatStore, Claim, QueuePush, QueueStore, RankedClaim
from ..settings import QueueLimitAction
from ..webhook import EventType
from ._base import (
    QUEUE,
    STICKY_WAIT,
    Items,
    Plan,
    queue_of,
    queued_at,
    sticky_wait_key,
)
from ._ending import Ending
from ._ops import Eff, call
from ._status import QueueStatus

__all__ = ["OPEN", "Routing"]

OPEN = (ChatState.QUEUED, ChatState.UNASSIGNED)
_CUSTOM_RETRIES = 8
_DRAIN_BATCH = 8
_SKIP = ("agent_unavailable", "no_agent", "queue_not_empty")


def _ineligible(census: Census, chat: Chat) -> dict[str, int]:
    return {
        "full": census.full,
        "busy": census.busy,
        "away": census.away,
        "offline": census.offline,
        "excluded": len(chat.excluded),
    }


def _group_of(queue: str) -> tuple[str, str]:
    kind, _, name = queue.partition("/")
    return kind, name


def leaving(
    stored: Chat | None, staying: str | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The queue entry and sticky-wait timer a chat stored as ``stored`` leaves (unless it
    stays in ``staying``): ``(remove, cancel)`` for its next unit of work."""
    queue = queue_of(stored) if stored is not None else None
    if queue is None or queue == staying:
        return (), ()
    return (queue,), (sticky_wait_key(stored.id),) if stored is not None else ()


class Routing(Ending):
    """Assign, queue or pool a chat; drain queues when capacity frees."""

    def _strategy(self, group: str) -> Strategy:
        strategy = self._strategies.get(group)
        if strategy is None:
            strategy = strategy_for_group(self.settings.assignment, group, self.strategies)
            self._strategies[group] = strategy
        return strategy

    def on_duty(self, group: str, now: float) -> bool:
        """Whether ``group`` is within its working hours at ``now``."""
        group_settings = self.settings.assignment.groups.get(group)
        return on_duty(group_settings.hours if group_settings is not None else None, now)

    def wait_queue(self, chat: Chat, group: str) -> str:
        """Where ``chat`` waits for ``group``: its queue (Real-Time) or its pool (Always On)."""
        return pool_name(group) if chat.mode is ReceptionMode.ALWAYS_ON else queue_name(group)

    # ----------------------------------------------------------------- plans (pure)

    def assigned(
        self,
        chat: Chat,
        agent_id: AgentId,
        reason: Mapping[str, Any],
        now: float,
        *,
        transfer: bool = False,
        automatic: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[Chat, Items]:
        """``chat`` assigned (or transferred) to ``agent_id`` (:data:`PICKED` when the store
        picks), and its events."""
        event = lc.ChatEvent.TRANSFER if transfer else lc.ChatEvent.ASSIGN
        state = lc.transition(chat.id, chat.mode, chat.state, event)
        new = evolve(
            chat,
            state=state,
            agent_id=agent_id,
            assigned_at=now,
            agent_replied=False,
            served_by=(*chat.served_by, agent_id),
            route_reason=reason,  # one explanation, shared by the chat and its event
            queue=None,
            leave_message=None,
            **lc.track(chat, event, now, automatic=automatic),
        )
        type_ = EventType.CHAT_TRANSFERRED if transfer else EventType.CHAT_ASSIGNED
        items: Items = []
        if chat.state is ChatState.ENDED:
            items.append((EventType.CHAT_REOPENED, {}))
        items.append((type_, {"agent_id": agent_id, "reason": reason, **(extra or {})}))
        return new, items

    # ----------------------------------------------------------------- one attempt

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
            return Claim(aid), reason, agent_queue(aid) if fresh else None
        group = target.id
        if not self.on_duty(group, now):
            reason["off_duty"] = True
            return None, reason, None
        strategy = self._strategy(group)
        reason["strategy"] = strategy_name(strategy)
        census = yield from call(AgentStore.census, group)
        reason["eligible"] = census.eligible
        reason["ineligible"] = _ineligible(census, chat)
        empty = self.wait_queue(chat, group) if fresh else None
        if isinstance(strategy, Ranking):
            if chat.excluded:
                return RankedClaim(group, strategy, chat.excluded), reason, empty
            claim = self._claims.get(group)
            if claim is None or claim.ranking is not strategy:
                claim = self._claims[group] = RankedClaim(group, strategy)
            return claim, reason, empty
        loads = yield from call(AgentStore.list, group)
        pool = [ld for ld in loads if eligible(ld) and ld.agent.id not in chat.excluded]
        pick = strategy(pool, chat) if pool else None
        if pick is None:
            return None, reason, None
        return Claim(pick.agent.id), reason, empty

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
        transfer: Mapping[str, Any] | None = None,
        automatic: bool = False,
        release: AgentId | None = None,
        passed: list[dict[str, Any]] | None = None,
    ) -> Eff[Chat | None]:
        """Assign ``chat`` to ``target`` in one unit (with ``items`` before its own events,
        leaving the queue it waited in); None when the target cannot take it."""
        for _ in range(_CUSTOM_RETRIES):
            claim, reason, empty = yield from self.claim_for(target, chat, now, fresh=fresh)
            if claim is None:
                break
            reason.update(reason_extra or {})
            if transfer is not None:
                reason["by"] = transfer.get("by")
            agent = claim.agent_id if isinstance(claim, Claim) else PICKED
            new, own = self.assigned(
                chat,
                agent,
                reason,
                now,
                transfer=transfer is not None,
                automatic=automatic,
                extra={k: v for k, v in (transfer or {}).items() if k != "by"},
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

    # ----------------------------------------------------------------- routing

    def route(
        self,
        stored: Chat | None,
        chat: Chat,
        request: RouteRequest,
        now: float,
        *,
        items: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> Eff[Chat]:
        """Try the plan's targets and overflow layers; queue or pool the chat if none fits.

        ``stored`` is the chat as stored (None: ``chat`` is new and is created by the same
        unit of work); ``items`` are events raised with it.
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
            extra = {"passed_over": list(passed)} if passed else None
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
                target, stored, chat, now, items=items, reason_extra={"overflow": list(tried)}
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
            "ineligible": _ineligible(census, chat),
        }
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

    # ----------------------------------------------------------------- queueing

    def enqueue(
        self,
        stored: Chat | None,
        chat: Chat,
        queue: str,
        reason: Mapping[str, Any],
        now: float,
        *,
        census: Census | None = None,
        duty: bool = True,
        requeue: bool = False,
        items: Sequence[tuple[str, Mapping[str, Any]]] = (),
        release: AgentId | None = None,
        timer: Timer | None = None,
        drain: bool = True,
    ) -> Eff[Chat]:
        """Queue or pool the chat (its entry and its state in one unit), then drain once
        (``drain=False``: the caller drains; the chat is returned as committed, or as it is
        now when it moved on meanwhile)."""
        qsettings = self.settings.assignment.queue
        realtime = chat.mode is ReceptionMode.REAL_TIME
        reason = dict(reason)
        length = yield from call(QueueStore.length, queue)
        full = realtime and qsettings.max_length and length >= qsettings.max_length
        if full and qsettings.on_limit is not QueueLimitAction.LEAVE_MESSAGE and stored is not None:
            reason["queue_full"] = True
            return (yield from self.queue_limit(stored, "max_length", reason, now))
        if realtime:
            event = lc.ChatEvent.REQUEUE if requeue else lc.ChatEvent.QUEUE
        else:
            event = lc.ChatEvent.UNASSIGN if requeue else lc.ChatEvent.QUEUE
        if chat.state in OPEN and event is lc.ChatEvent.QUEUE:
            state = chat.state  # a new chat, or one moving between queues, stays waiting
        else:
            state = lc.transition(chat.id, chat.mode, chat.state, event)
        changes: dict[str, Any] = (
            lc.track(chat, event, now) if chat.state is not ChatState.ENDED else {}
        )
        changes["queue"] = queue
        # a chat sent back to the queue keeps its place: it is ordered by when it arrived
        arrived = chat.created_at if requeue else queued_at(evolve(chat, **changes), now)
        score = queue_score(arrived, chat.priority, qsettings.priority_step_s)
        if realtime:
            if full:
                reason["queue_full"] = True
                changes["leave_message"] = "max_length"
                reason["leave_message"] = "max_length"
                overflowed = {"limit": "max_length", "action": "leave_message"}
                items = [*items, (EventType.QUEUE_OVERFLOWED, {**overflowed, "target_group": None})]
            else:
                offer = lc.should_offer_submission(
                    self.settings.submission,
                    chat.mode,
                    chat.channel,
                    chat.skill_group,
                    agents_online=census.online if census is not None else 1,
                    off_duty=not duty,
                    queue_length=length + 1,
                    waited_s=0.0,
                )
                if offer is not None:
                    changes["leave_message"] = offer.value
                    reason["leave_message"] = offer.value
        new = evolve(chat, state=state, agent_id=None, route_reason=reason, **changes)
        data: dict[str, Any] = {"reason": reason}
        if realtime:
            data["position"] = length
        out: Items = [*items]
        out.append((EventType.CHAT_QUEUED if realtime else EventType.CHAT_UNASSIGNED, data))
        remove, cancel = leaving(stored, staying=queue)
        plan = Plan(
            new,
            out,
            release=release,
            remove=remove,
            push=QueuePush(queue, score),
            cancel=cancel,
            schedule=(timer,) if timer is not None else (),
        )
        try:
            applied = yield from self.commit(stored, plan, now)
        except PreconditionFailed as exc:
            if stored is None or exc.reason not in ("version", "missing"):
                raise
            return (yield from self.get_chat(stored.id))
        assert applied.chat is not None
        if not drain:
            return applied.chat
        # Capacity freed while we planned would otherwise be missed: drain once ourselves.
        yield from self.drain(queue, now)
        latest = yield from call(ChatStore.get, chat.id)
        if latest is not None:
            return latest
        assert applied.chat is not None
        return applied.chat

    def queue_limit(
        self,
        chat: Chat,
        limit: str,
        reason: Mapping[str, Any],
        now: float,
        fired: Timer | None = None,
    ) -> Eff[Chat]:
        """A queue limit was reached: overflow, offer leave-a-message, or end the chat."""
        action = self.settings.assignment.queue.on_limit
        data: dict[str, Any] = {"limit": limit, "action": action.value, "target_group": None}
        if action is QueueLimitAction.END:
            items: Items = [(EventType.QUEUE_OVERFLOWED, data)]
            _old, ended = yield from self.update(
                chat.id,
                lambda c: self.ended_plan(c, EndReason.QUEUE_TIMEOUT, "system", now, extra=items),
                now,
            )
            return ended
        if action is QueueLimitAction.OVERFLOW:
            for layer in self.settings.assignment.overflow:
                if layer.target_group is None or layer.target_group == chat.skill_group:
                    continue
                data["target_group"] = layer.target_group
                moved = evolve(
                    chat,
                    skill_group=layer.target_group,
                    queue=None,
                )
                reason2 = {**reason, "via": "queue_overflow", "group": layer.target_group}
                items = [(EventType.QUEUE_OVERFLOWED, data)]
                target = Target("group", layer.target_group, "queue_overflow")
                done = yield from self.try_target(
                    target, chat, moved, now, items=items, reason_extra=reason2, fresh=False
                )
                if done is not None:
                    return done
                return (
                    yield from self.enqueue(
                        chat, moved, queue_name(layer.target_group), reason2, now, items=items
                    )
                )
        # leave a message: the chat stays queued, marked; the host shows the form
        data["action"] = QueueLimitAction.LEAVE_MESSAGE.value
        fired_changes = lc.mark_fired(chat, fired) if fired is not None else {}
        new = evolve(chat, leave_message=limit, route_reason=dict(reason), **fired_changes)
        applied = yield from self.commit(chat, Plan(new, [(EventType.QUEUE_OVERFLOWED, data)]), now)
        assert applied.chat is not None
        return applied.chat

    # ----------------------------------------------------------------- draining

    def drain(self, queue: str, now: float) -> Eff[int]:
        """Assign queued chats of ``queue`` in order while capacity allows; returns how many.

        A head chat that no free agent may take because of its exclusions is passed over; any
        other failure stops the drain, so no newer chat overtakes an older one.
        """
        kind, name = _group_of(queue)
        if kind == "agent":
            target = Target("agent", name, "queue")
        else:
            target = Target("group", name, "queue" if kind == "queue" else "pool")
        assigned = 0
        while True:
            heads = yield from call(QueueStore.peek, queue, _DRAIN_BATCH)
            if not heads:
                return assigned
            progressed = False
            for chat_id, _score in heads:
                chat = yield from call(ChatStore.get, chat_id)
                if chat is None or chat.state not in OPEN or queue_of(chat) != queue:
                    continue  # an entry its chat disagrees with: reconcile() repairs it
                extra = {"waited_s": round(now - queued_at(chat, now), 3)}
                done = yield from self.try_target(
                    target, chat, chat, now, reason_extra=extra, fresh=False
                )
                if done is None:
                    if chat.excluded:
                        continue
                    return assigned
                if done.state is ChatState.ACTIVE and done.version == chat.version + 1:
                    assigned += 1
                progressed = True
                break
            if not progressed:
                return assigned

    def drain_for_agent(self, agent_id: AgentId, now: float) -> Eff[int]:
        """Capacity freed at ``agent_id``: drain the queues it serves, oldest head first."""
        load = yield from call(AgentStore.get, agent_id)
        if load is None:
            return 0
        queues = [agent_queue(agent_id)]
        for group in sorted({*load.agent.skill_groups, ""}):
            queues.append(queue_name(group))
            queues.append(pool_name(group))
        total = 0
        for _ in range(max(1, load.agent.reception_limit) * 4):
            heads: list[tuple[float, str]] = []
            for q in queues:
                head = yield from call(QueueStore.peek, q, 1)
                if head:
                    heads.append((head[0][1], q))
            if not heads:
                break
            heads.sort()
            moved = 0
            for _score, q in heads:
                moved = yield from self.drain(q, now)
                if moved:
                    break
            if not moved:
                break
            total += moved
            current: AgentLoad | None = yield from call(AgentStore.get, agent_id)
            if current is None or current.free == 0:
                break
            if current.agent.status is not AgentStatus.ONLINE:
                break
        return total

    # ----------------------------------------------------------------- reading

    def queue_status(self, chat_id: ChatId, now: float) -> Eff[QueueStatus | None]:
        """Position and estimated wait of a waiting chat (None when it does not wait)."""
        chat = yield from self.get_chat(chat_id)
        queue = queue_of(chat)
        if chat.state not in OPEN or not queue:
            return None
        position = yield from call(QueueStore.position, queue, chat_id)
        if position is None:
            return None
        length = yield from call(QueueStore.length, queue)
        kind, name = _group_of(queue)
        group = name if kind != "agent" else chat.skill_group
        census = yield from call(AgentStore.census, group)
        wait = estimate_wait_s(position, census, self.settings.assignment.queue.estimate_handle_s)
        offer = chat.leave_message
        if offer is None and chat.mode is ReceptionMode.REAL_TIME:
            why = lc.should_offer_submission(
                self.settings.submission,
                chat.mode,
                chat.channel,
                chat.skill_group,
                agents_online=census.online,
                off_duty=not self.on_duty(group, now),
                queue_length=length,
                waited_s=now - queued_at(chat, now),
            )
            offer = why.value if why is not None else None
        return QueueStatus(chat_id, queue, position, length, wait, offer)

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
