-- claim: ARGV order ids. Returns {OK, answer...}, one answer per order id
-- in the same order: 1 (now claimed) or 0 (gone).
-- An activity that is not loaded (Redis lost its data) is NOT_LOADED, not
-- "gone": the worker retries until the activity is restored instead of
-- cancelling orders that were accepted.
if redis.call('EXISTS', META) == 0 then
  return {NOT_LOADED}
end
local out = {OK}
for i = 1, #ARGV do
  local oid = ARGV[i]
  local v = redis.call('HGET', RES, oid)
  if v then
    if string.sub(v, 1, 1) ~= 'W' then
      redis.call('HSET', RES, oid, 'W' .. string.sub(v, 2))
    end
    redis.call('ZREM', PENDING, oid)
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
return out
