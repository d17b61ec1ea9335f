-- Settle (mode 's') or charge (mode 'c') one id in every counter, exactly once per counter.
-- ARGV: now_ms, id, trim_before_ms, mode, tally_prefix ('' = none), tally_count, tally pairs
--   (field, value) ..., then per counter: usd, tokens, ttl_ms, meta, mark_count, marks (name, unit, amount)
-- Returns per counter {status, row, fired}; status 0 noop, 1 settled, 2 late (hold had expired),
-- 3 charged (unknown id, charge mode).
local now, rid, trim, mode, tally = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local tallies = tonumber(ARGV[6])
local a = 6 + 2 * tallies
local result = {}

for i = 1, #KEYS / 3 do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local usd, tok, ttl, meta = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local marks = tonumber(ARGV[a + 5])
  purge(h, z, t, now, trim)
  local status = 0
  if drop_hold(h, z, rid) then
    status = 1
  elseif redis.call('ZREM', t, 'x' .. rid) == 1 then
    status = 2
  elseif mode == 'c' and not redis.call('ZSCORE', t, 'd' .. rid) then
    status = 3
  end
  local fired = {}
  if status ~= 0 then
    if mode == 'c' then
      redis.call('ZADD', t, now, 'd' .. rid)
    end
    redis.call('HSETNX', h, 'meta', meta)
    incr(h, 'su', usd)
    incr(h, 'st', tok)
    if tally ~= '' then
      for j = 1, tallies do
        incr(h, tally .. ARGV[5 + 2 * j], ARGV[6 + 2 * j])
      end
    end
    if marks > 0 then
      local spent = redis.call('HMGET', h, 'su', 'st')
      for j = 1, marks do
        local m = a + 5 + 3 * (j - 1)
        local name, unit, threshold = ARGV[m + 1], ARGV[m + 2], ARGV[m + 3]
        local delta, total = usd, amount(spent[1])
        if unit == 't' then
          delta, total = tok, amount(spent[2])
        end
        if delta ~= '0' and at_least(total, threshold) and redis.call('HSETNX', h, 'a:' .. name, now) == 1 then
          fired[#fired + 1] = name
        end
      end
    end
  end
  touch(h, z, t, ttl)
  result[i] = {status, state(h, z), fired}
  a = a + 5 + 3 * marks
end
return result
