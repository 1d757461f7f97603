-- Counts one delivery attempt BEFORE it is made, so a crash or a lost answer after it makes the next one a replay,
-- and fixes the publication's time at its first attempt (every delivery of one publication carries the same body).
-- Never creates the record: a record gone (TTL) is taken out of both sets.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set
-- ARGV[1] outbox member, ARGV[2] '1' = a replay (the record must be 'dispatched'; else 'pending'), ARGV[3] now (ms)
-- Returns {'ok', attempt, firstPublishedAt ms} | {'gone'} | {'already', state}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone'}
end
local state = redis.call('HGET', KEYS[1], 'dispatch')
if ARGV[2] == '1' then
  if state ~= 'dispatched' then
    redis.call('ZREM', KEYS[3], ARGV[1])
    return {'already', state or ''}
  end
elseif state ~= 'pending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'already', state or ''}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'deliveryAttempt', 1)
-- A record published before attempts were counted: each of its deliveries so far was an attempt.
local floor = tonumber(redis.call('HGET', KEYS[1], 'dispatchCount') or '0') + 1
if attempt < floor then
  attempt = floor
  redis.call('HSET', KEYS[1], 'deliveryAttempt', tostring(attempt))
end
redis.call('HSETNX', KEYS[1], 'firstPublishedAt', redis.call('HGET', KEYS[1], 'dispatchedAt') or ARGV[3])
return {'ok', tostring(attempt), redis.call('HGET', KEYS[1], 'firstPublishedAt')}
