"""The PostgreSQL adapter's reads: censuses, agents, customers, chats, queues (and their
heads), timers. Each is a generator of statements (see :mod:`~chatmgmt.storage._pg`); ``ns``
is the namespace as stored (bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ..model import (
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Message,
    Sticky,
    Timer,
)
from ..ports import (
    Census,
    GroupCensus,
    QueueHead,
)
from ._codec import decode
from ._pg import (
    Gen,
    Q,
    b,
)
from ._pg_arrays import Bytes


def _census_q(ns: bytes, group: str) -> Q:
    """The census of ``group``: the sum of its ``chatmgmt_agent_census`` rows (schema 7: kept
    by triggers on the rank rows, one row per stripe; one snapshot)."""
    return Q(
        "SELECT COALESCE(sum(n_eligible), 0), COALESCE(sum(n_full), 0), "
        "COALESCE(sum(n_busy), 0), COALESCE(sum(n_away), 0), COALESCE(sum(n_offline), 0), "
        "COALESCE(sum(lim), 0), COALESCE(sum(active), 0) "
        "FROM chatmgmt_agent_census WHERE ns = %s AND grp = %s",
        (ns, group),
        "one",
    )


def _census(row: Any) -> Census:
    return Census(*(int(v) for v in row))


def _agent_census(ns: bytes, group: str) -> Gen[Census]:
    return _census((yield _census_q(ns, group)))


def _agent_censuses(ns: bytes, groups: Sequence[str]) -> Gen[list[GroupCensus]]:
    if not groups:
        return []
    rows = yield Q(
        "SELECT g.i, "
        "count(r.agent_id) FILTER (WHERE r.category = 'eligible'), "
        "count(r.agent_id) FILTER (WHERE r.category = 'full'), "
        "count(r.agent_id) FILTER (WHERE r.category = 'busy'), "
        "count(r.agent_id) FILTER (WHERE r.category = 'away'), "
        "count(r.agent_id) FILTER (WHERE r.category = 'offline'), "
        "COALESCE(sum(r.lim) FILTER (WHERE r.status = 'online'), 0), "
        "COALESCE(sum(r.active) FILTER (WHERE r.status = 'online'), 0), "
        "COALESCE(sum(r.active + COALESCE(json_array_length(a.data::json -> 'inactive'), 0)), 0), "
        "COALESCE(sum(r.free) FILTER (WHERE r.status = 'online'), 0) "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS g(name, i) "
        "LEFT JOIN chatmgmt_agent_ranks r ON r.ns = %s AND r.grp = g.name "
        "LEFT JOIN chatmgmt_agents a ON a.ns = r.ns AND a.id = r.agent_id "
        "GROUP BY g.i ORDER BY g.i",
        (list(groups), ns),
        "all",
    )
    return [GroupCensus(*(int(v) for v in row[1:])) for row in rows]


def _agent_get(ns: bytes, agent_id: str) -> Gen[AgentLoad | None]:
    row = yield Q(
        "SELECT data FROM chatmgmt_agents WHERE ns = %s AND id = %s", (ns, agent_id), "one"
    )
    return None if row is None else decode(row[0], AgentLoad)


def _agent_list(ns: bytes, group: str | None) -> Gen[list[AgentLoad]]:
    if group is None:
        rows = yield Q("SELECT data FROM chatmgmt_agents WHERE ns = %s", (ns,), "all")
    else:
        rows = yield Q(
            "SELECT a.data FROM chatmgmt_agent_ranks r JOIN chatmgmt_agents a "
            "ON a.ns = r.ns AND a.id = r.agent_id WHERE r.ns = %s AND r.grp = %s",
            (ns, group),
            "all",
        )
    loads = [decode(r[0], AgentLoad) for r in rows]
    loads.sort(key=lambda ld: (ld.agent.account_order, ld.agent.id))
    return loads


def _customer_get(ns: bytes, partner_id: str) -> Gen[Customer | None]:
    row = yield Q(
        "SELECT data FROM chatmgmt_customers WHERE ns = %s AND partner_id = %s",
        (ns, partner_id),
        "one",
    )
    return None if row is None else decode(row[0], Customer)


def _chat_get(ns: bytes, chat_id: str) -> Gen[Chat | None]:
    row = yield Q("SELECT data FROM chatmgmt_chats WHERE ns = %s AND id = %s", (ns, chat_id), "one")
    return None if row is None else decode(row[0], Chat)


def _chat_messages(ns: bytes, chat_id: str) -> Gen[list[Message]]:
    rows = yield Q(
        "SELECT data FROM chatmgmt_messages WHERE ns = %s AND chat_id = %s ORDER BY seq",
        (ns, chat_id),
        "all",
    )
    return [decode(r[0], Message) for r in rows]


def _chat_list(ns: bytes, state: ChatState | None, agent_id: str | None) -> Gen[list[Chat]]:
    sql = "SELECT data FROM chatmgmt_chats WHERE ns = %s"
    params: list[Any] = [ns]
    if state is not None:
        sql += " AND state = %s"
        params.append(ChatState(state).value)
    if agent_id is not None:
        sql += " AND agent_id = %s"
        params.append(agent_id)
    rows = yield Q(sql + " ORDER BY seq", params, "all")
    return [decode(r[0], Chat) for r in rows]


def _chat_sticky(ns: bytes, partner_id: str) -> Gen[Sticky | None]:
    row = yield Q(
        "SELECT data FROM chatmgmt_sticky WHERE ns = %s AND partner_id = %s",
        (ns, partner_id),
        "one",
    )
    return None if row is None else decode(row[0], Sticky)


def _queue_peek(ns: bytes, queue: str, limit: int) -> Gen[list[tuple[ChatId, float]]]:
    rows = yield Q(
        "SELECT chat_id, score FROM chatmgmt_queue_entries WHERE ns = %s AND queue = %s "
        "ORDER BY score, seq LIMIT %s",
        (ns, b(queue), max(0, limit)),
        "all",
    )
    return [(ChatId(r[0]), float(r[1])) for r in rows]


def _queue_position(ns: bytes, queue: str, chat_id: str) -> Gen[int | None]:
    row = yield Q(
        "WITH me AS (SELECT score, seq FROM chatmgmt_queue_entries "
        "WHERE ns = %s AND queue = %s AND chat_id = %s) "
        "SELECT (SELECT count(*) FROM chatmgmt_queue_entries e, me "
        "WHERE e.ns = %s AND e.queue = %s "
        "AND (e.score < me.score OR (e.score = me.score AND e.seq < me.seq))) FROM me",
        (ns, b(queue), chat_id, ns, b(queue)),
        "one",
    )
    return None if row is None else int(row[0])


def _queue_length(ns: bytes, queue: str) -> Gen[int]:
    row = yield Q(
        "SELECT count(*) FROM chatmgmt_queue_entries WHERE ns = %s AND queue = %s",
        (ns, b(queue)),
        "one",
    )
    return int(row[0])


def _heads_q(ns: bytes, queues: Sequence[str]) -> Q:
    """The heads of ``queues``: one statement (one snapshot), one row per queue (in no
    particular order: its first column is the queue's place in ``queues``, from 1). A queue's
    first and oldest entries (and the oldest one's chat) are only looked for when it is not
    empty: an end watches ~5 queues, usually empty, and looking in each cost the server ~105k
    instructions per open+end pair (docs/performance.md)."""
    return Q(
        "SELECT q.i, q.n, CASE WHEN q.n > 0 THEN "
        "(SELECT chat_id FROM chatmgmt_queue_entries e WHERE e.ns = %s AND e.queue = q.name "
        "ORDER BY score, seq LIMIT 1) END, "
        "o.chat_id, o.since "
        # OFFSET 0: the count is computed once per queue (a pulled-up subquery would copy it
        # into each use)
        "FROM (SELECT u.name, u.i, (SELECT count(*) FROM chatmgmt_queue_entries e "
        "WHERE e.ns = %s AND e.queue = u.name) AS n "
        "FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(name, i) OFFSET 0) AS q "
        # the oldest entry's chat is read inside the lateral, by its whole key (read outside,
        # on o.chat_id, it was planned as a scan of the namespace's chats, even for an empty
        # queue); ``q.n > 0`` is a one-time filter: the lateral reads nothing for an empty
        # queue. (Every lookup in a CASE instead, nothing run at all for an empty queue, cost
        # ~60k more per pair: more plan nodes to start)
        "LEFT JOIN LATERAL (SELECT e.chat_id, "
        "(SELECT COALESCE(c.data::json ->> 'queued_at', c.data::json ->> 'created_at')::float8 "
        "FROM chatmgmt_chats c WHERE c.ns = e.ns AND c.id = e.chat_id) AS since "
        "FROM chatmgmt_queue_entries e WHERE q.n > 0 AND e.ns = %s "
        "AND e.queue = q.name ORDER BY e.seq LIMIT 1) o ON true",
        (ns, ns, Bytes(b(q) for q in queues), ns),
        "all",
    )


def _heads(queues: Sequence[str], rows: Sequence[Any]) -> list[QueueHead]:
    """The :class:`QueueHead` of each of ``queues`` from the rows of :func:`_heads_q`."""
    placed = {int(row[0]): row for row in rows}
    out = []
    for place, queue in enumerate(queues, 1):
        _i, count, first, oldest, since = placed[place]
        if not count:
            out.append(QueueHead(queue))
        else:
            out.append(
                QueueHead(
                    queue,
                    int(count),
                    ChatId(first),
                    ChatId(oldest),
                    None if since is None else float(since),
                )
            )
    return out


def _queue_heads(ns: bytes, queues: Sequence[str]) -> Gen[list[QueueHead]]:
    return _heads(queues, (yield _heads_q(ns, queues)))


def _timer_get(ns: bytes, key: str) -> Gen[Timer | None]:
    row = yield Q(
        "SELECT due_at, data FROM chatmgmt_timers WHERE ns = %s AND key = %s",
        (ns, b(key)),
        "one",
    )
    return None if row is None else attrs.evolve(decode(row[1], Timer), due_at=row[0])
