-- stats: msgpack, per known queue {queue, depth, deadline µs of the most urgent item or
-- nil, released}; a queue with nothing waiting or released leaves the queue set.
local out = {}
for _, q in ipairs(call('SMEMBERS', QUEUES)) do
  local depth = call('ZCARD', k('backlog', q))
  local released = call('ZCARD', k('released', q))
  if depth == 0 and released == 0 then
    call('SREM', QUEUES, q)
  else
    local first = call('ZRANGE', k('backlog', q), 0, 0)
    local deadline = false
    if first[1] then deadline = call('HGET', k('item', first[1]), 'deadline') end
    out[#out + 1] = {q, depth, deadline, released}
  end
end
return cmsgpack.pack(out)
