-- Recreates an approval exported from another deployment (same id, hashes, deadlines, seq), with its indexes,
-- timers, job index entries, idempotency key and audit entry, atomically; never over a record that exists.
-- KEYS[1] approval hash, KEYS[2] idempotency key, KEYS[3] audit outbox list, KEYS[4] the state's sorted set,
-- KEYS[5] timers set, KEYS[6] the tenant's job index hash (all under the tenant's hash tag)
-- ARGV[1] approval id, ARGV[2] idempotency value ('' = none), ARGV[3] record ttl ms, ARGV[4] audit entry json,
-- ARGV[5] state set score (created ms), ARGV[6] t = timers, then t pairs (due ms, member),
-- then j = job index entries, then j pairs (job id, member), then field/value pairs
local cur = redis.call('HMGET', KEYS[1], 'state', 'seq')
if cur[1] then return {'exists', cur[1], cur[2] or '0'} end
if ARGV[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing and existing ~= ARGV[2] then return {'key_taken', existing} end
end
local t = tonumber(ARGV[6])
local j = tonumber(ARGV[7 + 2 * t])
local first = 8 + 2 * t + 2 * j
local fields = {}
for i = first, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
for i = 0, t - 1 do redis.call('ZADD', KEYS[5], ARGV[7 + 2 * i], ARGV[8 + 2 * i]) end
for i = 0, j - 1 do redis.call('HSET', KEYS[6], ARGV[8 + 2 * t + 2 * i], ARGV[9 + 2 * t + 2 * i]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
redis.call('LPUSH', KEYS[3], ARGV[4])
return {'ok'}
