"""When a chat's retention time starts (:meth:`ChatStore.purge`)."""

from __future__ import annotations

from ..model import Chat, ChatState


def retention_start(chat: Chat) -> float | None:
    """When the retention time of ``chat`` starts to run, or None while it must be kept.

    * ``ENDED`` and ``ABANDONED`` chats: from their last change (``updated_at``: the end, or a
      later rating);
    * ``LEFT_MESSAGE`` chats an agent answered (``last_agent_message_at`` set): from their last
      change (the last reply);
    * every other chat (open ones, and left messages nobody answered yet): None, never purged.

    An adapter stores this value with the chat on every :meth:`Storage.apply` (an index ordered
    by it) so that :meth:`ChatStore.purge` finds the oldest first without a scan.
    """
    state = chat.state
    if state is _ENDED or state is _ABANDONED:
        return chat.updated_at
    if state is _LEFT_MESSAGE and chat.last_agent_message_at is not None:
        return chat.updated_at
    return None


# read on every unit of work: module globals (3.11 does not specialize class attributes)
_ENDED, _ABANDONED = ChatState.ENDED, ChatState.ABANDONED
_LEFT_MESSAGE = ChatState.LEFT_MESSAGE
