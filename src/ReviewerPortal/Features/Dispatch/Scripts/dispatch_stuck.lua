-- Marks a dispatched job stuck (no result after every replay) with its audit entry. Only 'dispatched' becomes 'stuck':
-- a result (completed, failed) that came in meanwhile is final. Never creates the record.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set, KEYS[4] audit outbox
-- ARGV[1] outbox member, ARGV[2] now (ms), ARGV[3] audit entry json
-- Returns {'ok'} | {'gone'} | {'already', state}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone'}
end
local state = redis.call('HGET', KEYS[1], 'dispatch')
if state ~= 'dispatched' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'already', state or ''}
end
redis.call('HSET', KEYS[1], 'dispatch', 'stuck', 'stuckAt', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
return {'ok'}
