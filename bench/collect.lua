-- wrk script: POSTs tracker-shaped batches of EVENTS events (env) for site SITE_KEY (env), each
-- request from one of 10,000 client IPs (X-Forwarded-For; the server trusts loopback), and
-- counts acknowledged (202) requests per thread so the runner can compare them with stored rows.
local events_per_request = tonumber(os.getenv("EVENTS") or "1")
local site_key = os.getenv("SITE_KEY") or "gt_missing"
local ok_status = tonumber(os.getenv("OK_STATUS") or "202")
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function body()
  local now = os.time() * 1000
  local parts = {}
  for i = 1, events_per_request do
    if i == 1 then
      parts[i] = string.format('{"t":"pv","ts":%d,"r":"https://www.google.com/","ti":"Red shoes","pt":"product"}', now)
    else
      parts[i] = string.format('{"t":"cl","ts":%d,"x":%d,"y":%d,"pw":1280,"ph":3000,"tg":"button","sel":"button#add.btn","ap":1}', now, 100 + i, 200 + i)
    end
  end
  return string.format('{"k":"%s","v":1,"s":%d,"u":"https://shop.example/products/red-shoes","c":1,"e":[%s]}',
    site_key, now, table.concat(parts, ","))
end

function init(args)
  acked = 0
  other = 0
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
  cached_body = body()
  cached_at = os.time()
end

function request()
  counter = counter + 1
  if os.time() ~= cached_at then
    cached_body = body()
    cached_at = os.time()
  end
  local ip = string.format("10.%d.%d.%d", id, math.floor((counter % 10000) / 100), counter % 100)
  wrk.headers["X-Forwarded-For"] = ip
  return wrk.format(nil, "/collect", nil, cached_body)
end

function response(status, headers, body)
  if status == ok_status then acked = acked + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked")
    o = o + t:get("other")
  end
  io.write(string.format(
    'RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,"acked":%d,"non_ok":%d,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f,"events_per_request":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), a, o,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, events_per_request))
end
