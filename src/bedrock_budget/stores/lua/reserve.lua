-- Reserve one id against every counter, all or nothing.
-- ARGV: now_ms, deadline_ms, id, trim_before_ms, then per counter:
--   limit_usd ('' = none), limit_tokens ('' = none), usd, tokens, enforce ('1'/'0'), ttl_ms, meta
-- Returns {granted, repeated, rows}; row = {spent_usd, held_usd, spent_tok, held_tok, live, refused_usd,
-- refused_tok}, the state before this hold.
local now, deadline, rid, trim = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = #KEYS / 3
local rows = {}

if n > 0 and redis.call('ZSCORE', KEYS[2], rid) then
  -- A retry after a lost reply: the first attempt already holds everywhere.
  for i = 1, n do
    local row = state(KEYS[3 * i - 2], KEYS[3 * i - 1])
    row[6] = 0
    row[7] = 0
    rows[i] = row
  end
  return {1, 1, rows}
end

local granted = 1
for i = 1, n do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 4 + 7 * (i - 1)
  purge(h, z, t, now, trim)
  local row = state(h, z)
  local limit_u, limit_t = ARGV[a + 1], ARGV[a + 2]
  row[6] = (limit_u ~= '' and not fits(row[1], row[2], ARGV[a + 3], limit_u)) and 1 or 0
  row[7] = (limit_t ~= '' and not fits(row[3], row[4], ARGV[a + 4], limit_t)) and 1 or 0
  if ARGV[a + 5] == '1' and (row[6] == 1 or row[7] == 1) then
    granted = 0
  end
  rows[i] = row
end

for i = 1, n do
  local h, z, t = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 4 + 7 * (i - 1)
  if granted == 1 then
    local usd, tok = ARGV[a + 3], ARGV[a + 4]
    redis.call('HSETNX', h, 'meta', ARGV[a + 7])
    -- The limits in force, for reports only: every check uses the limits passed in.
    redis.call('HSET', h, 'lu', ARGV[a + 1], 'lt', ARGV[a + 2])
    incr(h, 'hu', usd)
    incr(h, 'ht', tok)
    redis.call('HSET', h, 'r:' .. rid, usd .. ' ' .. tok)
    redis.call('ZADD', z, deadline, rid)
  end
  touch(h, z, t, ARGV[a + 6])
end
return {granted, 0, rows}
