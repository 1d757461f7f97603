-- Creates or moves a case, with its timer, notifications, index entry and audit entry, atomically.
-- KEYS[1] case hash, KEYS[2] timers set, KEYS[3] audit outbox list, KEYS[4] notification outbox set,
-- KEYS[5] notification bodies hash, KEYS[6] cases index set, KEYS[7] idempotency key
-- ARGV[1] expected seq ('' = the case must not exist yet), ARGV[2] state, ARGV[3] case json, ARGV[4] audit entry json,
-- ARGV[5] timer member, ARGV[6] timer due ms ('' = remove the timer), ARGV[7] now ms, ARGV[8] case id,
-- ARGV[9] index score, ARGV[10] idempotency value ('' = none), ARGV[11] idempotency ttl ms,
-- ARGV[12] n = notifications, then n pairs (id, json)
local seq = redis.call('HGET', KEYS[1], 'seq')
if ARGV[1] == '' then
  if ARGV[10] ~= '' then
    local existing = redis.call('GET', KEYS[7])
    if existing then return {'duplicate', existing} end
  end
  if seq then return {'exists'} end
elseif seq ~= ARGV[1] then
  return {'stale', seq or ''}
end
local next = tostring(tonumber(seq or '0') + 1)
redis.call('HSET', KEYS[1], 'seq', next, 'state', ARGV[2], 'data', ARGV[3])
if ARGV[6] == '' then redis.call('ZREM', KEYS[2], ARGV[5]) else redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5]) end
redis.call('ZADD', KEYS[6], ARGV[9], ARGV[8])
if ARGV[1] == '' and ARGV[10] ~= '' then redis.call('SET', KEYS[7], ARGV[10], 'PX', ARGV[11]) end
local n = tonumber(ARGV[12])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[5], ARGV[13 + 2 * i], ARGV[14 + 2 * i])
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[13 + 2 * i])
end
redis.call('LPUSH', KEYS[3], ARGV[4])
return {'ok', next}
