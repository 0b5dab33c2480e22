-- Shared by every omniroute script; the key schema is documented at the top of
-- router/backends/redis_store.py. KEYS[1] is "{<prefix>}:", the deployment's hash tag:
-- every key below starts with it, so a script touches one Redis Cluster slot.
local B = KEYS[1]
local call = redis.call
local IDENT = B .. 'ident'
local QUEUES = B .. 'queues'
local TIMERS = B .. 'timers'
local SERVED = B .. 'served'

local function k(kind, id)
  return B .. kind .. ':' .. id
end

-- Lua's unpack() takes at most ~8000 values: lists of any length go in even slices.
local SLICE = 1000

local function call_sliced(command, key, items)
  for i = 1, #items, SLICE do
    call(command, key, unpack(items, i, math.min(i + SLICE - 1, #items)))
  end
end

local function hmget_sliced(key, fields)
  local out = {}
  for i = 1, #fields, SLICE do
    local part = call('HMGET', key, unpack(fields, i, math.min(i + SLICE - 1, #fields)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end

-- The live customer at the end of the merged_into chain (cid itself when live).
local function resolve(cid)
  for _ = 1, 10000 do -- chains only grow by merges; the bound guards against corruption
    local into = call('HGET', k('cust', cid), 'merged_into')
    if not into then return cid end
    cid = into
  end
  return cid
end

-- field, value pairs for HSET from a list of fields and one value.
local function pairs_with(fields, value)
  local args = {}
  for _, f in ipairs(fields) do
    args[#args + 1] = f
    args[#args + 1] = value
  end
  return args
end

local function move_identities(w, l)
  local ids = call('SMEMBERS', k('ids', l))
  if #ids == 0 then return end
  call_sliced('HSET', IDENT, pairs_with(ids, w))
  call_sliced('SADD', k('ids', w), ids)
  call_sliced('HDEL', k('sugg', w), ids)
  call('DEL', k('ids', l))
end

local function move_suggestions(w, l)
  local sugg = call('HGETALL', k('sugg', l))
  for i = 1, #sugg, 2 do
    if call('SISMEMBER', k('ids', w), sugg[i]) == 0 then
      call('HSETNX', k('sugg', w), sugg[i], sugg[i + 1])
    end
  end
  call('DEL', k('sugg', l))
end

-- An open or pending conversation (a resolved one keeps its thread-key entry).
local function is_live(conv)
  local state = call('HGET', k('conv', conv), 'state')
  return state == 'open' or state == 'pending'
end

-- Lua's < on strings follows the server's locale (strcoll); ids compare by bytes, as
-- UTF-8 byte order is code point order, Python's order.
local function bytes_less(x, y)
  for i = 1, math.min(#x, #y) do
    local a, b = string.byte(x, i), string.byte(y, i)
    if a ~= b then return a < b end
  end
  return #x < #y
end

-- The oldest of these live customers (created, then id): the one Store.ingest merges
-- the others into.
local function oldest(customers)
  local best, best_created = nil, nil
  for _, c in ipairs(customers) do
    local created = tonumber(call('HGET', k('cust', c), 'created'))
    if not best or created < best_created or (created == best_created and bytes_less(c, best)) then
      best, best_created = c, created
    end
  end
  return best
end

-- A message received at received µs reopens a conversation resolved at resolved µs when
-- at most window µs lie between them (no window: never).
local function reopens(state, resolved, received, window)
  return state == 'resolved' and window > 0 and resolved
    and tonumber(received) - tonumber(resolved) <= window
end

-- Where conversation conv stands among the conversations on thread key tkey ("<source>\0
-- <thread>"): in tlive by created µs while open or pending (live), in tdone by resolved
-- µs once resolved.
local function place_on_thread(tkey, conv, live, at)
  local into, out = 'tdone', 'tlive'
  if live then into, out = 'tlive', 'tdone' end
  call('ZREM', k(out, tkey), conv)
  call('ZADD', k(into, tkey), at, conv)
end

-- place_on_thread from the conversation's stored fields (a conversation without a
-- thread has no place).
local function place_stored_on_thread(conv)
  local f = call('HMGET', k('conv', conv), 'source', 'thread', 'state', 'created', 'resolved')
  if not (f[1] and f[2]) then return end
  local live = f[3] ~= 'resolved'
  place_on_thread(f[1] .. '\0' .. f[2], conv, live, live and f[4] or (f[5] or 0))
end

-- The thread's conversation, whoever's it is: the newest open or pending one on the
-- thread key (created, then the greatest id), else the one resolved last (resolved,
-- then the greatest id). A thread key with neither has the one {P}:thread names (the
-- newest, as stored before tlive and tdone), if any.
local function thread_key_conversation(tkey)
  local found = call('ZRANGE', k('tlive', tkey), 0, 0, 'REV')[1]
    or call('ZRANGE', k('tdone', tkey), 0, 0, 'REV')[1]
  return found or call('HGET', B .. 'thread', tkey)
end

-- Store.ingest step 2 when no verified identity is owned: only a message with no
-- verified identity at all (keys empty; one with a verified identity is a new customer,
-- never attached on a shared thread) takes the customer of the thread's conversation
-- (none without a thread: the key would join strangers), when it is open or pending,
-- only recorded messages made it (a routed message adopts it) or the message, received
-- at received µs, reopens it within window µs; for a message routed nowhere, in any
-- state.
local function thread_owner(keys, tkey, thread, routed, received, window)
  if #keys > 0 or thread == '' then return nil end
  local conv = thread_key_conversation(tkey)
  if not conv then return nil end
  local f = call('HMGET', k('conv', conv), 'state', 'customer', 'resolved', 'recorded')
  if not f[2] then return nil end
  if not routed or f[4] == '1' or f[1] == 'open' or f[1] == 'pending'
    or reopens(f[1], f[3], received, window) then
    return f[2]
  end
  return nil
end

local function move_conversations(w, l)
  local convs = call('SMEMBERS', k('convs', l))
  for _, conv in ipairs(convs) do
    call('HSET', k('conv', conv), 'customer', w)
    call('SADD', k('convs', w), conv)
  end
  local open = call('HGETALL', k('open', l))
  for i = 1, #open, 2 do
    local mine = call('HGET', k('open', w), open[i])
    if not mine or (not is_live(mine) and is_live(open[i + 1])) then
      call('HSET', k('open', w), open[i], open[i + 1])
    end
  end
  call('DEL', k('convs', l), k('open', l))
end

-- served_by records are "<at µs>\0<agent>"; a customer keeps the newest one.
local function split_served(record)
  local sep = string.find(record, '\0', 1, true)
  return tonumber(string.sub(record, 1, sep - 1)), string.sub(record, sep + 1)
end

local function record_served(cid, record)
  local old = call('HGET', SERVED, cid)
  if not old or split_served(old) <= split_served(record) then
    call('HSET', SERVED, cid, record)
  end
end

local function merge_served(w, l)
  local theirs = call('HGET', SERVED, l)
  if theirs then record_served(w, theirs) end
end

-- Profile fields: the winner's attributes and name win; the loser keeps its copy.
local function merge_profile(w, l)
  local attrs = call('HGETALL', k('attrs', l))
  for i = 1, #attrs, 2 do
    call('HSETNX', k('attrs', w), attrs[i], attrs[i + 1])
  end
  local name = call('HGET', k('cust', l), 'name')
  if name then call('HSETNX', k('cust', w), 'name', name) end
end

-- Merge live customer l into live customer w; record is the MergeRecord JSON.
local function merge_into(w, l, record)
  move_identities(w, l)
  move_suggestions(w, l)
  call('ZUNIONSTORE', k('hist', w), 2, k('hist', w), k('hist', l))
  call('DEL', k('hist', l))
  move_conversations(w, l)
  merge_profile(w, l)
  merge_served(w, l)
  call('HSET', k('cust', l), 'merged_into', w)
  call('RPUSH', k('from', w), l)
  call('RPUSH', k('merges', w), record)
  call('RPUSH', k('merges', l), record)
end

-- at_json is the time already as a JSON string.
local function merge_record(w, l, at_json, reason)
  return '{"winner":' .. cjson.encode(w) .. ',"loser":' .. cjson.encode(l)
    .. ',"at":' .. at_json .. ',"reason":' .. cjson.encode(reason) .. '}'
end

-- A customer as nested arrays: {id, name, created_us, merged_into, identity keys,
-- suggestion pairs, owner of each suggested key, attribute pairs, merged_from};
-- false when unknown.
local function customer_view(cid)
  local c = call('HMGET', k('cust', cid), 'name', 'created', 'merged_into')
  if not c[2] then return false end
  local sugg = call('HGETALL', k('sugg', cid))
  local owners = {}
  if #sugg > 0 then
    local keys = {}
    for i = 1, #sugg, 2 do keys[#keys + 1] = sugg[i] end
    owners = hmget_sliced(IDENT, keys)
  end
  return {
    cid, c[1], c[2], c[3], call('SMEMBERS', k('ids', cid)), sugg, owners,
    call('HGETALL', k('attrs', cid)), call('LRANGE', k('from', cid), 0, -1),
  }
end

-- The stored JSON of each message named by a history member "<sent>:<message_id>"
-- (callers cap the number of members at 1000).
local HIST_PREFIX = 20 -- 18 digits, the colon, then the message id
local function message_blobs(members)
  if #members == 0 then return {} end
  local keys = {}
  for i, m in ipairs(members) do keys[i] = k('msg', string.sub(m, HIST_PREFIX)) end
  return call('MGET', unpack(keys))
end

-- The view is the id then these fields: the item is view[13]; a field never written
-- (a conversation stored before the field existed) is false.
local CONV_FIELDS = {
  'customer', 'channel', 'source', 'thread', 'state', 'queue', 'priority', 'deadline',
  'count', 'created', 'updated', 'item', 'version', 'assignee', 'resolved', 'previous',
  'skills', 'tags', 'sla', 'awaiting', 'recorded',
}

local function conversation_view(conv)
  local f = call('HMGET', k('conv', conv), unpack(CONV_FIELDS))
  if not f[1] then return false end
  table.insert(f, 1, conv)
  return f
end

-- Timers: TIMERS scores each timer key ("<conversation>|<kind>|<ref>", the whole
-- Timer) by its due time in µs. flat is {due µs, key, ...}; arming a key again moves it.
local function arm_timers(flat)
  if #flat == 0 then return end
  call_sliced('ZADD', TIMERS, flat)
end

local function disarm_timers(keys)
  if #keys == 0 then return end
  call_sliced('ZREM', TIMERS, keys)
end

-- Every backlog a waiting item is in: its queue, then those it is also offered in
-- (ItemChange.also_offer; the item's 'also' field, one queue per line).
local function backlogs_of(queue, also)
  local out = {queue}
  if not also then return out end
  for q in string.gmatch(also, '[^\n]+') do out[#out + 1] = q end
  return out
end

-- Scores keep the exact integer text Python wrote (router.urgency: deadline ms * 8 + p).
local function score_text(value)
  return string.format('%.0f', value)
end
