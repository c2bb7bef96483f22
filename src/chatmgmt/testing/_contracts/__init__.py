"""The port contract suites: every promise of :mod:`chatmgmt.ports`, as tests a host can run.

One module per port, mirroring :mod:`chatmgmt.ports`:

========================  ======================================================
``customers``             :class:`CustomerStoreContract`
``agents``                :class:`AgentStoreContract` (put compare-and-set, census)
``chats``                 :class:`ChatStoreContract` (read side)
``queues``                :class:`QueueStoreContract` (read side)
``outbox``                :class:`OutboxContract`
``timers``                :class:`TimerStoreContract`
``counters``              :class:`RateCounterContract`
``retention``             :class:`RetentionContract` (:meth:`ChatStore.purge`)
``unit_of_work``          :class:`UnitOfWorkContract` (:meth:`Storage.apply`)
``reports``               :class:`UnitReportsContract` (what ``apply`` reads in its unit)
``tenancy``               :class:`TenancyContract` (namespaces, hostile ids)
========================  ======================================================

Subclass a suite in a test module (its name must start with ``Test`` for pytest to collect it)
and implement the hook that makes a storage, as ``trio.testing`` does for streams::

    from chatmgmt.testing import StorageContract

    class TestMyStorage(StorageContract):
        def make_storage(self, namespace):
            return MyStorage(self.database, namespace)

* :class:`StorageContract` runs every sync suite above.
* :class:`AsyncStorageContract` runs the same checks against an async face
  (``make_async_storage``): every call goes through the event loop, concurrently from many
  threads, plus tests of its own with ``asyncio.gather``.
* :class:`ProcessStorageContract` adds process-level atomicity (``multiprocessing`` with the
  spawn context): hook ``storage_factory`` returns a picklable callable that opens the storage
  in a child process.

Within one test, every ``make_storage`` call must return a storage over the **same** database
or server (only the namespace differs), so that the isolation tests mean something; each test
gets fresh, unique namespaces. ``close_storage`` (default: ``storage.close()`` when it exists)
is called for every storage at the end of a test. The suites need no pytest import: they use
the xunit hooks ``setup_method`` / ``teardown_method`` (call ``super()`` when overriding them).
"""

from __future__ import annotations

from ._suites import AsyncStorageContract, ProcessStorageContract, StorageContract
from ._support import (
    BUILTIN_RANKINGS,
    EVERY_RANKING,
    HOSTILE_IDS,
    HOSTILE_STRINGS,
    StorageCase,
    _LoopThread,
)
from .agents import AgentStoreContract
from .chats import ChatStoreContract
from .counters import RateCounterContract
from .customers import CustomerStoreContract
from .outbox import OutboxContract
from .queues import QueueStoreContract
from .reports import UnitReportsContract
from .retention import RetentionContract
from .tenancy import TenancyContract
from .timers import TimerStoreContract
from .unit_of_work import UnitOfWorkContract

__all__ = [
    "BUILTIN_RANKINGS",
    "EVERY_RANKING",
    "HOSTILE_IDS",
    "HOSTILE_STRINGS",
    "AgentStoreContract",
    "AsyncStorageContract",
    "ChatStoreContract",
    "CustomerStoreContract",
    "OutboxContract",
    "ProcessStorageContract",
    "QueueStoreContract",
    "RateCounterContract",
    "RetentionContract",
    "StorageCase",
    "StorageContract",
    "TenancyContract",
    "TimerStoreContract",
    "UnitOfWorkContract",
    "UnitReportsContract",
    "_LoopThread",
]
