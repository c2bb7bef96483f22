"""PostgreSQL :class:`~chatmgmt.ports.DeliveryStore`: the webhook dispatcher's state, durable
and shared by any number of dispatcher processes (extra ``chatmgmt[postgres]``).

The same layout and rules as :mod:`~chatmgmt.storage.sqlite_delivery` (tables prefixed
``chatmgmt_wh_``, component ``delivery`` of ``chatmgmt_schema_version``), each operation one
transaction written once as a generator of statements (:mod:`~chatmgmt.storage._pg`) and run by
the sync (:class:`PostgresDeliveryStore`) or the asyncio (:class:`AsyncPostgresDeliveryStore`)
driver.

* Every operation that changes an endpoint's queue (add, seal, finish, disable, enable,
  replay) first locks the endpoint's row, so per-chat order is decided by one writer at a time
  per endpoint, as in SQLite.
* :meth:`~PostgresDeliveryStore.claim_due` leases with ``FOR UPDATE SKIP LOCKED`` over the
  partial index of ready rows: concurrent dispatchers take disjoint deliveries without waiting
  for each other.
* Every row carries its namespace (``ns``); endpoint, delivery, event ids and chat keys are
  stored as ``bytea`` (any string is data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ports import Attempt, BufferedEvent, Delivery, DeliveryStatus, EndpointHealth
from ._pg import AsyncPostgresDatabase, PostgresDatabase, b, migrate_op
from ._pg_delivery_reads import _buffered, _dead_letters, _deliveries, _get, _health_op
from ._pg_delivery_writes import (
    _add,
    _claim_due,
    _delete_namespace,
    _disable,
    _enable,
    _finish,
    _purge,
    _replay,
    _replay_since,
    _seal,
)

__all__ = ["WEBHOOK_SCHEMA_VERSION", "AsyncPostgresDeliveryStore", "PostgresDeliveryStore"]

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chatmgmt_wh_deliveries (
        seq bigserial PRIMARY KEY,
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, id bytea NOT NULL,
        event_type text NOT NULL, event_ids text NOT NULL, chat_keys text NOT NULL,
        body bytea NOT NULL, created_at float8 NOT NULL, next_attempt_at float8 NOT NULL,
        status text NOT NULL, round_start integer NOT NULL, dead_reason text NOT NULL,
        finished_at float8, lease_until float8 NOT NULL DEFAULT 0,
        qorder bigint NOT NULL DEFAULT 0, ready boolean NOT NULL DEFAULT false,
        due_at float8 NOT NULL DEFAULT 0,
        UNIQUE (ns, endpoint_id, id)
    );
    CREATE INDEX chatmgmt_wh_ready ON chatmgmt_wh_deliveries (ns, endpoint_id, due_at, qorder)
        WHERE ready;
    CREATE INDEX chatmgmt_wh_by_status ON chatmgmt_wh_deliveries (ns, status, endpoint_id);
    CREATE TABLE chatmgmt_wh_attempts (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, delivery_id bytea NOT NULL,
        n integer NOT NULL, at float8 NOT NULL, status integer, latency_s float8 NOT NULL,
        response bytea NOT NULL, error text NOT NULL,
        PRIMARY KEY (ns, endpoint_id, delivery_id, n)
    );
    CREATE TABLE chatmgmt_wh_chat_queue (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, chat_key bytea NOT NULL,
        qorder bigint NOT NULL, delivery_id bytea NOT NULL,
        PRIMARY KEY (ns, endpoint_id, chat_key, qorder)
    );
    CREATE TABLE chatmgmt_wh_seen (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, event_id bytea NOT NULL,
        delivery_id bytea,
        PRIMARY KEY (ns, endpoint_id, event_id)
    );
    CREATE TABLE chatmgmt_wh_buffer (
        seq bigserial PRIMARY KEY,
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, event_id bytea NOT NULL,
        buffered_at float8 NOT NULL, event text NOT NULL,
        UNIQUE (ns, endpoint_id, event_id)
    );
    CREATE TABLE chatmgmt_wh_endpoints (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL,
        failing_since float8, disabled boolean NOT NULL DEFAULT false,
        disabled_reason text NOT NULL DEFAULT '', disabled_at float8,
        qcounter bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (ns, endpoint_id)
    )
    """,
)

WEBHOOK_SCHEMA_VERSION = len(_MIGRATIONS)
"""The version of the delivery store's tables this release writes."""

_COMPONENT = "delivery"


# --------------------------------------------------------------------------- the faces


