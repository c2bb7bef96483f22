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
  same operations (generators of statements in this module, see :mod:`~chatmgmt.storage._pg`),
  each on its own psycopg driver; no SQL or rule is written twice.
* The outbox wakes listeners: every transaction that appends events sends a ``NOTIFY`` (on
  commit), and :meth:`PostgresOutbox.wait` blocks until one arrives for its namespace (the
  webhook dispatcher waits on it when idle instead of polling blind).
* Durable as the server is: with ``synchronous_commit=on`` (PostgreSQL's default) a change that
  returned survives a crash of the server.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..assignment._load import (
    CENSUS_CATEGORIES,
    census_category,
    claimed,
    eligible,
    fits_claim,
    forced,
    moved_inactive,
    rank_entry,
    released,
    touched,
    updated_agent,
)
from ..errors import ConflictError, NotFoundError, PreconditionFailed, StorageError
from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Event,
    Message,
    RankKey,
    Sticky,
    Timer,
)
from ..ports import (
    Applied,
    Census,
    Change,
    Claim,
    GroupCensus,
    OutboxEntry,
    QueueHead,
    RankedClaim,
    retention_start,
)
from ._codec import decode, encode
from ._pg import (
    AFTER_COMMIT,
    AT_COMMIT,
    IMPLICIT,
    NOTIFY_CHANNEL,
    AsyncPostgresDatabase,
    Gen,
    PostgresDatabase,
    Q,
    b,
    channel_tag,
    ddl_op,
    migrate_op,
)
from ._pg_arrays import Bytes, Floats, Longs, Texts
from ._pg_schema import MIGRATIONS
from ._rank_columns import ALL_FIELDS, RANK_COLUMNS, RANK_NAMES

__all__ = [
    "SCHEMA_VERSION",
    "AsyncPostgresDatabase",
    "AsyncPostgresStorage",
    "PostgresDatabase",
    "PostgresStorage",
]

# --------------------------------------------------------------------------- schema

_MIGRATIONS = MIGRATIONS

#: The call of ``chatmgmt_write_unit6`` (migration 6): every write of one unit of work (agent
#: rows and their rank rows, queue entries, timers, the chat, its message, the sticky mark and
#: the outbox rows) in one statement, from values the Python rules computed; the function only
#: stores them, in the order the statements did before.
_WRITE = (
    "SELECT chatmgmt_write_unit7(%b::bytea, %b::text, %b::text[], %b::bigint[], %b::text[], "
    "%b::text[], %b::float8[], %b::bytea[], %b::bytea, %b::float8, %b::bytea[], %b::bytea[], "
    "%b::float8[], %b::text[], %b::integer, %b::bigint, %b::text, %b::text, %b::text, "
    "%b::float8, %b::text, %b::text, %b::text, %b::text[])"
)

