"""The ports: every piece of I/O the library does goes through these protocols.

The host implements them or uses a shipped adapter (:mod:`chatmgmt.storage.memory`, the default;
``storage.sqlite``; ``storage.redis``). Each protocol's docstring is its contract: what is
atomic, what raises, what is idempotent. ``chatmgmt.testing`` exports the contract suites that
check an adapter keeps them.

**One unit of work per operation.** Every change of a chat reaches storage as one
:class:`Change`, applied by :meth:`Storage.apply` atomically: the chat's compare-and-set on its
version, the slot claimed (for a named agent, or the first eligible agent of a group by a
ranking, picked by the store inside the unit) or released, the queue entry pushed or removed,
the timers set or cancelled, the message, the sticky mark and the events. All of it commits or
none of it; a failed precondition raises :class:`~chatmgmt.errors.PreconditionFailed` saying
which. Indexes (slots, queue entries, rank entries, timers) never move in a step of their own,
so no interleaving of operations, and no crash between two of them, leaves a chat and its
indexes disagreeing.

**Retention** is the one write outside the unit of work: :meth:`ChatStore.purge` deletes chats
that are over (:func:`retention_start`) whole, with their messages, after the retention time
(``retention.ended_chats_s``). It never touches an open chat, a queue, a slot or the outbox.

Every adapter is created for one ``namespace`` (a tenant); no operation sees another's data.
"""

from __future__ import annotations

# One module per concept; users import every name from here (``chatmgmt.ports``):
#   _clock         Clock, EventSink, MessageSink: what the host injects besides storage
#   _reads         OutboxEntry, Census, GroupCensus, QueueHead: values the read ports return
#   _transport     HttpRequest, HttpResponse, Transport, AsyncTransport (and RESPONSE_KEEP)
#   _marks         PICKED, CENSUS_MARKS and how a store fills them in (Change.bind)
#   _change        Claim, RankedClaim, QueuePush, Change, Applied: the unit of work
#   _stores        the sync storage ports and Storage, their bundle
#   _async_stores  their async faces and AsyncStorage
#   _delivery      the webhook delivery state: Delivery, Attempt, ..., DeliveryStore
#   _retention     retention_start
# The order of these imports is the order of the API reference (docs/api.md).
# isort: off
from ._marks import PICKED, CENSUS_MARKS
from ._clock import Clock, EventSink, MessageSink
from ._reads import OutboxEntry, Census, GroupCensus, QueueHead
from ._transport import RESPONSE_KEEP as RESPONSE_KEEP
from ._transport import HttpRequest, HttpResponse, Transport, AsyncTransport
from ._change import Claim, RankedClaim, QueuePush, Change, Applied
from ._stores import (
    CustomerStore,
    AgentStore,
    ChatStore,
    QueueStore,
    Outbox,
    TimerStore,
    RateCounter,
    Storage,
)
from ._async_stores import (
    AsyncCustomerStore,
    AsyncAgentStore,
    AsyncChatStore,
    AsyncQueueStore,
    AsyncOutbox,
    AsyncTimerStore,
    AsyncRateCounter,
    AsyncStorage,
)
from ._delivery import (
    DeliveryStatus,
    Attempt,
    Delivery,
    BufferedEvent,
    EndpointHealth,
    DeliveryStore,
    AsyncDeliveryStore,
)
from ._retention import retention_start

# isort: on

__all__ = [
    "CENSUS_MARKS",
    "PICKED",
    "AgentStore",
    "Applied",
    "AsyncAgentStore",
    "AsyncChatStore",
    "AsyncCustomerStore",
    "AsyncDeliveryStore",
    "AsyncOutbox",
    "AsyncQueueStore",
    "AsyncRateCounter",
    "AsyncStorage",
    "AsyncTimerStore",
    "AsyncTransport",
    "Attempt",
    "BufferedEvent",
    "Census",
    "Change",
    "ChatStore",
    "Claim",
    "Clock",
    "CustomerStore",
    "Delivery",
    "DeliveryStatus",
    "DeliveryStore",
    "EndpointHealth",
    "EventSink",
    "GroupCensus",
    "HttpRequest",
    "HttpResponse",
    "MessageSink",
    "Outbox",
    "OutboxEntry",
    "QueueHead",
    "QueuePush",
    "QueueStore",
    "RankedClaim",
    "RateCounter",
    "Storage",
    "TimerStore",
    "Transport",
    "retention_start",
]
