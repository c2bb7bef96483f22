"""The :class:`~chatmgmt.ports.QueueStore` contract (read side): order by score then insertion,
one entry per chat, a chat pushed again keeps its place; entries move only inside
:meth:`~chatmgmt.ports.Storage.apply`."""

from __future__ import annotations

from ...errors import PreconditionFailed
from ...model import ChatId
from ...ports import QueueHead, QueuePush
from ._support import StorageCase, chat, create, nxt, open_queued, run_threads, update

__all__ = ["QueueStoreContract"]


class QueueStoreContract(StorageCase):
    """Ordered waiting lines: ``peek``, ``position`` and ``length`` after pushes and removals
    made by changes."""

    def test_queue_order_push_keeps_place_remove_idempotent(self) -> None:
        """Ordered by score then insertion; a chat pushed again keeps its first place and
        score; removal is idempotent; a chat removed and pushed again goes to the back."""
        s = self.storage
        q = "queue/g"
        chats = {}
        for cid, score in (("c1", 10.0), ("c2", 5.0), ("c3", 10.0), ("c0", 10.0)):
            chats[cid] = open_queued(s, cid, q, score)  # ties: insertion order, not id order
        c1 = nxt(chats["c1"])
        update(s, c1, push=QueuePush(q, 1.0))  # already queued: keeps its place
        assert s.queues.peek(q, 10) == [("c2", 5.0), ("c1", 10.0), ("c3", 10.0), ("c0", 10.0)]
        assert s.queues.peek(q, 2) == [("c2", 5.0), ("c1", 10.0)]
        assert s.queues.peek(q, 0) == []
        assert s.queues.length(q) == 4
        assert [s.queues.position(q, ChatId(c)) for c in ("c2", "c1", "c3", "c0")] == [0, 1, 2, 3]
        assert s.queues.position(q, ChatId("nope")) is None
        c1 = nxt(c1)
        update(s, c1, remove=(q,))
        c1 = nxt(c1)
        update(s, c1, remove=(q, "queue/other"))  # idempotent
        assert s.queues.position(q, ChatId("c1")) is None
        assert s.queues.position(q, ChatId("c3")) == 1
        assert s.queues.length(q) == 3
        assert s.queues.length("queue/other") == 0
        assert s.queues.peek("queue/other", 5) == []
        c1 = nxt(c1)
        update(s, c1, push=QueuePush(q, 10.0))  # pushed again after removal: to the back
        assert [c for c, _ in s.queues.peek(q, 10)] == ["c2", "c3", "c0", "c1"]
        open_queued(s, "neg", q, -1e9)
        open_queued(s, "frac", q, 0.1 + 0.2)
        assert s.queues.peek(q, 2) == [("neg", -1e9), ("frac", 0.1 + 0.2)]

    def test_remove_and_push_in_one_change_moves_between_queues(self) -> None:
        """``remove`` runs before ``push``: a change can move a chat to another queue, or
        re-push it to the back of the same one."""
        s = self.storage
        a = open_queued(s, "a", "q1", 1.0)
        open_queued(s, "b", "q1", 2.0)
        a1 = nxt(a)
        update(s, a1, remove=("q1",), push=QueuePush("q2", 7.0))
        assert s.queues.peek("q1", 5) == [("b", 2.0)]
        assert s.queues.peek("q2", 5) == [("a", 7.0)]
        open_queued(s, "c", "q2", 7.0)
        update(s, nxt(a1), remove=("q2",), push=QueuePush("q2", 7.0))
        assert [c for c, _ in s.queues.peek("q2", 5)] == ["c", "a"]

    def test_concurrent_pushes_keep_one_entry(self) -> None:
        """Concurrent pushes of one chat (each a change from the version it read) leave one
        entry."""
        s = self.storage
        create(s, chat("c"))

        def push(i: int) -> None:
            while True:
                current = s.chats.get(ChatId("c"))
                assert current is not None
                try:
                    update(s, nxt(current), push=QueuePush("q", float(i)))
                    return
                except PreconditionFailed as exc:  # a lost compare-and-set: re-read
                    assert exc.reason == "version", exc

        run_threads(min(self.threads, 8), push)
        assert s.queues.length("q") == 1
        stored = s.chats.get(ChatId("c"))
        assert stored is not None and stored.version == min(self.threads, 8)

    def test_heads_length_first_and_oldest(self) -> None:
        """``heads`` reads several queues at once, in the order asked: each one's length, its
        first entry (by score), its oldest (pushed longest ago and still there) and when that
        chat started waiting (``queued_at``, else ``created_at``, exactly); an unknown or
        emptied queue is empty; a chat removed and pushed again is the newest."""
        s = self.storage
        q = "queue/h"
        a = open_queued(s, "a", q, 10.0, created_at=0.1 + 0.2, queued_at=1_700_000_000.123456789)
        open_queued(s, "b", q, 5.0, created_at=2.0, queued_at=3.0)  # a VIP: first, not oldest
        open_queued(s, "c", q, 7.0, created_at=4.0)
        open_queued(s, "x", "pool/h", 1.0, created_at=0.1 + 0.2)
        heads = s.queues.heads([q, "queue/none", "pool/h"])
        assert heads == [
            QueueHead(q, 3, ChatId("b"), ChatId("a"), 1_700_000_000.123456789),
            QueueHead("queue/none"),
            QueueHead("pool/h", 1, ChatId("x"), ChatId("x"), 0.1 + 0.2),
        ]
        a1 = nxt(a)
        update(s, a1, remove=(q,))
        update(s, nxt(a1), push=QueuePush(q, 10.0))  # back in: now the newest
        assert s.queues.heads([q]) == [QueueHead(q, 3, ChatId("b"), ChatId("b"), 3.0)]
        b = s.chats.get(ChatId("b"))
        assert b is not None
        update(s, nxt(b, queued_at=9.5))  # read from the chat's record
        assert s.queues.heads([q]) == [QueueHead(q, 3, ChatId("b"), ChatId("b"), 9.5)]
        assert s.queues.heads([]) == []
