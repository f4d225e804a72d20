-- stats: {stock, remaining, reserved, pending} read in one atomic step, or
-- {} when the activity is not loaded.
local m = redis.call('HMGET', META, 'stock', 'remaining')
if not m[1] or not m[2] then
  return {}
end
return {tonumber(m[1]), tonumber(m[2]), redis.call('HLEN', RES), redis.call('ZCARD', PENDING)}
