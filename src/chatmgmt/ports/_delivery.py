"""The delivery-state store: where the webhook dispatcher (:mod:`chatmgmt.delivery`) keeps what
it still has to send; its contract is the docstring of :class:`DeliveryStore`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

import attrs

from ..model import Event


class DeliveryStatus(str, enum.Enum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@attrs.frozen
class Attempt:
    """One attempt: when, the HTTP status (None: no response), latency, what came back.

    ``response`` holds at most the first 20 kB of the response body; ``error`` says what went
    wrong when there was no (acceptable) response, e.g. ``"timeout"``.
    """

    at: float
    status: int | None
    latency_s: float
    response: bytes = attrs.field(default=b"", repr=False)
    error: str = ""

    @property
    def ok(self) -> bool:
        """True for a 2xx response."""
        return self.status is not None and 200 <= self.status < 300


@attrs.frozen
class Delivery:
    """One webhook message for one endpoint (one event, or a batch of one type).

    ``id`` is the ``webhook-id``: the event id, or for a batch an id derived from its events.
    ``body`` is serialized once; every attempt sends and signs these same bytes. ``chat_keys``
    are the chats it belongs to (for per-chat ordering). ``attempts`` is the whole history;
    ``round_start`` is the index where the current round began (a replay starts a new round, so
    the retry schedule starts again while the old attempts stay visible).
    """

    id: str
    endpoint_id: str
    event_type: str
    event_ids: tuple[str, ...]
    chat_keys: tuple[str, ...]
    body: bytes = attrs.field(repr=False)
    created_at: float
    next_attempt_at: float
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: tuple[Attempt, ...] = ()
    round_start: int = 0
    dead_reason: str = ""
    finished_at: float | None = None

    @property
    def round_attempts(self) -> int:
        """Attempts made in the current round (since creation or the last replay)."""
        return len(self.attempts) - self.round_start


@attrs.frozen
class BufferedEvent:
    """An event waiting in an endpoint's batch buffer since ``buffered_at``."""

    endpoint_id: str
    event: Event
    buffered_at: float


@attrs.frozen
class EndpointHealth:
    """An endpoint's health: failing since when (None: fine), and whether it is disabled."""

    endpoint_id: str
    failing_since: float | None = None
    disabled: bool = False
    disabled_reason: str = ""
    disabled_at: float | None = None


class DeliveryStore(Protocol):
    """Durable delivery state for the webhook dispatcher (:mod:`chatmgmt.delivery`).

    A :class:`Delivery` is one webhook *message* for one endpoint: a stable ``id`` (the
    ``webhook-id`` header, the receiver's idempotency key), the body serialized once, the event
    ids it carries (one, or several for a batch), its next attempt time and every attempt made.
    Deliveries are ``PENDING`` until a 2xx makes them ``DELIVERED`` or they give up and become
    ``DEAD`` (dead letters, which keep their attempts and can be replayed). Adapters:
    ``storage.memory_delivery``, ``storage.sqlite_delivery``, ``storage.redis_delivery``;
    ``chatmgmt.testing.DeliveryStoreContract`` checks one. The contract:

    * :meth:`add` is idempotent per ``(endpoint_id, delivery id)`` and per ``(endpoint_id, event
      id)``: an outbox entry fanned out twice (its lease expired before the ack) creates nothing
      new. It stores each delivery with the status it is given.
    * **Per-chat order.** Deliveries of one endpoint are ordered by the order they were added
      (or sealed, for batches). :meth:`claim_due` hands out a pending delivery only when it is
      due, not leased, and no earlier pending delivery of the same endpoint shares a chat with
      it — so a later event of a chat waits for the earlier one. A delivery that finishes
      (delivered or dead) unblocks the next.
    * :meth:`claim_due` leases what it returns (``lease_s``): a dispatcher that dies mid-send
      leaves the delivery to be claimed again when the lease runs out. It returns nothing for a
      disabled endpoint.
    * :meth:`finish` records one attempt and the outcome atomically, and updates the endpoint's
      health in the same step (success clears ``failing_since``; a failure sets it if unset) and
      returns the new health.
    * :meth:`disable` is atomic and returns True only for the call that disabled the endpoint,
      so exactly one ``endpoint.disabled`` event is emitted per disabling; it moves the
      endpoint's pending deliveries to the dead letters.
    * :meth:`replay` and :meth:`replay_since` move dead letters back to pending (due now, after
      every delivery already queued for their chats), keeping the earlier attempts; the retry
      schedule starts again.
    """

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """Store new deliveries and batch-buffer entries at once; idempotent; returns how many
        were new."""
        ...

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """The endpoint's batch buffer, oldest first."""
        ...

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """Atomically take ``event_ids`` out of the buffer and add ``delivery`` (a batch);
        False (and no change) if any of them is no longer buffered."""
        ...

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """Lease up to ``limit`` due pending deliveries that head their chats, oldest due
        first."""
        ...

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """Record ``attempt`` and the new status (``next_attempt_at`` for a retry, ``reason``
        for a dead letter); update and return the endpoint's health."""
        ...

    def health(self, endpoint_id: str) -> EndpointHealth:
        """The endpoint's health (a fresh healthy record when unknown)."""
        ...

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """Disable the endpoint and dead-letter its pending deliveries; True only if it was
        enabled."""
        ...

    def enable(self, endpoint_id: str) -> None:
        """Enable the endpoint again and forget its failing streak; idempotent."""
        ...

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery, or None."""
        ...

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """Deliveries (of one endpoint, of one status), in the order they were added."""
        ...

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """Dead deliveries (that died at or after ``since``), in the order they died."""
        ...

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """Move one dead letter back to pending, due at ``now``; False if it is not dead."""
        ...

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """Replay every dead letter that died at or after ``since``; returns how many."""
        ...

    def purge(self, before: float) -> int:
        """Forget delivered deliveries finished before ``before``; returns how many."""
        ...


class AsyncDeliveryStore(Protocol):
    """Async face of :class:`DeliveryStore`, same contract."""

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`DeliveryStore.add`."""
        ...

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`DeliveryStore.buffered`."""
        ...

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`DeliveryStore.seal`."""
        ...

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`DeliveryStore.claim_due`."""
        ...

    async def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`DeliveryStore.finish`."""
        ...

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`DeliveryStore.health`."""
        ...

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`DeliveryStore.disable`."""
        ...

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`DeliveryStore.enable`."""
        ...

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`DeliveryStore.get`."""
        ...

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`DeliveryStore.deliveries`."""
        ...

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`DeliveryStore.dead_letters`."""
        ...

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`DeliveryStore.replay`."""
        ...

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`DeliveryStore.replay_since`."""
        ...

    async def purge(self, before: float) -> int:
        """See :meth:`DeliveryStore.purge`."""
        ...
