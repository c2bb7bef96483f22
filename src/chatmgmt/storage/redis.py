"""The Redis storage adapter: one tenant's state shared by many workers and machines.

Install the extra: ``pip install chatmgmt[redis]`` (redis-py, sync and asyncio).
:class:`RedisStorage` is the sync face, :class:`AsyncRedisStorage` the asyncio face; both run
the same operations (one copy, in :class:`_Ops`: generators that yield Redis calls) and the same
Lua scripts, so they differ only in how a call is made.

**Atomicity.** Every mutating operation is one Lua script: the ranked claim (pick the first
eligible agent from a sorted set and claim its slot), the checked claim, release, queue push
and remove, the compare-and-set of chats and customers — and each script that takes events
``XADD``\\ s them to the outbox stream itself, so a change and its events commit together.

**Key layout.** Every key of a tenant starts with ``cm:{<namespace>}:`` — the namespace is the
Redis Cluster *hash tag*, so all of a tenant's keys live in one hash slot and every script
touches keys of one slot only (a cluster spreads tenants across shards). User strings inside
key names (namespace, skill group, agent, queue, chat and counter ids) are escaped (``%``,
``{``, ``}`` and ``:`` become ``%25``, ``%7B``, ``%7D``, ``%3A``), so no id can move a key to
another slot or into another key's name; inside values and sorted-set members they are stored
verbatim.

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
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs

from ..errors import ConflictError, NotFoundError, StorageError
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
from ..ports import Census, OutboxEntry
from ._codec import decode, encode

__all__ = [
    "AsyncRedisAgentStore",
    "AsyncRedisChatStore",
    "AsyncRedisCustomerStore",
    "AsyncRedisOutbox",
    "AsyncRedisQueueStore",
    "AsyncRedisRateCounter",
    "AsyncRedisStorage",
    "AsyncRedisTimerStore",
    "RedisAgentStore",
    "RedisChatStore",
    "RedisCustomerStore",
    "RedisOutbox",
    "RedisQueueStore",
    "RedisRateCounter",
    "RedisStorage",
    "RedisTimerStore",
    "key_prefix",
]

_T = TypeVar("_T")

# --------------------------------------------------------------------------- key layout

_ESCAPES = {"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"}
_ESCAPE_RE = re.compile(r"[%{}:]")


def _enc(value: str) -> str:
    """Escape a user string for use inside a key name (mirrored by ``enc`` in the Lua)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value)


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


_STREAM_ID = re.compile(r"^\d+-\d+$")
_SEQ_WIDTH = 20  # queue and timer members start with a zero-padded insertion number

# --------------------------------------------------------------------------- Lua

_PRELUDE = r"""
local P = KEYS[1]
local function enc(s)
  return (string.gsub(s, '[%%{}:]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
local function xadd(first)
  for i = first, #ARGV do redis.call('XADD', P .. ':ob', '*', 'e', ARGV[i]) end
end
local function encnum(v)
  if v == 0 then v = 0 end
  local s = struct.pack('>d', v)
  local b1 = string.byte(s, 1)
  if b1 >= 128 then
    local t = {}
    for i = 1, 8 do t[i] = string.char(255 - string.byte(s, i)) end
    return table.concat(t)
  end
  return string.char(b1 + 128) .. string.sub(s, 2)
end
local specs = {}
local function spec(rid)
  local s = specs[rid]
  if s then return s end
  s = {}
  for f, d in string.gmatch(rid, '([%a_]+)([%+%-])') do s[#s + 1] = {f, d == '-'} end
  specs[rid] = s
  return s
end
local function agent_state(akey)
  local h = redis.call('HMGET', akey, 'status', 'limit', 'tier', 'order', 'last', 'idle', 'tb',
                       'id')
  if not h[1] then return nil end
  return {status = h[1], limit = tonumber(h[2]), tier = tonumber(h[3]), order = tonumber(h[4]),
          last = tonumber(h[5]), idle = tonumber(h[6]), tb = tonumber(h[7]), id = h[8],
          active = redis.call('SCARD', akey .. ':chats')}
end
local function eligible(a)
  return a.status == 'online' and a.active < a.limit
end
local function rankvalue(a, f)
  if f == 'active' then return a.active end
  if f == 'saturation' then
    if a.limit > 0 then return a.active / a.limit end
    return 1.0
  end
  if f == 'free' then return math.max(0, a.limit - a.active) end
  if f == 'last_assigned_at' then return a.last end
  if f == 'idle_since' then return a.idle end
  if f == 'tier' then return a.tier end
  if f == 'account_order' then return a.order end
  if f == 'tiebreak' then return a.tb end
  error('unknown rank field ' .. f)
end
local function member(a, rid)
  local parts = {}
  for i, kd in ipairs(spec(rid)) do
    local v = rankvalue(a, kd[1])
    if kd[2] then v = -v end
    parts[i] = encnum(v)
  end
  parts[#parts + 1] = a.id
  return table.concat(parts)
end
local function census(a, groups, sign)
  local cat = a.status
  if cat == 'online' then
    if a.active < a.limit then cat = 'eligible' else cat = 'full' end
  end
  for _, g in ipairs(groups) do
    local ck = P .. ':cen:' .. g
    redis.call('HINCRBY', ck, cat, sign)
    if a.status == 'online' then
      if a.limit > 0 then redis.call('HINCRBY', ck, 'capacity', sign * a.limit) end
      if a.active > 0 then redis.call('HINCRBY', ck, 'load', sign * a.active) end
    end
  end
end
local function unindex(akey, groups)
  for _, rid in ipairs(redis.call('SMEMBERS', P .. ':rankings')) do
    local m = redis.call('HGET', akey, 'm:' .. rid)
    if m then
      for _, g in ipairs(groups) do redis.call('ZREM', P .. ':rk:' .. g .. ':' .. rid, m) end
      redis.call('HDEL', akey, 'm:' .. rid)
    end
  end
end
local function index(akey, a, groups)
  if not eligible(a) then return end
  for _, rid in ipairs(redis.call('SMEMBERS', P .. ':rankings')) do
    local m = member(a, rid)
    redis.call('HSET', akey, 'm:' .. rid, m)
    for _, g in ipairs(groups) do redis.call('ZADD', P .. ':rk:' .. g .. ':' .. rid, 0, m) end
  end
end
local function before(akey)
  local a = agent_state(akey)
  local groups = redis.call('SMEMBERS', akey .. ':groups')
  census(a, groups, -1)
  unindex(akey, groups)
  return groups
end
local function after(akey, groups)
  local a = agent_state(akey)
  census(a, groups, 1)
  index(akey, a, groups)
end
local function contrib(a)
  local t = {}
  local cat = a.status
  if cat == 'online' then
    if a.active < a.limit then cat = 'eligible' else cat = 'full' end
    t.capacity = a.limit
    t.load = a.active
  end
  t[cat] = 1
  return t
end
-- after a change of one agent's load (its groups unchanged): census deltas and index moves
local function changed(akey, old)
  local new = agent_state(akey)
  local groups = redis.call('SMEMBERS', akey .. ':groups')
  local d = {}
  for k, v in pairs(contrib(old)) do d[k] = (d[k] or 0) - v end
  for k, v in pairs(contrib(new)) do d[k] = (d[k] or 0) + v end
  for _, g in ipairs(groups) do
    local ck = P .. ':cen:' .. g
    for k, v in pairs(d) do
      if v ~= 0 then redis.call('HINCRBY', ck, k, v) end
    end
  end
  local elig = eligible(new)
  for _, rid in ipairs(redis.call('SMEMBERS', P .. ':rankings')) do
    local om = redis.call('HGET', akey, 'm:' .. rid)
    local nm = false
    if elig then nm = member(new, rid) end
    if om ~= nm then
      if om then
        for _, g in ipairs(groups) do redis.call('ZREM', P .. ':rk:' .. g .. ':' .. rid, om) end
      end
      if nm then
        redis.call('HSET', akey, 'm:' .. rid, nm)
        for _, g in ipairs(groups) do redis.call('ZADD', P .. ':rk:' .. g .. ':' .. rid, 0, nm) end
      else
        redis.call('HDEL', akey, 'm:' .. rid)
      end
    end
  end
end
local function do_claim(akey, a, chat, now, tb)
  redis.call('SADD', akey .. ':chats', chat)
  redis.call('HSET', akey, 'last', now, 'tb', tb)
  changed(akey, a)
end
local function agent_reply(akey)
  local h = redis.call('HMGET', akey, 'agent', 'last', 'idle', 'tb')
  if not h[1] then return false end
  return {h[1], h[2], h[3], h[4], redis.call('SMEMBERS', akey .. ':chats'),
          redis.call('SMEMBERS', akey .. ':inactive')}
end
"""

