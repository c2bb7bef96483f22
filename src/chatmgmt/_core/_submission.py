"""Leave a message: the form, the submission pool, handing left messages to agents, replies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import lifecycle as lc
from .._plan import Plan
from .._text import check_message_text
from ..errors import InvalidTransitionError, PreconditionFailed
from ..lifecycle._plans import submission_pool
from ..model import (
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Message,
    MessageId,
    MessageRole,
    Sticky,
    evolve,
)
from ..ports import PICKED, ChatStore, QueueStore, RankedClaim
from ..webhook import _payloads as payloads
from ._messages import Messages
from ._ops import Eff, call

__all__ = ["Submissions"]


class Submissions(Messages):
    """The customer leaves a message; agents get them and answer."""

    def submit_message(self, chat_id: ChatId, values: Mapping[str, Any], now: float) -> Eff[Chat]:
        """The customer leaves a message instead of waiting: validate, pool, assign, push."""

        def planner(chat: Chat) -> Plan:
            return lc.plan_left_message(self.settings, chat, values, now)

        _old, new = yield from self.update(chat_id, planner, now)
        assigned = yield from self._assign_submission(new, now)
        return assigned if assigned is not None else new

    def _assign_submission(self, chat: Chat, now: float) -> Eff[Chat | None]:
        """Hand a left message to an agent by the group's strategy, in one unit that leaves the
        pool. It holds no live slot: the pick counts for the ranking only (``hold=False``)."""
        from ..assignment import Target

        pool = submission_pool(chat.skill_group)
        claim, reason, _empty, census = yield from self.claim_for(
            Target("group", chat.skill_group, "submission"), chat, now, fresh=False
        )
        if claim is None:
            return None
        if isinstance(claim, RankedClaim):
            claim = RankedClaim(claim.group, claim.ranking, claim.excluded, hold=False)
            agent: AgentId = PICKED
        else:
            agent = claim.agent_id
            claim = None  # a custom pick: no slot to take, nothing to check
        new = evolve(chat, agent_id=agent, route_reason=reason, served_by=(*chat.served_by, agent))
        item = payloads.offline_message_assigned(chat.id, agent, reason)
        plan = Plan(new, [item], claim=claim, remove=(pool,), census=census)
        try:
            applied = yield from self.commit(chat, plan, now)
        except PreconditionFailed:
            return None
        return applied.chat

    def drain_submissions(self, load: AgentLoad, now: float) -> Eff[int]:
        """An agent came online: hand out the left messages waiting in its groups."""
        done = 0
        for group in sorted({*load.agent.skill_groups, ""}):
            pool = submission_pool(group)
            skipped = 0
            while True:
                heads = yield from call(QueueStore.peek, pool, skipped + 1)
                if len(heads) <= skipped:
                    break
                chat = yield from call(ChatStore.get, heads[skipped][0])
                if chat is None or chat.state is not ChatState.LEFT_MESSAGE or chat.agent_id:
                    skipped += 1  # an entry its chat disagrees with: reconcile() repairs it
                    continue
                if (yield from self._assign_submission(chat, now)) is None:
                    break
                done += 1
        return done

    def reply_offline_message(
        self, chat_id: ChatId, agent_id: AgentId, text: str, now: float
    ) -> Eff[Message]:
        """An agent answers a left message: an offline message to the customer, pushed by
        webhook; it opens the sticky window for that agent."""
        check_message_text(text, self.settings.limits.max_message_chars)
        message = Message(
            MessageId(self.new_id("msg")), chat_id, MessageRole.AGENT, agent_id, text, now
        )

        def planner(chat: Chat) -> Plan:
            if chat.state is not ChatState.LEFT_MESSAGE:
                raise InvalidTransitionError(chat.id, chat.state.value, "reply_offline_message")
            sticky = None
            if chat.customer.partner_id:
                sticky = Sticky(chat.customer.partner_id, agent_id, now, "offline")
            new = evolve(chat, agent_id=chat.agent_id or agent_id, last_agent_message_at=now)
            items = [
                payloads.message_stored(message),
                payloads.offline_message_replied(chat.id, agent_id, text),
            ]
            return Plan(new, items, message=message, sticky=sticky)

        yield from self.update(chat_id, planner, now)
        return message
