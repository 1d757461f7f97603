-- Counts a failed delivery (or an error) and reschedules the member with backoff, or gives up on it (marked stuck).
-- Never creates the record: a record gone (TTL) is taken out of both sets.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set
-- ARGV[1] outbox member, ARGV[2] '1' = a replay (the record must be 'dispatched'; else 'pending'), ARGV[3] now (ms),
-- ARGV[4] first wait (ms), ARGV[5] longest wait (ms), ARGV[6] the counter field, ARGV[7] give up past this count (0 = never)
-- Returns {'retry', count, wait ms} | {'stuck', count} | {'gone'} | {'already', state}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone'}
end
local set = KEYS[2]
local expected = 'pending'
if ARGV[2] == '1' then
  set = KEYS[3]
  expected = 'dispatched'
end
local state = redis.call('HGET', KEYS[1], 'dispatch')
if state ~= expected then
  redis.call('ZREM', set, ARGV[1])
  return {'already', state or ''}
end
local count = redis.call('HINCRBY', KEYS[1], ARGV[6], 1)
local limit = tonumber(ARGV[7])
if limit > 0 and count > limit then
  redis.call('HSET', KEYS[1], 'dispatch', 'stuck')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'stuck', tostring(count)}
end
-- As Backoff.Exponential: the first wait after the first failure, doubling with each one after, at most the longest.
local wait = math.floor(math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(count - 1, 30)))
redis.call('ZADD', set, math.floor(tonumber(ARGV[3]) + wait), ARGV[1])
return {'retry', tostring(count), tostring(wait)}
