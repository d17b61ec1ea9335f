-- Publish the fleet's budget definitions as the next version, atomically.
-- KEYS[1]: the definitions hash (fields v, doc, at; no TTL: definitions outlive every window).
-- ARGV: document, expected version ('' to publish whatever is there), now_ms.
-- Returns {1, new version} or, when the stored version is not the expected one, {0, stored version}.
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'v', current + 1, 'doc', ARGV[1], 'at', ARGV[3])
return {1, current + 1}
