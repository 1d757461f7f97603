-- An approval and its tenant's settings revision, read together (a decision checks eligibility on both).
-- KEYS[1] the approval hash, KEYS[2] the tenant's settings hash
-- Returns {settings revision or '', the approval's field/value pairs}.
return {redis.call('HGET', KEYS[2], 'rev') or '', redis.call('HGETALL', KEYS[1])}
