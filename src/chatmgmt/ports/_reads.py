"""The values the read ports return: outbox entries, censuses, queue heads."""

from __future__ import annotations

import attrs

from ..model import ChatId, Event


@attrs.frozen
class OutboxEntry:
    """An event claimed from the outbox; ``id`` is the adapter's cursor, used to ack it."""

    id: str
    event: Event
    deliveries: int = 0


@attrs.frozen
class Census:
    """How a group's agents stand right now (``""``: every agent).

    ``eligible``: ONLINE and below the limit; ``full``: ONLINE at the limit; ``busy``, ``away``,
    ``offline`` by status; ``capacity``: the sum of ONLINE agents' limits; ``load``: the chats
    ONLINE agents hold. With channel weights (``Agent.channel_weights``) "below the limit"
    means a unit of the limit left (``AgentLoad.used < reception_limit``); ``load`` still
    counts chats.
    """

    eligible: int = 0
    full: int = 0
    busy: int = 0
    away: int = 0
    offline: int = 0
    capacity: int = 0
    load: int = 0

    @property
    def online(self) -> int:
        """ONLINE agents, eligible or full."""
        return self.eligible + self.full

    @property
    def total(self) -> int:
        """Every agent of the group."""
        return self.eligible + self.full + self.busy + self.away + self.offline


@attrs.frozen
class GroupCensus(Census):
    """A group's :class:`Census` with what the live monitor shows besides
    (:meth:`AgentStore.censuses`): ``held``, the chats its agents hold (counted and inactive,
    whatever their status); ``free``, the slots below the limit of its ONLINE agents (an agent
    above its limit counts 0, so it may exceed ``capacity - load``; units of the limit for an
    agent with channel weights: ``AgentLoad.free``)."""

    held: int = 0
    free: int = 0


@attrs.frozen
class QueueHead:
    """A queue at a glance (:meth:`QueueStore.heads`): how many chats wait in ``queue``, the
    ``first`` (the next to be served, by score then insertion) and the ``oldest`` (the entry
    pushed longest ago and still there; with priorities it need not be the first) and
    ``oldest_at``, when that chat started waiting (its ``queued_at``, its ``created_at`` when
    unset), so the monitor reads no chat. All three are None for an empty queue."""

    queue: str
    length: int = 0
    first: ChatId | None = None
    oldest: ChatId | None = None
    oldest_at: float | None = None
