-- merge: ARGV = winner, loser, MergeRecord JSON.
-- Returns 'ok', 'not_found', 'same' or 'merged_away'.
local w, l, record = ARGV[1], ARGV[2], ARGV[3]
local cw = call('HMGET', k('cust', w), 'created', 'merged_into')
local cl = call('HMGET', k('cust', l), 'created', 'merged_into')
if not cw[1] or not cl[1] then return 'not_found' end
if w == l then return 'same' end
if cw[2] or cl[2] then return 'merged_away' end
merge_into(w, l, record)
return 'ok'
