-- Shared helpers, prepended to every script at load time.
--
-- Amounts travel as decimal strings and are only ever added by HINCRBY, which is exact in int64.
-- Comparisons split values into 10^9 limbs because Lua numbers are doubles (exact only below 2^53).
-- Each counter owns three keys passed in KEYS as (hash, live zset, tombstone zset).

local LIMB = 1000000000

local function amount(value)
  if not value or string.sub(value, 1, 1) == '-' then
    return '0'
  end
  return value
end

local function split(s)
  local n = #s
  if n <= 9 then
    return 0, tonumber(s)
  end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end

-- a + b + c <= limit
local function fits(a, b, c, limit)
  local ha, la = split(a)
  local hb, lb = split(b)
  local hc, lc = split(c)
  local hl, ll = split(limit)
  local lo = la + lb + lc
  local carry = math.floor(lo / LIMB)
  lo = lo - carry * LIMB
  local hi = ha + hb + hc + carry
  return hi < hl or (hi == hl and lo <= ll)
end

-- a >= b
local function at_least(a, b)
  local ha, la = split(a)
  local hb, lb = split(b)
  return ha > hb or (ha == hb and la >= lb)
end

local function incr(h, field, value)
  if value ~= '0' then
    redis.call('HINCRBY', h, field, value)
  end
end

local function decr(h, field, value)
  if value ~= '0' then
    redis.call('HINCRBY', h, field, '-' .. value)
  end
end

-- The requests a stored hold keeps under a request limit (its ' q<n>' part), or nil.
local function held_requests(hold)
  return string.match(hold, ' q(%d+)$')
end

-- Drop one reservation's hold; true when it was live.
local function drop_hold(h, z, rid)
  if redis.call('ZREM', z, rid) == 0 then
    return false
  end
  local hold = redis.call('HGET', h, 'r:' .. rid)
  if hold then
    local usd, tok = string.match(hold, '^(%S+) (%S+)')
    decr(h, 'hu', usd)
    decr(h, 'ht', tok)
    local requests = held_requests(hold)
    if requests then
      decr(h, 'hq', requests)
    end
    redis.call('HDEL', h, 'r:' .. rid)
  end
  return true
end

-- Expired reservations give their hold back and leave an 'x' tombstone, so a late settle is still
-- charged once; a hold stored as "usd tok c" (charge on expiry) is charged its held amounts instead and
-- leaves the 'd' marker of a charged id, so a later settle is a no-op (its held requests, ' q<n>' at the
-- end of the stored hold, are given back or counted as made alike). Returns how many expired (the
-- caller sets the tombstone key's expiry when it wrote one).
local function purge_live(h, z, t, now)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, rid in ipairs(expired) do
    local hold = redis.call('HGET', h, 'r:' .. rid)
    drop_hold(h, z, rid)
    local usd, tok, charge = nil, nil, nil
    if hold then
      usd, tok, charge = string.match(hold, '^(%S+) (%S+) ?(%S*)')
    end
    if charge == 'c' then
      incr(h, 'su', usd)
      incr(h, 'st', tok)
      local requests = held_requests(hold)
      if requests then
        incr(h, 'sq', requests)
      end
      redis.call('ZADD', t, now, 'd' .. rid)
    else
      redis.call('ZADD', t, now, 'x' .. rid)
    end
  end
  return #expired
end

-- purge_live, and old tombstones are trimmed.
local function purge(h, z, t, now, trim_before)
  purge_live(h, z, t, now)
  redis.call('ZREMRANGEBYSCORE', t, '-inf', '(' .. trim_before)
end

local function touch_one(key, ttl)
  if ttl ~= '0' then
    redis.call('PEXPIRE', key, ttl)
  end
end

local function touch(h, z, t, ttl)
  touch_one(h, ttl)
  touch_one(z, ttl)
  touch_one(t, ttl)
end

-- How a settlement applies to one counter: 1 settled (its hold was live), 2 late (the hold had expired),
-- 3 charged, 0 nothing to do. Charged is an id without hold or tombstone that charge mode (spend journalled
-- during an outage) or a changed epoch vouches for: the counter's data was lost since the reservation (a
-- restart without persistence, a failover), so the hold vanished unsettled. The 'd' marker that a charge
-- leaves makes it happen once. Returns the status and whether the marker must be written.
local function settle_status(h, z, t, rid, mode, epoch)
  if drop_hold(h, z, rid) then
    return 1, mode == 'c'
  end
  if redis.call('ZREM', t, 'x' .. rid) == 1 then
    return 2, mode == 'c'
  end
  local vouched = mode == 'c' or (epoch ~= '' and redis.call('HGET', h, 'e') ~= epoch)
  if vouched and not redis.call('ZSCORE', t, 'd' .. rid) then
    return 3, true
  end
  return 0, false
end

-- A counter's requests made and held, as the columns replies add for a counter with a request limit.
local function request_columns(h)
  local v = redis.call('HMGET', h, 'sq', 'hq')
  return ' ' .. amount(v[1]) .. ' ' .. amount(v[2])
end

local function state(h, z)
  local v = redis.call('HMGET', h, 'su', 'hu', 'st', 'ht')
  return {amount(v[1]), amount(v[2]), amount(v[3]), amount(v[4]), redis.call('ZCARD', z)}
end

-- state(), and the request columns ('' unless with_requests) read with it.
local function state_and_requests(h, z, with_requests)
  if not with_requests then
    return state(h, z), ''
  end
  local v = redis.call('HMGET', h, 'su', 'hu', 'st', 'ht', 'sq', 'hq')
  local row = {amount(v[1]), amount(v[2]), amount(v[3]), amount(v[4]), redis.call('ZCARD', z)}
  return row, ' ' .. amount(v[5]) .. ' ' .. amount(v[6])
end
