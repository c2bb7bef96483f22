"""The async manager, :class:`AsyncChatManager`: it runs each operation's core generator,
awaiting the async ports it yields (re-exported by :mod:`chatmgmt.manager`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from .._core import Op, QueueStatus, resolve
from ..assignment import RouteRequest
from ..assignment._strategies import Strategy
from ..lifecycle import agent_view
from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    Customer,
    CustomerInfo,
    EndReason,
    Message,
    MessageRole,
)
from ..moderation import SensitiveWordFilter
from ..monitoring import Snapshot
from ..ports import AsyncStorage, Clock, EventSink, MessageSink
from ..settings import ChatSettings
from ._base import _Base
from ._sinks import SINK_CALLS, AsyncSinks

T = TypeVar("T")


class AsyncChatManager(_Base):
    """The async manager over async ports; the same operations as :class:`ChatManager`."""

    _sinks_type = AsyncSinks

    def __init__(
        self,
        storage: AsyncStorage | None = None,
        settings: ChatSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        strategies: Mapping[str, Strategy] | None = None,
        event_sink: EventSink | None = None,
        message_sink: MessageSink | None = None,
        word_filter: SensitiveWordFilter | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(
            settings, clock, rng, strategies, event_sink, message_sink, word_filter, ids
        )
        if storage is None:
            from ..storage.memory import MemoryStorage

            storage = MemoryStorage().aio()
        self.storage: AsyncStorage = storage
        self._stores_in(storage)

    async def _run(self, gen: Generator[Op, Any, T]) -> T:
        storage = self.storage
        sinks = self._sinks
        try:
            fn, args, kwargs = next(gen)
            while True:
                bound = resolve(fn, storage, sinks)
                try:
                    result = bound(*args, **kwargs)
                    if fn not in SINK_CALLS:
                        result = await result
                except Exception as exc:
                    fn, args, kwargs = gen.throw(exc)
                    continue
                fn, args, kwargs = gen.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def register_agent(self, agent: Agent, *, now: float | None = None) -> AgentLoad:
        """See :meth:`ChatManager.register_agent`."""
        return await self._run(self._register_agent(agent, now))

    async def set_agent_status(
        self, agent_id: str, status: AgentStatus, *, now: float | None = None
    ) -> AgentLoad:
        """See :meth:`ChatManager.set_agent_status`."""
        return await self._run(self._set_agent_status(agent_id, status, now))

    async def set_reception_limit(
        self, agent_id: str, limit: int, *, now: float | None = None
    ) -> AgentLoad:
        """See :meth:`ChatManager.set_reception_limit`."""
        return await self._run(self._set_reception_limit(agent_id, limit, now))

    async def agent(self, agent_id: str) -> AgentLoad:
        """See :meth:`ChatManager.agent`."""
        return await self._run(self._agent(agent_id))

    async def open_chat(
        self,
        customer: CustomerInfo,
        *,
        skill_group: str = "",
        request: RouteRequest | None = None,
        designated_agent: str | None = None,
        designated_group: str | None = None,
        strict: bool = False,
        queue_first: bool = False,
        identity_signature: str | None = None,
        chat_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        bot: str | None = None,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.open_chat`."""
        return await self._run(
            self._open_chat(
                customer,
                skill_group,
                request,
                designated_agent,
                designated_group,
                strict,
                queue_first,
                identity_signature,
                chat_id,
                attributes,
                bot,
                now,
            )
        )

    async def get_chat(self, chat_id: str) -> Chat:
        """See :meth:`ChatManager.get_chat`."""
        return await self._run(self._get_chat(chat_id))

    async def list_chats(
        self, *, state: ChatState | None = None, agent_id: str | None = None
    ) -> list[Chat]:
        """See :meth:`ChatManager.list_chats`."""
        return await self.storage.chats.list(state, AgentId(agent_id) if agent_id else None)

    async def messages(self, chat_id: str) -> list[Message]:
        """See :meth:`ChatManager.messages`."""
        return await self.storage.chats.messages(ChatId(chat_id))

    async def customer(self, partner_id: str) -> Customer | None:
        """See :meth:`ChatManager.customer`."""
        return await self.storage.customers.get(partner_id)

    async def queue_status(self, chat_id: str, *, now: float | None = None) -> QueueStatus | None:
        """See :meth:`ChatManager.queue_status`."""
        return await self._run(self._queue_status(chat_id, now))

    async def end_chat(
        self,
        chat_id: str,
        *,
        reason: EndReason = EndReason.AGENT,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.end_chat`."""
        return await self._run(self._end_chat(chat_id, reason, by, now))

    async def abandon(self, chat_id: str, *, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.abandon`."""
        return await self._run(self._abandon(chat_id, now))

    async def transfer(
        self,
        chat_id: str,
        *,
        to_agent: str | None = None,
        to_group: str | None = None,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.transfer`."""
        return await self._run(self._transfer(chat_id, to_agent, to_group, by, now))

    async def assign(
        self, chat_id: str, agent_id: str, *, by: str = "admin", now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.assign`."""
        return await self._run(self._assign(chat_id, agent_id, by, now))

    async def unassign(
        self,
        chat_id: str,
        *,
        by: str = "admin",
        exclude: bool = False,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.unassign`."""
        return await self._run(self._unassign(chat_id, by, exclude, now))

    async def accept_offer(self, chat_id: str, agent_id: str, *, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.accept_offer`."""
        return await self._run(self._accept_offer(chat_id, agent_id, now))

    async def decline_offer(
        self, chat_id: str, agent_id: str, *, reason: str = "", now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.decline_offer`."""
        return await self._run(self._decline_offer(chat_id, agent_id, reason, now))

    async def take_chat(
        self,
        agent_id: str,
        *,
        group: str | None = None,
        chat_id: str | None = None,
        now: float | None = None,
    ) -> Chat | None:
        """See :meth:`ChatManager.take_chat`."""
        return await self._run(self._take_chat(agent_id, group, chat_id, now))

    async def send_message(
        self,
        chat_id: str,
        text: str,
        *,
        role: MessageRole = MessageRole.CUSTOMER,
        sender: str = "",
        now: float | None = None,
    ) -> Message:
        """See :meth:`ChatManager.send_message`."""
        return await self._run(self._send_message(chat_id, text, role, sender, now))

    async def set_inactive(
        self, chat_id: str, inactive: bool = True, *, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.set_inactive`."""
        return await self._run(self._set_inactive(chat_id, inactive, now))

    async def hold_chat(
        self, chat_id: str, *, by: str, reason: str = "", now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.hold_chat`."""
        return await self._run(self._hold_chat(chat_id, by, reason, now))

    async def resume_chat(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.resume_chat`."""
        return await self._run(self._resume_chat(chat_id, by, now))

    async def submit_message(
        self, chat_id: str, values: Mapping[str, Any], *, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.submit_message`."""
        return await self._run(self._submit_message(chat_id, values, now))

    async def reply_offline_message(
        self, chat_id: str, agent_id: str, text: str, *, now: float | None = None
    ) -> Message:
        """See :meth:`ChatManager.reply_offline_message`."""
        return await self._run(self._reply_offline_message(chat_id, agent_id, text, now))

    async def invite_rating(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.invite_rating`."""
        return await self._run(self._invite_rating(chat_id, by, now))

    async def rate(
        self,
        chat_id: str,
        level: int,
        *,
        tags: Sequence[str] = (),
        comment: str = "",
        resolved: bool | None = None,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.rate`."""
        return await self._run(self._rate(chat_id, level, tags, comment, resolved, now))

    async def agent_view(self, chat_id: str) -> Chat:
        """See :meth:`ChatManager.agent_view`."""
        return agent_view(self.settings.satisfaction, await self.get_chat(chat_id))

    async def tick(self, now: float | None = None, *, limit: int = 1000) -> int:
        """See :meth:`ChatManager.tick`."""
        return await self._run(self._tick(now, limit))

    async def purge(self, *, now: float | None = None, limit: int | None = None) -> int:
        """See :meth:`ChatManager.purge`."""
        return await self._run(self._purge(now, limit))

    async def reconcile(self, *, now: float | None = None) -> dict[str, int]:
        """See :meth:`ChatManager.reconcile`."""
        return await self._run(self._reconcile(now))

    async def monitor(
        self, *, alerts: int = 20, on_hold: bool = False, now: float | None = None
    ) -> Snapshot:
        """See :meth:`ChatManager.monitor`."""
        return await self._run(self._monitor(alerts, on_hold, now))

    def observe(self, sink: EventSink) -> None:
        """See :meth:`ChatManager.observe` (gauges: feed ``record_snapshot`` yourself)."""
        self._observe(sink)

    async def handoff(
        self,
        chat_id: str,
        *,
        reason: str,
        fields: Mapping[str, Any] | None = None,
        by: str = "bot",
        skill_group: str | None = None,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.handoff`."""
        return await self._run(self._handoff(chat_id, reason, fields, by, skill_group, now))

    async def tag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.tag_chat`."""
        return await self._run(self._tag_chat(chat_id, tags, by, now))

    async def reopen(
        self,
        chat_id: str,
        *,
        to: Literal["pool", "last_agent"] = "pool",
        by: str,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.reopen`."""
        return await self._run(self._reopen(chat_id, to, by, now))

    async def untag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.untag_chat`."""
        return await self._run(self._untag_chat(chat_id, tags, by, now))

    async def join_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.join_chat`."""
        return await self._run(self._join_chat(chat_id, supervisor, role, now))

    async def leave_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.leave_chat`."""
        return await self._run(self._leave_chat(chat_id, supervisor, role, now))

    async def whisper(
        self, chat_id: str, supervisor: str, text: str, *, role: str, now: float | None = None
    ) -> Message:
        """See :meth:`ChatManager.whisper`."""
        return await self._run(self._whisper(chat_id, supervisor, text, role, now))

    async def take_over(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.take_over`."""
        return await self._run(self._take_over(chat_id, supervisor, role, now))

    async def supervisor_end(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.supervisor_end`."""
        return await self._run(self._supervisor_end(chat_id, supervisor, role, now))
