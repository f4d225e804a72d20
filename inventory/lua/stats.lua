-- stats: {OK, stock, remaining, reserved, pending} read in one atomic
-- step, or {NOT_LOADED}.
local m = redis.call('HMGET', META, 'stock', 'remaining')
if not m[1] or not m[2] then
  return {NOT_LOADED}
end
return {OK, tonumber(m[1]), tonumber(m[2]), redis.call('HLEN', RES), redis.call('ZCARD', PENDING)}
