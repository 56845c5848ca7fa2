-- wrk pacing, loaded by other wrk scripts: RATE requests per second in total (env; split evenly
-- over THREADS, env, = wrk's -t). Each thread hands out send slots 1/rate apart on a monotonic
-- clock; a connection waits for its slot. When the server falls behind, slots are not saved up
-- (no catch-up bursts).

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } gt_timespec;
  int clock_gettime(int clock_id, gt_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("gt_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("RATE") or "1000") / tonumber(os.getenv("THREADS") or "2")
local interval_ms = 1000 / rate
local next_slot = nil

function delay()
  local now = now_ms()
  if next_slot == nil or next_slot < now then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval_ms
  return math.floor(wait)
end
