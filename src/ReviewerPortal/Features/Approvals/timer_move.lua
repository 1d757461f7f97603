-- Moves or removes one timer, but only while it is still due when the caller saw it (a fenced timer write: a
-- holder whose lock lapsed, or who read the timer before it was rescheduled, changes nothing).
-- KEYS[1] timers sorted set
-- ARGV[1] member, ARGV[2] the due time (ms) the caller saw, ARGV[3] new due time (ms), '' = remove the timer
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
