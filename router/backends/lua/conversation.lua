-- conversation: ARGV = conversation id. Returns the conversation view or nil.
return conversation_view(ARGV[1])
