-- Storage.apply: one Change, atomically (see chatmgmt.ports.Change).
--
-- ARGV[1]: the plan, JSON (every number as a string, so it reaches Redis verbatim):
--   id          chat id
--   exp         expected version (absent: the chat must not exist)
--   now, tb     the change's time and tie-break
--   ver, state  the new chat's version and state (absent: the chat is unchanged)
--   claim       {"a": agent id, "f": true when forced}
--               | {"g": escaped group, "r": ranking id, "x": [excluded ids] (absent: none),
--                  "t": true without a slot (hold=False: the pick only counts as an
--                  assignment; absent: with one)}
--               either with "c": the chat's channel, "cap" and "w": the fairness cap and its
--               window, "k": seconds of assignment times kept (each absent: "", 0, 0, 0)
--   rel         agent id to release from
--   inact       [agent id, "1" | "0"]
--   empty       escaped queue name that must hold no chat but this one
--   rm          [escaped queue names]; push: [escaped queue name, score]
--   cancel      [timer keys]; sched: [due_at, timer key, due_at, timer key, ...]
--   msg         true when ARGV[3] holds a message; sticky: the sticky mark's partner id
--   more        how many more messages follow the timers' JSON (absent: none)
--   ret         the new chat's retention start (ports.retention_start; absent: kept)
--   cen         escaped skill group whose census is reported, read before any effect; the
--               census marks ("\u0000census:<field>") in the chat, timers and events become
--               its counts (absent: no census)
--   hd          [escaped queue names]: report their heads after the effects, and the released
--               agent's load (absent: neither)
-- ARGV[2]: chat JSON ('' without a chat); ARGV[3]: message JSON; ARGV[4]: sticky JSON;
-- ARGV[5 ...]: one timer JSON per `sched` key, then `more` messages' JSON, then the events'.
--
-- Reply: {1, picked agent id or false, census or false, heads or false, released or false}
-- when applied (census: the census hash as HGETALL returns it, joined by spaces into one
-- string: one reply value instead of ~14 for the worker to read; heads: 0 when every `hd`
-- queue is empty, else one queue_head per `hd`
-- queue; released: agent_reply of the released agent, false when not registered);
-- {0, reason, expected, actual, agent, queue, census or false} when a precondition failed
-- (nothing was written; the census is read for "agent_unavailable" and "no_agent").

check_data_version(true)
local plan = cjson.decode(ARGV[1])
local id = plan.id
local chv, chs, cho = redis.call('HGET', P .. ':chv', id), nil, nil
if chv then chv, chs, cho = chat_meta(chv) end

-- preconditions, all before any write
if plan.exp == nil then
  if chv then return {0, 'exists', false, chv, false, false} end
else
  if not chv then return {0, 'missing', plan.exp, false, false, false} end
  if chv ~= plan.exp then return {0, 'version', plan.exp, chv, false, false} end
end
if plan.empty ~= nil then
  -- empty but for this chat itself (a chat already waiting there may still be routed)
  local waiting = redis.call('ZCARD', P .. ':q:' .. plan.empty)
  if waiting > 1 or (waiting == 1 and not redis.call('HGET', P .. ':qm:' .. plan.empty, id)) then
    return {0, 'queue_not_empty', false, false, false, plan.empty}
  end
