-- Sliding-window rate limit: admits at most ARGV[3] events per ARGV[2] ms.
-- KEYS[1] the window's sorted set. ARGV[1] now (ms), ARGV[2] window (ms), ARGV[3] limit, ARGV[4] unique event id
-- Returns {1, 0} when admitted, {0, ms until the oldest event leaves the window} when not.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
