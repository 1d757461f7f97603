-- Moves an approval from one state to another after checking, atomically, everything a decision depends on.
-- KEYS[1] approval hash, KEYS[2] 'from' state set, KEYS[3] 'to' state set, KEYS[4] timers set,
-- KEYS[5] audit outbox list, KEYS[6] tenant's current policy snapshot, KEYS[7] dispatch outbox set,
-- KEYS[8] notification outbox set, KEYS[9] notification bodies hash, KEYS[10] the approval's idempotency key
-- (it lives exactly as long as the approval: given the record's new ttl too)
-- ARGV[1] approval id, ARGV[2] expected state, ARGV[3] new state, ARGV[4] now (ms),
-- ARGV[5] mode: 'decide' (deadline must be ahead) | 'expire' (deadline must have passed) | 'update' (no deadline check),
-- ARGV[6] snapshot the caller saw ('' = not given), ARGV[7] job hash the caller saw ('' = not given),
-- ARGV[8] '1' = the tenant's current policy must still be the approval's snapshot,
-- ARGV[9] record ttl ms ('' = keep), ARGV[10] guard field ('' = none), ARGV[11] audit entry json,
-- ARGV[12] dispatch outbox member ('' = none: the job is not published), ARGV[13] the guard field's expected value,
-- ARGV[14] r = timers to remove, ARGV[15] a = timers to add, ARGV[16] n = notifications to send,
-- ARGV[17] the seq the caller read the approval at (the fence: a holder whose lock lapsed while another change
-- happened finds a newer seq and changes nothing), ARGV[18] '1' = answer the record as it now is (the caller's
-- response, without a read after the move), then r members, a pairs (due ms, member), n pairs (id, json), then field/value pairs to set
local cur = redis.call('HMGET', KEYS[1], 'state', 'expiresAt', 'policySnapshot', 'jobHash', 'createdAt', 'seq')
if not cur[1] then return {'not_found'} end
if cur[1] ~= ARGV[2] then return {'state', cur[1]} end
if tonumber(cur[6] or '0') ~= tonumber(ARGV[17]) then return {'stale', cur[6] or '0'} end
local now = tonumber(ARGV[4])
local deadline = tonumber(cur[2])
if ARGV[5] == 'expire' then
  if deadline > now then return {'not_due'} end
elseif ARGV[5] == 'decide' then
  if deadline <= now then return {'deadline_passed'} end
end
if ARGV[10] ~= '' then
  local seen = redis.call('HGET', KEYS[1], ARGV[10]) or ''
  if seen ~= ARGV[13] then return {'stale', seen} end
end
if ARGV[7] ~= '' and ARGV[7] ~= cur[4] then return {'job_changed', cur[4]} end
if ARGV[6] ~= '' and ARGV[6] ~= cur[3] then return {'snapshot_changed', cur[3]} end
if ARGV[8] == '1' then
  local current = redis.call('GET', KEYS[6])
  if current ~= cur[3] then return {'snapshot_changed', current or ''} end
end
local r = tonumber(ARGV[14])
local a = tonumber(ARGV[15])
local n = tonumber(ARGV[16])
local i = 19
local seq = tonumber(cur[6] or '0') + 1
local fields = {'state', ARGV[3], 'seq', tostring(seq)}
if ARGV[12] ~= '' then
  -- The release is written with the state, in one command: Garnet logs a script's writes one by one, and a server
  -- restarted on its append-only log must not come back with an approved record that lacks its release.
  fields[#fields + 1] = 'dispatch'; fields[#fields + 1] = 'pending'
  fields[#fields + 1] = 'approvalGranted'; fields[#fields + 1] = 'true'
end
for j = i + r + 2 * a + 2 * n, #ARGV do fields[#fields + 1] = ARGV[j] end
redis.call('HSET', KEYS[1], unpack(fields))
if KEYS[2] ~= KEYS[3] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], cur[5], ARGV[1])
end
-- The timers it clears (deadline, step, resubmission window) go in one ZREM.
if r > 0 then redis.call('ZREM', KEYS[4], unpack(ARGV, i, i + r - 1)); i = i + r end
for j = 1, a do redis.call('ZADD', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
for j = 1, n do
  redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[8], now, ARGV[i])
  i = i + 2
end
if ARGV[9] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  redis.call('PEXPIRE', KEYS[10], ARGV[9])
end
if ARGV[12] ~= '' then
  -- The dispatcher reads the outbox; an entry a restart lost is put back by the reconciler (ReleaseRepair).
  redis.call('ZADD', KEYS[7], now, ARGV[12])
end
redis.call('LPUSH', KEYS[5], ARGV[11])
if ARGV[18] == '1' then return {'ok', tostring(seq), redis.call('HGETALL', KEYS[1])} end
return {'ok', tostring(seq)}
