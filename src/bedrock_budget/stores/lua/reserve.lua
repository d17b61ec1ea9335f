-- Reserve one id against every counter, all or nothing.
--
-- Like settle_many.lua, the request travels as one JSON argument and the reply is one bulk string: redis-py
-- packs each separate argument and parses each reply element in Python, which cost more than the script.
-- ARGV: now_ms, deadline_ms, id, request = [[limit_usd ('' = none), limit_tokens ('' = none), usd, tokens,
--   enforce (1/0), ttl_ms, meta, refusal_mark_usd ('' = none), refusal_mark_tokens ('' = none)], ...]
--   (one per counter; amounts are JSON strings so they never pass through Lua's doubles).
-- KEYS: three per counter, in counter order.
-- Returns "granted repeated" and then one line per counter, the state before this hold:
--   "spent_usd held_usd spent_tok held_tok live refused_usd refused_tok epoch [fired ...]"
-- The epoch names the counter's data: a settle that finds neither its hold nor a tombstone tells a hold
-- that was settled already (same epoch) from one lost with the data (the key was recreated since).
-- A refusal mark (the 100% threshold of a refusing budget) fires once per counter when that unit refuses
-- a call that would fit the empty budget: spend of a block budget stops short of its limit, so crossing
-- it is seen as a refusal, not as spend.
local now, deadline, rid = ARGV[1], ARGV[2], ARGV[3]
local request = cjson.decode(ARGV[4])
local n = #request
local lines = {}

local function line(row, epoch, fired)
  return table.concat(row, ' ') .. ' ' .. epoch .. fired
end

if n > 0 and redis.call('ZSCORE', KEYS[2], rid) then
  -- A retry after a lost reply: the first attempt already holds everywhere.
  for i = 1, n do
    local h = KEYS[3 * i - 2]
    local row = state(h, KEYS[3 * i - 1])
    row[6] = 0
    row[7] = 0
    lines[i] = line(row, redis.call('HGET', h, 'e') or '-', '')
  end
  return '1 1\n' .. table.concat(lines, '\n')
end

local rows, found = {}, {}
local granted = 1
for i = 1, n do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local c = request[i]
  if purge_live(h, z, t, now) > 0 then
    touch_one(t, c[6])
  end
  local v = redis.call('HMGET', h, 'su', 'hu', 'st', 'ht', 'e', 'lu', 'lt')
  local row = {amount(v[1]), amount(v[2]), amount(v[3]), amount(v[4]), redis.call('ZCARD', z), 0, 0}
  if c[1] ~= '' and not fits(row[1], row[2], c[3], c[1]) then
    row[6] = 1
  end
  if c[2] ~= '' and not fits(row[3], row[4], c[4], c[2]) then
    row[7] = 1
  end
  if c[5] == 1 and (row[6] == 1 or row[7] == 1) then
    granted = 0
  end
  rows[i], found[i] = row, v
end

for i = 1, n do
  local h, z = KEYS[3 * i - 2], KEYS[3 * i - 1]
  local c, row, v = request[i], rows[i], found[i]
  local epoch, fired = v[5], ''
  if granted == 1 then
    if not epoch then
      -- First hold in this key's life: name its epoch, store the identity and set the expiry once.
      epoch = rid
      redis.call('HSET', h, 'e', rid, 'meta', c[7], 'lu', c[1], 'lt', c[2])
      touch_one(h, c[6])
    elseif v[6] ~= c[1] or v[7] ~= c[2] then
      -- The limits in force, for reports only: every check uses the limits passed in.
      redis.call('HSET', h, 'lu', c[1], 'lt', c[2])
    end
    incr(h, 'hu', c[3])
    incr(h, 'ht', c[4])
    redis.call('HSET', h, 'r:' .. rid, c[3] .. ' ' .. c[4])
    if redis.call('ZADD', z, deadline, rid) == 1 and row[5] == 0 then
      touch_one(z, c[6])
    end
  elseif c[5] == 1 then
    for unit = 1, 2 do
      local mark = c[7 + unit]
      if mark ~= '' and row[5 + unit] == 1 and fits('0', '0', c[2 + unit], c[unit])
          and redis.call('HSETNX', h, 'a:' .. mark, now) == 1 then
        touch_one(h, c[6])
        fired = fired .. ' ' .. mark
      end
    end
  end
  lines[i] = line(row, epoch or '-', fired)
end
return granted .. ' 0\n' .. table.concat(lines, '\n')
