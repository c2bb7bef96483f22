-- Outbox.ack. ARGV: stream ids...
local ob = P .. ':ob'
redis.pcall('XGROUP', 'CREATE', ob, 'cm', '0', 'MKSTREAM')
redis.call('XACK', ob, 'cm', unpack(ARGV))
redis.call('XDEL', ob, unpack(ARGV))
redis.call('ZREM', P .. ':ob:lease', unpack(ARGV))
return 1
