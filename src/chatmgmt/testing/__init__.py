"""The testing toolkit: a manual clock, recording sinks, builders, contract suites."""

from ._builders import make_agent, make_agents, make_chat, make_customer
from ._clock import ManualClock
from ._recording import RecordingEventSink, RecordingMessageSink, RecordingTransport

__all__ = [
    "ManualClock",
    "RecordingEventSink",
    "RecordingMessageSink",
    "RecordingTransport",
    "make_agent",
    "make_agents",
    "make_chat",
    "make_customer",
]
