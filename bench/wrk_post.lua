-- wrk script for the saturation phase (run.py starts wrk with it).
--
--   wrk -t1 -cN -dT -s bench/wrk_post.lua http://127.0.0.1:PORT -- TEMPLATES TAG PATH TOKEN
--
-- TEMPLATES holds message bodies written by workload.write_templates: one a line, split
-- by a tab where the external id goes. Each request takes the next template and puts
-- "<TAG>-<thread>-<counter>" there, so every body is unique; the request is one string
-- built here (no wrk.format, no response() callback: wrk stays on its fast path).
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles.

local heads, tails = {}, {}
local count = 0
local threads = {}
local thread_number = 0

function setup(thread)
   thread_number = thread_number + 1
   thread:set("number", thread_number)
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(args[1]) do
      local tab = line:find("\t", 1, true)
      count = count + 1
      heads[count] = line:sub(1, tab - 1)
      tails[count] = line:sub(tab + 1)
   end
   prefix = args[2] .. "-" .. number .. "-"
   start_line = "POST " .. args[3] .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
      .. "\r\nAuthorization: Bearer " .. args[4]
      .. "\r\nContent-Type: application/json\r\nContent-Length: "
   position = (number * 7919) % count
   counter = 0
end

function request()
   counter = counter + 1
   position = position % count + 1
   local body = heads[position] .. prefix .. counter .. tails[position]
   return start_line .. #body .. "\r\n\r\n" .. body
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
