-- claim: ARGV = queue, limit, lease expiry in µs ('+inf' for no lease), history limit.
-- Pops the most urgent items and holds them as released. Returns msgpack, per item:
-- {item_id, item fields, conversation view, customer view, message JSON or false when
-- it is among the history, history JSON newest first}.
local queue, limit, lease, history_limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ITEM_FIELDS = {
  'conv', 'queue', 'priority', 'deadline', 'message', 'reasons', 'created', 'also',
}

-- The newest history members, and whether message mid is one of them.
local function recent_history(cust, mid)
  if history_limit <= 0 then return {}, false end
  local members = call('ZRANGE', k('hist', cust), '+', '-', 'BYLEX', 'REV',
    'LIMIT', 0, history_limit)
  for _, member in ipairs(members) do
    if string.sub(member, HIST_PREFIX) == mid then return members, true end
  end
  return members, false
end

-- An item also offered elsewhere leaves those backlogs and belongs to this queue.
local function take_from_offers(id, item)
  if not item[8] and item[2] == queue then return end
  for _, q in ipairs(backlogs_of(item[2], item[8])) do
    if q ~= queue then call('ZREM', k('backlog', q), id) end
  end
  call('HSET', k('item', id), 'queue', queue)
  call('HDEL', k('item', id), 'also')
  item[2] = queue
end

local function claim_one(id)
  local item = call('HMGET', k('item', id), unpack(ITEM_FIELDS))
  take_from_offers(id, item)
  call('ZADD', k('released', queue), lease, id)
  local conv = conversation_view(item[1])
  if conv[13] == id then
    call('HDEL', k('conv', item[1]), 'item')
    conv[13] = false
  end
  local cust = conv[2]
  local members, included = recent_history(cust, item[5])
  local message = false
  if not included then message = call('GET', k('msg', item[5])) end
  return {id, item, conv, customer_view(cust), message, message_blobs(members)}
end

local popped = call('ZPOPMIN', k('backlog', queue), limit)
local out = {}
for i = 1, #popped, 2 do out[#out + 1] = claim_one(popped[i]) end
return cmsgpack.pack(out)
