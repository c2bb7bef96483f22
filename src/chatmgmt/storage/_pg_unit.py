"""The PostgreSQL unit of work (:func:`_apply_op`, run by
:meth:`~chatmgmt.storage.postgres.PostgresStorage.apply`): one round trip reads and locks what
the unit needs (the chat's row, the named agents' rows, the ranked pick's first ``SKIP
LOCKED`` try, the census), the preconditions are checked, the pure rules of
:mod:`chatmgmt.assignment._load` compute the new loads, and one statement
(:data:`_WRITE`, the function ``chatmgmt_write_unit7``) writes them and the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..assignment._load import (
    CENSUS_CATEGORIES,
    census_category,
    claimed,
    eligible,
    fits_claim,
    forced,
    moved_inactive,
    released,
    takes_claim,
    touched,
)
from ..errors import PreconditionFailed
from ..model import (
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    Event,
    Timer,
)
from ..ports import (
    Applied,
    Census,
    Change,
    Claim,
    QueueHead,
    RankedClaim,
    retention_start,
)
from ._codec import decode, encode
from ._pg import (
    AT_COMMIT,
    Gen,
    Q,
    b,
)
from ._pg_arrays import Bytes, Floats, Longs, Texts
from ._pg_loads import _order_by, _rank_values
from ._pg_outbox import _UNITS, _notify
from ._pg_reads import _census, _census_q, _heads, _heads_q

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


#: the unit of work's COMMIT sent by the operation itself, with the watched queues' heads
_AT_COMMIT = Q("COMMIT", fetch=AT_COMMIT)


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
        if load is None or not takes_claim(load, claim, cid, release, now):
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
