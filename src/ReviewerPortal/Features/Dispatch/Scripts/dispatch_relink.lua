-- Puts a release back in the set that carries it when Redis kept the record but lost the set's entry (a server restarted
-- on an append-only log that held only part of the step that wrote both). A record 'pending' belongs in the dispatch
-- outbox (due now: published), one 'dispatched' in the unacknowledged set (due when its result would have been: replayed
-- then). Any other record, or one already in its set, is left alone.
-- KEYS[1] the approval or job hash, KEYS[2] dispatch outbox set, KEYS[3] unacknowledged set, KEYS[4] audit outbox
-- ARGV[1] outbox member, ARGV[2] now (ms), ARGV[3] acknowledgement timeout (ms), ARGV[4] audit entry json
-- Returns {'relinked', state} | {'fine', state}
local state = redis.call('HGET', KEYS[1], 'dispatch')
local set = nil
local due = tonumber(ARGV[2])
if state == 'pending' then
  set = KEYS[2]
elseif state == 'dispatched' then
  set = KEYS[3]
  local at = tonumber(redis.call('HGET', KEYS[1], 'dispatchedAt') or '')
  if at then due = math.max(due, at + tonumber(ARGV[3])) end
end
if not set or redis.call('ZSCORE', set, ARGV[1]) then return {'fine', state or ''} end
redis.call('ZADD', set, due, ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[4])
return {'relinked', state}
