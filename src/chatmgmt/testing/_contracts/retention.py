"""The retention contract (:meth:`~chatmgmt.ports.ChatStore.purge`): chats that are over go
whole after their retention time, oldest first, in bounded batches; nothing else is touched."""

from __future__ import annotations

from ...model import (
    AgentId,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    ReceptionMode,
    Sticky,
)
from ...ports import QueuePush, retention_start
from ._support import StorageCase, chat, create, event, message, nxt, run_threads, update

__all__ = ["RetentionContract"]


def _over(chat_id: str, at: float, state: ChatState = ChatState.ENDED, **kwargs: object) -> Chat:
    """A chat that is over (its retention starts at ``at``)."""
    return chat(chat_id, state=state, updated_at=at, **kwargs)


class RetentionContract(StorageCase):
    """Purging chats whose retention ran out (``ChatStore.purge``)."""

    def test_purge_takes_chats_that_are_over_oldest_first(self) -> None:
        """Ended, abandoned and answered left messages older than ``before`` go, oldest
        first, at most ``limit`` per call, with their messages; the count is returned."""
        s = self.storage
        create(s, _over("e1", 30.0), message=message("m1", "e1", "bye", 29.0))
        create(s, _over("e2", 10.0, ChatState.ABANDONED))
        answered = _over("e3", 20.0, ChatState.LEFT_MESSAGE, last_agent_message_at=20.0)
        create(s, answered, message=message("m3", "e3", "answer", 20.0))
        create(s, _over("young", 100.0))
        assert s.chats.purge(50.0, 0) == 0
        assert s.chats.purge(50.0, 2) == 2
        assert s.chats.get(ChatId("e2")) is None and s.chats.get(ChatId("e3")) is None
        assert s.chats.messages(ChatId("e3")) == []
        assert s.chats.get(ChatId("e1")) is not None
        assert s.chats.purge(50.0, 10) == 1
        assert s.chats.get(ChatId("e1")) is None
        assert s.chats.messages(ChatId("e1")) == []
        assert s.chats.purge(50.0, 10) == 0
        assert [c.id for c in s.chats.list()] == ["young"]
        assert [c.id for c in s.chats.list(ChatState.ENDED)] == ["young"]
        assert s.chats.list(ChatState.ABANDONED) == []
        assert s.chats.list(ChatState.LEFT_MESSAGE) == []
        assert s.chats.purge(100.0, 10) == 0  # strictly before
        assert s.chats.purge(100.5, 10) == 1
        # a purged id may be used again: the new chat starts afresh
        create(s, chat("e1"))
        assert s.chats.get(ChatId("e1")) == chat("e1")
        assert s.chats.messages(ChatId("e1")) == []

    def test_purge_never_touches_open_chats_or_unanswered_messages(self) -> None:
        """Open chats (however old) and left messages nobody answered stay; so do their
        queue entries, and unacknowledged events."""
        s = self.storage
        create(s, chat("q", updated_at=1.0), push=QueuePush("g", 1.0))
        create(s, chat("a", state=ChatState.ACTIVE, agent_id=AgentId("ann"), updated_at=1.0))
        always_on = chat("u", mode=ReceptionMode.ALWAYS_ON, state=ChatState.UNASSIGNED)
        create(s, always_on)
        left = chat("l", state=ChatState.LEFT_MESSAGE, updated_at=1.0)
        create(s, left, push=QueuePush("submissions/g", 1.0), events=(event(1, "l", 1),))
        create(s, _over("e", 1.0), events=(event(2, "e", 1),))
        pending = s.outbox.pending()
        assert s.chats.purge(1e9, 100) == 1
        assert sorted(c.id for c in s.chats.list()) == ["a", "l", "q", "u"]
        assert s.queues.length("g") == 1 and s.queues.length("submissions/g") == 1
        assert s.outbox.pending() == pending

    def test_a_chat_that_changes_follows_its_new_retention(self) -> None:
        """The retention start follows every change: an ended Always On chat opened again
        is kept; ended again, it counts from its new last change."""
        s = self.storage
        ended = _over("c", 5.0, mode=ReceptionMode.ALWAYS_ON)
        create(s, ended)
        reopened = nxt(ended, state=ChatState.UNASSIGNED, updated_at=6.0)
        update(s, reopened)
        assert retention_start(reopened) is None
        assert s.chats.purge(1e9, 10) == 0
        again = nxt(reopened, state=ChatState.ENDED, updated_at=50.0)
        update(s, again)
        assert s.chats.purge(40.0, 10) == 0
        answered = _over("l", 1.0, ChatState.LEFT_MESSAGE)
        create(s, answered)  # not answered yet: kept
        assert s.chats.purge(40.0, 10) == 0
        update(s, nxt(answered, last_agent_message_at=2.0, updated_at=2.0))
        assert s.chats.purge(40.0, 10) == 1
        assert s.chats.purge(60.0, 10) == 1
        assert s.chats.list() == []

    def test_purge_drops_old_sticky_marks_of_its_customers(self) -> None:
        """A purged chat's customer loses a sticky mark recorded before ``before``; a newer
        mark, and other customers' marks, stay."""
        s = self.storage
        old = Sticky("p-old", AgentId("ann"), 3.0, "closed")
        create(s, _over("c1", 3.0, customer=CustomerInfo(partner_id="p-old")), sticky=old)
        new = Sticky("p-new", AgentId("ann"), 80.0, "closed")
        create(s, _over("c2", 4.0, customer=CustomerInfo(partner_id="p-new")), sticky=new)
        other = Sticky("p-other", AgentId("bob"), 1.0, "offline")
        create(s, chat("c3", customer=CustomerInfo(partner_id="p-other")), sticky=other)
        create(s, _over("c4", 5.0, customer=CustomerInfo()))  # anonymous
        assert s.chats.purge(50.0, 10) == 3
        assert s.chats.sticky("p-old") is None
        assert s.chats.sticky("p-new") == new
        assert s.chats.sticky("p-other") == other

    def test_purge_is_per_namespace(self) -> None:
        """A purge sees its own namespace only."""
        s, t = self.storage, self.new_storage("other")
        create(s, _over("c", 1.0))
        create(t, _over("c", 1.0))
        assert s.chats.purge(10.0, 10) == 1
        assert s.chats.get(ChatId("c")) is None
        assert t.chats.get(ChatId("c")) is not None

    def test_concurrent_purges_delete_each_chat_once(self) -> None:
        """Purges from many threads at once: every chat is counted exactly once."""
        s = self.storage
        total = 60
        for i in range(total):
            create(s, _over(f"c{i}", float(i)), message=message(f"m{i}", f"c{i}"))
        counts = run_threads(self.threads, lambda i: s.chats.purge(1e9, 7))
        rest = s.chats.purge(1e9, total)
        assert sum(counts) + rest == total
        assert s.chats.list() == []
