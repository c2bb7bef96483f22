"""Recording sinks and transports: they keep what they receive for assertions."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..model import Event, Message
from ..ports import HttpRequest, HttpResponse

__all__ = ["RecordingEventSink", "RecordingMessageSink", "RecordingTransport"]


class RecordingEventSink:
    """An :class:`~chatmgmt.ports.EventSink` that records every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        """Record one event."""
        with self._lock:
            self.events.append(event)

    def types(self) -> list[str]:
        """The recorded event types, in order."""
        return [e.type for e in self.events]

    def of_type(self, type_: str) -> list[Event]:
        """The recorded events of one type."""
        return [e for e in self.events if e.type == type_]


class RecordingMessageSink:
    """A :class:`~chatmgmt.ports.MessageSink` that records every system message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        """Record one message."""
        self.messages.append(message)


class RecordingTransport:
    """A :class:`~chatmgmt.ports.Transport` that records requests and answers from a script.

    ``respond`` maps a request to a response; by default every request gets 200.
    For delivery tests prefer a real loopback server; this is for unit tests of planning.
    """

    def __init__(self, respond: Callable[[HttpRequest], HttpResponse] | None = None) -> None:
        self.requests: list[HttpRequest] = []
        self._respond = respond or (lambda _r: HttpResponse(200, {}, b"", 0.0))

    def send(self, request: HttpRequest) -> HttpResponse:
        """Record ``request`` and return the scripted response."""
        self.requests.append(request)
        return self._respond(request)
