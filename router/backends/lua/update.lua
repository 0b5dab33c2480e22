-- update: ARGV = conversation id, the ConversationUpdate as a msgpack array built by
-- RedisStore._update_arg (field order in the locals below). Applies it as one step
-- (Store.update_conversation) if the version still matches. Returns 'not_found',
-- 'conflict', or the conversation view after it as msgpack.
local conv, u = ARGV[1], cmsgpack.unpack(ARGV[2])
local expected, sets, dels, change = tonumber(u[1]), u[2], u[3], u[4]
local disarm, arm, agent, at, deadline_ms = u[5], u[6], u[7], u[8], u[9]
local CONV = k('conv', conv)

-- The item change: {withdraw, priority, deadline µs, deadline ms, move_to, also_offer,
-- create_item_id, reason lines}, '' where not given.
local withdraw, c_prio, c_deadline, c_deadline_ms = false, '', '', ''
local move_to, also_offer, create_id, reasons = '', '', '', ''
if change ~= '' then
  withdraw, c_prio, c_deadline, c_deadline_ms = change[1] == 1, change[2], change[3], change[4]
  move_to, also_offer, create_id, reasons = change[5], change[6], change[7], change[8]
end

local function leave_backlogs(item, f)
  for _, q in ipairs(backlogs_of(f[1], f[2])) do call('ZREM', k('backlog', q), item) end
end

local function withdraw_item(item)
  leave_backlogs(item, call('HMGET', k('item', item), 'queue', 'also'))
  call('DEL', k('item', item))
  call('HDEL', CONV, 'item')
end

-- New priority and deadline; the score never becomes less urgent (router.urgency.rescore).
local function rescore(item)
  local key = k('item', item)
  local f = call('HMGET', key, 'queue', 'also', 'priority', 'deadline', 'score')
  local p, d, d_ms = f[3], f[4], math.floor(tonumber(f[4]) / 1000)
  if c_prio ~= '' then p = c_prio end
  if c_deadline ~= '' then d, d_ms = c_deadline, tonumber(c_deadline_ms) end
  local s = score_text(math.min(math.floor(tonumber(f[5]) / 8), d_ms) * 8 + tonumber(p))
  call('HSET', key, 'priority', p, 'deadline', d, 'score', s)
  for _, q in ipairs(backlogs_of(f[1], f[2])) do call('ZADD', k('backlog', q), s, item) end
end

local function move(item)
  local key = k('item', item)
  local f = call('HMGET', key, 'queue', 'also', 'score')
  leave_backlogs(item, f)
  call('ZADD', k('backlog', move_to), f[3], item)
  call('SADD', QUEUES, move_to)
  call('HSET', key, 'queue', move_to)
  call('HDEL', key, 'also')
end

local function offer(item)
  local key = k('item', item)
  local f = call('HMGET', key, 'queue', 'also', 'score')
  for _, q in ipairs(backlogs_of(f[1], f[2])) do
    if q == also_offer then return end
  end
  call('ZADD', k('backlog', also_offer), f[3], item)
  call('SADD', QUEUES, also_offer)
  if f[2] then
    call('HSET', key, 'also', f[2] .. '\n' .. also_offer)
  else
    call('HSET', key, 'also', also_offer)
  end
end

local function add_reasons(item)
  if reasons == '' then return end
  local old = call('HGET', k('item', item), 'reasons')
  if old and old ~= '' then
    call('HSET', k('item', item), 'reasons', old .. '\n' .. reasons)
  else
    call('HSET', k('item', item), 'reasons', reasons)
  end
end

-- A new item carrying the newest message, at the conversation's priority and deadline.
local function create_item(created)
  local f = call('HMGET', CONV, 'queue', 'priority', 'deadline', 'last')
  if not f[4] then return nil end
  local queue = f[1]
  if move_to ~= '' then queue = move_to end
  local d_ms = math.floor(tonumber(f[3]) / 1000)
  if deadline_ms ~= '' then d_ms = tonumber(deadline_ms) end
  local s = score_text(d_ms * 8 + tonumber(f[2]))
  call('HSET', k('item', create_id), 'conv', conv, 'queue', queue, 'priority', f[2],
    'deadline', f[3], 'score', s, 'message', string.sub(f[4], HIST_PREFIX),
    'reasons', reasons, 'created', created)
  call('ZADD', k('backlog', queue), s, create_id)
  call('SADD', QUEUES, queue)
  call('HSET', CONV, 'item', create_id)
  return create_id
end

local function change_item(created)
  if change == '' then return end
  local item = call('HGET', CONV, 'item')
  if item and withdraw then return withdraw_item(item) end
  if item then
    if c_prio ~= '' or c_deadline ~= '' then rescore(item) end
    if move_to ~= '' then move(item) end
    add_reasons(item)
  elseif create_id ~= '' then
    item = create_item(created)
  end
  if item and also_offer ~= '' then offer(item) end
end

local f = call('HMGET', CONV, 'customer', 'version', 'updated')
if not f[1] then return 'not_found' end
if tonumber(f[2] or 0) ~= expected then return 'conflict' end
if #sets > 0 then call('HSET', CONV, unpack(sets)) end
if #dels > 0 then call('HDEL', CONV, unpack(dels)) end
place_stored_on_thread(conv)
if at == '' then at = call('HGET', CONV, 'updated') end
change_item(at)
disarm_timers(disarm)
arm_timers(arm)
if agent ~= '' then record_served(resolve(f[1]), at .. '\0' .. agent) end
call('HINCRBY', CONV, 'version', 1)
return cmsgpack.pack(conversation_view(conv))