_SCRIPTS: dict[str, str] = {
    # ARGV: partner_id, version, json, events...
    "customer_create": r"""
local v = redis.call('HGET', P .. ':cuv', ARGV[1])
if v then return {0, v} end
redis.call('HSET', P .. ':cuv', ARGV[1], ARGV[2])
redis.call('HSET', P .. ':cu', ARGV[1], ARGV[3])
xadd(4)
return {1}
""",
    # ARGV: partner_id, version, json, expected, events...
    "customer_replace": r"""
local v = redis.call('HGET', P .. ':cuv', ARGV[1])
if not v then return {-1} end
if v ~= ARGV[4] then return {0, v} end
redis.call('HSET', P .. ':cuv', ARGV[1], ARGV[2])
redis.call('HSET', P .. ':cu', ARGV[1], ARGV[3])
xadd(5)
return {1}
""",
    # ARGV: aenc, id, json, status, limit, tier, order, now, tiebreak, ngroups, groups..., events
    "agent_put": r"""
local akey = P .. ':ag:' .. ARGV[1]
local ngroups = tonumber(ARGV[10])
if redis.call('EXISTS', akey) == 1 then
  local old = before(akey)
  for _, g in ipairs(old) do redis.call('SREM', P .. ':grp:' .. g, ARGV[1]) end
  redis.call('DEL', akey .. ':groups')
else
  redis.call('HSET', akey, 'id', ARGV[2], 'last', '0.0', 'idle', ARGV[8], 'tb', ARGV[9])
end
redis.call('HSET', akey, 'agent', ARGV[3], 'status', ARGV[4], 'limit', ARGV[5],
           'tier', ARGV[6], 'order', ARGV[7])
local groups = {}
for i = 1, ngroups do
  local g = ARGV[10 + i]
  groups[i] = g
  redis.call('SADD', akey .. ':groups', g)
  redis.call('SADD', P .. ':grp:' .. g, ARGV[1])
end
after(akey, groups)
xadd(11 + ngroups)
return agent_reply(akey)
""",
    # ARGV: aenc
    "agent_get": r"""
return agent_reply(P .. ':ag:' .. ARGV[1])
""",
    # ARGV: genc
    "agent_list": r"""
local out = {}
for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:' .. ARGV[1])) do
  local r = agent_reply(P .. ':ag:' .. aenc)
  if r then out[#out + 1] = r end
end
return out
""",
    # ARGV: genc, rid, chat, now, tiebreak, excluded...
    "agent_claim_ranked": r"""
local rid = ARGV[2]
if redis.call('SISMEMBER', P .. ':rankings', rid) == 0 then
  redis.call('SADD', P .. ':rankings', rid)
  for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:')) do
    local akey = P .. ':ag:' .. aenc
    local a = agent_state(akey)
    if a and eligible(a) then
      local m = member(a, rid)
      redis.call('HSET', akey, 'm:' .. rid, m)
      for _, g in ipairs(redis.call('SMEMBERS', akey .. ':groups')) do
        redis.call('ZADD', P .. ':rk:' .. g .. ':' .. rid, 0, m)
      end
    end
  end
end
local excluded = {}
for i = 6, #ARGV do excluded[ARGV[i]] = true end
local width = 8 * #spec(rid)
local zkey = P .. ':rk:' .. ARGV[1] .. ':' .. rid
local offset = 0
while true do
  local batch = redis.call('ZRANGE', zkey, offset, offset + 31)
  if #batch == 0 then return false end
  for _, m in ipairs(batch) do
    local aid = string.sub(m, width + 1)
    if not excluded[aid] then
      local akey = P .. ':ag:' .. enc(aid)
      local a = agent_state(akey)
      if not a or not eligible(a) then
        return redis.error_reply('ranking index out of step with agent ' .. aid)
      end
      do_claim(akey, a, ARGV[3], ARGV[4], ARGV[5])
      return aid
    end
  end
  offset = offset + 32
end
""",
    # ARGV: aenc, chat, now, tiebreak
    "agent_claim": r"""
local akey = P .. ':ag:' .. ARGV[1]
local a = agent_state(akey)
if not a then return 0 end
if redis.call('SISMEMBER', akey .. ':chats', ARGV[2]) == 1
   or redis.call('SISMEMBER', akey .. ':inactive', ARGV[2]) == 1 then return 1 end
if not eligible(a) then return 0 end
do_claim(akey, a, ARGV[2], ARGV[3], ARGV[4])
return 1
""",
    # ARGV: aenc, chat, now, tiebreak
    "agent_release": r"""
local akey = P .. ':ag:' .. ARGV[1]
local a = agent_state(akey)
if not a then return 0 end
local c = redis.call('SREM', akey .. ':chats', ARGV[2])
local i = redis.call('SREM', akey .. ':inactive', ARGV[2])
if c == 0 and i == 0 then return 0 end
if redis.call('SCARD', akey .. ':chats') == 0 and redis.call('SCARD', akey .. ':inactive') == 0 then
  redis.call('HSET', akey, 'idle', ARGV[3], 'tb', ARGV[4])
else
  redis.call('HSET', akey, 'tb', ARGV[4])
end
changed(akey, a)
return 1
""",
    # ARGV: aenc, chat, '1' (inactive) or '0'
    "agent_set_inactive": r"""
local akey = P .. ':ag:' .. ARGV[1]
local a = agent_state(akey)
if not a then return 0 end
local from, to = ':chats', ':inactive'
if ARGV[3] == '0' then from, to = ':inactive', ':chats' end
if redis.call('SMOVE', akey .. from, akey .. to, ARGV[2]) == 0 then return 0 end
changed(akey, a)
return 1
""",
    # ARGV: id, json, version, state, events...
    "chat_create": r"""
local v = redis.call('HGET', P .. ':chv', ARGV[1])
if v then return {0, v} end
redis.call('HSET', P .. ':ch', ARGV[1], ARGV[2])
redis.call('HSET', P .. ':chv', ARGV[1], ARGV[3])
redis.call('HSET', P .. ':chs', ARGV[1], ARGV[4])
local seq = redis.call('INCR', P .. ':chseq')
redis.call('HSET', P .. ':cho', ARGV[1], seq)
redis.call('ZADD', P .. ':chall', seq, ARGV[1])
redis.call('ZADD', P .. ':chl:' .. ARGV[4], seq, ARGV[1])
xadd(5)
return {1}
""",
    # ARGV: id, json, version, state, expected, sticky partner id ('' none), sticky json,
    # message chat id escaped ('' none), message json, events...
    "chat_cas": r"""
local v = redis.call('HGET', P .. ':chv', ARGV[1])
if not v then return {-1} end
if v ~= ARGV[5] then return {0, v} end
redis.call('HSET', P .. ':ch', ARGV[1], ARGV[2])
redis.call('HSET', P .. ':chv', ARGV[1], ARGV[3])
local old = redis.call('HGET', P .. ':chs', ARGV[1])
if old ~= ARGV[4] then
  local seq = redis.call('HGET', P .. ':cho', ARGV[1])
  redis.call('ZREM', P .. ':chl:' .. old, ARGV[1])
  redis.call('ZADD', P .. ':chl:' .. ARGV[4], seq, ARGV[1])
  redis.call('HSET', P .. ':chs', ARGV[1], ARGV[4])
end
if ARGV[6] ~= '' then redis.call('HSET', P .. ':st', ARGV[6], ARGV[7]) end
if ARGV[8] ~= '' then redis.call('RPUSH', P .. ':msg:' .. ARGV[8], ARGV[9]) end
xadd(10)
return {1}
""",
    # ARGV: qenc, chat, score
    "queue_push": r"""
local mkey = P .. ':qm:' .. ARGV[1]
if redis.call('HEXISTS', mkey, ARGV[2]) == 1 then return 0 end
local seq = redis.call('INCR', P .. ':qseq')
local m = string.format('%020d', seq) .. ARGV[2]
redis.call('ZADD', P .. ':q:' .. ARGV[1], ARGV[3], m)
redis.call('HSET', mkey, ARGV[2], m)
return 1
""",
    # ARGV: qenc, chat
    "queue_remove": r"""
local mkey = P .. ':qm:' .. ARGV[1]
local m = redis.call('HGET', mkey, ARGV[2])
if not m then return 0 end
redis.call('ZREM', P .. ':q:' .. ARGV[1], m)
redis.call('HDEL', mkey, ARGV[2])
return 1
""",
    # ARGV: qenc, chat
    "queue_position": r"""
local m = redis.call('HGET', P .. ':qm:' .. ARGV[1], ARGV[2])
if not m then return false end
return redis.call('ZRANK', P .. ':q:' .. ARGV[1], m)
""",
    # ARGV: events...
    "outbox_append": r"""
xadd(1)
return 1
""",
    # ARGV: consumer, limit, now, lease_until
    "outbox_claim": r"""
local ob, lz = P .. ':ob', P .. ':ob:lease'
redis.pcall('XGROUP', 'CREATE', ob, 'cm', '0', 'MKSTREAM')
local consumer, limit, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local start = '-'
while #out < limit do
  local rows = redis.call('XPENDING', ob, 'cm', start, '+', 100)
  if #rows == 0 then break end
  local ids, counts = {}, {}
  for _, r in ipairs(rows) do
    local lease = redis.call('ZSCORE', lz, r[1])
    if (not lease) or tonumber(lease) <= now then
      ids[#ids + 1] = r[1]
      counts[r[1]] = r[4]
      if #out + #ids >= limit then break end
    end
  end
  if #ids > 0 then
    for _, e in ipairs(redis.call('XCLAIM', ob, 'cm', consumer, 0, unpack(ids))) do
      if e and e[2] then
        redis.call('ZADD', lz, ARGV[4], e[1])
        out[#out + 1] = {e[1], e[2][2], counts[e[1]] + 1}
      end
    end
  end
  if #rows < 100 then break end
  start = '(' .. rows[#rows][1]
end
if #out < limit then
  local res = redis.call('XREADGROUP', 'GROUP', 'cm', consumer, 'COUNT', limit - #out,
                         'STREAMS', ob, '>')
  if res then
    for _, e in ipairs(res[1][2]) do
      redis.call('ZADD', lz, ARGV[4], e[1])
      out[#out + 1] = {e[1], e[2][2], 1}
    end
  end
end
return out
""",
    # ARGV: ids...
    "outbox_ack": r"""
local ob = P .. ':ob'
redis.pcall('XGROUP', 'CREATE', ob, 'cm', '0', 'MKSTREAM')
redis.call('XACK', ob, 'cm', unpack(ARGV))
redis.call('XDEL', ob, unpack(ARGV))
redis.call('ZREM', P .. ':ob:lease', unpack(ARGV))
return 1
""",
    # ARGV: key, due_at, json
    "timer_schedule": r"""
local z, mh = P .. ':tm:z', P .. ':tm:m'
local old = redis.call('HGET', mh, ARGV[1])
if old then redis.call('ZREM', z, old) end
local m = string.format('%020d', redis.call('INCR', P .. ':tm:seq')) .. ARGV[1]
redis.call('ZADD', z, ARGV[2], m)
redis.call('HSET', mh, ARGV[1], m)
redis.call('HSET', P .. ':tm:d', ARGV[1], ARGV[3])
return 1
""",
    # ARGV: key, due_at ('' for any)
    "timer_cancel": r"""
local z, mh = P .. ':tm:z', P .. ':tm:m'
local m = redis.call('HGET', mh, ARGV[1])
if not m then return 0 end
if ARGV[2] ~= '' and tonumber(redis.call('ZSCORE', z, m)) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', z, m)
redis.call('HDEL', mh, ARGV[1])
redis.call('HDEL', P .. ':tm:d', ARGV[1])
return 1
""",
    # ARGV: now, limit, lease_until
    "timer_claim_due": r"""
local z, mh, dh = P .. ':tm:z', P .. ':tm:m', P .. ':tm:d'
local rows = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #rows, 2 do
  local key = string.sub(rows[i], 21)
  out[#out + 1] = {redis.call('HGET', dh, key), rows[i + 1]}
  redis.call('ZREM', z, rows[i])
  local m = string.format('%020d', redis.call('INCR', P .. ':tm:seq')) .. key
  redis.call('ZADD', z, ARGV[3], m)
  redis.call('HSET', mh, key, m)
end
return out
""",
    # ARGV: kenc, now, cutoff
    "counter_hit": r"""
local k = P .. ':rc:' .. ARGV[1]
redis.call('ZADD', k, ARGV[2], redis.call('INCR', P .. ':rc:seq'))
redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[3])
return redis.call('ZCARD', k)
""",
}
_FULL_SCRIPTS = {name: _PRELUDE + body for name, body in _SCRIPTS.items()}


