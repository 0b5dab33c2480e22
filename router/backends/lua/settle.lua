-- settle: ARGV = item ids. Forgets released items; returns how many were released.
local n = 0
for _, id in ipairs(ARGV) do
  if call('ZREM', RELEASED, id) == 1 then
    call('HINCRBY', RELEASED_N, call('HGET', k('item', id), 'queue'), -1)
    call('DEL', k('item', id))
    n = n + 1
  end
end
return n
