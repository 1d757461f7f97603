-- Publishes a policy version: stores the document, makes it current and appends it to the history, atomically.
-- KEYS[1] current snapshot, KEYS[2] version document hash, KEYS[3] history list, KEYS[4] version counter,
-- KEYS[5] audit outbox list
-- ARGV[1] snapshot, ARGV[2] history entry, ARGV[3] audit entry json, ARGV[4] the current snapshot the change was made
-- from ('' = any: a whole new policy; otherwise a read-modify-publish that must not overwrite a version published since),
-- ARGV[5..] field/value pairs of the version
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return {'unchanged'} end
if ARGV[4] ~= '' and current ~= ARGV[4] then return {'stale', current or ''} end
local version = redis.call('INCR', KEYS[4])
local fields = {'version', tostring(version)}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], unpack(fields))
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], tostring(version) .. '|' .. ARGV[2])
redis.call('LPUSH', KEYS[5], ARGV[3])
return {'ok', tostring(version)}
