-- The shared part of every storage script (chatmgmt.storage._redis_keys prepends
-- `local DATA_VERSION = <n>` to it and appends one script body).
--
-- The agent-load rules here are those of chatmgmt/assignment/_load.py (eligible, fits, weight,
-- claimed, forced, released, moved_inactive, updated_agent, census_category, the rank values of
-- every RANK_FIELD); tests/storage/test_redis_apply.py and the contract suite's pure-rule pin
-- (with channels and caps) pin them to the pure functions.
--
-- KEYS[1] is the namespace's key prefix `cm:{<namespace>}`: every key a script touches starts
-- with it, so a script runs on one Redis Cluster slot.

local P = KEYS[1]

-- data version 3 and older kept each timer in `tm:z` as `<zero-padded number><key>`, with
-- `tm:m` (key -> member) and `tm:seq`; version 4 keys them by their key. Run by the write that
-- marks the namespace 4, in the same script: every timer converted (its due time kept), the two
-- keys dropped. O(timers), once.
local function migrate_timers()
  local z = P .. ':tm:z'
  local rows = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  if #rows > 0 then
    redis.call('DEL', z)
    local args = {}
    for i = 1, #rows, 2 do
      args[#args + 1] = rows[i + 1]
      args[#args + 1] = string.sub(rows[i], 21)
      if #args >= 1000 or i + 1 >= #rows then
        redis.call('ZADD', z, unpack(args))
        args = {}
      end
    end
  end
  redis.call('DEL', P .. ':tm:m', P .. ':tm:seq')
end

-- data version 4 keeps two flags and its groups in each agent's hash, data version 5 the
-- number of chats it holds, counted (`n`) and inactive (`ni`) (see agent_state): set from what
-- the agent's assignment times, channel hash, group set and chat sets hold when the namespace
-- is marked 5. O(agents), once.
local function migrate_agents()
  for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:')) do
    local akey = P .. ':ag:' .. aenc
    local groups = redis.call('SMEMBERS', akey .. ':groups')
    redis.call('HSET', akey, 'rec', redis.call('EXISTS', akey .. ':rec'),
               'chn', redis.call('EXISTS', akey .. ':ch'), 'grp', table.concat(groups, ':'),
               'n', redis.call('SCARD', akey .. ':chats'),
               'ni', redis.call('SCARD', akey .. ':inactive'))
  end
end

-- the ranking indexes in use (data version 6): the (skill group, ranking) pairs picks have
-- used, in one string `rkp`: each ranking's id, then the escaped names of its groups in use,
-- each after a ':' (an escaped name never holds one), the rankings apart by '{' (neither an
-- id nor an escaped name holds one; '' is a group): 'last_assigned_at+account_order+:g:{tier-:'.
-- Only those pairs have an index, and an agent's entry `m:<ranking>` is kept only while one of
-- its groups has that ranking's index. Versions 5 and older kept an index for every group of
-- every ranking (their ids in the set `rankings` and the string `rkl`): the write that marks a
-- namespace 6 lists all those pairs. `rkh` holds the SHA-1 of `rkp` (absent: no pairs) and is
-- what each call reads with the data version in one MGET (40 bytes, however many pairs): the
-- parsed pairs are kept by that digest across calls (RK_BY_HASH; a digest names one text, so
-- a deleted or rewritten namespace is never read from a stale entry), `rkp` read on a miss.
-- RK: this call's pairs, {ids = {id, ...}, groups = {[id] = {[group] = true}}, lists =
-- {[id] = {group, ...}}} (never changed in place), valid while RK_ARGV is the call's ARGV
-- table (a new table on every call); read by a GET of `rkp` when the call did not read `rkh`.
local RK, RK_ARGV = nil, nil
local RK_BY_HASH, RK_CACHED = {}, 0  -- (at most 256 lists kept: then the cache starts over)
local NO_PAIRS = {ids = {}, groups = {}, lists = {}}
local function ranking_pairs(text)
  if not text or text == '' then return NO_PAIRS end
  local out = {ids = {}, groups = {}, lists = {}}
  local i, n = 1, #text
  while i <= n do
    local j = string.find(text, '{', i, true) or n + 1
    local k = string.find(text, ':', i, true)
    if not k or k > j then k = j end
    local rid = string.sub(text, i, k - 1)
    local set, list = {}, {}
    while k < j do  -- a group from k + 1 to the next ':' or the entry's end
      local e = string.find(text, ':', k + 1, true)
      if not e or e > j then e = j end
      local g = string.sub(text, k + 1, e - 1)
      set[g] = true
      list[#list + 1] = g
      k = e
    end
    out.ids[#out.ids + 1] = rid
    out.groups[rid], out.lists[rid] = set, list
    i = j + 1
  end
  return out
end
local function cache_pairs(hash, list)
  if RK_CACHED >= 256 then RK_BY_HASH, RK_CACHED = {}, 0 end
  RK_BY_HASH[hash], RK_CACHED = list, RK_CACHED + 1
  return list
end
-- the pairs whose digest `rkh` holds (nil: none)
local function pairs_of(hash)
  if not hash then return NO_PAIRS end
  return RK_BY_HASH[hash] or cache_pairs(hash, ranking_pairs(redis.call('GET', P .. ':rkp')))
end
local function rankings()
  if RK_ARGV ~= ARGV then RK, RK_ARGV = pairs_of(redis.call('GET', P .. ':rkh')), ARGV end
  return RK
end
-- store a new list of pairs (and its digest); this call's pairs become it
local function set_pairs(text)
  local hash = redis.sha1hex(text)
  redis.call('SET', P .. ':rkp', text)
  redis.call('SET', P .. ':rkh', hash)
  RK = RK_BY_HASH[hash] or cache_pairs(hash, ranking_pairs(text))
end
-- a namespace of version 5 or older: every ranking of `rankings` with every group of an agent
local function migrate_rankings()
  local ids = redis.call('SMEMBERS', P .. ':rankings')
  if #ids > 0 then
    local seen, groups = {}, {}
    for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:')) do
      for _, g in ipairs(redis.call('SMEMBERS', P .. ':ag:' .. aenc .. ':groups')) do
        if not seen[g] then seen[g], groups[#groups + 1] = true, g end
      end
    end
    table.sort(ids)
    table.sort(groups)
    local entries = {}
    for i, rid in ipairs(ids) do
      if #groups > 0 then entries[i] = rid .. ':' .. table.concat(groups, ':')
      else entries[i] = rid end
    end
    set_pairs(table.concat(entries, '{'))
  end
  redis.call('DEL', P .. ':rankings', P .. ':rkl')
end

-- the data version of the namespace: an unknown one is refused (the adapter raises StorageError)
local function check_data_version(write)
  local got = redis.call('MGET', P .. ':dv', P .. ':rkh')
  local v = got[1]
  if not v then
    -- a new namespace (or one written before data versions: given this version's fields)
    if write then
      migrate_agents()
      migrate_rankings()
      redis.call('SET', P .. ':dv', DATA_VERSION)
    end
    return
  end
  local n = tonumber(v)
  if n == DATA_VERSION then
    RK, RK_ARGV = pairs_of(got[2]), ARGV
    return
  end
  -- versions 1 (before capacity per channel), 2 (before a chat's version and state shared
  -- one field), 3 (before timers were keyed by their key and agents had the `rec` and `chn`
  -- flags), 4 (before agents kept their chat counts) and 5 (before the ranking indexes were
  -- kept for the pairs in use only) read the same but for the timers of 1 to 3; a write
  -- converts those, sets the agents' fields and the ranking pairs' list and marks the
  -- namespace this version
  if n == 1 or n == 2 or n == 3 or n == 4 or n == 5 then
    if write then
      if n < 4 then migrate_timers() end
      if n < 5 then migrate_agents() end
      migrate_rankings()
      redis.call('SET', P .. ':dv', DATA_VERSION)
    end
    return
  end
  error('CHATMGMT_DATA_VERSION ' .. v)
end

-- a whole number as the text a command reads: a Lua number passed to redis.call is printed
-- with "%.17g" (glibc's floating-point printer, ~2.5k instructions); small ones come from a
-- table, others from the integer printer. (A literal: a library's code runs without the
-- string library when it is loaded.)
local INT_TEXT = {[-4] = '-4', [-3] = '-3', [-2] = '-2', [-1] = '-1', [0] = '0', [1] = '1',
                  [2] = '2', [3] = '3', [4] = '4'}
local function itext(v)
  return INT_TEXT[v] or string.format('%d', v)
end

-- a user string inside a key name: % { } : escaped (mirrors _enc in redis.py)
local function escape(c) return string.format('%%%02X', string.byte(c)) end
local function enc(s)
  if not string.find(s, '[%%{}:]') then return s end  -- (most ids: no new string)
  return (string.gsub(s, '[%%{}:]', escape))
end

local function xadd(first)
  for i = first, #ARGV do redis.call('XADD', P .. ':ob', '*', 'e', ARGV[i]) end
end

-- a double as 8 bytes whose memcmp order is the numeric order
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

-- an agent's `grp` field (its escaped skill groups joined by ':', which an escaped name never
-- holds; '' is one of them) as a list, kept by its text: do not change the list returned
local GROUPS = {}
local function split_groups(text)
  local out = GROUPS[text]
  if out then return out end
  out = {}
  local i = 1
  while true do
    local j = string.find(text, ':', i, true)
    if not j then break end
    out[#out + 1] = string.sub(text, i, j - 1)
    i = j + 1
  end
  out[#out + 1] = string.sub(text, i)
  GROUPS[text] = out
  return out
end

-- a ranking id `field+field-...` as {{field, descending}, ...}
local specs = {}
local function spec(rid)
  local s = specs[rid]
  if s then return s end
  s = {}
  for f, d in string.gmatch(rid, '([%a_]+)([%+%-])') do s[#s + 1] = {f, d == '-'} end
  specs[rid] = s
  return s
end

-- capacity per channel: `cw` / `cl` in the agent's hash hold its channel weights / limits as
-- JSON (absent: none); `<akey>:ch` maps each held chat to its channel (kept only for an agent
-- with either); `<akey>:rec` lists the times of its latest assignments (the fairness cap).
-- Two fields of the agent's hash say whether those two may hold anything (data version 4):
-- `rec` '0' when `<akey>:rec` is empty, '1' when it may not be; `chn` '0' while `<akey>:ch`
-- has never been written, '1' once it has; absent (not expected) counts as '1'. A claim,
-- a release and the load reports skip the commands on a key the flags say is empty. `grp`
-- holds the agent's groups as `<akey>:groups` does, for split_groups (data version 4). `n`
-- and `ni` count the chats in `<akey>:chats` and `<akey>:inactive` (data version 5; kept by
-- every write of those sets: do_claim, do_release, do_inactive): the state reads them with
-- the agent's hash instead of an SCARD, a claim skips the inactive set's SISMEMBER and the
-- load report its SMEMBERS when `ni` is 0; absent (not expected), the sets are read.

-- _load.weight
local function weight(a, channel)
  if a.cw then return a.cw[channel] or 1 end
  return 1
end

-- AgentLoad.used: the weights of the counted chats' recorded channels (1 when unknown); the
-- number of counted chats without weights
local function units(akey, a)
  if not a.cw or a.active == 0 then return a.active end
  local chats = redis.call('SMEMBERS', akey .. ':chats')
  local chs = redis.call('HMGET', akey .. ':ch', unpack(chats))
  local used = 0
  for i = 1, #chats do
    if chs[i] then used = used + weight(a, chs[i]) else used = used + 1 end
  end
  return used
end

-- an agent's state; tier, order, last, idle and tb stay text until a ranking reads them
-- (parsing a double costs the script more than reading the field); with its JSON and
-- configuration version too when `report`
local function agent_state(akey, report)
  local h
  if report then
    h = redis.call('HMGET', akey, 'status', 'limit', 'tier', 'order', 'last', 'idle', 'tb',
                   'id', 'cw', 'cl', 'rec', 'chn', 'grp', 'n', 'ni', 'agent', 'ver')
  else
    h = redis.call('HMGET', akey, 'status', 'limit', 'tier', 'order', 'last', 'idle', 'tb',
                   'id', 'cw', 'cl', 'rec', 'chn', 'grp', 'n', 'ni')
  end
  if not h[1] then return nil end
  local a = {status = h[1], limit = tonumber(h[2]), tier = h[3], order = h[4], last = h[5],
             idle = h[6], tb = h[7], id = h[8], active = tonumber(h[14]),
             ni = tonumber(h[15]), rec = h[11] or '1', chn = h[12] or '1', grp = h[13],
             agent = h[16], ver = h[17]}
  if not a.active then a.active = redis.call('SCARD', akey .. ':chats') end
  if h[9] then a.cw = cjson.decode(h[9]) end
  if h[10] then a.cl = cjson.decode(h[10]) end
  a.used = units(akey, a)
  return a
end

-- _load.eligible: ONLINE and below the reception limit (a unit left)
local function eligible(a)
  return a.status == 'online' and a.used < a.limit
end

-- _load.channel_count: counted chats of `channel`
local function channel_count(akey, channel)
  local chats = redis.call('SMEMBERS', akey .. ':chats')
  if #chats == 0 then return 0 end
  local chs = redis.call('HMGET', akey .. ':ch', unpack(chats))
  local n = 0
  for i = 1, #chats do
    if chs[i] == channel then n = n + 1 end
  end
  return n
end

-- _load.assignments_within
local function assignments_within(akey, a, now, window)
  if a.rec == '0' then return 0 end
  local start = now - window
  local n = 0
  for _, t in ipairs(redis.call('LRANGE', akey .. ':rec', 0, -1)) do
    if tonumber(t) > start then n = n + 1 end
  end
  return n
end

-- _load.fits: may take one more chat of `channel` at `now` (cap > 0: fewer than `cap`
-- assignments within the last `window` seconds)
local function fits(akey, a, channel, now, cap, window)
  if a.status ~= 'online' then return false end
  if a.cw or a.cl then
    if a.used + weight(a, channel) > a.limit then return false end
    if a.cl and a.cl[channel] ~= nil then
      if channel_count(akey, channel) >= a.cl[channel] then return false end
    end
  elseif a.active >= a.limit then
    return false
  end
  return cap <= 0 or assignments_within(akey, a, now, window) < cap
end

-- model._rank_value / AgentLoad properties
local function rankvalue(a, f)
  if f == 'active' then return a.active end
  if f == 'saturation' then
    if a.limit > 0 then return a.used / a.limit end
    return 1.0
  end
  if f == 'free' then return math.max(0, a.limit - a.used) end
  if f == 'last_assigned_at' then return tonumber(a.last) end
  if f == 'idle_since' then return tonumber(a.idle) end
  if f == 'tier' then return tonumber(a.tier) end
  if f == 'account_order' then return tonumber(a.order) end
  if f == 'tiebreak' then return tonumber(a.tb) end
  error('unknown rank field ' .. f)
end

-- _load.rank_entry, encoded: the ranking's values (negated when descending), then the id
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

-- the state fields each rank field's value is computed from (rankvalue)
local RANK_SOURCES = {active = {'active'}, saturation = {'used', 'limit'},
                      free = {'used', 'limit'}, last_assigned_at = {'last'},
                      idle_since = {'idle'}, tier = {'tier'}, account_order = {'order'},
                      tiebreak = {'tb'}}

-- whether ranking `rid`'s values are those of `old` in `new` too (the same texts or numbers
-- in the fields they are computed from; a number written as another text counts as moved)
local function same_rank(old, new, rid)
  for _, kd in ipairs(spec(rid)) do
    for _, f in ipairs(RANK_SOURCES[kd[1]]) do
      if old[f] ~= new[f] then return false end
    end
  end
  return true
end

-- _load.census_category of a state (ONLINE: eligible or full)
local function category(a)
  local cat = a.status
  if cat ~= 'online' then return cat end
  if a.used < a.limit then return 'eligible' end
  return 'full'
end

-- the census deltas of one agent's change from `old` to `new` in each of `groups`
local function census_moved(old, new, groups)
  local oc, nc = category(old), category(new)
  local dcap, dload = 0, 0
  if old.status == 'online' then dcap, dload = -old.limit, -old.active end
  if new.status == 'online' then dcap, dload = dcap + new.limit, dload + new.active end
  if oc == nc and dcap == 0 and dload == 0 then return end
  for _, g in ipairs(groups) do
    local ck = P .. ':cen:' .. g
    if oc ~= nc then
      redis.call('HINCRBY', ck, oc, '-1')
      redis.call('HINCRBY', ck, nc, '1')
    end
    if dcap ~= 0 then redis.call('HINCRBY', ck, 'capacity', itext(dcap)) end
    if dload ~= 0 then redis.call('HINCRBY', ck, 'load', itext(dload)) end
  end
end

-- an agent's part in the census of each of `groups`, added (sign 1) or taken out (-1)
local function census(a, groups, sign)
  local cat = category(a)
  for _, g in ipairs(groups) do
    local ck = P .. ':cen:' .. g
    redis.call('HINCRBY', ck, cat, itext(sign))
    if a.status == 'online' then  -- capacity and load of ONLINE agents
      if a.limit ~= 0 then redis.call('HINCRBY', ck, 'capacity', itext(sign * a.limit)) end
      if a.active ~= 0 then redis.call('HINCRBY', ck, 'load', itext(sign * a.active)) end
    end
  end
end

local function unindex(akey, groups)
  local rk = rankings()
  for _, rid in ipairs(rk.ids) do
    local m = redis.call('HGET', akey, 'm:' .. rid)
    if m then
      local used = rk.groups[rid]
      for _, g in ipairs(groups) do
        if used[g] then redis.call('ZREM', P .. ':rk:' .. g .. ':' .. rid, m) end
      end
      redis.call('HDEL', akey, 'm:' .. rid)
    end
  end
end

local function index(akey, a, groups)
  if not eligible(a) then return end
  local rk = rankings()
  for _, rid in ipairs(rk.ids) do
    local used, m = rk.groups[rid], nil
    for _, g in ipairs(groups) do
      if used[g] then
        if not m then
          m = member(a, rid)
          redis.call('HSET', akey, 'm:' .. rid, m)
        end
        redis.call('ZADD', P .. ':rk:' .. g .. ':' .. rid, '0', m)
      end
    end
  end
end

-- take an agent out of the census and the indexes (before its configuration changes)
local function before(akey)
  local a = agent_state(akey)
  local groups = redis.call('SMEMBERS', akey .. ':groups')
  census(a, groups, -1)
  unindex(akey, groups)
  return groups
end

-- put it back (after its configuration changed)
local function after(akey, groups)
  local a = agent_state(akey)
  census(a, groups, 1)
  index(akey, a, groups)
end

-- `a` after a change of its load: `dactive` more counted chats, and `last`, `idle`, `tb` and
-- the inactive chats' number `ni` when not nil (what agent_state would read back after the writes that made the change; an
-- agent with channel weights has its units counted again from its chats)
local function moved(akey, a, dactive, last, idle, tb, ni)
  local n = {status = a.status, limit = a.limit, tier = a.tier, order = a.order,
             last = last or a.last, idle = idle or a.idle, tb = tb or a.tb, id = a.id,
             active = a.active + dactive, ni = ni or a.ni, cw = a.cw, cl = a.cl, rec = a.rec,
             chn = a.chn, grp = a.grp, agent = a.agent, ver = a.ver}
  if a.cw then n.used = units(akey, n) else n.used = n.active end
  return n
end

-- after a change of one agent's load (its groups unchanged): census deltas and index moves;
-- `new` is the agent's state after the change; `hset`: the agent hash's fields the change
-- writes ({field, value, ...}), written in one HSET with the index entries that move
local function changed(akey, old, new, hset)
  local groups
  if old.grp then
    groups = split_groups(old.grp)
  else  -- (not expected in data version 4)
    groups = redis.call('SMEMBERS', akey .. ':groups')
  end
  census_moved(old, new, groups)
  local elig = eligible(new)
  local kept = elig and eligible(old)  -- in every index before and after
  local rk = rankings()
  for _, rid in ipairs(rk.ids) do
    local used, any = rk.groups[rid], false
    for _, g in ipairs(groups) do
      if used[g] then
        any = true
        break
      end
    end
    -- an entry whose ranking values did not move stays as it is (neither read nor built); an
    -- agent none of whose groups has this ranking's index has no entry
    if any and not (kept and same_rank(old, new, rid)) then
      local om = old.rid == rid and old.m or redis.call('HGET', akey, 'm:' .. rid)
      local nm = false
      if elig then nm = member(new, rid) end
      if om ~= nm then
        if om then
          for _, g in ipairs(groups) do
            if used[g] then redis.call('ZREM', P .. ':rk:' .. g .. ':' .. rid, om) end
          end
        end
        if nm then
          hset[#hset + 1] = 'm:' .. rid
          hset[#hset + 1] = nm
          for _, g in ipairs(groups) do
            if used[g] then redis.call('ZADD', P .. ':rk:' .. g .. ':' .. rid, '0', nm) end
          end
        else
          redis.call('HDEL', akey, 'm:' .. rid)
        end
      end
    end
  end
  if #hset > 0 then redis.call('HSET', akey, unpack(hset)) end
end

local function holds(akey, a, chat)
  return redis.call('SISMEMBER', akey .. ':chats', chat) == 1
      or (a.ni ~= 0 and redis.call('SISMEMBER', akey .. ':inactive', chat) == 1)
end

-- _load.claimed (keep: seconds of assignment times kept, a string) and _load.forced (keep
-- false: the assignment times are left alone); the agent exists; `a`: its state when already
-- read in this script and unchanged since, else nil
local function do_claim(akey, chat, now, tb, a, channel, keep)
  a = a or agent_state(akey)
  if a.ni ~= 0 and redis.call('SISMEMBER', akey .. ':inactive', chat) == 1 then return end
  if redis.call('SADD', akey .. ':chats', chat) == 0 then return end  -- held already
  local hset = {'last', now, 'tb', tb, 'n', itext(a.active + 1)}
  local chn, rec = a.chn, a.rec  -- the flags after the claim
  if channel ~= '' and (a.cw or a.cl) then
    redis.call('HSET', akey .. ':ch', chat, channel)
    chn = '1'
  end
  if keep then
    local rkey = akey .. ':rec'
    local k = tonumber(keep)
    if k > 0 then
      local kept = {}
      if rec ~= '0' then
        local start = tonumber(now) - k
        for _, t in ipairs(redis.call('LRANGE', rkey, 0, -1)) do
          if tonumber(t) > start then kept[#kept + 1] = t end
        end
        redis.call('DEL', rkey)
      end
      kept[#kept + 1] = now
      redis.call('RPUSH', rkey, unpack(kept))
      rec = '1'
    elseif rec ~= '0' then
      redis.call('DEL', rkey)
      rec = '0'
    end
  end
  if chn ~= a.chn then hset[#hset + 1], hset[#hset + 2] = 'chn', chn end
  if rec ~= a.rec then hset[#hset + 1], hset[#hset + 2] = 'rec', rec end
  local n = moved(akey, a, 1, now, nil, tb)
  n.chn, n.rec = chn, rec
  changed(akey, a, n, hset)
end

-- _load.touched: a pick without a slot counts as an assignment for the rankings
local function do_touch(akey, now, tb, a)
  a = a or agent_state(akey)
  changed(akey, a, moved(akey, a, 0, now, nil, tb), {'last', now, 'tb', tb})
end

-- _load.released (idempotent; an unknown agent is left alone); the agent's state after it
-- (nil: no such agent), with its JSON and version when `report` (for released_reply)
local function do_release(akey, chat, now, tb, report)
  local a = agent_state(akey, report)
  if not a then return nil end
  -- a held chat is in one of the two sets, never both (claims skip an inactive one, the
  -- inactive move is an SMOVE): the second is tried only when the first did not hold it
  local c = redis.call('SREM', akey .. ':chats', chat)
  if c == 0 and (a.ni == 0 or redis.call('SREM', akey .. ':inactive', chat) == 0) then
    return a
  end
  if a.chn ~= '0' then redis.call('HDEL', akey .. ':ch', chat) end
  local ni = a.ni  -- the inactive chats left
  if ni then ni = ni + c - 1 else ni = redis.call('SCARD', akey .. ':inactive') end
  local n
  if a.active - c == 0 and ni == 0 then
    n = moved(akey, a, -c, nil, now, tb, ni)
    changed(akey, a, n, {'idle', now, 'tb', tb, 'n', itext(n.active), 'ni', itext(ni)})
  else
    n = moved(akey, a, -c, nil, nil, tb, ni)
    changed(akey, a, n, {'tb', tb, 'n', itext(n.active), 'ni', itext(ni)})
  end
  return n
end

-- _load.moved_inactive (idempotent; an unknown agent is left alone)
local function do_inactive(akey, chat, inactive)
  local a = agent_state(akey)
  if not a then return end
  local from, to, d = ':chats', ':inactive', -1
  if not inactive then
    if a.ni == 0 then return end  -- (nothing to move back)
    from, to, d = ':inactive', ':chats', 1
  end
  if redis.call('SMOVE', akey .. from, akey .. to, chat) == 0 then return end
  local ni = a.ni  -- the inactive chats after the move
  if ni then ni = ni - d else ni = redis.call('SCARD', akey .. ':inactive') end
  local n = moved(akey, a, d, nil, nil, nil, ni)
  changed(akey, a, n, {'n', itext(n.active), 'ni', itext(ni)})
end

-- a ranking's index of a group is built the first time a pick uses that pair, then kept in
-- step: the pair joins `rkp`, and each eligible agent of the group gets its entry (built
-- unless it holds one for the index of another of its groups)
local function ensure_ranking(genc, rid)
  local rk = rankings()
  local used = rk.groups[rid]
  if used and used[genc] then return end
  local entries = {}  -- (the parsed pairs are kept by their text: a new text, parsed anew)
  for i, id in ipairs(rk.ids) do
    local list = rk.lists[id]
    if id == rid then
      local groups = {}
      for j = 1, #list do groups[j] = list[j] end
      groups[#groups + 1] = genc
      list = groups
    end
    if #list > 0 then entries[i] = id .. ':' .. table.concat(list, ':') else entries[i] = id end
  end
  if not used then entries[#entries + 1] = rid .. ':' .. genc end
  set_pairs(table.concat(entries, '{'))
  local zkey = P .. ':rk:' .. genc .. ':' .. rid
  for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:' .. genc)) do
    local akey = P .. ':ag:' .. aenc
    local a = agent_state(akey)
    if a and eligible(a) then
      local m = redis.call('HGET', akey, 'm:' .. rid)
      if not m then
        m = member(a, rid)
        redis.call('HSET', akey, 'm:' .. rid, m)
      end
      redis.call('ZADD', zkey, '0', m)
    end
  end
end

-- the first eligible agent of group `genc` by ranking `rid` not in `excluded` (a set of
-- `nexcluded` ids) that fits (`check`: fits(akey, a, channel, now, cap, window): a claim's
-- channel and fairness terms; else every eligible one), and its state; nil when there is
-- none. The first read asks for one entry more than there are exclusions (each entry read
-- costs the script a string), then doubles.
local function pick(genc, rid, excluded, nexcluded, check, channel, now, cap, window)
  ensure_ranking(genc, rid)
  local width = 8 * #spec(rid)
  local zkey = P .. ':rk:' .. genc .. ':' .. rid
  local offset, size = 0, nexcluded + 1
  while true do
    local batch = redis.call('ZRANGE', zkey, offset, offset + size - 1)
    if #batch == 0 then return nil end
    for _, m in ipairs(batch) do
      local aid = string.sub(m, width + 1)
      if not excluded[aid] then
        local akey = P .. ':ag:' .. enc(aid)
        local a = agent_state(akey)
        if not a or not eligible(a) then
          error('ranking index out of step with agent ' .. aid)
        end
        if not check or fits(akey, a, channel, now, cap, window) then
          a.rid, a.m = rid, m  -- its entry in this ranking's index (changed() reads no more)
          return aid, a
        end
      end
    end
    offset = offset + size
    size = math.min(2 * size, 64)
  end
end

-- an agent's load as the adapter reads it (`_redis_replies._load`); false for no agent.
-- `a`: its state when read with its JSON and version (agent_state's `report`) in this
-- script and unchanged since (its hash fields are not read again)
local NONE = {}
local function agent_reply(akey, a)
  local h
  if a then
    if not a.agent then return false end
    h = {a.agent, a.last, a.idle, a.tb, a.ver, a.rec, a.chn, a.ni}
  else
    h = redis.call('HMGET', akey, 'agent', 'last', 'idle', 'tb', 'ver', 'rec', 'chn', 'ni')
    if not h[1] then return false end
  end
  local channels, recent, inactive = NONE, NONE, NONE
  if h[7] ~= '0' then channels = redis.call('HGETALL', akey .. ':ch') end
  if h[6] ~= '0' then recent = redis.call('LRANGE', akey .. ':rec', 0, -1) end
  if h[8] ~= 0 and h[8] ~= '0' then inactive = redis.call('SMEMBERS', akey .. ':inactive') end
  return {h[1], h[2], h[3], h[4], redis.call('SMEMBERS', akey .. ':chats'), inactive,
          h[5] or '1', channels, recent}
end

-- queues: a sorted set of `<zero-padded insertion number><chat>` and a hash chat -> member
local function queue_push(qenc, chat, score)
  local mkey = P .. ':qm:' .. qenc
  if redis.call('HEXISTS', mkey, chat) == 1 then return 0 end
  local seq = redis.call('INCR', P .. ':qseq')
  local m = string.format('%020d', seq) .. chat
  redis.call('ZADD', P .. ':q:' .. qenc, score, m)
  redis.call('HSET', mkey, chat, m)
  return 1
end

local function queue_remove(qenc, chat)
  local mkey = P .. ':qm:' .. qenc
  local m = redis.call('HGET', mkey, chat)
  if not m then return 0 end
  redis.call('ZREM', P .. ':q:' .. qenc, m)
  redis.call('HDEL', mkey, chat)
  return 1
end

-- timers (data version 4): a sorted set of their keys by due time (`tm:z`; timers due at the
-- same moment in key order) and a hash key -> JSON (`tm:d`)

-- TimerStore.cancel of every key of `keys` (an unknown key is left alone), in two writes
local function timers_cancel(keys)
  if #keys == 0 then return end
  redis.call('ZREM', P .. ':tm:z', unpack(keys))
  redis.call('HDEL', P .. ':tm:d', unpack(keys))
end

-- TimerStore.schedule of every timer in order (a key scheduled twice keeps its last due time
-- and JSON: ZADD and HSET take the last of a repeated member or field), in two writes:
-- `sched` = {due, key, due, key, ...}, `jsons` their JSON texts
local function timers_schedule(sched, jsons)
  local n = #jsons
  if n == 0 then return end
  local dargs = {}
  for i = 1, n do
    dargs[2 * i - 1] = sched[2 * i]
    dargs[2 * i] = jsons[i]
  end
  redis.call('ZADD', P .. ':tm:z', unpack(sched))
  redis.call('HSET', P .. ':tm:d', unpack(dargs))
end

local function timer_cancel(key, due)
  local z = P .. ':tm:z'
  if due ~= '' then
    local score = redis.call('ZSCORE', z, key)
    if not score or tonumber(score) ~= tonumber(due) then return 0 end
  end
  if redis.call('ZREM', z, key) == 0 then return 0 end
  redis.call('HDEL', P .. ':tm:d', key)
  return 1
end

-- A chat's field in `chv` holds '<version> <state> <creation number>' (data version 3). Data
-- versions 1 and 2 kept the version alone there, the state in `chs` and the creation number
-- in `cho`; such a chat moves to the one field at its next change. chat_meta: the version,
-- the state and the creation number of a `chv` field (state and number nil: kept apart).
local function chat_meta(raw)
  local a = string.find(raw, ' ', 1, true)
  if not a then return raw, nil, nil end
  local b = string.find(raw, ' ', a + 1, true)
  return string.sub(raw, 1, a - 1), string.sub(raw, a + 1, b - 1), string.sub(raw, b + 1)
end

-- a new chat record and its indexes, or the new record of an existing one (`old`, `seq`: its
-- state and creation number as chat_meta read them)
local function chat_store(id, json, version, state, create, old, seq)
  redis.call('HSET', P .. ':ch', id, json)
  if create then
    seq = string.format('%d', redis.call('INCR', P .. ':chseq'))
    redis.call('HSET', P .. ':chv', id, version .. ' ' .. state .. ' ' .. seq)
    redis.call('ZADD', P .. ':chall', seq, id)
    redis.call('ZADD', P .. ':chl:' .. state, seq, id)
    return
  end
  if not old then  -- stored before data version 3
    old, seq = redis.call('HGET', P .. ':chs', id), redis.call('HGET', P .. ':cho', id)
    redis.call('HDEL', P .. ':chs', id)
    redis.call('HDEL', P .. ':cho', id)
  end
  redis.call('HSET', P .. ':chv', id, version .. ' ' .. state .. ' ' .. seq)
  if old ~= state then
    redis.call('ZREM', P .. ':chl:' .. old, id)
    redis.call('ZADD', P .. ':chl:' .. state, seq, id)
  end
end

-- the placeholders of a unit (chatmgmt.ports.PICKED and CENSUS_MARKS) in place: every JSON
-- string "\u0000<name>" whose <name> is a key of `subs` becomes subs[name] (the picked agent
-- as a JSON string, a census field as a bare integer); any other string is left as it is.
-- Plain finds (memchr), not a pattern: a pattern is tried at every byte of the text. The find
-- is for the escape (a backslash: rare in JSON), not for the quote before it (a quote opens
-- and closes every string: each one was a memcmp); the quote is checked after.
local MARK = '\\u0000'
local function bind(json, subs)
  local a = string.find(json, MARK, 1, true)
  if not a then return json end
  local out, n, i = {}, 0, 1
  while a do
    local b = string.find(json, '"', a + 6, true)
    local r = b and string.byte(json, a - 1) == 34 and subs[string.sub(json, a + 6, b - 1)]
    if r then
      out[n + 1] = string.sub(json, i, a - 2)
      out[n + 2] = r
      n, i = n + 2, b + 1
      a = string.find(json, MARK, i, true)
    else
      a = string.find(json, MARK, a + 1, true)
    end
  end
  if n == 0 then return json end
  out[n + 1] = string.sub(json, i)
  return table.concat(out)
end

-- the census fields the census marks name ("\u0000census:<field>"), by field
local CENSUS_MARKED = {eligible = 'census:eligible', full = 'census:full', busy = 'census:busy',
                       away = 'census:away', offline = 'census:offline'}

-- subs[`census:<field>`] = the field's count in a census hash as HGETALL returns it (0 when
-- the hash has no such field)
local function census_subs(flat, subs)
  for _, mark in pairs(CENSUS_MARKED) do subs[mark] = '0' end
  for i = 1, #flat, 2 do
    local mark = CENSUS_MARKED[flat[i]]
    if mark then subs[mark] = flat[i + 1] end
  end
  return subs
end

-- QueueStore.heads of one queue (escaped name): 0 when it is empty, else {length, first
-- member, oldest member, the oldest chat's stored record} (members start with a zero-padded
-- insertion number, so the smallest is the oldest; finding it walks the queue once:
-- O(length); the adapter reads when that chat started waiting from its record)
local function queue_head(qenc)
  local key = P .. ':q:' .. qenc
  local n = redis.call('ZCARD', key)
  if n == 0 then return 0 end
  local members = redis.call('ZRANGE', key, 0, -1)
  local oldest = members[1]
  for j = 2, #members do
    if members[j] < oldest then oldest = members[j] end
  end
  local chat = redis.call('HGET', P .. ':ch', string.sub(oldest, 21)) or ''
  return {n, members[1], oldest, chat}
end

-- queue_head of every queue of `qencs`; one EXISTS answers when they are all empty (Redis
-- keeps no empty sorted set): then a 0 for each, or one 0 for all when `compact`
local function queue_heads(qencs, compact)
  local out, keys = {}, {}
  for i, q in ipairs(qencs) do keys[i] = P .. ':q:' .. q end
  if #keys == 0 then return out end
  if redis.call('EXISTS', unpack(keys)) == 0 then
    if compact then return 0 end
    for i = 1, #keys do out[i] = 0 end
    return out
  end
  for i, q in ipairs(qencs) do out[i] = queue_head(q) end
  return out
end
