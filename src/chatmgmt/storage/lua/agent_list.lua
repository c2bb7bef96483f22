-- AgentStore.list. ARGV: escaped group ('' : every agent). Reply: agent replies.
check_data_version(false)
local out = {}
for _, aenc in ipairs(redis.call('SMEMBERS', P .. ':grp:' .. ARGV[1])) do
  local r = agent_reply(P .. ':ag:' .. aenc)
  if r then out[#out + 1] = r end
end
return out
