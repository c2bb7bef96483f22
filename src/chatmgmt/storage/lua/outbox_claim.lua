-- Outbox.claim: re-claim pending entries whose lease ran out, then read new ones; lease them.
-- ARGV: consumer, limit, now, lease until. Reply: {stream id, event json, deliveries}...
local ob, lz = P .. ':ob', P .. ':ob:lease'
redis.pcall('XGROUP', 'CREATE', ob, 'cm', '0', 'MKSTREAM')
local consumer, limit, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local start = '-'
while #out < limit do
  local rows = redis.call('XPENDING', ob, 'cm', start, '+', 100)
  if #rows == 0 then break end
  local ids, counts = {}, {}
  for _, r in ipairs(rows) do
    local lease = redis.call('ZSCORE', lz, r[1])
    if (not lease) or tonumber(lease) <= now then
      ids[#ids + 1] = r[1]
      counts[r[1]] = r[4]
      if #out + #ids >= limit then break end
    end
  end
  if #ids > 0 then
    for _, e in ipairs(redis.call('XCLAIM', ob, 'cm', consumer, 0, unpack(ids))) do
      if e and e[2] then
        redis.call('ZADD', lz, ARGV[4], e[1])
        out[#out + 1] = {e[1], e[2][2], counts[e[1]] + 1}
      end
    end
  end
  if #rows < 100 then break end
  start = '(' .. rows[#rows][1]
end
if #out < limit then
  local res = redis.call('XREADGROUP', 'GROUP', 'cm', consumer, 'COUNT', limit - #out,
                         'STREAMS', ob, '>')
  if res then
    for _, e in ipairs(res[1][2]) do
      redis.call('ZADD', lz, ARGV[4], e[1])
      out[#out + 1] = {e[1], e[2][2], 1}
    end
  end
end
return out
