-- Adds a policy version exported from another deployment, unless the destination has it already: its document,
-- a history entry (numbered by the destination), and, for the version current at the source, the current pointer.
-- KEYS[1] current snapshot, KEYS[2] version document hash, KEYS[3] history list, KEYS[4] version counter,
-- KEYS[5] audit outbox list
-- ARGV[1] snapshot, ARGV[2] history entry tail ('snapshot|ms|by'), ARGV[3] '1' = make it current,
-- ARGV[4] audit entry json, ARGV[5..] field/value pairs of the version
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
local version = redis.call('INCR', KEYS[4])
local fields = {'version', tostring(version)}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('RPUSH', KEYS[3], tostring(version) .. '|' .. ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('LPUSH', KEYS[5], ARGV[4])
return {'ok', tostring(version)}
