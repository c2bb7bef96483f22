"""Queueing: the queue and the pool, their limits, draining in order, where a chat stands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from .. import lifecycle as lc
from .._plan import Plan
from ..assignment import (
    Target,
    estimate_wait_s,
    queue_name,
)
from ..assignment._calendar import out_of_office_text
from ..assignment._load import eligible
from ..assignment._plans import WAITING, plan_queue
from ..errors import PreconditionFailed
from ..lifecycle._bot import waiting_handoff
from ..model import (
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    EndReason,
    ReceptionMode,
    Timer,
    evolve,
)
from ..ports import AgentStore, Applied, Census, ChatStore, QueueHead, QueueStore
from ..settings import QueueLimitAction
from ..webhook import _payloads as payloads
from ._base import queue_of, queued_at
from ._ops import Eff, call
from ._status import QueueStatus
from ._targets import Targets

__all__ = ["OPEN", "Queueing"]

OPEN = WAITING
_DRAIN_BATCH = 8
_LENGTH = attrgetter("length")  # of a QueueHead, called from C over the heads
_QUEUE = attrgetter("queue")


def _group_of(queue: str) -> tuple[str, str]:
    kind, _, name = queue.partition("/")
    return kind, name


class Queueing(Targets):
    """Queue or pool a chat; apply queue limits; drain queues when capacity frees."""

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
        length = yield from call(QueueStore.length, queue)
        full = realtime and qsettings.max_length and length >= qsettings.max_length
        if full and qsettings.on_limit is not QueueLimitAction.LEAVE_MESSAGE and stored is not None:
            full_reason = {**reason, "queue_full": True}
            return (yield from self.queue_limit(stored, "max_length", full_reason, now))
        closed = out_of_office_text(
            self.settings.assignment, chat.skill_group, new=stored is None, duty=duty
        )
        plan = plan_queue(
            self.settings,
            stored,
            chat,
            queue,
            reason,
            now,
            length=length,
            census=census,
            duty=duty,
            requeue=requeue,
            items=items,
            release=release,
            timer=timer,
            message=self.system_message(chat, closed, now) if closed else None,
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

    def send_back(
        self,
        chat: Chat,
        moved: Chat,
        queue: str,
        reason: Mapping[str, Any],
        items: Sequence[tuple[str, Mapping[str, Any]]],
        agent: AgentId,
        now: float,
    ) -> Eff[Chat]:
        """``chat`` (as ``moved``) leaves ``agent`` for ``queue`` keeping its place, its slot
        released in the same unit; the caller drains (see :meth:`enqueue`)."""
        return (
            yield from self.enqueue(
                chat,
                moved,
                queue,
                reason,
                now,
                requeue=True,
                items=items,
                release=agent,
                drain=False,
            )
        )

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
        if action is QueueLimitAction.END:
            items = [payloads.queue_overflowed(limit, action.value, None)]
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
                moved = evolve(
                    chat,
                    skill_group=layer.target_group,
                    queue=None,
                )
                reason2 = {**reason, "via": "queue_overflow", "group": layer.target_group}
                items = [payloads.queue_overflowed(limit, action.value, layer.target_group)]
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
        item = payloads.queue_overflowed(limit, QueueLimitAction.LEAVE_MESSAGE.value, None)
        fired_changes = lc.mark_fired(chat, fired) if fired is not None else {}
        new = evolve(chat, leave_message=limit, route_reason=dict(reason), **fired_changes)
        applied = yield from self.commit(chat, Plan(new, [item]), now)
        assert applied.chat is not None
        return applied.chat

    def drain(self, queue: str, now: float) -> Eff[int]:
        """Assign queued chats of ``queue`` in order while capacity allows; returns how many.

        A head chat that no free agent may take while one has room (its exclusions, its
        channel full at them, or the fairness cap) is passed over and keeps its place; a
        failure because nobody has room stops the drain, so no newer chat overtakes an older
        one.
        """
        kind, name = _group_of(queue)
        if kind != "agent" and self.is_pull(name):
            return 0  # pull mode: agents take the chats themselves (take_chat)
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
                extra: dict[str, Any] = {"waited_s": round(now - queued_at(chat, now), 3)}
                handoff = waiting_handoff(chat)
                if handoff is not None:  # a drain got there before the handoff's routing
                    extra["handoff"] = handoff
                done = yield from self.try_target(
                    target, chat, chat, now, reason_extra=extra, fresh=False
                )
                if done is None:
                    if chat.excluded or (yield from self._room_left(target)):
                        continue
                    return assigned
                if done.state.holds_slot and done.version == chat.version + 1:
                    assigned += 1
                progressed = True
                break
            if not progressed:
                return assigned

    def _room_left(self, target: Target) -> Eff[bool]:
        """Whether an agent of ``target`` still has room for some chat (ONLINE, a unit below
        its limit) after it could not take the chat just tried."""
        if target.kind == "agent":
            load = yield from call(AgentStore.get, AgentId(target.id))
            return load is not None and eligible(load)
        census = yield from call(AgentStore.census, target.id)
        return census.eligible > 0

    def drain_for_agent(
        self, agent_id: AgentId, now: float, applied: Applied | None = None
    ) -> Eff[int]:
        """Capacity freed at ``agent_id``: drain the queues it serves, oldest head first.

        ``applied``: the unit that freed it, when it reported the agent's load and the heads
        of the queues it watched (``Change.watch``): then the first round reads nothing."""
        reported = None
        if applied is not None and applied.heads is not None:
            load = applied.released
            if load is not None and load.agent.id == agent_id:
                reported = applied.heads
        if reported is None:
            load = yield from call(AgentStore.get, agent_id)
        if load is None:
            return 0
        groups = self.agent_groups
        if groups.get(agent_id) != load.agent.skill_groups:
            if len(groups) >= 65536:
                groups.clear()
            groups[agent_id] = load.agent.skill_groups
        queues = self.drain_queues(agent_id, load.agent.skill_groups)
        if (
            reported is not None
            and not any(map(_LENGTH, reported))
            and tuple(map(_QUEUE, reported)) == queues
        ):
            return 0  # the unit's report covers every queue in order, and none holds a chat
        total = 0
        for _ in range(max(1, load.agent.reception_limit) * 4):
            # one bulk read says which queues hold chats (usually none); only those are peeked
            # for the score of their first chat, to serve the oldest head first
            waiting: list[QueueHead] | None = None
            if reported is not None:  # the unit's report, when it covers every queue
                if len(reported) == len(queues):  # usually the same queues in the same order
                    waiting = []
                    for q, reported_head in zip(queues, reported, strict=True):
                        if reported_head.queue != q:
                            waiting = None
                            break
                        if reported_head.length:
                            waiting.append(reported_head)
                if waiting is None:
                    by_queue = {head.queue: head for head in reported}
                    if all(q in by_queue for q in queues):
                        waiting = [by_queue[q] for q in queues]
                reported = None
            if waiting is None:
                waiting = yield from call(QueueStore.heads, list(queues))
            heads: list[tuple[float, str]] = []
            for head in waiting:
                if head.length == 0:
                    continue
                first = yield from call(QueueStore.peek, head.queue, 1)
                if first:
                    heads.append((first[0][1], head.queue))
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
