"""A chat's life: open, end, abandon, transfer, an admin's assignment, (in)active."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .. import lifecycle as lc
from .._plan import Plan, leaving
from .._text import check_id, check_optional_id, check_text, text_problem
from ..assignment import RouteRequest, Target
from ..assignment._plans import plan_assignment
from ..customers import should_save, trusted_partner_id
from ..errors import AssignmentError, PreconditionFailed, ValidationError
from ..lifecycle._bot import plan_bot_start
from ..model import (
    _OPEN_STATES,
    AgentId,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    EndReason,
    copier,
    evolve,
)
from ..ports import Claim
from ..webhook import EventType
from ..webhook import _payloads as payloads
from ._base import RETRY, Retry
from ._ops import Eff
from ._routing import Routing

__all__ = ["Chats"]


def _check_attributes(value: object, path: str) -> None:
    """Every string in the host's ``attributes`` (keys included, at any depth) is storable
    text; a chat holding one that is not could not be stored by SQLite, Redis or PostgreSQL."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValidationError(f"{path}: {problem}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_attributes(key, f"{path} key {key!r}")
            _check_attributes(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_attributes(item, f"{path}[{i}]")


_BLANK = Chat(id=ChatId("blank"), customer=CustomerInfo(), channel="blank")
"""Every field of a new chat at its default (open_chat copies it with the chat's values)."""
_new_chat = copier(
    Chat,
    "id",
    "customer",
    "channel",
    "skill_group",
    "mode",
    "state",
    "created_at",
    "updated_at",
    "priority",
    "route_reason",
    "attributes",
    "timers_fired",
    "unverified_partner_id",
)
"""A copy of :data:`_BLANK` with a new chat's values, in this order (the dicts its own)."""
_CHAT_END = lc.InviteTrigger.CHAT_END
_STARTED = EventType.CHAT_STARTED  # a global: cheaper to read than a class attribute


class Chats(Routing):
    """Open, end, abandon, transfer, assign and (in)activate chats."""

    def open_chat(
        self,
        info: CustomerInfo,
        request: RouteRequest,
        *,
        skill_group: str,
        signature: str | None,
        chat_id: str | None,
        attributes: Mapping[str, Any] | None,
        now: float,
        bot: str | None = None,
    ) -> Eff[Chat]:
        """Auto-save the customer, then create the chat and route it (assign, queue or pool)
        in one unit of work; with ``bot``, create it in the bot stage instead (not routed)."""
        if chat_id is not None:
            check_optional_id("chat_id", chat_id)
        if bot is not None:
            check_id("bot", bot)
        if attributes:
            _check_attributes(attributes, "attributes")
        settings = self.settings
        if request.strict:
            yield from self.require_target(request.designated_agent, request.designated_group)
        partner_id = trusted_partner_id(info, signature, settings.auto_save, now=now)
        if should_save(partner_id, info.channel, settings.auto_save):
            assert partner_id is not None
            yield from self.save_customer(info, partner_id, now)
        customer = info
        unverified = None
        if info.partner_id and partner_id is None:
            unverified = info.partner_id
            customer = attrs.evolve(info, partner_id=None)
        priority = info.vip_level
        if request.queue_first:
            priority = max(priority, settings.assignment.queue.queue_first_priority)
        mode = settings.reception_mode
        # a copy of a blank chat: Chat's validators would check the id and the channel again
        # (both checked above: check_optional_id, new_id, CustomerInfo's channel), at ~2x the
        # cost of the copy; the dicts are the new chat's own
        chat = _new_chat(
            _BLANK,
            ChatId(chat_id or f"chat_{self._ids()}"),  # new_id("chat"), no call
            customer,
            info.channel,
            skill_group,
            mode,
            self.initial_state,  # lc.initial_state(mode)
            now,
            now,
            priority,
            {},
            dict(attributes) if attributes else {},
            {},
            unverified,
        )
        # ``_value_``: the member's value without the ``value`` property's Python call
        started = [(_STARTED, {"mode": mode._value_, "priority": priority})]
        try:
            if bot is not None:
                plan = plan_bot_start(chat, bot, now, started)
                applied = yield from self.commit(None, plan, now)
                assert applied.chat is not None
                return applied.chat
            return (yield from self.route(None, chat, request, now, items=started))
        except PreconditionFailed as exc:
            if exc.reason == "exists":
                raise ValidationError(
                    f"chat_id: a chat with id {chat.id!r} exists already; give a new id"
                ) from None
            raise

    def end_chat(
        self,
        chat_id: ChatId,
        reason: EndReason,
        by: str,
        now: float,
        *,
        extra: Sequence[tuple[str, Mapping[str, Any]]] = (),
        abandon: bool = False,
    ) -> Eff[Chat]:
        """End (or abandon) a chat: record who and why, free the slot, drain the queues."""
        check_text("by", by)  # it goes into the chat and its events: storable text only
        invited_at = None
        sat = self.settings.satisfaction
        if not abandon and (sat.min_interval_s or sat.group_rules or sat.channels):
            # the rating invitation's per-customer interval, when one may be set
            invited_at = yield from self.customer_gate(chat_id, _CHAT_END, reason, now)
        old, applied = yield from self.update_applied(
            chat_id,
            lambda chat: self.ended_plan(
                chat, reason, by, now, extra=extra, abandon=abandon, customer_invited_at=invited_at
            ),
            now,
            drains=True,
        )
        if old.agent_id is not None and old.state in _OPEN_STATES:  # state.is_open
            yield from self.drain_for_agent(old.agent_id, now, applied)
        assert applied.chat is not None
        return applied.chat

    def transfer(
        self,
        chat_id: ChatId,
        *,
        to_agent: AgentId | None,
        to_group: str | None,
        by: str,
        now: float,
        automatic: bool = False,
        only_from: AgentId | None = None,
        via: str | None = None,
    ) -> Eff[Chat]:
        """Move an active chat to another agent or group (back to its queue, keeping its
        place, if nobody there is free). The old agent's slot is released in the same unit.

        ``only_from``: move it only while it is still ACTIVE with that agent (else it is
        returned as it is now); ``via`` names the rule in the explanation."""
        check_text("by", by)
        if (to_agent is None) == (to_group is None):
            raise ValidationError("transfer: give exactly one of to_agent or to_group")
        yield from self.require_target(to_agent, to_group)

        def attempt() -> Eff[Chat | Retry]:
            chat = yield from self.get_chat(chat_id)
            if only_from is not None and (
                chat.state is not ChatState.ACTIVE or chat.agent_id != only_from
            ):
                return chat  # it moved on meanwhile: nothing to do
            lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.TRANSFER)
            old_agent = chat.agent_id
            assert old_agent is not None
            excluded = chat.excluded | {old_agent} if automatic else chat.excluded
            moved = evolve(
                chat,
                excluded=excluded,
                skill_group=to_group if to_group is not None else chat.skill_group,
            )
            probe = evolve(moved, excluded=excluded | {old_agent})
            if to_agent is not None:
                if to_agent == old_agent:
                    raise AssignmentError(f"chat {chat_id!r} is already with agent {to_agent!r}")
                target = Target("agent", to_agent, "transfer")
            else:
                assert to_group is not None
                default = "auto_transfer" if automatic else "transfer"
                target = Target("group", to_group, via or default)
            before = chat.version
            done = yield from self.try_target(
                target,
                chat,
                probe,
                now,
                fresh=False,
                transfer=by,
                automatic=automatic,
                release=old_agent,
            )
            if done is not None:
                if done.version != before + 1 or done.agent_id == old_agent:
                    return RETRY  # the chat moved on meanwhile: plan again from what it is now
                yield from self.drain_for_agent(old_agent, now)
                return done
            if to_agent is not None:
                raise AssignmentError(
                    f"agent {to_agent!r} cannot take chat {chat_id!r} now "
                    "(not online, at the reception limit, or excluded)"
                )
            # nobody free in the group: back to its queue (or pool), keeping its place
            reason = {**target.describe(), "by": by, "queued": True}
            queue = self.wait_queue(chat, moved.skill_group)
            items = [
                payloads.chat_assigned(
                    None, reason, transfer=True, from_agent_id=old_agent, automatic=automatic
                )
            ]
            result = yield from self.send_back(chat, moved, queue, reason, items, old_agent, now)
            if result.state is ChatState.ACTIVE and result.agent_id == old_agent:
                return RETRY  # the chat moved on meanwhile: plan again from what it is now
            # drained only now: the drain may give the chat back to its old agent, which the
            # check above must not take for a lost race (it looped, then raised ConflictError)
            yield from self.drain(queue, now)
            yield from self.drain_for_agent(old_agent, now)
            return (yield from self.get_chat(chat_id))

        return (yield from self.retrying("chat", chat_id, attempt))

    def assign(self, chat_id: ChatId, agent_id: AgentId, by: str, now: float) -> Eff[Chat]:
        """An admin's explicit assignment of a waiting chat to an agent."""
        check_text("by", by)
        yield from self.require_agent(agent_id)

        def planner(chat: Chat) -> Plan:
            if chat.state is ChatState.ENDED:  # it reopens to the agent: the reopen's rules
                lc.check_reopen(self.settings, chat, now, customer=False)
            else:
                lc.transition(chat.id, chat.mode, chat.state, lc.ChatEvent.ASSIGN)
            reason = {"via": "admin", "agent": agent_id, "by": by}
            new, items = plan_assignment(chat, agent_id, reason, now)
            remove, cancel = leaving(chat)
            claim = Claim(agent_id, **self.claim_terms(None, chat))
            return Plan(new, items, claim=claim, remove=remove, cancel=cancel)

        try:
            _old, assigned = yield from self.update(chat_id, planner, now)
        except PreconditionFailed as exc:
            if exc.reason == "agent_unavailable":
                raise AssignmentError(
                    f"agent {agent_id!r} cannot take chat {chat_id!r} now (not online or full)"
                ) from None
            raise
        return assigned

    def set_inactive(self, chat_id: ChatId, inactive: bool, now: float) -> Eff[Chat]:
        """Mark a chat (in)active; when inactive chats do not count, its slot frees up in the
        same unit."""

        def planner(chat: Chat) -> Plan | None:
            return lc.plan_inactive(chat, inactive, "set_inactive", self.settings.assignment)

        old, new = yield from self.update(chat_id, planner, now)
        if inactive and old is not new and new.agent_id is not None:
            yield from self.drain_for_agent(new.agent_id, now)
        return new