# --------------------------------------------------------------------------- operations


@attrs.frozen
class _Script:
    name: str
    args: tuple[Any, ...]


@attrs.frozen
class _Call:
    args: tuple[Any, ...]


_Cmd = _Script | _Call
_Gen = Generator[_Cmd, Any, _T]


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _load(reply: Any) -> AgentLoad:
    agent_json, last, idle, tb, chats, inactive = reply
    return AgentLoad(
        agent=decode(agent_json, Agent),
        chats=frozenset(ChatId(_s(c)) for c in chats),
        inactive=frozenset(ChatId(_s(c)) for c in inactive),
        last_assigned_at=float(_s(last)),
        idle_since=float(_s(idle)),
        tiebreak=float(_s(tb)),
    )


def _events(events: Sequence[Event]) -> tuple[str, ...]:
    return tuple(encode(e) for e in events)


class _Ops:
    """Every storage operation of one namespace, as a generator of Redis calls."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = key_prefix(namespace)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # customers
    def customer_get(self, partner_id: str) -> _Gen[Customer | None]:
        raw = yield _Call(("HGET", self.key("cu"), partner_id))
        return None if raw is None else decode(raw, Customer)

    def customer_create(self, customer: Customer, events: Sequence[Event]) -> _Gen[None]:
        reply = yield _Script(
            "customer_create",
            (customer.partner_id, str(customer.version), encode(customer), *_events(events)),
        )
        if int(reply[0]) == 0:
            raise ConflictError("customer", customer.partner_id, None, int(_s(reply[1])))

    def customer_replace(
        self, customer: Customer, expected: int, events: Sequence[Event]
    ) -> _Gen[None]:
        reply = yield _Script(
            "customer_replace",
            (
                customer.partner_id,
                str(customer.version),
                encode(customer),
                str(int(expected)),
                *_events(events),
            ),
        )
        status = int(reply[0])
        if status == -1:
            raise NotFoundError("customer", customer.partner_id)
        if status == 0:
            raise ConflictError("customer", customer.partner_id, expected, int(_s(reply[1])))

    # agents
    def agent_put(
        self, agent: Agent, now: float, events: Sequence[Event], tiebreak: float
    ) -> _Gen[AgentLoad]:
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
                str(len(groups)),
                *groups,
                *_events(events),
            ),
        )
        return _load(reply)

    def agent_census(self, group: str) -> _Gen[Census]:
        raw = yield _Call(("HGETALL", self.key("cen", _enc(group))))
        counts = {_s(k): int(_s(v)) for k, v in (raw or {}).items()}
        return Census(**{f: counts.get(f, 0) for f in _CENSUS_FIELDS})

    def agent_get(self, agent_id: str) -> _Gen[AgentLoad | None]:
        reply = yield _Script("agent_get", (_enc(agent_id),))
        return None if not reply else _load(reply)

    def agent_list(self, group: str | None) -> _Gen[list[AgentLoad]]:
        reply = yield _Script("agent_list", (_enc(group or ""),))
        loads = [_load(r) for r in reply]
        loads.sort(key=lambda ld: (ld.agent.account_order, ld.agent.id))
        return loads

    def agent_claim_ranked(
        self,
        group: str,
        ranking: Ranking,
        chat_id: str,
        excluded: frozenset[AgentId],
        now: float,
        tiebreak: float,
    ) -> _Gen[AgentId | None]:
        reply = yield _Script(
            "agent_claim_ranked",
            (_enc(group), _rid(ranking), chat_id, _num(now), _num(tiebreak), *sorted(excluded)),
        )
        return None if not reply else AgentId(_s(reply))

    def agent_claim(self, agent_id: str, chat_id: str, now: float, tiebreak: float) -> _Gen[bool]:
        reply = yield _Script("agent_claim", (_enc(agent_id), chat_id, _num(now), _num(tiebreak)))
        return bool(int(reply))

    def agent_release(self, agent_id: str, chat_id: str, now: float, tiebreak: float) -> _Gen[bool]:
        reply = yield _Script("agent_release", (_enc(agent_id), chat_id, _num(now), _num(tiebreak)))
        return bool(int(reply))

    def agent_set_inactive(self, agent_id: str, chat_id: str, inactive: bool) -> _Gen[None]:
        yield _Script("agent_set_inactive", (_enc(agent_id), chat_id, "1" if inactive else "0"))

    # chats
    def chat_get(self, chat_id: str) -> _Gen[Chat | None]:
        raw = yield _Call(("HGET", self.key("ch"), chat_id))
        return None if raw is None else decode(raw, Chat)

    def chat_create(self, chat: Chat, events: Sequence[Event]) -> _Gen[None]:
        reply = yield _Script(
            "chat_create",
            (chat.id, encode(chat), str(chat.version), chat.state.value, *_events(events)),
        )
        if int(reply[0]) == 0:
            raise ConflictError("chat", chat.id, None, int(_s(reply[1])))

    def _chat_cas(
        self,
        chat: Chat,
        expected: int,
        events: Sequence[Event],
        sticky: Sticky | None,
        message: Message | None,
    ) -> _Gen[None]:
        reply = yield _Script(
            "chat_cas",
            (
                chat.id,
                encode(chat),
                str(chat.version),
                chat.state.value,
                str(int(expected)),
                "" if sticky is None else sticky.partner_id,
                "" if sticky is None else encode(sticky),
                "" if message is None else _enc(chat.id),
                "" if message is None else encode(message),
                *_events(events),
            ),
        )
        status = int(reply[0])
        if status == -1:
            raise NotFoundError("chat", chat.id)
        if status == 0:
            raise ConflictError("chat", chat.id, expected, int(_s(reply[1])))

    def chat_replace(
        self, chat: Chat, expected: int, events: Sequence[Event], sticky: Sticky | None
    ) -> _Gen[None]:
        return (yield from self._chat_cas(chat, expected, events, sticky, None))

    def chat_append_message(
        self,
        message: Message,
        chat: Chat,
        expected: int,
        events: Sequence[Event],
        sticky: Sticky | None,
    ) -> _Gen[None]:
        return (yield from self._chat_cas(chat, expected, events, sticky, message))

    def chat_messages(self, chat_id: str) -> _Gen[list[Message]]:
        raw = yield _Call(("LRANGE", self.key("msg", _enc(chat_id)), 0, -1))
        return [decode(r, Message) for r in raw]

    def chat_list(self, state: ChatState | None, agent_id: str | None) -> _Gen[list[Chat]]:
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

    def chat_sticky(self, partner_id: str) -> _Gen[Sticky | None]:
        raw = yield _Call(("HGET", self.key("st"), partner_id))
        return None if raw is None else decode(raw, Sticky)

    # queues
    def queue_push(self, queue: str, chat_id: str, score: float) -> _Gen[None]:
        yield _Script("queue_push", (_enc(queue), chat_id, _num(score)))

    def queue_remove(self, queue: str, chat_id: str) -> _Gen[bool]:
        reply = yield _Script("queue_remove", (_enc(queue), chat_id))
        return bool(int(reply))

    def queue_peek(self, queue: str, limit: int) -> _Gen[list[tuple[ChatId, float]]]:
        if limit <= 0:
            return []
        raw = yield _Call(("ZRANGE", self.key("q", _enc(queue)), 0, limit - 1, "WITHSCORES"))
        if raw and not isinstance(raw[0], (list, tuple)):  # RESP2 without a response callback
            raw = list(zip(raw[::2], raw[1::2], strict=True))
        return [(ChatId(_s(m)[_SEQ_WIDTH:]), float(_s(score))) for m, score in raw]

    def queue_position(self, queue: str, chat_id: str) -> _Gen[int | None]:
        reply = yield _Script("queue_position", (_enc(queue), chat_id))
        return None if reply is None else int(reply)

    def queue_length(self, queue: str) -> _Gen[int]:
        reply = yield _Call(("ZCARD", self.key("q", _enc(queue))))
        return int(reply)

    # outbox
    def outbox_append(self, events: Sequence[Event]) -> _Gen[None]:
        if events:
            yield _Script("outbox_append", _events(events))

    def outbox_claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> _Gen[list[OutboxEntry]]:
        if limit <= 0:
            return []
        reply = yield _Script(
            "outbox_claim", (consumer, str(int(limit)), _num(now), _num(now + lease_s))
        )
        return [OutboxEntry(_s(r[0]), decode(r[1], Event), int(r[2])) for r in reply]

    def outbox_ack(self, entry_ids: Sequence[str]) -> _Gen[None]:
        ids = tuple(e for e in entry_ids if isinstance(e, str) and _STREAM_ID.match(e))
        if ids:
            yield _Script("outbox_ack", ids)

    def outbox_pending(self) -> _Gen[int]:
        reply = yield _Call(("XLEN", self.key("ob")))
        return int(reply)

    def outbox_events(self) -> _Gen[list[Event]]:
        raw = yield _Call(("XRANGE", self.key("ob"), "-", "+"))
        return [decode(fields[b"e" if b"e" in fields else "e"], Event) for _id, fields in raw]

    # timers
    def timer_schedule(self, timer: Timer) -> _Gen[None]:
        yield _Script("timer_schedule", (timer.key, _num(timer.due_at), encode(timer)))

    def timer_cancel(self, key: str, due_at: float | None) -> _Gen[None]:
        yield _Script("timer_cancel", (key, "" if due_at is None else _num(due_at)))

    def timer_claim_due(self, now: float, limit: int, lease_s: float) -> _Gen[list[Timer]]:
        if limit <= 0:
            return []
        reply = yield _Script("timer_claim_due", (_num(now), str(int(limit)), _num(now + lease_s)))
        return [attrs.evolve(decode(r[0], Timer), due_at=float(_s(r[1]))) for r in reply]

    def timer_get(self, key: str) -> _Gen[Timer | None]:
        member = yield _Call(("HGET", self.key("tm", "m"), key))
        if member is None:
            return None
        score = yield _Call(("ZSCORE", self.key("tm", "z"), member))
        raw = yield _Call(("HGET", self.key("tm", "d"), key))
        if raw is None or score is None:
            return None
        return attrs.evolve(decode(raw, Timer), due_at=float(_s(score)))

    # counters
    def counter_hit(self, key: str, now: float, window_s: float) -> _Gen[int]:
        reply = yield _Script("counter_hit", (_enc(key), _num(now), _num(now - window_s)))
        return int(reply)

    # maintenance
    def delete_namespace(self) -> _Gen[int]:
        pattern = _glob_escape(self.prefix) + ":*"
        deleted = 0
        cursor: Any = 0
        while True:
            cursor, keys = yield _Call(("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
            if keys:
                deleted += int((yield _Call(("DEL", *keys))))
            if int(cursor) == 0:
                return deleted


_CENSUS_FIELDS = tuple(a.name for a in attrs.fields(Census))


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


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


class _SyncDriver:
    """Runs generators of Redis commands against a sync client (shared with the webhook
    delivery store, which brings its own scripts)."""

    def __init__(self, client: Any, ops: Any, scripts: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.ops = ops
        source = scripts if scripts is not None else _FULL_SCRIPTS
        self.scripts = {name: client.register_script(body) for name, body in source.items()}

    def run(self, gen: Generator[Any, Any, _T]) -> _T:
        keys = [self.ops.prefix]
        try:
            cmd = next(gen)
            while True:
                name = getattr(cmd, "name", None)  # a script call; else a plain command
                if name is not None:
                    result = self.scripts[name](keys=keys, args=cmd.args)
                else:
                    result = self.client.execute_command(*cmd.args)
                cmd = gen.send(result)
        except StopIteration as stop:
            return cast(_T, stop.value)


class _AsyncDriver:
    """The asyncio twin of :class:`_SyncDriver`."""

    def __init__(self, client: Any, ops: Any, scripts: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.ops = ops
        source = scripts if scripts is not None else _FULL_SCRIPTS
        self.scripts = {name: client.register_script(body) for name, body in source.items()}

    async def run(self, gen: Generator[Any, Any, _T]) -> _T:
        keys = [self.ops.prefix]
        try:
            cmd = next(gen)
            while True:
                name = getattr(cmd, "name", None)
                if name is not None:
                    result = await self.scripts[name](keys=keys, args=cmd.args)
                else:
                    result = await self.client.execute_command(*cmd.args)
                cmd = gen.send(result)
        except StopIteration as stop:
            return cast(_T, stop.value)


# --------------------------------------------------------------------------- sync ports


class _SyncPort:
    def __init__(self, driver: _SyncDriver) -> None:
        self._d = driver
        self._o: _Ops = driver.ops


class RedisCustomerStore(_SyncPort):
    """Redis :class:`~chatmgmt.ports.CustomerStore`."""

    def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        return self._d.run(self._o.customer_get(partner_id))

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        self._d.run(self._o.customer_create(customer, events))

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        self._d.run(self._o.customer_replace(customer, expected_version, events))


class RedisAgentStore(_SyncPort):
    """Redis :class:`~chatmgmt.ports.AgentStore`: sorted-set ranking indexes, Lua claims."""

    def put(
        self, agent: Agent, now: float, events: Sequence[Event] = (), tiebreak: float = 0.0
    ) -> AgentLoad:
        """See the port."""
        return self._d.run(self._o.agent_put(agent, now, events, tiebreak))

    def census(self, group: str) -> Census:
        """See the port (one hash read)."""
        return self._d.run(self._o.agent_census(group))

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        return self._d.run(self._o.agent_get(agent_id))

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        return self._d.run(self._o.agent_list(group))

    def claim_ranked(
        self,
        group: str,
        ranking: Ranking,
        chat_id: ChatId,
        excluded: frozenset[AgentId],
        now: float,
        tiebreak: float,
    ) -> AgentId | None:
        """See the port (one Lua script over the group's sorted set)."""
        return self._d.run(
            self._o.agent_claim_ranked(group, ranking, chat_id, excluded, now, tiebreak)
        )

    def claim(self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float) -> bool:
        """See the port."""
        return self._d.run(self._o.agent_claim(agent_id, chat_id, now, tiebreak))

    def release(self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float) -> bool:
        """See the port."""
        return self._d.run(self._o.agent_release(agent_id, chat_id, now, tiebreak))

    def set_inactive(self, agent_id: AgentId, chat_id: ChatId, inactive: bool) -> None:
        """See the port."""
        self._d.run(self._o.agent_set_inactive(agent_id, chat_id, inactive))


class RedisChatStore(_SyncPort):
    """Redis :class:`~chatmgmt.ports.ChatStore` (compare-and-set in Lua)."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        return self._d.run(self._o.chat_get(chat_id))

    def create(self, chat: Chat, events: Sequence[Event] = ()) -> None:
        """See the port."""
        self._d.run(self._o.chat_create(chat, events))

    def replace(
        self,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """See the port."""
        self._d.run(self._o.chat_replace(chat, expected_version, events, sticky))

    def append_message(
        self,
        message: Message,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """See the port."""
        self._d.run(self._o.chat_append_message(message, chat, expected_version, events, sticky))

    def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        return self._d.run(self._o.chat_messages(chat_id))

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """See the port (paged reads, in creation order)."""
        return self._d.run(self._o.chat_list(state, agent_id))

    def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        return self._d.run(self._o.chat_sticky(partner_id))


class RedisQueueStore(_SyncPort):
    """Redis :class:`~chatmgmt.ports.QueueStore` (a sorted set per queue)."""

    def push(self, queue: str, chat_id: ChatId, score: float) -> None:
        """See the port."""
        self._d.run(self._o.queue_push(queue, chat_id, score))

    def remove(self, queue: str, chat_id: ChatId) -> bool:
        """See the port."""
        return self._d.run(self._o.queue_remove(queue, chat_id))

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        return self._d.run(self._o.queue_peek(queue, limit))

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        return self._d.run(self._o.queue_position(queue, chat_id))

    def length(self, queue: str) -> int:
        """See the port."""
        return self._d.run(self._o.queue_length(queue))


class RedisOutbox(_SyncPort):
    """Redis :class:`~chatmgmt.ports.Outbox`: a stream with a consumer group and leases."""

    def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        self._d.run(self._o.outbox_append(events))

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """See the port."""
        return self._d.run(self._o.outbox_claim(consumer, limit, now, lease_s))

    def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        self._d.run(self._o.outbox_ack(entry_ids))

    def pending(self) -> int:
        """See the port."""
        return self._d.run(self._o.outbox_pending())

    def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        return self._d.run(self._o.outbox_events())


class RedisTimerStore(_SyncPort):
    """Redis :class:`~chatmgmt.ports.TimerStore` (a sorted set by due time)."""

    def schedule(self, timer: Timer) -> None:
        """See the port."""
        self._d.run(self._o.timer_schedule(timer))

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        self._d.run(self._o.timer_cancel(key, due_at))

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        return self._d.run(self._o.timer_claim_due(now, limit, lease_s))

    def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        return self._d.run(self._o.timer_get(key))


class RedisRateCounter(_SyncPort):
    """Redis :class:`~chatmgmt.ports.RateCounter` (a sorted set per key)."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        return self._d.run(self._o.counter_hit(key, now, window_s))


class RedisStorage:
    """Every storage port in Redis, for one namespace (tenant); the sync face.

    ``client_or_url`` is a ``redis.Redis`` (or ``redis.RedisCluster``) client or a URL such as
    ``"redis://localhost:6379/0"`` (the storage then owns the client and :meth:`close` closes
    it). Any number of processes and machines may share one namespace.
    """

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._url = client_or_url if isinstance(client_or_url, str) else None
        self.client, self._owned = _connect_sync(client_or_url)
        self._namespace = namespace
        driver = _SyncDriver(self.client, _Ops(namespace))
        self._driver = driver
        self._customers = RedisCustomerStore(driver)
        self._agents = RedisAgentStore(driver)
        self._chats = RedisChatStore(driver)
        self._queues = RedisQueueStore(driver)
        self._outbox = RedisOutbox(driver)
        self._timers = RedisTimerStore(driver)
        self._counters = RedisRateCounter(driver)

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return str(self._driver.ops.prefix)

    @property
    def customers(self) -> RedisCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> RedisAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> RedisChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> RedisQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> RedisOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> RedisTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> RedisRateCounter:
        """Sliding-window counters."""
        return self._counters

    def aio(self) -> AsyncRedisStorage:
        """An async face on the same server and namespace (needs a storage made from a URL)."""
        if self._url is None:
            raise TypeError(
                "aio() needs a RedisStorage made from a URL; "
                "otherwise build AsyncRedisStorage(redis.asyncio client, namespace)"
            )
        return AsyncRedisStorage(self._url, self._namespace)

    def delete_namespace(self) -> int:
        """Delete every key of this namespace (a tenant's removal); returns how many."""
        ops: _Ops = self._driver.ops
        return self._driver.run(ops.delete_namespace())

    def close(self) -> None:
        """Close the client if this storage created it from a URL."""
        if self._owned:
            self.client.close()


# --------------------------------------------------------------------------- async ports


class _AsyncPort:
    def __init__(self, driver: _AsyncDriver) -> None:
        self._d = driver
        self._o: _Ops = driver.ops


class AsyncRedisCustomerStore(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncCustomerStore`."""

    async def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        return await self._d.run(self._o.customer_get(partner_id))

    async def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        await self._d.run(self._o.customer_create(customer, events))

    async def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        await self._d.run(self._o.customer_replace(customer, expected_version, events))


class AsyncRedisAgentStore(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncAgentStore`."""

    async def put(
        self, agent: Agent, now: float, events: Sequence[Event] = (), tiebreak: float = 0.0
    ) -> AgentLoad:
        """See the port."""
        return await self._d.run(self._o.agent_put(agent, now, events, tiebreak))

    async def census(self, group: str) -> Census:
        """See the port."""
        return await self._d.run(self._o.agent_census(group))

    async def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        return await self._d.run(self._o.agent_get(agent_id))

    async def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        return await self._d.run(self._o.agent_list(group))

    async def claim_ranked(
        self,
        group: str,
        ranking: Ranking,
        chat_id: ChatId,
        excluded: frozenset[AgentId],
        now: float,
        tiebreak: float,
    ) -> AgentId | None:
        """See the port."""
        return await self._d.run(
            self._o.agent_claim_ranked(group, ranking, chat_id, excluded, now, tiebreak)
        )

    async def claim(self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float) -> bool:
        """See the port."""
        return await self._d.run(self._o.agent_claim(agent_id, chat_id, now, tiebreak))

    async def release(
        self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float
    ) -> bool:
        """See the port."""
        return await self._d.run(self._o.agent_release(agent_id, chat_id, now, tiebreak))

    async def set_inactive(self, agent_id: AgentId, chat_id: ChatId, inactive: bool) -> None:
        """See the port."""
        await self._d.run(self._o.agent_set_inactive(agent_id, chat_id, inactive))


class AsyncRedisChatStore(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncChatStore`."""

    async def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        return await self._d.run(self._o.chat_get(chat_id))

    async def create(self, chat: Chat, events: Sequence[Event] = ()) -> None:
        """See the port."""
        await self._d.run(self._o.chat_create(chat, events))

    async def replace(
        self,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """See the port."""
        await self._d.run(self._o.chat_replace(chat, expected_version, events, sticky))

    async def append_message(
        self,
        message: Message,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """See the port."""
        await self._d.run(
            self._o.chat_append_message(message, chat, expected_version, events, sticky)
        )

    async def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        return await self._d.run(self._o.chat_messages(chat_id))

    async def list(
        self, state: ChatState | None = None, agent_id: AgentId | None = None
    ) -> list[Chat]:
        """See the port."""
        return await self._d.run(self._o.chat_list(state, agent_id))

    async def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        return await self._d.run(self._o.chat_sticky(partner_id))


class AsyncRedisQueueStore(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncQueueStore`."""

    async def push(self, queue: str, chat_id: ChatId, score: float) -> None:
        """See the port."""
        await self._d.run(self._o.queue_push(queue, chat_id, score))

    async def remove(self, queue: str, chat_id: ChatId) -> bool:
        """See the port."""
        return await self._d.run(self._o.queue_remove(queue, chat_id))

    async def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        return await self._d.run(self._o.queue_peek(queue, limit))

    async def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        return await self._d.run(self._o.queue_position(queue, chat_id))

    async def length(self, queue: str) -> int:
        """See the port."""
        return await self._d.run(self._o.queue_length(queue))


class AsyncRedisOutbox(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncOutbox`."""

    async def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        await self._d.run(self._o.outbox_append(events))

    async def claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> list[OutboxEntry]:
        """See the port."""
        return await self._d.run(self._o.outbox_claim(consumer, limit, now, lease_s))

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        await self._d.run(self._o.outbox_ack(entry_ids))

    async def pending(self) -> int:
        """See the port."""
        return await self._d.run(self._o.outbox_pending())

    async def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        return await self._d.run(self._o.outbox_events())


class AsyncRedisTimerStore(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncTimerStore`."""

    async def schedule(self, timer: Timer) -> None:
        """See the port."""
        await self._d.run(self._o.timer_schedule(timer))

    async def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        await self._d.run(self._o.timer_cancel(key, due_at))

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        return await self._d.run(self._o.timer_claim_due(now, limit, lease_s))

    async def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        return await self._d.run(self._o.timer_get(key))


class AsyncRedisRateCounter(_AsyncPort):
    """Async Redis :class:`~chatmgmt.ports.AsyncRateCounter`."""

    async def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        return await self._d.run(self._o.counter_hit(key, now, window_s))


class AsyncRedisStorage:
    """Every storage port in Redis, for one namespace; the asyncio face (``redis.asyncio``).

    ``client_or_url`` is a ``redis.asyncio.Redis`` (or ``RedisCluster``) client or a URL (the
    storage then owns the client and :meth:`aclose` closes it). Same keys and scripts as
    :class:`RedisStorage`: sync and async workers may share one namespace.
    """

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self.client, self._owned = _connect_async(client_or_url)
        self._namespace = namespace
        driver = _AsyncDriver(self.client, _Ops(namespace))
        self._driver = driver
        self._customers = AsyncRedisCustomerStore(driver)
        self._agents = AsyncRedisAgentStore(driver)
        self._chats = AsyncRedisChatStore(driver)
        self._queues = AsyncRedisQueueStore(driver)
        self._outbox = AsyncRedisOutbox(driver)
        self._timers = AsyncRedisTimerStore(driver)
        self._counters = AsyncRedisRateCounter(driver)

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return str(self._driver.ops.prefix)

    @property
    def customers(self) -> AsyncRedisCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> AsyncRedisAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> AsyncRedisChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> AsyncRedisQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> AsyncRedisOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> AsyncRedisTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> AsyncRedisRateCounter:
        """Sliding-window counters."""
        return self._counters

    async def delete_namespace(self) -> int:
        """Delete every key of this namespace (a tenant's removal); returns how many."""
        return await self._driver.run(self._driver.ops.delete_namespace())

    async def aclose(self) -> None:
        """Close the client if this storage created it from a URL."""
        if self._owned:
            await self.client.aclose()
