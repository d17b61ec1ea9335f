-- Drop one id's hold in every counter without charging.
-- ARGV: now_ms, id, trim_before_ms, then per counter ttl_ms. Returns per counter 1 if a hold was dropped.
local now, rid, trim = ARGV[1], ARGV[2], ARGV[3]
local result = {}
for i = 1, #KEYS / 3 do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(h, z, t, now, trim)
  local dropped = drop_hold(h, z, rid)
  -- A call released after its hold expired was not billed either: forget the late-settle tombstone.
  redis.call('ZREM', t, 'x' .. rid)
  touch(h, z, t, ARGV[3 + i])
  result[i] = dropped and 1 or 0
end
return result
