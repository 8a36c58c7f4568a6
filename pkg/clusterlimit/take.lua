-- Takes up to ARGV[3] tokens, and at least ARGV[4], from the GCRA bucket
-- KEYS[1] of ARGV[1] tokens per second and a burst of ARGV[2]: all or
-- nothing below ARGV[4], as many as there are up to ARGV[3] above it. The
-- bucket is its theoretical arrival time (TAT), in seconds on Redis's own
-- clock, so replicas whose clocks differ share one time.
--
-- Returns {granted, tokens left, seconds until ARGV[4] tokens are there
-- (0 when granted), seconds until the bucket is full}; fractions as
-- strings, since Redis truncates Lua numbers to integers.
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, need = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
-- Seconds since 2023-11-14, so microseconds fit in a double's digits.
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local interval = 1 / rate
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local avail = (now + burst * interval - tat) / interval
local granted = 0
if avail + 1e-9 >= need then
  granted = math.min(want, math.floor(avail + 1e-9))
  tat = tat + granted * interval
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1)
end
local wait = 0
if granted == 0 then
  wait = (need - avail) * interval
end
return {granted, string.format('%.6f', avail - granted), string.format('%.6f', wait), string.format('%.6f', tat - now)}
