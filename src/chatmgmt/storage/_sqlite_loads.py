"""The SQLite adapter's agent load rows: an agent's load in the ``agents`` columns and its rank
rows (one per skill group, ``""`` included) in ``agent_ranks``, read and written with the pure
rules' results (:mod:`chatmgmt.assignment._load`), the ranking's ``ORDER BY`` built from
whitelisted column names, and the outbox append every writer shares. Used by the unit of work
(:mod:`chatmgmt.storage._sqlite_unit`), the agent store and the migrations.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

from ..assignment._load import census_category, eligible, rank_entry
from ..errors import StorageError
from ..model import Agent, AgentLoad, ChatId, Event, RankKey
from ._codec import decode, encode
from ._rank_columns import ALL_FIELDS, RANK_COLUMNS, RANK_NAMES
from ._sqlite_sql import OUTBOX_INSERT, outbox_range

__all__ = [
    "LOAD_COLUMNS",
    "LOAD_READ",
    "Executor",
    "Writes",
    "append_events",
    "load_of",
    "load_writes",
    "order_by",
    "read_load",
    "run_writes",
    "sql_text",
    "write_load",
    "write_loads",
]

_RANK_INSERT = (
    f"INSERT INTO agent_ranks (ns, grp, agent_id, {', '.join(RANK_NAMES)}) "
    f"VALUES (?, ?, ?, {', '.join('?' * len(RANK_NAMES))})"
)


#: What runs a statement: a connection, or the one cursor a unit of work runs its statements on.
Executor: TypeAlias = "sqlite3.Connection | sqlite3.Cursor"

#: SQL texts already built, by what shapes them (a ranking's keys, which joins a precheck has,
#: how many agents a pick excludes); cleared when it grows past _SQL_KEPT.
_SQL: dict[object, Any] = {}
_SQL_KEPT = 1024


def sql_text(key: object, build: Callable[[], Any]) -> Any:
    """The SQL text cached under ``key``, built by ``build`` the first time."""
    known = _SQL.get(key)
    if known is None:
        if len(_SQL) >= _SQL_KEPT:
            _SQL.clear()
        known = _SQL[key] = build()
    return known


def order_by(keys: Sequence[RankKey]) -> tuple[str, str]:
    """(index name, ORDER BY list) of a ranking, from whitelisted column names only."""
    known: tuple[str, str] = sql_text(("order", tuple(keys)), lambda: _order_by(keys))
    return known


def _order_by(keys: Sequence[RankKey]) -> tuple[str, str]:
    cols: list[str] = []
    names: list[str] = []
    for key in keys:
        column = RANK_COLUMNS.get(key.field)
        if column is None:  # RankKey validates its field; this is a second fence
            raise StorageError(f"rank field {key.field!r} has no column")
        cols.append(f"{column} DESC" if key.descending else column)
        names.append(f"{column}_d" if key.descending else column)
    cols.append("agent_id")
    return "rank_" + "__".join(names), ", ".join(cols)


def _groups(loads: Iterable[str]) -> list[str]:
    return sorted({*loads, ""})


def _rank_values(load: AgentLoad) -> tuple[Any, ...]:
    values, _agent_id = rank_entry(load, ALL_FIELDS)
    return (
        int(eligible(load)),
        load.agent.status.value,
        census_category(load),
        load.agent.reception_limit,
        *values,
    )


#: The columns of an ``agents`` row that make its load, in :func:`load_of`'s order: the
#: agent's configuration as JSON (``data``), its version, then the load's fields as columns
#: (``channels`` and ``recent`` as JSON, NULL while empty: capacity per channel and the
#: fairness cap, schema 6).
LOAD_COLUMNS = (
    "data",
    "version",
    "chats",
    "inactive",
    "last_assigned_at",
    "idle_since",
    "tiebreak",
    "channels",
    "recent",
)
_LOAD_LIST = ", ".join(LOAD_COLUMNS)
_LOAD_UPSERT = (
    f"INSERT INTO agents (ns, id, {_LOAD_LIST}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ns, id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in LOAD_COLUMNS)
)
_SLOTS_UPDATE = (
    "UPDATE agents SET chats = ?, inactive = ?, last_assigned_at = ?, idle_since = ?, "
    "tiebreak = ?, channels = ?, recent = ? WHERE ns = ? AND id = ?"
)

#: Decoded agent configurations by their JSON: a configuration changes rarely, so a load
#: read back costs a dict lookup and two ``json.loads`` of id lists instead of a decode.
_AGENTS: dict[str, Agent] = {}
_AGENTS_KEPT = 4096


def _agent(text: str) -> Agent:
    agent = _AGENTS.get(text)
    if agent is None:
        agent = decode(text, Agent)
        if len(_AGENTS) >= _AGENTS_KEPT:
            _AGENTS.clear()
        _AGENTS[text] = agent
    return agent


def load_of(row: Sequence[Any], at: int = 0) -> AgentLoad | None:
    """The load held by ``row[at:at + 9]`` (the :data:`LOAD_COLUMNS`), None when ``row[at]``
    is NULL (no such agent)."""
    text = row[at]
    if text is None:
        return None
    channels, recent = row[at + 7], row[at + 8]
    return AgentLoad(
        _agent(text),
        frozenset(json.loads(row[at + 2])),
        frozenset(json.loads(row[at + 3])),
        row[at + 4],
        row[at + 5],
        row[at + 6],
        row[at + 1],
        {} if channels is None else json.loads(channels),
        () if recent is None else tuple(json.loads(recent)),
    )


def _extra(load: AgentLoad) -> tuple[str | None, str | None]:
    """The ``channels`` and ``recent`` columns of ``load`` (NULL while empty)."""
    channels = json.dumps(dict(load.channels)) if load.channels else None
    return channels, json.dumps(list(load.recent)) if load.recent else None


def _ids(ids: frozenset[ChatId]) -> str:
    return json.dumps(sorted(ids)) if ids else "[]"


LOAD_READ = f"SELECT {_LOAD_LIST} FROM agents WHERE ns = ? AND id = ?"
"""An agent's load columns (parameters: namespace, agent id), for :func:`load_of`."""


