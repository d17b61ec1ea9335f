-- Reserve one id against every counter, all or nothing.
--
-- Like settle_many.lua, the request travels as one JSON argument and the reply is one bulk string: redis-py
-- packs each separate argument and parses each reply element in Python, which cost more than the script.
-- ARGV: now_ms, deadline_ms, id, request = [[limit_usd ('' = none), limit_tokens ('' = none), enforce (1/0),
--   meta, refusal_mark_usd ('' = none), refusal_mark_tokens ('' = none), usd, tokens, ttl_ms,
--   charge_on_expiry (1/0), then only for a counter with a request limit: limit_requests,
--   refusal_mark_requests ('' = none), requests], ...]
--   (one per counter, the parts that change per call last; amounts are JSON strings so they never pass
--   through Lua's doubles).
-- KEYS: three per counter, in counter order.
-- Returns "granted repeated" and then one line per counter, the state before this hold:
--   "spent_usd held_usd spent_tok held_tok live refused_usd refused_tok epoch [spent_req held_req
--   refused_req] [fired ...]" (the request columns only for a counter with a request limit).
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
    local extra = ''
    if request[i][11] then
      extra = request_columns(h) .. ' 0'
    end
    lines[i] = line(row, redis.call('HGET', h, 'e') or '-', extra)
  end
  return '1 1\n' .. table.concat(lines, '\n')
end

-- Fields of a counter's request: the limit, refusal mark and amount of unit u (1 USD, 2 tokens) are at
-- LIMIT + u, MARK + u and WANT + u.
local LIMIT, ENFORCE, META, MARK, WANT, TTL, CHARGE = 0, 3, 4, 4, 6, 9, 10
-- A request limit's fields (present only when the counter has one): limit, refusal mark, requests.
local REQ_LIMIT, REQ_MARK, REQ_WANT = 11, 12, 13

local rows, found, asked = {}, {}, {}
local granted = 1
for i = 1, n do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local c = request[i]
  if purge_live(h, z, t, now) > 0 then
    touch_one(t, c[TTL])
  end
  local limit_req = c[REQ_LIMIT]
  local v
  if limit_req then
    -- The same read, and requests made, held and the request limit last stored (8 to 10).
    v = redis.call('HMGET', h, 'su', 'hu', 'st', 'ht', 'e', 'lu', 'lt', 'sq', 'hq', 'lq')
  else
    v = redis.call('HMGET', h, 'su', 'hu', 'st', 'ht', 'e', 'lu', 'lt')
  end
  local row = {amount(v[1]), amount(v[2]), amount(v[3]), amount(v[4]), redis.call('ZCARD', z), 0, 0}
  for u = 1, 2 do
    local limit = c[LIMIT + u]
    if limit ~= '' and not fits(row[2 * u - 1], row[2 * u], c[WANT + u], limit) then
      row[5 + u] = 1
    end
  end
  if c[ENFORCE] == 1 and (row[6] == 1 or row[7] == 1) then
    granted = 0
  end
  if limit_req then
    -- Requests made, held, refused, and the request limit last stored.
    local want = {amount(v[8]), amount(v[9]), 0, v[10]}
    if not fits(want[1], want[2], c[REQ_WANT], limit_req) then
      want[3] = 1
      if c[ENFORCE] == 1 then
        granted = 0
      end
    end
    asked[i] = want
  end
  rows[i], found[i] = row, v
end

for i = 1, n do
  local h, z = KEYS[3 * i - 2], KEYS[3 * i - 1]
  local c, row, v = request[i], rows[i], found[i]
  local limit_usd, limit_tok, usd, tok, ttl = c[LIMIT + 1], c[LIMIT + 2], c[WANT + 1], c[WANT + 2], c[TTL]
  local epoch, fired, q = v[5], '', asked[i]
  if granted == 1 then
    if not epoch then
      -- First hold in this key's life: name its epoch, store the identity and set the expiry once.
      epoch = rid
      redis.call('HSET', h, 'e', rid, 'meta', c[META], 'lu', limit_usd, 'lt', limit_tok)
      touch_one(h, ttl)
    elseif v[6] ~= limit_usd or v[7] ~= limit_tok then
      -- The limits in force, for reports only: every check uses the limits passed in.
      redis.call('HSET', h, 'lu', limit_usd, 'lt', limit_tok)
    end
    incr(h, 'hu', usd)
    incr(h, 'ht', tok)
    local held = usd .. ' ' .. tok .. (c[CHARGE] == 1 and ' c' or '')
    if q then
      incr(h, 'hq', c[REQ_WANT])
      held = held .. ' q' .. c[REQ_WANT]
      if q[4] ~= c[REQ_LIMIT] then
        redis.call('HSET', h, 'lq', c[REQ_LIMIT])
      end
    end
    redis.call('HSET', h, 'r:' .. rid, held)
    if redis.call('ZADD', z, deadline, rid) == 1 and row[5] == 0 then
      touch_one(z, ttl)
    end
  elseif c[ENFORCE] == 1 then
    for u = 1, 2 do
      local mark = c[MARK + u]
      if mark ~= '' and row[5 + u] == 1 and fits('0', '0', c[WANT + u], c[LIMIT + u])
          and redis.call('HSETNX', h, 'a:' .. mark, now) == 1 then
        touch_one(h, ttl)
        fired = fired .. ' ' .. mark
      end
    end
    local mark = c[REQ_MARK]
    if q and mark ~= '' and q[3] == 1 and fits('0', '0', c[REQ_WANT], c[REQ_LIMIT])
        and redis.call('HSETNX', h, 'a:' .. mark, now) == 1 then
      touch_one(h, ttl)
      fired = fired .. ' ' .. mark
    end
  end
  if q then
    fired = ' ' .. q[1] .. ' ' .. q[2] .. ' ' .. q[3] .. fired
  end
  lines[i] = line(row, epoch or '-', fired)
end
return granted .. ' 0\n' .. table.concat(lines, '\n')
