-- resolve: ARGV = customer id. Returns the live customer id or nil when unknown.
if call('EXISTS', k('cust', ARGV[1])) == 0 then return false end
return resolve(ARGV[1])
