-- confirm: ARGV order id. pending -> queued; 0 when the reservation is gone.
local oid = ARGV[1]
local v = redis.call('HGET', RES, oid)
if not v then
  return 0
end
if string.sub(v, 1, 1) == 'P' then
  redis.call('HSET', RES, oid, 'Q' .. string.sub(v, 2))
  redis.call('ZREM', PENDING, oid)
end
return 1
