"""Leaving: the agent leave policy and an admin's ``unassign``.

When an agent leaves (OFFLINE, or AWAY where the policy says so) its grace timer is set *before*
its status is stored, so a crash between the two leaves a timer that finds the agent still there
and does nothing; when it comes back the timer is cancelled *after* the status is stored, so a
crash leaves a timer that again finds it there. The timer's firing moves, one unit of work per
chat, the chats whose group's grace time has passed, and sets the timer again for the others.
A chat moves only while it is still ACTIVE with the agent who left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import lifecycle as lc
from .._text import check_text
from ..assignment._leave import (
    first_grace_s,
    has_left,
    leave_policy,
    leave_timer,
    leave_timer_chat,
    leave_timer_key,
    leaves,
)
from ..assignment._plans import WAITING
from ..errors import InvalidTransitionError, NotAllowedError
from ..model import (
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    ReceptionMode,
    Timer,
    evolve,
)
from ..ports import AgentStore, Change, ChatStore, Storage
from ..settings import LeaveAction, LeaveSettings
from ..webhook import _payloads as payloads
from ._base import RETRY, Retry
from ._ops import Eff, call
from ._overflowing import Overflowing

__all__ = ["LEAVE_BY", "Leaving"]

LEAVE_BY = "leave_policy"
"""Who moved a chat the leave policy moved (``by`` of its events)."""


def _why(status: AgentStatus) -> str:
    return "agent_away" if status is AgentStatus.AWAY else "agent_offline"


class Leaving(Overflowing):
    """The leave policy (grace timer, moves) and ``unassign``."""

    @property
    def _leave(self) -> LeaveSettings:
        return self.settings.assignment.leave

    # ----------------------------------------------------------------- the grace timer

    def _leave_timer(self, agent_id: AgentId, now: float, timer: Timer | None) -> Eff[None]:
        """Set (``timer``) or cancel the agent's grace timer in a unit of work of its own: it
        touches no chat (guarded by "its pseudo chat does not exist")."""
        change = Change(
            ChatId(leave_timer_chat(agent_id)),
            None,
            now,
            cancel=() if timer is not None else (leave_timer_key(agent_id),),
            schedule=(timer,) if timer is not None else (),
        )
        yield from call(Storage.apply, change)

    def before_status(
        self, old: AgentStatus, new: AgentStatus, agent_id: AgentId, now: float
    ) -> Eff[None]:
        """Before an agent's status change is stored: an agent who leaves gets its grace
        timer (set first, so a crash cannot lose it)."""
        if new is not old and leaves(self._leave, new) and not leaves(self._leave, old):
            due = now + first_grace_s(self._leave, new)
            yield from self._leave_timer(agent_id, now, leave_timer(agent_id, now, due))

    def after_status(self, old: AgentStatus, load: AgentLoad, now: float) -> Eff[None]:
        """After an agent's status change was stored: one who left with no grace time has its
        chats moved now; one who came back has its grace timer cancelled."""
        new = load.agent.status
        if new is old:
            return
        if old is AgentStatus.ONLINE:
            yield from self.withdraw_offers(load, now)
        leave = self._leave
        if leaves(leave, new) and not leaves(leave, old):
            if first_grace_s(leave, new) <= 0:
                yield from self.agent_left(load.agent.id, now, now)
        elif leaves(leave, old) and not leaves(leave, new):
            yield from self._leave_timer(load.agent.id, now, None)

    def withdraw_offers(self, load: AgentLoad, now: float) -> Eff[int]:
        """An agent no longer ONLINE cannot accept: each chat still offered to them is withdrawn
        at once, as an expiry (the next agent, or back to its place in the queue), whatever
        the leave policy. A crash before this runs leaves the offer to its own expiry timer.
        Returns how many offers were withdrawn."""
        agent_id = load.agent.id
        withdrawn = 0
        for chat_id in sorted(load.chats):
            chat = yield from call(ChatStore.get, chat_id)
            if chat is None or chat.state is not ChatState.OFFERED or chat.agent_id != agent_id:
                continue
            try:
                yield from self.withdraw(chat_id, agent_id, now, expired=True)
            except (InvalidTransitionError, NotAllowedError):
                continue  # accepted, ended or moved on meanwhile: nothing left to withdraw
            withdrawn += 1
        return withdrawn

    def agent_left(self, agent_id: AgentId, since: float, now: float) -> Eff[int]:
        """The grace timer of ``agent_id`` (who left at ``since``) fired: move the chats whose
        group's grace time has passed, one unit of work each; set the timer again for the
        others. Returns how many chats moved. Nothing moves when the agent came back."""
        load = yield from call(AgentStore.get, agent_id)
        if load is None:
            return 0
        status = load.agent.status
        moved = 0
        next_due: float | None = None
        for chat_id in sorted(load.chats | load.inactive):
            chat = yield from call(ChatStore.get, chat_id)
            if chat is None or chat.state is not ChatState.ACTIVE or chat.agent_id != agent_id:
                continue
            policy = leave_policy(self._leave, chat.skill_group)
            if policy.action is LeaveAction.KEEP or not has_left(status, policy):
                continue
            due = since + policy.grace_s
            if due > now:
                next_due = due if next_due is None else min(next_due, due)
                continue
            yield from self.leave_move(chat, agent_id, policy.action, status, now)
            moved += 1
        if next_due is not None:  # else the timer is left to expire (tick drops its lease)
            yield from self._leave_timer(agent_id, now, leave_timer(agent_id, since, next_due))
        return moved

    def leave_move(
        self, chat: Chat, agent_id: AgentId, action: LeaveAction, status: AgentStatus, now: float
    ) -> Eff[Chat]:
        """Move one chat of an agent who left, by ``action`` (not ``keep``)."""
        why = _why(status)
        if action is LeaveAction.FORWARD:
            return (
                yield from self.transfer(
                    chat.id,
                    to_agent=None,
                    to_group=chat.skill_group,
                    by=LEAVE_BY,
                    now=now,
                    only_from=agent_id,
                    via="agent_left",
                )
            )
        return (yield from self.return_chat(chat.id, agent_id, why, LEAVE_BY, now))

    def leave_status(self, chat: Chat) -> Eff[tuple[AgentStatus, LeaveSettings] | None]:
        """The status of the chat's agent and the chat's leave policy, when that agent has left
        under it (the reminder and auto-transfer deadlines ask); else None."""
        if chat.agent_id is None:
            return None
        load = yield from call(AgentStore.get, chat.agent_id)
        if load is None:
            return None
        policy = leave_policy(self._leave, chat.skill_group)
        status = load.agent.status
        return (status, policy) if has_left(status, policy) else None

    # ----------------------------------------------------------------- unassign

    def unassign(self, chat_id: ChatId, by: str, now: float, *, exclude: bool = False) -> Eff[Chat]:
        """An admin takes an active chat from its agent back to its queue (Real-Time) or pool
        (Always On), keeping its place; ``exclude``: never back to that agent automatically."""
        check_text("by", by)
        return (yield from self.return_chat(chat_id, None, "admin", by, now, exclude=exclude))

    def return_chat(
        self,
        chat_id: ChatId,
        only_from: AgentId | None,
        why: str,
        by: str,
        now: float,
        *,
        exclude: bool = False,
    ) -> Eff[Chat]:
        """The chat leaves its agent (its slot released) for its group's queue or pool,
        keeping its place, in one unit; then that queue drains. ``only_from``: only while the
        chat is ACTIVE with that agent (else returned as it is now); without it a chat that is
        not ACTIVE raises InvalidTransitionError."""

        def attempt() -> Eff[Chat | Retry]:
            chat = yield from self.get_chat(chat_id)
            agent = chat.agent_id
            if only_from is not None and (chat.state is not ChatState.ACTIVE or agent != only_from):
                return chat
            event = lc.ChatEvent.REQUEUE
            if chat.mode is ReceptionMode.ALWAYS_ON:
                event = lc.ChatEvent.UNASSIGN
            lc.transition(chat.id, chat.mode, chat.state, event)
            assert agent is not None
            queue = self.wait_queue(chat, chat.skill_group)
            moved = evolve(chat, excluded=chat.excluded | {agent}) if exclude else chat
            reason: Mapping[str, Any] = {"via": "returned", "why": why, "by": by, "agent": agent}
            items = [payloads.chat_returned(agent, why, by, queue)]
            result = yield from self.send_back(chat, moved, queue, reason, items, agent, now)
            if result.state is ChatState.ACTIVE and (only_from is None or result.agent_id == agent):
                return RETRY  # the chat moved on meanwhile: plan again from what it is now
            if result.state in WAITING:
                yield from self.drain(queue, now)
                if only_from is None:
                    yield from self.drain_for_agent(agent, now)
                return (yield from self.get_chat(chat_id))
            return result

        return (yield from self.retrying("chat", chat_id, attempt))
