-- Creates a record (hash) with its index entries and its audit entry, atomically.
-- KEYS[1] record hash, KEYS[2] idempotency key, KEYS[3] audit outbox list, KEYS[4..] sorted sets to index it in
-- ARGV[1] idempotency value ('' = none), ARGV[2] idempotency ttl ms, ARGV[3] audit entry json,
-- ARGV[4] record ttl ms, ARGV[5] n = number of sorted sets, then n pairs (score, member), then field/value pairs
if ARGV[1] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'duplicate', existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local n = tonumber(ARGV[5])
local first = 6 + 2 * n
local fields = {}
for i = first, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
for i = 1, n do
  redis.call('ZADD', KEYS[3 + i], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
redis.call('LPUSH', KEYS[3], ARGV[3])
return {'ok'}
