-- Records that replica ARGV[1] is alive in the sorted set KEYS[1] (scored
-- by Redis's clock), forgets replicas not heard from in ARGV[2] seconds,
-- and returns how many are left: what each replica's share of a limit is
-- while Redis is unreachable.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
return redis.call('ZCARD', KEYS[1])
