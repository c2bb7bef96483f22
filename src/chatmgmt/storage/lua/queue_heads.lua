-- QueueStore.heads. ARGV: escaped queue names. Reply: per queue 0 when it is empty, else
-- {length, first member, oldest member, the oldest chat's stored record} (members start with
-- a zero-padded insertion number, so the smallest is the oldest; finding it walks the queue
-- once: O(length); the adapter reads when that chat started waiting from its record).
local out = {}
for i = 1, #ARGV do
  local key = P .. ':q:' .. ARGV[i]
  local n = redis.call('ZCARD', key)
  if n == 0 then
    out[i] = 0
  else
    local members = redis.call('ZRANGE', key, 0, -1)
    local oldest = members[1]
    for j = 2, #members do
      if members[j] < oldest then oldest = members[j] end
    end
    local chat = redis.call('HGET', P .. ':ch', string.sub(oldest, 21)) or ''
    out[i] = {n, members[1], oldest, chat}
  end
end
return out