class PostgresDeliveryStore:
    """The delivery store in PostgreSQL, for one namespace (see the module docstring).

    ``database`` is a DSN, a :class:`psycopg_pool.ConnectionPool` the host already has, or a
    shared :class:`~chatmgmt.storage.postgres.PostgresDatabase` (e.g.
    ``PostgresStorage(...).database``: the outbox and the delivery state in one database).
    """

    def __init__(self, database: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, PostgresDatabase)
        self.database = database if not self._owned else PostgresDatabase(database)
        self.namespace = namespace
        self._ns = b(namespace)
        self.database.once(
            "migrate:delivery",
            migrate_op,
            _COMPONENT,
            _MIGRATIONS,
            WEBHOOK_SCHEMA_VERSION,
            repr(self.database),
        )

    def __repr__(self) -> str:
        return f"PostgresDeliveryStore({self.database!r}, namespace={self.namespace!r})"

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        return self.database.run(_add, self._ns, tuple(deliveries), tuple(buffered))

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        return self.database.run(_buffered, self._ns, endpoint_id, tx=False)

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        return self.database.run(_seal, self._ns, endpoint_id, tuple(event_ids), delivery)

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        return self.database.run(_claim_due, self._ns, endpoint_id, now, limit, lease_s)

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.finish`."""
        return self.database.run(
            _finish, self._ns, endpoint_id, delivery_id, attempt, status, next_attempt_at, reason
        )

    def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        return self.database.run(_health_op, self._ns, endpoint_id, tx=False)

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        return self.database.run(_disable, self._ns, endpoint_id, reason, now)

    def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        self.database.run(_enable, self._ns, endpoint_id)

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        return self.database.run(_get, self._ns, endpoint_id, delivery_id)

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        return self.database.run(_deliveries, self._ns, endpoint_id, status)

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        return self.database.run(_dead_letters, self._ns, endpoint_id, since)

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        return self.database.run(_replay, self._ns, endpoint_id, delivery_id, now)

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        return self.database.run(_replay_since, self._ns, since, now, endpoint_id)

    def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        return self.database.run(_purge, self._ns, before)

    def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        self.database.run(_delete_namespace, self._ns)

    def close(self) -> None:
        """Close the pool if this store opened it (a shared database stays open)."""
        if self._owned:
            self.database.close()


class AsyncPostgresDeliveryStore:
    """The asyncio face of :class:`PostgresDeliveryStore` (same operations): ``database`` is a
    DSN, an :class:`psycopg_pool.AsyncConnectionPool` or a shared
    :class:`~chatmgmt.storage.postgres.AsyncPostgresDatabase`."""

    def __init__(self, database: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, AsyncPostgresDatabase)
        self.database = database if not self._owned else AsyncPostgresDatabase(database)
        self.namespace = namespace
        self._ns = b(namespace)

    def __repr__(self) -> str:
        return f"AsyncPostgresDeliveryStore({self.database!r}, namespace={self.namespace!r})"

    async def _run(self, op: Any, *args: Any, tx: bool = True) -> Any:
        await self.database.once(
            "migrate:delivery",
            migrate_op,
            _COMPONENT,
            _MIGRATIONS,
            WEBHOOK_SCHEMA_VERSION,
            repr(self.database),
        )
        return await self.database.run(op, self._ns, *args, tx=tx)

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        return int(await self._run(_add, tuple(deliveries), tuple(buffered)))

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        result: list[BufferedEvent] = await self._run(_buffered, endpoint_id, tx=False)
        return result

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        return bool(await self._run(_seal, endpoint_id, tuple(event_ids), delivery))

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        result: list[Delivery] = await self._run(_claim_due, endpoint_id, now, limit, lease_s)
        return result

    async def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.finish`."""
        result: EndpointHealth = await self._run(
            _finish, endpoint_id, delivery_id, attempt, status, next_attempt_at, reason
        )
        return result

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        result: EndpointHealth = await self._run(_health_op, endpoint_id, tx=False)
        return result

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        return bool(await self._run(_disable, endpoint_id, reason, now))

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        await self._run(_enable, endpoint_id)

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        result: Delivery | None = await self._run(_get, endpoint_id, delivery_id)
        return result

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        result: list[Delivery] = await self._run(_deliveries, endpoint_id, status)
        return result

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        result: list[Delivery] = await self._run(_dead_letters, endpoint_id, since)
        return result

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        return bool(await self._run(_replay, endpoint_id, delivery_id, now))

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        return int(await self._run(_replay_since, since, now, endpoint_id))

    async def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        return int(await self._run(_purge, before))

    async def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        await self._run(_delete_namespace)

    async def aclose(self) -> None:
        """Close the pool if this store opened it (a shared database stays open)."""
        if self._owned:
            await self.database.close()
