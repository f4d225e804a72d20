-- reap: ARGV cutoff_ms, limit. Releases pending reservations reserved
-- strictly before cutoff_ms, oldest first, at most limit; returns
-- {OK, order id...} of those released.
-- Only pending ones are in PENDING; a claimed one is spared all the same.
-- Without meta nothing is reaped (release's rule): {OK} and no ids.
if redis.call('EXISTS', META) == 0 then
  return {OK}
end
local ids = redis.call('ZRANGEBYSCORE', PENDING, '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {OK}
for _, oid in ipairs(ids) do
  if release(oid, false) == RELEASED then
    out[#out + 1] = oid
  end
end
return out
