-- Recreates a case exported from another deployment (same id, seq, deadlines), with its timer, index entry,
-- idempotency key and audit entry, atomically; never over a case that exists.
-- KEYS[1] case hash, KEYS[2] timers set, KEYS[3] audit outbox list, KEYS[4] cases index set, KEYS[5] idempotency key
-- ARGV[1] seq, ARGV[2] state, ARGV[3] case json, ARGV[4] audit entry json, ARGV[5] timer member,
-- ARGV[6] timer due ms ('' = none), ARGV[7] case id, ARGV[8] index score (opened ms),
-- ARGV[9] idempotency value ('' = none), ARGV[10] idempotency ttl ms
local state = redis.call('HGET', KEYS[1], 'state')
if state then return {'exists', state} end
if ARGV[9] ~= '' then
  local existing = redis.call('GET', KEYS[5])
  if existing and existing ~= ARGV[9] then return {'key_taken', existing} end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'state', ARGV[2], 'data', ARGV[3])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5]) end
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7])
if ARGV[9] ~= '' then redis.call('SET', KEYS[5], ARGV[9], 'PX', ARGV[10]) end
redis.call('LPUSH', KEYS[3], ARGV[4])
return {'ok'}
