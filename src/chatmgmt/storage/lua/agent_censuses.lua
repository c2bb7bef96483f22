-- AgentStore.censuses. ARGV: escaped group names. Reply: per group {the census hash as
-- HGETALL returns it, held, free}: held and free are summed over the group's agents (the
-- chats each holds, counted and inactive; the free slots of those ONLINE), O(agents of the
-- group).
check_data_version(false)
local out = {}
for i = 1, #ARGV do
  local held, free = 0, 0
  for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:' .. ARGV[i])) do
    local akey = P .. ':ag:' .. aenc
    local a = agent_state(akey)
    if a then
      held = held + a.active + (a.ni or redis.call('SCARD', akey .. ':inactive'))
      if a.status == 'online' and a.used < a.limit then free = free + a.limit - a.used end
    end
  end
  out[i] = {redis.call('HGETALL', P .. ':cen:' .. ARGV[i]), held, free}
end
return out
