-- wrk script: bench/collect.lua's requests and counting, paced to RATE requests per second
-- (bench/pacing.lua). Used by bench/soak.
dofile("bench/collect.lua")
dofile("bench/pacing.lua")
