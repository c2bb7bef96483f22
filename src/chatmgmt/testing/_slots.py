"""Slot operations on their own, for tests of rankings and loads.

In the library a slot never moves on its own: it moves inside the unit of work of its chat's
change (:meth:`chatmgmt.ports.Storage.apply`). These helpers apply a :class:`~chatmgmt.ports.
Change` that carries only the slot operation, guarded by "this chat does not exist", so a test
can load agents with made-up chats and check a ranking's picks. When the chat exists, the
change is guarded by its current version instead (the chat itself is left unchanged).
"""

from __future__ import annotations

from ..errors import PreconditionFailed
from ..model import AgentId, ChatId, Ranking
from ..ports import Change, Claim, RankedClaim, Storage

__all__ = ["claim_ranked", "claim_slot", "release_slot"]


def claim_slot(
    storage: Storage,
    agent_id: str,
    chat_id: str,
    now: float = 0.0,
    tiebreak: float = 0.0,
    channel: str = "",
) -> bool:
    """Give ``agent_id`` the made-up chat ``chat_id`` (of ``channel``, for an agent with
    capacity per channel) if it has room for it; False when not."""
    claim = Claim(AgentId(agent_id), channel=channel)
    change = Change(
        ChatId(chat_id), _version(storage, chat_id), now, claim=claim, tiebreak=tiebreak
    )
    try:
        storage.apply(change)
    except PreconditionFailed:
        return False
    return True


def claim_ranked(
    storage: Storage,
    group: str,
    ranking: Ranking,
    chat_id: str,
    excluded: frozenset[AgentId] = frozenset(),
    now: float = 0.0,
    tiebreak: float = 0.0,
    channel: str = "",
) -> AgentId | None:
    """Let the store pick the first eligible agent of ``group`` by ``ranking`` with room for
    the made-up chat ``chat_id`` (of ``channel``); None when nobody is eligible."""
    claim = RankedClaim(group, ranking, excluded, channel=channel)
    change = Change(
        ChatId(chat_id), _version(storage, chat_id), now, claim=claim, tiebreak=tiebreak
    )
    try:
        return storage.apply(change).agent_id
    except PreconditionFailed as exc:
        if exc.reason == "no_agent":
            return None
        raise


def release_slot(
    storage: Storage, agent_id: str, chat_id: str, now: float = 0.0, tiebreak: float = 0.0
) -> None:
    """Take the made-up chat ``chat_id`` back from ``agent_id`` (idempotent)."""
    change = Change(
        ChatId(chat_id),
        _version(storage, chat_id),
        now,
        release=AgentId(agent_id),
        tiebreak=tiebreak,
    )
    storage.apply(change)


def _version(storage: Storage, chat_id: str) -> int | None:
    chat = storage.chats.get(ChatId(chat_id))
    return None if chat is None else chat.version
