"""The Redis storage adapter: one tenant's state shared by many workers and machines.

Install the extra: ``pip install chatmgmt[redis]`` (redis-py, sync and asyncio).
:class:`RedisStorage` is the sync face, :class:`AsyncRedisStorage` the asyncio face. Both run
the same operations (one copy, in :class:`_Ops`: generators that yield Redis calls) through a
driver, and both faces are generated from one table of port methods (:data:`_PORTS`), so they
differ only in how a call is made.

**Atomicity.** :meth:`RedisStorage.apply` is one Lua script per :class:`~chatmgmt.ports.Change`
(``lua/apply.lua``): it checks every precondition (the chat's version, an empty queue, the
claimed agent, or picks the agent of a ranked claim), and only then writes the release, the
claim, the inactive move, the queue entries, the timers, the chat, its message, the sticky mark
and the events (``XADD`` to the outbox stream) — all of it or nothing. Agent updates
(:meth:`~chatmgmt.ports.AgentStore.put`) are one script with a compare-and-set on the agent's
configuration version; customers likewise. The Lua lives in ``.lua`` files beside this module
and implements the load rules of :mod:`chatmgmt.assignment._load`; a test pins it to them.

**Ranked claims.** The plan names the agent it cannot know with
:data:`~chatmgmt.ports.PICKED` (JSON ``"\\u0000picked"``); the script picks the first eligible
agent of the group by the ranking's sorted set, not excluded, and substitutes the placeholder in
the chat, timer and event JSON it stores with the picked id. The Python side returns the
change bound to the picked agent (:meth:`~chatmgmt.ports.Change.bound`; in place for an
:attr:`~chatmgmt.ports.Change.owned` change, whose JSON was encoded before the script ran),
which equals what was stored.

**Reports.** The same script reads what the caller would otherwise read in round trips of its
own (:attr:`~chatmgmt.ports.Change.census`, :attr:`~chatmgmt.ports.Change.watch`): the group's
census hash before any effect (also on a refused claim), whose counts replace the census marks
(JSON ``"\\u0000census:<field>"``) in the chat, timer and event JSON the way the pick replaces
``PICKED``; after the effects, the heads of the watched queues (one ``EXISTS`` when they are all
empty) and the released agent's load. An open is then one script, an end a chat read and one
script.

**Key layout.** Every key of a tenant starts with ``cm:{<namespace>}:`` — the namespace is the
Redis Cluster *hash tag*, so all of a tenant's keys live in one hash slot and every script
touches keys of one slot only (a cluster spreads tenants across shards). User strings inside
key names (namespace, skill group, agent, queue, chat and counter ids) are escaped (``%``,
``{``, ``}`` and ``:`` become ``%25``, ``%7B``, ``%7D``, ``%3A``), so no id can move a key to
another slot or into another key's name; inside values and sorted-set members they are stored
verbatim.

**Data version.** ``cm:{<namespace>}:dv`` holds the version of the data layout
(:data:`DATA_VERSION`), written by the first script that writes. A namespace holding another
version is refused with :class:`~chatmgmt.errors.StorageError` (by every writing script, and
once per storage object before its first read), so an older release never misreads or damages
data a newer one wrote. Versions 1 (before capacity per channel) and 2 (before a chat's version,
state and creation number shared one field of ``chv``) are read as they are, each chat moved to
the one field at its next change; the first write marks the namespace 3, so a release that
would ignore channel weights or look for a chat's state in ``chs`` refuses it from then on.

**Ranking index.** For every (skill group, ranking) in use, a sorted set holds the eligible
agents (ONLINE, below the limit). Members are the ranking's key encoded as fixed-width,
order-preserving bytes (8 bytes per IEEE-754 double: the sign bit flipped for positive values,
every bit flipped for negative ones; descending keys negated, as :meth:`Ranking.key` does)
followed by the agent id, all with score 0: Redis orders equal scores by memcmp of the member,
which is exactly the order of ``(ranking.key(load), agent_id)``. A pick is ``ZRANGE 0 0``
(O(log n), plus the excluded agents skipped). The scripts keep every index of an agent in step
on each change of its load, and keep a census hash per group.

**Outbox.** A Redis Stream with a consumer group: state scripts ``XADD``; :meth:`claim` first
re-claims (``XCLAIM``) pending entries whose lease expired — leases are kept in a sorted set in
the caller's clock (``now`` + ``lease_s``), so an injected clock works — then reads new entries
with ``XREADGROUP``; :meth:`ack` is ``XACK`` + ``XDEL``. A dispatcher that dies leaves its
pending entries to the next claim after the lease.

**Redis Cluster.** Pass a ``redis.RedisCluster`` (or ``redis.asyncio.RedisCluster``) client, or
a URL with :meth:`RedisStorage.cluster`. :meth:`RedisStorage.delete_namespace` scans every
primary, every page.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Generator, Mapping
from importlib import resources
from typing import Any, TypeVar, cast

import attrs
import orjson

from ..errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailed,
    StorageError,
)
from ..model import (
    RANK_FIELDS,
    Agent,
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Event,
    Message,
    Ranking,
    Sticky,
    Timer,
)
from ..ports import (
    AgentStore,
    Applied,
    AsyncAgentStore,
    AsyncChatStore,
    AsyncCustomerStore,
    AsyncOutbox,
    AsyncQueueStore,
    AsyncRateCounter,
    AsyncTimerStore,
    Census,
    Change,
    ChatStore,
    Claim,
    CustomerStore,
    GroupCensus,
    Outbox,
    OutboxEntry,
    QueueHead,
    QueueStore,
    RankedClaim,
    RateCounter,
    TimerStore,
    retention_start,
)
from ._codec import decode, encode, upgrade_chat
from ._redis_functions import Library, library
from ._redis_wire import wire_for

__all__ = ["DATA_VERSION", "AsyncRedisStorage", "RedisStorage", "key_prefix"]

_T = TypeVar("_T")

DATA_VERSION = 3
"""The version of the Redis data layout this release reads and writes (2: agents may keep
their channel weights and limits, the channels of their held chats and their assignment
times; 3: a chat's version, state and creation number in one field of ``chv``. Version 1
and 2 namespaces read the same and are marked 3 by the first write)."""

# --------------------------------------------------------------------------- key layout

_ESCAPES = {"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"}
_ESCAPE_RE = re.compile(r"[%{}:]")


def _enc(value: str) -> str:
    """Escape a user string for use inside a key name (mirrored by ``enc`` in the Lua)."""
    if "%" in value or "{" in value or "}" in value or ":" in value:
        return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value)
    return value  # (most names: four scans instead of a regex substitution)


def key_prefix(namespace: str) -> str:
    """The prefix of every key of ``namespace``: ``cm:{<escaped namespace>}``."""
    return f"cm:{{{_enc(namespace)}}}"


def _num(value: float) -> str:
    """A float as the exact text Redis and Lua parse back to the same double."""
    return repr(float(value))


def _rid(ranking: Ranking) -> str:
    """A ranking's id from its keys (names are irrelevant to the order): ``field+field-``."""
    parts = []
    for key in ranking.keys:
        if key.field not in RANK_FIELDS:  # RankKey validates; this is a second fence
            raise StorageError(f"rank field {key.field!r} unknown")
        parts.append(f"{key.field}{'-' if key.descending else '+'}")
    return "".join(parts)


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


