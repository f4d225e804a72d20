-- lower: no ARGV. remaining + reservations must never exceed stock (every
-- script keeps the sum or lowers it). When it does (meta rebuilt from the
-- database while reservations it did not know about survived in RES),
-- Redis would sell units that are held: remaining drops to
-- stock - HLEN(res), never below 0. It only ever takes units off sale.
-- Returns {OK, units taken off sale} (0 when the sum was right), or
-- {NOT_LOADED}.
local m = redis.call('HMGET', META, 'stock', 'remaining')
if not m[1] or not m[2] then
  return {NOT_LOADED}
end
local remaining = tonumber(m[2])
local want = tonumber(m[1]) - redis.call('HLEN', RES)
if want < 0 then
  want = 0
end
if remaining > want then
  redis.call('HSET', META, 'remaining', want)
  return {OK, remaining - want}
end
return {OK, 0}
