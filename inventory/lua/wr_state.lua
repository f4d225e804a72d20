-- wr_state: ARGV user, now_ms. Moves the inlet (advance) and answers
-- user's place: {PREQUEUE, waiting}, {WAITING, rank, head, total, active},
-- {ADMITTED, rank, pass expiry ms}, {BOUGHT, rank}, {EXPIRED, rank},
-- {SOLD_OUT, rank} or {NOT_JOINED}. With user empty, only the inlet:
-- {OK, head, total, active, sold out 0/1, starts_ms, skipped, epoch}.
if redis.call('EXISTS', WR) == 0 then
  return {NOT_CONFIGURED}
end
local now = room_clock(tonumber(ARGV[2]))
advance(now)
if ARGV[1] == '' then
  return {OK, num(WR, 'head', 0), redis.call('ZCARD', WRQ), num(WR, 'active', 0), sold_out() and 1 or 0,
    num(WR, 'starts_ms', 0), num(WR, 'skipped', 0), num(WR, 'epoch', 0)}
end
return user_state(ARGV[1], now)
