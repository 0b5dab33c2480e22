-- customer: ARGV = customer id. Returns the customer view (see common.lua) as msgpack, or nil.
local view = customer_view(ARGV[1])
if not view then return false end
return cmsgpack.pack(view)
