-- RateCounter.hit. ARGV: escaped key, now, cutoff. Reply: hits within the window.
local k = P .. ':rc:' .. ARGV[1]
redis.call('ZADD', k, ARGV[2], redis.call('INCR', P .. ':rc:seq'))
redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[3])
return redis.call('ZCARD', k)
