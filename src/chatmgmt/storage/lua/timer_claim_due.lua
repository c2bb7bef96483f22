-- TimerStore.claim_due: lease the due timers. ARGV: now, limit, lease until.
-- Reply: {timer json, due_at}...
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