_STREAM_ID = re.compile(r"^\d+-\d+$")
_SEQ_WIDTH = 20  # queue and timer members start with a zero-padded insertion number

# --------------------------------------------------------------------------- Lua

_SCRIPT_NAMES = (
    "apply",
    "agent_censuses",
    "agent_get",
    "chat_purge",
    "agent_list",
    "agent_put",
    "counter_hit",
    "customer_create",
    "customer_replace",
    "data_version",
    "outbox_ack",
    "outbox_append",
    "outbox_claim",
    "queue_heads",
    "queue_position",
    "timer_cancel",
    "timer_claim_due",
)


def lua_source(name: str) -> str:
    """The text of one Lua file of this package (``lua/<name>.lua``)."""
    return resources.files(__package__).joinpath("lua").joinpath(f"{name}.lua").read_text("utf-8")


@functools.cache
def _full_scripts() -> dict[str, str]:
    head = f"local DATA_VERSION = {DATA_VERSION}\n" + lua_source("prelude") + "\n"
    return {name: head + lua_source(name) for name in _SCRIPT_NAMES}


@functools.cache
def _library() -> Library:
    """Every storage script as one Redis Functions library (see ``_redis_functions``)."""
    return library(
        f"local DATA_VERSION = {DATA_VERSION}\n",
        lua_source("prelude"),
        {name: lua_source(name) for name in _SCRIPT_NAMES},
    )


_DV_MARK = "CHATMGMT_DATA_VERSION "


def _data_version_error(namespace: str, exc: BaseException) -> StorageError | None:
    text = str(exc)
    at = text.find(_DV_MARK)
    if at < 0:
        return None
    found = text[at + len(_DV_MARK) :].split()[0] if text[at + len(_DV_MARK) :].split() else "?"
    return StorageError(
        f"Redis namespace {namespace!r} holds data of version {found}; this release of chatmgmt "
        f"reads versions 1 to {DATA_VERSION} only: upgrade chatmgmt on every worker of this "
        "namespace (or point this one at another namespace)"
    )


# --------------------------------------------------------------------------- operations


@attrs.frozen
class _Script:
    name: str
    args: tuple[Any, ...]


@attrs.frozen
class _Call:
    args: tuple[Any, ...]


@attrs.frozen
class _ScanDelete:
    """Delete every key matching ``pattern`` on every primary (every SCAN page)."""

    pattern: str


_Cmd = _Script | _Call | _ScanDelete
_Gen = Generator[_Cmd, Any, _T]


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


_AGENTS: dict[Any, Agent] = {}
"""Agents decoded from their stored JSON, by that JSON (an agent's configuration changes
rarely, its load on every claim; the frozen value is shared). Emptied when it holds 4,096."""


def _agent(raw: Any) -> Agent:
    agent = _AGENTS.get(raw)
    if agent is None:
        if len(_AGENTS) >= 4096:
            _AGENTS.clear()
        agent = _AGENTS[raw] = decode(raw, Agent)
    return agent


_NONE: frozenset[ChatId] = frozenset()


