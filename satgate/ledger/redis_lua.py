"""The Lua scripts of the Redis ledger (SPEC: Ledger — one round trip per check).

DEBIT — KEYS[1] the ledger marker of the tenant's slot, KEYS[2] revoked-id set, KEYS[3] the debit's record,
KEYS[4..] budget buckets (spent so far); all in one Redis Cluster slot ({tenant}, and a marker tag of that slot).
ARGV: cost, record ttl, deadline (unix seconds, '' for none), 1|0 keep a record, attempt id, n revocation ids, the
ids…, then one limit per bucket.
Returns {'unmarked'} | {'expired'} | {'revoked'} | {'replay', 'charged:remaining:attempt'}
| {'insufficient', remaining}
| {'ok', charged, remaining} with remaining '' when the token has no budget. Numbers travel as strings: budgets
reach 10^15. The deadline is judged by Redis's clock when the script runs, so a script that waited in a socket
buffer (Redis paused, a slow network) past its deadline spends nothing.

REFUND — KEYS[1] the debit's record, KEYS[2..] the buckets it charged; ARGV[1] the attempt id. When the record
was written by that attempt, gives back what it charged and deletes the record (so once); returns the credits
refunded.

ADJUST — KEYS[1] the ledger marker of the tenant's slot, KEYS[2] the bucket (spent so far), KEYS[3] the change's
record; ARGV: the bucket's limit, the delta (+ top-up, - cut), record ttl. A change moves the bucket's counter the
other way (a top-up of N is N less spent), so debits need nothing new. Returns {'unmarked'} |
{'replay', remaining} | {'below', remaining} | {'ok', remaining}.
"""

DEBIT = """
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
local buckets = #KEYS - 3
if buckets == 0 then
  return {'ok', tostring(cost), ''}
end
if keep_record then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    return {'replay', seen}
  end
end
local remaining = nil
for j = 1, buckets do
  local left = tonumber(ARGV[6 + revocations + j]) - tonumber(redis.call('GET', KEYS[3 + j]) or '0')
  if remaining == nil or left < remaining then
    remaining = left
  end
end
if remaining < cost then
  return {'insufficient', string.format('%d', math.max(remaining, 0))}
end
if cost > 0 then
  for j = 1, buckets do
    redis.call('INCRBY', KEYS[3 + j], cost)
  end
end
remaining = remaining - cost
if keep_record then
  redis.call('SET', KEYS[3], string.format('%d:%d:', cost, remaining) .. ARGV[5], 'EX', tonumber(ARGV[2]))
end
return {'ok', string.format('%d', cost), string.format('%d', remaining)}
"""

REFUND = """
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
  for j = 2, #KEYS do
    redis.call('DECRBY', KEYS[j], charged)
  end
end
return charged
"""

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
if left + delta < 0 then
  return {'below', string.format('%d', math.max(left, 0))}
end
redis.call('DECRBY', KEYS[2], delta)
local remaining = string.format('%d', left + delta)
redis.call('SET', KEYS[3], remaining, 'EX', tonumber(ARGV[3]))
return {'ok', remaining}
"""
