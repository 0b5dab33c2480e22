-- settle: ARGV = item ids. Forgets released items; returns how many were released.
local n = 0
for _, id in ipairs(ARGV) do
  local queue = call('HGET', k('item', id), 'queue')
  if queue and call('ZREM', k('released', queue), id) == 1 then
    call('DEL', k('item', id))
    n = n + 1
  end
end
return n
