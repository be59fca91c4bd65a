-- wrk script for make bench: one request shape, random ids, every status counted.
--
--   wrk ... -s bench/lua/request.lua <url> -- METHOD PATH IDS_FILE BODY
--
-- PATH and BODY may hold {id} (a random line of IDS_FILE, "-" for none) and {uuid} (a fresh
-- random UUID per request); BODY "-" sends none. Headers come from wrk's -H options. done()
-- prints one line "BENCH_RESULT {json}" with requests, duration, socket errors, latency
-- percentiles (microseconds) and the count of every HTTP status seen.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end

local method, path_template, body_template
local ids = {}
statuses = {}

function init(args)
  method = args[1]
  path_template = args[2]
  local ids_file = args[3]
  body_template = args[4]
  if body_template == "-" then body_template = nil end
  if ids_file ~= nil and ids_file ~= "-" then
    for line in io.lines(ids_file) do
      if line ~= "" then table.insert(ids, line) end
    end
  end
  math.randomseed(os.time() * 1000 + (seed or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

local hex = {"0","1","2","3","4","5","6","7","8","9","a","b","c","d","e","f"}

local function uuid4()
  local t = {}
  for i = 1, 32 do t[i] = hex[math.random(16)] end
  t[13] = "4"
  t[17] = hex[math.random(9, 12)]
  return table.concat(t, "", 1, 8) .. "-" .. table.concat(t, "", 9, 12) .. "-" ..
    table.concat(t, "", 13, 16) .. "-" .. table.concat(t, "", 17, 20) .. "-" ..
    table.concat(t, "", 21, 32)
end

local function fill(template)
  local out = template
  if #ids > 0 and out:find("{id}", 1, true) then
    out = out:gsub("{id}", ids[math.random(#ids)])
  end
  if out:find("{uuid}", 1, true) then
    out = out:gsub("{uuid}", uuid4())
  end
  return out
end

function request()
  local body = nil
  if body_template then body = fill(body_template) end
  return wrk.format(method, fill(path_template), nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    table.concat(parts, ", ")))
end
