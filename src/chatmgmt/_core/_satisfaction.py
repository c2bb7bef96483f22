"""Satisfaction: invitations and ratings, each one compare-and-set of the chat."""

from __future__ import annotations

from collections.abc import Sequence

from .. import lifecycle as lc
from .._plan import Plan
from .._text import check_text
from ..errors import ConflictError, InvalidTransitionError, NotFoundError
from ..model import Chat, ChatId, ChatState, EndReason, MessageId, Timer, evolve
from ..ports import CustomerStore
from ..settings import SatisfactionSettings
from ..webhook import _payloads as payloads
from ._base import RETRY, Retry
from ._customers import Customers
from ._ops import Eff, call

__all__ = ["Satisfaction"]


class Satisfaction(Customers):
    """Invite the customer to rate; take the rating; remind once."""

    def invite_rating(self, chat_id: ChatId, by: str, now: float) -> Eff[Chat]:
        """The agent invites the customer to rate the chat (when the chat's rules allow); the
        ``invite_prompt`` (when set) is stored as a system message with it, and the reminder
        timer (when ``reminder_after_s``) scheduled, in the same unit of work."""
        check_text("by", by)
        trigger = lc.InviteTrigger.AGENT
        invited_at = yield from self.customer_gate(chat_id, trigger, None, now)

        def planner(chat: Chat) -> Plan:
            rules = lc.satisfaction_rules(self.settings, chat)
            refusal = lc.invitation_refusal(
                rules,
                chat,
                lc.satisfaction_of(chat),
                trigger=trigger,
                now=now,
                customer_invited_at=invited_at,
            )
            if refusal is not None:
                raise InvalidTransitionError(chat.id, chat.state.value, f"invite:{refusal.value}")
            new, items = lc.plan_invite(
                rules, chat, trigger, by, now, customer_invited_at=invited_at
            )
            message_id = MessageId(self.new_id("msg"))
            message, more, timers = lc.invitation_extras(rules, new, now, message_id=message_id)
            return Plan(new, [*items, *more], schedule=timers, message=message)

        _old, new = yield from self.update(chat_id, planner, now)
        return new

    def customer_gate(
        self, chat_id: ChatId, trigger: lc.InviteTrigger, reason: EndReason | None, now: float
    ) -> Eff[float | None]:
        """The per-customer minimum interval (``min_interval_s``), before the unit of work
        that may invite: the customer's last invitation time as read from their CRM record,
        for :func:`lc.invitation_refusal` (None: no limit applies).

        When the chat's rules would invite now (the chat as it will be after ending for
        ``reason`` at chat end) and the customer may be invited, their record's
        ``last_invited_at`` is set to ``now`` first (a compare-and-set on the record): of two
        concurrent invitations of one customer only one finds the interval free. The
        reservation is not undone when the chat's unit then fails or invites nobody (the
        customer misses one invitation, never gets two). Nothing is read unless
        ``min_interval_s`` is set somewhere in the satisfaction settings."""
        section = self.settings.satisfaction
        if not section.min_interval_s and not _interval_overridden(section):
            return None
        chat = yield from self.get_chat(chat_id)
        partner_id = chat.customer.partner_id
        rules = lc.satisfaction_rules(self.settings, chat)
        if not rules.min_interval_s or not partner_id:
            return None
        view = chat
        if reason is not None:  # the chat as the end will leave it
            if not chat.state.is_open:
                return None
            view = evolve(chat, state=ChatState.ENDED, end_reason=reason, ended_at=now)
        state = lc.satisfaction_of(view)
        if lc.invitation_refusal(rules, view, state, trigger=trigger, now=now) is not None:
            return None  # no invitation either way

        def attempt() -> Eff[float | Retry | None]:
            customer = yield from call(CustomerStore.get, partner_id)
            if customer is None:
                return None  # no CRM record: the interval cannot be kept (docs say so)
            last = customer.last_invited_at
            refusal = lc.invitation_refusal(
                rules, view, state, trigger=trigger, now=now, customer_invited_at=last
            )
            if refusal is not None:
                return last
            reserved = evolve(customer, last_invited_at=now, version=customer.version + 1)
            try:
                yield from call(CustomerStore.replace, reserved, customer.version, ())
            except ConflictError:
                return RETRY
            return last

        return (yield from self.retrying("customer", partner_id, attempt))

    def remind_rating(self, timer: Timer, chat: Chat, now: float) -> Eff[bool]:
        """The rating reminder fired: store the ``reminder_prompt`` and raise
        ``satisfaction.reminded`` unless the chat no longer needs it; True when it did."""
        message_id = MessageId(self.new_id("msg"))
        plan = lc.plan_reminder(self.settings, chat, timer, now, message_id=message_id)
        if plan is None:
            return False
        try:  # read again and planned again on a lost race (a rating, a message)
            old, new = yield from self.update(
                chat.id,
                lambda c: lc.plan_reminder(self.settings, c, timer, now, message_id=message_id),
                now,
            )
        except NotFoundError:  # purged meanwhile
            return False
        return new is not old

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

        def planner(chat: Chat) -> Plan:
            before = lc.satisfaction_of(chat)
            after = lc.rate(
                lc.satisfaction_rules(self.settings, chat),
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
            # the reminder, if one is pending, is not needed any more
            pending = before.invitations and before.reminded_at is None
            cancel = (lc.reminder_key(chat.id),) if pending else ()
            return Plan(evolve(chat, satisfaction=after.to_dict()), [item], cancel=cancel)

        _old, new = yield from self.update(chat_id, planner, now)
        return new


def _interval_overridden(section: SatisfactionSettings) -> bool:
    """Some group or channel of ``section`` sets ``min_interval_s``."""
    return any(
        "min_interval_s" in partial
        for overrides in (section.group_rules, section.channels)
        for partial in overrides.values()
    )
