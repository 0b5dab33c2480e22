-- fire: ARGV = now in µs, limit. Removes and returns (msgpack: key, due µs, key, ...)
-- the earliest due timers: O(log N + limit), and one script, so a timer fires once.
local due = call('ZRANGEBYSCORE', TIMERS, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
if #due == 0 then return cmsgpack.pack({}) end
local keys = {}
for i = 1, #due, 2 do keys[#keys + 1] = due[i] end
call('ZREM', TIMERS, unpack(keys))
return cmsgpack.pack(due)
