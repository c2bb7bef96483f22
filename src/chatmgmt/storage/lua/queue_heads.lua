-- QueueStore.heads. ARGV: escaped queue names. Reply: per queue {length, first member, oldest
-- member} (members start with a zero-padded insertion number, so the smallest is the oldest;
-- finding it walks the queue once: O(length)).
local out = {}
for i = 1, #ARGV do
  local key = P .. ':q:' .. ARGV[i]
  local n = redis.call('ZCARD', key)
  if n == 0 then
    out[i] = {0, '', ''}
  else
    local members = redis.call('ZRANGE', key, 0, -1)
    local oldest = members[1]
    for j = 2, #members do
      if members[j] < oldest then oldest = members[j] end
    end
    out[i] = {n, members[1], oldest}
  end
end
return out
