-- reserve: ARGV user, request id, order id, now_ms, encoded reservation.
-- Returns {status, order id, remaining}: status is the inventory.Outcome
-- (RESERVED .. ENDED), NOT_LOADED (the Outcome UnknownActivity) or
-- ORDER_ID_TAKEN (the order id already names a reservation).
local RESERVED, EXISTING, IN_FLIGHT, ALREADY_PURCHASED, SOLD_OUT, NOT_STARTED, ENDED = 1, 2, 3, 4, 5, 6, 7
local user, request, oid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local m = redis.call('HMGET', META, 'remaining', 'starts_ms', 'ends_ms')
if not m[1] or not m[2] or not m[3] then
  return {NOT_LOADED, '', 0}
end
local remaining = tonumber(m[1])
if now < tonumber(m[2]) then
  return {NOT_STARTED, '', remaining}
end
if now >= tonumber(m[3]) then
  return {ENDED, '', remaining}
end
local held = redis.call('HGET', USERS, user)
if held == oid then
  -- Our own earlier run (the client retried after a lost reply): the
  -- reservation is ours, answer as that run did.
  return {RESERVED, oid, remaining}
end
if held then
  if request ~= '' then
    local v = redis.call('HGET', RES, held)
    if v then
      local status, _, req = decode(v)
      if req == request then
        if status == 'P' then
          return {IN_FLIGHT, held, remaining}
        end
        return {EXISTING, held, remaining}
      end
    end
  end
  return {ALREADY_PURCHASED, '', remaining}
end
if remaining <= 0 then
  return {SOLD_OUT, '', remaining}
end
if redis.call('HEXISTS', RES, oid) == 1 then
  return {ORDER_ID_TAKEN, oid, remaining}
end
remaining = redis.call('HINCRBY', META, 'remaining', -1)
redis.call('HSET', USERS, user, oid)
redis.call('HSET', RES, oid, ARGV[5])
redis.call('ZADD', PENDING, ARGV[4], oid)
return {RESERVED, oid, remaining}
