-- stats: per known queue {queue, depth, deadline µs of the most urgent item or nil,
-- released count}; queues with nothing waiting or released leave the queue set.
local out = {}
for _, q in ipairs(call('SMEMBERS', B .. ':queues')) do
  local depth = call('ZCARD', k('backlog', q))
  local released = tonumber(call('HGET', RELEASED_N, q) or '0')
  if depth == 0 and released <= 0 then
    call('SREM', B .. ':queues', q)
    call('HDEL', RELEASED_N, q)
  else
    local first = call('ZRANGE', k('backlog', q), 0, 0)
    local deadline = false
    if first[1] then deadline = call('HGET', k('item', first[1]), 'deadline') end
    out[#out + 1] = {q, depth, deadline, released}
  end
end
return out
