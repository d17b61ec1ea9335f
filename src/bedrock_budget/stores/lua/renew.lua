-- Move the deadline of live holds later (never earlier), so a call longer than the reservation TTL keeps
-- its hold. Expired holds are purged first, as everywhere, so an expired hold is never revived: it keeps
-- its 'x' tombstone and a late settlement is charged once, as before.
-- ARGV: now_ms, deadline_ms, request = [[ttl_ms, [id, ...]], ...] (one per counter, in counter order).
-- KEYS: three per counter. Returns one character per id, in order: '1' renewed (live), '0' not live.
local now, deadline = ARGV[1], tonumber(ARGV[2])
local request = cjson.decode(ARGV[3])
local result = {}
for i = 1, #request do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local ttl, ids = request[i][1], request[i][2]
  if purge_live(h, z, t, now) > 0 then
    touch_one(t, ttl)
  end
  for _, rid in ipairs(ids) do
    local current = redis.call('ZSCORE', z, rid)
    if current then
      -- Epoch milliseconds stay far below 2^53, so the comparison is exact in Lua's doubles.
      if tonumber(current) < deadline then
        redis.call('ZADD', z, deadline, rid)
      end
      result[#result + 1] = '1'
    else
      result[#result + 1] = '0'
    end
  end
end
return table.concat(result)
