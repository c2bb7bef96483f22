"""Satisfaction: invitations and ratings, each one compare-and-set of the chat."""

from __future__ import annotations

from collections.abc import Sequence

from .. import lifecycle as lc
from .._plan import Items, Plan
from .._text import check_text
from ..errors import InvalidTransitionError
from ..model import Chat, ChatId, evolve
from ..webhook import _payloads as payloads
from ._customers import Customers
from ._ops import Eff

__all__ = ["Satisfaction"]


class Satisfaction(Customers):
    """Invite the customer to rate; take the rating."""

    def invite(
        self, chat: Chat, trigger: lc.InviteTrigger, by: str, now: float
    ) -> tuple[Chat, Items]:
        """``chat`` with the invitation recorded and its event, when the rules invite."""
        return lc.plan_invite(self.settings.satisfaction, chat, trigger, by, now)

    def invite_rating(self, chat_id: ChatId, by: str, now: float) -> Eff[Chat]:
        """The agent invites the customer to rate the chat (when the rules allow); the
        ``satisfaction.invite_prompt`` (when set) is stored as a system message with it."""
        check_text("by", by)

        def planner(chat: Chat) -> Plan:
            state = lc.satisfaction_of(chat)
            refusal = lc.invitation_refusal(
                self.settings.satisfaction, chat, state, trigger=lc.InviteTrigger.AGENT, now=now
            )
            if refusal is not None:
                raise InvalidTransitionError(chat.id, chat.state.value, f"invite:{refusal.value}")
            new, items = self.invite(chat, lc.InviteTrigger.AGENT, by, now)
            prompt = self.settings.satisfaction.invite_prompt
            message = self.system_message(chat, prompt, now) if prompt else None
            if message is not None:
                items = [*items, payloads.message_stored(message)]
            return Plan(new, items, message=message)

        _old, new = yield from self.update(chat_id, planner, now)
        return new

    def rate(
        self,
        chat_id: ChatId,
        *,
        level: int,
        tags: Sequence[str],
        comment: str,
        resolved: bool | None,
        now: float,
    ) -> Eff[Chat]:
        """The customer rates the chat; refused or overwritten by the settings' rules."""
        settings = self.settings.satisfaction

        def planner(chat: Chat) -> Plan:
            before = lc.satisfaction_of(chat)
            after = lc.rate(
                settings,
                chat,
                before,
                level=level,
                tags=tags,
                comment=comment,
                resolved=resolved,
                now=now,
            )
            rating = after.rating
            assert rating is not None
            item = payloads.satisfaction_submitted(
                rating.agent_id,
                rating.level,
                rating.levels,
                rating.label,
                rating.tags,
                rating.resolved,
                rating.comment,
                before.rating is not None,
            )
            return Plan(evolve(chat, satisfaction=after.to_dict()), [item])

        _old, new = yield from self.update(chat_id, planner, now)
        return new
