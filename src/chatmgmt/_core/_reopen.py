"""Reopen an ended Always On chat: into its group's pool, or to its last agent.

One unit of work each time: the chat's compare-and-set from ``ENDED``, and either the claim of
the last agent (below its limit, ONLINE: the store checks it inside the unit) or the chat's pool
entry, with the ``chat.reopened`` event. When the claim fails (the agent is full, offline or
gone) nothing was committed and the reopen goes to the pool instead, saying why in the event's
``fallback``. A chat reopened into its pool is then routed like any waiting chat.

A customer's message to an ended chat reopens it the same way (:mod:`._messages`), in the
message's own unit, by the ``reopen`` settings.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import lifecycle as lc
from .._plan import Items, Plan
from .._text import check_text
from ..assignment import RouteRequest
from ..assignment._reopen import plan_reopen
from ..errors import PreconditionFailed, ValidationError
from ..model import AgentId, AgentStatus, Chat, ChatId, ChatState, Message
from ..ports import AgentStore
from ..settings._reopen import REOPEN_TARGETS
from ._base import RETRY, Retry
from ._ops import Eff, call
from ._pull import Pull

__all__ = ["Reopening"]


class Reopening(Pull):
    """``reopen()``, and the choice of the agent a reopen goes to."""

    def reopen(self, chat_id: ChatId, to: str, by: str, now: float) -> Eff[Chat]:
        """Reopen the ended chat ``to`` its group's pool or its last agent (falling back to
        the pool), then route it from the pool when it went there; the chat as it is then."""
        if to not in REOPEN_TARGETS:
            raise ValidationError(f"to: expected 'pool' or 'last_agent', got {to!r}")
        check_text("by", by)

        def attempt() -> Eff[Chat | Retry]:
            chat = yield from self.get_chat(chat_id)
            lc.check_reopen(self.settings, chat, now, customer=False)
            agent, fallback = yield from self.reopen_target(chat, to)

            def planner(agent: AgentId | None, fallback: str | None) -> Plan:
                opened = lc.reopened(chat, now)
                return self.reopen_plan(chat, opened, [], to, agent, fallback, by, now)

            return (yield from self.commit_reopen(chat, planner, agent, fallback, now))

        new = yield from self.retrying("chat", chat_id, attempt)
        return (yield from self.after_reopen(new, now))

    def reopen_target(self, chat: Chat, to: str) -> Eff[tuple[AgentId | None, str | None]]:
        """The agent to claim for a reopen ``to`` (None: the pool) and, when the last agent was
        asked for and cannot be tried, why: ``no_last_agent``, ``agent_excluded`` (it timed
        out on this chat), ``agent_gone`` (not registered) or ``agent_offline``."""
        if to != "last_agent":
            return None, None
        if not chat.served_by:
            return None, "no_last_agent"
        agent = chat.served_by[-1]
        if agent in chat.excluded:
            return None, "agent_excluded"
        load = yield from call(AgentStore.get, agent)
        if load is None:
            return None, "agent_gone"
        if load.agent.status is not AgentStatus.ONLINE:
            return None, "agent_offline"
        return agent, None

    def reopen_plan(
        self,
        stored: Chat,
        opened: Chat,
        items: Items,
        requested: str,
        agent: AgentId | None,
        fallback: str | None,
        by: str,
        now: float,
        message: Message | None = None,
    ) -> Plan:
        """:func:`~chatmgmt.assignment._reopen.plan_reopen` with this manager's settings and
        the claim's terms (an explicit choice of agent: no fairness cap)."""
        terms = self.claim_terms(None, stored)
        return plan_reopen(
            self.settings,
            stored,
            opened,
            items,
            requested=requested,
            agent=agent,
            fallback=fallback,
            by=by,
            now=now,
            terms=terms,
            message=message,
        )

    def commit_reopen(
        self,
        stored: Chat,
        planner: Callable[[AgentId | None, str | None], Plan],
        agent: AgentId | None,
        fallback: str | None,
        now: float,
    ) -> Eff[Chat | Retry]:
        """Commit the reopen ``planner`` plans for ``agent``; when the store refuses the
        agent's claim, plan and commit it into the pool instead (with why). RETRY when the chat
        moved on meanwhile (or was purged: reading it again says so)."""
        try:
            return (yield from self._commit_once(stored, planner(agent, fallback), now))
        except PreconditionFailed as exc:
            if exc.reason != "agent_unavailable" or agent is None:
                raise
        fallback = yield from self.why_unavailable(agent)
        return (yield from self._commit_once(stored, planner(None, fallback), now))

    def _commit_once(self, stored: Chat, plan: Plan, now: float) -> Eff[Chat | Retry]:
        try:
            applied = yield from self.commit(stored, plan, now)
        except PreconditionFailed as exc:
            if exc.reason in ("version", "missing"):
                return RETRY
            raise
        assert applied.chat is not None
        return applied.chat

    def why_unavailable(self, agent: AgentId) -> Eff[str]:
        """Why the store refused ``agent``'s claim, as read just after: ``agent_gone``,
        ``agent_offline`` or ``agent_full``."""
        load = yield from call(AgentStore.get, agent)
        if load is None:
            return "agent_gone"
        if load.agent.status is not AgentStatus.ONLINE:
            return "agent_offline"
        return "agent_full"

    def after_reopen(self, chat: Chat, now: float) -> Eff[Chat]:
        """Route a chat just reopened into its pool (as a waiting chat is); else it as is."""
        if chat.state is not ChatState.UNASSIGNED or chat.queue is None:
            return chat
        routed = yield from self.route(chat, chat, RouteRequest(), now)
        if routed.state is ChatState.UNASSIGNED and routed.queue is not None:
            # still waiting: nobody was free, or the chat moved on meanwhile (the customer
            # wrote again) and this routing gave up; the drain hands out what its pool holds
            # from the chats as stored now
            yield from self.drain(routed.queue, now)
            return (yield from self.get_chat(chat.id))
        return routed
