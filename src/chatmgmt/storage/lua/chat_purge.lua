-- ChatStore.purge. ARGV: before, limit. Reply: how many chats were purged.
--
-- `ret` holds the chats whose retention runs (ports.retention_start, kept by apply.lua), by
-- its start. Each candidate is checked again on its record (over, and its last change before
-- `before`), so an entry that is out of date (written by the backfill, or by an older release
-- that did not keep `ret`) never purges a chat that is open or changed since.
local before = tonumber(ARGV[1])
local rk = P .. ':ret'
local ids = redis.call('ZRANGEBYSCORE', rk, '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local purged = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', rk, id)
  local json = redis.call('HGET', P .. ':ch', id)
  if json then
    local chat = cjson.decode(json)
    local state = chat.state
    local answered = chat.last_agent_message_at ~= nil and chat.last_agent_message_at ~= cjson.null
    local over = state == 'ended' or state == 'abandoned' or (state == 'left_message' and answered)
    local at = tonumber(chat.updated_at) or 0
    if over and at < before then
      local meta, st = redis.call('HGET', P .. ':chv', id), nil
      if meta then st = select(2, chat_meta(meta)) end
      if not st then st = redis.call('HGET', P .. ':chs', id) end  -- before data version 3
      redis.call('HDEL', P .. ':ch', id)
      redis.call('HDEL', P .. ':chv', id)
      redis.call('HDEL', P .. ':chs', id)
      redis.call('HDEL', P .. ':cho', id)
      redis.call('ZREM', P .. ':chall', id)
      if st then redis.call('ZREM', P .. ':chl:' .. st, id) end
      redis.call('DEL', P .. ':msg:' .. enc(id))
      local customer = chat.customer
      local partner = type(customer) == 'table' and customer.partner_id or nil
      if type(partner) == 'string' then
        local mark = redis.call('HGET', P .. ':st', partner)
        if mark then
          local m = cjson.decode(mark)
          if (tonumber(m.at) or 0) < before then redis.call('HDEL', P .. ':st', partner) end
        end
      end
      purged = purged + 1
    elseif over then
      redis.call('ZADD', rk, chat.updated_at, id)
    end
  end
end
return purged
