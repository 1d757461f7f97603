-- Takes a member whose record is gone (its TTL ran out) out of both sets; a record that exists is left alone.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set, KEYS[4] audit outbox
-- ARGV[1] outbox member, ARGV[2] audit entry json (dispatch_lost)
-- Returns {'gone'} | {'exists'}
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[2])
return {'gone'}
