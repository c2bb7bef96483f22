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

import orjson

from ..assignment._load import census_category, eligible
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


def _groups(groups: frozenset[str]) -> tuple[str, ...]:
    """An agent's rank rows' groups: its skill groups and ``""``, in order (cached per set)."""
    known = _GROUPS.get(groups)
    if known is None:
        if len(_GROUPS) >= 4096:
            _GROUPS.clear()
        known = _GROUPS[groups] = tuple(sorted({*groups, ""}))
    return known


_GROUPS: dict[frozenset[str], tuple[str, ...]] = {}


#: The raw rank values of a load (:data:`ALL_FIELDS`' key: every rank field ascending).
_RANK_KEY = ALL_FIELDS.key


def _rank_values(load: AgentLoad) -> tuple[Any, ...]:
    agent = load.agent
    return (
        int(eligible(load)),
        agent.status._value_,  # the enum's own attribute: .value is a descriptor call
        census_category(load),
        agent.reception_limit,
        *_RANK_KEY(load),
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
#: read back costs a dict lookup and two parses of id lists (orjson) instead of a decode.
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
    chats, inactive, channels, recent = row[at + 2], row[at + 3], row[at + 7], row[at + 8]
    return AgentLoad(
        _agent(text),
        _NO_IDS if chats == "[]" else frozenset(_loads(chats)),
        _NO_IDS if inactive == "[]" else frozenset(_loads(inactive)),
        row[at + 4],
        row[at + 5],
        row[at + 6],
        row[at + 1],
        {} if channels is None else _loads(channels),
        () if recent is None else tuple(_loads(recent)),
    )


_NO_IDS: frozenset[ChatId] = frozenset()


def _loads(text: str) -> Any:
    """The value of the JSON ``text`` of a load column (an id list, the channels or the recent
    assignment times): orjson, ~5 times faster than ``json.loads`` on these short texts (the
    picked agent's row is decoded inside the write lock); ``json.loads`` for what orjson
    refuses (a text written by hand: NaN, an integer past 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _dumps(value: Any) -> str:
    """``value`` (a load column's list or dict) as JSON text: orjson's compact text, which
    ``json.loads`` and SQLite's JSON functions read alike, ~5 times faster than
    ``json.dumps`` (a claim builds its writes inside the write lock); ``json.dumps`` for what
    orjson refuses (a string with a lone surrogate)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


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


def load_writes(
    ns: str, new: AgentLoad, old: AgentLoad | None, stored: Sequence[Any] | None = None
) -> Writes:
    """The statements that store ``new`` in place of ``old`` (None: a new agent) and its rank
    rows (rebuilt when the groups changed); pure, so that the unit of work can build them
    before its turn (:func:`chatmgmt.storage._sqlite_unit.apply`, the released agent). A slot
    operation (the same configuration) writes the load's columns only. ``stored``: ``old``'s
    rank values as its rank row holds them (:data:`RANK_NAMES`' columns, read with the load:
    the ranked pick's row), instead of computing them again from ``old``."""
    agent = new.agent
    aid = agent.id
    chats, inactive = new.chats, new.inactive
    ids = (_dumps(sorted(chats)) if chats else "[]", _dumps(sorted(inactive)) if inactive else "[]")
    times = (
        new.last_assigned_at,
        new.idle_since,
        new.tiebreak,
        _dumps(dict(new.channels)) if new.channels else None,
        _dumps(list(new.recent)) if new.recent else None,
    )
    writes: Writes = []
    if old is not None and old.agent is agent and old.version == new.version:
        writes.append((_SLOTS_UPDATE, ((*ids, *times, ns, aid),)))
    else:
        row = (ns, aid, encode(agent), new.version, *ids, *times)
        writes.append((_LOAD_UPSERT, (row,)))
    values = _rank_values(new)
    if old is None or old.agent.skill_groups != agent.skill_groups:
        writes.append(("DELETE FROM agent_ranks WHERE ns = ? AND agent_id = ?", ((ns, aid),)))
        groups = _groups(agent.skill_groups)
        writes.append((_RANK_INSERT, [(ns, group, aid, *values) for group in groups]))
        return writes
    # only the columns that change, so that the rank indexes of unchanged ones stay
    # untouched (a release leaves ``last_assigned_at`` and its indexes alone). Values read
    # back from the rank row are compared by value: a column's affinity stores 1 and 1.0
    # alike, so an equal value leaves the row as it is
    if stored is None:
        before = _rank_values(old)
        moved = tuple(
            i
            for i, (value, was) in enumerate(zip(values, before, strict=True))
            if value != was or type(value) is not type(was)
        )
    else:
        moved = tuple(
            i for i, (value, was) in enumerate(zip(values, stored, strict=True)) if value != was
        )
    if moved:
        sets = tuple(values[i] for i in moved)
        writes.append(
            (
                _ranks_update(moved),
                [(*sets, ns, aid, group) for group in _groups(agent.skill_groups)],
            )
        )
    return writes


def _ranks_update(moved: tuple[int, ...]) -> str:
    """The update of one rank row (by its whole key) that sets the :data:`RANK_NAMES` at the
    indexes ``moved``, built once per set of them. One row per run: SQLite updates a row
    found by its key in one pass, where an update of several rows (here, with the census
    triggers) first collects their keys in an ephemeral table."""
    known = _RANKS_SQL.get(moved)
    if known is None:
        known = _RANKS_SQL[moved] = _ranks_sql(moved)
    return known


#: :func:`_ranks_update`'s texts by the indexes of the columns they set (at most 2^12).
_RANKS_SQL: dict[tuple[int, ...], str] = {}


def _ranks_sql(moved: tuple[int, ...]) -> str:
    sets = ", ".join(f"{RANK_NAMES[i]} = ?" for i in moved)
    return f"UPDATE agent_ranks SET {sets} WHERE ns = ? AND agent_id = ? AND grp = ?"


def append_events(conn: sqlite3.Connection, ns: str, events: Iterable[Event]) -> None:
    """Append ``events`` to the outbox (one statement)."""
    lo, hi = outbox_range(ns)
    rows = [(lo, hi, ns, encode(event)) for event in events]
    if rows:
        conn.executemany(OUTBOX_INSERT, rows)