def _load(reply: Any) -> AgentLoad:
    """An agent's load from a script's ``agent_reply`` (numbers parsed straight from the
    reply's bytes or text: ``float`` and ``int`` read both)."""
    agent_json, last, idle, tb, chats, inactive, version, channels, recent = reply
    pairs = [_s(v) for v in channels] if channels else ()
    return AgentLoad(
        agent=_agent(agent_json),
        chats=frozenset(map(_s, chats)) if chats else _NONE,  # type: ignore[arg-type]
        inactive=frozenset(map(_s, inactive)) if inactive else _NONE,  # type: ignore[arg-type]
        last_assigned_at=float(last),
        idle_since=float(idle),
        tiebreak=float(tb),
        version=int(version),
        channels={ChatId(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)},
        recent=tuple(map(float, recent)),
    )


def _claim_terms(plan: dict[str, Any], claim: Claim | RankedClaim) -> dict[str, Any]:
    """The claim's channel and fairness terms in the plan (only those set)."""
    if claim.channel:
        plan["c"] = claim.channel
    if claim.cap > 0:
        plan["cap"] = str(int(claim.cap))
        plan["w"] = _num(claim.window_s)
    if claim.keep_s > 0:
        plan["k"] = _num(claim.keep_s)
    return plan


_plan_json = orjson.dumps
"""A unit's plan as the apply script reads it: compact UTF-8 JSON (orjson: ~0.3 µs per plan,
where the standard library's encoder took ~3.7 µs)."""


def _events(events: Any) -> tuple[str, ...]:
    return tuple(encode(e) for e in events)


def _version(raw: Any) -> int | None:
    return None if raw is None or raw is False else int(_s(raw))


_CENSUS_FIELDS = tuple(a.name for a in attrs.fields(Census))


