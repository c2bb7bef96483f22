"""``reconcile()``: find every disagreement between a chat and its indexes, repair it, drain.

With every change one unit of work, a chat and its indexes cannot disagree because of
concurrency or a crash between two operations; what ``reconcile()`` finds comes from outside that
rule (data written by an older release, a host adapter that broke the contract, a hand edit).
Each repair reads the chat first and the index after it, so an index the chat's own last unit
changed is seen as it is now; the repair is itself a unit of work guarded by the version of the
chat it was computed from: if the chat changed since it was read, the repair commits nothing
and the next pass looks again. So it is safe at any moment, during traffic, and what it reports
was really broken.
"""

from __future__ import annotations

from ..assignment import agent_queue, pool_name, queue_name
from ..assignment._routing import wait_score
from ..errors import PreconditionFailed
from ..lifecycle._plans import submission_pool
from ..model import Chat, ChatId, ChatState
from ..ports import AgentStore, Change, ChatStore, Claim, QueuePush, QueueStore, Storage
from ._base import queue_of, queued_at
from ._deadlines import Deadlines
from ._ops import Eff, call
from ._routing import OPEN

__all__ = ["Repair"]

_PAGE = 1000


class Repair(Deadlines):
    """Reconcile chats with their slots and queue entries."""

    def _repair(self, change: Change) -> Eff[bool]:
        try:
            yield from call(Storage.apply, change)
        except PreconditionFailed:
            return False  # the chat moved on: its own unit of work keeps it consistent
        return True

    def reconcile(self, now: float) -> Eff[dict[str, int]]:
        """Repair every disagreement between chats and their indexes, then drain.

        * a slot held for a chat that is not ACTIVE (or OFFERED) with that agent: released;
        * an ACTIVE (or OFFERED) chat its agent does not hold: claimed back (whatever the
          agent's load);
        * a waiting chat missing from its queue: pushed back at its original score (the
          place it had: :func:`~chatmgmt.assignment._routing.wait_score`);
        * a queue entry whose chat does not wait there: removed.
        """
        fixed = {"released": 0, "claimed": 0, "requeued": 0, "removed": 0, "drained": 0}
        loads = yield from call(AgentStore.list, None)
        queues: set[str] = {queue_name(""), pool_name(""), submission_pool("")}
        for load in loads:
            aid = load.agent.id
            queues.add(agent_queue(aid))
            for group in load.agent.skill_groups:
                queues.update((queue_name(group), pool_name(group), submission_pool(group)))
            for chat_id in sorted(load.chats | load.inactive):
                chat = yield from call(ChatStore.get, chat_id)
                if chat is not None and chat.state.holds_slot and chat.agent_id == aid:
                    continue
                # the index read after the chat: a slot released by the chat's own last unit
                # (at or before this version) is gone by now, so what remains is a real
                # disagreement at this version, which the guard below keeps
                again = yield from call(AgentStore.get, aid)
                if again is None or (chat_id not in again.chats and chat_id not in again.inactive):
                    continue
                version = None if chat is None else chat.version
                change = Change(chat_id, version, now, release=aid, tiebreak=self.rng.random())
                if (yield from self._repair(change)):
                    fixed["released"] += 1
        for group in self.settings.assignment.groups:
            queues.update((queue_name(group), pool_name(group), submission_pool(group)))
        active = yield from call(ChatStore.list, ChatState.ACTIVE, None)
        offered = yield from call(ChatStore.list, ChatState.OFFERED, None)
        for chat in (*active, *offered):
            agent = chat.agent_id
            if agent is None:
                continue
            held = yield from call(AgentStore.get, agent)
            if held is None or chat.id in held.chats or chat.id in held.inactive:
                continue
            claim = Claim(agent, force=True, channel=chat.channel)
            change = Change(chat.id, chat.version, now, claim=claim, tiebreak=self.rng.random())
            if (yield from self._repair(change)):
                fixed["claimed"] += 1
        waiting: list[Chat] = []
        for state in (*OPEN, ChatState.LEFT_MESSAGE):
            waiting.extend((yield from call(ChatStore.list, state, None)))
        qsettings = self.settings.assignment.queue
        for chat in waiting:
            queue = self._waits_in(chat)
            if queue is None:
                continue
            queues.add(queue)
            position = yield from call(QueueStore.position, queue, chat.id)
            if position is not None:
                continue
            if chat.state is ChatState.LEFT_MESSAGE:
                score = queued_at(chat, chat.updated_at)
            else:  # the place the live path gave it (a chat sent back keeps its place)
                score = wait_score(chat, qsettings.priority_step_s)
            change = Change(chat.id, chat.version, now, push=QueuePush(queue, score))
            if (yield from self._repair(change)):
                fixed["requeued"] += 1
        for queue in sorted(queues):
            fixed["removed"] += yield from self._prune(queue, now)
        for queue in sorted(queues):
            if not queue.startswith("submissions/"):
                fixed["drained"] += yield from self.drain(queue, now)
        return fixed

    @staticmethod
    def _waits_in(chat: Chat) -> str | None:
        if chat.state is ChatState.LEFT_MESSAGE:
            return None if chat.agent_id else submission_pool(chat.skill_group)
        return queue_of(chat)

    def _prune(self, queue: str, now: float) -> Eff[int]:
        """Remove the entries of ``queue`` whose chat does not wait there."""
        removed = 0
        entries = yield from call(QueueStore.peek, queue, 1_000_000)
        for chat_id, _score in entries:
            chat = yield from call(ChatStore.get, chat_id)
            if chat is not None and self._waits_in(chat) == queue:
                continue
            position = yield from call(QueueStore.position, queue, chat_id)
            if position is None:
                continue  # removed by the chat's own unit meanwhile: nothing to repair
            version = None if chat is None else chat.version
            change = Change(ChatId(chat_id), version, now, remove=(queue,))
            if (yield from self._repair(change)):
                removed += 1
        return removed
