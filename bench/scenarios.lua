-- wrk script of bench/load.py and bench/soak.py (not meant to be run by hand).
--   wrk -s bench/scenarios.lua URL -- <scenario> <data file> [delay ms]
-- The data file has one "token <jwt>", "track <uuid>" or "query <words>" per line.
-- Scenarios: baseline, floor (FastAPI's own cost of an authenticated read, on the baseline
-- server), healthz (API, no auth, no /api/ middleware), anon (cached track read
-- without a token), track, me, feed, search, like, play, mixed (80 % reads / 20 % writes).
-- done() prints one "BENCH_JSON {...}" line: percentiles in microseconds, status classes.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local scenario, delay_ms
local tokens, tracks, queries = {}, {}, {}

function init(args)
  scenario = args[1]
  delay_ms = tonumber(args[3] or "0")
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for line in io.lines(args[2]) do
    local kind, value = line:match("^(%a+) (.+)$")
    if kind == "token" then
      table.insert(tokens, value)
    elseif kind == "track" then
      table.insert(tracks, value)
    elseif kind == "query" then
      table.insert(queries, value)
    end
  end
  s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0
end

local function encode(text)
  return (text:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- mixed: 80 % reads (track 30, me 20, feed 15, search 15), 20 % writes (like/unlike 10, play 10)
local function pick()
  local r = math.random(100)
  if r <= 30 then return "track" end
  if r <= 50 then return "me" end
  if r <= 65 then return "feed" end
  if r <= 80 then return "search" end
  if r <= 90 then return "like" end
  return "play"
end

function request()
  if scenario == "baseline" then
    return wrk.format("GET", "/ping")
  elseif scenario == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif scenario == "anon" then
    return wrk.format("GET", "/api/v1/tracks/" .. tracks[math.random(#tracks)])
  end
  local kind = scenario
  if kind == "mixed" then kind = pick() end
  local headers = { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] }
  local track = tracks[math.random(#tracks)]
  if kind == "floor" then
    return wrk.format("GET", "/floor/tracks/" .. track, headers)
  elseif kind == "track" then
    return wrk.format("GET", "/api/v1/tracks/" .. track, headers)
  elseif kind == "me" then
    return wrk.format("GET", "/api/v1/users/me", headers)
  elseif kind == "feed" then
    return wrk.format("GET", "/api/v1/feed", headers)
  elseif kind == "search" then
    return wrk.format("GET", "/api/v1/search/tracks?q=" .. encode(queries[math.random(#queries)]), headers)
  elseif kind == "like" then
    local method = "POST"
    if math.random(2) == 1 then method = "DELETE" end
    return wrk.format(method, "/api/v1/tracks/" .. track .. "/like", headers)
  elseif kind == "play" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/v1/tracks/" .. track .. "/play", headers, "{}")
  end
  error("unknown scenario " .. tostring(kind))
end

function response(status, headers, body)
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 300 then
    s3xx = s3xx + 1
  else
    s2xx = s2xx + 1
  end
end

if (tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0) > 0 then
  -- open-ish loop for the soak: each connection waits this long between requests
  function delay()
    return tonumber(os.getenv("BENCH_DELAY_MS"))
  end
end

function done(summary, latency, requests)
  local c2, c3, c4, c5 = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    c2 = c2 + (thread:get("s2xx") or 0)
    c3 = c3 + (thread:get("s3xx") or 0)
    c4 = c4 + (thread:get("s4xx") or 0)
    c5 = c5 + (thread:get("s5xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx3xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f,' ..
    '"s2xx":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean, c2, c3, c4, c5))
end
