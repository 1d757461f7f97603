-- Parks a due member while its tenant has no sink: it stays in its set, scored past every due time, until a sink is set
-- again (dispatch_unpark.lua). The first parking of a record answers 'parked' (audited once); later ones 'still'.
-- Never creates the record: a record gone (TTL) is taken out of both sets.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set, KEYS[4] audit outbox
-- ARGV[1] outbox member, ARGV[2] '1' = a replay (the record must be 'dispatched'; else 'pending'), ARGV[3] now (ms),
-- ARGV[4] the parked score, ARGV[5] audit entry json (pushed with the first parking only)
-- Returns {'parked'} | {'still'} | {'gone'} | {'already', state}
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
redis.call('ZADD', set, ARGV[4], ARGV[1])
if redis.call('HSETNX', KEYS[1], 'parkedAt', ARGV[3]) == 1 then
  redis.call('LPUSH', KEYS[4], ARGV[5])
  return {'parked'}
end
return {'still'}