#: :data:`_WRITE` that also marks the unit as committed for its ``NOTIFY`` (see ``_notify``):
#: the session setting ``chatmgmt.unit`` becomes the unit's token, unless it fails
_WRITE_MARKED = _WRITE[:-1] + "), set_config('chatmgmt.unit', %s, false)"

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this release writes (component ``storage`` of
``chatmgmt_schema_version``); older databases are migrated on open."""

_COMPONENT = "storage"


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


# --------------------------------------------------------------------------- operations
#
# Each function below is one operation: a generator of statements (see _pg). ``ns`` is the
# namespace as stored (bytes).


#: the unit of work's COMMIT sent by the operation itself, with the watched queues' heads
_AT_COMMIT = Q("COMMIT", fetch=AT_COMMIT)


def _notify(ns: bytes, token: str | None = None) -> Q:
    """The ``NOTIFY`` for ``ns``'s listeners, sent after the COMMIT in a transaction of its own
    that does not wait for its WAL flush (see ``_pg.AFTER_COMMIT``: inside the unit of work it
    serialized every commit behind the server's notify lock). With ``token``, after a unit of
    work run as an implicit transaction (``_pg.IMPLICIT``: the server runs this statement
    even if the unit failed), only if the unit committed: its write statement set the
    session's ``chatmgmt.unit`` to ``token`` (:data:`_WRITE_MARKED`), a setting that a failed
    transaction takes back."""
    tag = _tag(ns)
    if token is None:
        return Q(
            "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)",
            (NOTIFY_CHANNEL, tag),
            AFTER_COMMIT,
        )
    return Q(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s) "
        "WHERE current_setting('chatmgmt.unit', true) = %s",
        (NOTIFY_CHANNEL, tag, token),
        AFTER_COMMIT,
    )


@functools.lru_cache(maxsize=1024)
def _tag(ns: bytes) -> str:
    """:func:`~chatmgmt.storage._pg.channel_tag` of a stored namespace (a sha256, once)."""
    return channel_tag(ns.decode("utf-8", "surrogatepass"))


#: tokens of the units of work that notify (``_notify``): increasing within a process, and a
#: connection belongs to one process, so a failed unit's token is never its session's setting
_UNITS = itertools.count(1)


def _append(ns: bytes, events: Sequence[Event], notify: bool) -> Gen[None]:
    """The events as outbox rows, in order, in one statement (and the ``NOTIFY``)."""
    if not events:
        return
    yield Q(
        "INSERT INTO chatmgmt_outbox (ns, data) SELECT %s, e.data "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS e(data, n) ORDER BY e.n",
        (ns, [encode(event) for event in events]),
    )
    if notify:
        yield _notify(ns)


def _put_timer(ns: bytes, timer: Timer) -> Q:
    return Q(
        "INSERT INTO chatmgmt_timers (ns, key, due_at, data) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (ns, key) DO UPDATE SET due_at = excluded.due_at, data = excluded.data, "
        "seq = excluded.seq",
        (ns, b(timer.key), timer.due_at, encode(timer)),
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


#: The named agents' rows, locked one by one in the order given (sorted ids: the lock
#: order), each reached by its whole key (``id = ANY(...)`` was planned as a scan of the
#: namespace's agents).
_LOCK_AGENTS = (
    "SELECT a.id, a.data FROM unnest(%s::text[]) WITH ORDINALITY AS u(id, n) "
    "CROSS JOIN LATERAL (SELECT id, data FROM chatmgmt_agents "
    "WHERE ns = %s AND id = u.id FOR UPDATE) AS a ORDER BY u.n"
)


def _pick_sql(claim: RankedClaim) -> str:
    """The ranked claim's SELECT (without ``SKIP LOCKED``): the first eligible, non-excluded
    agent of the group by the ranking, its agent row locked."""
    _name, _listed, order = _order_by(tuple(claim.ranking.keys))
    return (
        "SELECT a.id, a.data FROM chatmgmt_agent_ranks r JOIN chatmgmt_agents a "
        "ON a.ns = r.ns AND a.id = r.agent_id "
        "WHERE r.ns = %s AND r.grp = %s AND r.eligible AND r.agent_id <> ALL(%s) "
        f"ORDER BY {order} LIMIT 1 FOR UPDATE OF a"
    )


def _pick(
    ns: bytes,
    claim: RankedClaim,
    excluded: frozenset[AgentId],
    cid: ChatId,
    row: Any,
    now: float,
    census: Census | None,
) -> Gen[tuple[AgentId, AgentLoad]]:
    """The pick of :func:`_pick_sql`, given the answer ``row`` of its first ``SKIP LOCKED``
    try (sent with the unit's first batch): an agent whose locked row is no longer eligible, or
    that the claim does not fit (its channel full, at the fairness cap), is skipped and the pick
    asked again."""
    base = _pick_sql(claim)
    skip = set(excluded)
    while True:
        params = (ns, claim.group, sorted(skip))
        if row is None:
            # every eligible agent left is locked by another transaction (or there is none):
            # wait for the first one, so "no agent" is only said when none has room
            row = yield Q(base, params, "one")
            if row is None:
                raise PreconditionFailed("no_agent", cid, queue=claim.group, census=census)
        load = decode(row[1], AgentLoad)
        if eligible(load) and (not claim.hold or fits_claim(load, claim, now)):
            return AgentId(row[0]), load
        # its rank row predates a commit (not eligible any more), or its channel is full or it
        # reached the fairness cap: the next one
        skip.add(AgentId(row[0]))
        row = yield Q(base + " SKIP LOCKED", (ns, claim.group, sorted(skip)), "one")


def _census_change(
    old: AgentLoad, status: str, category: str, lim: int, active: float
) -> tuple[float, ...]:
    """What an agent's new rank values (``status``, ``category``, ``lim``, ``active``) change
    in the census rows of its groups, its load having been ``old``: 1 or 0 (no change), then
    the change of each census column (``_pg_schema._CENSUS_SUMS``: the agents per category,
    the limits and active chats of the ONLINE ones)."""
    was_status = old.agent.status.value
    was_category = census_category(old)
    was_lim = old.agent.reception_limit if was_status == "online" else 0
    was_active = float(old.active) if was_status == "online" else 0.0  # the column's value
    if status != "online":
        lim, active = 0, 0.0
    if was_category == category and was_lim == lim and was_active == active:
        return _NO_CENSUS_CHANGE
    counts = [0.0] * len(CENSUS_CATEGORIES)
    counts[CENSUS_CATEGORIES.index(was_category)] -= 1.0
    counts[CENSUS_CATEGORIES.index(category)] += 1.0
    return (1.0, *counts, float(lim - was_lim), active - was_active)


_NO_CENSUS_CHANGE = (0.0,) * (2 + len(CENSUS_CATEGORIES) + 1)


def _write_params(
    ns: bytes,
    change: Change,
    loads: Sequence[AgentLoad],
    olds: Mapping[str, AgentLoad],
    bound: tuple[Chat | None, Sequence[Event], Sequence[Timer]],
) -> tuple[Any, ...]:
    """The parameters of :data:`_WRITE` for ``change`` with its chat, events and timers
    ``bound`` (the picked agent and the census filled in), the agents' new ``loads`` and
    their loads before the unit, ``olds``."""
    chat, events, schedule = bound
    texts, nums = Texts(), Floats()
    # per agent: status, category; eligible, limit, the rank columns, then its census change
    for load in loads:
        ok, status, category, lim, *values = _rank_values(load)
        texts += (status, category)
        nums += (1.0 if ok else 0.0, lim, *values)
        nums += _census_change(olds[load.agent.id], status, category, lim, values[0])
    timers = {b(timer.key): timer for timer in schedule}  # a key set twice: the last
    push, sticky = change.push, change.sticky
    mode = 0 if chat is None else 1 if change.expected_version is None else 2
    return (
        ns,
        change.chat_id,
        Texts(load.agent.id for load in loads),
        Longs(load.version for load in loads),
        Texts(encode(load) for load in loads),
        texts,
        nums,
        Bytes(b(q) for q in change.remove),
        None if push is None else b(push.queue),
        None if push is None else push.score,
        Bytes(b(k) for k in change.cancel),
        Bytes(timers),
        Floats(timer.due_at for timer in timers.values()),
        Texts(encode(timer) for timer in timers.values()),
        mode,
        None if chat is None else chat.version,
        None if chat is None else chat.state.value,
        None if chat is None else chat.agent_id,
        None if chat is None else encode(chat),
        None if chat is None else retention_start(chat),
        None if change.message is None else encode(change.message),
        None if sticky is None else sticky.partner_id,
        None if sticky is None else encode(sticky),
        Texts(encode(event) for event in events),
    )


def _apply_op(ns: bytes, change: Change, notify: bool) -> Gen[Applied]:
    cid, now, tiebreak = change.chat_id, change.now, change.tiebreak
    claim, release = change.claim, change.release
    # One round trip reads and locks everything the unit needs, in the lock order: the chat's
    # row, the named agents' rows (in id order, one statement), then the ranked pick's first
    # SKIP LOCKED try. The preconditions are checked below in that order; a failed one rolls
    # back, locks included.
    named: set[str] = set()
    if isinstance(claim, Claim):
        named.add(claim.agent_id)
    if release is not None:
        named.add(release)
    if change.inactive is not None:
        named.add(change.inactive[0])
    reads = [
        Q(
            "SELECT version FROM chatmgmt_chats WHERE ns = %s AND id = %s FOR UPDATE",
            (ns, cid),
            "one",
        )
    ]
    if change.require_empty is not None:
        reads.append(
            Q(
                # empty but for this chat itself (a chat already waiting there may be routed)
                "SELECT 1 FROM chatmgmt_queue_entries"
                " WHERE ns = %s AND queue = %s AND chat_id <> %s LIMIT 1",
                (ns, b(change.require_empty), cid),
                "one",
            )
        )
    if named:
        reads.append(Q(_LOCK_AGENTS, (sorted(named), ns), "all"))
    excluded: frozenset[AgentId] = frozenset()
    if isinstance(claim, RankedClaim):
        excluded = claim.excluded if release is None else claim.excluded | {release}
        reads.append(
            Q(_pick_sql(claim) + " SKIP LOCKED", (ns, claim.group, sorted(excluded)), "one")
        )
    if change.census is not None:  # read before any effect (nothing is written yet)
        reads.append(_census_q(ns, change.census))
    answers = list((yield tuple(reads)))
    census = None if change.census is None else _census(answers.pop())
    row = answers.pop(0)
    expected = change.expected_version
    if expected is None:
        if row is not None:
            raise PreconditionFailed("exists", cid, None, int(row[0]))
    elif row is None:
        raise PreconditionFailed("missing", cid)
    elif int(row[0]) != expected:
        raise PreconditionFailed("version", cid, expected, int(row[0]))
    if change.require_empty is not None and answers.pop(0) is not None:
        raise PreconditionFailed("queue_not_empty", cid, queue=change.require_empty)
    loads: dict[str, AgentLoad] = {}
    if named:
        loads = {r[0]: decode(r[1], AgentLoad) for r in answers.pop(0)}
    agent_id: AgentId | None = None
    if isinstance(claim, Claim):
        agent_id = claim.agent_id
        load = loads.get(agent_id)
        if load is None or not (
            claim.force
            or cid in load.chats
            or cid in load.inactive
            or (fits_claim(load, claim, now) and agent_id != release)
        ):
            raise PreconditionFailed("agent_unavailable", cid, agent_id=agent_id, census=census)
    pick: AgentId | None = None
    if isinstance(claim, RankedClaim):
        pick, picked = yield from _pick(ns, claim, excluded, cid, answers.pop(0), now, census)
        loads[pick] = picked
        agent_id = pick
    # nothing can fail from here on but the write itself (a chat created meanwhile): the
    # picked agent and the census fill their placeholders (in place for an owned change)
    bound: tuple[Chat | None, Sequence[Event], Sequence[Timer]] = (
        change.bound(pick, census, in_place=change.owned)
        if pick is not None or census is not None
        else (change.chat, change.events, change.schedule)
    )
    olds = dict(loads)  # the loads as stored (their census rows count them so)
    # every precondition held: the pure rules compute the new loads (1. release, 2. claim: a
    # pick with hold=False takes no slot, it only counts as an assignment, 3. inactive) ...
    written: dict[str, AgentLoad] = {}
    if release is not None and release in loads:
        loads[release] = written[release] = released(loads[release], cid, now, tiebreak)
    if agent_id is not None:
        old = loads[agent_id]
        if isinstance(claim, RankedClaim) and not claim.hold:
            new = touched(old, now, tiebreak)
        elif isinstance(claim, Claim) and claim.force:
            new = forced(old, cid, now, tiebreak, claim.channel)
        else:
            assert claim is not None
            new = claimed(old, cid, now, tiebreak, claim.channel, claim.keep_s)
        loads[agent_id] = written[agent_id] = new
    if change.inactive is not None:
        inactive_agent, flag = change.inactive
        if inactive_agent in loads:
            old = loads[inactive_agent]
            loads[inactive_agent] = written[inactive_agent] = moved_inactive(old, cid, flag)
    # ... and one statement writes them and the rest (4. queue entries: remove, then push, an
    # entry already there keeping its place; 5. timers: cancel, then schedule; 6. the chat,
    # its message, the sticky mark, the events); a chat created meanwhile by a transaction
    # that committed first makes its INSERT fail: "exists"
    chat, events = bound[0], tuple(bound[1])
    params = _write_params(ns, change, list(written.values()), olds, bound)
    token = str(next(_UNITS)) if notify and events else None
    yield Q(
        _WRITE if token is None else _WRITE_MARKED,
        params if token is None else (*params, token),
        on_unique=PreconditionFailed("exists", cid) if expected is None else None,
    )
    if change.more_messages:  # rare (several messages in one unit): after ``message``
        yield Q(
            "INSERT INTO chatmgmt_messages (ns, chat_id, data) "
            "SELECT %s, %s, m FROM unnest(%s::text[]) WITH ORDINALITY AS u(m, n) ORDER BY n",
            (ns, cid, [encode(m) for m in change.more_messages]),
        )
    if token is not None:
        yield _notify(ns, token)
    heads: tuple[QueueHead, ...] = ()
    if change.watch:
        # the watched queues' heads after the effects, read in the commit's round trip
        rows, _committed = yield (_heads_q(ns, change.watch), _AT_COMMIT)
        heads = tuple(_heads(change.watch, rows))
    return Applied(
        chat=chat,
        agent_id=agent_id,
        events=events,
        census=census,
        heads=heads,
        released=None if release is None else loads.get(release),
    )


# customers -------------------------------------------------------------------


def _customer_get(ns: bytes, partner_id: str) -> Gen[Customer | None]:
    row = yield Q(
        "SELECT data FROM chatmgmt_customers WHERE ns = %s AND partner_id = %s",
        (ns, partner_id),
        "one",
    )
    return None if row is None else decode(row[0], Customer)


def _customer_create(
    ns: bytes, customer: Customer, events: Sequence[Event], notify: bool
) -> Gen[None]:
    inserted = yield Q(
        "INSERT INTO chatmgmt_customers (ns, partner_id, version, data) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (ns, customer.partner_id, customer.version, encode(customer)),
        "rowcount",
    )
    if inserted != 1:
        row = yield Q(
            "SELECT version FROM chatmgmt_customers WHERE ns = %s AND partner_id = %s",
            (ns, customer.partner_id),
            "one",
        )
        raise ConflictError(
            "customer", customer.partner_id, None, None if row is None else int(row[0])
        )
    yield from _append(ns, events, notify)


def _customer_replace(
    ns: bytes, customer: Customer, expected: int, events: Sequence[Event], notify: bool
) -> Gen[None]:
    row = yield Q(
        "SELECT version FROM chatmgmt_customers WHERE ns = %s AND partner_id = %s FOR UPDATE",
        (ns, customer.partner_id),
        "one",
    )
    if row is None:
        raise NotFoundError("customer", customer.partner_id)
    if int(row[0]) != expected:
        raise ConflictError("customer", customer.partner_id, expected, int(row[0]))
    yield Q(
        "UPDATE chatmgmt_customers SET version = %s, data = %s WHERE ns = %s AND partner_id = %s",
        (customer.version, encode(customer), ns, customer.partner_id),
    )
    yield from _append(ns, events, notify)


# agents ----------------------------------------------------------------------


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


# chats -----------------------------------------------------------------------


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


def _chat_purge(ns: bytes, before: float, limit: int) -> Gen[int]:
    rows = yield Q(
        "DELETE FROM chatmgmt_chats WHERE (ns, id) IN (SELECT ns, id FROM chatmgmt_chats "
        "WHERE ns = %s AND retain_from IS NOT NULL AND retain_from < %s "
        "ORDER BY retain_from LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, data",
        (ns, before, limit),
        "all",
    )
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    yield Q("DELETE FROM chatmgmt_messages WHERE ns = %s AND chat_id = ANY(%s)", (ns, ids))
    partners = {decode(r[1], Chat).customer.partner_id for r in rows} - {None}
    if partners:
        yield Q(
            "DELETE FROM chatmgmt_sticky WHERE ns = %s AND partner_id = ANY(%s) "
            "AND (data::json ->> 'at')::float8 < %s",
            (ns, sorted(p for p in partners if p is not None), before),
        )
    return len(rows)


# queues ----------------------------------------------------------------------


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


# outbox ----------------------------------------------------------------------


def _outbox_append(ns: bytes, events: Sequence[Event], notify: bool) -> Gen[None]:
    yield from _append(ns, events, notify)


def _outbox_claim(ns: bytes, limit: int, now: float, lease_s: float) -> Gen[list[OutboxEntry]]:
    rows = yield Q(
        "UPDATE chatmgmt_outbox o SET lease_until = %s, deliveries = o.deliveries + 1 "
        "FROM (SELECT seq FROM chatmgmt_outbox WHERE ns = %s AND lease_until <= %s "
        "ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) c "
        "WHERE o.seq = c.seq RETURNING o.seq, o.data, o.deliveries",
        (now + lease_s, ns, now, max(0, limit)),
        "all",
    )
    rows.sort(key=lambda r: r[0])
    return [OutboxEntry(str(r[0]), decode(r[1], Event), int(r[2])) for r in rows]


def _outbox_ack(ns: bytes, seqs: list[int]) -> Gen[None]:
    yield Q("DELETE FROM chatmgmt_outbox WHERE ns = %s AND seq = ANY(%s)", (ns, seqs))


def _outbox_pending(ns: bytes) -> Gen[int]:
    row = yield Q("SELECT count(*) FROM chatmgmt_outbox WHERE ns = %s", (ns,), "one")
    return int(row[0])


def _outbox_events(ns: bytes) -> Gen[list[Event]]:
    rows = yield Q("SELECT data FROM chatmgmt_outbox WHERE ns = %s ORDER BY seq", (ns,), "all")
    return [decode(r[0], Event) for r in rows]


# timers ----------------------------------------------------------------------


def _timer_cancel(ns: bytes, key: str, due_at: float | None) -> Gen[None]:
    if due_at is None:
        yield Q("DELETE FROM chatmgmt_timers WHERE ns = %s AND key = %s", (ns, b(key)))
    else:
        yield Q(
            "DELETE FROM chatmgmt_timers WHERE ns = %s AND key = %s AND due_at = %s",
            (ns, b(key), due_at),
        )


def _timer_get(ns: bytes, key: str) -> Gen[Timer | None]:
    row = yield Q(
        "SELECT due_at, data FROM chatmgmt_timers WHERE ns = %s AND key = %s",
        (ns, b(key)),
        "one",
    )
    return None if row is None else attrs.evolve(decode(row[1], Timer), due_at=row[0])


def _timer_claim_due(ns: bytes, now: float, limit: int, lease_s: float) -> Gen[list[Timer]]:
    rows = yield Q(
        "WITH due AS (SELECT key, due_at, seq, data FROM chatmgmt_timers "
        "WHERE ns = %s AND due_at <= %s ORDER BY due_at, seq LIMIT %s FOR UPDATE SKIP LOCKED), "
        "moved AS (UPDATE chatmgmt_timers t SET due_at = %s FROM due "
        "WHERE t.ns = %s AND t.key = due.key) "
        "SELECT due_at, data FROM due ORDER BY due_at, seq",
        (ns, now, max(0, limit), now + lease_s, ns),
        "all",
    )
    return [attrs.evolve(decode(r[1], Timer), due_at=r[0]) for r in rows]


# counters --------------------------------------------------------------------


def _counter_hit(ns: bytes, key: str, now: float, window_s: float) -> Gen[int]:
    k = b(key)
    yield Q("INSERT INTO chatmgmt_hits (ns, key, t) VALUES (%s, %s, %s)", (ns, k, now))
    yield Q(
        "DELETE FROM chatmgmt_hits WHERE ns = %s AND key = %s AND t <= %s",
        (ns, k, now - window_s),
    )
    row = yield Q("SELECT count(*) FROM chatmgmt_hits WHERE ns = %s AND key = %s", (ns, k), "one")
    return int(row[0])


def _delete_namespace(ns: bytes) -> Gen[None]:
    for table in (
        "chatmgmt_customers",
        "chatmgmt_agents",
        "chatmgmt_agent_ranks",
        "chatmgmt_agent_census",
        "chatmgmt_chats",
        "chatmgmt_messages",
        "chatmgmt_sticky",
        "chatmgmt_queue_entries",
        "chatmgmt_outbox",
        "chatmgmt_timers",
        "chatmgmt_hits",
    ):
        yield Q(f"DELETE FROM {table} WHERE ns = %s", (ns,))


def _schema_version() -> Gen[int]:
    row = yield Q(
        "SELECT version FROM chatmgmt_schema_version WHERE component = %s", (_COMPONENT,), "one"
    )
    return 0 if row is None else int(row[0])


# --------------------------------------------------------------------------- sync face


def _database(target: Any, cls: type[Any]) -> Any:
    if isinstance(target, cls):
        return target
    return cls(target)


class _Port:
    def __init__(self, storage: PostgresStorage) -> None:
        self._db = storage.database
        self._ns = storage._ns
        self._notify = storage.notify


class PostgresCustomerStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.CustomerStore`."""

    def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        return self._db.run(_customer_get, self._ns, partner_id, tx=False)

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        self._db.run(_customer_create, self._ns, customer, tuple(events), self._notify)

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        self._db.run(
            _customer_replace, self._ns, customer, expected_version, tuple(events), self._notify
        )


class PostgresAgentStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.AgentStore` (slots move only in
    :meth:`PostgresStorage.apply`)."""

    def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See the port: a compare-and-set on the agent's configuration version."""
        return self._db.run(
            _agent_put,
            self._ns,
            agent,
            now,
            tuple(events),
            tiebreak,
            expected_version,
            self._notify,
        )

    def census(self, group: str) -> Census:
        """See the port: one aggregate over the group's rank rows."""
        return self._db.run(_agent_census, self._ns, group, tx=False)

    def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See the port: one statement (one snapshot), per group one aggregate over its rank
        rows (``held`` counts the inactive chats kept in the agent's record)."""
        return self._db.run(_agent_censuses, self._ns, tuple(groups), tx=False)

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        return self._db.run(_agent_get, self._ns, agent_id, tx=False)

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        return self._db.run(_agent_list, self._ns, group, tx=False)


class PostgresChatStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.ChatStore` (read side)."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        return self._db.run(_chat_get, self._ns, chat_id, tx=False)

    def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        return self._db.run(_chat_messages, self._ns, chat_id, tx=False)

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """See the port (in creation order)."""
        return self._db.run(_chat_list, self._ns, state, agent_id, tx=False)

    def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        return self._db.run(_chat_sticky, self._ns, partner_id, tx=False)

    def purge(self, before: float, limit: int) -> int:
        """See the port: one transaction per batch, oldest first by the ``retain_from`` index
        (``SKIP LOCKED``: concurrent purges take different chats)."""
        if limit <= 0:
            return 0
        return self._db.run(_chat_purge, self._ns, before, limit)


class PostgresQueueStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.QueueStore` (read side; by score, then insertion)."""

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        return self._db.run(_queue_peek, self._ns, queue, limit, tx=False)

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        return self._db.run(_queue_position, self._ns, queue, chat_id, tx=False)

    def length(self, queue: str) -> int:
        """See the port."""
        return self._db.run(_queue_length, self._ns, queue, tx=False)

    def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See the port: one statement (one snapshot) over every queue asked for."""
        return self._db.run(_queue_heads, self._ns, tuple(queues), tx=False)


class PostgresOutbox(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.Outbox`: rows leased with ``FOR UPDATE SKIP
    LOCKED``; appends send a ``NOTIFY`` that :meth:`wait` receives."""

    def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        self._db.run(_outbox_append, self._ns, tuple(events), self._notify)

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """See the port."""
        return self._db.run(_outbox_claim, self._ns, limit, now, lease_s)

    def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        seqs = [int(e) for e in entry_ids if str(e).isdigit()]
        if seqs:
            self._db.run(_outbox_ack, self._ns, seqs)

    def pending(self) -> int:
        """See the port."""
        return self._db.run(_outbox_pending, self._ns, tx=False)

    def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        return self._db.run(_outbox_events, self._ns, tx=False)

    def wait(self, timeout: float) -> bool:
        """Block until events are appended in this namespace (True) or ``timeout`` seconds
        pass (False): ``LISTEN`` on a dedicated connection. The webhook dispatcher waits here
        when idle."""
        return self._db.wait(channel_tag(self._ns.decode("utf-8", "surrogatepass")), timeout)


class PostgresTimerStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.TimerStore` (indexed by due time, then insertion;
    leases with ``FOR UPDATE SKIP LOCKED``)."""

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        self._db.run(_timer_cancel, self._ns, key, due_at)

    def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        return self._db.run(_timer_get, self._ns, key, tx=False)

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        return self._db.run(_timer_claim_due, self._ns, now, limit, lease_s)


class PostgresRateCounter(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.RateCounter`."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        return self._db.run(_counter_hit, self._ns, key, now, window_s)


class PostgresStorage:
    """Every storage port in one PostgreSQL database, for one namespace (tenant).

    ``database`` is a DSN, a :class:`psycopg_pool.ConnectionPool` the host already has, or a
    shared :class:`PostgresDatabase`; the schema is created or migrated on first use.
    ``notify`` (default True) sends a ``NOTIFY`` with every transaction that appends events.
    """

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` inside the unit (with its
    first reads, one round trip) and fills the census marks: the core asks for it instead of
    a census read of its own before an open. :attr:`~chatmgmt.ports.Change.watch` is reported
    too (the heads read in the commit's round trip, the released load as written)."""

    def __init__(self, database: Any, namespace: str = "default", *, notify: bool = True) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, PostgresDatabase)
        self.database: PostgresDatabase = _database(database, PostgresDatabase)
        self._namespace = namespace
        self._ns = b(namespace)
        self.notify = notify
        where = repr(self.database)
        self.database.once(
            "migrate:storage", migrate_op, _COMPONENT, _MIGRATIONS, SCHEMA_VERSION, where
        )
        self._customers = PostgresCustomerStore(self)
        self._agents = PostgresAgentStore(self)
        self._chats = PostgresChatStore(self)
        self._queues = PostgresQueueStore(self)
        self._outbox = PostgresOutbox(self)
        self._timers = PostgresTimerStore(self)
        self._counters = PostgresRateCounter(self)

    def __repr__(self) -> str:
        return f"PostgresStorage({self.database!r}, namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def customers(self) -> PostgresCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> PostgresAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> PostgresChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> PostgresQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> PostgresOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> PostgresTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> PostgresRateCounter:
        """Sliding-window counters."""
        return self._counters

    def apply(self, change: Change) -> Applied:
        """Apply ``change`` in one transaction (see :class:`~chatmgmt.ports.Change` and the
        module docstring). Raises :class:`~chatmgmt.errors.PreconditionFailed` (nothing
        committed) when a precondition does not hold,
        :class:`~chatmgmt.errors.ValidationError` for a malformed change."""
        change.check()
        if isinstance(change.claim, RankedClaim):
            name, sql = _rank_index_sql(change.claim.ranking.keys)
            self.database.once(name, ddl_op, sql)
        return self.database.run(_apply_op, self._ns, change, self.notify, tx=IMPLICIT)

    def schema_version(self) -> int:
        """The storage schema version stored in the database."""
        return self.database.run(_schema_version, tx=False)

    def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        self.database.run(_delete_namespace, self._ns)

    def close(self) -> None:
        """Close the connection pool if this storage opened it (from a DSN)."""
        if self._owned:
            self.database.close()


# --------------------------------------------------------------------------- async face


class _APort:
    def __init__(self, storage: AsyncPostgresStorage) -> None:
        self._storage = storage
        self._db = storage.database
        self._ns = storage._ns
        self._notify = storage.notify


class AsyncPostgresCustomerStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncCustomerStore`."""

    async def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_customer_get, self._ns, partner_id, tx=False)

    async def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(_customer_create, self._ns, customer, tuple(events), self._notify)

    async def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(
            _customer_replace, self._ns, customer, expected_version, tuple(events), self._notify
        )


class AsyncPostgresAgentStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncAgentStore`."""

    async def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(
            _agent_put,
            self._ns,
            agent,
            now,
            tuple(events),
            tiebreak,
            expected_version,
            self._notify,
        )

    async def census(self, group: str) -> Census:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_agent_census, self._ns, group, tx=False)

    async def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See :meth:`PostgresAgentStore.censuses`."""
        await self._storage._ready()
        return await self._db.run(_agent_censuses, self._ns, tuple(groups), tx=False)

    async def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_agent_get, self._ns, agent_id, tx=False)

    async def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_agent_list, self._ns, group, tx=False)


class AsyncPostgresChatStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncChatStore`."""

    async def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_get, self._ns, chat_id, tx=False)

    async def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_messages, self._ns, chat_id, tx=False)

    async def list(
        self, state: ChatState | None = None, agent_id: AgentId | None = None
    ) -> list[Chat]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_list, self._ns, state, agent_id, tx=False)

    async def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_sticky, self._ns, partner_id, tx=False)

    async def purge(self, before: float, limit: int) -> int:
        """See :meth:`PostgresChatStore.purge`."""
        if limit <= 0:
            return 0
        await self._storage._ready()
        return await self._db.run(_chat_purge, self._ns, before, limit)


class AsyncPostgresQueueStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncQueueStore`."""

    async def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_queue_peek, self._ns, queue, limit, tx=False)

    async def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_queue_position, self._ns, queue, chat_id, tx=False)

    async def length(self, queue: str) -> int:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_queue_length, self._ns, queue, tx=False)

    async def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See :meth:`PostgresQueueStore.heads`."""
        await self._storage._ready()
        return await self._db.run(_queue_heads, self._ns, tuple(queues), tx=False)


class AsyncPostgresOutbox(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncOutbox`, with :meth:`wait`."""

    async def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(_outbox_append, self._ns, tuple(events), self._notify)

    async def claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> list[OutboxEntry]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_outbox_claim, self._ns, limit, now, lease_s)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        seqs = [int(e) for e in entry_ids if str(e).isdigit()]
        if seqs:
            await self._storage._ready()
            await self._db.run(_outbox_ack, self._ns, seqs)

    async def pending(self) -> int:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_outbox_pending, self._ns, tx=False)

    async def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        await self._storage._ready()
        return await self._db.run(_outbox_events, self._ns, tx=False)

    async def wait(self, timeout: float) -> bool:
        """See :meth:`PostgresOutbox.wait`."""
        return await self._db.wait(channel_tag(self._ns.decode("utf-8", "surrogatepass")), timeout)


class AsyncPostgresTimerStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncTimerStore`."""

    async def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(_timer_cancel, self._ns, key, due_at)

    async def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        await self._storage._ready()
        return await self._db.run(_timer_get, self._ns, key, tx=False)

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_timer_claim_due, self._ns, now, limit, lease_s)


class AsyncPostgresRateCounter(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncRateCounter`."""

    async def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_counter_hit, self._ns, key, now, window_s)


class AsyncPostgresStorage:
    """The async face: every storage port in one PostgreSQL database for one namespace, on
    psycopg's asyncio connections (the same operations as :class:`PostgresStorage`).

    ``database`` is a DSN, a :class:`psycopg_pool.AsyncConnectionPool` the host already has,
    or a shared :class:`AsyncPostgresDatabase`; the schema is created or migrated on first use.
    """

    reports_census = True
    """See :attr:`PostgresStorage.reports_census`."""

    def __init__(self, database: Any, namespace: str = "default", *, notify: bool = True) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, AsyncPostgresDatabase)
        self.database: AsyncPostgresDatabase = _database(database, AsyncPostgresDatabase)
        self._namespace = namespace
        self._ns = b(namespace)
        self.notify = notify
        self._customers = AsyncPostgresCustomerStore(self)
        self._agents = AsyncPostgresAgentStore(self)
        self._chats = AsyncPostgresChatStore(self)
        self._queues = AsyncPostgresQueueStore(self)
        self._outbox = AsyncPostgresOutbox(self)
        self._timers = AsyncPostgresTimerStore(self)
        self._counters = AsyncPostgresRateCounter(self)

    def __repr__(self) -> str:
        return f"AsyncPostgresStorage({self.database!r}, namespace={self._namespace!r})"

    async def _ready(self) -> None:
        await self.database.once(
            "migrate:storage",
            migrate_op,
            _COMPONENT,
            _MIGRATIONS,
            SCHEMA_VERSION,
            repr(self.database),
        )

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def customers(self) -> AsyncPostgresCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> AsyncPostgresAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> AsyncPostgresChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> AsyncPostgresQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> AsyncPostgresOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> AsyncPostgresTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> AsyncPostgresRateCounter:
        """Sliding-window counters."""
        return self._counters

    async def apply(self, change: Change) -> Applied:
        """See :meth:`PostgresStorage.apply`."""
        change.check()
        await self._ready()
        if isinstance(change.claim, RankedClaim):
            name, sql = _rank_index_sql(change.claim.ranking.keys)
            await self.database.once(name, ddl_op, sql)
        return await self.database.run(_apply_op, self._ns, change, self.notify, tx=IMPLICIT)

    async def schema_version(self) -> int:
        """The storage schema version stored in the database."""
        await self._ready()
        return await self.database.run(_schema_version, tx=False)

    async def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        await self._ready()
        await self.database.run(_delete_namespace, self._ns)

    async def aclose(self) -> None:
        """Close the connection pool if this storage opened it (from a DSN)."""
        if self._owned:
            await self.database.close()
