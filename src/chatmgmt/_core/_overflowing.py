"""Live overflow: a queue's overflow timer fired; move its head chats, in order, to an
overflow layer whose condition became true while they waited (see
:mod:`chatmgmt.assignment._live_overflow`)."""

from __future__ import annotations

from typing import Any

from ..assignment import Target, overflow_condition
from ..assignment._live_overflow import overflow_due, overflow_timer
from ..model import Chat, ChatId
from ..ports import AgentStore, Change, ChatStore, QueueStore, Storage
from ._base import queue_of, queued_at
from ._ops import Eff, call
from ._submission import Submissions

__all__ = ["Overflowing"]


class Overflowing(Submissions):
    """``tick()`` moves waiting chats to overflow layers that can take them now."""

    def overflow_waiting(self, queue: str, now: float) -> Eff[int]:
        """Assign the head chats of ``queue`` to overflow layers, in order, until one cannot
        move; set the queue's overflow timer again while chats wait. Returns how many moved."""
        group = queue.partition("/")[2]
        moved = 0
        while True:
            heads = yield from call(QueueStore.peek, queue, 1)
            if not heads:
                return moved
            chat = yield from call(ChatStore.get, heads[0][0])
            if chat is None or queue_of(chat) != queue:
                break  # an entry its chat disagrees with: reconcile() repairs it
            done = yield from self._overflow_one(chat, group, now)
            if done is None or queue_of(done) == queue:
                break
            moved += 1
        every_s = self.settings.assignment.overflow_check_s
        timer = overflow_timer(queue, overflow_due(now, every_s))
        yield from call(Storage.apply, Change(ChatId(timer.chat_id), None, now, schedule=(timer,)))
        return moved

    def _overflow_one(self, chat: Chat, group: str, now: float) -> Eff[Chat | None]:
        """Assign ``chat`` (waiting for ``group``) to the first overflow layer that applies and
        can take it now; None when none can."""
        census = yield from call(AgentStore.census, group)
        duty = self.on_duty(group, now)
        if duty and census.eligible > 0:
            return None  # its own group can serve it: the group's drain does
        condition = overflow_condition(census, duty)
        waited = now - queued_at(chat, now)
        tried: list[dict[str, Any]] = []
        for i, layer in enumerate(self.settings.assignment.overflow):
            if condition not in layer.conditions:
                return None
            kind = "group" if layer.target_group is not None else "agent"
            target_id = layer.target_group or layer.target_agent or ""
            if not (kind == "group" and target_id == group) and waited >= layer.after_wait_s:
                target = Target(kind, target_id, f"overflow[{i}]")
                tried.append({"layer": i, "condition": condition.value})
                extra = {"overflow": list(tried), "live": True, "waited_s": round(waited, 3)}
                done = yield from self.try_target(target, chat, chat, now, reason_extra=extra)
                if done is not None:
                    return done
            if kind == "group":
                layer_census = yield from call(AgentStore.census, target_id)
                condition = overflow_condition(layer_census, self.on_duty(target_id, now))
        return None
