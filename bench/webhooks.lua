-- wrk script: Shopify webhook deliveries to /webhooks/shopify. The body is fixed, so its HMAC
-- (HMAC env, computed by bench/webhooks with openssl) is too; every request carries a new
-- X-Shopify-Webhook-Id (thread id + counter), so every delivery is a new inbox row. Counts 200s.
-- With RATE set (env), deliveries are paced to RATE per second (bench/pacing.lua).
if os.getenv("RATE") then dofile("bench/pacing.lua") end
local hmac = os.getenv("HMAC") or "missing"
local body = os.getenv("BODY") or "{}"
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  acked = 0
  other = 0
  counter = 0
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Shopify-Topic"] = "orders/create"
  wrk.headers["X-Shopify-Hmac-Sha256"] = hmac
  wrk.headers["X-Shopify-Shop-Domain"] = "bench.myshopify.com"
  wrk.headers["X-Shopify-API-Version"] = "2026-10"
  wrk.headers["X-Shopify-Triggered-At"] = "2026-11-21T00:00:00.000Z"
end

function request()
  counter = counter + 1
  wrk.headers["X-Shopify-Webhook-Id"] = string.format("bench-%d-%d", id, counter)
  return wrk.format(nil, "/webhooks/shopify")
end

function response(status, headers, body)
  if status == 200 then acked = acked + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked")
    o = o + t:get("other")
  end
  io.write(string.format(
    'RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,"acked":%d,"non_ok":%d,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), a, o,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
