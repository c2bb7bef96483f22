"""The SQLite unit of work (:meth:`chatmgmt.storage.sqlite.SQLiteStorage.apply`); the agent
load rows it reads and writes are :mod:`chatmgmt.storage._sqlite_loads`'s.

Short inside the write lock: everything that does not depend on the stored state (the chat,
timer, message, sticky and event JSON) is encoded before ``BEGIN IMMEDIATE``. The agent a
ranked claim will pick is not known then, so the change is bound to a one-off placeholder id
(``"\\x00"`` and 16 random hex digits: no stored value or agent id can hold it) and, once the
pick is made inside the transaction, the placeholder's JSON string is replaced by the picked
id's in the encoded texts — the same texts :meth:`~chatmgmt.ports.Change.bind` would give.
The released agent's new load and the statements that store it are built before the lock
too, from its row as the chat read before the change found it, and used inside only when the
precondition statement reads back the very same row (else built there from the row read
inside).
Inside the lock: one statement for every precondition (the chat's version, the queue that must
be empty, the named and the released agents' loads) and the census report, one for the ranked
pick with its load, then the writes (one statement per table, every row of it at once), then
``COMMIT``.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from ..assignment._load import (
    claimed,
    eligible,
    fits_claim,
    forced,
    moved_inactive,
    released,
    takes_claim,
    touched,
)
from ..errors import PreconditionFailed, StorageError
from ..model import AgentId, AgentLoad, ChatId
from ..ports import (
    CENSUS_MARKS,
    Applied,
    Census,
    Change,
    Claim,
    RankedClaim,
    retention_start,
)
from ._codec import encode
from ._rank_columns import RANK_NAMES
from ._sqlite_loads import (
    LOAD_COLUMNS,
    Writes,
    append_events,
    load_of,
    load_writes,
    order_by,
    read_load,
    run_writes,
    sql_text,
    write_load,
)
from ._sqlite_reads import CENSUS_ROWS, PROBED_APART, census_of, probe_sql, read_heads
from ._sqlite_sql import MESSAGE_INSERT, OUTBOX_INSERT, TIMER_PUT, outbox_range

if TYPE_CHECKING:
    from ._sqlite_db import SQLiteDatabase

__all__ = [
    "LOAD_COLUMNS",
    "append_events",
    "apply",
    "group_term",
    "load_of",
    "order_by",
    "read_load",
    "write_load",
]

#: Each census mark as the JSON string literal the codec writes for it, by census field.
_MARK_LITERALS = tuple((field, json.dumps(mark)) for field, mark in CENSUS_MARKS.items())

#: A placeholder's JSON string literal in an encoded text: a census mark or a picked agent's
#: one-off id (NUL and 16 hex digits). NUL cannot be in stored text otherwise (``_text``
#: refuses it at the boundary), so a match is always a placeholder.
_PLACEHOLDER = re.compile(r'("\\u0000(?:census:[a-z]+|[0-9a-f]{16})")')

#: An encoded text, or its pieces around its placeholders' literals (at the odd indexes).
Template: TypeAlias = "str | list[str]"


def _census_values(census: Census) -> dict[str, str]:
    """Each census mark as a JSON string literal -> the count it stands for, as JSON text."""
    return {literal: str(getattr(census, field)) for field, literal in _MARK_LITERALS}


def _template(text: str) -> Template:
    """``text`` split around its placeholders' literals, before the lock (the text itself when
    it has none), so that filling them in inside the lock is a join."""
    if "\\u0000" not in text:
        return text
    return _PLACEHOLDER.split(text)


def _fill(template: Template, values: dict[str, str]) -> str:
    """The text of ``template`` with each placeholder's literal replaced by its value in
    ``values`` (a literal without one stays)."""
    if isinstance(template, str):
        return template
    parts = template.copy()
    parts[1::2] = [values.get(literal, literal) for literal in template[1::2]]
    return "".join(parts)


def apply(db: SQLiteDatabase, ns: str, change: Change) -> Applied:
    """Apply ``change`` in one ``BEGIN IMMEDIATE`` transaction (see
    :meth:`chatmgmt.storage.sqlite.SQLiteStorage.apply`)."""
    change.check()
    cid, now, tiebreak = change.chat_id, change.now, change.tiebreak
    claim = change.claim
    release = change.release
    ranked = isinstance(claim, RankedClaim)
    # 0. before the lock: encode everything the stored state does not decide
    if ranked:
        placeholder = AgentId("\x00" + secrets.token_hex(8))
        chat, events, schedule = change.bound(placeholder)
    else:
        placeholder = None
        chat, events, schedule = change.chat, change.events, change.schedule
    chat_row: list[Any] | None = None
    chat_text: Template = ""
    if chat is not None:
        chat_text = _template(encode(chat))
        chat_row = [chat.version, chat.state.value, chat.agent_id, chat_text, retention_start(chat)]
    timers = [(t.key, t.due_at, _template(encode(t))) for t in schedule]
    event_texts = [_template(encode(e)) for e in events]
    message = None if change.message is None else encode(change.message)
    more = [(ns, cid, encode(m)) for m in change.more_messages]
    sticky = None if change.sticky is None else encode(change.sticky)
    lo, hi = outbox_range(ns)
    # the preconditions' reads, one statement: the chat's version, the queue that must be
    # empty, the named agent's and the released agent's loads
    expected = change.expected_version
    named = claim.agent_id if isinstance(claim, Claim) else None
    params: list[Any] = [ns, cid]
    for value in (change.require_empty, named, release, change.census):
        if value is not None:
            params.append(value)
    # whether the watched queues hold an entry, asked with the preconditions when the change
    # writes no queue entry (the answer is then the same after the effects): one statement
    # fewer for the heads report of an end
    watch = change.watch
    probe = len(watch) if 0 < len(watch) <= PROBED_APART and not change.remove else 0
    if probe and change.push is None:
        params.extend(watch)
    else:
        probe = 0
    shape = (
        change.require_empty is not None,
        named is not None,
        release is not None,
        change.census is not None,
        probe,
    )
    precheck: str = sql_text(shape, lambda: _precheck(*shape))
    # the released agent's new load and its statements, built from its row as read now; used
    # inside the lock when the precondition statement reads back the very same row
    prepared = None if release is None else _prepare_release(db, ns, release, cid, now, tiebreak)
    # one cursor for the unit's statements (a cursor per statement cost ~1.6k instructions
    # each inside the lock), closed before COMMIT so that no statement stays open after it
    with db.write() as conn, contextlib.closing(conn.cursor()) as cur:
        # the precondition row, then the census rows of Change.census (read before any effect)
        rows = cur.execute(precheck, params).fetchall()
        row = rows[0]
        version = row[0]
        if expected is None:
            if version is not None:
                raise PreconditionFailed("exists", cid, None, int(version))
        elif version is None:
            raise PreconditionFailed("missing", cid)
        elif int(version) != expected:
            raise PreconditionFailed("version", cid, expected, int(version))
        at = 4
        if change.require_empty is not None:
            if row[at] is not None:
                raise PreconditionFailed("queue_not_empty", cid, queue=change.require_empty)
            at += 1
        census = None if change.census is None else census_of(rows[1:])
        # the claim's precondition, on the state before any write: a named agent must be
        # eligible (or hold the chat already, or be forced); a ranked claim picks by the index;
        # neither ever takes back the agent this change releases
        agent_id: AgentId | None = None
        load: AgentLoad | None = None  # the claimed agent's load, as read before writing
        ranks: Sequence[Any] | None = None  # the picked agent's rank values, as stored
        if isinstance(claim, Claim):
            agent_id = claim.agent_id
            load = load_of(row, at)
            at += len(LOAD_COLUMNS)
            if load is None or not takes_claim(load, claim, cid, release, now):
                raise PreconditionFailed("agent_unavailable", cid, agent_id=agent_id, census=census)
        elif isinstance(claim, RankedClaim):
            excluded = claim.excluded if release is None else claim.excluded | {release}
            agent_id, load, ranks = _pick(db, conn, cur, ns, claim, excluded, cid, now, census)
        # every precondition held: write. The loads as they change, by agent: (new, as read)
        loads: dict[AgentId, tuple[AgentLoad, AgentLoad]] = {}
        # 1. release
        released_load: AgentLoad | None = None
        if prepared is not None and row[at : at + len(LOAD_COLUMNS)] == prepared[0]:
            released_load = prepared[1]
            loads[prepared[1].agent.id] = (prepared[2], released_load)
        elif release is not None:
            released_load = load_of(row, at)
            if released_load is not None:
                loads[release] = (released(released_load, cid, now, tiebreak), released_load)
        # 2. claim (a pick with hold=False takes no slot, it only counts as an assignment)
        if agent_id is not None and load is not None:
            old = loads[agent_id][0] if agent_id in loads else load
            if isinstance(claim, RankedClaim) and not claim.hold:
                new = touched(old, now, tiebreak)
            elif isinstance(claim, Claim) and claim.force:
                new = forced(old, cid, now, tiebreak, claim.channel)
            else:
                assert claim is not None
                new = claimed(old, cid, now, tiebreak, claim.channel, claim.keep_s)
            loads[agent_id] = (new, loads[agent_id][1] if agent_id in loads else load)
        # 3. inactive
        if change.inactive is not None:
            inactive_agent, flag = change.inactive
            pair = loads.get(inactive_agent)
            if pair is None:
                stored = read_load(cur, ns, inactive_agent)
                pair = None if stored is None else (stored, stored)
            if pair is not None:
                loads[inactive_agent] = (moved_inactive(pair[0], cid, flag), pair[1])
        for new, old in loads.values():
            if new is old:
                continue
            if prepared is not None and new is prepared[2] and old is prepared[1]:
                run_writes(cur, prepared[3])
            else:  # the picked agent's rank values as its row holds them, not recomputed
                run_writes(cur, load_writes(ns, new, old, ranks if old is load else None))
        # the picked agent in place of the placeholder and the census counts in place of
        # their marks, in every encoded text
        fills = {} if census is None else _census_values(census)
        if placeholder is not None and agent_id is not None:
            fills[json.dumps(placeholder)] = json.dumps(agent_id)
            if chat_row is not None and chat_row[2] == placeholder:
                chat_row[2] = agent_id
        if chat_row is not None:
            chat_row[3] = _fill(chat_text, fills)
        timer_rows = [(ns, key, due_at, _fill(text, fills)) for key, due_at, text in timers]
        event_rows = [(lo, hi, ns, _fill(text, fills)) for text in event_texts]
        # 4. queue entries: remove, then push (an entry already there keeps its place)
        if change.remove:
            cur.executemany(
                "DELETE FROM queue_entries WHERE ns = ? AND queue = ? AND chat_id = ?",
                [(ns, queue, cid) for queue in change.remove],
            )
        if change.push is not None:
            cur.execute(
                "INSERT OR IGNORE INTO queue_entries (ns, queue, chat_id, score) "
                "VALUES (?, ?, ?, ?)",
                (ns, change.push.queue, cid, change.push.score),
            )
        # 5. timers: cancel, then schedule
        if change.cancel:
            cur.executemany(
                "DELETE FROM timers WHERE ns = ? AND key = ?",
                [(ns, key) for key in change.cancel],
            )
        if timer_rows:
            cur.executemany(TIMER_PUT, timer_rows)
        # 6. the chat, its message, the sticky mark, the events
        if chat_row is not None:
            if expected is None:
                cur.execute(
                    "INSERT INTO chats (version, state, agent_id, data, retain_from, ns, id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*chat_row, ns, cid),
                )
            else:  # the indexed columns only when they change: other indexes stay untouched
                sets, values = ["version = ?", "data = ?"], [chat_row[0], chat_row[3]]
                for name, new_value, stored in (
                    ("state", chat_row[1], row[1]),
                    ("agent_id", chat_row[2], row[2]),
                    ("retain_from", chat_row[4], row[3]),
                ):
                    if new_value != stored:
                        sets.append(f"{name} = ?")
                        values.append(new_value)
                cur.execute(
                    f"UPDATE chats SET {', '.join(sets)} WHERE ns = ? AND id = ?",
                    (*values, ns, cid),
                )
        if message is not None:
            cur.execute(MESSAGE_INSERT, (ns, cid, message))
        if more:
            cur.executemany(MESSAGE_INSERT, more)
        if sticky is not None and change.sticky is not None:
            cur.execute(
                "INSERT INTO sticky (ns, partner_id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (ns, partner_id) DO UPDATE SET data = excluded.data",
                (ns, change.sticky.partner_id, sticky),
            )
        if event_rows:
            cur.executemany(OUTBOX_INSERT, event_rows)
        # the reports read after the effects: the watched queues' heads, the released load
        heads = tuple(read_heads(cur, ns, watch, row[-1] is not None if probe else None))
        gone: AgentLoad | None = None
        if release is not None:
            gone = loads[release][0] if release in loads else released_load
    # the values returned, as stored (an owned change is applied once: bound in place)
    if ranked and agent_id is not None:
        chat, events, _schedule = change.bound(agent_id, census, in_place=change.owned)
    elif census is not None:
        chat, events, _schedule = change.bound(None, census, in_place=change.owned)
    return Applied(chat, agent_id, events, census, heads, gone)


#: What :func:`_prepare_release` builds: the agent's load columns as read, its load, its
#: load once released, and the statements that store that.
_Prepared: TypeAlias = "tuple[tuple[Any, ...], AgentLoad, AgentLoad, Writes]"


def _prepare_release(
    db: SQLiteDatabase, ns: str, agent_id: AgentId, cid: ChatId, now: float, tiebreak: float
) -> _Prepared | None:
    """The released agent's load as a read made just before found it (the chat read of the
    end: :meth:`SQLiteChatStore.get <chatmgmt.storage.sqlite.SQLiteChatStore.get>` reads the
    chat's agent's load columns in the same statement), released, and the statements that
    would store it, built before the writer's turn: inside it, the precondition statement
    reads the agent's row again, and when every load column is the same the unit takes these
    instead of decoding the row, releasing the slot, computing the rank values and building
    the statements while the other writers wait. None when no such row was read (no read of
    its own: a read transaction costs more than it would save)."""
    raw = db.recall_agent(ns, agent_id)
    if raw is None:
        return None
    old = load_of(raw)
    if old is None:
        return None
    new = released(old, cid, now, tiebreak)
    return raw, old, new, load_writes(ns, new, old)


def _precheck(require_empty: bool, named: bool, release: bool, census: bool, probe: int) -> str:
    """The precondition statement: parameters ``?1`` namespace, ``?2`` chat id, then the
    queue that must be empty, the named agent, the released agent and the census's group,
    those present, then ``probe`` watched queues. Its first row is the preconditions' (its
    last column, with ``probe``, 1 when one of those queues holds an entry, else NULL); with
    ``census``, the group's ``agent_census`` rows follow (``UNION ALL``, padded with NULLs to
    the first row's width: one statement where the census was a second one run before any
    effect)."""
    columns = ["c.version", "c.state", "c.agent_id", "c.retain_from"]
    at = 2
    if require_empty:
        at += 1
        columns.append(
            f"(SELECT 1 FROM queue_entries WHERE ns = ?1 AND queue = ?{at} "
            "AND chat_id != ?2 LIMIT 1)"
        )
    joins = ""
    for alias, present in (("n", named), ("r", release)):
        if present:
            at += 1
            columns.extend(f"{alias}.{name}" for name in LOAD_COLUMNS)
            joins += f" LEFT JOIN agents {alias} ON {alias}.ns = ?1 AND {alias}.id = ?{at}"
    if probe:
        columns.append(f"({probe_sql(at + 1 + census, probe)})")
    sql = (
        f"SELECT {', '.join(columns)} FROM (SELECT 1) "
        f"LEFT JOIN chats c ON c.ns = ?1 AND c.id = ?2{joins}"
    )
    if census:
        sql += " UNION ALL " + CENSUS_ROWS.format(", NULL" * (len(columns) - 4), 1, at + 1)
    return sql


def group_term(group: str) -> str:
    """The condition of the partial rank indexes for ``group``'s kind (schema 8): the rows of
    ``""`` (every agent) or those of the skill groups. A pick states it word for word, since
    SQLite uses a partial index only where the query's own terms hold its condition."""
    return "grp = ''" if not group else "grp != ''"


