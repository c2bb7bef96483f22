"""What the two faces of the PostgreSQL adapter share: the storage schema's version and its
migration, the ``database`` argument, the namespace's key and the ranked claim's index (each
face, :mod:`._pg_sync` and :mod:`._pg_async`, runs the same ``_pg_*`` operations on its own
driver; :mod:`chatmgmt.storage.postgres` re-exports them)."""

from __future__ import annotations

from typing import Any

from ..ports import Change, RankedClaim
from ._pg import Gen, Q, b
from ._pg_loads import _rank_index_sql
from ._pg_schema import MIGRATIONS

_MIGRATIONS = MIGRATIONS

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this release writes (component ``storage`` of
``chatmgmt_schema_version``); older databases are migrated on open."""

_COMPONENT = "storage"


def _schema_version() -> Gen[int]:
    row = yield Q(
        "SELECT version FROM chatmgmt_schema_version WHERE component = %s", (_COMPONENT,), "one"
    )
    return 0 if row is None else int(row[0])


def _database(target: Any, cls: type[Any]) -> Any:
    if isinstance(target, cls):
        return target
    return cls(target)


def _namespace_key(namespace: object) -> bytes:
    """The key of ``namespace`` in every row (TypeError when it is not a string)."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace: must be a string, got {namespace!r}")
    return b(namespace)


def _rank_index(change: Change) -> tuple[str, str] | None:
    """The name and DDL of the partial index a ranked claim of ``change`` walks (created once
    per database before the unit), or None when the change claims no ranked agent."""
    if isinstance(change.claim, RankedClaim):
        return _rank_index_sql(change.claim.ranking.keys)
    return None
