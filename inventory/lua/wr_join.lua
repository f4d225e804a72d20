-- wr_join: ARGV user, now_ms. Puts user in the queue, once (a second join
-- answers the place the first one took), and answers its state as
-- wr_state does. Before the pre-queue opens: {TOO_EARLY, open_ms}.
if redis.call('EXISTS', WR) == 0 then
  return {NOT_CONFIGURED}
end
local user, now = ARGV[1], room_clock(tonumber(ARGV[2]))
if redis.call('HEXISTS', WRU, user) == 0 then
  if now < num(WR, 'open_ms', 0) then
    return {TOO_EARLY, num(WR, 'open_ms', 0), num(WR, 'epoch', 0)}
  end
  local key
  if now < num(WR, 'starts_ms', 0) then
    key = tonumber(string.sub(redis.sha1hex(redis.call('HGET', WR, 'secret') .. ':' .. user), 1, 13), 16)
  else
    key = LATE_BASE + redis.call('HINCRBY', WR, 'seq', 1)
  end
  redis.call('ZADD', WRQ, key, user)
  redis.call('HSET', WRU, user, 'W')
end
advance(now)
return user_state(user, now)