class _Ops:
    """Every storage operation of one namespace, as a generator of Redis calls.

    Methods are named ``<port>_<method>`` with the port method's parameters and defaults; the
    faces are generated from them (:data:`_PORTS`).
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = key_prefix(namespace)
        self.retention_indexed = False

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # the unit of work
    def apply(self, change: Change) -> _Gen[Applied]:
        """See :meth:`chatmgmt.ports.Storage.apply` (one Lua script)."""
        change.check()
        chat_id = change.chat_id
        plan: dict[str, Any] = {
            "id": chat_id,
            "now": _num(change.now),
            "tb": _num(change.tiebreak),
        }
        if change.expected_version is not None:
            plan["exp"] = str(int(change.expected_version))
        chat = change.chat
        if chat is not None:
            plan["ver"] = str(int(chat.version))
            plan["state"] = ChatState(chat.state).value
            start = retention_start(chat)
            if start is not None:
                plan["ret"] = _num(start)
        claim = change.claim
        if isinstance(claim, Claim):
            plan["claim"] = _claim_terms({"a": claim.agent_id, "f": claim.force}, claim)
        elif claim is not None:
            plan["claim"] = _claim_terms(
                {
                    "g": _enc(claim.group),
                    "r": _rid(claim.ranking),
                    "x": sorted(claim.excluded),
                    "t": not claim.hold,
                },
                claim,
            )
        if change.release is not None:
            plan["rel"] = change.release
        if change.inactive is not None:
            aid, flag = change.inactive
            plan["inact"] = [aid, "1" if flag else "0"]
        if change.require_empty is not None:
            plan["empty"] = _enc(change.require_empty)
        if change.remove:
            plan["rm"] = [_enc(q) for q in change.remove]
        if change.push is not None:
            plan["push"] = [_enc(change.push.queue), _num(change.push.score)]
        if change.cancel:
            plan["cancel"] = list(change.cancel)
        if change.schedule:
            plan["sched"] = [[t.key, _num(t.due_at)] for t in change.schedule]
        if change.message is not None:
            plan["msg"] = True
        if change.more_messages:
            plan["more"] = str(len(change.more_messages))
        if change.sticky is not None:
            plan["sticky"] = change.sticky.partner_id
        if change.census is not None:
            plan["cen"] = _enc(change.census)
        watch = change.watch
        if watch or change.release is not None:
            plan["hd"] = [_enc(q) for q in watch]
        reply = yield _Script(
            "apply",
            (
                _plan_json(plan),
                "" if chat is None else encode(chat),
                "" if change.message is None else encode(change.message),
                "" if change.sticky is None else encode(change.sticky),
                *(encode(t) for t in change.schedule),
                *(encode(m) for m in change.more_messages),
                *_events(change.events),
            ),
        )
        if int(reply[0]) == 0:
            raise _refusal(
                change, _s(reply[1]), reply[3], _census(reply[6] if len(reply) > 6 else None)
            )
        _, picked, census_raw, heads_raw, released_raw = reply
        census = _census(census_raw)
        heads: tuple[QueueHead, ...] = ()
        if heads_raw is not None and heads_raw is not False:
            heads = tuple(_head(q, item) for q, item in zip(watch, heads_raw, strict=True))
        released = None if not released_raw else _load(released_raw)
        agent_id = None
        ranked = None
        if isinstance(claim, Claim):
            agent_id = claim.agent_id
        elif claim is not None:
            agent_id = ranked = AgentId(_s(picked))
        events = change.events
        if ranked is not None or census is not None:
            # the JSON went to the script before the pick: an owned change is bound in place
            chat, events, _ = change.bound(ranked, census, in_place=change.owned)
        return Applied(chat, agent_id, events, census=census, heads=heads, released=released)

    # customers
    def customers_get(self, partner_id: str) -> _Gen[Customer | None]:
        """See :meth:`chatmgmt.ports.CustomerStore.get`."""
        raw = yield _Call(("HGET", self.key("cu"), partner_id))
        return None if raw is None else decode(raw, Customer)

    def customers_create(self, customer: Customer, events: Any = ()) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.CustomerStore.create`."""
        reply = yield _Script(
            "customer_create",
            (customer.partner_id, str(customer.version), encode(customer), *_events(events)),
        )
        if int(reply[0]) == 0:
            raise ConflictError("customer", customer.partner_id, None, int(_s(reply[1])))

    def customers_replace(
        self, customer: Customer, expected_version: int, events: Any = ()
    ) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.CustomerStore.replace`."""
        reply = yield _Script(
            "customer_replace",
            (
                customer.partner_id,
                str(customer.version),
                encode(customer),
                str(int(expected_version)),
                *_events(events),
            ),
        )
        status = int(reply[0])
        if status == -1:
            raise NotFoundError("customer", customer.partner_id)
        if status == 0:
            raise ConflictError(
                "customer", customer.partner_id, expected_version, int(_s(reply[1]))
            )

    # agents
    def agents_put(
        self,
        agent: Agent,
        now: float,
        events: Any = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> _Gen[AgentLoad]:
        """See :meth:`chatmgmt.ports.AgentStore.put` (compare-and-set in the script)."""
        groups = sorted({_enc(g) for g in agent.skill_groups} | {""})
        reply = yield _Script(
            "agent_put",
            (
                _enc(agent.id),
                agent.id,
                encode(agent),
                agent.status.value,
                str(agent.reception_limit),
                str(agent.tier),
                str(agent.account_order),
                _num(now),
                _num(tiebreak),
                "" if expected_version is None else str(int(expected_version)),
                str(len(groups)),
                *groups,
                *_events(events),
            ),
        )
        if int(reply[0]) == 0:
            raise ConflictError("agent", agent.id, expected_version, _version(reply[1]))
        return _load(reply[1])

    def agents_census(self, group: str) -> _Gen[Census]:
        """See :meth:`chatmgmt.ports.AgentStore.census` (one hash read)."""
        raw = yield _Call(("HGETALL", self.key("cen", _enc(group))))
        return _census_of(raw)

    def agents_censuses(self, groups: Any) -> _Gen[list[GroupCensus]]:
        """See :meth:`chatmgmt.ports.AgentStore.censuses` (one script: per group its census
        hash, and ``held`` and ``free`` summed over its agents)."""
        names = list(groups)
        if not names:
            return []
        reply = yield _Script("agent_censuses", tuple(_enc(g) for g in names))
        out = []
        for raw, held, free in reply:
            flat = [_s(v) for v in raw]
            counts = {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}
            c = Census(**{f: counts.get(f, 0) for f in _CENSUS_FIELDS})
            out.append(GroupCensus(**attrs.asdict(c), held=int(held), free=int(free)))
        return out

    def agents_get(self, agent_id: str) -> _Gen[AgentLoad | None]:
        """See :meth:`chatmgmt.ports.AgentStore.get`."""
        reply = yield _Script("agent_get", (_enc(agent_id),))
        return None if not reply else _load(reply)

    def agents_list(self, group: str | None = None) -> _Gen[list[AgentLoad]]:
        """See :meth:`chatmgmt.ports.AgentStore.list`."""
        reply = yield _Script("agent_list", (_enc(group or ""),))
        loads = [_load(r) for r in reply]
        loads.sort(key=lambda ld: (ld.agent.account_order, ld.agent.id))
        return loads

    # chats
    def chats_get(self, chat_id: str) -> _Gen[Chat | None]:
        """See :meth:`chatmgmt.ports.ChatStore.get`."""
        raw = yield _Call(("HGET", self.key("ch"), chat_id))
        return None if raw is None else decode(raw, Chat)

    def chats_messages(self, chat_id: str) -> _Gen[list[Message]]:
        """See :meth:`chatmgmt.ports.ChatStore.messages`."""
        raw = yield _Call(("LRANGE", self.key("msg", _enc(chat_id)), 0, -1))
        return [decode(r, Message) for r in raw]

    def chats_list(
        self, state: ChatState | None = None, agent_id: str | None = None
    ) -> _Gen[list[Chat]]:
        """See :meth:`chatmgmt.ports.ChatStore.list` (paged reads, in creation order)."""
        index = self.key("chall") if state is None else self.key("chl", ChatState(state).value)
        out: list[Chat] = []
        start = 0
        page = 500
        while True:
            ids = yield _Call(("ZRANGE", index, start, start + page - 1))
            if not ids:
                return out
            raws = yield _Call(("HMGET", self.key("ch"), *ids))
            for raw in raws:
                if raw is None:
                    continue
                chat = decode(raw, Chat)
                if (state is None or chat.state is state) and (
                    agent_id is None or chat.agent_id == agent_id
                ):
                    out.append(chat)
            if len(ids) < page:
                return out
            start += page

    def chats_sticky(self, partner_id: str) -> _Gen[Sticky | None]:
        """See :meth:`chatmgmt.ports.ChatStore.sticky`."""
        raw = yield _Call(("HGET", self.key("st"), partner_id))
        return None if raw is None else decode(raw, Sticky)

    def chats_purge(self, before: float, limit: int) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.ChatStore.purge` (one script; the first call on a
        namespace written before the retention index existed fills the index first)."""
        if limit <= 0:
            return 0
        if not self.retention_indexed:
            indexed = yield _Call(("EXISTS", self.key("retv")))
            if not int(indexed):
                yield from self._backfill_retention()
            self.retention_indexed = True
        reply = yield _Script("chat_purge", (_num(before), str(int(limit))))
        return int(reply)

    def _backfill_retention(self) -> _Gen[None]:
        """Index the chats that are over by their retention start (``ZADD NX``: what
        ``apply`` indexed since stays); the purge script checks every entry again."""
        page = 500
        for state in (ChatState.ENDED, ChatState.ABANDONED, ChatState.LEFT_MESSAGE):
            start = 0
            while True:
                ids = yield _Call(("ZRANGE", self.key("chl", state.value), start, start + page - 1))
                if not ids:
                    break
                raws = yield _Call(("HMGET", self.key("ch"), *ids))
                pairs: list[Any] = []
                for raw in raws:
                    if raw is None:
                        continue
                    chat = decode(raw, Chat)
                    begins = retention_start(chat)
                    if begins is not None:
                        pairs.extend((_num(begins), chat.id))
                if pairs:
                    yield _Call(("ZADD", self.key("ret"), "NX", *pairs))
                if len(ids) < page:
                    break
                start += page
        yield _Call(("SET", self.key("retv"), "1"))

    # queues
    def queues_peek(self, queue: str, limit: int) -> _Gen[list[tuple[ChatId, float]]]:
        """See :meth:`chatmgmt.ports.QueueStore.peek`."""
        if limit <= 0:
            return []
        raw = yield _Call(("ZRANGE", self.key("q", _enc(queue)), 0, limit - 1, "WITHSCORES"))
        if raw and not isinstance(raw[0], (list, tuple)):  # RESP2 without a response callback
            raw = list(zip(raw[::2], raw[1::2], strict=True))
        return [(ChatId(_s(m)[_SEQ_WIDTH:]), float(_s(score))) for m, score in raw]

    def queues_position(self, queue: str, chat_id: str) -> _Gen[int | None]:
        """See :meth:`chatmgmt.ports.QueueStore.position`."""
        reply = yield _Script("queue_position", (_enc(queue), chat_id))
        return None if reply is None else int(reply)

    def queues_length(self, queue: str) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.QueueStore.length`."""
        reply = yield _Call(("ZCARD", self.key("q", _enc(queue))))
        return int(reply)

    def queues_heads(self, queues: Any) -> _Gen[list[QueueHead]]:
        """See :meth:`chatmgmt.ports.QueueStore.heads` (one script: per queue its length, its
        first member, its oldest, the smallest insertion number, O(length), and that chat's
        record, for when it started waiting)."""
        names = list(queues)
        if not names:
            return []
        reply = yield _Script("queue_heads", tuple(_enc(q) for q in names))
        return [_head(queue, item) for queue, item in zip(names, reply, strict=True)]

    # outbox
    def outbox_append(self, events: Any) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.Outbox.append`."""
        if events:
            yield _Script("outbox_append", _events(events))

    def outbox_claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> _Gen[list[OutboxEntry]]:
        """See :meth:`chatmgmt.ports.Outbox.claim`."""
        if limit <= 0:
            return []
        reply = yield _Script(
            "outbox_claim", (consumer, str(int(limit)), _num(now), _num(now + lease_s))
        )
        return [OutboxEntry(_s(r[0]), decode(r[1], Event), int(r[2])) for r in reply]

    def outbox_ack(self, entry_ids: Any) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.Outbox.ack`."""
        ids = tuple(e for e in entry_ids if isinstance(e, str) and _STREAM_ID.match(e))
        if ids:
            yield _Script("outbox_ack", ids)

    def outbox_pending(self) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.Outbox.pending`."""
        reply = yield _Call(("XLEN", self.key("ob")))
        return int(reply)

    def outbox_events(self) -> _Gen[list[Event]]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        raw = yield _Call(("XRANGE", self.key("ob"), "-", "+"))
        return [decode(fields[b"e" if b"e" in fields else "e"], Event) for _id, fields in raw]

    # timers
    def timers_cancel(self, key: str, due_at: float | None = None) -> _Gen[None]:
        """See :meth:`chatmgmt.ports.TimerStore.cancel`."""
        yield _Script("timer_cancel", (key, "" if due_at is None else _num(due_at)))

    def timers_claim_due(self, now: float, limit: int, lease_s: float) -> _Gen[list[Timer]]:
        """See :meth:`chatmgmt.ports.TimerStore.claim_due`."""
        if limit <= 0:
            return []
        reply = yield _Script("timer_claim_due", (_num(now), str(int(limit)), _num(now + lease_s)))
        return [attrs.evolve(decode(r[0], Timer), due_at=float(_s(r[1]))) for r in reply]

    def timers_get(self, key: str) -> _Gen[Timer | None]:
        """The timer with ``key``, or None (a testing convenience)."""
        member = yield _Call(("HGET", self.key("tm", "m"), key))
        if member is None:
            return None
        score = yield _Call(("ZSCORE", self.key("tm", "z"), member))
        raw = yield _Call(("HGET", self.key("tm", "d"), key))
        if raw is None or score is None:
            return None
        return attrs.evolve(decode(raw, Timer), due_at=float(_s(score)))

    # counters
    def counters_hit(self, key: str, now: float, window_s: float) -> _Gen[int]:
        """See :meth:`chatmgmt.ports.RateCounter.hit`."""
        reply = yield _Script(
            "counter_hit", (_enc(key), _num(now), _num(now - window_s), _num(now + window_s))
        )
        return int(reply)

    # maintenance
    def delete_namespace(self) -> _Gen[int]:
        """Delete every key of the namespace; returns how many."""
        return int((yield _ScanDelete(_glob_escape(self.prefix) + ":*")))


