-- A sink is set: every parked member of the tenant is due now.
-- KEYS[1] dispatch outbox set, KEYS[2] unacknowledged set. ARGV[1] the parked score, ARGV[2] now (ms)
-- Returns {'ok', how many}
local n = 0
for _, key in ipairs(KEYS) do
  local parked = redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf', 'LIMIT', 0, 1000)
  for _, member in ipairs(parked) do
    redis.call('ZADD', key, ARGV[2], member)
    n = n + 1
  end
end
return {'ok', tostring(n)}
