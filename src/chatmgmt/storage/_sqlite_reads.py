"""Reads the SQLite adapter makes both through its ports and inside its unit of work
(:func:`chatmgmt.storage._sqlite_unit.apply`'s reports): a group's census and queue heads.
Each takes the connection (and so the transaction) it runs in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..assignment._load import CENSUS_CATEGORIES
from ..model import ChatId
from ..ports import Census, QueueHead
from ._sqlite_loads import Executor, sql_text

__all__ = [
    "CENSUS_ROWS",
    "HEADS_PROBE",
    "PROBED_APART",
    "census_of",
    "probe_sql",
    "read_census",
    "read_heads",
    "some_queued",
]

#: At most this many queues are probed at once by :func:`some_queued` (bound parameters of
#: one statement).
HEADS_PROBE = 500


#: The census rows of a group (parameters: namespace, group): the columns :func:`census_of`
#: takes, ``{}`` for more NULL columns (the unit of work appends them to its precondition
#: statement, whose row is wider).
CENSUS_ROWS = "SELECT category, n, lim, active{} FROM agent_census WHERE ns = ?{} AND grp = ?{}"


def read_census(conn: Executor, ns: str, group: str) -> Census:
    """The census of ``group`` from its ``agent_census`` rows (schema 7: per census category
    the count, limits and active chats of its agents, kept by triggers on ``agent_ranks``)."""
    return census_of(conn.execute(CENSUS_ROWS.format("", "", ""), (ns, group)).fetchall())


def census_of(rows: Iterable[Sequence[Any]]) -> Census:
    """The census from a group's ``agent_census`` rows (category, count, limits, active; any
    more columns ignored); an ONLINE agent is ``eligible`` or ``full``, so those two give the
    capacity and the load."""
    count: dict[str, int] = dict.fromkeys(CENSUS_CATEGORIES, 0)
    capacity = load = 0
    for row in rows:
        category, n, lim, active = row[:4]
        count[category] = n
        if category == "eligible" or category == "full":
            capacity += lim
            load += active
    return Census(**count, capacity=capacity, load=load)


def some_queued(conn: Executor, ns: str, queues: Sequence[str]) -> bool | None:
    """Whether any of ``queues`` holds an entry (one statement); None when there are more
    than :data:`HEADS_PROBE` of them (not probed)."""
    if len(queues) > HEADS_PROBE:
        return None
    if not queues:
        return False
    sql: str = sql_text(("some_queued", len(queues)), lambda: _probe(len(queues)))
    return conn.execute(sql, (ns, *queues)).fetchone() is not None


PROBED_APART = 8
"""Up to this many queues are probed one index lookup each (``UNION ALL``); more by ``IN``."""


def _probe(n: int) -> str:
    """The statement of :func:`some_queued` for ``n`` queues (``?1`` the namespace). SQLite
    looks an ``IN`` list of more than two values up through an ephemeral table it builds for
    each run, which costs more than a few lookups; past :data:`PROBED_APART` it is ``IN``."""
    if n > PROBED_APART:
        marks = ", ".join(f"?{at}" for at in range(2, n + 2))
        return f"SELECT 1 FROM queue_entries WHERE ns = ?1 AND queue IN ({marks}) LIMIT 1"
    return probe_sql(2, n)


def probe_sql(first: int, n: int) -> str:
    """A query giving 1 when one of ``n`` queues, the parameters from ``?first`` on, holds an
    entry (``?1`` the namespace), no row else: one index lookup per queue (``UNION ALL``,
    ``LIMIT 1``). The unit of work asks it inside its precondition statement."""
    one = "SELECT 1 FROM queue_entries WHERE ns = ?1 AND queue = ?{}"
    return " UNION ALL ".join(one.format(at) for at in range(first, first + n)) + " LIMIT 1"


def read_heads(
    conn: Executor, ns: str, queues: Sequence[str], probed: bool | None = None
) -> list[QueueHead]:
    """The head of each of ``queues`` (:meth:`~chatmgmt.ports.QueueStore.heads`): when none
    of them holds an entry (``probed`` False, or :func:`some_queued` says so) an empty head
    each; else per queue its count, its first entry (the ``queue_order`` index), its oldest
    (the smallest insertion number) and when that chat started waiting (its record's
    ``queued_at``, else ``created_at``). Run it in one transaction for one snapshot."""
    if probed is None and queues:
        probed = some_queued(conn, ns, queues)
    if probed is False or not queues:
        return [QueueHead(queue) for queue in queues]
    return [_head(conn, ns, queue) for queue in queues]


def _head(conn: Executor, ns: str, queue: str) -> QueueHead:
    # the oldest entry is the row of MIN(seq) (SQLite gives a bare column the values of the
    # row an aggregate's min or max comes from): one pass over the queue's entries, where an
    # ``ORDER BY seq LIMIT 1`` sorted them in an ephemeral table, twice
    (count, oldest, since) = conn.execute(
        "SELECT q.n, q.chat_id, (SELECT COALESCE(json_extract(c.data, '$.queued_at'), "
        "json_extract(c.data, '$.created_at')) FROM chats c WHERE c.ns = ?1 "
        "AND c.id = q.chat_id) FROM (SELECT COUNT(*) AS n, chat_id, MIN(seq) "
        "FROM queue_entries WHERE ns = ?1 AND queue = ?2) q",
        (ns, queue),
    ).fetchone()
    if not count:
        return QueueHead(queue)
    (first,) = conn.execute(
        "SELECT chat_id FROM queue_entries WHERE ns = ? AND queue = ? ORDER BY score, seq LIMIT 1",
        (ns, queue),
    ).fetchone()
    return QueueHead(
        queue,
        int(count),
        ChatId(first),
        ChatId(oldest),
        None if since is None else float(since),
    )
