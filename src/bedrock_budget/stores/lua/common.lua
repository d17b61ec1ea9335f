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

-- Drop one reservation's hold; true when it was live.
local function drop_hold(h, z, rid)
  if not redis.call('ZSCORE', z, rid) then
    return false
  end
  local hold = redis.call('HGET', h, 'r:' .. rid)
  if hold then
    local sep = string.find(hold, ' ', 1, true)
    decr(h, 'hu', string.sub(hold, 1, sep - 1))
    decr(h, 'ht', string.sub(hold, sep + 1))
    redis.call('HDEL', h, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
  return true
end

-- Expired reservations give their hold back and leave an 'x' tombstone, so a late settle is still
-- charged once; old tombstones are trimmed.
local function purge(h, z, t, now, trim_before)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, rid in ipairs(expired) do
    drop_hold(h, z, rid)
    redis.call('ZADD', t, now, 'x' .. rid)
  end
  redis.call('ZREMRANGEBYSCORE', t, '-inf', '(' .. trim_before)
end

local function touch(h, z, t, ttl)
  if ttl ~= '0' then
    redis.call('PEXPIRE', h, ttl)
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', t, ttl)
  end
end

local function state(h, z)
  local v = redis.call('HMGET', h, 'su', 'hu', 'st', 'ht')
  return {amount(v[1]), amount(v[2]), amount(v[3]), amount(v[4]), redis.call('ZCARD', z)}
end
