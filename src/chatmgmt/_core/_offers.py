"""Offers: an agent accepts or declines an offered chat, or lets the offer expire.

The offer itself is made where every assignment is made (:meth:`Targets.try_target`, planned
by :func:`chatmgmt.lifecycle.plan_offer`). Here the answer: an acceptance is one unit (the chat
becomes ACTIVE; the slot it holds stays); a decline or an expiry is one unit that releases the
agent's slot and either offers the chat to the next agent of its group (the declining agent
excluded) or puts it back where it waited, at the place it had.
"""

from __future__ import annotations

from .._text import check_text
from ..assignment import Target
from ..assignment._plans import plan_queue
from ..errors import PreconditionFailed
from ..lifecycle._offers import plan_accept, plan_withdrawn
from ..model import AgentId, Chat, ChatId
from ..ports import QueueStore
from ._base import RETRY, Retry
from ._bot import Bots
from ._ops import Eff, call

__all__ = ["Offers"]


class Offers(Bots):
    """Accept, decline and expire offers."""

    def accept_offer(self, chat_id: ChatId, agent_id: AgentId, now: float) -> Eff[Chat]:
        """``agent_id`` accepts the chat offered to them: it is theirs from now on."""
        _old, new = yield from self.update(chat_id, lambda c: plan_accept(c, agent_id, now), now)
        return new

    def decline_offer(
        self, chat_id: ChatId, agent_id: AgentId, reason: str, now: float
    ) -> Eff[Chat]:
        """``agent_id`` declines the chat offered to them (``reason`` goes into the event)."""
        check_text("reason", reason)
        return (yield from self.withdraw(chat_id, agent_id, now, expired=False, why=reason))

    def withdraw(
        self, chat_id: ChatId, agent_id: AgentId, now: float, *, expired: bool, why: str = ""
    ) -> Eff[Chat]:
        """The offer to ``agent_id`` ends unaccepted: in one unit the agent's slot is released
        and the chat is offered (or assigned, where offers are off) to the next agent of its
        group, never to ``agent_id`` again; with nobody free, it waits again where it waited.
        Then the queues drain (the freed slot may take another chat)."""

        def attempt() -> Eff[Chat | Retry]:
            chat = yield from self.get_chat(chat_id)
            waiting, items = plan_withdrawn(
                chat, agent_id, now, expired=expired, decline_reason=why
            )
            group = waiting.skill_group
            target = Target("group", group, "offer_expired" if expired else "offer_declined")
            done = yield from self.try_target(
                target, chat, waiting, now, items=items, fresh=False, release=agent_id
            )
            if done is None:
                queue = self.wait_queue(waiting, group)
                length = yield from call(QueueStore.length, queue)
                reason = {**target.describe(), "queued": True}
                plan = plan_queue(
                    self.settings,
                    chat,
                    waiting,
                    queue,
                    reason,
                    now,
                    length=length,
                    items=items,
                    release=agent_id,
                )
                try:
                    applied = yield from self.commit(chat, plan, now)
                except PreconditionFailed as exc:
                    if exc.reason in ("version", "missing"):
                        return RETRY  # the chat moved on: plan again from what it is now
                    raise
                assert applied.chat is not None
                done = applied.chat
                yield from self.drain(queue, now)
            elif done.version != chat.version + 1 or agent_id not in done.excluded:
                return RETRY  # another change won the race: plan again from what it is now
            yield from self.drain_for_agent(agent_id, now)
            return (yield from self.get_chat(chat_id))

        return (yield from self.retrying("chat", chat_id, attempt))
