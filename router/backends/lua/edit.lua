-- edit: ARGV = "<source>\0<external_id>", the message JSON an edit was computed from
-- ('' to only read it), the message JSON after the edit. A compare-and-set: the message
-- takes the new JSON only while it is still the old one, so of two edits racing, the
-- later one is computed again from the earlier one's result (RedisStore.edit_message).
-- Returns false when the message was never stored, else msgpack {its live customer id,
-- the message JSON now stored}.
local seen = call('HGET', B .. 'dedupe', ARGV[1])
if not seen then return false end
local sep = string.find(seen, '\0', 1, true)
local key = k('msg', string.sub(seen, 1, sep - 1))
local current = call('GET', key)
if not current then return false end
if ARGV[2] ~= '' and current == ARGV[2] then
  call('SET', key, ARGV[3])
  current = ARGV[3]
end
local owner = call('HGET', k('conv', string.sub(seen, sep + 1)), 'customer')
return cmsgpack.pack({resolve(owner), current})
