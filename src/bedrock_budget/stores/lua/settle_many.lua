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
--   "s": [[id, mode ('s'/'c'), [[tally_field, value], ...],                            (one per settlement)
--          [[counter_index (1-based), usd, tokens, epoch ('' = unknown)], ...]], ...] }
--   "t": [[id, dedupe_key_index, dedupe_expire_at_ms, cost, [[field, value], ...],     (spend ledger:
--          [[member, [[zset_key_index, value_key_index, expire_at_ms], ...]], ...]], ...] } one per
--                                                                                      call and shard)
-- KEYS: three per counter, in counter order, then the spend ledger's keys (indexes are into all of KEYS).
-- Returns one string per spend, in order: "status spent_usd held_usd spent_tok held_tok live [fired ...]"
-- (one bulk string instead of nested arrays keeps the reply cheap to parse).
local now, trim = ARGV[1], ARGV[2]
local batch = cjson.decode(ARGV[3])
local counters = batch['c']
for c = 1, #counters do
  -- Expired holds give their capacity back once per batch: the clock does not move within it.
  local t = KEYS[3 * c]
  if purge_live(KEYS[3 * c - 2], KEYS[3 * c - 1], t, now) > 0 then
    touch_one(t, counters[c][1])
  end
  redis.call('ZREMRANGEBYSCORE', t, '-inf', '(' .. trim)
end

local result = {}
for _, settlement in ipairs(batch['s']) do
  local rid, mode, tallies = settlement[1], settlement[2], settlement[3]
  for _, spend in ipairs(settlement[4]) do
    local c, usd, tok, epoch = spend[1], spend[2], spend[3], spend[4]
    local h, z, t = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
    local counter = counters[c]
    local status, charge = settle_status(h, z, t, rid, mode, epoch)
    local fired = ''
    if status ~= 0 then
      -- Keys get their expiry when this script creates them; it is absolute, so existing keys keep theirs.
      if charge then
        redis.call('ZADD', t, now, 'd' .. rid)
        touch_one(t, counter[1])
      end
      if redis.call('HSETNX', h, 'meta', counter[2]) == 1 then
        touch_one(h, counter[1])
      end
      incr(h, 'su', usd)
      incr(h, 'st', tok)
      for _, pair in ipairs(tallies) do
        incr(h, pair[1], pair[2])
      end
    end
    local row = state(h, z)
    if status ~= 0 then
      for _, mark in ipairs(counter[3]) do
        local name, unit, threshold = mark[1], mark[2], mark[3]
        local delta, total = usd, row[1]
        if unit == 't' then
          delta, total = tok, row[3]
        end
        if delta ~= '0' and at_least(total, threshold) and redis.call('HSETNX', h, 'a:' .. name, now) == 1 then
          fired = fired .. ' ' .. name
        end
      end
    end
    result[#result + 1] = status .. ' ' .. table.concat(row, ' ') .. fired
  end
end

-- The spend ledger (see stores/tracking.py): each call once per shard's dedupe hash, whatever the
-- counters above said, so a call with no budget is tracked exactly once too.
for _, op in ipairs(batch['t'] or {}) do
  local dedupe = KEYS[op[2]]
  if redis.call('HSETNX', dedupe, op[1], '1') == 1 then
    redis.call('PEXPIREAT', dedupe, op[3])
    local cost, fields = op[4], op[5]
    for _, dim in ipairs(op[6]) do
      local value = dim[1]
      for _, bucket in ipairs(dim[2]) do
        local z, v = KEYS[bucket[1]], KEYS[bucket[2]]
        redis.call('ZINCRBY', z, cost, value)
        -- A bucket's keys expire at a time fixed by the bucket: set once, when a value first appears in it.
        if redis.call('HINCRBY', v, 'n', 1) == 1 then
          redis.call('PEXPIREAT', z, bucket[3])
          redis.call('PEXPIREAT', v, bucket[3])
        end
        for _, pair in ipairs(fields) do
          incr(v, pair[1], pair[2])
        end
      end
    end
  end
end
return result
