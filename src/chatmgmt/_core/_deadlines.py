"""Deadlines: fire the due timers (sticky wait, inactivity, reminders, auto-transfer, queue
timeout, offer expiry, the bot stage's end and handoff); every firing is a change of its chat,
planned against the chat as it is now."""

from __future__ import annotations

import logging

from .. import lifecycle as lc
from ..assignment import RouteRequest
from ..assignment._leave import agent_of_leave_timer
from ..assignment._live_overflow import queue_of_overflow_timer
from ..assignment._positions import queue_of_positions_timer
from ..errors import AssignmentError, ConflictError, InvalidTransitionError
from ..model import AgentId, Chat, ChatId, EndReason, MessageId, Timer, evolve
from ..ports import ChatStore, TimerStore
from ..settings import LeaveAction
from ._base import QUEUE, STICKY_WAIT, queue_of, queued_at
from ._ops import Eff, call
from ._positions import Positions
from ._routing import OPEN
from ._sla import fire_sla

__all__ = ["Deadlines"]

log = logging.getLogger("chatmgmt")

TIMER_LEASE_S = 30.0 + 2.0**-10
"""How long a claimed timer is leased (its ``due_at`` moves to ``now`` plus this). After the
firing the lease is dropped only if the timer is still due at ``now + TIMER_LEASE_S``, so a
timer the firing rescheduled survives; the odd 1/1024 s keeps that value apart from deadlines a
firing plans at ``now`` plus a whole number of seconds (an offer expiring, re-offered with a
30 s timeout; an auto-transfer of 30 s fired on time), which would otherwise be dropped too."""
_AGENT_KINDS = (lc.TimerKind.AGENT_REMINDER, lc.TimerKind.AUTO_TRANSFER)


class Deadlines(Positions):
    """``tick()``: fire what is due."""

    def tick(self, now: float, limit: int) -> Eff[int]:
        """Fire the due deadlines (at most ``limit``); returns how many fired."""
        timers = yield from call(TimerStore.claim_due, now, limit, TIMER_LEASE_S)
        fired = 0
        for timer in timers:
            try:
                agent_id = agent_of_leave_timer(timer)
                queue = queue_of_positions_timer(timer)
                # timers of no chat count as fired when they changed something
                if agent_id is not None:  # an agent's grace time
                    since = float(timer.payload.get("since", timer.due_at))
                    fired += (yield from self.agent_left(agent_id, since, now)) > 0
                elif queue is not None:  # a queue's position events
                    fired += (yield from self.queue_positions(queue, now)) > 0
                elif (waiting := queue_of_overflow_timer(timer)) is not None:  # live overflow
                    fired += (yield from self.overflow_waiting(waiting, now)) > 0
                else:
                    chat = yield from call(ChatStore.get, ChatId(timer.chat_id))
                    if chat is not None and (yield from self.fire(timer, chat, now)):
                        fired += 1
            except (InvalidTransitionError, AssignmentError, ConflictError) as exc:
                log.info("deadline %s did not fire: %s", timer.key, exc)
            yield from call(TimerStore.cancel, timer.key, now + TIMER_LEASE_S)
        return fired

    def fire(self, timer: Timer, chat: Chat, now: float) -> Eff[bool]:
        """Fire one deadline unless its chat moved on; True when it fired."""
        if timer.kind == STICKY_WAIT:
            queue = timer.payload.get(QUEUE)
            if chat.state not in OPEN or queue_of(chat) != queue:
                return False
            moved = evolve(chat, queue=None, sticky_waited=True)
            yield from self.route(chat, moved, RouteRequest(), now)
            return True
        if timer.kind == lc.SLA_TIMER:
            return (yield from fire_sla(self, chat.id, now))
        if timer.kind == lc.SATISFACTION_REMINDER:
            return (yield from self.remind_rating(timer, chat, now))
        if lc.is_stale(timer, chat):
            return False
        kind = lc.TimerKind(timer.kind)
        if kind is lc.TimerKind.BOT_END or kind is lc.TimerKind.BOT_HANDOFF:
            yield from self.fire_bot(kind, chat, now)
            return True
        if kind in _AGENT_KINDS:  # the reminder and auto-transfer follow the leave policy
            left = yield from self.leave_status(chat)
            if left is not None:
                status, policy = left
                if kind is lc.TimerKind.AGENT_REMINDER:
                    return False  # no reminder to an agent who left
                if policy.action is not LeaveAction.KEEP:
                    yield from self.leave_move(
                        chat, AgentId(chat.agent_id or ""), policy.action, status, now
                    )
                    return True
        if kind is lc.TimerKind.OFFER_EXPIRY:
            assert chat.agent_id is not None  # the basis names the offered agent
            yield from self.withdraw(chat.id, chat.agent_id, now, expired=True)
        elif kind is lc.TimerKind.AUTO_TRANSFER:
            yield from self.transfer(
                chat.id,
                to_agent=None,
                to_group=chat.skill_group,
                by="system",
                now=now,
                automatic=True,
            )
        elif kind is lc.TimerKind.QUEUE_TIMEOUT:
            reason = {**chat.route_reason, "waited_s": now - queued_at(chat, now)}
            yield from self.queue_limit(chat, "max_wait_s", reason, now, fired=timer)
        elif kind is lc.TimerKind.INACTIVITY_END:
            yield from self.end_chat(chat.id, EndReason.CUSTOMER_INACTIVITY, "system", now)
        else:
            yield from self._prompt(chat, timer, now)
        return True

    def _prompt(self, chat: Chat, timer: Timer, now: float) -> Eff[None]:
        """The inactivity warning to the customer, or the no-reply reminder to the agent."""
        message_id = MessageId(self.new_id("msg"))
        plan = lc.plan_prompt(self.settings, chat, timer, now, message_id=message_id)
        yield from self.commit(chat, plan, now)
