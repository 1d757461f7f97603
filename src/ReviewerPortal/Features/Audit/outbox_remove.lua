-- Removes entries whose rows are committed from one tenant's audit outbox, in one step for the whole batch.
-- KEYS[1] the audit outbox list; ARGV the entries' JSON, as pushed
for i = 1, #ARGV do
  redis.call('LREM', KEYS[1], 0, ARGV[i])
end
return #ARGV
