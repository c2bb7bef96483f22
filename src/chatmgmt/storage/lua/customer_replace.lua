-- CustomerStore.replace (compare-and-set). ARGV: partner_id, version, json, expected, events...
-- Reply: {1} stored; {-1} unknown; {0, stored version} the version moved.
check_data_version(true)
local v = redis.call('HGET', P .. ':cuv', ARGV[1])
if not v then return {-1} end
if v ~= ARGV[4] then return {0, v} end
redis.call('HSET', P .. ':cuv', ARGV[1], ARGV[2])
redis.call('HSET', P .. ':cu', ARGV[1], ARGV[3])
xadd(5)
return {1}
