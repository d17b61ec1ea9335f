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
--          [[counter_index (1-based), usd, tokens, epoch ('' = unknown)[, requests]], ...]], ...] }
--   "w": [[dedupe_key_index, dedupe_expire_at_ms,                                       (spend ledger
--          [[member, [[zset_key, value_key, expire_at_ms], ...]], ...]], ...]            layouts)
--   "t": [[id, [layout_index (1-based), ...], [[field, value], ...][, calls]], ...] }   (one per entry: a
--          call, or the calls of a lease summed; calls defaults to 1)
-- KEYS: three per counter, in counter order, then the spend ledger's keys (indexes are into all of KEYS).
-- Returns one string per spend, in order: "status spent_usd held_usd spent_tok held_tok live [spent_req
-- held_req] [fired ...]" (the request columns only for a spend that counts requests, i.e. one of a counter
-- with a request limit; a unit of a threshold is 'u' USD, 't' tokens or 'r' requests)
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
    local c, usd, tok, epoch, req = spend[1], spend[2], spend[3], spend[4], spend[5]
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
      if req then
        incr(h, 'sq', req)
      end
      for _, pair in ipairs(tallies) do
        incr(h, pair[1], pair[2])
      end
    end
    local row, extra = state_and_requests(h, z, req)
    if status ~= 0 then
      for _, mark in ipairs(counter[3]) do
        local name, unit, threshold = mark[1], mark[2], mark[3]
        local delta, total = usd, row[1]
        if unit == 't' then
          delta, total = tok, row[3]
        elseif unit == 'r' then
          delta, total = req or '0', string.match(extra, '^ (%S+)') or '0'
        end
        if delta ~= '0' and at_least(total, threshold) and redis.call('HSETNX', h, 'a:' .. name, now) == 1 then
          fired = fired .. ' ' .. name
        end
      end
    end
    result[#result + 1] = status .. ' ' .. table.concat(row, ' ') .. extra .. fired
  end
end

-- The spend ledger (see stores/tracking.py): each call once, whatever the counters above said, so a call
-- with no budget is tracked exactly once too. A call's writes in this script are applied together, so
-- one field in the dedupe hash of its first shard here covers them all. The calls found new are summed
-- twice over before anything is written: first per group of calls with the same places (a batch often
-- carries many calls of the same user, app, model and hour, and each call's fields are then added once,
-- not once per value hash it touches), then each group into the value hashes of its places; then each
-- hash and sorted set is written once. Sums are kept in 10^9 limbs whose low limb is carried only at the
-- end: a low limb grows by less than 10^9 a call, so it stays exact in a double for millions of calls,
-- far more than a batch. A layout names its sorted sets and hashes as strings rather than KEYS: they carry
-- the hash tag of the shard's dedupe key, which is in KEYS, so they are in its slot.
local layouts = batch['w'] or {}
local function add_fields(into, names, hi, lo)
  for _, name in ipairs(names) do
    if not into.lo[name] then
      into.names[#into.names + 1] = name
      into.hi[name], into.lo[name] = hi[name], lo[name]
    else
      into.hi[name] = into.hi[name] + hi[name]
      into.lo[name] = into.lo[name] + lo[name]
    end
  end
end
local groups, group_order, expiring = {}, {}, {}
for _, op in ipairs(batch['t'] or {}) do
  local places = op[2]
  local first = layouts[places[1]]
  local dedupe = KEYS[first[1]]
  if redis.call('HSETNX', dedupe, op[1], '1') == 1 then
    if not expiring[dedupe] then
      expiring[dedupe] = true
      redis.call('PEXPIREAT', dedupe, first[2])
    end
    local signature = table.concat(places, ',')
    local group = groups[signature]
    if not group then
      group = {places = places, n = 0, names = {}, hi = {}, lo = {}}
      groups[signature] = group
      group_order[#group_order + 1] = signature
    end
    group.n = group.n + (op[4] or 1)
    for _, pair in ipairs(op[3]) do
      local name = pair[1]
      local hi, lo = split(pair[2])
      if not group.lo[name] then
        group.names[#group.names + 1] = name
        group.hi[name], group.lo[name] = hi, lo
      else
        group.hi[name] = group.hi[name] + hi
        group.lo[name] = group.lo[name] + lo
      end
    end
  end
end
local sums, order = {}, {}
for _, signature in ipairs(group_order) do
  local group = groups[signature]
  for _, place in ipairs(group.places) do
    for _, dim in ipairs(layouts[place][3]) do
      for _, bucket in ipairs(dim[2]) do
        local v = bucket[2]
        local sum = sums[v]
        if not sum then
          sum = {z = bucket[1], member = dim[1], at = bucket[3], n = 0, names = {}, hi = {}, lo = {}}
          sums[v] = sum
          order[#order + 1] = v
        end
        sum.n = sum.n + group.n
        add_fields(sum, group.names, group.hi, group.lo)
      end
    end
  end
end
for _, v in ipairs(order) do
  local sum = sums[v]
  local key, z = v, sum.z
  local cost = '0'
  local totals = {}
  for _, name in ipairs(sum.names) do
    local lo = sum.lo[name]
    local carry = math.floor(lo / LIMB)
    local hi = sum.hi[name] + carry
    lo = lo - carry * LIMB
    local total = hi > 0 and string.format('%d%09d', hi, lo) or string.format('%d', lo)
    totals[#totals + 1] = {name, total}
    if name == 'c' then
      cost = total
    end
  end
  redis.call('ZINCRBY', z, cost, sum.member)
  -- A bucket's keys expire at a time fixed by the bucket: set once, when a value first appears in it.
  if redis.call('HINCRBY', key, 'n', sum.n) == sum.n then
    redis.call('PEXPIREAT', z, sum.at)
    redis.call('PEXPIREAT', key, sum.at)
  end
  for _, pair in ipairs(totals) do
    incr(key, pair[1], pair[2])
  end
end
return result
