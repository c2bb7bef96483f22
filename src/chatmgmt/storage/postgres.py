"""The PostgreSQL storage adapter: durable state shared by any number of application servers
(psycopg 3, extra ``chatmgmt[postgres]``).

* **One unit of work, one transaction.** :meth:`PostgresStorage.apply` applies a
  :class:`~chatmgmt.ports.Change` in one transaction (READ COMMITTED plus row locks): it locks
  the chat's row (``SELECT … FOR UPDATE``), checks every precondition before any write (the
  version, ``exists``/``missing``, ``queue_not_empty``, the claimed agent's eligibility on its
  locked row), then writes the slot released and claimed, the inactive move, the queue entries,
  the timers, the chat, the message, the sticky mark and the events (outbox rows) — all of it
  or, on any failure, nothing. The other writers (customers, :meth:`PostgresAgentStore.put`,
  the outbox and timer leases, counters) are one transaction each too.
* **Lock order.** Whoever changes an agent's load locks its ``chatmgmt_agents`` row first (the
  named agents of a change in id order, in one statement), then rewrites its rank rows; rank
  rows are never locked on their own, so a pick and a writer never wait for each other in a
  cycle. A deadlock or serialization failure the server still reports is retried inside
  :meth:`apply` (bounded): callers only see :class:`~chatmgmt.errors.PreconditionFailed` or
  :class:`~chatmgmt.errors.ConflictError`.
* The **ranked claim**: ``SELECT … FROM chatmgmt_agent_ranks r JOIN chatmgmt_agents a … WHERE
  r.eligible … ORDER BY <ranking> LIMIT 1 FOR UPDATE OF a SKIP LOCKED``, walking a partial
  index built from the :class:`~chatmgmt.model.Ranking`'s fields (``WHERE eligible``: full and
  absent agents are not in it). Agents another transaction is changing are skipped, so
  concurrent opens spread over the agents instead of queueing behind the first. The picked
  agent's locked row is checked again by :func:`~chatmgmt.assignment._load.eligible` (the rank
  row may predate a commit); when every eligible agent is locked by others, the pick waits for
  the first one and checks it (so "no agent" is never said while an agent still has room).
  Then :meth:`~chatmgmt.ports.Change.bind` fills in the picked agent.
* Every load transition is the pure rules of :mod:`chatmgmt.assignment._load`; this adapter only
  stores their results (JSON by :mod:`~chatmgmt.storage._codec`) and the rank columns computed
  by :func:`~chatmgmt.assignment._load.rank_entry`.
* **Tenants** share the tables: every row carries its namespace (``ns``, ``bytea``). Index
  names come from a fixed table of column names (and a digest), never from user data; every
  value travels as a bound parameter.
* The sync (:class:`PostgresStorage`) and async (:class:`AsyncPostgresStorage`) faces run the
  same operations (generators of statements in the ``_pg_*`` modules, see
  :mod:`~chatmgmt.storage._pg`),
  each on its own psycopg driver; no SQL or rule is written twice.
* The outbox wakes listeners: every transaction that appends events sends a ``NOTIFY`` (on
  commit), and :meth:`PostgresOutbox.wait` blocks until one arrives for its namespace (the
  webhook dispatcher waits on it when idle instead of polling blind).
* Durable as the server is: with ``synchronous_commit=on`` (PostgreSQL's default) a change that
  returned survives a crash of the server.
"""

from __future__ import annotations

from ._pg import AsyncPostgresDatabase, PostgresDatabase
from ._pg_async import (
    AsyncPostgresAgentStore,
    AsyncPostgresChatStore,
    AsyncPostgresCustomerStore,
    AsyncPostgresOutbox,
    AsyncPostgresQueueStore,
    AsyncPostgresRateCounter,
    AsyncPostgresStorage,
    AsyncPostgresTimerStore,
)
from ._pg_face import _COMPONENT as _COMPONENT
from ._pg_face import _MIGRATIONS as _MIGRATIONS
from ._pg_face import SCHEMA_VERSION
from ._pg_sync import (
    PostgresAgentStore,
    PostgresChatStore,
    PostgresCustomerStore,
    PostgresOutbox,
    PostgresQueueStore,
    PostgresRateCounter,
    PostgresStorage,
    PostgresTimerStore,
)

__all__ = [
    "SCHEMA_VERSION",
    "AsyncPostgresDatabase",
    "AsyncPostgresStorage",
    "PostgresDatabase",
    "PostgresStorage",
]

# the port classes stay importable from here (not in __all__)
_PORTS = (
    PostgresAgentStore,
    PostgresChatStore,
    PostgresCustomerStore,
    PostgresOutbox,
    PostgresQueueStore,
    PostgresRateCounter,
    PostgresTimerStore,
    AsyncPostgresAgentStore,
    AsyncPostgresChatStore,
    AsyncPostgresCustomerStore,
    AsyncPostgresOutbox,
    AsyncPostgresQueueStore,
    AsyncPostgresRateCounter,
    AsyncPostgresTimerStore,
)
