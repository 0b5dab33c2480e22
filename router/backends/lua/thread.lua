-- thread: ARGV = source, then external ids in the order to try (Store.find_thread).
-- Returns the thread of the conversation holding the first one stored under the source
-- ('' when that conversation has no thread), or false when none is stored.
local source = ARGV[1]
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = source .. '\0' .. ARGV[i] end
if #fields == 0 then return false end
local seen = hmget_sliced(B .. 'dedupe', fields)
for i = 1, #fields do
  local entry = seen[i]
  if entry then
    local conv = string.sub(entry, string.find(entry, '\0', 1, true) + 1)
    return call('HGET', k('conv', conv), 'thread') or ''
  end
end
return false
