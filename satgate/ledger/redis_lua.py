"""The Lua scripts of the Redis ledger (SPEC: Ledger — one round trip per check).

Every bucket travels as three keys, all in the tenant's Cluster slot ({tenant}): its lifetime counter (what a
lifetime bucket has spent; for a windowed one, its budget changes: a top-up of N is N less spent), the counter of
the window the check falls in (the lifetime counter again for a lifetime bucket), and the set of thresholds it
crossed (per window). Per bucket ARGV: its limit, and for a windowed one how many seconds to keep its window
('' for a lifetime bucket). Numbers travel as strings: budgets reach 10^15, which Lua's doubles hold exactly.

DEBIT — KEYS[1] the ledger marker of the tenant's slot, KEYS[2] revoked-id set, KEYS[3] the debit's record,
KEYS[4..] the buckets. ARGV: cost, record ttl, deadline (unix seconds, '' for none), 1|0 keep a record, attempt
id, n revocation ids, the ids…, the buckets' pairs, n thresholds, the thresholds (per mille).
Returns {'unmarked'} | {'expired'} | {'revoked'} | {'replay', 'charged:remaining:attempt'}
| {'insufficient', remaining, short} (short: the 1-based buckets that cannot pay, comma-separated)
| {'ok', charged, remaining, crossed…} with remaining '' when the token has no budget and each crossing
'bucket:permille:limit' (the limit judged against, its changes included). The deadline is judged by Redis's
clock when the script runs, so a script that waited in a
socket buffer (Redis paused, a slow network) past its deadline spends nothing.

REFUND — KEYS[1] the debit's record, KEYS[2..] the buckets it charged; ARGV[1] the attempt id, then per bucket
its keep seconds. When the record was written by that attempt (and not settled), gives back what it charged and
deletes the record (so once); returns the credits refunded. A window the store already dropped gets nothing back.

SETTLE — KEYS as REFUND; ARGV: attempt id, actual cost, the buckets' pairs, n thresholds, the thresholds. When the
record was written by that attempt and is not settled: refund the difference, or charge the excess up to what
every bucket can pay; mark the record settled. Returns {'none'} | {'ok', charged, overshoot, remaining, crossed…}.

ADJUST — KEYS[1] the ledger marker of the tenant's slot, KEYS[2] the bucket's lifetime counter, KEYS[3] the
change's record, KEYS[4] its current window's counter (KEYS[2] again when lifetime); ARGV: the bucket's limit, the
delta (+ top-up, - cut), record ttl, 1|0 windowed. A change moves the lifetime counter the other way, so debits
need nothing new. Returns {'unmarked'} | {'replay', remaining} | {'below', remaining} | {'ok', remaining}.

SET_LIMIT — KEYS[1] the ledger marker of the tenant's slot, KEYS[2] the bucket's lifetime counter; ARGV: the
counter that gives the wanted limit (the caveat's limit less it), 1|0 only if unset. A windowed bucket's counter
holds only its limit changes, so its windows keep what they spent. Returns 'unmarked' | 'ok' | 'kept'.
"""

_BUCKETS = """
local function balance(k, limit, keep)
  local changes = tonumber(redis.call('GET', KEYS[k]) or '0')
  if keep == '' then
    return limit - changes, limit
  end
  return limit - changes - tonumber(redis.call('GET', KEYS[k + 1]) or '0'), limit - changes
end
local function spend(k, keep, amount)
  if keep == '' then
    redis.call('INCRBY', KEYS[k], amount)
  elseif amount > 0 then
    redis.call('INCRBY', KEYS[k + 1], amount)
    redis.call('EXPIRE', KEYS[k + 1], tonumber(keep))
  elseif redis.call('EXISTS', KEYS[k + 1]) == 1 then
    redis.call('INCRBY', KEYS[k + 1], amount)
  end
end
-- ceil(permille * limit / 1000) without a product past 2^53
local function mark(permille, limit)
  local whole = math.floor(limit / 1000)
  return whole * permille + math.ceil((limit - whole * 1000) * permille / 1000)
end
local function cross(found, j, k, keep, limit, before, after, first, count)
  for t = 1, count do
    local permille = tonumber(ARGV[first + t])
    local at = mark(permille, limit)
    if before < at and at <= after and redis.call('SADD', KEYS[k + 2], permille) == 1 then
      if keep ~= '' then
        redis.call('EXPIRE', KEYS[k + 2], tonumber(keep))
      end
      found[#found + 1] = j .. ':' .. permille .. ':' .. string.format('%d', limit)
    end
  end
end
"""

