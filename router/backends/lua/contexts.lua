-- contexts: ARGV = lowest history member to count ('[' and an 18-digit sent key), limit,
-- then one msgpack array per message: {verified identity keys, thread key, thread}.
-- Returns msgpack, per message, false (no known customer) or {customer id, attribute
-- pairs, 18-digit sent keys of its messages since, newest first, served_by record}.
local THREAD = B .. 'thread'
local since, limit = ARGV[1], tonumber(ARGV[2])

-- The live owner of the first owned verified identity, else the customer of the open
-- or pending conversation on the thread key.
local function customer_of(keys, tkey, thread)
  for _, key in ipairs(keys) do
    local owner = call('HGET', IDENT, key)
    if owner then return resolve(owner) end
  end
  if thread == '' then return nil end
  local conv = call('HGET', THREAD, tkey)
  if not conv then return nil end
  local f = call('HMGET', k('conv', conv), 'state', 'customer')
  if f[1] == 'open' or f[1] == 'pending' then return resolve(f[2]) end
  return nil
end

local function context(keys, tkey, thread)
  local cid = customer_of(keys, tkey, thread)
  if not cid then return false end
  local recent = {}
  if limit > 0 then
    local members = call('ZRANGE', k('hist', cid), '+', since, 'BYLEX', 'REV', 'LIMIT', 0, limit)
    for i, m in ipairs(members) do recent[i] = string.sub(m, 1, 18) end
  end
  return {cid, call('HGETALL', k('attrs', cid)), recent, call('HGET', SERVED, cid)}
end

local out = {}
for i = 3, #ARGV do
  local m = cmsgpack.unpack(ARGV[i])
  out[#out + 1] = context(m[1], m[2], m[3])
end
return cmsgpack.pack(out)
