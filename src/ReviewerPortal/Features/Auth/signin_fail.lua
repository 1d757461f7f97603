-- Counts one failed sign-in in a window that starts with the first failure.
-- KEYS[1] the counter, ARGV[1] the window in milliseconds; returns the count so far.
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
