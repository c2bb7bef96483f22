-- AgentStore.put: register or update an agent by compare-and-set on its configuration version
-- (_load.updated_agent); its chats are kept.
-- ARGV: escaped id, id, agent json, status, limit, tier, account order, now, tiebreak,
--       expected version ('' : the agent must not exist), n groups, escaped groups..., events...
-- Reply: {1, agent reply} stored; {0, stored version or false} the compare-and-set lost.
check_data_version(true)
local akey = P .. ':ag:' .. ARGV[1]
local ngroups = tonumber(ARGV[11])
local exists = redis.call('EXISTS', akey) == 1
local version = 1
if exists then
  local stored = redis.call('HGET', akey, 'ver') or '1'
  if ARGV[10] ~= stored then return {0, stored} end
  version = tonumber(stored) + 1
  local old = before(akey)
  for _, g in ipairs(old) do redis.call('SREM', P .. ':grp:' .. g, ARGV[1]) end
  redis.call('DEL', akey .. ':groups')
else
  if ARGV[10] ~= '' then return {0, false} end
  redis.call('HSET', akey, 'id', ARGV[2], 'last', '0.0', 'idle', ARGV[8], 'tb', ARGV[9],
             'rec', '0', 'chn', '0', 'n', '0', 'ni', '0')
end
local groups = {}
for i = 1, ngroups do groups[i] = ARGV[11 + i] end
redis.call('HSET', akey, 'agent', ARGV[3], 'status', ARGV[4], 'limit', ARGV[5],
           'tier', ARGV[6], 'order', ARGV[7], 'ver', version, 'grp', table.concat(groups, ':'))
-- capacity per channel (written in the agent's JSON only when set)
local aj = cjson.decode(ARGV[3])
for _, f in ipairs({{'cw', 'channel_weights'}, {'cl', 'channel_limits'}}) do
  if aj[f[2]] ~= nil and next(aj[f[2]]) ~= nil then
    redis.call('HSET', akey, f[1], cjson.encode(aj[f[2]]))
  else
    redis.call('HDEL', akey, f[1])
  end
end
for _, g in ipairs(groups) do
  redis.call('SADD', akey .. ':groups', g)
  redis.call('SADD', P .. ':grp:' .. g, ARGV[1])
end
after(akey, groups)
xadd(12 + ngroups)
return {1, agent_reply(akey)}
