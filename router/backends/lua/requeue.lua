-- requeue: ARGV = max lease expiry in µs ('+inf' for every released item), batch size.
-- Puts up to a batch of released items back on their backlog; returns how many.
local ids = call('ZRANGEBYSCORE', RELEASED, '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  local f = call('HMGET', k('item', id), 'queue', 'score', 'conv')
  call('ZADD', k('backlog', f[1]), f[2], id)
  call('ZREM', RELEASED, id)
  call('HINCRBY', RELEASED_N, f[1], -1)
  -- the conversation's next message joins this item again unless it has a newer one
  if call('EXISTS', k('conv', f[3])) == 1 then call('HSETNX', k('conv', f[3]), 'item', id) end
end
return #ids
