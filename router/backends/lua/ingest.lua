-- ingest: store messages in order, each as Store.ingest steps 1-5 (a routed message adopts
-- a conversation only recorded messages made: see adopt below), or as a message routed
-- nowhere (an auto-reply, a bounce: steps 1, 2 and 4, see record below); the script as a
-- whole is atomic, so each message is. Each ARGV is one message: a msgpack array built
-- by redis_codec.ingest_arg (field order in load below). Returns msgpack, per message,
-- {duplicate, message_id, customer_id, conversation_id, queue, priority, deadline_us,
-- item_id ('' for none), new_customer, {merged customer ids}, conversation_created,
-- reopened, previous state ('' when created), awaiting (the conversation's hint, 1 or 0),
-- routed (1 or 0; a duplicate answers for the message as sent again)}.
local DEDUPE = B .. 'dedupe'
local dedupe_field, mid, new_cust, new_conv, new_item
local tkey, thread, sender, received, at_json
local hist_member, channel, source
local queue, prio, deadline, score
local reasons, body, verified, unverified, attrs
local window, skills, tags, sla, timers, awaiting, routed

local function load(a)
  dedupe_field, mid, new_cust, new_conv, new_item = a[1], a[2], a[3], a[4], a[5]
  tkey, thread, sender, received, at_json = a[6], a[7], a[8], a[9], a[10]
  hist_member, channel, source = a[11], a[12], a[13]
  queue, prio, deadline, score = a[14], a[15], a[16], a[17]
  reasons, body, verified, unverified, attrs = a[18], a[19], a[20], a[21], a[22]
  window, skills, tags, sla, timers = tonumber(a[23]), a[24], a[25], a[26], a[27]
  awaiting, routed = a[28], a[29] == '1'
end

local function duplicate(seen)
  local sep = string.find(seen, '\0', 1, true)
  local first_mid, conv = string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1)
  local f = call('HMGET', k('conv', conv), 'customer', 'queue', 'priority', 'deadline')
  return {1, first_mid, resolve(f[1]), conv, f[2], f[3], f[4], '', 0, {}, 0, 0, '', 0,
    routed and 1 or 0}
end

