"""How the memory store keeps events and timers: flat tuples of plain values (no object, no
dict, so the garbage collector stops tracking them), and the objects read back from them."""

from __future__ import annotations

import itertools
from typing import Any

from ..model import Event, Timer

_EventEntry = tuple[Any, ...]
"""An event waiting in the outbox: ``(id, type, timestamp, chat_id, seq, schema, key1, value1,
key2, value2, ...)``, its data's items flattened in order."""
_flat = itertools.chain.from_iterable
"""Items flattened: ``(k1, v1), (k2, v2)`` -> ``k1, v1, k2, v2``."""


def _unflat(entry: tuple[Any, ...]) -> dict[str, Any]:
    """The dict flattened (by :data:`_flat`) after the first six fields of ``entry``."""
    return dict(zip(entry[6::2], entry[7::2], strict=True))


def _event(entry: _EventEntry) -> Event:
    id_, type_, timestamp, chat_id, seq, schema = entry[:6]
    return Event(id_, type_, timestamp, _unflat(entry), chat_id, seq, schema)


_TimerEntry = tuple[Any, ...]
"""A stored timer: ``(due_at, seq, key, chat_id, kind, version, key1, value1, ...)``, its
payload's items flattened in order (a dict, or a tuple nested in a tuple, keeps a tuple tracked
by the collector). ``seq`` orders entries due at the same time and is unique, so comparing two
entries never looks further."""


def _timer(entry: _TimerEntry) -> Timer:
    due_at, _seq, key, chat_id, kind, version = entry[:6]
    return Timer(key, due_at, chat_id, kind, version, _unflat(entry))
