"""Pull mode: agents take the next waiting chat of a group, or a chosen one, themselves.

A group with ``assignment.groups.<g>.pull`` never pushes its chats (routing and draining pass
it by, :meth:`Targets.claim_for`); :meth:`Pull.take_chat` is one unit of work: the chat's
compare-and-set, the slot claim for the agent (below its limit, ONLINE), the queue entry removed
and the events, all or nothing. Two agents taking one chat at once: one unit wins, the other
finds the version moved and takes the next chat (or, for a chosen chat, gets AssignmentError).
"""

from __future__ import annotations

from typing import Any

from .._plan import Plan, leaving
from ..assignment import pool_name, queue_name
from ..assignment._load import fits, has_channel_rules, in_group
from ..assignment._plans import WAITING, plan_assignment
from ..errors import AssignmentError, ConflictError, PreconditionFailed, ValidationError
from ..model import AgentId, AgentLoad, Chat, ChatId, ReceptionMode
from ..ports import ChatStore, Claim, QueueStore
from ._base import CAS_RETRIES, RETRY, Retry, queue_of, queued_at
from ._offers import Offers
from ._ops import Eff, call

__all__ = ["Pull"]

_PEEK = 16


class Pull(Offers):
    """``take_chat``: an agent takes a waiting chat of a pull-mode group."""

    def pull_queue(self, group: str) -> str:
        """Where the chats of ``group`` wait in the settings' reception mode."""
        if self.settings.reception_mode is ReceptionMode.ALWAYS_ON:
            return pool_name(group)
        return queue_name(group)

    def pull_group(self, queue: str | None) -> str | None:
        """The pull-mode group whose queue (or pool) ``queue`` is, or None."""
        if queue is None:
            return None
        kind, _, group = queue.partition("/")
        if kind not in ("queue", "pool") or not self.is_pull(group):
            return None
        return group

    def take_chat(
        self, agent_id: AgentId, group: str | None, chat_id: ChatId | None, now: float
    ) -> Eff[Chat | None]:
        """``agent_id`` takes ``chat_id``, or else the chat at the head of the queues of
        ``group`` (None: every pull-mode group of the agent), the oldest head first; None when
        no chat waits there. AssignmentError when the agent is not ONLINE or at its limit, or
        when the chosen chat does not wait in a pull-mode group of the agent (or another agent
        took it first)."""
        load = yield from self.require_agent(agent_id)
        if chat_id is not None:
            return (yield from self._take_chosen(load, chat_id, now))
        if group is not None:
            self._check_pull_group(load, group)
            groups = [group]
        else:
            groups = sorted(g for g in load.agent.skill_groups if self.is_pull(g))
            if not groups:
                raise AssignmentError(f"agent {agent_id!r} serves no pull-mode skill group")
        queues = [self.pull_queue(g) for g in groups]
        for _ in range(CAS_RETRIES):
            head = yield from self._next(queues, load, now)
            if head is None:
                return None
            taken = yield from self._take(agent_id, head, now)
            if taken is not RETRY:
                return taken
        raise ConflictError("queue", ",".join(queues))

    def _check_pull_group(self, load: AgentLoad, group: str) -> None:
        if not self.is_pull(group):
            raise ValidationError(
                f"group: skill group {group!r} is not in pull mode "
                f"(assignment.groups.{group}.pull is off)"
            )
        if not in_group(load.agent, group):
            raise AssignmentError(f"agent {load.agent.id!r} does not serve skill group {group!r}")

    def _next(self, queues: list[str], load: AgentLoad, now: float) -> Eff[Chat | None]:
        """The oldest waiting chat at the heads of ``queues`` the agent may take (not excluded
        for it; with capacity per channel, a chat of a channel it has room for)."""
        agent_id = load.agent.id
        by_channel = has_channel_rules(load.agent)
        best: tuple[float, Chat] | None = None
        for queue in queues:
            heads = yield from call(QueueStore.peek, queue, _PEEK)
            for chat_id, score in heads:
                if best is not None and score >= best[0]:
                    break
                chat = yield from call(ChatStore.get, ChatId(chat_id))
                if chat is None or chat.state not in WAITING or queue_of(chat) != queue:
                    continue  # an entry its chat disagrees with: reconcile() repairs it
                if agent_id in chat.excluded:
                    continue
                if by_channel and not fits(load, chat.channel, now):
                    continue
                best = (score, chat)
                break
        return None if best is None else best[1]

    def _take_chosen(self, load: AgentLoad, chat_id: ChatId, now: float) -> Eff[Chat]:
        agent_id = load.agent.id
        for _ in range(CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            group = self.pull_group(queue_of(chat)) if chat.state in WAITING else None
            if group is None:
                raise AssignmentError(
                    f"chat {chat_id!r} does not wait in a pull-mode skill group "
                    f"(it is {chat.state.value}; another agent may have taken it)"
                )
            self._check_pull_group(load, group)
            taken = yield from self._take(agent_id, chat, now)
            if taken is not RETRY:
                return taken
        raise ConflictError("chat", chat_id)

    def _take(self, agent_id: AgentId, chat: Chat, now: float) -> Eff[Chat | Retry]:
        """One unit: the chat assigned to the agent, its slot claimed below the limit, its
        queue entry removed, its events; RETRY when the chat moved on meanwhile."""
        reason: dict[str, Any] = {
            "via": "pull",
            "agent": agent_id,
            "group": chat.skill_group,
            "waited_s": round(now - queued_at(chat, now), 3),
        }
        new, items = plan_assignment(chat, agent_id, reason, now)
        remove, cancel = leaving(chat)
        # the agent's own choice: its channel capacity holds, the fairness cap does not (counted)
        claim = Claim(agent_id, **self.claim_terms(None, chat))
        plan = Plan(new, items, claim=claim, remove=remove, cancel=cancel, owned=True)
        try:
            applied = yield from self.commit(chat, plan, now)
        except PreconditionFailed as exc:
            if exc.reason in ("version", "missing"):
                return RETRY
            if exc.reason == "agent_unavailable":
                raise AssignmentError(
                    f"agent {agent_id!r} cannot take a chat now (not online or at the "
                    "reception limit; pending offers count toward it)"
                ) from None
            raise
        assert applied.chat is not None
        return applied.chat