-- Merge every owner into the oldest; returns the survivor and the merged ids.
local function unite(owners, key_of)
  local winner = oldest(owners)
  local merged = {}
  for _, o in ipairs(owners) do
    if o ~= winner then
      merge_into(winner, o, merge_record(winner, o, at_json, 'identity:' .. key_of[o]))
      merged[#merged + 1] = o
    end
  end
  return winner, merged
end

-- Live owners of the verified identity keys, each once, and the first key of each.
local function owners_of(keys)
  local owners, key_of, current = {}, {}, {}
  if #keys == 0 then return owners, key_of, current end
  local found = hmget_sliced(IDENT, keys)
  for i, o in ipairs(keys) do
    local owner = found[i]
    current[o] = owner
    if owner and not key_of[owner] then
      key_of[owner] = o
      owners[#owners + 1] = owner
    end
  end
  return owners, key_of, current
end

-- A resolved conversation this message reopens: resolved at most the window before it
-- was received (no window: never).
local function within_window(state, resolved)
  return reopens(state, resolved, received, window)
end

local function find_customer()
  local owners, key_of, current = owners_of(verified)
  if #owners == 1 then return owners[1], {}, current end
  if #owners > 1 then
    local winner, merged = unite(owners, key_of)
    return winner, merged, current
  end
  return thread_owner(verified, tkey, thread, routed, received, window), {}, current
end

local function claim_identities(cust, current, is_new)
  local fresh = {}
  for _, key in ipairs(verified) do
    if current[key] ~= cust then fresh[#fresh + 1] = key end
  end
  if #fresh > 0 then
    call_sliced('HSET', IDENT, pairs_with(fresh, cust))
    call_sliced('SADD', k('ids', cust), fresh)
    if not is_new then call_sliced('HDEL', k('sugg', cust), fresh) end
  end
  for i = 1, #unverified, 2 do
    if call('SISMEMBER', k('ids', cust), unverified[i]) == 0 then
      call('HSETNX', k('sugg', cust), unverified[i], unverified[i + 1])
    end
  end
end

local function update_profile(cust, is_new)
  if is_new then
    if sender ~= '' then
      call('HSET', k('cust', cust), 'created', received, 'name', sender)
    else
      call('HSET', k('cust', cust), 'created', received)
    end
  elseif sender ~= '' then
    call('HSETNX', k('cust', cust), 'name', sender)
  end
  if #attrs > 0 then call_sliced('HSET', k('attrs', cust), attrs) end
end

-- The customer's newest conversation on this thread key (a resolved one keeps its
-- entry) and its fields {state, waiting item, updated, count, resolved, last message,
-- awaiting, queue, priority, deadline, recorded, created}.
local function thread_conversation(cust)
  local conv = call('HGET', k('open', cust), tkey)
  if not conv then return nil, nil end
  local f = call('HMGET', k('conv', conv), 'state', 'item', 'updated', 'count', 'resolved',
    'last', 'awaiting', 'queue', 'priority', 'deadline', 'recorded', 'created')
  if not f[1] then return nil, nil end
  return conv, f
end

local function new_conversation(cust, previous)
  local fields = {'customer', cust, 'channel', channel, 'source', source, 'state', 'open',
    'queue', queue, 'priority', prio, 'deadline', deadline, 'count', 1,
    'created', received, 'updated', received, 'item', new_item, 'version', 1,
    'skills', skills, 'tags', tags, 'last', hist_member, 'awaiting', awaiting}
  if thread ~= '' then
    fields[#fields + 1] = 'thread'
    fields[#fields + 1] = thread
    place_on_thread(tkey, new_conv, true, received)
  end
  if sla ~= '' then
    fields[#fields + 1] = 'sla'
    fields[#fields + 1] = sla
  end
  if previous then
    fields[#fields + 1] = 'previous'
    fields[#fields + 1] = previous
  end
  call('HSET', k('conv', new_conv), unpack(fields))
  call('HSET', k('open', cust), tkey, new_conv)
  call('SADD', k('convs', cust), new_conv)
  arm_timers(timers)
  return new_conv
end

-- A new message on an existing conversation: open again (live on its thread), one more
-- message, the newest message remembered; its routing changes only when an open one has
-- no item waiting (a reopened one keeps its queue, priority and deadline).
local function touch_conversation(conv, f, reopened)
  local updated, count = f[3], tostring(tonumber(f[4]) + 1)
  if tonumber(received) > tonumber(updated) then updated = received end
  local fields = {'state', 'open', 'updated', updated, 'count', count}
  if not f[6] or bytes_less(f[6], hist_member) then
    fields[#fields + 1] = 'last'
    fields[#fields + 1] = hist_member
  end
  if not f[2] then
    fields[#fields + 1] = 'item'
    fields[#fields + 1] = new_item
    if not reopened then
      for _, v in ipairs({'queue', queue, 'priority', prio, 'deadline', deadline}) do
        fields[#fields + 1] = v
      end
    end
  end
  call('HSET', k('conv', conv), unpack(fields))
  if reopened then call('HDEL', k('conv', conv), 'resolved') end
  if thread ~= '' then place_on_thread(tkey, conv, true, f[12]) end
end

local function new_item_for(conv, in_queue)
  call('HSET', k('item', new_item), 'conv', conv, 'queue', in_queue, 'priority', prio,
    'deadline', deadline, 'score', score, 'message', mid, 'reasons', reasons,
    'created', received)
  call('ZADD', k('backlog', in_queue), score, new_item)
  call('SADD', QUEUES, in_queue)
  return {in_queue, prio, deadline}
end

-- reasons are JSON lines: the waiting item keeps its own and adds the new ones
local function union_reasons(old)
  if reasons == '' then return old end
  if old == '' then return reasons end
  local have, out = {}, old
  for line in string.gmatch(old, '[^\n]+') do have[line] = true end
  for line in string.gmatch(reasons, '[^\n]+') do
    if not have[line] then
      out = out .. '\n' .. line
      have[line] = true
    end
  end
  return out
end

-- The waiting item now carries this message, at the more urgent deadline, priority and
-- score deadline part (router.urgency) of the two.
local function join_item(item)
  local key = k('item', item)
  local f = call('HMGET', key, 'queue', 'priority', 'deadline', 'score', 'reasons', 'also')
  local p, d = f[2], f[3]
  if tonumber(prio) < tonumber(p) then p = prio end
  if tonumber(deadline) < tonumber(d) then d = deadline end
  local part = math.min(math.floor(tonumber(f[4]) / 8), math.floor(tonumber(score) / 8))
  local s = score_text(part * 8 + tonumber(p))
  call('HSET', key, 'message', mid, 'priority', p, 'deadline', d, 'score', s,
    'reasons', union_reasons(f[5]))
  if s ~= f[4] then
    for _, q in ipairs(backlogs_of(f[1], f[6])) do call('ZADD', k('backlog', q), s, item) end
  end
  return {f[1], p, d}
end

-- The decision's timers are keyed to new_conv ("<new_conv>|<kind>|<ref>"); an adopted
-- conversation arms them under its own id.
local function rekeyed(flat, conv)
  local prefix, out = new_conv .. '|', {}
  for i = 1, #flat, 2 do
    local key = flat[i + 1]
    if string.sub(key, 1, #prefix) == prefix then key = conv .. string.sub(key, #new_conv + 1) end
    out[i], out[i + 1] = flat[i], key
  end
  return out
end

-- A routed message on a conversation only recorded messages made (f as thread_conversation
-- reads it), in any state: it becomes what new_conversation would make, under its own id
-- and keeping its created time, previous link and messages; its version moves on. Returns
-- what route returns for a new conversation.
local function adopt(conv, f)
  local key = k('conv', conv)
  local updated = f[3]
  if tonumber(received) > tonumber(updated) then updated = received end
  local fields = {'state', 'open', 'queue', queue, 'priority', prio, 'deadline', deadline,
    'count', tostring(tonumber(f[4]) + 1), 'updated', updated, 'item', new_item, 'skills', skills,
    'tags', tags, 'last', hist_member, 'awaiting', awaiting}
  local gone = {'resolved', 'assignee', 'recorded'}
  if sla ~= '' then
    fields[#fields + 1] = 'sla'
    fields[#fields + 1] = sla
  else
    gone[#gone + 1] = 'sla'
  end
  call('HSET', key, unpack(fields))
  call('HDEL', key, unpack(gone))
  call('HINCRBY', key, 'version', 1)
  if thread ~= '' then place_on_thread(tkey, conv, true, f[12]) end
  arm_timers(rekeyed(timers, conv))
  return conv, new_item, new_item_for(conv, queue), 1, 0, {'', awaiting == '1' and 1 or 0}
end

-- Steps 3 and 5: the conversation and the backlog item; returns both, the routing, the
-- conversation_created and reopened flags, and {previous state, awaiting hint}.
local function route(cust)
  local conv, f = thread_conversation(cust)
  if conv and f[11] == '1' then return adopt(conv, f) end
  local live = conv and (f[1] == 'open' or f[1] == 'pending')
  if not live and not (conv and within_window(f[1], f[5])) then
    return new_conversation(cust, conv), new_item, new_item_for(new_conv, queue), 1, 0,
      {'', awaiting == '1' and 1 or 0}
  end
  local reopened = live and 0 or 1
  local before = {f[1], f[7] == '1' and 1 or 0}
  touch_conversation(conv, f, reopened == 1)
  if f[2] then return conv, f[2], join_item(f[2]), 0, reopened, before end
  local in_queue = queue
  if reopened == 1 then in_queue = call('HGET', k('conv', conv), 'queue') end
  return conv, new_item, new_item_for(conv, in_queue), 0, reopened, before
end

-- A message routed nowhere with no conversation on its thread key: a new one, resolved
-- as it is created and recorded only, with the decision's routing and no item, sla,
-- timers or newest message ('last': a later create_item_id finds none to carry).
local function resolved_conversation(cust)
  local fields = {'customer', cust, 'channel', channel, 'source', source, 'state', 'resolved',
    'queue', queue, 'priority', prio, 'deadline', deadline, 'count', 1,
    'created', received, 'updated', received, 'resolved', received, 'version', 1,
    'skills', skills, 'tags', tags, 'awaiting', '0', 'recorded', '1'}
  if thread ~= '' then
    fields[#fields + 1] = 'thread'
    fields[#fields + 1] = thread
    place_on_thread(tkey, new_conv, false, received)
  end
  call('HSET', k('conv', new_conv), unpack(fields))
  call('HSET', k('open', cust), tkey, new_conv)
  call('SADD', k('convs', cust), new_conv)
  return new_conv
end

-- Step 3 for a message routed nowhere: it joins the customer's newest conversation on
-- the thread key, whatever its state, as one more message and nothing else (no state,
-- item, routing or newest-message change); with none, a resolved one. Returns what
-- route returns, with no item.
local function record(cust)
  local conv, f = thread_conversation(cust)
  if not conv then
    return resolved_conversation(cust), '', {queue, prio, deadline}, 1, 0, {'', 0}
  end
  call('HINCRBY', k('conv', conv), 'count', 1)
  return conv, '', {f[8], f[9], f[10]}, 0, 0, {f[1], f[7] == '1' and 1 or 0}
end

-- Step 4 and the dedupe key: the stored JSON is the body with both ids put in front.
local function store_message(cust, conv)
  call('ZADD', k('hist', cust), 0, hist_member)
  call('SET', k('msg', mid), '{"conversation_id":' .. cjson.encode(conv) .. ',"customer_id":'
    .. cjson.encode(cust) .. ',' .. string.sub(body, 2))
  call('HSET', DEDUPE, dedupe_field, mid .. '\0' .. conv)
end

local function ingest_one()
  local seen = call('HGET', DEDUPE, dedupe_field)
  if seen then return duplicate(seen) end
  local cust, merged, current = find_customer()
  local is_new = not cust
  if is_new then cust = new_cust end
  update_profile(cust, is_new)
  claim_identities(cust, current, is_new)
  local place = routed and route or record
  local conv, item, where, created, reopened, before = place(cust)
  store_message(cust, conv)
  return {0, mid, cust, conv, where[1], where[2], where[3], item, is_new and 1 or 0, merged,
    created, reopened, before[1], before[2], routed and 1 or 0}
end

local out = {}
for i, packed in ipairs(ARGV) do
  load(cmsgpack.unpack(packed))
  out[i] = ingest_one()
end
return cmsgpack.pack(out)
