-- Current state of every counter, after purging expired holds.
-- ARGV: now_ms, trim_before_ms. Returns per counter {row, meta or '', tallies, alert markers, last limits
-- and request counts as a flat list of field, value}.
local now, trim = ARGV[1], ARGV[2]
local result = {}
for i = 1, #KEYS / 3 do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(h, z, t, now, trim)
  local extra = {}
  local all = redis.call('HGETALL', h)
  for j = 1, #all, 2 do
    local prefix = string.sub(all[j], 1, 2)
    local name = all[j]
    if prefix == 'm:' or prefix == 'a:' or name == 'lu' or name == 'lt' or name == 'lq' or name == 'sq'
        or name == 'hq' then
      extra[#extra + 1] = all[j]
      extra[#extra + 1] = all[j + 1]
    end
  end
  result[i] = {state(h, z), redis.call('HGET', h, 'meta') or '', extra}
end
return result
