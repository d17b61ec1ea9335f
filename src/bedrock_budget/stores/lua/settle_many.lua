-- Settle (mode 's') or charge (mode 'c') reservations, exactly once per counter (statuses: see
-- settle_status in common.lua), so a batch that is retried after a lost reply changes nothing twice. A
-- single settlement is a batch of one.
--
-- The batch travels as one JSON argument: redis-py spends microseconds packing every separate argument in
-- Python, while cjson decodes the whole batch in C. A batch usually settles many calls against the same few
-- counters, so each counter is listed once and spends refer to it by index. Amounts are JSON strings, so
-- they never pass through Lua's doubles.
-- ARGV: now_ms, trim_before_ms, batch = {
--   "c": [[ttl_ms, meta, [[mark_name, unit, amount], ...]], ...]                       (one per counter)
--   "s": [[id, mode ('s'/'c'), tally_prefix ('' = none), [[field, value], ...],       (one per settlement)
--          [[counter_index (1-based), usd, tokens, epoch ('' = unknown)], ...]], ...] }
-- KEYS: three per counter, in counter order.
-- Returns one string per spend, in order: "status spent_usd held_usd spent_tok held_tok live [fired ...]"
-- (one bulk string instead of nested arrays keeps the reply cheap to parse).
local now, trim = ARGV[1], ARGV[2]
local batch = cjson.decode(ARGV[3])
local counters = batch['c']
for c = 1, #counters do
  -- Expired holds give their capacity back once per batch: the clock does not move within it.
  purge(KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c], now, trim)
end

local result = {}
for _, settlement in ipairs(batch['s']) do
  local rid, mode, tally, tallies = settlement[1], settlement[2], settlement[3], settlement[4]
  for _, spend in ipairs(settlement[5]) do
    local c, usd, tok, epoch = spend[1], spend[2], spend[3], spend[4]
    local h, z, t = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
    local counter = counters[c]
    local status, charge = settle_status(h, z, t, rid, mode, epoch)
    local fired = ''
    if status ~= 0 then
      if charge then
        redis.call('ZADD', t, now, 'd' .. rid)
      end
      redis.call('HSETNX', h, 'meta', counter[2])
      incr(h, 'su', usd)
      incr(h, 'st', tok)
      if tally ~= '' then
        for _, pair in ipairs(tallies) do
          incr(h, tally .. pair[1], pair[2])
        end
      end
      local marks = counter[3]
      if #marks > 0 then
        local spent = redis.call('HMGET', h, 'su', 'st')
        for _, mark in ipairs(marks) do
          local name, unit, threshold = mark[1], mark[2], mark[3]
          local delta, total = usd, amount(spent[1])
          if unit == 't' then
            delta, total = tok, amount(spent[2])
          end
          if delta ~= '0' and at_least(total, threshold) and redis.call('HSETNX', h, 'a:' .. name, now) == 1 then
            fired = fired .. ' ' .. name
          end
        end
      end
    end
    result[#result + 1] = status .. ' ' .. table.concat(state(h, z), ' ') .. fired
  end
end

for c = 1, #counters do
  touch(KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c], counters[c][1])
end
return result
