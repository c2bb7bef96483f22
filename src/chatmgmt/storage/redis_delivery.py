"""Redis :class:`~chatmgmt.ports.DeliveryStore`: webhook delivery state shared by many
dispatcher processes and machines.

Install the extra: ``pip install chatmgmt[redis]``. :class:`RedisDeliveryStore` is the sync
face, :class:`AsyncRedisDeliveryStore` the asyncio face; as in :mod:`chatmgmt.storage.redis`
both run one copy of the operations (generators that yield Redis calls) and the same Lua
scripts, so sync and async dispatchers may share one namespace.

**Atomicity.** Every operation that changes state is one Lua script: ``add`` (idempotent per
delivery id and per event id), ``seal``, ``claim_due`` (picks the ready heads and leases them),
``finish`` (attempt, outcome, the next head of each chat, and the endpoint's health in one
step), ``disable`` (exactly once), ``enable``, ``replay`` and ``purge``.

**Key layout.** Every key starts with the namespace's prefix ``cm:{<namespace>}`` (the Redis
Cluster hash tag, the same as :class:`~chatmgmt.storage.redis.RedisStorage`, so the outbox
and the delivery state of a tenant live in one slot), then ``:wh:<endpoint>``; endpoint,
delivery and chat ids inside key names are escaped as in :mod:`chatmgmt.storage.redis`
(``%``, ``{``, ``}``, ``:`` become ``%25``, ``%7B``, ``%7D``, ``%3A``); inside values they are
stored verbatim. Per endpoint: a hash per delivery (``:d:<id>``) and a list of its attempts
(``:a:<id>``), the order of addition (``:order``, a sorted set), the pending deliveries of each
chat (``:q:<chat>``, sorted by queue position), the ready heads (``:ready``, scored by the time
they are due — the next attempt or the lease's end — members prefixed with the zero-padded
queue position so ties keep the queue order), the pending set (``:pend``), the batch buffer
(``:buf`` and ``:bufz``), the event ids already taken (``:seen``) and the health (``:h``).
A claim is ``ZRANGEBYSCORE`` over the ready heads: O(log n + k).

Times are stored as the exact ``repr`` of the float and never re-formatted in Lua, so they
read back equal. Use a client without ``decode_responses`` (bodies and responses are bytes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Generator, Sequence
from typing import Any, TypeVar

from ..model import Event
from ..ports import (
    Attempt,
    BufferedEvent,
    Delivery,
    DeliveryStatus,
    EndpointHealth,
)
from ._codec import decode, encode
from .redis import (
    _AsyncDriver,
    _connect_async,
    _connect_sync,
    _enc,
    _glob_escape,
    _num,
    _s,
    _ScanDelete,
    _SyncDriver,
    key_prefix,
)

__all__ = ["AsyncRedisDeliveryStore", "RedisDeliveryStore"]

_T = TypeVar("_T")

_PRELUDE = r"""
local P = KEYS[1]
local W = P .. ':wh'
local function enc(s)
  return (string.gsub(s, '[%%{}:]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
local function E(ep) return W .. ':' .. enc(ep) end
local function dk(e, id) return e .. ':d:' .. enc(id) end
local function ak(e, id) return e .. ':a:' .. enc(id) end
local function qk(e, chat) return e .. ':q:' .. enc(chat) end
local function pad(qo) return string.format('%020d', tonumber(qo)) .. '' end
local function refresh(e, id)
  local h = redis.call('HMGET', dk(e, id), 'status', 'chats', 'next', 'lease', 'qo')
  if h[1] ~= 'pending' then return end
  local chats = cjson.decode(h[2])
  for i = 1, #chats do
    local head = redis.call('ZRANGE', qk(e, chats[i]), 0, 0)
    if head[1] ~= id then return end
  end
  local due = h[3]
  if tonumber(h[4]) > tonumber(h[3]) then due = h[4] end
  redis.call('ZADD', e .. ':ready', due, pad(h[5]) .. id)
end
local function enqueue(e, id)
  local qo = redis.call('INCR', e .. ':qc')
  redis.call('HSET', dk(e, id), 'qo', qo)
  local chats = cjson.decode(redis.call('HGET', dk(e, id), 'chats'))
  for i = 1, #chats do redis.call('ZADD', qk(e, chats[i]), qo, id) end
  redis.call('SADD', e .. ':pend', id)
  refresh(e, id)
end
local function dequeue(e, id)
  local h = redis.call('HMGET', dk(e, id), 'chats', 'qo')
  redis.call('ZREM', e .. ':ready', pad(h[2]) .. id)
  redis.call('SREM', e .. ':pend', id)
  local chats = cjson.decode(h[1])
  for i = 1, #chats do
    local q = qk(e, chats[i])
    redis.call('ZREM', q, id)
    local head = redis.call('ZRANGE', q, 0, 0)
    if head[1] then refresh(e, head[1]) end
  end
end
local function insert(it, body)
  local e = E(it.ep)
  redis.call('SADD', W .. ':eps', it.ep)
  local n = redis.call('INCR', W .. ':n')
  redis.call('HSET', dk(e, it.id), 'id', it.id, 'type', it.type, 'eids', it.ej, 'chats', it.cj,
    'body', body, 'created', it.created, 'next', it.next, 'status', it.status,
    'rstart', it.rstart, 'reason', it.reason, 'fin', it.fin, 'lease', '0', 'qo', '0', 'n', n)
  redis.call('ZADD', e .. ':order', n, it.id)
  for i = 1, #it.al do redis.call('RPUSH', ak(e, it.id), it.al[i]) end
  if it.status == 'pending' then enqueue(e, it.id) end
end
local function fetch(e, id)
  return {redis.call('HGETALL', dk(e, id)), redis.call('LRANGE', ak(e, id), 0, -1)}
end
"""

_SCRIPTS: dict[str, str] = {
    # ARGV: items json, bodies...
    "add": r"""
local items = cjson.decode(ARGV[1])
local added = 0
for _, it in ipairs(items) do
  local e = E(it.ep)
  if it.k == 'd' then
    local dup = redis.call('EXISTS', dk(e, it.id)) == 1
    if not dup then
      for i = 1, #it.el do
        if redis.call('HEXISTS', e .. ':seen', it.el[i]) == 1 then dup = true; break end
      end
    end
    if not dup then
      insert(it, ARGV[it.b])
      for i = 1, #it.el do redis.call('HSET', e .. ':seen', it.el[i], it.id) end
      added = added + 1
    end
  elseif redis.call('HSETNX', e .. ':seen', it.eid, '') == 1 then
    redis.call('SADD', W .. ':eps', it.ep)
    redis.call('HSET', e .. ':buf', it.eid, it.data)
    redis.call('ZADD', e .. ':bufz', redis.call('INCR', W .. ':n'), it.eid)
    added = added + 1
  end
end
return added
""",
    # ARGV: ep
    "buffered": r"""
local e = E(ARGV[1])
local out = {}
for i, id in ipairs(redis.call('ZRANGE', e .. ':bufz', 0, -1)) do
  out[i] = redis.call('HGET', e .. ':buf', id)
end
return out
""",
    # ARGV: ep, event ids json, item json, body
    "seal": r"""
local e = E(ARGV[1])
local it = cjson.decode(ARGV[3])
local eids = cjson.decode(ARGV[2])
if redis.call('EXISTS', dk(e, it.id)) == 1 then return 0 end
for i = 1, #eids do
  if redis.call('HEXISTS', e .. ':buf', eids[i]) == 0 then return 0 end
end
for i = 1, #eids do
  redis.call('HDEL', e .. ':buf', eids[i])
  redis.call('ZREM', e .. ':bufz', eids[i])
  redis.call('HSET', e .. ':seen', eids[i], it.id)
end
insert(it, ARGV[4])
return 1
""",
    # ARGV: ep, now, limit, lease until
    "claim": r"""
local e = E(ARGV[1])
if redis.call('HGET', e .. ':h', 'disabled') == '1' then return {} end
local limit = tonumber(ARGV[3])
if limit <= 0 then return {} end
local out = {}
local due = redis.call('ZRANGEBYSCORE', e .. ':ready', '-inf', ARGV[2], 'LIMIT', 0, limit)
for i, m in ipairs(due) do
  local id = string.sub(m, 21)
  redis.call('ZADD', e .. ':ready', ARGV[4], m)
  redis.call('HSET', dk(e, id), 'lease', ARGV[4])
  out[i] = fetch(e, id)
end
return out
""",
    # ARGV: ep, id, attempt json, ok (1/0), attempt at, status, next, reason
    "finish": r"""
local e = E(ARGV[1])
local id = ARGV[2]
local k = dk(e, id)
local st = redis.call('HGET', k, 'status')
if st then
  redis.call('RPUSH', ak(e, id), ARGV[3])
  if st ~= 'pending' then
    if ARGV[4] == '1' and st == 'dead' then redis.call('HSET', k, 'status', 'delivered') end
  elseif ARGV[6] == 'pending' then
    redis.call('HSET', k, 'next', ARGV[7], 'lease', '0')
    local m = pad(redis.call('HGET', k, 'qo')) .. id
    if redis.call('ZSCORE', e .. ':ready', m) then redis.call('ZADD', e .. ':ready', ARGV[7], m) end
  else
    dequeue(e, id)
    local reason = ''
    if ARGV[6] == 'dead' then reason = ARGV[8] end
    redis.call('HSET', k, 'status', ARGV[6], 'reason', reason, 'fin', ARGV[5], 'lease', '0')
  end
end
local h = e .. ':h'
redis.call('SADD', W .. ':eps', ARGV[1])
if ARGV[4] == '1' then
  redis.call('HDEL', h, 'failing')
elseif redis.call('HEXISTS', h, 'failing') == 0 then
  redis.call('HSET', h, 'failing', ARGV[5])
end
return redis.call('HMGET', h, 'failing', 'disabled', 'reason', 'at')
""",
    # ARGV: ep, reason, now, dead reason
    "disable": r"""
local e = E(ARGV[1])
local h = e .. ':h'
if redis.call('HGET', h, 'disabled') == '1' then return 0 end
redis.call('HSET', h, 'disabled', '1', 'reason', ARGV[2], 'at', ARGV[3])
redis.call('SADD', W .. ':eps', ARGV[1])
for _, id in ipairs(redis.call('SMEMBERS', e .. ':pend')) do
  local k = dk(e, id)
  local chats = cjson.decode(redis.call('HGET', k, 'chats'))
  for i = 1, #chats do redis.call('DEL', qk(e, chats[i])) end
  redis.call('HSET', k, 'status', 'dead', 'reason', ARGV[4], 'fin', ARGV[3], 'lease', '0')
end
redis.call('DEL', e .. ':pend', e .. ':ready')
return 1
""",
    # ARGV: ep
    "enable": r"""
redis.call('DEL', E(ARGV[1]) .. ':h')
return 1
""",
    # ARGV: ep, id
    "get": r"""
local e = E(ARGV[1])
if redis.call('EXISTS', dk(e, ARGV[2])) == 0 then return false end
return fetch(e, ARGV[2])
""",
    # ARGV: ep, status ('' any)
    "list": r"""
local e = E(ARGV[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', e .. ':order', 0, -1)) do
  if ARGV[2] == '' or redis.call('HGET', dk(e, id), 'status') == ARGV[2] then
    out[#out + 1] = fetch(e, id)
  end
end
return out
""",
    # ARGV: ep, id, now
    "replay": r"""
local e = E(ARGV[1])
local k = dk(e, ARGV[2])
if redis.call('HGET', k, 'status') ~= 'dead' then return 0 end
redis.call('HSET', k, 'status', 'pending', 'next', ARGV[3], 'rstart',
  redis.call('LLEN', ak(e, ARGV[2])), 'reason', '', 'fin', '', 'lease', '0')
enqueue(e, ARGV[2])
return 1
""",
    # ARGV: ep, before
    "purge": r"""
local e = E(ARGV[1])
local before = tonumber(ARGV[2])
local n = 0
for _, id in ipairs(redis.call('ZRANGE', e .. ':order', 0, -1)) do
  local h = redis.call('HMGET', dk(e, id), 'status', 'fin', 'eids')
  if h[1] == 'delivered' and (tonumber(h[2]) or 0) < before then
    redis.call('DEL', dk(e, id), ak(e, id))
    redis.call('ZREM', e .. ':order', id)
    local eids = cjson.decode(h[3])
    for i = 1, #eids do redis.call('HDEL', e .. ':seen', eids[i]) end
    n = n + 1
  end
end
return n
""",
}


class _Script:
    __slots__ = ("args", "name")

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        self.name = name
        self.args = args


class _Call:
    __slots__ = ("args",)

    def __init__(self, *args: Any) -> None:
        self.args = args


_Gen = Generator[_Script | _Call | _ScanDelete, Any, _T]


# --------------------------------------------------------------------------- codecs


def _fnum(value: float | None) -> str:
    return "" if value is None else _num(value)


def _attempt_json(a: Attempt) -> str:
    return json.dumps(
        {
            "at": a.at,
            "status": a.status,
            "lat": a.latency_s,
            "resp": base64.b64encode(a.response).decode("ascii"),
            "err": a.error,
        },
        ensure_ascii=False,
    )


def _attempt(raw: Any) -> Attempt:
    d = json.loads(_s(raw))
    return Attempt(d["at"], d["status"], d["lat"], base64.b64decode(d["resp"]), d["err"])


def _item(d: Delivery, body_index: int) -> dict[str, Any]:
    return {
        "k": "d",
        "ep": d.endpoint_id,
        "id": d.id,
        "type": d.event_type,
        "ej": json.dumps(list(d.event_ids), ensure_ascii=False),
        "el": list(d.event_ids),
        "cj": json.dumps(list(dict.fromkeys(d.chat_keys)), ensure_ascii=False),
        "created": _num(d.created_at),
        "next": _num(d.next_attempt_at),
        "status": d.status.value,
        "rstart": str(d.round_start),
        "reason": d.dead_reason,
        "fin": _fnum(d.finished_at),
        "al": [_attempt_json(a) for a in d.attempts],
        "b": body_index,
    }


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _delivery(endpoint_id: str, reply: Any) -> tuple[int, Delivery]:
    flat, attempts = reply
    h = {_s(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
    body = h["body"]
    fin = _s(h["fin"])
    d = Delivery(
        id=_s(h["id"]),
        endpoint_id=endpoint_id,
        event_type=_s(h["type"]),
        event_ids=tuple(json.loads(_s(h["eids"]))),
        chat_keys=tuple(json.loads(_s(h["chats"]))),
        body=body if isinstance(body, bytes) else str(body).encode("utf-8"),
        created_at=float(_s(h["created"])),
        next_attempt_at=float(_s(h["next"])),
        status=DeliveryStatus(_s(h["status"])),
        attempts=tuple(_attempt(a) for a in attempts),
        round_start=int(_s(h["rstart"])),
        dead_reason=_s(h["reason"]),
        finished_at=float(fin) if fin else None,
    )
    return int(_s(h["n"])), d


def _health(endpoint_id: str, reply: Any) -> EndpointHealth:
    failing, disabled, reason, at = reply
    return EndpointHealth(
        endpoint_id,
        None if failing is None else float(_s(failing)),
        disabled is not None and _s(disabled) == "1",
        "" if reason is None else _s(reason),
        None if at is None else float(_s(at)),
    )


# --------------------------------------------------------------------------- operations


class _Ops:
    """Every delivery-store operation of one namespace, as a generator of Redis calls."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = key_prefix(namespace)

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent]) -> _Gen[int]:
        items: list[dict[str, Any]] = []
        bodies: list[bytes] = []
        for d in deliveries:
            bodies.append(d.body)
            items.append(_item(d, len(bodies) + 1))
        for b in buffered:
            data = json.dumps([b.buffered_at, encode(b.event)], ensure_ascii=False)
            items.append({"k": "b", "ep": b.endpoint_id, "eid": b.event.id, "data": data})
        if not items:
            return 0
        return int((yield _Script("add", (_dump(items), *bodies))))

    def buffered(self, endpoint_id: str) -> _Gen[list[BufferedEvent]]:
        raw = yield _Script("buffered", (endpoint_id,))
        out = []
        for r in raw:
            at, event = json.loads(_s(r))
            out.append(BufferedEvent(endpoint_id, decode(event, Event), at))
        return out

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> _Gen[bool]:
        item = _item(delivery, 0)
        ids = json.dumps(list(event_ids), ensure_ascii=False)
        reply = yield _Script("seal", (endpoint_id, ids, _dump(item), delivery.body))
        return bool(int(reply))

    def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> _Gen[list[Delivery]]:
        raw = yield _Script("claim", (endpoint_id, _num(now), str(int(limit)), _num(now + lease_s)))
        return [_delivery(endpoint_id, r)[1] for r in raw]

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str,
    ) -> _Gen[EndpointHealth]:
        reply = yield _Script(
            "finish",
            (
                endpoint_id,
                delivery_id,
                _attempt_json(attempt),
                "1" if attempt.ok else "0",
                _num(attempt.at),
                status.value,
                _num(next_attempt_at),
                reason,
            ),
        )
        return _health(endpoint_id, reply)

    def health(self, endpoint_id: str) -> _Gen[EndpointHealth]:
        key = f"{self.prefix}:wh:{_enc(endpoint_id)}:h"
        reply = yield _Call("HMGET", key, "failing", "disabled", "reason", "at")
        return _health(endpoint_id, reply)

    def disable(self, endpoint_id: str, reason: str, now: float) -> _Gen[bool]:
        reply = yield _Script(
            "disable", (endpoint_id, reason, _num(now), f"endpoint disabled ({reason})")
        )
        return bool(int(reply))

    def enable(self, endpoint_id: str) -> _Gen[None]:
        yield _Script("enable", (endpoint_id,))

    def get(self, endpoint_id: str, delivery_id: str) -> _Gen[Delivery | None]:
        reply = yield _Script("get", (endpoint_id, delivery_id))
        return None if not reply else _delivery(endpoint_id, reply)[1]

    def _endpoints(self) -> _Gen[list[str]]:
        raw = yield _Call("SMEMBERS", f"{self.prefix}:wh:eps")
        return sorted(_s(r) for r in raw)

    def deliveries(
        self, endpoint_id: str | None, status: DeliveryStatus | None
    ) -> _Gen[list[Delivery]]:
        eps = [endpoint_id] if endpoint_id is not None else (yield from self._endpoints())
        rows: list[tuple[int, Delivery]] = []
        for ep in eps:
            raw = yield _Script("list", (ep, "" if status is None else status.value))
            rows.extend(_delivery(ep, r) for r in raw)
        rows.sort(key=lambda r: r[0])
        return [d for _, d in rows]

    def dead_letters(self, endpoint_id: str | None, since: float | None) -> _Gen[list[Delivery]]:
        dead = yield from self.deliveries(endpoint_id, DeliveryStatus.DEAD)
        dead = [
            d
            for d in dead
            if since is None or (d.finished_at is not None and d.finished_at >= since)
        ]
        dead.sort(key=lambda d: d.finished_at or 0.0)
        return dead

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> _Gen[bool]:
        reply = yield _Script("replay", (endpoint_id, delivery_id, _num(now)))
        return bool(int(reply))

    def replay_since(self, since: float, now: float, endpoint_id: str | None) -> _Gen[int]:
        n = 0
        for d in (yield from self.dead_letters(endpoint_id, since)):
            n += yield from self.replay(d.endpoint_id, d.id, now)
        return n

    def purge(self, before: float) -> _Gen[int]:
        n = 0
        for ep in (yield from self._endpoints()):
            n += int((yield _Script("purge", (ep, _num(before)))))
        return n

    def delete_namespace(self) -> _Gen[int]:
        # the driver scans every primary of a cluster, every page
        return int((yield _ScanDelete(_glob_escape(self.prefix) + ":wh:*")))


# --------------------------------------------------------------------------- drivers


_FULL_SCRIPTS = {name: _PRELUDE + body for name, body in _SCRIPTS.items()}


# --------------------------------------------------------------------------- faces


class RedisDeliveryStore:
    """The delivery store in Redis, for one namespace; the sync face (see the module
    docstring).

    ``client_or_url`` is a ``redis.Redis`` (or ``RedisCluster``) client or a URL (the store then
    owns the client and :meth:`close` closes it).
    """

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._url = client_or_url if isinstance(client_or_url, str) else None
        self.client, self._owned = _connect_sync(client_or_url)
        self.namespace = namespace
        self._d = _SyncDriver(self.client, _Ops(namespace), _FULL_SCRIPTS)
        self._o: _Ops = self._d.ops

    def __repr__(self) -> str:
        return f"RedisDeliveryStore(namespace={self.namespace!r})"

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return self._o.prefix

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        return self._d.run(self._o.add(deliveries, buffered))

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        return self._d.run(self._o.buffered(endpoint_id))

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        return self._d.run(self._o.seal(endpoint_id, event_ids, delivery))

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        return self._d.run(self._o.claim_due(endpoint_id, now, limit, lease_s))

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.finish`."""
        return self._d.run(
            self._o.finish(endpoint_id, delivery_id, attempt, status, next_attempt_at, reason)
        )

    def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        return self._d.run(self._o.health(endpoint_id))

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        return self._d.run(self._o.disable(endpoint_id, reason, now))

    def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        self._d.run(self._o.enable(endpoint_id))

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        return self._d.run(self._o.get(endpoint_id, delivery_id))

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        return self._d.run(self._o.deliveries(endpoint_id, status))

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        return self._d.run(self._o.dead_letters(endpoint_id, since))

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        return self._d.run(self._o.replay(endpoint_id, delivery_id, now))

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        return self._d.run(self._o.replay_since(since, now, endpoint_id))

    def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        return self._d.run(self._o.purge(before))

    def delete_namespace(self) -> int:
        """Delete every webhook key of this namespace; returns how many."""
        return self._d.run(self._o.delete_namespace())

    def aio(self) -> AsyncRedisDeliveryStore:
        """An async face on the same server and namespace (needs a store made from a URL)."""
        if self._url is None:
            raise TypeError(
                "aio() needs a RedisDeliveryStore made from a URL; "
                "otherwise build AsyncRedisDeliveryStore(redis.asyncio client, namespace)"
            )
        return AsyncRedisDeliveryStore(self._url, self.namespace)

    def close(self) -> None:
        """Close the client if this store created it from a URL."""
        if self._owned:
            self.client.close()


class AsyncRedisDeliveryStore:
    """The delivery store in Redis; the asyncio face (``redis.asyncio``), same keys and
    scripts as :class:`RedisDeliveryStore`."""

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self.client, self._owned = _connect_async(client_or_url)
        self.namespace = namespace
        self._d = _AsyncDriver(self.client, _Ops(namespace), _FULL_SCRIPTS)
        self._o: _Ops = self._d.ops

    def __repr__(self) -> str:
        return f"AsyncRedisDeliveryStore(namespace={self.namespace!r})"

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return self._o.prefix

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`RedisDeliveryStore.add`."""
        return await self._d.run(self._o.add(deliveries, buffered))

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`RedisDeliveryStore.buffered`."""
        return await self._d.run(self._o.buffered(endpoint_id))

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`RedisDeliveryStore.seal`."""
        return await self._d.run(self._o.seal(endpoint_id, event_ids, delivery))

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`RedisDeliveryStore.claim_due`."""
        return await self._d.run(self._o.claim_due(endpoint_id, now, limit, lease_s))

    async def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`RedisDeliveryStore.finish`."""
        return await self._d.run(
            self._o.finish(endpoint_id, delivery_id, attempt, status, next_attempt_at, reason)
        )

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`RedisDeliveryStore.health`."""
        return await self._d.run(self._o.health(endpoint_id))

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`RedisDeliveryStore.disable`."""
        return await self._d.run(self._o.disable(endpoint_id, reason, now))

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`RedisDeliveryStore.enable`."""
        await self._d.run(self._o.enable(endpoint_id))

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`RedisDeliveryStore.get`."""
        return await self._d.run(self._o.get(endpoint_id, delivery_id))

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`RedisDeliveryStore.deliveries`."""
        return await self._d.run(self._o.deliveries(endpoint_id, status))

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`RedisDeliveryStore.dead_letters`."""
        return await self._d.run(self._o.dead_letters(endpoint_id, since))

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`RedisDeliveryStore.replay`."""
        return await self._d.run(self._o.replay(endpoint_id, delivery_id, now))

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`RedisDeliveryStore.replay_since`."""
        return await self._d.run(self._o.replay_since(since, now, endpoint_id))

    async def purge(self, before: float) -> int:
        """See :meth:`RedisDeliveryStore.purge`."""
        return await self._d.run(self._o.purge(before))

    async def delete_namespace(self) -> int:
        """Delete every webhook key of this namespace; returns how many."""
        return await self._d.run(self._o.delete_namespace())

    async def aclose(self) -> None:
        """Close the client if this store created it from a URL."""
        if self._owned:
            await self.client.aclose()
