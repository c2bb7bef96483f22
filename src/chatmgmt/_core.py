"""The one copy of the orchestration, shared by the sync and the async manager.

Every manager operation is a generator that yields :class:`Op` values — "call this port
method with these arguments" — and receives the results. :class:`~chatmgmt.ChatManager` runs
the generators against sync ports, :class:`~chatmgmt.AsyncChatManager` awaits async ports.
Business rules live in the pure modules (``assignment``, ``customers``, ``lifecycle``,
``moderation``, ``webhook``); this module only sequences reads, decisions and atomic writes.

Every change of a chat goes through :meth:`Core._commit`: one compare-and-set of the chat with
the events it causes (and the message or sticky mark it stores), then the deadlines the pure
lifecycle core plans for the new state.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import attrs

from . import lifecycle as lc
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
    MessageBlockedError,
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
from .moderation import Action, FilterHolder, SensitiveWordFilter
from .ports import Census
from .settings import ChatSettings, QueueLimitAction, resolve
from .webhook import EventType, make_event

__all__ = ["Core", "Op", "QueueStatus"]

log = logging.getLogger("chatmgmt")

T = TypeVar("T")
Eff = Generator["Op", Any, T]
Items = list[tuple[str, Mapping[str, Any]]]

_CAS_RETRIES = 32
_CUSTOM_RETRIES = 8
_DRAIN_BATCH = 8
_TIMER_LEASE_S = 30.0
_STICKY_WAIT = "sticky_wait"
_QUEUE = "queue"
_OFFER = "offer_leave_message"
_SUBMISSION = "submission"


class Op(NamedTuple):
    """One port call: ``call`` is ``"<port>.<method>"`` (port ``sink``: the host's sinks)."""

    call: str
    args: tuple[Any, ...]


def _op(call: str, *args: Any) -> Op:
    return Op(call, args)


@attrs.frozen
class QueueStatus:
    """Where a waiting chat stands.

    ``position`` is 0-based; ``estimated_wait_s`` is ``inf`` when nobody is online;
    ``leave_message`` is why the leave-a-message form should be offered now (an
    :class:`~chatmgmt.lifecycle.OfferReason` value or a queue limit), or None.
    """

    chat_id: ChatId
    queue: str
    position: int
    length: int
    estimated_wait_s: float
    leave_message: str | None = None


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


def _queued_at(chat: Chat, now: float) -> float:
    value = chat.attributes.get(lc.QUEUED_AT_KEY)
    return float(value) if isinstance(value, (int, float)) else now


class Core:
    """Settings, randomness, the moderation filter and custom strategies, plus the operations."""

    def __init__(
        self,
        settings: ChatSettings,
        rng: random.Random,
        strategies: Mapping[str, Strategy] | None = None,
        word_filter: SensitiveWordFilter | None = None,
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.strategies = dict(strategies or {})
        words = settings.sensitive_words
        if word_filter is None and words.enabled and (words.customer or words.agent or words.both):
            word_filter = SensitiveWordFilter.from_settings(words)
        self.filter = FilterHolder(word_filter) if word_filter is not None else None
        # deadlines planned per (chat, version): a change compares its new plan with the old
        self._plans: dict[tuple[str, int], dict[str, Timer]] = {}
        self._strategies: dict[str, Strategy] = {}  # per group, resolved once
        self.emits = True  # the manager turns this off when the host gave no event sink

    # ----------------------------------------------------------------- helpers

    def new_id(self, prefix: str) -> str:
        """A fresh id from the injected RNG (seed it only in tests)."""
        return f"{prefix}_{self.rng.getrandbits(96):024x}"

    def event(self, type_: str, data: Mapping[str, Any], now: float) -> Event:
        """An event not tied to a chat."""
        return make_event(self.new_id("evt"), type_, now, data)

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
        *,
        sticky: Sticky | None = None,
        message: Message | None = None,
    ) -> Eff[Chat]:
        """CAS ``old`` -> ``new`` with its events (and message, sticky mark); then deadlines.

        Raises ConflictError (or NotFoundError) when the compare-and-set lost.
        """
        events, seq = self._chat_events(new, items, now)
        new = evolve(new, version=old.version + 1, event_seq=seq, updated_at=now)
        if message is not None:
            yield _op("chats.append_message", message, new, old.version, events, sticky)
        else:
            yield _op("chats.replace", new, old.version, events, sticky)
        yield from self._emit(events)
        if message is not None and message.role is MessageRole.SYSTEM:
            yield _op("sink.deliver", message)
        yield from self._sync_timers(old, new)
        return new

    def _plan(self, chat: Chat | None) -> dict[str, Timer]:
        if chat is None:
            return {}
        key = (chat.id, chat.version)
        cached = self._plans.get(key)
        if cached is None:
            timers = lc.planned_timers(
                chat, end_of_chat=self.settings.end_of_chat, assignment=self.settings.assignment
            )
            cached = {t.key: t for t in timers}
            if len(self._plans) >= 4096:  # the previous state of a chat is what gets reused
                self._plans.clear()
            self._plans[key] = cached
        return cached

    def _sync_timers(self, old: Chat | None, new: Chat) -> Eff[None]:
        """Schedule the deadlines ``new`` has and ``old`` had differently; cancel the rest."""
        before = self._plan(old)
        after = self._plan(new)
        for key, timer in after.items():
            prev = before.get(key)
            if prev is None or prev.due_at != timer.due_at or prev.payload != timer.payload:
                yield _op("timers.schedule", timer)
        for key in before:
            if key not in after:
                yield _op("timers.cancel", key)

    def _emit(self, events: Sequence[Event]) -> Eff[None]:
        if not self.emits:
            return
        for event in events:
            yield _op("sink.emit", event)

    def get_chat(self, chat_id: ChatId) -> Eff[Chat]:
        """Read a chat or raise NotFoundError."""
        chat = yield _op("chats.get", chat_id)
        if chat is None:
            raise NotFoundError("chat", chat_id)
        return chat  # type: ignore[no-any-return]

    def load(self, agent_id: AgentId) -> Eff[AgentLoad]:
        """Read an agent's load or raise NotFoundError."""
        load = yield _op("agents.get", agent_id)
        if load is None:
            raise NotFoundError("agent", agent_id)
        return load  # type: ignore[no-any-return]

    def _system_message(self, chat: Chat, text: str, now: float) -> Message:
        return Message(
            MessageId(self.new_id("msg")), chat.id, MessageRole.SYSTEM, "system", text, now
        )

    @staticmethod
    def _message_item(message: Message, moderation: str = "none") -> tuple[str, dict[str, Any]]:
        type_ = {
            MessageRole.CUSTOMER: EventType.MESSAGE_CUSTOMER,
            MessageRole.AGENT: EventType.MESSAGE_AGENT,
            MessageRole.SYSTEM: EventType.MESSAGE_SYSTEM,
            MessageRole.BOT: EventType.MESSAGE_BOT,
        }[message.role]
        return type_, {
            "message_id": message.id,
            "role": message.role.value,
            "sender": message.sender,
            "text": message.text,
            "moderation": moderation,
        }

    # ----------------------------------------------------------------- agents

    def put_agent(self, agent: Agent, now: float) -> Eff[AgentLoad]:
        """Register or update an agent; capacity that appears drains the queues."""
        old = yield _op("agents.get", agent.id)
        previous = old.agent.status if old is not None else AgentStatus.OFFLINE
        events: list[Event] = []
        if (
            old is None
            or previous is not agent.status
            or old.agent.reception_limit != agent.reception_limit
        ):
            events.append(
                self.event(
                    EventType.AGENT_STATUS_CHANGED,
                    {
                        "agent_id": agent.id,
                        "status": agent.status.value,
                        "previous_status": previous.value,
                        "reception_limit": agent.reception_limit,
                    },
                    now,
                )
            )
        load: AgentLoad = yield _op("agents.put", agent, now, events, self.rng.random())
        yield from self._emit(events)
        if load.agent.status is AgentStatus.ONLINE and load.free > 0:
            yield from self.drain_for_agent(agent.id, now)
        if load.agent.status is AgentStatus.ONLINE:
            yield from self.drain_submissions(load, now)
        return load

    def set_agent_status(
        self, agent_id: AgentId, status: AgentStatus, now: float
    ) -> Eff[AgentLoad]:
        """Change an agent's status (ONLINE agents receive chats)."""
        load = yield from self.load(agent_id)
        return (yield from self.put_agent(evolve(load.agent, status=status), now))

    def set_reception_limit(self, agent_id: AgentId, limit: int, now: float) -> Eff[AgentLoad]:
        """Change how many chats an agent holds at once; a higher limit drains the queues."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"reception_limit: must be an integer >= 0, got {limit!r}")
        load = yield from self.load(agent_id)
        return (yield from self.put_agent(evolve(load.agent, reception_limit=limit), now))

    # ----------------------------------------------------------------- customers

    def save_customer(self, info: CustomerInfo, partner_id: str, now: float) -> Eff[Customer]:
        """Upsert into the CRM by the merge rules; one record even under concurrency."""
        for _ in range(_CAS_RETRIES):
            existing = yield _op("customers.get", partner_id)
            merged, changed = merge_customer(existing, info, partner_id, now)
            if existing is not None and merged is existing:
                return existing
            events: list[Event] = []
            if existing is None or changed:
                type_ = (
                    EventType.CUSTOMER_CREATED if existing is None else EventType.CUSTOMER_UPDATED
                )
                data = {
                    "partner_id": merged.partner_id,
                    "name": merged.name,
                    "email": merged.email,
                    "phone": merged.phone,
                    "vip_level": merged.vip_level,
                    "custom_fields": merged.custom_fields,  # read-only, shared with the record
                    "channel": info.channel,
                    "changed": list(changed),
                }
                events.append(self.event(type_, data, now))
            try:
                if existing is None:
                    yield _op("customers.create", merged, events)
                else:
                    yield _op("customers.replace", merged, existing.version, events)
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
            customer = attrs.evolve(info, partner_id=None)
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
            state=lc.initial_state(mode),
            created_at=now,
            updated_at=now,
            priority=priority,
            attributes=attrs_out,
        )
        events, seq = self._chat_events(
            chat, [(EventType.CHAT_STARTED, {"mode": mode.value, "priority": priority})], now
        )
        chat = evolve(chat, event_seq=seq)
        yield _op("chats.create", chat, events)
        yield from self._emit(events)
        yield from self._sync_timers(None, chat)
        return (yield from self.route(chat, request, now))

    def _claim_agent(self, agent_id: str, chat: Chat, now: float) -> Eff[AgentId | None]:
        aid = AgentId(agent_id)
        if aid in chat.excluded:
            return None
        ok = yield _op("agents.claim", aid, chat.id, now, self.rng.random())
        return aid if ok else None

    def _strategy(self, group: str) -> Strategy:
        strategy = self._strategies.get(group)
        if strategy is None:
            strategy = strategy_for_group(self.settings.assignment, group, self.strategies)
            self._strategies[group] = strategy
        return strategy

    def _claim_in_group(self, group: str, chat: Chat, now: float) -> Eff[AgentId | None]:
        strategy = self._strategy(group)
        if isinstance(strategy, Ranking):
            aid = yield _op(
                "agents.claim_ranked",
                group,
                strategy,
                chat.id,
                chat.excluded,
                now,
                self.rng.random(),
            )
            return aid  # type: ignore[no-any-return]
        for _ in range(_CUSTOM_RETRIES):
            loads: list[AgentLoad] = yield _op("agents.list", group)
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
            ok = yield _op("agents.claim", pick.agent.id, chat.id, now, self.rng.random())
            if ok:
                return pick.agent.id
        return None

    def _on_duty(self, group: str, now: float) -> bool:
        group_settings = self.settings.assignment.groups.get(group)
        return on_duty(group_settings.hours if group_settings is not None else None, now)

    def _try_target(
        self, target: Target, chat: Chat, now: float
    ) -> Eff[tuple[AgentId | None, dict[str, Any]]]:
        """Claim for one target; returns the agent (or None) and the explanation."""
        reason = target.describe()
        if target.kind == "agent":
            aid = yield from self._claim_agent(target.id, chat, now)
            return aid, reason
        if not self._on_duty(target.id, now):
            reason["off_duty"] = True
            return None, reason
        strategy = self._strategy(target.id)
        reason["strategy"] = strategy_name(strategy)
        census: Census = yield _op("agents.census", target.id)
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
        transfer: bool = False,
        automatic: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> Eff[Chat | None]:
        """Commit a claimed agent to the chat; on a lost CAS the slot is released."""
        event = lc.ChatEvent.TRANSFER if transfer else lc.ChatEvent.ASSIGN
        state = lc.transition(chat.id, chat.mode, chat.state, event)
        attributes = lc.track(chat, event, now, automatic=automatic)
        attributes.pop(_QUEUE, None)
        attributes.pop(_OFFER, None)
        new = evolve(
            chat,
            state=state,
            agent_id=agent_id,
            assigned_at=now,
            agent_replied=False,
            served_by=(*chat.served_by, agent_id),
            route_reason=reason,  # one explanation, shared by the chat and its event (read-only)
            attributes=attributes,
        )
        type_ = EventType.CHAT_TRANSFERRED if transfer else EventType.CHAT_ASSIGNED
        data: dict[str, Any] = {"agent_id": agent_id, "reason": reason, **(extra or {})}
        items: Items = [(type_, data)]
        if chat.state is ChatState.ENDED:
            items.insert(0, (EventType.CHAT_REOPENED, {}))
        try:
            return (yield from self._commit(chat, new, items, now))
        except (ConflictError, NotFoundError):
            yield from self._release_lost_claim(agent_id, chat.id, now)
            return None

    def _release_lost_claim(self, agent_id: AgentId, chat_id: ChatId, now: float) -> Eff[None]:
        """Give back a slot claimed for a chat whose compare-and-set lost.

        Claims are idempotent per chat, so a worker that lost may hold the very slot the
        winner committed (two workers draining one queued chat both picked this agent). The
        chat record decides: the slot is released unless the chat is now active with it.
        """
        current: Chat | None = yield _op("chats.get", chat_id)
        if (
            current is not None
            and current.state is ChatState.ACTIVE
            and current.agent_id == agent_id
        ):
            return
        yield _op("agents.release", agent_id, chat_id, now, self.rng.random())

    def route(self, chat: Chat, request: RouteRequest, now: float) -> Eff[Chat]:
        """Try the plan's targets and overflow layers; queue or pool the chat if none fits."""
        settings = self.settings.assignment
        partner_id = chat.customer.partner_id
        sticky = None
        sticky_on = settings.sticky.after_close_s or settings.sticky.after_offline_message_s
        if partner_id and sticky_on and not chat.attributes.get("sticky_waited"):
            sticky = yield _op("chats.sticky", partner_id)
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
                return done if done is not None else (yield from self.get_chat(chat.id))
            if target.via == "sticky" and settings.sticky.wait_s > 0:
                return (yield from self._wait_for_sticky(chat, target, now))
            passed.append(reason)
        census: Census = yield _op("agents.census", plan.group)
        duty = self._on_duty(plan.group, now)
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
                return done if done is not None else (yield from self.get_chat(chat.id))
            if kind == "group":
                layer_census: Census = yield _op("agents.census", target.id)
                condition = overflow_condition(layer_census, self._on_duty(target.id, now))
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
        return (yield from self.enqueue(chat, queue, reason, now, census=census, duty=duty))

    def _wait_for_sticky(self, chat: Chat, target: Target, now: float) -> Eff[Chat]:
        """The sticky agent is unavailable and the rule says wait: queue for that agent."""
        wait_s = self.settings.assignment.sticky.wait_s
        queue = agent_queue(target.id)
        waiting = evolve(chat, attributes={**chat.attributes, "sticky_waited": True})
        reason = {"via": "sticky_wait", "agent": target.id, "wait_s": wait_s}
        new = yield from self.enqueue(waiting, queue, reason, now)
        if new.state in _OPEN and new.attributes.get(_QUEUE) == queue:
            timer = Timer(
                f"{chat.id}:{_STICKY_WAIT}", now + wait_s, chat.id, _STICKY_WAIT, 0, {_QUEUE: queue}
            )
            yield _op("timers.schedule", timer)
        return new

    def enqueue(
        self,
        chat: Chat,
        queue: str,
        reason: Mapping[str, Any],
        now: float,
        *,
        census: Census | None = None,
        duty: bool = True,
        requeue: bool = False,
        items: Items | None = None,
    ) -> Eff[Chat]:
        """Put the chat in a queue or pool (index first, then the chat's CAS), then drain once."""
        qsettings = self.settings.assignment.queue
        realtime = chat.mode is ReceptionMode.REAL_TIME
        reason = dict(reason)
        length: int = yield _op("queues.length", queue)
        if realtime and qsettings.max_length and length >= qsettings.max_length:
            reason["queue_full"] = True
            return (yield from self.queue_limit(chat, "max_length", reason, now))
        if realtime:
            event = lc.ChatEvent.REQUEUE if requeue else lc.ChatEvent.QUEUE
        else:
            event = lc.ChatEvent.UNASSIGN if requeue else lc.ChatEvent.QUEUE
        if chat.state in _OPEN and event is lc.ChatEvent.QUEUE:
            state = chat.state  # a new chat, or one moving between queues, stays waiting
        else:
            state = lc.transition(chat.id, chat.mode, chat.state, event)
        attributes = (
            lc.track(chat, event, now)
            if chat.state is not ChatState.ENDED
            else dict(chat.attributes)
        )
        attributes[_QUEUE] = queue
        # a chat sent back to the queue keeps its place: it is ordered by when it arrived
        arrived = (
            chat.created_at if requeue else _queued_at(evolve(chat, attributes=attributes), now)
        )
        score = queue_score(arrived, chat.priority, qsettings.priority_step_s)
        yield _op("queues.push", queue, chat.id, score)
        position = yield _op("queues.position", queue, chat.id)
        if realtime:
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
                attributes[_OFFER] = offer.value
                reason["leave_message"] = offer.value
        new = evolve(chat, state=state, agent_id=None, route_reason=reason, attributes=attributes)
        data: dict[str, Any] = {"reason": reason}
        if realtime:
            data["position"] = position if position is not None else 0
        out: Items = list(items or [])
        out.append((EventType.CHAT_QUEUED if realtime else EventType.CHAT_UNASSIGNED, data))
        try:
            new = yield from self._commit(chat, new, out, now)
        except (ConflictError, NotFoundError):
            yield _op("queues.remove", queue, chat.id)
            return (yield from self.get_chat(chat.id))
        # Capacity freed while we queued would otherwise be missed: drain once ourselves.
        yield from self.drain(queue, now)
        latest = yield _op("chats.get", chat.id)
        return latest if latest is not None else new

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
                if layer.target_group is None or layer.target_group == chat.skill_group:
                    continue
                data["target_group"] = layer.target_group
                old_queue = chat.attributes.get(_QUEUE)
                moved = evolve(
                    chat,
                    skill_group=layer.target_group,
                    attributes={k: v for k, v in chat.attributes.items() if k != _QUEUE},
                )
                if old_queue:
                    yield _op("queues.remove", old_queue, chat.id)
                aid = yield from self._claim_in_group(layer.target_group, moved, now)
                reason2 = {**reason, "via": "queue_overflow", "group": layer.target_group}
                if aid is not None:
                    extra: Items = [(EventType.QUEUE_OVERFLOWED, data)]
                    done = yield from self._assign_with(moved, chat, aid, reason2, now, extra)
                    if done is not None:
                        return done
                return (
                    yield from self.enqueue(
                        moved,
                        queue_name(layer.target_group),
                        reason2,
                        now,
                        items=[(EventType.QUEUE_OVERFLOWED, data)],
                    )
                )
        # leave a message: the chat stays queued, marked; the host shows the form
        data["action"] = QueueLimitAction.LEAVE_MESSAGE.value
        attributes = dict(lc.mark_fired(chat, fired) if fired is not None else chat.attributes)
        attributes[_OFFER] = limit
        new = evolve(chat, attributes=attributes, route_reason=dict(reason))
        return (yield from self._commit(chat, new, [(EventType.QUEUE_OVERFLOWED, data)], now))

    def _assign_with(
        self,
        moved: Chat,
        stored: Chat,
        aid: AgentId,
        reason: Mapping[str, Any],
        now: float,
        items: Items,
    ) -> Eff[Chat | None]:
        """Assign ``moved`` (a changed copy of ``stored``) with extra events, in one CAS."""
        state = lc.transition(moved.id, moved.mode, moved.state, lc.ChatEvent.ASSIGN)
        attributes = lc.track(moved, lc.ChatEvent.ASSIGN, now)
        attributes.pop(_OFFER, None)
        new = evolve(
            moved,
            state=state,
            agent_id=aid,
            assigned_at=now,
            agent_replied=False,
            served_by=(*moved.served_by, aid),
            route_reason=dict(reason),
            attributes=attributes,
        )
        all_items = [*items, (EventType.CHAT_ASSIGNED, {"agent_id": aid, "reason": dict(reason)})]
        try:
            return (yield from self._commit(stored, new, all_items, now))
        except (ConflictError, NotFoundError):
            yield from self._release_lost_claim(aid, moved.id, now)
            return None

    # ----------------------------------------------------------------- draining

    def drain(self, queue: str, now: float) -> Eff[int]:
        """Assign queued chats of ``queue`` in order while capacity allows; returns how many.

        A head chat that no free agent may take because of its exclusions is passed over; any
        other failure stops the drain, so no newer chat overtakes an older one.
        """
        kind, name = _group_of(queue)
        assigned = 0
        while True:
            heads: list[tuple[ChatId, float]] = yield _op("queues.peek", queue, _DRAIN_BATCH)
            if not heads:
                return assigned
            progressed = False
            for chat_id, _score in heads:
                chat = yield _op("chats.get", chat_id)
                if chat is None or chat.state not in _OPEN or chat.attributes.get(_QUEUE) != queue:
                    yield _op("queues.remove", queue, chat_id)
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
                reason["waited_s"] = round(now - _queued_at(chat, now), 3)
                done = yield from self.assign_to(chat, aid, reason, now)
                if done is not None:
                    assigned += 1
                    yield _op("queues.remove", queue, chat_id)
                    yield _op("timers.cancel", f"{chat_id}:{_STICKY_WAIT}")
                progressed = True
                break
            if not progressed:
                return assigned

    def drain_for_agent(self, agent_id: AgentId, now: float) -> Eff[int]:
        """Capacity freed at ``agent_id``: drain the queues it serves, oldest head first."""
        load: AgentLoad | None = yield _op("agents.get", agent_id)
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
                head = yield _op("queues.peek", q, 1)
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
            current: AgentLoad | None = yield _op("agents.get", agent_id)
            if current is None or current.free == 0:
                break
            if current.agent.status is not AgentStatus.ONLINE:
                break
        return total

    # ----------------------------------------------------------------- reading

    def queue_status(self, chat_id: ChatId, now: float) -> Eff[QueueStatus | None]:
        """Position and estimated wait of a waiting chat (None when it does not wait)."""
        chat = yield from self.get_chat(chat_id)
        queue = chat.attributes.get(_QUEUE)
        if chat.state not in _OPEN or not queue:
            return None
        position = yield _op("queues.position", queue, chat_id)
        if position is None:
            return None
        length = yield _op("queues.length", queue)
        kind, name = _group_of(queue)
        group = name if kind != "agent" else chat.skill_group
        census: Census = yield _op("agents.census", group)
        wait = estimate_wait_s(position, census, self.settings.assignment.queue.estimate_handle_s)
        offer = chat.attributes.get(_OFFER)
        if offer is None and chat.mode is ReceptionMode.REAL_TIME:
            reason = lc.should_offer_submission(
                self.settings.submission,
                chat.mode,
                chat.channel,
                chat.skill_group,
                agents_online=census.online,
                off_duty=not self._on_duty(group, now),
                queue_length=length,
                waited_s=now - _queued_at(chat, now),
            )
            offer = reason.value if reason is not None else None
        return QueueStatus(chat_id, queue, position, length, wait, offer)

    # ----------------------------------------------------------------- ending and transfer

    def end_chat(
        self,
        chat_id: ChatId,
        reason: EndReason,
        by: str,
        now: float,
        *,
        extra: Sequence[tuple[str, Mapping[str, Any]]] = (),
        abandon: bool = False,
        fired: Timer | None = None,
    ) -> Eff[Chat]:
        """End (or abandon) a chat: record who and why, free the slot, drain the queues."""
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            if abandon:
                state = lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.ABANDON)
                event = lc.ChatEvent.ABANDON
            else:
                state = lc.check_end(chat.id, chat.mode, chat.state, reason)
                event = lc.ChatEvent.END
            attributes = lc.track(chat, event, now)
            attributes.pop(_QUEUE, None)
            new = evolve(
                chat,
                state=state,
                ended_at=now,
                end_reason=reason,
                ended_by=by,
                attributes=attributes,
            )
            sticky = None
            pid = chat.customer.partner_id
            if pid and chat.agent_id and self.settings.assignment.sticky.after_close_s:
                sticky = Sticky(pid, chat.agent_id, now, "closed")
            if abandon:
                waited = now - _queued_at(chat, now)
                items: Items = [(EventType.CHAT_ABANDONED, {"waited_s": waited})]
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
            message = None
            if not abandon:
                eoc = resolve(self.settings.end_of_chat, channel=chat.channel)
                prompt = (
                    eoc.timeout_prompt
                    if reason is EndReason.CUSTOMER_INACTIVITY
                    else eoc.end_prompt
                )
                if prompt:
                    message = self._system_message(chat, prompt, now)
                    items.append(self._message_item(message))
                new, invite_items = self._invite(new, lc.InviteTrigger.CHAT_END, "system", now)
                items.extend(invite_items)
            try:
                new = yield from self._commit(chat, new, items, now, sticky=sticky, message=message)
            except ConflictError:
                continue
            yield from self._after_close(chat, now)
            return new
        raise ConflictError("chat", chat_id)

    def _after_close(self, chat: Chat, now: float) -> Eff[None]:
        queue = chat.attributes.get(_QUEUE)
        if queue:
            yield _op("queues.remove", queue, chat.id)
        yield _op("timers.cancel", f"{chat.id}:{_STICKY_WAIT}")
        if chat.agent_id is not None:
            released = yield _op("agents.release", chat.agent_id, chat.id, now, self.rng.random())
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
        lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.TRANSFER)
        old_agent = chat.agent_id
        assert old_agent is not None
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
        )
        extra = {"from_agent_id": old_agent, "automatic": automatic}
        reason["by"] = by
        if aid is None:
            # nobody free in the group: back to its queue (or pool), keeping its place
            reason["queued"] = True
            queue = queue_name(moved.skill_group)
            if chat.mode is ReceptionMode.ALWAYS_ON:
                queue = pool_name(moved.skill_group)
            items: Items = [
                (EventType.CHAT_TRANSFERRED, {"agent_id": None, "reason": reason, **extra})
            ]
            result = yield from self.enqueue(moved, queue, reason, now, requeue=True, items=items)
            if result.agent_id != old_agent or result.state is not ChatState.ACTIVE:
                yield _op("agents.release", old_agent, chat.id, now, self.rng.random())
                yield from self.drain_for_agent(old_agent, now)
            return result
        done = yield from self.assign_to(
            moved, aid, reason, now, transfer=True, automatic=automatic, extra=extra
        )
        if done is None:
            raise ConflictError("chat", chat_id)
        yield _op("agents.release", old_agent, chat.id, now, self.rng.random())
        yield from self.drain_for_agent(old_agent, now)
        return done

    def assign(self, chat_id: ChatId, agent_id: AgentId, by: str, now: float) -> Eff[Chat]:
        """An admin's explicit assignment of a waiting chat to an agent."""
        chat = yield from self.get_chat(chat_id)
        lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.ASSIGN)
        ok = yield _op("agents.claim", agent_id, chat.id, now, self.rng.random())
        if not ok:
            raise AssignmentError(
                f"agent {agent_id!r} cannot take chat {chat_id!r} now (not online or full)"
            )
        reason = {"via": "admin", "agent": agent_id, "by": by}
        done = yield from self.assign_to(chat, agent_id, reason, now)
        if done is None:
            raise ConflictError("chat", chat_id)
        queue = chat.attributes.get(_QUEUE)
        if queue:
            yield _op("queues.remove", queue, chat.id)
            yield _op("timers.cancel", f"{chat.id}:{_STICKY_WAIT}")
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
        yield _op("agents.set_inactive", chat.agent_id, chat.id, inactive)
        if inactive:
            yield from self.drain_for_agent(chat.agent_id, now)

    # ----------------------------------------------------------------- messages

    def send_message(
        self, chat_id: ChatId, role: MessageRole, sender: str, text: str, now: float
    ) -> Eff[Message]:
        """Moderate, store a message and update the chat in one CAS."""
        if not isinstance(text, str):
            raise ValidationError(f"text: must be a string, got {type(text).__name__}")
        chat = yield from self.get_chat(chat_id)
        verdict = self.filter.check(text, role) if self.filter is not None else None
        delivered = text
        moderation = "none"
        hit_items: Items = []
        message_id = MessageId(self.new_id("msg"))
        if verdict is not None and verdict.hits:
            moderation = verdict.action.name.lower()
            hit_items = yield from self._moderation_items(
                chat, message_id, role, sender, text, verdict, now
            )
            if verdict.action is Action.BLOCK:
                # the text is neither stored nor forwarded; the monitoring events still go out
                events, _seq = self._chat_events(chat, hit_items, now)
                yield _op("outbox.append", [evolve(e, seq=0) for e in events])
                yield from self._emit(events)
                raise MessageBlockedError(chat.id, verdict.prompt or "")
            delivered = verdict.text
        flags = frozenset({moderation}) if moderation != "none" else frozenset()
        for _ in range(_CAS_RETRIES):
            message = Message(message_id, chat.id, role, sender, delivered, now, flags)
            new, items = self._prepare_message(chat, message, moderation, now)
            items.extend(hit_items)
            try:
                new = yield from self._commit(chat, new, items, now, message=message)
            except ConflictError:
                chat = yield from self.get_chat(chat_id)
                continue
            yield from self._after_message(chat, new, message, now)
            return message
        raise ConflictError("chat", chat_id)

    def _moderation_items(
        self,
        chat: Chat,
        message_id: MessageId,
        role: MessageRole,
        sender: str,
        text: str,
        verdict: Any,
        now: float,
    ) -> Eff[Items]:
        words = self.settings.sensitive_words
        hit = {
            "message_id": message_id,
            "role": role.value,
            "sender": sender,
            "action": verdict.action.name.lower(),
            "words": list(verdict.words),
            "categories": list(verdict.categories),
            "original_text": text if words.original_in_webhooks else None,
        }
        items: Items = [(EventType.MODERATION_HIT, hit)]
        if words.alert_hits:
            count = yield _op(
                "counters.hit", f"moderation:{role.value}:{sender}", now, words.alert_window_s
            )
            if count == words.alert_hits:
                items.append(
                    (
                        EventType.MODERATION_ALERT,
                        {
                            "role": role.value,
                            "sender": sender,
                            "hits": count,
                            "window_s": words.alert_window_s,
                        },
                    )
                )
        return items

    def _prepare_message(
        self, chat: Chat, message: Message, moderation: str, now: float
    ) -> tuple[Chat, Items]:
        """Pure: the chat's new state and the events of one message."""
        role = message.role
        event = {
            MessageRole.CUSTOMER: lc.ChatEvent.CUSTOMER_MESSAGE,
            MessageRole.AGENT: lc.ChatEvent.AGENT_MESSAGE,
        }.get(role)
        state = chat.state
        items: Items = []
        attributes = chat.attributes
        if event is not None:
            state = lc.transition(chat.id, chat.mode, chat.state, event)
            if chat.state is ChatState.ENDED:  # Always On: the customer reopens it
                attributes = lc.track(chat, lc.ChatEvent.REOPEN, now)
                items.append((EventType.CHAT_REOPENED, {}))
        elif not chat.state.is_open and not (
            chat.state is ChatState.ENDED and chat.mode is ReceptionMode.ALWAYS_ON
        ):
            raise InvalidTransitionError(chat.id, chat.state.value, f"{role.value}_message")
        changes: dict[str, Any] = {"state": state, "attributes": attributes}
        if role is MessageRole.CUSTOMER:
            changes["last_customer_message_at"] = now
            changes["inactive"] = False
        elif role is MessageRole.AGENT:
            changes["last_agent_message_at"] = now
            changes["agent_replied"] = True
            changes["inactive"] = False
        if state is ChatState.UNASSIGNED and chat.state is ChatState.ENDED:
            changes["agent_id"] = None
            changes["ended_at"] = None
            changes["end_reason"] = None
            changes["ended_by"] = None
        items.insert(0, self._message_item(message, moderation))
        return evolve(chat, **changes), items

    def _after_message(self, old: Chat, new: Chat, message: Message, now: float) -> Eff[None]:
        if old.inactive and not new.inactive:
            yield from self._count_inactive(new, False, now)
        if old.state is ChatState.ENDED and new.state is ChatState.UNASSIGNED:
            yield from self.route(new, RouteRequest(), now)

    # ----------------------------------------------------------------- leave a message

    def submit_message(self, chat_id: ChatId, values: Mapping[str, Any], now: float) -> Eff[Chat]:
        """The customer leaves a message instead of waiting: validate, pool, assign, push."""
        settings = self.settings.submission
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            state = lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.LEAVE_MESSAGE)
            cleaned = lc.validate_submission(
                settings, values, channel=chat.channel, group=chat.skill_group
            )
            mode = resolve(settings, channel=chat.channel, group=chat.skill_group or None).mode
            attributes = lc.track(chat, lc.ChatEvent.LEAVE_MESSAGE, now)
            attributes.pop(_QUEUE, None)
            fields = {k: list(v) if isinstance(v, tuple) else v for k, v in cleaned.items()}
            attributes[_SUBMISSION] = {"mode": mode.value, "fields": fields, "at": now}
            new = evolve(chat, state=state, attributes=attributes, agent_id=None)
            data = {"submission_id": chat.id, "mode": mode.value, "fields": fields}
            try:
                new = yield from self._commit(
                    chat, new, [(EventType.OFFLINE_MESSAGE_CREATED, data)], now
                )
            except ConflictError:
                continue
            queue = chat.attributes.get(_QUEUE)
            if queue:
                yield _op("queues.remove", queue, chat.id)
            yield _op("timers.cancel", f"{chat.id}:{_STICKY_WAIT}")
            pool = f"submissions/{new.skill_group}"
            yield _op("queues.push", pool, new.id, now)
            assigned = yield from self._assign_submission(new, pool, now)
            return assigned if assigned is not None else new
        raise ConflictError("chat", chat_id)

    def _assign_submission(self, chat: Chat, pool: str, now: float) -> Eff[Chat | None]:
        """Pick an agent for a left message by the group's strategy; it holds no live slot.

        The ranked claim picks (and updates the agent's ranking keys, so round robin stays
        fair across chats and messages); the slot is given back at once.
        """
        aid, reason = yield from self._try_target(
            Target("group", chat.skill_group, "submission"), chat, now
        )
        if aid is None:
            return None
        yield _op("agents.release", aid, chat.id, now, self.rng.random())
        new = evolve(chat, agent_id=aid, route_reason=reason, served_by=(*chat.served_by, aid))
        data = {"submission_id": chat.id, "agent_id": aid, "reason": reason}
        try:
            new = yield from self._commit(
                chat, new, [(EventType.OFFLINE_MESSAGE_ASSIGNED, data)], now
            )
        except ConflictError:
            return None
        yield _op("queues.remove", pool, chat.id)
        return new

    def drain_submissions(self, load: AgentLoad, now: float) -> Eff[int]:
        """An agent came online: hand out the left messages waiting in its groups."""
        done = 0
        for group in sorted({*load.agent.skill_groups, ""}):
            pool = f"submissions/{group}"
            while True:
                heads: list[tuple[ChatId, float]] = yield _op("queues.peek", pool, 1)
                if not heads:
                    break
                chat = yield _op("chats.get", heads[0][0])
                if chat is None or chat.state is not ChatState.LEFT_MESSAGE or chat.agent_id:
                    yield _op("queues.remove", pool, heads[0][0])
                    continue
                if (yield from self._assign_submission(chat, pool, now)) is None:
                    break
                done += 1
        return done

    def reply_offline_message(
        self, chat_id: ChatId, agent_id: AgentId, text: str, now: float
    ) -> Eff[Message]:
        """An agent answers a left message: an offline message to the customer, pushed by
        webhook; it opens the sticky window for that agent."""
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            if chat.state is not ChatState.LEFT_MESSAGE:
                raise InvalidTransitionError(chat.id, chat.state.value, "reply_offline_message")
            message = Message(
                MessageId(self.new_id("msg")), chat.id, MessageRole.AGENT, agent_id, text, now
            )
            sticky = None
            if chat.customer.partner_id:
                sticky = Sticky(chat.customer.partner_id, agent_id, now, "offline")
            new = evolve(chat, agent_id=chat.agent_id or agent_id, last_agent_message_at=now)
            data = {"submission_id": chat.id, "agent_id": agent_id, "text": text}
            items: Items = [
                self._message_item(message),
                (EventType.OFFLINE_MESSAGE_REPLIED, data),
            ]
            try:
                yield from self._commit(chat, new, items, now, sticky=sticky, message=message)
            except ConflictError:
                continue
            return message
        raise ConflictError("chat", chat_id)

    # ----------------------------------------------------------------- satisfaction

    def _invite(
        self, chat: Chat, trigger: lc.InviteTrigger, by: str, now: float
    ) -> tuple[Chat, Items]:
        settings = self.settings.satisfaction
        state = lc.satisfaction_of(chat)
        invited = lc.invite(settings, chat, state, trigger=trigger, now=now)
        if invited is None:
            return chat, []
        attributes = {**chat.attributes, lc.SATISFACTION_KEY: invited.to_dict()}
        data = {
            "agent_id": lc.attributed_agent(chat),
            "by": by,
            "invitation": invited.invitations,
        }
        return evolve(chat, attributes=attributes), [(EventType.SATISFACTION_INVITED, data)]

    def invite_rating(self, chat_id: ChatId, by: str, now: float) -> Eff[Chat]:
        """The agent invites the customer to rate the chat (when the rules allow)."""
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            state = lc.satisfaction_of(chat)
            refusal = lc.invitation_refusal(
                self.settings.satisfaction, chat, state, trigger=lc.InviteTrigger.AGENT, now=now
            )
            if refusal is not None:
                raise InvalidTransitionError(chat.id, chat.state.value, f"invite:{refusal.value}")
            new, items = self._invite(chat, lc.InviteTrigger.AGENT, by, now)
            try:
                return (yield from self._commit(chat, new, items, now))
            except ConflictError:
                continue
        raise ConflictError("chat", chat_id)

    def rate(
        self,
        chat_id: ChatId,
        *,
        level: int,
        tags: Sequence[str],
        comment: str,
        resolved: bool | None,
        now: float,
    ) -> Eff[Chat]:
        """The customer rates the chat; refused or overwritten by the settings' rules."""
        settings = self.settings.satisfaction
        for _ in range(_CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            before = lc.satisfaction_of(chat)
            after = lc.rate(
                settings,
                chat,
                before,
                level=level,
                tags=tags,
                comment=comment,
                resolved=resolved,
                now=now,
            )
            rating = after.rating
            assert rating is not None
            attributes = {**chat.attributes, lc.SATISFACTION_KEY: after.to_dict()}
            data = {
                "agent_id": rating.agent_id,
                "level": rating.level,
                "levels": rating.levels,
                "label": rating.label,
                "tags": list(rating.tags),
                "resolved": rating.resolved,
                "comment": rating.comment,
                "overwritten": before.rating is not None,
            }
            try:
                return (
                    yield from self._commit(
                        chat,
                        evolve(chat, attributes=attributes),
                        [(EventType.SATISFACTION_SUBMITTED, data)],
                        now,
                    )
                )
            except ConflictError:
                continue
        raise ConflictError("chat", chat_id)

    # ----------------------------------------------------------------- deadlines

    def tick(self, now: float, limit: int) -> Eff[int]:
        """Fire the due deadlines (at most ``limit``); returns how many fired."""
        timers: list[Timer] = yield _op("timers.claim_due", now, limit, _TIMER_LEASE_S)
        fired = 0
        for timer in timers:
            try:
                chat = yield _op("chats.get", timer.chat_id)
                if chat is not None and (yield from self.fire(timer, chat, now)):
                    fired += 1
            except (InvalidTransitionError, AssignmentError, ConflictError) as exc:
                log.info("deadline %s did not fire: %s", timer.key, exc)
            yield _op("timers.cancel", timer.key, now + _TIMER_LEASE_S)
        return fired

    def fire(self, timer: Timer, chat: Chat, now: float) -> Eff[bool]:
        """Fire one deadline unless its chat moved on; True when it fired."""
        if timer.kind == _STICKY_WAIT:
            queue = timer.payload.get(_QUEUE)
            if chat.state not in _OPEN or chat.attributes.get(_QUEUE) != queue:
                return False
            yield _op("queues.remove", queue, chat.id)
            attributes = {k: v for k, v in chat.attributes.items() if k != _QUEUE}
            yield from self.route(evolve(chat, attributes=attributes), RouteRequest(), now)
            return True
        if lc.is_stale(timer, chat):
            return False
        kind = lc.TimerKind(timer.kind)
        if kind is lc.TimerKind.AUTO_TRANSFER:
            yield from self.transfer(
                chat.id,
                to_agent=None,
                to_group=chat.skill_group,
                by="system",
                now=now,
                automatic=True,
            )
        elif kind is lc.TimerKind.QUEUE_TIMEOUT:
            reason = {**chat.route_reason, "waited_s": now - _queued_at(chat, now)}
            yield from self.queue_limit(chat, "max_wait_s", reason, now, fired=timer)
        elif kind is lc.TimerKind.INACTIVITY_END:
            yield from self.end_chat(chat.id, EndReason.CUSTOMER_INACTIVITY, "system", now)
        else:
            yield from self._prompt(chat, timer, now)
        return True

    def _prompt(self, chat: Chat, timer: Timer, now: float) -> Eff[None]:
        """The inactivity warning to the customer, or the no-reply reminder to the agent."""
        eoc = resolve(self.settings.end_of_chat, channel=chat.channel)
        attributes = lc.mark_fired(chat, timer)
        if timer.kind == lc.TimerKind.INACTIVITY_WARN.value:
            text = eoc.warn_prompt
            end_at = float(timer.payload["basis"][0]) + eoc.end_after_s if eoc.end_after_s else None
            extra: tuple[str, Mapping[str, Any]] = (
                EventType.CHAT_INACTIVITY_WARNED,
                {"end_at": end_at},
            )
        else:
            text = eoc.agent_reminder_prompt
            extra = (EventType.CHAT_AGENT_REMINDED, {"agent_id": chat.agent_id})
        message = self._system_message(chat, text, now)
        new = evolve(chat, attributes=attributes)
        yield from self._commit(
            chat, new, [self._message_item(message), extra], now, message=message
        )

    # ----------------------------------------------------------------- repair

    def reconcile(self, now: float) -> Eff[dict[str, int]]:
        """Repair what a crash between two steps left: slots, queue entries."""
        fixed = {"released": 0, "claimed": 0, "requeued": 0}
        loads: list[AgentLoad] = yield _op("agents.list", None)
        for load in loads:
            for chat_id in sorted(load.chats | load.inactive):
                chat = yield _op("chats.get", chat_id)
                if (
                    chat is None
                    or chat.state is not ChatState.ACTIVE
                    or chat.agent_id != load.agent.id
                ):
                    yield _op("agents.release", load.agent.id, chat_id, now, self.rng.random())
                    fixed["released"] += 1
        for state in _OPEN:
            chats: list[Chat] = yield _op("chats.list", state, None)
            for chat in chats:
                queue = chat.attributes.get(_QUEUE)
                if queue:
                    pos = yield _op("queues.position", queue, chat.id)
                    if pos is None:
                        score = queue_score(
                            _queued_at(chat, chat.created_at),
                            chat.priority,
                            self.settings.assignment.queue.priority_step_s,
                        )
                        yield _op("queues.push", queue, chat.id, score)
                        fixed["requeued"] += 1
        active: list[Chat] = yield _op("chats.list", ChatState.ACTIVE, None)
        for chat in active:
            if chat.agent_id is None:
                continue
            load = yield _op("agents.get", chat.agent_id)
            if load is not None and chat.id not in load.chats and chat.id not in load.inactive:
                yield _op("agents.claim", chat.agent_id, chat.id, now, self.rng.random())
                fixed["claimed"] += 1
        return fixed
