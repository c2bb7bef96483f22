-- RateCounter.hit. ARGV: escaped key, now, cutoff, expiry (now + window).
-- Reply: hits within the window.
--
-- `rcx` orders the keys by when their last hit leaves its window; every hit deletes up to 16
-- keys whose last hit has left it, so keys nobody hits any more do not accumulate.
local k = P .. ':rc:' .. ARGV[1]
redis.call('ZADD', k, ARGV[2], redis.call('INCR', P .. ':rc:seq'))
redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[3])
local n = redis.call('ZCARD', k)
local ek = P .. ':rcx'
redis.call('ZADD', ek, ARGV[4], ARGV[1])
for _, old in ipairs(redis.call('ZRANGEBYSCORE', ek, '-inf', ARGV[2], 'LIMIT', 0, 16)) do
  redis.call('DEL', P .. ':rc:' .. old)
  redis.call('ZREM', ek, old)
end
return n
