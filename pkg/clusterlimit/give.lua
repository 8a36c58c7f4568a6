-- Gives ARGV[2] unspent tokens back to the GCRA bucket KEYS[1] of ARGV[1]
-- tokens per second (see take.lua): its TAT moves back by their time,
-- never before now, where the bucket is full and is deleted.
local rate, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil then
  return 0
end
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
tat = tat - n / rate
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1)
end
return 1
