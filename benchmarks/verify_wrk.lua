-- wrk script for benchmarks/verify_throughput.py: each wrk thread (one connection each) sends the one-step
-- verify bodies of its own file in order, one body per request, so every request carries a code never sent
-- before and each user's codes arrive in counter order.
--   wrk -t N -c N -s verify_wrk.lua URL -- BODIES_PREFIX AUTHORIZATION_FILE
-- reads BODIES_PREFIX.<thread> (one JSON body a line) and the Authorization header from a file (not argv,
-- which other users of the machine can read). Prints one JSON line at the end.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   bodies = {}
   for line in io.lines(args[1] .. "." .. id) do
      bodies[#bodies + 1] = line
   end
   local file = assert(io.open(args[2]))
   local authorization = file:read("*l")
   file:close()
   sent, accepted, refused, wrapped = 0, 0, 0, 0
   wrk.method = "POST"
   wrk.path = "/api/v1/verify"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = authorization
end

function request()
   sent = sent + 1
   local index = sent
   if index > #bodies then  -- out of fresh codes: replays are refused and counted as such
      wrapped = 1
      index = (index - 1) % #bodies + 1
   end
   return wrk.format(nil, nil, nil, bodies[index])
end

function response(status, headers, body)
   if status == 200 then
      accepted = accepted + 1
   else
      refused = refused + 1
   end
end

function done(summary, latency, requests)
   local ok, other, ran_out = 0, 0, 0
   for _, thread in ipairs(threads) do
      ok = ok + thread:get("accepted")
      other = other + thread:get("refused")
      ran_out = ran_out + thread:get("wrapped")
   end
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "accepted": %d, "refused": %d, "ran_out": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "socket_errors": %d}\n',
      summary.requests, summary.duration, ok, other, ran_out,
      latency:percentile(50), latency:percentile(99),
      errors.connect + errors.read + errors.write + errors.timeout))
end