end
-- the census before any effect (the claim's refusals report it too)
local census, ctext = false, false
if plan.cen ~= nil then
  census = redis.call('HGETALL', P .. ':cen:' .. plan.cen)
  ctext = table.concat(census, ' ')  -- (fields are names, values integers: no blank in either)
end
local picked, pstate = nil, nil
local claim = plan.claim
if claim ~= nil then
  local channel, cap = claim.c or '', tonumber(claim.cap or '0')
  local window, now = tonumber(claim.w or '0'), tonumber(plan.now)
  if claim.a ~= nil then
    picked = claim.a
    local akey = P .. ':ag:' .. enc(picked)
    local a = agent_state(akey)
    if not a or not (claim.f or holds(akey, a, id)
                     or (fits(akey, a, channel, now, cap, window) and picked ~= plan.rel)) then
      return {0, 'agent_unavailable', false, false, picked, false, ctext}
    end
    if picked ~= plan.rel then pstate = a end
  else
    local excluded, nexcluded = {}, 0
    if claim.x ~= nil then
      for _, x in ipairs(claim.x) do excluded[x] = true end
      nexcluded = #claim.x
    end
    if plan.rel ~= nil then excluded[plan.rel], nexcluded = true, nexcluded + 1 end
    -- never the released one; a claim with a slot checks the channel and fairness terms
    picked, pstate = pick(claim.g, claim.r, excluded, nexcluded, not claim.t,
                          channel, now, cap, window)
    if not picked then return {0, 'no_agent', false, false, false, claim.g, ctext} end
  end
end

-- effects, in the documented order
local now, tb = plan.now, plan.tb
-- the released agent's report is built from the release's own reads when no later effect of
-- the unit touches that agent
local rstate = nil
if plan.rel ~= nil then
  local report = plan.hd ~= nil and picked ~= plan.rel
                 and (plan.inact == nil or plan.inact[1] ~= plan.rel)
  rstate = do_release(P .. ':ag:' .. enc(plan.rel), id, now, tb, report)
  if not report then rstate = nil end
end
if picked then
  if claim.t then
    do_touch(P .. ':ag:' .. enc(picked), now, tb, pstate)
  else
    local keep = claim.k or '0'
    if claim.f then keep = false end
    do_claim(P .. ':ag:' .. enc(picked), id, now, tb, pstate, claim.c or '', keep)
  end
end
if plan.inact ~= nil then
  do_inactive(P .. ':ag:' .. enc(plan.inact[1]), id, plan.inact[2] == '1')
end
if plan.rm ~= nil then
  for _, q in ipairs(plan.rm) do queue_remove(q, id) end
end
if plan.push ~= nil then queue_push(plan.push[1], id, plan.push[2]) end
if plan.cancel ~= nil then timers_cancel(plan.cancel) end
-- a ranked pick's agent and the census replace their placeholders in the chat, the timers
-- and the events the unit stores
local subs = nil
if picked and claim.a == nil then subs = {picked = cjson.encode(picked)} end
if census then subs = census_subs(census, subs or {}) end
local nsched = 0
if plan.sched ~= nil then
  local jsons = {}
  nsched = #plan.sched / 2
  for i = 1, nsched do
    local json = ARGV[4 + i]
    if subs then json = bind(json, subs) end
    jsons[i] = json
  end
  timers_schedule(plan.sched, jsons)
end
if plan.ver ~= nil then
  local json = ARGV[2]
  if subs then json = bind(json, subs) end
  chat_store(id, json, plan.ver, plan.state, plan.exp == nil, chs, cho)
  if plan.ret ~= nil then
    redis.call('ZADD', P .. ':ret', plan.ret, id)
  elseif plan.exp ~= nil then  -- (a new chat has no entry: purge drops stale ones)
    redis.call('ZREM', P .. ':ret', id)
  end
end
if plan.msg then redis.call('RPUSH', P .. ':msg:' .. enc(id), ARGV[3]) end
local nmore = tonumber(plan.more or 0)
for i = 5 + nsched, 4 + nsched + nmore do redis.call('RPUSH', P .. ':msg:' .. enc(id), ARGV[i]) end
if plan.sticky ~= nil then redis.call('HSET', P .. ':st', plan.sticky, ARGV[4]) end
for i = 5 + nsched + nmore, #ARGV do
  local e = ARGV[i]
  if subs then e = bind(e, subs) end
  redis.call('XADD', P .. ':ob', '*', 'e', e)
end
-- the reports read after the effects
local heads, released = false, false
if plan.hd ~= nil then
  heads = queue_heads(plan.hd, true)
  if plan.rel ~= nil then released = agent_reply(P .. ':ag:' .. enc(plan.rel), rstate) end
end
return {1, picked or false, ctext, heads, released}
