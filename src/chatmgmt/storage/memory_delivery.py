"""In-memory :class:`~chatmgmt.ports.DeliveryStore`: the webhook dispatcher's delivery state.

Thread-safe (one lock serializes every operation, so each is atomic). Durable only for the life
of the process: use it for tests, demos and single-process hosts that accept losing pending
retries on restart; a host that must not lose them implements the port over its database.

Per endpoint it keeps the deliveries in the order they were added, a queue per chat of the
pending deliveries (only a chat's head may be claimed), and a heap of the claimable heads keyed
by their next attempt time, so :meth:`MemoryDeliveryStore.claim_due` costs O(k log n).
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence

import attrs

from ..ports import (
    AsyncDeliveryStore,
    Attempt,
    BufferedEvent,
    Delivery,
    DeliveryStatus,
    EndpointHealth,
)

__all__ = ["AsyncMemoryDeliveryStore", "MemoryDeliveryStore"]

_BUFFERED = "\x00buffered"


class _Rec:
    __slots__ = ("delivery", "lease_until", "order", "version")

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.version = 0
        self.order = 0
        self.lease_until = 0.0


class _Endpoint:
    def __init__(self, endpoint_id: str) -> None:
        self.records: dict[str, _Rec] = {}
        self.seen: dict[str, str] = {}
        self.buffer: OrderedDict[str, BufferedEvent] = OrderedDict()
        self.chats: dict[str, deque[str]] = {}
        self.heap: list[tuple[float, int, str, int]] = []
        self.health = EndpointHealth(endpoint_id)
        self.order = 0


class MemoryDeliveryStore:
    """In-memory, thread-safe delivery store (see the module docstring).

    >>> store = MemoryDeliveryStore()
    >>> store.health("crm").disabled
    False
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._eps: dict[str, _Endpoint] = {}

    def _ep(self, endpoint_id: str) -> _Endpoint:
        ep = self._eps.get(endpoint_id)
        if ep is None:
            ep = self._eps[endpoint_id] = _Endpoint(endpoint_id)
        return ep

    # ------------------------------------------------------------------ ordering helpers

    def _ready(self, ep: _Endpoint, rec: _Rec) -> bool:
        d = rec.delivery
        return all(ep.chats[k][0] == d.id for k in d.chat_keys)

    def _push(self, ep: _Endpoint, rec: _Rec, at: float) -> None:
        heapq.heappush(ep.heap, (at, rec.order, rec.delivery.id, rec.version))

    def _enqueue(self, ep: _Endpoint, rec: _Rec) -> None:
        ep.order += 1
        rec.order = ep.order
        rec.version += 1
        for key in rec.delivery.chat_keys:
            ep.chats.setdefault(key, deque()).append(rec.delivery.id)
        if self._ready(ep, rec):
            self._push(ep, rec, rec.delivery.next_attempt_at)

    def _dequeue(self, ep: _Endpoint, rec: _Rec) -> None:
        rec.version += 1
        did = rec.delivery.id
        for key in rec.delivery.chat_keys:
            queue = ep.chats.get(key)
            if not queue:
                continue
            was_head = queue[0] == did
            try:
                queue.remove(did)
            except ValueError:
                continue
            if not queue:
                del ep.chats[key]
            elif was_head:
                head = ep.records[queue[0]]
                if self._ready(ep, head):
                    self._push(ep, head, max(head.delivery.next_attempt_at, head.lease_until))

    # ------------------------------------------------------------------ the port

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        added = 0
        with self._lock:
            for d in deliveries:
                ep = self._ep(d.endpoint_id)
                if d.id in ep.records or any(e in ep.seen for e in d.event_ids):
                    continue
                rec = _Rec(d)
                ep.records[d.id] = rec
                for e in d.event_ids:
                    ep.seen[e] = d.id
                if d.status is DeliveryStatus.PENDING:
                    self._enqueue(ep, rec)
                added += 1
            for b in buffered:
                ep = self._ep(b.endpoint_id)
                if b.event.id in ep.seen:
                    continue
                ep.seen[b.event.id] = _BUFFERED
                ep.buffer[b.event.id] = b
                added += 1
        return added

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        with self._lock:
            ep = self._eps.get(endpoint_id)
            return [] if ep is None else list(ep.buffer.values())

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        with self._lock:
            ep = self._ep(endpoint_id)
            if delivery.id in ep.records or any(e not in ep.buffer for e in event_ids):
                return False
            for e in event_ids:
                del ep.buffer[e]
                ep.seen[e] = delivery.id
            rec = _Rec(delivery)
            ep.records[delivery.id] = rec
            if delivery.status is DeliveryStatus.PENDING:
                self._enqueue(ep, rec)
            return True

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        out: list[Delivery] = []
        with self._lock:
            ep = self._eps.get(endpoint_id)
            if ep is None or ep.health.disabled:
                return out
            heap = ep.heap
            while heap and len(out) < limit and heap[0][0] <= now:
                _at, _order, did, version = heapq.heappop(heap)
                rec = ep.records.get(did)
                if (
                    rec is None
                    or rec.version != version
                    or rec.delivery.status is not DeliveryStatus.PENDING
                ):
                    continue
                rec.version += 1
                rec.lease_until = now + lease_s
                self._push(ep, rec, rec.lease_until)
                out.append(rec.delivery)
        return out

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.finish`."""
        with self._lock:
            ep = self._ep(endpoint_id)
            rec = ep.records.get(delivery_id)
            if rec is not None:
                d = rec.delivery
                attempts = (*d.attempts, attempt)
                if d.status is not DeliveryStatus.PENDING:
                    # a late finish (its lease ran out and another worker took over): keep the
                    # attempt; a success still counts
                    if attempt.ok and d.status is DeliveryStatus.DEAD:
                        rec.delivery = attrs.evolve(
                            d, attempts=attempts, status=DeliveryStatus.DELIVERED
                        )
                    else:
                        rec.delivery = attrs.evolve(d, attempts=attempts)
                elif status is DeliveryStatus.PENDING:
                    rec.delivery = attrs.evolve(
                        d, attempts=attempts, next_attempt_at=next_attempt_at
                    )
                    rec.version += 1
                    rec.lease_until = 0.0
                    self._push(ep, rec, next_attempt_at)
                else:
                    rec.delivery = attrs.evolve(
                        d,
                        attempts=attempts,
                        status=status,
                        dead_reason=reason if status is DeliveryStatus.DEAD else "",
                        finished_at=attempt.at,
                    )
                    rec.lease_until = 0.0
                    self._dequeue(ep, rec)
            h = ep.health
            if attempt.ok:
                if h.failing_since is not None:
                    ep.health = attrs.evolve(h, failing_since=None)
            elif h.failing_since is None:
                ep.health = attrs.evolve(h, failing_since=attempt.at)
            return ep.health

    def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        with self._lock:
            ep = self._eps.get(endpoint_id)
            return EndpointHealth(endpoint_id) if ep is None else ep.health

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        with self._lock:
            ep = self._ep(endpoint_id)
            if ep.health.disabled:
                return False
            ep.health = attrs.evolve(
                ep.health, disabled=True, disabled_reason=reason, disabled_at=now
            )
            for rec in ep.records.values():
                if rec.delivery.status is DeliveryStatus.PENDING:
                    rec.version += 1
                    rec.lease_until = 0.0
                    rec.delivery = attrs.evolve(
                        rec.delivery,
                        status=DeliveryStatus.DEAD,
                        dead_reason=f"endpoint disabled ({reason})",
                        finished_at=now,
                    )
            ep.chats.clear()
            ep.heap.clear()
            return True

    def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        with self._lock:
            ep = self._ep(endpoint_id)
            ep.health = EndpointHealth(endpoint_id)

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        with self._lock:
            ep = self._eps.get(endpoint_id)
            rec = None if ep is None else ep.records.get(delivery_id)
            return None if rec is None else rec.delivery

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        with self._lock:
            eps = (
                list(self._eps.values())
                if endpoint_id is None
                else [e for e in (self._eps.get(endpoint_id),) if e is not None]
            )
            return [
                r.delivery
                for ep in eps
                for r in ep.records.values()
                if status is None or r.delivery.status is status
            ]

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        dead = [
            d
            for d in self.deliveries(endpoint_id, DeliveryStatus.DEAD)
            if since is None or (d.finished_at is not None and d.finished_at >= since)
        ]
        dead.sort(key=lambda d: d.finished_at or 0.0)
        return dead

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        with self._lock:
            ep = self._eps.get(endpoint_id)
            rec = None if ep is None else ep.records.get(delivery_id)
            if ep is None or rec is None or rec.delivery.status is not DeliveryStatus.DEAD:
                return False
            d = rec.delivery
            rec.delivery = attrs.evolve(
                d,
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                round_start=len(d.attempts),
                dead_reason="",
                finished_at=None,
            )
            rec.lease_until = 0.0
            self._enqueue(ep, rec)
            return True

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        with self._lock:
            return sum(
                self.replay(d.endpoint_id, d.id, now) for d in self.dead_letters(endpoint_id, since)
            )

    def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        n = 0
        with self._lock:
            for ep in self._eps.values():
                gone = [
                    did
                    for did, r in ep.records.items()
                    if r.delivery.status is DeliveryStatus.DELIVERED
                    and (r.delivery.finished_at or 0.0) < before
                ]
                for did in gone:
                    for e in ep.records.pop(did).delivery.event_ids:
                        ep.seen.pop(e, None)
                n += len(gone)
        return n

    def aio(self) -> AsyncDeliveryStore:
        """The async face of this store, sharing its state."""
        return AsyncMemoryDeliveryStore(self)


class AsyncMemoryDeliveryStore:
    """Async face of a :class:`MemoryDeliveryStore` (its operations never block)."""

    def __init__(self, sync: MemoryDeliveryStore | None = None) -> None:
        self.sync = sync if sync is not None else MemoryDeliveryStore()

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`MemoryDeliveryStore.add`."""
        return self.sync.add(deliveries, buffered)

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`MemoryDeliveryStore.buffered`."""
        return self.sync.buffered(endpoint_id)

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`MemoryDeliveryStore.seal`."""
        return self.sync.seal(endpoint_id, event_ids, delivery)

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`MemoryDeliveryStore.claim_due`."""
        return self.sync.claim_due(endpoint_id, now, limit, lease_s)

    async def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`MemoryDeliveryStore.finish`."""
        return self.sync.finish(endpoint_id, delivery_id, attempt, status, next_attempt_at, reason)

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`MemoryDeliveryStore.health`."""
        return self.sync.health(endpoint_id)

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`MemoryDeliveryStore.disable`."""
        return self.sync.disable(endpoint_id, reason, now)

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`MemoryDeliveryStore.enable`."""
        self.sync.enable(endpoint_id)

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`MemoryDeliveryStore.get`."""
        return self.sync.get(endpoint_id, delivery_id)

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`MemoryDeliveryStore.deliveries`."""
        return self.sync.deliveries(endpoint_id, status)

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`MemoryDeliveryStore.dead_letters`."""
        return self.sync.dead_letters(endpoint_id, since)

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`MemoryDeliveryStore.replay`."""
        return self.sync.replay(endpoint_id, delivery_id, now)

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`MemoryDeliveryStore.replay_since`."""
        return self.sync.replay_since(since, now, endpoint_id)

    async def purge(self, before: float) -> int:
        """See :meth:`MemoryDeliveryStore.purge`."""
        return self.sync.purge(before)
