"""The testing toolkit: a manual clock, recording sinks, builders, assertion helpers,
hypothesis strategies and the storage port contract suites.

The hypothesis strategies (``agents``, ``customer_infos``, ``chats``, ``settings``; extra
``chatmgmt[testing]``) and the contract suites (``StorageContract``, ``AsyncStorageContract``,
``ProcessStorageContract`` and the per-port suites they combine: ``CustomerStoreContract``,
``AgentStoreContract``, ``ChatStoreContract``, ``QueueStoreContract``, ``OutboxContract``,
``TimerStoreContract``, ``RateCounterContract``, ``RetentionContract``, ``UnitOfWorkContract``,
``UnitReportsContract``, ``TenancyContract``)
are imported on first use, so the rest of the toolkit needs no test dependency.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._clock import ManualClock
from ._assertions import assert_fair, assert_within_limits
from ._builders import make_agent, make_agents, make_chat, make_customer
from ._explorer import (
    CrashReport,
    ExplorationReport,
    Operation,
    Violation,
    crash_points,
    explore,
    replay,
)
from ._ids import sequential_ids
from ._invariants import channel_allowance, check_invariants, find_violations, held_allowance
from ._recording import RecordingEventSink, RecordingMessageSink, RecordingTransport
from ._slots import claim_ranked, claim_slot, release_slot

__all__ = [
    "AgentStoreContract",
    "AsyncDeliveryStoreContract",
    "AsyncStorageContract",
    "ChatStoreContract",
    "CrashReport",
    "CustomerStoreContract",
    "DeliveryStoreContract",
    "ExplorationReport",
    "ManualClock",
    "Operation",
    "OutboxContract",
    "ProcessStorageContract",
    "QueueStoreContract",
    "RateCounterContract",
    "RecordingEventSink",
    "RecordingMessageSink",
    "RecordingTransport",
    "RetentionContract",
    "StorageContract",
    "TenancyContract",
    "TimerStoreContract",
    "UnitOfWorkContract",
    "UnitReportsContract",
    "Violation",
    "agents",
    "assert_fair",
    "assert_within_limits",
    "channel_allowance",
    "chats",
    "check_invariants",
    "claim_ranked",
    "claim_slot",
    "crash_points",
    "customer_infos",
    "explore",
    "find_violations",
    "held_allowance",
    "make_agent",
    "make_agents",
    "make_chat",
    "make_customer",
    "release_slot",
    "replay",
    "sequential_ids",
    "settings",
]

_LAZY = {
    "agents": "._strategies",
    "chats": "._strategies",
    "customer_infos": "._strategies",
    "settings": "._strategies",
    "StorageContract": "._contracts",
    "AsyncStorageContract": "._contracts",
    "ProcessStorageContract": "._contracts",
    "AgentStoreContract": "._contracts",
    "ChatStoreContract": "._contracts",
    "CustomerStoreContract": "._contracts",
    "OutboxContract": "._contracts",
    "QueueStoreContract": "._contracts",
    "RateCounterContract": "._contracts",
    "RetentionContract": "._contracts",
    "TenancyContract": "._contracts",
    "TimerStoreContract": "._contracts",
    "UnitOfWorkContract": "._contracts",
    "UnitReportsContract": "._contracts",
    "DeliveryStoreContract": "._delivery_contract",
    "AsyncDeliveryStoreContract": "._delivery_contract",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chatmgmt.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
