"""The clock and the sinks: what the host injects besides storage."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..model import Event, Message


@runtime_checkable
class Clock(Protocol):
    """Where the library reads the time: Unix seconds as a float. Injected, never global."""

    def now(self) -> float:
        """The current time in Unix seconds."""
        ...


class EventSink(Protocol):
    """Receives events as they happen (monitoring hits, alerts) in addition to the outbox.

    Called after the change committed; an exception in the sink is logged and swallowed.
    """

    def emit(self, event: Event) -> None:
        """Take one event."""
        ...


class MessageSink(Protocol):
    """Receives system messages (prompts, warnings) the host must show in a chat.

    Called after the message was stored; an exception in the sink is logged and swallowed.
    """

    def deliver(self, message: Message) -> None:
        """Show ``message`` to the chat's participants."""
        ...
