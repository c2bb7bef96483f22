"""Agent loads in PostgreSQL: the rank rows' values (:func:`_rank_values`, from the pure rules'
:func:`~chatmgmt.assignment._load.rank_entry`), a ranking's ORDER BY and its partial index
(whitelisted column names only), and the writes of an agent's row and rank rows outside the
unit of work (:func:`_agent_put`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

from ..assignment._load import (
    census_category,
    eligible,
    rank_entry,
    updated_agent,
)
from ..errors import ConflictError, StorageError
from ..model import (
    Agent,
    AgentLoad,
    Event,
    RankKey,
)
from ._codec import decode, encode
from ._pg import (
    Gen,
    Q,
)
from ._pg_outbox import _append
from ._rank_columns import ALL_FIELDS, RANK_COLUMNS, RANK_NAMES


@functools.lru_cache(maxsize=256)
def _order_by(keys: tuple[RankKey, ...]) -> tuple[str, str, str]:
    """(index name, index column list, ORDER BY list over ``r``) of a ranking, from
    whitelisted column names only; the index name is a digest of the column list (PostgreSQL
    cuts identifiers at 63 bytes)."""
    cols: list[str] = []
    for key in keys:
        column = RANK_COLUMNS.get(key.field)
        if column is None:  # RankKey validates its field; this is a second fence
            raise StorageError(f"rank field {key.field!r} has no column")
        cols.append(f"{column} DESC" if key.descending else column)
    cols.append("agent_id")
    listed = ", ".join(cols)
    name = "chatmgmt_rank_" + hashlib.sha256(listed.encode()).hexdigest()[:20]
    return name, listed, ", ".join(f"r.{c}" for c in cols)


def _rank_index_sql(keys: Sequence[RankKey]) -> tuple[str, str]:
    name, listed, _order = _order_by(tuple(keys))
    return name, (
        f"CREATE INDEX IF NOT EXISTS {name} ON chatmgmt_agent_ranks (ns, grp, {listed}) "
        "WHERE eligible"
    )


_RANK_SET = ", ".join(f"{name} = %s" for name in RANK_NAMES)
_RANK_INSERT = (
    f"INSERT INTO chatmgmt_agent_ranks (ns, grp, agent_id, {', '.join(RANK_NAMES)}) "
    f"VALUES (%s, %s, %s, {', '.join(['%s'] * len(RANK_NAMES))})"
)


def _rank_values(load: AgentLoad) -> tuple[Any, ...]:
    values, _agent_id = rank_entry(load, ALL_FIELDS)
    return (
        eligible(load),
        load.agent.status.value,
        census_category(load),
        load.agent.reception_limit,
        *values,
    )


def _write_load(ns: bytes, load: AgentLoad, old: AgentLoad | None) -> Gen[None]:
    """Store ``load`` and its rank rows (the agent's row is locked, or new)."""
    if load is old:
        return
    aid = load.agent.id
    if old is None:
        yield Q(
            "INSERT INTO chatmgmt_agents (ns, id, version, data) VALUES (%s, %s, %s, %s)",
            (ns, aid, load.version, encode(load)),
        )
    else:
        yield Q(
            "UPDATE chatmgmt_agents SET version = %s, data = %s WHERE ns = %s AND id = %s",
            (load.version, encode(load), ns, aid),
        )
    values = _rank_values(load)
    if old is None or old.agent.skill_groups != load.agent.skill_groups:
        if old is not None:
            yield Q("DELETE FROM chatmgmt_agent_ranks WHERE ns = %s AND agent_id = %s", (ns, aid))
        groups = sorted({*load.agent.skill_groups, ""})
        yield Q(_RANK_INSERT, [(ns, g, aid, *values) for g in groups], "many")
    else:
        yield Q(
            f"UPDATE chatmgmt_agent_ranks SET {_RANK_SET} WHERE ns = %s AND agent_id = %s",
            (*values, ns, aid),
        )


def _agent_put(
    ns: bytes,
    agent: Agent,
    now: float,
    events: Sequence[Event],
    tiebreak: float,
    expected: int | None,
    notify: bool,
) -> Gen[AgentLoad]:
    row = yield Q(
        "SELECT data FROM chatmgmt_agents WHERE ns = %s AND id = %s FOR UPDATE",
        (ns, agent.id),
        "one",
    )
    old = None if row is None else decode(row[0], AgentLoad)
    actual = None if old is None else old.version
    if actual != expected:
        raise ConflictError("agent", agent.id, expected, actual)
    load = updated_agent(old, agent, now, tiebreak)
    if old is None:
        inserted = yield Q(
            "INSERT INTO chatmgmt_agents (ns, id, version, data) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (ns, agent.id, load.version, encode(load)),
            "rowcount",
        )
        if inserted != 1:  # registered meanwhile by a transaction that committed first
            raise ConflictError("agent", agent.id, expected, 1)
        values = _rank_values(load)
        groups = sorted({*agent.skill_groups, ""})
        yield Q(_RANK_INSERT, [(ns, g, agent.id, *values) for g in groups], "many")
    else:
        yield from _write_load(ns, load, old)
    yield from _append(ns, events, notify)
    return load
