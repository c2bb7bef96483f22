"""Message webhooks: the event catalogue, signing, delivery."""

from ._catalogue import CATALOGUE, EventSpec, EventType, make_event

__all__ = ["CATALOGUE", "EventSpec", "EventType", "make_event"]