_CENSUS_KEYS: dict[Any, str] = {
    **{f: f for f in _CENSUS_FIELDS},
    **{f.encode(): f for f in _CENSUS_FIELDS},
}
"""A census field's name by its hash field as a reply holds it (bytes, or text when the client
decodes replies)."""


def _census_of(raw: Any) -> Census:
    """A census hash as HGETALL replies it (a flat list, or a dict in RESP3); fields that are
    no census field are left out, missing ones are 0."""
    if not raw:
        return Census()
    items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    counts = {}
    for key, value in items:
        field = _CENSUS_KEYS.get(key)
        if field is not None:
            counts[field] = int(value)
    return Census(**counts)


def _census(raw: Any) -> Census | None:
    """A script's census reply: the hash, or None when it was not read (Lua's false: None in
    RESP2, False in RESP3)."""
    return None if raw is None or raw is False else _census_of(raw)


def _head(queue: str, item: Any) -> QueueHead:
    """A queue's head from a script's ``queue_head`` reply (0: the queue is empty)."""
    if not isinstance(item, list):
        return QueueHead(queue)
    length, first, oldest, raw = item
    since = None
    if raw:
        data = upgrade_chat(json.loads(_s(raw)))
        value = data.get("queued_at")
        if value is None:
            value = data.get("created_at")
        since = None if value is None else float(value)
    return QueueHead(
        queue, int(length), ChatId(_s(first)[_SEQ_WIDTH:]), ChatId(_s(oldest)[_SEQ_WIDTH:]), since
    )


