-- wrk script for bench/ingest.py: replays pre-signed, pre-formatted HTTP requests.
--
--   wrk -t T -c C -d D --latency -s bench/ingest.lua http://127.0.0.1:PORT -- /path/requests
--
-- Thread k loads /path/requests.k (written by bench/ingest.py): records of "<byte length>\n<raw HTTP
-- request>". request() only hands out the next pre-built string, so wrk does no formatting or signing
-- per request. response() counts status codes; done() prints one line "BENCH_RESULT {json}".

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local reqs, n, i = {}, 0, 0
statuses = {}
wraps = 0
loaded = 0

function init(args)
  local path = args[1] .. "." .. id
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local pos, size = 1, #data
  while pos <= size do
    local nl = string.find(data, "\n", pos, true)
    if not nl then break end
    local len = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
  loaded = n
  assert(n > 0, "no requests in " .. path)
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wraps = wraps + 1
  end
  return reqs[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local codes, total_wraps, total_loaded = {}, 0, 0
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do
      codes[code] = (codes[code] or 0) + count
    end
    total_wraps = total_wraps + t:get("wraps")
    total_loaded = total_loaded + t:get("loaded")
  end
  local parts = {}
  for code, count in pairs(codes) do
    parts[#parts + 1] = string.format('"%d":%d', code, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"statuses":{%s},"wraps":%d,"loaded":%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ","), total_wraps, total_loaded))
end
