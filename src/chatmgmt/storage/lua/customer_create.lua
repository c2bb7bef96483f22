-- CustomerStore.create. ARGV: partner_id, version, json, events...
-- Reply: {1} stored; {0, stored version} the partner_id exists.
check_data_version(true)
local v = redis.call('HGET', P .. ':cuv', ARGV[1])
if v then return {0, v} end
redis.call('HSET', P .. ':cuv', ARGV[1], ARGV[2])
redis.call('HSET', P .. ':cu', ARGV[1], ARGV[3])
xadd(4)
return {1}