#: Where the rank values start in a pick's row (after the agent id and the load columns).
_RANKS_AT = 1 + len(LOAD_COLUMNS)


def _pick_sql(order: str, skipped: int, group: str) -> str:
    """The ranked pick's statement: the group's eligible rank rows in ``order``, joined to
    their agents' loads, ``skipped`` excluded agent ids as parameters after ns and group."""
    by = ", ".join(f"r.{column}" for column in order.split(", "))
    not_in = f" AND r.agent_id NOT IN ({', '.join('?' * skipped)})" if skipped else ""
    return (
        f"SELECT r.agent_id, {', '.join(f'a.{name}' for name in LOAD_COLUMNS)}, "
        f"{', '.join(f'r.{name}' for name in RANK_NAMES)} "
        "FROM agent_ranks r JOIN agents a "
        "ON a.ns = r.ns AND a.id = r.agent_id WHERE r.ns = ? AND r.grp = ? "
        f"AND r.{group_term(group)} AND r.eligible = 1{not_in} ORDER BY {by}"
    )


def _pick(
    db: SQLiteDatabase,
    conn: sqlite3.Connection,
    cur: sqlite3.Cursor,
    ns: str,
    claim: RankedClaim,
    excluded: frozenset[AgentId],
    chat_id: ChatId,
    now: float,
    census: Census | None,
) -> tuple[AgentId, AgentLoad, Sequence[Any]]:
    """The first eligible, non-excluded agent of the group by the ranking that fits the claim
    (its channel and fairness cap), with its load and its rank row's values (the
    :data:`~chatmgmt.storage._rank_columns.RANK_NAMES` columns: the claim's writes compare
    the new values with them instead of computing the old ones again inside the lock): one
    indexed ``ORDER BY`` (the excluded agents are skipped in the index walk) joined to the
    agent's row; the first row is the pick unless that agent's channel is full or it reached
    the cap, then the walk goes on."""
    group = claim.group
    order = db.rank_order(conn, claim.ranking, group)
    skip = sorted(excluded)
    sql: str = sql_text(
        ("pick", order, len(skip), not group), lambda: _pick_sql(order, len(skip), group)
    )
    # on the unit's cursor: its next statement (or its closing) ends this one's walk
    for row in cur.execute(sql, (ns, group, *skip)):
        agent_id = AgentId(row[0])
        load = load_of(row, 1)
        if load is None or not eligible(load):  # the index disagrees: never over the limit
            raise StorageError(f"agent_ranks out of step with agent {agent_id!r}")
        if not claim.hold or fits_claim(load, claim, now):
            return agent_id, load, row[_RANKS_AT:]
    raise PreconditionFailed("no_agent", chat_id, queue=group, census=census)
