-- contexts: ARGV = lowest history member to count ('[' and an 18-digit sent key), limit,
-- the reopen window (µs), then one msgpack array per message: {verified identity keys,
-- thread key, thread, routed ('1' or '0'), received (µs)}. Returns msgpack, per message,
-- false (no known customer) or {customer id, attribute pairs, 18-digit sent keys of its
-- messages since, newest first, served_by record}.
local since, limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

-- The customer Store.ingest step 2 picks, without merging: the oldest live owner of
-- the verified identities, else thread_owner's.
local function customer_of(keys, tkey, thread, routed, received)
  local owners, seen = {}, {}
  for _, key in ipairs(keys) do
    local owner = call('HGET', IDENT, key)
    if owner and not seen[owner] then
      seen[owner] = true
      owners[#owners + 1] = owner
    end
  end
  if #owners > 0 then return oldest(owners) end
  return thread_owner(keys, tkey, thread, routed, received, window)
end

local function context(keys, tkey, thread, routed, received)
  local cid = customer_of(keys, tkey, thread, routed, received)
  if not cid then return false end
  local recent = {}
  if limit > 0 then
    local members = call('ZRANGE', k('hist', cid), '+', since, 'BYLEX', 'REV', 'LIMIT', 0, limit)
    for i, m in ipairs(members) do recent[i] = string.sub(m, 1, 18) end
  end
  return {cid, call('HGETALL', k('attrs', cid)), recent, call('HGET', SERVED, cid)}
end

local out = {}
for i = 4, #ARGV do
  local m = cmsgpack.unpack(ARGV[i])
  out[#out + 1] = context(m[1], m[2], m[3], m[4] == '1', m[5])
end
return cmsgpack.pack(out)