DEBIT = (
    _BUCKETS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unmarked'}
end
if ARGV[3] ~= '' then
  local now = redis.call('TIME')
  if tonumber(now[1]) + tonumber(now[2]) / 1000000 > tonumber(ARGV[3]) then
    return {'expired'}
  end
end
local cost = tonumber(ARGV[1])
local keep_record = ARGV[4] == '1'
local revocations = tonumber(ARGV[6])
for i = 1, revocations do
  if redis.call('SISMEMBER', KEYS[2], ARGV[6 + i]) == 1 then
    return {'revoked'}
  end
end
local buckets = (#KEYS - 3) / 3
if buckets == 0 then
  return {'ok', tostring(cost), ''}
end
if keep_record then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    return {'replay', seen}
  end
end
local first = 6 + revocations
local lefts, limits, short = {}, {}, {}
local remaining = nil
for j = 1, buckets do
  lefts[j], limits[j] = balance(1 + 3 * j, tonumber(ARGV[first + 2 * j - 1]), ARGV[first + 2 * j])
  if lefts[j] < cost then
    short[#short + 1] = j
  end
  if remaining == nil or lefts[j] < remaining then
    remaining = lefts[j]
  end
end
if remaining < cost then
  return {'insufficient', string.format('%d', math.max(remaining, 0)), table.concat(short, ',')}
end
local reply = {'ok', string.format('%d', cost), string.format('%d', remaining - cost)}
if cost > 0 then
  local thresholds = first + 2 * buckets + 1
  for j = 1, buckets do
    local keep = ARGV[first + 2 * j]
    spend(1 + 3 * j, keep, cost)
    local spent = limits[j] - lefts[j]
    cross(reply, j, 1 + 3 * j, keep, limits[j], spent, spent + cost, thresholds, tonumber(ARGV[thresholds]))
  end
end
if keep_record then
  redis.call('SET', KEYS[3], string.format('%d:%d:', cost, remaining - cost) .. ARGV[5], 'EX', tonumber(ARGV[2]))
end
return reply
"""
)

REFUND = (
    _BUCKETS
    + """
local seen = redis.call('GET', KEYS[1])
if not seen then
  return 0
end
local charged, attempt = string.match(seen, '^(%d+):%-?%d+:(.*)$')
if attempt ~= ARGV[1] then
  return 0
end
charged = tonumber(charged)
redis.call('DEL', KEYS[1])
if charged > 0 then
  for j = 1, (#KEYS - 1) / 3 do
    spend(3 * j - 1, ARGV[1 + j], -charged)
  end
end
return charged
"""
)

SETTLE = (
    _BUCKETS
    + """
local seen = redis.call('GET', KEYS[1])
if not seen then
  return {'none'}
end
local reserved, attempt = string.match(seen, '^(%d+):%-?%d+:(.*)$')
if attempt ~= ARGV[1] then
  return {'none'}
end
reserved = tonumber(reserved)
local actual = tonumber(ARGV[2])
local buckets = (#KEYS - 1) / 3
local lefts, limits = {}, {}
local payable = nil
for j = 1, buckets do
  lefts[j], limits[j] = balance(3 * j - 1, tonumber(ARGV[1 + 2 * j]), ARGV[2 + 2 * j])
  if payable == nil or lefts[j] < payable then
    payable = lefts[j]
  end
end
local change = actual - reserved
if change > 0 then
  change = math.min(change, math.max(payable, 0))
end
local overshoot = actual - reserved - change
local reply = {'ok', string.format('%d', reserved + change), string.format('%d', overshoot),
               string.format('%d', math.max(payable - change, 0))}
if change ~= 0 then
  local thresholds = 3 + 2 * buckets
  for j = 1, buckets do
    local keep = ARGV[2 + 2 * j]
    spend(3 * j - 1, keep, change)
    if change > 0 then
      local spent = limits[j] - lefts[j]
      cross(reply, j, 3 * j - 1, keep, limits[j], spent, spent + change, thresholds, tonumber(ARGV[thresholds]))
    end
  end
end
redis.call('SET', KEYS[1], string.format('%d:%d:', reserved + change, payable - change) .. attempt .. '!settled',
           'KEEPTTL')
return reply
"""
)

ADJUST = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unmarked'}
end
local seen = redis.call('GET', KEYS[3])
if seen then
  return {'replay', seen}
end
local delta = tonumber(ARGV[2])
local left = tonumber(ARGV[1]) - tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[4] == '1' then
  left = left - tonumber(redis.call('GET', KEYS[4]) or '0')
end
if left + delta < 0 then
  return {'below', string.format('%d', math.max(left, 0))}
end
redis.call('DECRBY', KEYS[2], delta)
local remaining = string.format('%d', left + delta)
redis.call('SET', KEYS[3], remaining, 'EX', tonumber(ARGV[3]))
return {'ok', remaining}
"""

SET_LIMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'unmarked'
end
if ARGV[2] == '1' then
  return redis.call('SET', KEYS[2], ARGV[1], 'NX') and 'ok' or 'kept'
end
redis.call('SET', KEYS[2], ARGV[1])
return 'ok'
"""