def read_load(conn: Executor, ns: str, agent_id: str) -> AgentLoad | None:
    """The stored load of ``agent_id``, or None."""
    row = conn.execute(LOAD_READ, (ns, agent_id)).fetchone()
    return None if row is None else load_of(row)


def write_load(
    conn: sqlite3.Connection, ns: str, load: AgentLoad, old: AgentLoad | None
) -> AgentLoad:
    """Store ``load`` (and its rank rows); ``old`` is the load it replaces (None: new agent)."""
    if load is not old:
        write_loads(conn, ns, [(load, old)])
    return load


#: The statements that store a load: (statement, its rows of parameters) pairs, in order.
Writes: TypeAlias = "list[tuple[str, Sequence[Sequence[Any]]]]"


def write_loads(
    conn: Executor, ns: str, loads: Sequence[tuple[AgentLoad, AgentLoad | None]]
) -> None:
    """Store each ``(load, old)`` and its rank rows (see :func:`load_writes`)."""
    for new, old in loads:
        run_writes(conn, load_writes(ns, new, old))


def run_writes(conn: Executor, writes: Writes) -> None:
    """Run the statements of :func:`load_writes` (a statement with one row of parameters by
    ``execute``, with several by ``executemany``)."""
    for sql, rows in writes:
        if len(rows) == 1:
            conn.execute(sql, rows[0])
        else:
            conn.executemany(sql, rows)


def load_writes(ns: str, new: AgentLoad, old: AgentLoad | None) -> Writes:
    """The statements that store ``new`` in place of ``old`` (None: a new agent) and its rank
    rows (rebuilt when the groups changed); pure, so that the unit of work can build them
    before its turn (:func:`chatmgmt.storage._sqlite_unit.apply`, the released agent). A slot
    operation (the same configuration) writes the load's columns only."""
    aid = new.agent.id
    ids = (_ids(new.chats), _ids(new.inactive))
    times = (new.last_assigned_at, new.idle_since, new.tiebreak, *_extra(new))
    writes: Writes = []
    if old is not None and old.agent is new.agent and old.version == new.version:
        writes.append((_SLOTS_UPDATE, ((*ids, *times, ns, aid),)))
    else:
        row = (ns, aid, encode(new.agent), new.version, *ids, *times)
        writes.append((_LOAD_UPSERT, (row,)))
    values = _rank_values(new)
    if old is None or old.agent.skill_groups != new.agent.skill_groups:
        writes.append(("DELETE FROM agent_ranks WHERE ns = ? AND agent_id = ?", ((ns, aid),)))
        groups = _groups(new.agent.skill_groups)
        writes.append((_RANK_INSERT, [(ns, group, aid, *values) for group in groups]))
        return writes
    # only the columns that change, so that the rank indexes of unchanged ones stay
    # untouched (a release leaves ``last_assigned_at`` and its indexes alone)
    moved = [
        (name, value)
        for name, value, before in zip(RANK_NAMES, values, _rank_values(old), strict=True)
        if value != before or type(value) is not type(before)
    ]
    if moved:
        names = tuple(name for name, _ in moved)
        sets = tuple(value for _, value in moved)
        writes.append(
            (
                _ranks_update(names),
                [(*sets, ns, aid, group) for group in _groups(new.agent.skill_groups)],
            )
        )
    return writes


def _ranks_update(names: tuple[str, ...]) -> str:
    """The update of one rank row (by its whole key) that sets ``names`` (rank column names),
    built once per set of names. One row per run: SQLite updates a row found by its key in
    one pass, where an update of several rows (here, with the census triggers) first
    collects their keys in an ephemeral table."""
    known: str = sql_text(("ranks", names), lambda: _ranks_sql(names))
    return known


def _ranks_sql(names: tuple[str, ...]) -> str:
    sets = ", ".join(f"{name} = ?" for name in names)
    return f"UPDATE agent_ranks SET {sets} WHERE ns = ? AND agent_id = ? AND grp = ?"


def append_events(conn: sqlite3.Connection, ns: str, events: Iterable[Event]) -> None:
    """Append ``events`` to the outbox (one statement)."""
    lo, hi = outbox_range(ns)
    rows = [(lo, hi, ns, encode(event)) for event in events]
    if rows:
        conn.executemany(OUTBOX_INSERT, rows)
