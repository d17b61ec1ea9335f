-- Forget the spend of every counter (a budget reset) while keeping what its live holds need.
--
-- Expired holds are purged first, as everywhere. A counter that still has live holds loses its spent
-- amounts ('su', 'st', requests made 'sq'), fired alert markers ('a:*') and per-model tallies ('m:*'); its live holds (the
-- zset, 'r:<id>', 'hu', 'ht', 'hq'), epoch, identity, last limits and tombstones stay, so calls and leases in
-- flight keep their capacity held and their settlements still apply exactly once, to the fresh spend. A
-- counter without live holds is deleted outright, as a reset does.
-- ARGV: now_ms, trim_before_ms, then per counter ttl_ms. Returns per counter 1 if it existed.
local now, trim = ARGV[1], ARGV[2]
local result = {}
for i = 1, #KEYS / 3 do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local existed = redis.call('EXISTS', h, z, t) > 0
  if existed then
    local expired = purge_live(h, z, t, now)
    redis.call('ZREMRANGEBYSCORE', t, '-inf', '(' .. trim)
    if redis.call('ZCARD', z) == 0 then
      redis.call('DEL', h, z, t)
    else
      local forget = {}
      for _, name in ipairs(redis.call('HKEYS', h)) do
        local prefix = string.sub(name, 1, 2)
        if name == 'su' or name == 'st' or name == 'sq' or prefix == 'a:' or prefix == 'm:' then
          forget[#forget + 1] = name
        end
      end
      -- In slices: unpack is bounded by Lua's stack.
      for first = 1, #forget, 1000 do
        redis.call('HDEL', h, unpack(forget, first, math.min(first + 999, #forget)))
      end
      if expired > 0 then
        touch_one(t, ARGV[2 + i])
      end
    end
  end
  result[i] = existed and 1 or 0
end
return result
