"""The delivery-store contract suite: every promise of :class:`~chatmgmt.ports.DeliveryStore`.

Subclass a suite in a test module (its name must start with ``Test``) and implement the hook::

    from chatmgmt.testing import DeliveryStoreContract

    class TestMyDeliveryStore(DeliveryStoreContract):
        def make_store(self, namespace):
            return MyDeliveryStore(self.database, namespace)

* :class:`DeliveryStoreContract` checks the sync port: idempotent ``add`` (per delivery id and
  per event id, buffered events included), per-chat order (a later delivery of a chat waits
  for the earlier one; replays go to the back), leases and their expiry, oldest-due-first
  claims, retries, dead letters (ordered by death, ``since``), late finishes, health
  (``failing_since``), exactly-once ``disable``, ``enable``, batch buffers and ``seal``,
  ``purge``, exact round trips (bytes bodies and responses, floats, ``None`` statuses),
  concurrent claims from threads that never lease a delivery twice, tenant isolation and
  hostile ids (``:``, ``{``, ``}``, ``*``, quotes, SQL, ``%``... are data, never syntax).
* :class:`AsyncDeliveryStoreContract` runs the same checks through an async face
  (``make_async_store``), every call awaited on an event loop thread, plus a test of its own
  with ``asyncio.gather``.

Every ``make_store`` call within one test must return a store over the **same** database or
server (only the namespace differs); each test gets fresh, unique namespaces. ``close_store``
(default: ``store.close()`` when it exists) is called for every store at the end of a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

from ..ports import (
    AsyncDeliveryStore,
    Attempt,
    BufferedEvent,
    Delivery,
    DeliveryStatus,
    DeliveryStore,
)
from ..webhook._catalogue import EventType, make_event
from ._contracts._support import HOSTILE_STRINGS, _Awaiting, _OnLoopThread

__all__ = ["AsyncDeliveryStoreContract", "DeliveryStoreContract"]

NOW = 1_764_000_000.0
EP = "ep"


def _d(
    i: int | str,
    chat: str | None = "c",
    at: float = NOW,
    *,
    ep: str = EP,
    chats: Sequence[str] | None = None,
) -> Delivery:
    keys = tuple(chats) if chats is not None else ((chat,) if chat else ())
    return Delivery(f"e{i}", ep, "t", (f"e{i}",), keys, b"{}", at, at)


def _event(n: int, chat: str = "c_1") -> Any:
    data = {
        "chat_id": chat,
        "channel": "web",
        "skill_group": "",
        "partner_id": "u_1",
        "message_id": f"m_{n}",
        "role": "customer",
        "sender": "u_1",
        "text": f"message {n}",
        "moderation": "none",
    }
    return make_event(
        f"evt_{chat}_{n:04d}", EventType.MESSAGE_CUSTOMER, NOW + n, data, chat_id=chat, seq=n
    )


def _ok(at: float = NOW) -> Attempt:
    return Attempt(at, 200, 0.1)


def _fail(at: float = NOW) -> Attempt:
    return Attempt(at, 500, 0.1, b"oops")


def _ids(ds: Sequence[Delivery]) -> list[str]:
    return [d.id for d in ds]


class DeliveryStoreContract:
    """The contract of :class:`~chatmgmt.ports.DeliveryStore`; implement :meth:`make_store`.

    ``self.store`` is a fresh store (unique namespace) in every test; :meth:`new_store` opens
    another namespace on the same database. ``threads`` sets how many threads the concurrency
    test starts.
    """

    threads: int = 8

    # hooks ---------------------------------------------------------------------

    def make_store(self, namespace: str) -> DeliveryStore:
        """Hook: a delivery store for ``namespace`` over the database shared by this test."""
        raise NotImplementedError("subclass DeliveryStoreContract and implement make_store()")

    def close_store(self, store: DeliveryStore) -> None:
        """Hook: release what :meth:`make_store` opened (default: ``store.close()``)."""
        close = getattr(store, "close", None)
        if callable(close):
            close()

    # fixtures ------------------------------------------------------------------

    def setup_method(self, method: Any = None) -> None:
        """xunit hook: a fresh namespace prefix and ``self.store``."""
        self._prefix = f"wh{uuid.uuid4().hex[:12]}"
        self._opened: list[DeliveryStore] = []
        self.store = self.new_store("main")

    def teardown_method(self, method: Any = None) -> None:
        """xunit hook: close every store this test opened."""
        opened, self._opened = self._opened, []
        for store in reversed(opened):
            with contextlib.suppress(Exception):
                self.close_store(store)

    def new_store(self, suffix: str = "") -> DeliveryStore:
        """Another store on the same database, namespace ``<unique prefix><suffix>``."""
        store = self.make_store(f"{self._prefix}{suffix}")
        self._opened.append(store)
        return store

    # add, order, leases ----------------------------------------------------------

    def test_add_is_idempotent_and_orders_per_chat(self) -> None:
        """Duplicates add nothing; a later delivery of a chat waits; leases expire."""
        s = self.store
        assert s.add([_d(1), _d(2), _d(3, chat="other"), _d(4, chat=None)]) == 4
        assert s.add([_d(1), _d(2)]) == 0
        # a different delivery id carrying an event already fanned out is a duplicate too
        dup = Delivery("x", EP, "t", ("e1",), ("c",), b"{}", NOW, NOW)
        assert s.add([dup]) == 0
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["e1", "e3", "e4"]  # e2 waits for e1
        assert s.claim_due(EP, NOW, 10, 30) == []  # leased
        s.finish(EP, "e1", _ok(), DeliveryStatus.DELIVERED, NOW)
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["e2"]
        # an abandoned lease expires
        assert set(_ids(s.claim_due(EP, NOW + 31, 10, 30))) == {"e2", "e3", "e4"}
        assert _ids(s.deliveries(EP)) == ["e1", "e2", "e3", "e4"]

    def test_claim_is_oldest_due_first_and_respects_limit(self) -> None:
        """Due deliveries come oldest due first, ties in order of addition; not-yet-due wait."""
        s = self.store
        s.add([_d(1, "a", NOW + 5), _d(2, "b", NOW + 1), _d(3, "c", NOW + 1), _d(4, "d", NOW + 9)])
        assert s.claim_due(EP, NOW, 10, 30) == []
        assert _ids(s.claim_due(EP, NOW + 5, 2, 30)) == ["e2", "e3"]
        assert _ids(s.claim_due(EP, NOW + 5, 2, 30)) == ["e1"]
        assert s.claim_due(EP, NOW + 5, 0, 30) == []
        # leases end at NOW + 35; ties in order of addition
        assert _ids(s.claim_due(EP, NOW + 100, 10, 30)) == ["e4", "e1", "e2", "e3"]

    def test_a_delivery_of_two_chats_waits_for_both(self) -> None:
        """A batch spanning chats a and b waits for the earlier deliveries of a and of b."""
        s = self.store
        s.add([_d(1, "a"), _d(2, "b"), _d(3, chats=("a", "b")), _d(4, "b")])
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["e1", "e2"]
        s.finish(EP, "e1", _ok(), DeliveryStatus.DELIVERED, NOW)
        assert s.claim_due(EP, NOW, 10, 30) == []  # still behind e2 in chat b
        s.finish(EP, "e2", _ok(), DeliveryStatus.DELIVERED, NOW)
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["e3"]
        s.finish(EP, "e3", _ok(), DeliveryStatus.DELIVERED, NOW)
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["e4"]

    # retries, dead letters, replay ------------------------------------------------

    def test_retry_dead_replay_and_health(self) -> None:
        """Retries wait for their time; a dead letter unblocks its chat; replay starts a round."""
        s = self.store
        s.add([_d(1), _d(2)])
        [_first] = s.claim_due(EP, NOW, 10, 30)
        h = s.finish(EP, "e1", _fail(), DeliveryStatus.PENDING, NOW + 5)
        assert h.failing_since == NOW
        assert s.claim_due(EP, NOW + 4, 10, 30) == []
        [again] = s.claim_due(EP, NOW + 5, 10, 30)
        assert again.id == "e1" and again.next_attempt_at == NOW + 5
        assert len(again.attempts) == 1
        s.finish(EP, "e1", _fail(NOW + 5), DeliveryStatus.DEAD, 0, "gave up")
        assert _ids(s.dead_letters()) == ["e1"]
        assert s.dead_letters(since=NOW + 6) == []
        dead = s.get(EP, "e1")
        assert dead is not None and dead.dead_reason == "gave up" and dead.finished_at == NOW + 5
        # e2 is no longer blocked by the dead e1
        assert _ids(s.claim_due(EP, NOW + 5, 10, 30)) == ["e2"]
        h = s.finish(EP, "e2", _ok(NOW + 6), DeliveryStatus.DELIVERED, 0)
        assert h.failing_since is None
        assert s.replay(EP, "e1", NOW + 10)
        assert not s.replay(EP, "e1", NOW + 10)  # no longer dead
        assert not s.replay(EP, "nope", NOW + 10)
        replayed = s.get(EP, "e1")
        assert replayed is not None
        assert (replayed.round_start, replayed.round_attempts, len(replayed.attempts)) == (2, 0, 2)
        assert replayed.status is DeliveryStatus.PENDING and replayed.finished_at is None
        assert replayed.dead_reason == ""
        assert _ids(s.claim_due(EP, NOW + 10, 10, 30)) == ["e1"]
        assert s.purge(NOW + 100) == 1  # e2 (delivered)
        assert s.get(EP, "e2") is None
        assert _ids(s.deliveries(EP)) == ["e1"]

    def test_replay_goes_behind_what_is_queued_for_the_chat(self) -> None:
        """A replayed dead letter waits for the deliveries already queued for its chat."""
        s = self.store
        s.add([_d(1), _d(2)])
        s.claim_due(EP, NOW, 10, 30)
        s.finish(EP, "e1", _fail(), DeliveryStatus.DEAD, 0, "gave up")
        assert s.replay(EP, "e1", NOW + 1)
        assert _ids(s.claim_due(EP, NOW + 1, 10, 30)) == ["e2"]
        s.finish(EP, "e2", _ok(), DeliveryStatus.DELIVERED, 0)
        assert _ids(s.claim_due(EP, NOW + 1, 10, 30)) == ["e1"]

    def test_dead_letters_order_since_and_replay_since(self) -> None:
        """Dead letters come in the order they died; ``since`` and the endpoint filter."""
        s = self.store
        s.add([_d(i, chat=f"c{i}") for i in range(4)] + [_d(9, ep="other")])
        s.claim_due(EP, NOW, 10, 30)
        s.claim_due("other", NOW, 10, 30)
        for i, at in ((2, NOW + 1), (0, NOW + 2), (3, NOW + 3)):
            s.finish(EP, f"e{i}", _fail(at), DeliveryStatus.DEAD, 0, "gave up")
        s.finish("other", "e9", _fail(NOW + 2), DeliveryStatus.DEAD, 0, "gave up")
        assert _ids(s.dead_letters(EP)) == ["e2", "e0", "e3"]
        assert _ids(s.dead_letters(EP, since=NOW + 2)) == ["e0", "e3"]
        assert set(_ids(s.dead_letters())) == {"e0", "e2", "e3", "e9"}
        assert _ids(s.dead_letters("other")) == ["e9"]
        assert s.replay_since(NOW + 2, NOW + 10, EP) == 2
        assert _ids(s.dead_letters(EP)) == ["e2"]
        assert _ids(s.dead_letters("other")) == ["e9"]
        assert s.replay_since(0.0, NOW + 10) == 2
        assert s.dead_letters() == []
        assert set(_ids(s.claim_due(EP, NOW + 10, 10, 30))) == {"e0", "e2", "e3"}

    def test_late_finish_keeps_the_attempt_and_a_success_counts(self) -> None:
        """A finish after the delivery already ended keeps its attempt; ok revives a dead one."""
        s = self.store
        s.add([_d(1), _d(2, chat="x")])
        s.claim_due(EP, NOW, 10, 30)
        s.finish(EP, "e1", _ok(NOW + 1), DeliveryStatus.DELIVERED, 0)
        s.finish(EP, "e1", _fail(NOW + 2), DeliveryStatus.PENDING, NOW + 9)
        d1 = s.get(EP, "e1")
        assert d1 is not None and d1.status is DeliveryStatus.DELIVERED
        assert [a.status for a in d1.attempts] == [200, 500]
        s.finish(EP, "e2", _fail(NOW + 1), DeliveryStatus.DEAD, 0, "gave up")
        s.finish(EP, "e2", _ok(NOW + 2), DeliveryStatus.DELIVERED, 0)
        d2 = s.get(EP, "e2")
        assert d2 is not None and d2.status is DeliveryStatus.DELIVERED
        assert len(d2.attempts) == 2
        assert s.claim_due(EP, NOW + 100, 10, 30) == []
        # a finish for an unknown delivery still updates the health
        assert s.finish(EP, "ghost", _fail(NOW + 3), DeliveryStatus.PENDING, 0).failing_since
        assert s.health(EP).failing_since == NOW + 3

    # health, disable, enable ------------------------------------------------------

    def test_health_of_unknown_endpoint_and_failing_streak(self) -> None:
        """Unknown endpoints are healthy; the first failure starts the streak, success ends it."""
        s = self.store
        h = s.health("nobody")
        assert (h.endpoint_id, h.failing_since, h.disabled) == ("nobody", None, False)
        s.add([_d(1), _d(2, chat="x"), _d(3, chat="y")])
        s.claim_due(EP, NOW, 10, 30)
        assert s.finish(EP, "e1", _fail(NOW + 1), DeliveryStatus.PENDING, NOW + 9).failing_since
        h = s.finish(EP, "e2", _fail(NOW + 2), DeliveryStatus.PENDING, NOW + 9)
        assert h.failing_since == NOW + 1  # the streak started at the first failure
        assert s.finish(EP, "e3", _ok(NOW + 3), DeliveryStatus.DELIVERED, 0).failing_since is None
        assert s.health(EP).failing_since is None

    def test_disable_dead_letters_pending(self) -> None:
        """Disable is exactly-once, dead-letters pending deliveries; enable and replay."""
        s = self.store
        s.add([_d(1), _d(2, chat="x"), _d(3)])
        s.claim_due(EP, NOW, 1, 30)
        s.finish(EP, "e1", _ok(), DeliveryStatus.DELIVERED, 0)
        assert s.disable(EP, "gone", NOW)
        assert not s.disable(EP, "gone", NOW)
        h = s.health(EP)
        assert (h.disabled, h.disabled_reason, h.disabled_at) == (True, "gone", NOW)
        assert s.claim_due(EP, NOW, 10, 30) == []
        dead = s.dead_letters(EP)
        assert set(_ids(dead)) == {"e2", "e3"}
        assert all(d.dead_reason == "endpoint disabled (gone)" for d in dead)
        delivered = s.get(EP, "e1")
        assert delivered is not None and delivered.status is DeliveryStatus.DELIVERED
        s.enable(EP)
        s.enable(EP)
        h = s.health(EP)
        assert (h.disabled, h.failing_since) == (False, None)
        assert s.replay_since(NOW, NOW + 1) == 2
        assert set(_ids(s.claim_due(EP, NOW + 1, 10, 30))) == {"e2", "e3"}

    def test_disable_is_exactly_once_under_threads(self) -> None:
        """Of many concurrent disables, exactly one wins."""
        s = self.store
        wins: list[bool] = []
        lock = threading.Lock()

        def worker() -> None:
            won = s.disable(EP, "failing", NOW)
            with lock:
                wins.append(won)

        threads = [threading.Thread(target=worker) for _ in range(self.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wins.count(True) == 1

    def test_stored_statuses_are_kept(self) -> None:
        """A delivery added dead (fan-out to a disabled endpoint) is kept, never claimed."""
        s = self.store
        dead = Delivery(
            "e1",
            EP,
            "t",
            ("e1",),
            ("c",),
            b"{}",
            NOW,
            NOW,
            status=DeliveryStatus.DEAD,
            dead_reason="endpoint disabled (gone)",
            finished_at=NOW,
        )
        assert s.add([dead, _d(2)]) == 2
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["e2"]  # the dead one blocks nothing
        assert s.get(EP, "e1") == dead
        assert _ids(s.dead_letters(EP)) == ["e1"]
        assert _ids(s.deliveries(EP, DeliveryStatus.PENDING)) == ["e2"]

    # batches ----------------------------------------------------------------------

    def test_seal_batches(self) -> None:
        """Buffered events keep their order; seal is atomic and once; sealed ids stay seen."""
        s = self.store
        events = [_event(i) for i in range(3)]
        assert s.add([], [BufferedEvent(EP, e, NOW + i) for i, e in enumerate(events)]) == 3
        assert s.add([], [BufferedEvent(EP, events[0], NOW)]) == 0  # duplicate fan-out
        buffered = s.buffered(EP)
        assert [b.event.id for b in buffered] == [e.id for e in events]
        assert buffered[1] == BufferedEvent(EP, events[1], NOW + 1)
        assert s.buffered("other") == []
        ids = (events[0].id, events[1].id)
        batch = Delivery("b1", EP, "t", ids, ("c_1",), b"[]", NOW, NOW)
        assert s.seal(EP, ids, batch)
        assert not s.seal(EP, ids, batch)
        other = Delivery("b2", EP, "t", (events[2].id, "missing"), ("c_1",), b"[]", NOW, NOW)
        assert not s.seal(EP, other.event_ids, other)  # one is not buffered: no change
        assert [b.event.id for b in s.buffered(EP)] == [events[2].id]
        assert s.add([], [BufferedEvent(EP, events[0], NOW)]) == 0  # sealed ids stay seen
        assert _ids(s.claim_due(EP, NOW, 10, 30)) == ["b1"]
        assert s.get(EP, "b1") == batch

    # round trips ------------------------------------------------------------------

    def test_round_trip_is_exact(self) -> None:
        """Every field reads back equal: bytes, floats, None statuses, attempts in order."""
        s = self.store
        body = bytes(range(256)) + b'{"x": "\\u00e9"}'
        d = Delivery(
            "msg_\u00e9:{1}",
            EP,
            "message.customer",
            ("evt 1", "evt'2"),
            ("chat:{1}", "chat*2"),
            body,
            NOW + 0.123456789,
            NOW + 1.000000001,
        )
        s.add([d])
        assert s.get(EP, d.id) == d
        [claimed] = s.claim_due(EP, NOW + 2, 10, 30)
        assert claimed == d
        a1 = Attempt(NOW + 2.25, None, 15.000001, b"", "timeout: no response within 15 s")
        a2 = Attempt(NOW + 3.5, 503, 0.000123, b"\x00\xff" * 5000, "")
        s.finish(EP, d.id, a1, DeliveryStatus.PENDING, NOW + 7.123456789012)
        [claimed] = s.claim_due(EP, NOW + 8, 10, 30)
        assert claimed.attempts == (a1,) and claimed.next_attempt_at == NOW + 7.123456789012
        s.finish(EP, d.id, a2, DeliveryStatus.DEAD, 0, "gave up: 'quotes' and \"more\"")
        got = s.get(EP, d.id)
        assert got is not None
        assert got.attempts == (a1, a2) and got.body == body
        assert got.dead_reason == "gave up: 'quotes' and \"more\""
        assert got.finished_at == NOW + 3.5
        assert s.deliveries(EP) == [got] == s.deliveries(status=DeliveryStatus.DEAD)
        assert s.get(EP, "missing") is None
        assert s.get("missing", d.id) is None

    def test_purge_forgets_only_old_delivered(self) -> None:
        """Purge drops delivered deliveries finished before the cut-off, nothing else."""
        s = self.store
        s.add([_d(i, chat=f"c{i}") for i in range(4)])
        s.claim_due(EP, NOW, 10, 30)
        s.finish(EP, "e0", _ok(NOW + 1), DeliveryStatus.DELIVERED, 0)
        s.finish(EP, "e1", _ok(NOW + 5), DeliveryStatus.DELIVERED, 0)
        s.finish(EP, "e2", _fail(NOW + 1), DeliveryStatus.DEAD, 0, "x")
        assert s.purge(NOW + 2) == 1
        assert _ids(s.deliveries(EP)) == ["e1", "e2", "e3"]
        assert s.purge(NOW + 2) == 0
        assert s.purge(NOW + 10) == 1
        assert _ids(s.deliveries(EP)) == ["e2", "e3"]

    # concurrency, isolation -------------------------------------------------------

    def test_concurrent_claims_never_double_lease(self) -> None:
        """Threads claiming at once get every delivery exactly once."""
        s = self.store
        s.add([_d(i, chat=f"c{i}") for i in range(200)])
        got: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                batch = s.claim_due(EP, NOW, 7, 1000)
                if not batch:
                    return
                with lock:
                    got.extend(x.id for x in batch)

        threads = [threading.Thread(target=worker) for _ in range(self.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(f"e{i}" for i in range(200))

    def test_concurrent_finish_keeps_every_attempt(self) -> None:
        """Threads finishing deliveries at once lose no attempt and no delivery."""
        s = self.store
        s.add([_d(i, chat=f"c{i % 5}") for i in range(60)])
        lock = threading.Lock()
        done: list[str] = []
        deadline = time.monotonic() + 60

        def worker() -> None:
            while time.monotonic() < deadline:
                batch = s.claim_due(EP, NOW, 3, 1000)
                if not batch:
                    with lock:
                        if len(done) == 60:
                            return
                    time.sleep(0.001)
                    continue
                for d in batch:
                    s.finish(EP, d.id, _ok(), DeliveryStatus.DELIVERED, 0)
                    with lock:
                        done.append(d.id)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(done) == sorted(f"e{i}" for i in range(60))
        delivered = s.deliveries(EP, DeliveryStatus.DELIVERED)
        assert len(delivered) == 60 and all(len(d.attempts) == 1 for d in delivered)

    def test_namespaces_are_isolated(self) -> None:
        """Two namespaces with the same endpoint and delivery ids never see each other."""
        a, b = self.store, self.new_store("other")
        a.add([_d(1), _d(2, chat="x")])
        assert b.deliveries() == [] and b.get(EP, "e1") is None
        assert b.add([_d(1)]) == 1  # not a duplicate in b
        assert _ids(b.claim_due(EP, NOW, 10, 30)) == ["e1"]
        assert b.disable(EP, "gone", NOW)
        assert not a.health(EP).disabled
        assert _ids(a.claim_due(EP, NOW, 10, 30)) == ["e1", "e2"]
        assert a.dead_letters() == [] and _ids(b.dead_letters()) == ["e1"]
        assert a.replay_since(0.0, NOW) == 0
        a.finish(EP, "e1", _ok(), DeliveryStatus.DELIVERED, 0)
        assert b.purge(NOW + 100) == 0
        assert a.purge(NOW + 100) == 1

    def test_hostile_ids_are_data(self) -> None:
        """Endpoint, delivery, event and chat ids full of syntax are stored verbatim."""
        s = self.store
        hostile = HOSTILE_STRINGS
        for ep in hostile[:8]:
            ds = [
                Delivery(f"{h}#{i}", ep, "t", (f"{h}!{i}",), (h,), h.encode(), NOW, NOW)
                for i, h in enumerate(hostile)
            ]
            assert s.add(ds) == len(hostile)
        for ep in hostile[:8]:
            got = s.deliveries(ep)
            assert [d.id for d in got] == [f"{h}#{i}" for i, h in enumerate(hostile)]
            assert all(d.endpoint_id == ep for d in got)
            claimed = s.claim_due(ep, NOW, 1000, 30)
            assert len(claimed) == len(set(hostile))  # one head per distinct chat
        assert len(s.deliveries()) == 8 * len(hostile)
        ep = hostile[0]
        assert s.disable(ep, "x", NOW)
        assert not s.health(hostile[1]).disabled


# --------------------------------------------------------------------------- async suite


class AsyncDeliveryStoreContract(_OnLoopThread, DeliveryStoreContract):
    """The same contract for an async face; implement :meth:`make_async_store`.

    Each test runs an event loop in a thread; every call of the sync suite is awaited on it
    (from many threads at once in the concurrency tests).
    """

    def make_async_store(self, namespace: str) -> AsyncDeliveryStore:
        """Hook: an async delivery store for ``namespace`` (called on the loop's thread)."""
        raise NotImplementedError(
            "subclass AsyncDeliveryStoreContract and implement make_async_store()"
        )

    async def aclose_async_store(self, store: AsyncDeliveryStore) -> None:
        """Hook: release what :meth:`make_async_store` opened (default: ``aclose()``)."""
        aclose = getattr(store, "aclose", None)
        if callable(aclose):
            await aclose()

    def make_store(self, namespace: str) -> DeliveryStore:
        """A sync bridge over :meth:`make_async_store` (do not override)."""

        async def make() -> AsyncDeliveryStore:
            return self.make_async_store(namespace)

        store = self._loop_thread.run(make())
        return cast(DeliveryStore, _Awaiting(store, self._loop_thread))

    def close_store(self, store: DeliveryStore) -> None:
        """Closes the bridged async store (do not override)."""
        bridge = cast(_Awaiting, store)
        self._loop_thread.run(self.aclose_async_store(bridge.target))

    def test_async_gather_claims_never_double_lease(self) -> None:
        """Many claims awaited at once on one loop hand out every delivery once."""
        bridge = cast(_Awaiting, self.store)
        store = bridge.target

        async def main() -> list[str]:
            await store.add([_d(i, chat=f"c{i}") for i in range(100)])
            batches = await asyncio.gather(*(store.claim_due(EP, NOW, 5, 1000) for _ in range(30)))
            return [d.id for batch in batches for d in batch]

        got = self._loop_thread.run(main())
        assert sorted(got) == sorted(f"e{i}" for i in range(100))
