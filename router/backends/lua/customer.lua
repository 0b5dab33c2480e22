-- customer: ARGV = customer id. Returns the customer view (see common.lua) or nil.
return customer_view(ARGV[1])
