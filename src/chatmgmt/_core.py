"""The one copy of the orchestration, shared by the sync and the async manager.

Every manager operation is a generator that yields :class:`Op` values — "call this port
method with these arguments" — and receives the results. :class:`~chatmgmt.ChatManager` runs
the generators against sync ports, :class:`~chatmgmt.AsyncChatManager` awaits async ports.
Business rules live in the pure modules (``assignment``, ``customers``, ``lifecycle``,
``moderation``, ``webhook``); this module only sequences reads, decisions and atomic writes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .assignment import (
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
from .assignment._strategies import Strategy
from .customers import merge_customer, should_save, trusted_partner_id
from .errors import (
    AssignmentError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from .model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    Customer,
    CustomerInfo,
    EndReason,
    Event,
    Message,
    MessageId,
    MessageRole,
    Ranking,
    ReceptionMode,
    Sticky,
    Timer,
    evolve,
)
from .ports import Census
from .settings import ChatSettings, QueueLimitAction
from .webhook import EventType, make_event

__all__ = ["Core", "Op", "QueueStatus"]

log = logging.getLogger("chatmgmt")

T = TypeVar("T")
Eff = Generator["Op", Any, T]

_CAS_RETRIES = 32
_CUSTOM_RETRIES = 8
_DRAIN_BATCH = 8
_TIMER_LEASE_S = 30.0


@attrs.frozen
class Op:
    """One port call: ``storage.<port>.<method>(*args, **kwargs)``; port ``sink`` = host sinks."""

    port: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)


def _op(port: str, method: str, *args: Any, **kwargs: Any) -> Op:
    return Op(port, method, args, kwargs)


@attrs.frozen
class QueueStatus:
    """Where a queued chat stands: 0-based ``position``, queue ``length``, estimated wait."""

    chat_id: ChatId
    queue: str
    position: int
    length: int
    estimated_wait_s: float


_OPEN = (ChatState.QUEUED, ChatState.UNASSIGNED)


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


class Core:
    """Settings, randomness and custom strategies, plus the operations as generators."""

    def __init__(
        self,
        settings: ChatSettings,
        rng: random.Random,
        strategies: Mapping[str, Strategy] | None = None,
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.strategies = dict(strategies or {})

    # ----------------------------------------------------------------- helpers

    def new_id(self, prefix: str) -> str:
        """A fresh id from the injected RNG (seed it only in tests)."""
        return f"{prefix}_{self.rng.getrandbits(96):024x}"

    def _chat_events(
        self, chat: Chat, items: Sequence[tuple[str, Mapping[str, Any]]], now: float
    ) -> tuple[list[Event], int]:
        base = {
            "chat_id": chat.id,
            "channel": chat.channel,
            "skill_group": chat.skill_group,
            "partner_id": chat.customer.partner_id,
        }
        events = []
        seq = chat.event_seq
        for type_, data in items:
            seq += 1
            events.append(
                make_event(
                    self.new_id("evt"), type_, now, {**base, **data}, chat_id=chat.id, seq=seq
                )
            )
        return events, seq

    def _commit(
        self,
        old: Chat,
        new: Chat,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        now: float,
        sticky: Sticky | None = None,
    ) -> Eff[Chat]:
        """CAS ``old`` -> ``new`` with its events; raises ConflictError when it lost."""
        events, seq = self._chat_events(new, items, now)
        new = evolve(new, version=old.version + 1, event_seq=seq, updated_at=now)
        yield _op("chats", "replace", new, old.version, events, sticky)
        yield from self._emit(events)
        return new

    def _emit(self, events: Sequence[Event]) -> Eff[None]:
        for event in events:
            yield _op("sink", "emit", event)

    def get_chat(self, chat_id: ChatId) -> Eff[Chat]:
        """Read a chat or raise NotFoundError."""
        chat = yield _op("chats", "get", chat_id)
        if chat is None:
            raise NotFoundError("chat", chat_id)
        return chat  # type: ignore[no-any-return]

    def _load(self, agent_id: AgentId) -> Eff[AgentLoad]:
        load = yield _op("agents", "get", agent_id)
        if load is None:
            raise NotFoundError("agent", agent_id)
        return load  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- agents

    def put_agent(self, agent: Agent, now: float) -> Eff[AgentLoad]:
        """Register or update an agent; capacity that appears drains the queues."""
        old = yield _op("agents", "get", agent.id)
        previous = old.agent.status if old is not None else AgentStatus.OFFLINE
        events: list[Event] = []
        if (
            old is None
            or previous is not agent.status
            or (old.agent.reception_limit != agent.reception_limit)
        ):
            events.append(
                make_event(
                    self.new_id("evt"),
                    EventType.AGENT_STATUS_CHANGED,
                    now,
                    {
                        "agent_id": agent.id,
                        "status": agent.status.value,
                        "previous_status": previous.value,
                        "reception_limit": agent.reception_limit,
                    },
                )
            )
        load: AgentLoad = yield _op("agents", "put", agent, now, events, self.rng.random())
        yield from self._emit(events)
        if load.agent.status is AgentStatus.ONLINE and load.free > 0:
            yield from self.drain_for_agent(agent.id, now)
        return load

    def set_agent_status(
        self, agent_id: AgentId, status: AgentStatus, now: float
    ) -> Eff[AgentLoad]:
        """Change an agent's status (ONLINE agents receive chats)."""
        load = yield from self._load(agent_id)
        return (yield from self.put_agent(evolve(load.agent, status=status), now))

    def set_reception_limit(self, agent_id: AgentId, limit: int, now: float) -> Eff[AgentLoad]:
        """Change how many chats an agent holds at once; a higher limit drains the queues."""
        load = yield from self._load(agent_id)
        return (yield from self.put_agent(evolve(load.agent, reception_limit=limit), now))

    # ----------------------------------------------------------------- customers

    def save_customer(self, info: CustomerInfo, partner_id: str, now: float) -> Eff[Customer]:
        """Upsert into the CRM by the merge rules; one record even under concurrency."""
        for _ in range(_CAS_RETRIES):
            existing = yield _op("customers", "get", partner_id)
            merged, changed = merge_customer(existing, info, partner_id, now)
            if existing is not None and merged is existing:
                return existing
            if existing is None or changed:
                type_ = (
                    EventType.CUSTOMER_CREATED if existing is None else EventType.CUSTOMER_UPDATED
                )
                events = [
                    make_event(
                        self.new_id("evt"),
                        type_,
                        now,
                        {
                            "partner_id": merged.partner_id,
                            "name": merged.name,
                            "email": merged.email,
                            "phone": merged.phone,
                            "vip_level": merged.vip_level,
                            "custom_fields": dict(merged.custom_fields),
                            "channel": info.channel,
                            "changed": list(changed),
                        },
                    )
                ]
            else:
                events = []
            try:
                if existing is None:
                    yield _op("customers", "create", merged, events)
                else:
                    yield _op("customers", "replace", merged, existing.version, events)
            except ConflictError:
                continue
            yield from self._emit(events)
            return merged
        raise ConflictError("customer", partner_id)

    # ----------------------------------------------------------------- opening and routing

    def open_chat(
        self,
        info: CustomerInfo,
        request: RouteRequest,
        *,
        skill_group: str,
        signature: str | None,
        chat_id: str | None,
        attributes: Mapping[str, Any] | None,
        now: float,
    ) -> Eff[Chat]:
        """Auto-save the customer, create the chat, route it (assign, queue or pool)."""
        settings = self.settings
        partner_id = trusted_partner_id(info, signature, settings.auto_save)
        if should_save(partner_id, info.channel, settings.auto_save):
            assert partner_id is not None
            yield from self.save_customer(info, partner_id, now)
        attrs_out: dict[str, Any] = dict(attributes or {})
        customer = info
        if info.partner_id and partner_id is None:
            attrs_out["unverified_partner_id"] = info.partner_id
            customer = evolve(info, partner_id=None)
        priority = info.vip_level
        if request.queue_first:
            priority = max(priority, settings.assignment.queue.queue_first_priority)
        mode = settings.reception_mode
        chat = Chat(
            id=ChatId(chat_id or self.new_id("chat")),
            customer=customer,
            channel=info.channel,
            skill_group=skill_group,
            mode=mode,
            state=ChatState.QUEUED if mode is ReceptionMode.REAL_TIME else ChatState.UNASSIGNED,
            created_at=now,
            updated_at=now,
            priority=priority,
            attributes=attrs_out,
        )
        events, seq = self._chat_events(
            chat,
            [(EventType.CHAT_STARTED, {"mode": mode.value, "priority": priority})],
            now,
        )
        chat = evolve(chat, event_seq=seq)
        yield _op("chats", "create", chat, events)
        yield from self._emit(events)
        return (yield from self.route(chat, request, now))

    def _claim_agent(self, agent_id: str, chat: Chat, now: float) -> Eff[AgentId | None]:
        aid = AgentId(agent_id)
        if aid in chat.excluded:
            return None
        ok = yield _op("agents", "claim", aid, chat.id, now, self.rng.random())
        return aid if ok else None

    def _claim_in_group(self, group: str, chat: Chat, now: float) -> Eff[AgentId | None]:
        strategy = strategy_for_group(self.settings.assignment, group, self.strategies)
        if isinstance(strategy, Ranking):
            aid = yield _op(
                "agents",
                "claim_ranked",
                group,
                strategy,
                chat.id,
                chat.excluded,
                now,
                self.rng.random(),
            )
            return aid  # type: ignore[no-any-return]
        for _ in range(_CUSTOM_RETRIES):
            loads: list[AgentLoad] = yield _op("agents", "list", group)
            eligible = [
                ld
                for ld in loads
                if ld.agent.status is AgentStatus.ONLINE
                and ld.free > 0
                and ld.agent.id not in chat.excluded
            ]
            if not eligible:
                return None
            pick = strategy(eligible, chat)
            if pick is None:
                return None
            ok = yield _op("agents", "claim", pick.agent.id, chat.id, now, self.rng.random())
            if ok:
                return pick.agent.id
        return None

    def _try_target(
        self, target: Target, chat: Chat, now: float
    ) -> Eff[tuple[AgentId | None, dict[str, Any]]]:
        """Claim for one target; returns the agent (or None) and the explanation."""
        reason = target.describe()
        if target.kind == "agent":
            aid = yield from self._claim_agent(target.id, chat, now)
            return aid, reason
        hours = self.settings.assignment.groups.get(target.id)
        if not on_duty(hours.hours if hours is not None else None, now):
            reason["off_duty"] = True
            return None, reason
        strategy = strategy_for_group(self.settings.assignment, target.id, self.strategies)
        reason["strategy"] = strategy_name(strategy)
        census: Census = yield _op("agents", "census", target.id)
        reason["eligible"] = census.eligible
        reason["ineligible"] = _ineligible(census, chat)
        aid = yield from self._claim_in_group(target.id, chat, now)
        return aid, reason

    def assign_to(
        self,
        chat: Chat,
        agent_id: AgentId,
        reason: Mapping[str, Any],
        now: float,
        *,
        event: str = EventType.CHAT_ASSIGNED,
        extra: Mapping[str, Any] | None = None,
    ) -> Eff[Chat | None]:
        """Commit a claimed agent to the chat; on a lost CAS the slot is released."""
        first = chat.attributes.get("first_assigned_at", now)
        attributes = {**chat.attributes, "first_assigned_at": first}
        attributes.pop("queue", None)
        new = evolve(
            chat,
            state=ChatState.ACTIVE,
            agent_id=agent_id,
            assigned_at=now,
            agent_replied=False,
            served_by=(*chat.served_by, agent_id),
            route_reason=dict(reason),
            attributes=attributes,
        )
        data: dict[str, Any] = {"agent_id": agent_id, "reason": dict(reason), **(extra or {})}
        try:
            new = yield from self._commit(chat, new, [(event, data)], now)
        except (ConflictError, NotFoundError):
            yield _op("agents", "release", agent_id, chat.id, now, self.rng.random())
            return None
        yield from self.after_assign(new, now)
        return new

    def after_assign(self, chat: Chat, now: float) -> Eff[None]:
        """Deadlines that start when an agent receives a chat (auto-transfer)."""
        limit = self.settings.assignment.auto_transfer_s
        transfers = int(chat.attributes.get("auto_transfers", 0))
        if limit > 0 and transfers < self.settings.assignment.max_auto_transfers:
            base = float(chat.attributes.get("first_assigned_at", now))
            due = base + limit * (transfers + 1)
            if due <= now:
                due = now + limit
            yield _op(
                "timers",
                "schedule",
                Timer(
                    f"{chat.id}/auto_transfer",
                    due,
                    chat.id,
                    "auto_transfer",
                    chat.version,
                    {"agent_id": chat.agent_id, "transfers": transfers},
                ),
            )

    def route(self, chat: Chat, request: RouteRequest, now: float) -> Eff[Chat]:
        """Try the plan's targets and overflow layers; queue or pool the chat if none fits."""
        settings = self.settings.assignment
        partner_id = chat.customer.partner_id
        sticky = None
        sticky_on = settings.sticky.after_close_s or settings.sticky.after_offline_message_s
        if partner_id and sticky_on and not chat.attributes.get("sticky_waited"):
            sticky = yield _op("chats", "sticky", partner_id)
        plan = plan_route(chat, request, settings, partner_id, sticky, now)
        if plan.group != chat.skill_group:
            chat = evolve(chat, skill_group=plan.group)
        passed: list[dict[str, Any]] = []
        for target in plan.targets:
            aid, reason = yield from self._try_target(target, chat, now)
            if aid is not None:
                if passed:
                    reason["passed_over"] = passed
                done = yield from self.assign_to(chat, aid, reason, now)
                if done is not None:
                    return done
                return (yield from self.get_chat(chat.id))
            if target.via == "sticky" and settings.sticky.wait_s > 0:
                return (yield from self._wait_for_sticky(chat, target, now))
            passed.append(reason)
        census = yield _op("agents", "census", plan.group)
        hours = settings.groups.get(plan.group)
        duty = on_duty(hours.hours if hours is not None else None, now)
        condition = overflow_condition(census, duty)
        tried: list[dict[str, Any]] = []
        for i, layer in enumerate(plan.overflow):
            if condition not in layer.conditions:
                break
            kind = "group" if layer.target_group is not None else "agent"
            target = Target(kind, layer.target_group or layer.target_agent or "", f"overflow[{i}]")
            tried.append({"layer": i, "condition": condition.value})
            aid, reason = yield from self._try_target(target, chat, now)
            if aid is not None:
                reason["overflow"] = tried
                done = yield from self.assign_to(chat, aid, reason, now)
                if done is not None:
                    return done
                return (yield from self.get_chat(chat.id))
            if kind == "group":
                layer_census = yield _op("agents", "census", target.id)
                layer_hours = settings.groups.get(target.id)
                condition = overflow_condition(
                    layer_census, on_duty(layer_hours.hours if layer_hours else None, now)
                )
            else:
                condition = overflow_condition(census, duty)
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
        return (yield from self.enqueue(chat, queue, reason, now, census=census))

    def _wait_for_sticky(self, chat: Chat, target: Target, now: float) -> Eff[Chat]:
        """The sticky agent is unavailable and the rule says wait: queue for that agent."""
        wait_s = self.settings.assignment.sticky.wait_s
        queue = agent_queue(target.id)
        waiting = evolve(chat, attributes={**chat.attributes, "sticky_waited": True})
        reason = {"via": "sticky_wait", "agent": target.id, "wait_s": wait_s}
        new = yield from self.enqueue(waiting, queue, reason, now)
        if new.state in _OPEN and new.attributes.get("queue") == queue:
            yield _op(
                "timers",
                "schedule",
                Timer(
                    f"{chat.id}/sticky_wait",
                    now + wait_s,
                    chat.id,
                    "sticky_wait",
                    0,
                    {"queue": queue},
                ),
            )
        return new

    def enqueue(
        self,
        chat: Chat,
        queue: str,
        reason: Mapping[str, Any],
        now: float,
        *,
        census: Any = None,
    ) -> Eff[Chat]:
        """Put the chat in a queue or pool (index first, then the chat's CAS), then drain once."""
        qsettings = self.settings.assignment.queue
        realtime = chat.mode is ReceptionMode.REAL_TIME
        reason = dict(reason)
        if realtime and qsettings.max_length:
            length = yield _op("queues", "length", queue)
            if length >= qsettings.max_length:
                reason["queue_full"] = True
                return (yield from self.queue_limit(chat, "max_length", reason, now))
        enqueued_at = float(chat.attributes.get("enqueued_at", now))
        score = queue_score(enqueued_at, chat.priority, qsettings.priority_step_s)
        yield _op("queues", "push", queue, chat.id, score)
        position = yield _op("queues", "position", queue, chat.id)
        attributes = {**chat.attributes, "queue": queue, "enqueued_at": enqueued_at}
        state = ChatState.QUEUED if realtime else ChatState.UNASSIGNED
        new = evolve(chat, state=state, agent_id=None, route_reason=reason, attributes=attributes)
        event = EventType.CHAT_QUEUED if realtime else EventType.CHAT_UNASSIGNED
        data: dict[str, Any] = {"reason": reason}
        if realtime:
            data["position"] = position if position is not None else 0
        try:
            new = yield from self._commit(chat, new, [(event, data)], now)
        except (ConflictError, NotFoundError):
            yield _op("queues", "remove", queue, chat.id)
            return (yield from self.get_chat(chat.id))
        if realtime and qsettings.max_wait_s:
            yield _op(
                "timers",
                "schedule",
                Timer(
                    f"{chat.id}/queue_wait",
                    enqueued_at + qsettings.max_wait_s,
                    chat.id,
                    "queue_wait",
                    new.version,
                    {"queue": queue},
                ),
            )
        yield from self.after_enqueue(new, now)
        # Capacity freed while we queued would otherwise be missed: drain once ourselves.
        yield from self.drain(queue, now)
        latest = yield _op("chats", "get", chat.id)
        return latest if latest is not None else new

    def after_enqueue(self, chat: Chat, now: float) -> Eff[None]:
        """Hook for the lifecycle (leave-a-message offer); nothing by default."""
        return
        yield  # pragma: no cover

    def queue_limit(
        self, chat: Chat, limit: str, reason: Mapping[str, Any], now: float
    ) -> Eff[Chat]:
        """A queue limit was reached: overflow, offer leave-a-message, or end the chat."""
        action = self.settings.assignment.queue.on_limit
        data = {"limit": limit, "action": action.value, "target_group": None}
        if action is QueueLimitAction.END:
            return (
                yield from self.end_chat(
                    chat.id,
                    EndReason.QUEUE_TIMEOUT,
                    "system",
                    now,
                    extra=[(EventType.QUEUE_OVERFLOWED, data)],
                )
            )
        if action is QueueLimitAction.OVERFLOW:
            for layer in self.settings.assignment.overflow:
                if layer.target_group is not None and layer.target_group != chat.skill_group:
                    data["target_group"] = layer.target_group
                    moved = evolve(chat, skill_group=layer.target_group)
                    queue = queue_name(layer.target_group)
                    new = yield from self._commit(
                        chat, moved, [(EventType.QUEUE_OVERFLOWED, data)], now
                    )
                    if "queue" in chat.attributes:
                        yield _op("queues", "remove", chat.attributes["queue"], chat.id)
                    aid = yield from self._claim_in_group(layer.target_group, new, now)
                    if aid is not None:
                        reason2 = {**reason, "via": "queue_overflow", "group": layer.target_group}
                        done = yield from self.assign_to(new, aid, reason2, now)
                        if done is not None:
                            return done
                    attributes = {**new.attributes}
                    attributes.pop("queue", None)
                    new2 = evolve(new, attributes=attributes)
                    return (
                        yield from self.enqueue(new2, queue, {**reason, "overflowed": True}, now)
                    )
        # leave a message: the chat stays queued (or is marked) and the host shows the form
        attributes = {**chat.attributes, "offer_leave_message": limit}
        data["action"] = QueueLimitAction.LEAVE_MESSAGE.value
        new = evolve(chat, attributes=attributes, route_reason=dict(reason))
        return (yield from self._commit(chat, new, [(EventType.QUEUE_OVERFLOWED, data)], now))

    # ----------------------------------------------------------------- draining

    def drain(self, queue: str, now: float) -> Eff[int]:
        """Assign queued chats of ``queue`` in order while capacity allows; returns how many.

        A head chat that no free agent may take because of its exclusions is passed over; any
        other failure stops the drain, so no newer chat overtakes an older one.
        """
        kind, name = _group_of(queue)
        assigned = 0
        while True:
            heads: list[tuple[ChatId, float]] = yield _op("queues", "peek", queue, _DRAIN_BATCH)
            if not heads:
                return assigned
            progressed = False
            for chat_id, _score in heads:
                chat = yield _op("chats", "get", chat_id)
                if chat is None or chat.state not in _OPEN or chat.attributes.get("queue") != queue:
                    yield _op("queues", "remove", queue, chat_id)
                    progressed = True
                    break
                if kind == "agent":
                    target = Target("agent", name, "queue")
                else:
                    target = Target("group", name, "queue" if kind == "queue" else "pool")
                aid, reason = yield from self._try_target(target, chat, now)
                if aid is None:
                    if chat.excluded:
                        continue
                    return assigned
                waited = now - float(chat.attributes.get("enqueued_at", now))
                reason["waited_s"] = round(waited, 3)
                done = yield from self.assign_to(chat, aid, reason, now)
                if done is not None:
                    assigned += 1
                    yield _op("queues", "remove", queue, chat_id)
                    yield _op("timers", "cancel", f"{chat_id}/queue_wait")
                progressed = True
                break
            if not progressed:
                return assigned

    def drain_for_agent(self, agent_id: AgentId, now: float) -> Eff[int]:
        """Capacity freed at ``agent_id``: drain the queues it serves, oldest head first."""
        load: AgentLoad | None = yield _op("agents", "get", agent_id)
        if load is None:
            return 0
        groups = sorted({*load.agent.skill_groups, ""})
        queues = [agent_queue(agent_id)]
        for g in groups:
            queues.append(queue_name(g))
            queues.append(pool_name(g))
        total = 0
        for _ in range(max(1, load.agent.reception_limit) * 4):
            heads: list[tuple[float, str]] = []
            for q in queues:
                head = yield _op("queues", "peek", q, 1)
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
            current: AgentLoad | None = yield _op("agents", "get", agent_id)
            if (
                current is None
                or current.free == 0
                or current.agent.status is not AgentStatus.ONLINE
            ):
                break
        return total

    # ----------------------------------------------------------------- reading

    def queue_status(self, chat_id: ChatId) -> Eff[QueueStatus | None]:
        """Position and estimated wait of a queued chat (None when it is not queued)."""
        chat = yield from self.get_chat(chat_id)
        queue = chat.attributes.get("queue")
        if chat.state not in _OPEN or not queue:
            return None
        position = yield _op("queues", "position", queue, chat_id)
        if position is None:
            return None
        length = yield _op("queues", "length", queue)
        kind, name = _group_of(queue)
        census = yield _op("agents", "census", name if kind != "agent" else chat.skill_group)
        wait = estimate_wait_s(position, census, self.settings.assignment.queue.estimate_handle_s)
        return QueueStatus(chat_id, queue, position, length, wait)

    # ----------------------------------------------------------------- ending and transfer

    def end_chat(
        self,
        chat_id: ChatId,
        reason: EndReason,
        by: str,
        now: float,
        *,
        extra: Sequence[tuple[str, Mapping[str, Any]]] = (),
        state: ChatState = ChatState.ENDED,
    ) -> Eff[Chat]:
        """End (or abandon) a chat: record who and why, free the slot, drain the queues."""
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            if not chat.state.is_open:
                raise InvalidTransitionError(
                    chat.id, chat.state.value, "end" if state is ChatState.ENDED else "abandon"
                )
            if state is ChatState.ABANDONED and chat.state is ChatState.ACTIVE:
                raise InvalidTransitionError(chat.id, chat.state.value, "abandon", ("end",))
            new = evolve(chat, state=state, ended_at=now, end_reason=reason, ended_by=by)
            sticky = None
            pid = chat.customer.partner_id
            if pid and chat.agent_id and self.settings.assignment.sticky.after_close_s:
                sticky = Sticky(pid, chat.agent_id, now, "closed")
            if state is ChatState.ABANDONED:
                items: list[tuple[str, Mapping[str, Any]]] = [
                    (
                        EventType.CHAT_ABANDONED,
                        {"waited_s": now - float(chat.attributes.get("enqueued_at", now))},
                    )
                ]
            else:
                items = [
                    (
                        EventType.CHAT_ENDED,
                        {
                            "agent_id": chat.agent_id,
                            "end_reason": reason.value,
                            "ended_by": by,
                            "duration_s": now - chat.created_at,
                        },
                    )
                ]
            items.extend(extra)
            items.extend(self.end_extra(chat, new, now))
            try:
                new = yield from self._commit(chat, new, items, now, sticky)
            except ConflictError:
                continue
            yield from self._after_close(chat, now)
            return new
        raise ConflictError("chat", chat_id)

    def end_extra(self, old: Chat, new: Chat, now: float) -> list[tuple[str, Mapping[str, Any]]]:
        """Hook: more events committed with a chat's end (satisfaction invitation)."""
        return []

    def _after_close(self, chat: Chat, now: float) -> Eff[None]:
        queue = chat.attributes.get("queue")
        if queue:
            yield _op("queues", "remove", queue, chat.id)
        for kind in ("auto_transfer", "queue_wait", "sticky_wait"):
            yield _op("timers", "cancel", f"{chat.id}/{kind}")
        if chat.agent_id is not None:
            released = yield _op(
                "agents", "release", chat.agent_id, chat.id, now, self.rng.random()
            )
            if released:
                yield from self.drain_for_agent(chat.agent_id, now)

    def transfer(
        self,
        chat_id: ChatId,
        *,
        to_agent: AgentId | None,
        to_group: str | None,
        by: str,
        now: float,
        automatic: bool = False,
    ) -> Eff[Chat]:
        """Move an active chat to another agent or group (back to the queue if none is free)."""
        if (to_agent is None) == (to_group is None):
            raise ValidationError("transfer: give exactly one of to_agent or to_group")
        chat = yield from self.get_chat(chat_id)
        if chat.state is not ChatState.ACTIVE or chat.agent_id is None:
            raise InvalidTransitionError(chat.id, chat.state.value, "transfer", ("end",))
        old_agent = chat.agent_id
        excluded = chat.excluded | {old_agent} if automatic else chat.excluded
        probe = evolve(chat, excluded=excluded | {old_agent})
        if to_agent is not None:
            if to_agent == old_agent:
                raise AssignmentError(f"chat {chat_id!r} is already with agent {to_agent!r}")
            target = Target("agent", to_agent, "transfer")
            aid, reason = yield from self._try_target(target, probe, now)
            if aid is None:
                raise AssignmentError(
                    f"agent {to_agent!r} cannot take chat {chat_id!r} now "
                    "(not online, at the reception limit, or excluded)"
                )
        else:
            assert to_group is not None
            target = Target("group", to_group, "auto_transfer" if automatic else "transfer")
            aid, reason = yield from self._try_target(target, probe, now)
        moved = evolve(
            chat,
            excluded=excluded,
            skill_group=to_group if to_group is not None else chat.skill_group,
            attributes={
                **chat.attributes,
                "auto_transfers": int(chat.attributes.get("auto_transfers", 0)) + int(automatic),
            },
        )
        extra = {"from_agent_id": old_agent, "automatic": automatic}
        if aid is None:
            # nobody free in the group: back to its queue, ahead of chats that came later
            reason = {**reason, "queued": True, "by": by}
            attributes = {**moved.attributes}
            attributes["enqueued_at"] = chat.created_at
            requeued = evolve(
                moved,
                state=ChatState.QUEUED
                if chat.mode is ReceptionMode.REAL_TIME
                else ChatState.UNASSIGNED,
                agent_id=None,
                attributes=attributes,
            )
            new = yield from self._commit(
                chat,
                requeued,
                [(EventType.CHAT_TRANSFERRED, {"agent_id": None, "reason": reason, **extra})],
                now,
            )
            yield _op("agents", "release", old_agent, chat.id, now, self.rng.random())
            queue = queue_name(new.skill_group)
            if chat.mode is ReceptionMode.ALWAYS_ON:
                queue = pool_name(new.skill_group)
            yield _op("timers", "cancel", f"{chat.id}/auto_transfer")
            result = yield from self.enqueue(new, queue, reason, now)
            yield from self.drain_for_agent(old_agent, now)
            return result
        reason["by"] = by
        done = yield from self.assign_to(
            moved, aid, reason, now, event=EventType.CHAT_TRANSFERRED, extra=extra
        )
        if done is None:
            raise ConflictError("chat", chat_id)
        yield _op("agents", "release", old_agent, chat.id, now, self.rng.random())
        yield from self.drain_for_agent(old_agent, now)
        return done

    def assign(self, chat_id: ChatId, agent_id: AgentId, by: str, now: float) -> Eff[Chat]:
        """An admin's explicit assignment of a queued or pooled chat to an agent."""
        chat = yield from self.get_chat(chat_id)
        if chat.state not in _OPEN:
            raise InvalidTransitionError(chat.id, chat.state.value, "assign")
        ok = yield _op("agents", "claim", agent_id, chat.id, now, self.rng.random())
        if not ok:
            raise AssignmentError(
                f"agent {agent_id!r} cannot take chat {chat_id!r} now (not online or full)"
            )
        reason = {"via": "admin", "agent": agent_id, "by": by}
        done = yield from self.assign_to(chat, agent_id, reason, now)
        if done is None:
            raise ConflictError("chat", chat_id)
        queue = chat.attributes.get("queue")
        if queue:
            yield _op("queues", "remove", queue, chat.id)
            yield _op("timers", "cancel", f"{chat.id}/queue_wait")
        return done

    def set_inactive(self, chat_id: ChatId, inactive: bool, now: float) -> Eff[Chat]:
        """Mark a chat (in)active; when inactive chats do not count, its slot frees up."""
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            if chat.inactive == inactive:
                return chat
            try:
                new = yield from self._commit(chat, evolve(chat, inactive=inactive), [], now)
            except ConflictError:
                continue
            yield from self._count_inactive(new, inactive, now)
            return new
        raise ConflictError("chat", chat_id)

    def _count_inactive(self, chat: Chat, inactive: bool, now: float) -> Eff[None]:
        if chat.agent_id is None or self.settings.assignment.inactive_chats_count:
            return
        yield _op("agents", "set_inactive", chat.agent_id, chat.id, inactive)
        if inactive:
            yield from self.drain_for_agent(chat.agent_id, now)

    # ----------------------------------------------------------------- messages

    def send_message(
        self, chat_id: ChatId, role: MessageRole, sender: str, text: str, now: float
    ) -> Eff[Message]:
        """Store a message (after moderation) and update the chat in one CAS."""
        if not isinstance(text, str):
            raise ValidationError(f"text: must be a string, got {type(text).__name__}")
        message_id = MessageId(self.new_id("msg"))
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            prepared = self.prepare_message(chat, role, sender, text, message_id, now)
            message, new, items = prepared
            events, seq = self._chat_events(new, items, now)
            new = evolve(new, version=chat.version + 1, event_seq=seq, updated_at=now)
            try:
                yield _op("chats", "append_message", message, new, chat.version, events)
            except ConflictError:
                continue
            yield from self._emit(events)
            yield from self.after_message(chat, new, message, now)
            return message
        raise ConflictError("chat", chat_id)

    def prepare_message(
        self,
        chat: Chat,
        role: MessageRole,
        sender: str,
        text: str,
        message_id: MessageId,
        now: float,
    ) -> tuple[Message, Chat, list[tuple[str, Mapping[str, Any]]]]:
        """Pure: the message, the chat's new state and the events of one message."""
        if chat.state in (ChatState.LEFT_MESSAGE, ChatState.ABANDONED) or (
            chat.state is ChatState.ENDED and chat.mode is ReceptionMode.REAL_TIME
        ):
            raise InvalidTransitionError(chat.id, chat.state.value, f"{role.value}_message")
        message = Message(message_id, chat.id, role, sender, text, now)
        changes: dict[str, Any] = {}
        if role is MessageRole.CUSTOMER:
            changes["last_customer_message_at"] = now
        elif role is MessageRole.AGENT:
            changes["last_agent_message_at"] = now
            changes["agent_replied"] = True
        if role in (MessageRole.CUSTOMER, MessageRole.AGENT):
            changes["inactive"] = False
        new = evolve(chat, **changes)
        type_ = {
            MessageRole.CUSTOMER: EventType.MESSAGE_CUSTOMER,
            MessageRole.AGENT: EventType.MESSAGE_AGENT,
            MessageRole.SYSTEM: EventType.MESSAGE_SYSTEM,
            MessageRole.BOT: EventType.MESSAGE_BOT,
        }[role]
        data = {
            "message_id": message.id,
            "role": role.value,
            "sender": sender,
            "text": text,
            "moderation": "none",
        }
        return message, new, [(type_, data)]

    def after_message(self, old: Chat, new: Chat, message: Message, now: float) -> Eff[None]:
        """Deadlines a message changes (an agent reply stops the auto-transfer clock)."""
        if message.role is MessageRole.AGENT and not old.agent_replied:
            yield _op("timers", "cancel", f"{new.id}/auto_transfer")
        if old.inactive and not new.inactive:
            yield from self._count_inactive(new, False, now)

    # ----------------------------------------------------------------- deadlines

    def tick(self, now: float, limit: int) -> Eff[int]:
        """Fire the due deadlines (at most ``limit``); returns how many fired."""
        timers: list[Timer] = yield _op("timers", "claim_due", now, limit, _TIMER_LEASE_S)
        fired = 0
        for timer in timers:
            try:
                chat = yield _op("chats", "get", timer.chat_id)
                if chat is not None and (yield from self.fire(timer, chat, now)):
                    fired += 1
            except (InvalidTransitionError, AssignmentError, ConflictError) as exc:
                log.info("deadline %s did not fire: %s", timer.key, exc)
            yield _op("timers", "cancel", timer.key, now + _TIMER_LEASE_S)
        return fired

    def fire(self, timer: Timer, chat: Chat, now: float) -> Eff[bool]:
        """Fire one deadline unless its chat moved on; True when it fired."""
        if timer.kind == "auto_transfer":
            if (
                chat.state is not ChatState.ACTIVE
                or chat.agent_replied
                or chat.agent_id != timer.payload.get("agent_id")
                or int(chat.attributes.get("auto_transfers", 0)) != timer.payload.get("transfers")
            ):
                return False
            yield from self.transfer(
                chat.id,
                to_agent=None,
                to_group=chat.skill_group,
                by="system",
                now=now,
                automatic=True,
            )
            return True
        if timer.kind == "sticky_wait":
            queue = timer.payload.get("queue")
            if chat.state not in _OPEN or chat.attributes.get("queue") != queue:
                return False
            yield _op("queues", "remove", queue, chat.id)
            attributes = {k: v for k, v in chat.attributes.items() if k != "queue"}
            yield from self.route(evolve(chat, attributes=attributes), RouteRequest(), now)
            return True
        if timer.kind == "queue_wait":
            if chat.state is not ChatState.QUEUED or chat.attributes.get(
                "queue"
            ) != timer.payload.get("queue"):
                return False
            reason = {
                **chat.route_reason,
                "waited_s": now - float(chat.attributes.get("enqueued_at", now)),
            }
            yield from self.queue_limit(chat, "max_wait_s", reason, now)
            return True
        return False

    # ----------------------------------------------------------------- repair

    def reconcile(self, now: float) -> Eff[dict[str, int]]:
        """Repair what a crash between two steps left: slots, queue entries."""
        fixed = {"released": 0, "claimed": 0, "requeued": 0}
        loads: list[AgentLoad] = yield _op("agents", "list", None)
        for load in loads:
            for chat_id in sorted(load.chats | load.inactive):
                chat = yield _op("chats", "get", chat_id)
                if (
                    chat is None
                    or chat.state is not ChatState.ACTIVE
                    or chat.agent_id != load.agent.id
                ):
                    yield _op("agents", "release", load.agent.id, chat_id, now, self.rng.random())
                    fixed["released"] += 1
        for state in _OPEN:
            chats: list[Chat] = yield _op("chats", "list", state, None)
            for chat in chats:
                queue = chat.attributes.get("queue")
                if queue:
                    pos = yield _op("queues", "position", queue, chat.id)
                    if pos is None:
                        enq = float(chat.attributes.get("enqueued_at", chat.created_at))
                        score = queue_score(
                            enq, chat.priority, self.settings.assignment.queue.priority_step_s
                        )
                        yield _op("queues", "push", queue, chat.id, score)
                        fixed["requeued"] += 1
        active: list[Chat] = yield _op("chats", "list", ChatState.ACTIVE, None)
        for chat in active:
            if chat.agent_id is None:
                continue
            load = yield _op("agents", "get", chat.agent_id)
            if load is not None and chat.id not in load.chats and chat.id not in load.inactive:
                yield _op("agents", "claim", chat.agent_id, chat.id, now, self.rng.random())
                fixed["claimed"] += 1
        return fixed
