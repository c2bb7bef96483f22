-- QueueStore.position. ARGV: escaped queue, chat id. Reply: 0-based rank, or nil.
local m = redis.call('HGET', P .. ':qm:' .. ARGV[1], ARGV[2])
if not m then return false end
return redis.call('ZRANK', P .. ':q:' .. ARGV[1], m)
