-- Creates a record (hash) with its job index entry, its index entries, its notifications and its audit entry, atomically.
-- KEYS[1] record hash, KEYS[2] idempotency key, KEYS[3] audit outbox list, KEYS[4] the tenant's job index hash,
-- KEYS[5..4+n] sorted sets to index it in, KEYS[5+n] notification outbox set and KEYS[6+n] notification bodies hash (when m > 0)
-- ARGV[1] idempotency value ('' = none), ARGV[2] idempotency ttl ms, ARGV[3] audit entry json,
-- ARGV[4] record ttl ms, ARGV[5] job id and ARGV[6] what it points to (the job index entry),
-- ARGV[7] n = number of sorted sets, then n pairs (score, member),
-- then m = number of notifications, then m triples (due ms, id, json), then field/value pairs
if ARGV[1] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'duplicate', existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local n = tonumber(ARGV[7])
local m = tonumber(ARGV[8 + 2 * n])
local first = 9 + 2 * n + 3 * m
local fields = {}
for i = first, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
for i = 1, n do
  redis.call('ZADD', KEYS[4 + i], ARGV[6 + 2 * i], ARGV[7 + 2 * i])
end
for i = 1, m do
  local at = 9 + 2 * n + 3 * (i - 1)
  redis.call('HSET', KEYS[6 + n], ARGV[at + 1], ARGV[at + 2])
  redis.call('ZADD', KEYS[5 + n], ARGV[at], ARGV[at + 1])
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
redis.call('LPUSH', KEYS[3], ARGV[3])
return {'ok'}
