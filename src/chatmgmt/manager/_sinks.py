"""The host's sinks as the managers' drivers call them: a failing sink is logged, never raised
into the operation that committed; ``pick`` runs a custom strategy where the core yields it
(awaited by the async driver)."""

from __future__ import annotations

import logging
from typing import Any

from .._core._pick import pick_async, pick_sync
from ..ports import EventSink, MessageSink

log = logging.getLogger("chatmgmt")
SINK_CALLS = frozenset({EventSink.emit, MessageSink.deliver})  # the host's sinks are sync


class Sinks:
    def __init__(self, events: EventSink | None, messages: MessageSink | None) -> None:
        self.events = events
        self.messages = messages

    def emit(self, event: Any) -> None:
        if self.events is not None:
            try:
                self.events.emit(event)
            except Exception:
                log.exception("event sink failed on %s", getattr(event, "type", event))

    def deliver(self, message: Any) -> None:
        if self.messages is not None:
            try:
                self.messages.deliver(message)
            except Exception:
                log.exception("message sink failed")

    pick = staticmethod(pick_sync)  # a custom strategy, called where the core yields it


class AsyncSinks(Sinks):
    pick = staticmethod(pick_async)  # type: ignore[assignment]  # awaited by the async driver