def _refusal(
    change: Change, reason: str, actual: Any, census: Census | None = None
) -> PreconditionFailed:
    chat_id = change.chat_id
    if reason == "exists":
        return PreconditionFailed(reason, chat_id, None, _version(actual))
    if reason in ("missing", "version"):
        return PreconditionFailed(reason, chat_id, change.expected_version, _version(actual))
    if reason == "queue_not_empty":
        return PreconditionFailed(reason, chat_id, queue=change.require_empty)
    claim = change.claim
    if reason == "agent_unavailable" and isinstance(claim, Claim):
        return PreconditionFailed(reason, chat_id, agent_id=claim.agent_id, census=census)
    if reason == "no_agent" and claim is not None and not isinstance(claim, Claim):
        return PreconditionFailed(reason, chat_id, queue=claim.group, census=census)
    raise StorageError(
        f"the apply script refused chat {chat_id!r} for an unknown reason {reason!r}"
    )


# --------------------------------------------------------------------------- drivers


def _connect_sync(client_or_url: Any) -> tuple[Any, bool]:
    if isinstance(client_or_url, str):
        import redis

        return redis.Redis.from_url(client_or_url), True
    return client_or_url, False


def _connect_async(client_or_url: Any) -> tuple[Any, bool]:
    if isinstance(client_or_url, str):
        import redis.asyncio

        return redis.asyncio.Redis.from_url(client_or_url), True
    return client_or_url, False


def _primaries(client: Any) -> list[Any] | None:
    """The primary nodes of a cluster client; None for a single server."""
    get = getattr(client, "get_primaries", None)
    return None if get is None else list(get())


def _scan_reply(reply: Any) -> tuple[int, list[Any]]:
    if isinstance(reply, dict):  # a cluster client answering for one node: {node: reply}
        (reply,) = reply.values()
    cursor, keys = reply
    if isinstance(cursor, dict):  # a cluster client's SCAN callback: ({node: cursor}, keys)
        (cursor,) = cursor.values()
    return int(cursor), list(keys)


_RAW_REPLIES = frozenset({"HGET", "HGETALL", "HMGET", "LRANGE", "ZCARD", "XLEN", "EXISTS"})
"""Commands whose raw reply the operations read as they are (HGETALL: a flat list in RESP2, a
map in RESP3, both read by :func:`_census_of`); only these take the driver's short path."""


