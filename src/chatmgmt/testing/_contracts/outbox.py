"""The :class:`~chatmgmt.ports.Outbox` contract: oldest first, leases, idempotent acks,
events round-trip exactly."""

from __future__ import annotations

from ...model import Event
from ...ports import OutboxEntry
from ._support import StorageCase, event, run_threads

__all__ = ["OutboxContract"]


class OutboxContract(StorageCase):
    """The durable event log, consumed at least once under leases."""

    def test_outbox_claim_lease_ack(self) -> None:
        """Oldest first; a live lease hides an entry; an expired one returns it; ack is final."""
        s = self.storage
        events = [event(i, f"c{i}", i) for i in range(5)]
        s.outbox.append(events)
        assert s.outbox.pending() == 5
        first = s.outbox.claim("w1", 2, 100.0, 30.0)
        assert [e.event for e in first] == events[:2]
        assert [e.deliveries for e in first] == [1, 1]
        second = s.outbox.claim("w2", 10, 101.0, 30.0)
        assert [e.event for e in second] == events[2:]
        assert s.outbox.claim("w3", 10, 129.0, 30.0) == []
        s.outbox.ack([first[0].id])
        s.outbox.ack([first[0].id])  # idempotent
        assert s.outbox.pending() == 4
        again = s.outbox.claim("w3", 10, 130.0, 30.0)  # w1's lease expired at 130
        assert [e.event for e in again] == [events[1]]
        assert again[0].deliveries == 2 and again[0].id == first[1].id
        s.outbox.ack([e.id for e in again + second])
        assert s.outbox.pending() == 0
        assert s.outbox.claim("w1", 10, 1e9, 30.0) == []
        s.outbox.ack([])

    def test_outbox_leases_never_give_one_entry_to_two_consumers(self) -> None:
        """Concurrent consumers with live leases share the entries without overlap."""
        s = self.storage
        total = 120
        s.outbox.append([event(i) for i in range(total)])

        def consume(i: int) -> list[str]:
            got: list[str] = []
            while True:
                batch: list[OutboxEntry] = s.outbox.claim(f"w{i}", 3, 1000.0, 3600.0)
                if not batch:
                    return got
                got.extend(e.event.id for e in batch)

        seen = [eid for chunk in run_threads(min(self.threads, 8), consume) for eid in chunk]
        assert len(seen) == total and len(set(seen)) == total
        assert s.outbox.pending() == total

    def test_outbox_event_round_trip(self) -> None:
        """An event claimed from the outbox equals the event appended."""
        s = self.storage
        stored = Event(
            id="e:{1}",
            type="chat.started",
            timestamp=1_700_000_000.123456,
            data={"text": "'; DROP TABLE outbox; --\n", "n": [1, 2.5, None], "ok": True},
            chat_id="c:{1}",
            seq=3,
            schema=2,
        )
        s.outbox.append([stored])
        (entry,) = s.outbox.claim("w", 5, 0.0, 10.0)
        assert entry.event == stored
