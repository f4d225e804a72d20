-- confirm: ARGV order id. pending -> queued. Returns {1} when the
-- reservation is queued (now, or already, or claimed), {0} when it is gone.
local oid = ARGV[1]
local v = redis.call('HGET', RES, oid)
if not v then
  return {0}
end
if string.sub(v, 1, 1) == 'P' then
  redis.call('HSET', RES, oid, 'Q' .. string.sub(v, 2))
  redis.call('ZREM', PENDING, oid)
end
return {1}
