-- history: ARGV = customer id, limit, cursor ('' for the newest page).
-- A merged customer's history is its live customer's. Returns nil when unknown, else
-- msgpack {live customer id, cursor of the next older page or '', {message JSON, ...}}.
local cid, limit, before = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if call('EXISTS', k('cust', cid)) == 0 then return false end
cid = resolve(cid)
local top = '+'
if before ~= '' then top = '(' .. before end
local members = call('ZRANGE', k('hist', cid), top, '-', 'BYLEX', 'REV', 'LIMIT', 0, limit + 1)
local next_before = ''
if #members > limit then
  members[#members] = nil
  next_before = members[#members]
end
return cmsgpack.pack({cid, next_before, message_blobs(members)})
