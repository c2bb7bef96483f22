"""The :class:`~chatmgmt.ports.TimerStore` contract: timers are set and cancelled by
:meth:`~chatmgmt.ports.Storage.apply`; ``claim_due`` leases due timers earliest first;
``cancel(key, due_at)`` drops a fired timer's lease unless it was rescheduled."""

from __future__ import annotations

import attrs

from ...model import Chat, ChatId, Timer
from ...ports import Change, Storage
from ._support import StorageCase, chat, create, nxt, run_threads, update

__all__ = ["TimerStoreContract"]


def _schedule(s: Storage, *timers: Timer, cancel: tuple[str, ...] = ()) -> Chat:
    """Set ``timers`` (and cancel ``cancel``) in one change of the chat ``timers-host``."""
    current = s.chats.get(ChatId("timers-host"))
    if current is None:
        new = chat("timers-host")
        create(s, new, schedule=timers, cancel=cancel)
        return new
    new = nxt(current)
    update(s, new, schedule=timers, cancel=cancel)
    return new


class TimerStoreContract(StorageCase):
    """Deadlines: leases, cancellation, rescheduling by key."""

    def test_timers_schedule_claim_cancel(self) -> None:
        """Due timers are leased earliest first; a lease hides them until it ends; cancel
        with ``due_at`` spares a timer that moved."""
        s = self.storage
        t1 = Timer("k1", 10.0, "c1", "auto_transfer", 1, {"agent_id": "ann"})
        t2 = Timer("k2", 5.0, "c2", "queue_wait", 2, {"queue": "queue/g"})
        t3 = Timer("k3", 10.0, "c3", "x")
        t4 = Timer("k4", 50.0, "c4", "x")
        _schedule(s, t1, t2)
        _schedule(s, t3, t4)
        assert s.timers.claim_due(4.0, 10, 30.0) == []
        assert s.timers.claim_due(10.0, 2, 30.0) == [t2, t1]
        assert s.timers.claim_due(10.0, 10, 30.0) == [t3]
        assert s.timers.claim_due(39.0, 10, 30.0) == []  # leased until 40
        leased = s.timers.claim_due(40.0, 10, 30.0)
        assert sorted(t.key for t in leased) == ["k1", "k2", "k3"]
        assert all(t.due_at == 40.0 for t in leased)
        s.timers.cancel("k1", 40.0)  # not due at 40 any more (re-leased to 70): survives
        s.timers.cancel("k2", 70.0)  # still due at 70: removed
        s.timers.cancel("k2", 70.0)
        s.timers.cancel("k3")
        s.timers.cancel("k3")
        s.timers.cancel("missing")
        due = s.timers.claim_due(1000.0, 10, 30.0)
        assert [t.key for t in due] == ["k4", "k1"]
        assert due[0] == t4 and due[1] == Timer("k1", 70.0, "c1", "auto_transfer", 1, t1.payload)

    def test_timer_reschedule_replaces_and_change_cancels(self) -> None:
        """Scheduling a key again replaces its deadline; a change's ``cancel`` drops timers
        (idempotent) before its ``schedule`` sets new ones."""
        s = self.storage
        _schedule(s, Timer("k", 10.0, "c", "x", 1))
        _schedule(s, Timer("k", 20.0, "c", "x", 2))
        assert s.timers.claim_due(15.0, 10, 5.0) == []
        assert s.timers.claim_due(20.0, 10, 5.0) == [Timer("k", 20.0, "c", "x", 2)]
        _schedule(s, Timer("k", 30.0, "c", "x", 3))
        s.timers.cancel("k", 25.0)  # the lease's deadline: the rescheduled timer survives
        assert s.timers.claim_due(30.0, 10, 5.0) == [Timer("k", 30.0, "c", "x", 3)]
        _schedule(s, Timer("a", 1.0, "c", "x"), Timer("b", 1.0, "c", "x"))
        _schedule(cancel=("a", "a", "nothing"), s=s)
        _schedule(s, Timer("b", 2.0, "c", "y"), cancel=("b",))  # cancel first, then set
        assert s.timers.claim_due(100.0, 10, 5.0) == [
            Timer("b", 2.0, "c", "y"),
            Timer("k", 35.0, "c", "x", 3),
        ]

    def test_a_change_without_a_chat_sets_and_cancels_a_timer(self) -> None:
        """A change with ``chat=None`` under the guard "this chat does not exist" sets and
        cancels timers (an agent's leave grace timer, kept under a pseudo chat id holding a
        control character, which no chat id holds); it creates no chat."""
        s = self.storage
        pseudo = ChatId("\x1fagent:ann")
        timer = Timer("\x1fagent:ann:agent_left", 10.0, pseudo, "agent_left", 0, {"since": 4.0})
        s.apply(Change(pseudo, None, 4.0, schedule=(timer,)))
        s.apply(Change(pseudo, None, 5.0, schedule=(attrs.evolve(timer, due_at=12.0),)))
        assert s.chats.get(pseudo) is None
        assert s.timers.claim_due(11.0, 10, 30.0) == []
        assert s.timers.claim_due(12.0, 10, 30.0) == [attrs.evolve(timer, due_at=12.0)]
        s.apply(Change(pseudo, None, 6.0, cancel=(timer.key,)))
        assert s.timers.claim_due(1000.0, 10, 30.0) == []
        assert s.chats.get(pseudo) is None

    def test_concurrent_timer_claims_fire_each_timer_once(self) -> None:
        """Workers claiming due timers together never get the same timer."""
        s = self.storage
        _schedule(s, *(Timer(f"k{i}", float(i % 7), f"c{i}", "x") for i in range(60)))

        def claim(i: int) -> list[str]:
            got: list[str] = []
            while True:
                batch = s.timers.claim_due(100.0, 4, 1000.0)
                if not batch:
                    return got
                got.extend(t.key for t in batch)

        keys = [k for chunk in run_threads(min(self.threads, 8), claim) for k in chunk]
        assert sorted(keys) == sorted(f"k{i}" for i in range(60))
