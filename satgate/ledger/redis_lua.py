"""The one Lua script a check costs on Redis (SPEC: Ledger — one round trip per check).

KEYS[1] revoked-id set, KEYS[2] idempotency record, KEYS[3..] budget buckets (spent so far), all tagged
{tenant} so a tenant's keys share one Redis Cluster slot.
ARGV: cost, idempotency ttl, 1|0 use idempotency, n revocation ids, the ids…, then one limit per bucket.
Returns {'revoked'} | {'replay', 'charged:remaining'} | {'insufficient', remaining} | {'ok', charged, remaining}
with remaining '' when the token has no budget. Numbers travel as strings: budgets reach 10^15.
"""

DEBIT = """
local cost = tonumber(ARGV[1])
local use_idempotency = ARGV[3] == '1'
local revocations = tonumber(ARGV[4])
for i = 1, revocations do
  if redis.call('SISMEMBER', KEYS[1], ARGV[4 + i]) == 1 then
    return {'revoked'}
  end
end
local buckets = #KEYS - 2
if buckets == 0 then
  return {'ok', tostring(cost), ''}
end
if use_idempotency then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    return {'replay', seen}
  end
end
local remaining = nil
for j = 1, buckets do
  local left = tonumber(ARGV[4 + revocations + j]) - tonumber(redis.call('GET', KEYS[2 + j]) or '0')
  if remaining == nil or left < remaining then
    remaining = left
  end
end
if remaining < cost then
  return {'insufficient', string.format('%d', math.max(remaining, 0))}
end
if cost > 0 then
  for j = 1, buckets do
    redis.call('INCRBY', KEYS[2 + j], cost)
  end
end
remaining = remaining - cost
if use_idempotency then
  redis.call('SET', KEYS[2], string.format('%d:%d', cost, remaining), 'EX', tonumber(ARGV[2]))
end
return {'ok', string.format('%d', cost), string.format('%d', remaining)}
"""
