-- requeue: ARGV = max lease expiry in µs ('+inf' for every released item), batch size.
-- Puts up to a batch of released items back on their backlog; returns how many.
local until_us, room = ARGV[1], tonumber(ARGV[2])

local function requeue(queue, id)
  local f = call('HMGET', k('item', id), 'score', 'conv')
  call('ZADD', k('backlog', queue), f[1], id)
  call('ZREM', k('released', queue), id)
  -- the conversation's next message joins this item again unless it has a newer one
  if call('EXISTS', k('conv', f[2])) == 1 then call('HSETNX', k('conv', f[2]), 'item', id) end
end

local moved = 0
for _, queue in ipairs(call('SMEMBERS', QUEUES)) do
  if moved >= room then break end
  local ids = call('ZRANGEBYSCORE', k('released', queue), '-inf', until_us,
    'LIMIT', 0, room - moved)
  for _, id in ipairs(ids) do requeue(queue, id) end
  moved = moved + #ids
end
return moved
