"""Queue position events: a queue's positions timer fired; tell its waiting chats their place
(see :mod:`chatmgmt.assignment._positions`)."""

from __future__ import annotations

from collections.abc import Callable

from .._plan import Plan
from ..assignment import estimate_wait_s
from ..assignment._positions import POSITION_LIMIT, plan_position, positions_timer
from ..model import Chat, ChatId
from ..ports import AgentStore, Change, ChatStore, QueueStore, Storage
from ._agents import Agents
from ._base import queue_of
from ._ops import Eff, call

__all__ = ["Positions"]


def _group_of(queue: str, chat: Chat) -> str:
    kind, _, name = queue.partition("/")
    return chat.skill_group if kind == "agent" else name


class Positions(Agents):
    """``chat.queue_position`` events, throttled per chat."""

    def queue_positions(self, queue: str, now: float) -> Eff[int]:
        """Send a position event to each of the first waiting chats of ``queue`` whose place
        changed, one unit of work each; set the queue's positions timer again for those its
        throttle holds back. Returns how many events were sent."""
        every_s = self.settings.assignment.queue.position_events_s
        handle_s = self.settings.assignment.queue.estimate_handle_s
        entries = yield from call(QueueStore.peek, queue, POSITION_LIMIT)
        if not entries:
            return 0
        length = yield from call(QueueStore.length, queue)
        census = None
        sent = 0
        later: float | None = None
        for position, (chat_id, _score) in enumerate(entries):
            chat = yield from call(ChatStore.get, chat_id)
            if chat is None or queue_of(chat) != queue:
                continue
            if census is None:
                census = yield from call(AgentStore.census, _group_of(queue, chat))
            wait = estimate_wait_s(position, census, handle_s)
            planned = plan_position(chat, queue, position, length, wait, now, every_s)
            if isinstance(planned, float):
                later = planned if later is None else min(later, planned)
            elif planned is not None:
                old, new = yield from self.update(
                    chat_id, _planner(queue, position, length, wait, now, every_s), now
                )
                sent += old is not new
        if later is not None:
            timer = positions_timer(queue, later)
            pseudo = ChatId(timer.chat_id)
            yield from call(Storage.apply, Change(pseudo, None, now, schedule=(timer,)))
        return sent


def _planner(
    queue: str, position: int, length: int, wait: float, now: float, every_s: float
) -> Callable[[Chat], Plan | None]:
    """The position event's planner against the chat as it is when the unit applies."""

    def plan(chat: Chat) -> Plan | None:
        planned = plan_position(chat, queue, position, length, wait, now, every_s)
        return planned if isinstance(planned, Plan) else None

    return plan
