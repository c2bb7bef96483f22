-- TimerStore.claim_due: lease the due timers. ARGV: now, limit, lease until.
-- Reply: {timer json, due_at}...
check_data_version(true)
local z = P .. ':tm:z'
local rows = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
if #rows == 0 then return {} end
local keys, lease = {}, {}
for i = 1, #rows, 2 do
  keys[#keys + 1] = rows[i]
  lease[#lease + 1] = ARGV[3]
  lease[#lease + 1] = rows[i]
end
local jsons = redis.call('HMGET', P .. ':tm:d', unpack(keys))
redis.call('ZADD', z, unpack(lease))
local out = {}
for i = 1, #keys do out[i] = {jsons[i], rows[2 * i]} end
return out
