-- stats: ARGV[1] = the at-risk score bound ('-inf' for none). msgpack, per known queue
-- {queue, depth, score of the most urgent item or false, released, items scored at or
-- below the bound}; a queue with nothing waiting or released leaves the queue set.
local bound = ARGV[1]
local out = {}
for _, q in ipairs(call('SMEMBERS', QUEUES)) do
  local backlog = k('backlog', q)
  local depth = call('ZCARD', backlog)
  local released = call('ZCARD', k('released', q))
  if depth == 0 and released == 0 then
    call('SREM', QUEUES, q)
  else
    local first = call('ZRANGE', backlog, 0, 0, 'WITHSCORES')
    local at_risk = 0
    if bound ~= '-inf' then at_risk = call('ZCOUNT', backlog, '-inf', bound) end
    out[#out + 1] = {q, depth, first[2] or false, released, at_risk}
  end
end
return cmsgpack.pack(out)
