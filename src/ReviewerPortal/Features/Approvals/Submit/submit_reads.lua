-- What a submit reads before the policy decides, in one round trip (the keys share the tenant's slot).
-- KEYS[1] the idempotency key, KEYS[2] the tenant's settings hash, KEYS[3] its current policy pointer
-- Returns {idempotency record, settings revision, current policy snapshot}, '' for each that is missing.
return {
  redis.call('GET', KEYS[1]) or '',
  redis.call('HGET', KEYS[2], 'rev') or '',
  redis.call('GET', KEYS[3]) or '',
}
