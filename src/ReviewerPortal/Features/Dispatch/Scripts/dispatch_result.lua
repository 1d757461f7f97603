-- Records a worker's report on a dispatched job, once.
-- KEYS[1] the approval or job hash, KEYS[2] unacknowledged set, KEYS[3] audit outbox
-- ARGV[1] outbox member, ARGV[2] 'completed' | 'failed', ARGV[3] now (ms), ARGV[4] audit entry json, ARGV[5] detail
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local state = redis.call('HGET', KEYS[1], 'dispatch')
if state == 'completed' or state == 'failed' then return {'already', state} end
if state ~= 'dispatched' then return {'state', state or 'none'} end
redis.call('HSET', KEYS[1], 'dispatch', ARGV[2], 'resultAt', ARGV[3], 'resultDetail', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[4])
return {'ok'}
