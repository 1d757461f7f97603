-- Sets fields of a hash and records the audit entry, atomically.
-- KEYS[1] hash, KEYS[2] audit outbox list. ARGV[1] audit entry json, ARGV[2..] field/value pairs
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('LPUSH', KEYS[2], ARGV[1])
return {'ok'}
