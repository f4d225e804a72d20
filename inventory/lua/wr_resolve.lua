-- wr_resolve: ARGV user, now_ms, how (B bought, S sold out). An admitted
-- user's buy was answered: the place is resolved and frees its share of
-- the inlet at once, not when the pass expires. Answers {OK, 1} when it
-- resolved an admitted place, {OK, 0} otherwise (not admitted, resolved
-- already).
if redis.call('EXISTS', WR) == 0 then
  return {NOT_CONFIGURED}
end
local user, now, how = ARGV[1], room_clock(tonumber(ARGV[2])), ARGV[3]
if redis.call('ZREM', WRP, user) == 0 then
  return {OK, 0}
end
redis.call('HSET', WRU, user, how .. ':' .. now)
redis.call('HINCRBY', WR, 'active', -1)
return {OK, 1}
