-- conversation: ARGV = conversation id. Returns the conversation view as msgpack, or nil.
local view = conversation_view(ARGV[1])
if not view then return false end
return cmsgpack.pack(view)