class _SyncDriver:
    """Runs generators of Redis commands against a sync client (shared with the webhook
    delivery store, which brings its own scripts)."""

    def __init__(self, client: Any, ops: Any, scripts: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.ops = ops
        source = scripts if scripts is not None else _full_scripts()
        self.scripts = {name: client.register_script(body) for name, body in source.items()}
        self._unchecked = "data_version" in self.scripts
        self._cluster = hasattr(client, "get_primaries")
        self.wire = wire_for(client)  # the short path (a plain single-server client), or None
        # the storage's own scripts as Redis Functions on the short path: their names once
        # loaded (None: not tried yet; empty: the server has no functions or refuses them)
        self.functions: dict[str, str] | None = None if scripts is None else {}

    def _script(self, name: str, keys: list[str], args: tuple[Any, ...]) -> Any:
        wire = self.wire
        if wire is not None:
            functions = self.functions
            if functions is None:
                functions = self.functions = wire.load_library(_library())
            function = functions.get(name)
            if function is not None:
                return wire.fcall(function, _library(), keys, args)
            return wire.script(self.scripts[name], keys, args)
        return self.scripts[name](keys=keys, args=args)

    def _call(self, args: tuple[Any, ...]) -> Any:
        if self.wire is not None and args[0] in _RAW_REPLIES:
            return self.wire.command(args)
        return self.client.execute_command(*args)

    def run(self, gen: Generator[Any, Any, _T]) -> _T:
        """Run ``gen`` to its end, answering each command it yields; return its value."""
        keys = [self.ops.prefix]
        try:
            if self._unchecked:
                self._script("data_version", keys, ())
                self._unchecked = False
            cmd = next(gen)
            while True:
                if isinstance(cmd, _ScanDelete):
                    result: Any = self._scan_delete(cmd.pattern)
                elif (name := getattr(cmd, "name", None)) is not None:  # a script
                    result = self._script(name, keys, cmd.args)
                else:
                    result = self._call(cmd.args)
                cmd = gen.send(result)
        except StopIteration as stop:
            return cast(_T, stop.value)
        except StorageError:
            raise
        except Exception as exc:
            refused = _data_version_error(getattr(self.ops, "namespace", "?"), exc)
            if refused is not None:
                raise refused from exc
            raise

    def _delete(self, keys: list[Any]) -> Any:
        if self._cluster:  # redis-py splits a multi-key DEL by slot
            return self.client.delete(*keys)
        return self.client.execute_command("DEL", *keys)

    def _scan_delete(self, pattern: str) -> int:
        deleted = 0
        for node in (_primaries(self.client) or [None]) if self._cluster else [None]:
            extra = {} if node is None else {"target_nodes": node}
            cursor = 0
            while True:
                reply = self.client.execute_command(
                    "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, **extra
                )
                cursor, keys = _scan_reply(reply)
                if keys:
                    deleted += int(self._delete(keys))
                if cursor == 0:
                    break
        return deleted


class _AsyncDriver:
    """The asyncio twin of :class:`_SyncDriver`."""

    def __init__(self, client: Any, ops: Any, scripts: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.ops = ops
        source = scripts if scripts is not None else _full_scripts()
        self.scripts = {name: client.register_script(body) for name, body in source.items()}
        self._unchecked = "data_version" in self.scripts
        self._cluster = hasattr(client, "get_primaries")

    async def run(self, gen: Generator[Any, Any, _T]) -> _T:
        """Run ``gen`` to its end, answering each command it yields; return its value."""
        keys = [self.ops.prefix]
        try:
            if self._unchecked:
                await self.scripts["data_version"](keys=keys, args=())
                self._unchecked = False
            cmd = next(gen)
            while True:
                if isinstance(cmd, _ScanDelete):
                    result: Any = await self._scan_delete(cmd.pattern)
                elif (name := getattr(cmd, "name", None)) is not None:
                    result = await self.scripts[name](keys=keys, args=cmd.args)
                else:
                    result = await self.client.execute_command(*cmd.args)
                cmd = gen.send(result)
        except StopIteration as stop:
            return cast(_T, stop.value)
        except StorageError:
            raise
        except Exception as exc:
            refused = _data_version_error(getattr(self.ops, "namespace", "?"), exc)
            if refused is not None:
                raise refused from exc
            raise

    async def _delete(self, keys: list[Any]) -> Any:
        if self._cluster:
            return await self.client.delete(*keys)
        return await self.client.execute_command("DEL", *keys)

    async def _scan_delete(self, pattern: str) -> int:
        deleted = 0
        if self._cluster:
            await self.client.initialize()  # learns the nodes (idempotent)
        for node in (_primaries(self.client) or [None]) if self._cluster else [None]:
            extra = {} if node is None else {"target_nodes": node}
            cursor = 0
            while True:
                reply = await self.client.execute_command(
                    "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, **extra
                )
                cursor, keys = _scan_reply(reply)
                if keys:
                    deleted += int(await self._delete(keys))
                if cursor == 0:
                    break
        return deleted


# --------------------------------------------------------------------------- the faces

_PORTS: dict[str, tuple[str, ...]] = {
    "customers": ("get", "create", "replace"),
    "agents": ("put", "census", "censuses", "get", "list"),
    "chats": ("get", "messages", "list", "sticky", "purge"),
    "queues": ("peek", "position", "length", "heads"),
    "outbox": ("append", "claim", "ack", "pending", "events"),
    "timers": ("cancel", "claim_due", "get"),
    "counters": ("hit",),
}
"""The one table both faces are generated from: each port's methods, each running the
:class:`_Ops` generator ``<port>_<method>`` (same parameters and defaults as the port)."""


class _Port:
    """One port of a Redis storage face; its methods are generated from :data:`_PORTS`."""

    def __init__(self, name: str, methods: Mapping[str, Callable[..., Any]]) -> None:
        self._name = name
        self.__dict__.update(methods)

    def __repr__(self) -> str:
        return f"<Redis {self._name} port>"


def _sync_method(driver: _SyncDriver, op: Callable[..., _Gen[Any]]) -> Callable[..., Any]:
    @functools.wraps(op)
    def method(*args: Any, **kwargs: Any) -> Any:
        return driver.run(op(*args, **kwargs))

    return method


def _async_method(
    driver: _AsyncDriver, op: Callable[..., _Gen[Any]]
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(op)
    async def method(*args: Any, **kwargs: Any) -> Any:
        return await driver.run(op(*args, **kwargs))

    return method


def _ports(
    ops: _Ops, wrap: Callable[[Callable[..., _Gen[Any]]], Callable[..., Any]]
) -> dict[str, _Port]:
    return {
        port: _Port(port, {m: wrap(getattr(ops, f"{port}_{m}")) for m in methods})
        for port, methods in _PORTS.items()
    }


def _check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise TypeError(f"namespace: must be a string, got {namespace!r}")
    return namespace


class RedisStorage:
    """Every storage port in Redis, for one namespace (tenant); the sync face.

    ``client_or_url`` is a ``redis.Redis`` (or ``redis.RedisCluster``) client or a URL such as
    ``"redis://localhost:6379/0"`` (the storage then owns the client and :meth:`close` closes
    it; :meth:`cluster` does the same for a cluster). Any number of processes and machines may
    share one namespace.
    """

    customers: CustomerStore
    """The CRM."""
    agents: AgentStore
    """Agents and their load."""
    chats: ChatStore
    """Chats and messages (read side)."""
    queues: QueueStore
    """Queues and pools (read side)."""
    outbox: Outbox
    """The event log (also ``events()``, a testing convenience)."""
    timers: TimerStore
    """Deadlines (also ``get(key)``, a testing convenience)."""
    counters: RateCounter
    """Sliding-window counters."""

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` in its script, before the
    effects, and fills the census marks in the JSON it stores."""

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        self._namespace = _check_namespace(namespace)
        self._url = client_or_url if isinstance(client_or_url, str) else None
        self.client, self._owned = _connect_sync(client_or_url)
        self._ops = _Ops(namespace)
        self._driver = _SyncDriver(self.client, self._ops)
        for name, port in _ports(self._ops, functools.partial(_sync_method, self._driver)).items():
            setattr(self, name, port)

    @classmethod
    def cluster(cls, url: str, namespace: str = "default") -> RedisStorage:
        """A storage on a Redis Cluster reached through ``url`` (any node); it owns the client."""
        from redis.cluster import RedisCluster

        storage = cls(RedisCluster.from_url(url), namespace)
        storage._url, storage._owned = url, True
        storage._cluster = True
        return storage

    _cluster = False

    def __repr__(self) -> str:
        return f"RedisStorage(namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return self._ops.prefix

    def apply(self, change: Change) -> Applied:
        """See :meth:`chatmgmt.ports.Storage.apply`: one Lua script, all of it or nothing."""
        return self._driver.run(self._ops.apply(change))

    def aio(self) -> AsyncRedisStorage:
        """An async face on the same server and namespace (needs a storage made from a URL)."""
        if self._url is None:
            raise TypeError(
                "aio() needs a RedisStorage made from a URL; "
                "otherwise build AsyncRedisStorage(redis.asyncio client, namespace)"
            )
        if self._cluster:
            return AsyncRedisStorage.cluster(self._url, self._namespace)
        return AsyncRedisStorage(self._url, self._namespace)

    def delete_namespace(self) -> int:
        """Delete every key of this namespace (a tenant's removal; on a cluster, every
        primary); returns how many."""
        return self._driver.run(self._ops.delete_namespace())

    def close(self) -> None:
        """Close the client if this storage created it from a URL (and the connections of
        the driver's short path)."""
        if self._driver.wire is not None:
            self._driver.wire.close()
        if self._owned:
            self.client.close()


class AsyncRedisStorage:
    """Every storage port in Redis, for one namespace; the asyncio face (``redis.asyncio``).

    ``client_or_url`` is a ``redis.asyncio.Redis`` (or ``RedisCluster``) client or a URL (the
    storage then owns the client and :meth:`aclose` closes it). Same keys and scripts as
    :class:`RedisStorage`: sync and async workers may share one namespace.
    """

    customers: AsyncCustomerStore
    """The CRM."""
    agents: AsyncAgentStore
    """Agents and their load."""
    chats: AsyncChatStore
    """Chats and messages (read side)."""
    queues: AsyncQueueStore
    """Queues and pools (read side)."""
    outbox: AsyncOutbox
    """The event log (also ``events()``, a testing convenience)."""
    timers: AsyncTimerStore
    """Deadlines (also ``get(key)``, a testing convenience)."""
    counters: AsyncRateCounter
    """Sliding-window counters."""

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` in its script (as
    :attr:`RedisStorage.reports_census`)."""

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        self._namespace = _check_namespace(namespace)
        self.client, self._owned = _connect_async(client_or_url)
        self._ops = _Ops(namespace)
        self._driver = _AsyncDriver(self.client, self._ops)
        for name, port in _ports(self._ops, functools.partial(_async_method, self._driver)).items():
            setattr(self, name, port)

    @classmethod
    def cluster(cls, url: str, namespace: str = "default") -> AsyncRedisStorage:
        """A storage on a Redis Cluster reached through ``url``; it owns the client."""
        from redis.asyncio.cluster import RedisCluster

        storage = cls(RedisCluster.from_url(url), namespace)
        storage._owned = True
        return storage

    def __repr__(self) -> str:
        return f"AsyncRedisStorage(namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return self._ops.prefix

    async def apply(self, change: Change) -> Applied:
        """See :meth:`chatmgmt.ports.AsyncStorage.apply`: one Lua script."""
        return await self._driver.run(self._ops.apply(change))

    async def delete_namespace(self) -> int:
        """Delete every key of this namespace (a tenant's removal; on a cluster, every
        primary); returns how many."""
        return await self._driver.run(self._ops.delete_namespace())

    async def aclose(self) -> None:
        """Close the client if this storage created it from a URL."""
        if self._owned:
            await self.client.aclose()
