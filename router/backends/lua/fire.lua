-- fire: ARGV = now in µs, limit. Removes and returns (msgpack list of Timer JSON) the
-- earliest due timers: O(log N + limit), and one script, so a timer fires exactly once.
local keys = call('ZRANGEBYSCORE', TIMERS, '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #keys == 0 then return cmsgpack.pack({}) end
local blobs = call('HMGET', TIMER, unpack(keys))
call('ZREM', TIMERS, unpack(keys))
call('HDEL', TIMER, unpack(keys))
return cmsgpack.pack(blobs)
