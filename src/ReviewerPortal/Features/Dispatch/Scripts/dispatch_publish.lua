-- Marks one job as dispatched (pushing it onto a Redis sink list in the same step), exactly once.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set, KEYS[4] audit outbox,
-- KEYS[5] sink list (used only when ARGV[5] is not empty)
-- ARGV[1] outbox member, ARGV[2] now (ms), ARGV[3] acknowledgement deadline (ms), ARGV[4] audit entry json,
-- ARGV[5] message to push ('' = delivered elsewhere, e.g. a webhook that answered 2xx), ARGV[6] '1' = a replay
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone'}
end
local state = redis.call('HGET', KEYS[1], 'dispatch')
if ARGV[6] == '1' then
  if state ~= 'dispatched' then
    redis.call('ZREM', KEYS[3], ARGV[1])
    return {'already', state or ''}
  end
elseif state ~= 'pending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'already', state or ''}
end
if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[5], ARGV[5]) end
redis.call('HSET', KEYS[1], 'dispatch', 'dispatched', 'dispatchedAt', ARGV[2])
local count = redis.call('HINCRBY', KEYS[1], 'dispatchCount', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[4])
return {'ok', tostring(count)}
