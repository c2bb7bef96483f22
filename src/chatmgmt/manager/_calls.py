"""The public operations as the core's calls: one place turns a manager method's arguments
(plain ids, enum values, ``now`` left out) into the :class:`~chatmgmt._core.Core` generator
both managers run; the sync one calls the ports it yields, the async one awaits them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .._core import Core, Eff, QueueStatus
from ..assignment import RouteRequest
from ..errors import ValidationError
from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    CustomerInfo,
    EndReason,
    Message,
    MessageRole,
)
from ..monitoring import Snapshot
from ..ports import Clock

_NO_REQUEST = RouteRequest()


class Calls:
    """The core's call of each public operation, named after it with a leading underscore."""

    _core: Core
    clock: Clock

    def _now(self, now: float | None) -> float:
        if now is None:
            return self.clock.now()
        if type(now) is not float and (isinstance(now, bool) or not isinstance(now, (int, float))):
            raise ValidationError(f"now: must be a number of seconds, got {now!r}")
        if not math.isfinite(now):  # a NaN or infinite time would disorder every queue
            raise ValidationError(f"now: must be a finite number of seconds, got {now!r}")
        return now

    def _register_agent(self, agent: Agent, now: float | None) -> Eff[AgentLoad]:
        return self._core.put_agent(agent, self._now(now))

    def _set_agent_status(
        self, agent_id: str, status: AgentStatus, now: float | None
    ) -> Eff[AgentLoad]:
        return self._core.set_agent_status(AgentId(agent_id), AgentStatus(status), self._now(now))

    def _set_reception_limit(self, agent_id: str, limit: int, now: float | None) -> Eff[AgentLoad]:
        return self._core.set_reception_limit(AgentId(agent_id), limit, self._now(now))

    def _agent(self, agent_id: str) -> Eff[AgentLoad]:
        return self._core.load(AgentId(agent_id))

    def _open_chat(
        self,
        customer: CustomerInfo,
        skill_group: str,
        request: RouteRequest | None,
        designated_agent: str | None,
        designated_group: str | None,
        strict: bool,
        queue_first: bool,
        identity_signature: str | None,
        chat_id: str | None,
        attributes: Mapping[str, Any] | None,
        bot: str | None,
        now: float | None,
    ) -> Eff[Chat]:
        if request is not None:
            req = request
        elif not designated_agent and designated_group is None and not strict and not queue_first:
            req = _NO_REQUEST  # the usual open: one shared value, nothing to build
        else:
            req = RouteRequest(
                AgentId(designated_agent) if designated_agent else None,
                designated_group,
                strict,
                queue_first,
            )
        return self._core.open_chat(
            customer,
            req,
            skill_group=skill_group,
            signature=identity_signature,
            chat_id=chat_id,
            attributes=attributes,
            now=self._now(now),
            bot=bot,
        )

    def _get_chat(self, chat_id: str) -> Eff[Chat]:
        return self._core.get_chat(ChatId(chat_id))

    def _queue_status(self, chat_id: str, now: float | None) -> Eff[QueueStatus | None]:
        return self._core.queue_status(ChatId(chat_id), self._now(now))

    def _end_chat(self, chat_id: str, reason: EndReason, by: str, now: float | None) -> Eff[Chat]:
        if reason.__class__ is not EndReason:  # a member needs no enum call
            reason = EndReason(reason)
        return self._core.end_chat(ChatId(chat_id), reason, by, self._now(now))

    def _abandon(self, chat_id: str, now: float | None) -> Eff[Chat]:
        return self._core.end_chat(
            ChatId(chat_id),
            EndReason.CUSTOMER,
            "customer",
            self._now(now),
            abandon=True,
        )

    def _transfer(
        self, chat_id: str, to_agent: str | None, to_group: str | None, by: str, now: float | None
    ) -> Eff[Chat]:
        return self._core.transfer(
            ChatId(chat_id),
            to_agent=AgentId(to_agent) if to_agent else None,
            to_group=to_group,
            by=by,
            now=self._now(now),
        )

    def _assign(self, chat_id: str, agent_id: str, by: str, now: float | None) -> Eff[Chat]:
        return self._core.assign(ChatId(chat_id), AgentId(agent_id), by, self._now(now))

    def _unassign(self, chat_id: str, by: str, exclude: bool, now: float | None) -> Eff[Chat]:
        return self._core.unassign(ChatId(chat_id), by, self._now(now), exclude=exclude)

    def _accept_offer(self, chat_id: str, agent_id: str, now: float | None) -> Eff[Chat]:
        return self._core.accept_offer(ChatId(chat_id), AgentId(agent_id), self._now(now))

    def _decline_offer(
        self, chat_id: str, agent_id: str, reason: str, now: float | None
    ) -> Eff[Chat]:
        return self._core.decline_offer(ChatId(chat_id), AgentId(agent_id), reason, self._now(now))

    def _take_chat(
        self, agent_id: str, group: str | None, chat_id: str | None, now: float | None
    ) -> Eff[Chat | None]:
        return self._core.take_chat(
            AgentId(agent_id),
            group,
            ChatId(chat_id) if chat_id is not None else None,
            self._now(now),
        )

    def _send_message(
        self, chat_id: str, text: str, role: MessageRole, sender: str, now: float | None
    ) -> Eff[Message]:
        return self._core.send_message(
            ChatId(chat_id), MessageRole(role), sender, text, self._now(now)
        )

    def _set_inactive(self, chat_id: str, inactive: bool, now: float | None) -> Eff[Chat]:
        return self._core.set_inactive(ChatId(chat_id), inactive, self._now(now))

    def _hold_chat(self, chat_id: str, by: str, reason: str, now: float | None) -> Eff[Chat]:
        return self._core.hold_chat(ChatId(chat_id), by, reason, self._now(now))

    def _resume_chat(self, chat_id: str, by: str, now: float | None) -> Eff[Chat]:
        return self._core.resume_chat(ChatId(chat_id), by, self._now(now))

    def _submit_message(
        self, chat_id: str, values: Mapping[str, Any], now: float | None
    ) -> Eff[Chat]:
        return self._core.submit_message(ChatId(chat_id), values, self._now(now))

    def _reply_offline_message(
        self, chat_id: str, agent_id: str, text: str, now: float | None
    ) -> Eff[Message]:
        return self._core.reply_offline_message(
            ChatId(chat_id), AgentId(agent_id), text, self._now(now)
        )

    def _invite_rating(self, chat_id: str, by: str, now: float | None) -> Eff[Chat]:
        return self._core.invite_rating(ChatId(chat_id), by, self._now(now))

    def _rate(
        self,
        chat_id: str,
        level: int,
        tags: Sequence[str],
        comment: str,
        resolved: bool | None,
        now: float | None,
    ) -> Eff[Chat]:
        return self._core.rate(
            ChatId(chat_id),
            level=level,
            tags=tags,
            comment=comment,
            resolved=resolved,
            now=self._now(now),
        )

    def _tick(self, now: float | None, limit: int) -> Eff[int]:
        return self._core.tick(self._now(now), limit)

    def _purge(self, now: float | None, limit: int | None) -> Eff[int]:
        return self._core.purge(self._now(now), limit)

    def _reconcile(self, now: float | None) -> Eff[dict[str, int]]:
        return self._core.reconcile(self._now(now))

    def _monitor(self, alerts: int, on_hold: bool, now: float | None) -> Eff[Snapshot]:
        if isinstance(alerts, bool) or not isinstance(alerts, int) or alerts < 0:
            raise ValidationError(f"alerts: must be an integer >= 0, got {alerts!r}")
        if not isinstance(on_hold, bool):
            raise ValidationError(f"on_hold: must be True or False, got {on_hold!r}")
        return self._core.monitor(self._now(now), alerts, on_hold)

    def _handoff(
        self,
        chat_id: str,
        reason: str,
        fields: Mapping[str, Any] | None,
        by: str,
        skill_group: str | None,
        now: float | None,
    ) -> Eff[Chat]:
        return self._core.handoff(
            ChatId(chat_id), reason, fields, by, self._now(now), skill_group=skill_group
        )

    def _tag_chat(
        self, chat_id: str, tags: tuple[str, ...], by: str, now: float | None
    ) -> Eff[Chat]:
        return self._core.tag_chat(ChatId(chat_id), tags, by, self._now(now))

    def _reopen(
        self, chat_id: str, to: Literal["pool", "last_agent"], by: str, now: float | None
    ) -> Eff[Chat]:
        return self._core.reopen(ChatId(chat_id), to, by, self._now(now))

    def _untag_chat(
        self, chat_id: str, tags: tuple[str, ...], by: str, now: float | None
    ) -> Eff[Chat]:
        return self._core.tag_chat(ChatId(chat_id), tags, by, self._now(now), remove=True)

    def _join_chat(self, chat_id: str, supervisor: str, role: str, now: float | None) -> Eff[Chat]:
        return self._core.join_chat(ChatId(chat_id), supervisor, role, self._now(now))

    def _leave_chat(self, chat_id: str, supervisor: str, role: str, now: float | None) -> Eff[Chat]:
        return self._core.join_chat(ChatId(chat_id), supervisor, role, self._now(now), leave=True)

    def _whisper(
        self, chat_id: str, supervisor: str, text: str, role: str, now: float | None
    ) -> Eff[Message]:
        return self._core.whisper(ChatId(chat_id), supervisor, role, text, self._now(now))

    def _take_over(self, chat_id: str, supervisor: str, role: str, now: float | None) -> Eff[Chat]:
        return self._core.take_over(ChatId(chat_id), supervisor, role, self._now(now))

    def _supervisor_end(
        self, chat_id: str, supervisor: str, role: str, now: float | None
    ) -> Eff[Chat]:
        return self._core.supervisor_end(ChatId(chat_id), supervisor, role, self._now(now))
