-- reserve: ARGV user, request id, order id, now_ms, encoded reservation.
-- Returns {outcome, order id, remaining}; outcome codes match
-- inventory.Outcome (1 Reserved .. 8 UnknownActivity), 0 means the order id
-- is already in use.
local user, request, oid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local m = redis.call('HMGET', META, 'remaining', 'starts_ms', 'ends_ms')
if not m[1] or not m[2] or not m[3] then
  return {8, '', 0}
end
local remaining = tonumber(m[1])
if now < tonumber(m[2]) then
  return {6, '', remaining}
end
if now >= tonumber(m[3]) then
  return {7, '', remaining}
end
local held = redis.call('HGET', USERS, user)
if held == oid then
  -- Our own earlier run (the client retried after a lost reply): the
  -- reservation is ours, answer as that run did.
  return {1, oid, remaining}
end
if held then
  if request ~= '' then
    local v = redis.call('HGET', RES, held)
    if v then
      local status, _, req = decode(v)
      if req == request then
        if status == 'P' then
          return {3, held, remaining}
        end
        return {2, held, remaining}
      end
    end
  end
  return {4, '', remaining}
end
if remaining <= 0 then
  return {5, '', remaining}
end
if redis.call('HEXISTS', RES, oid) == 1 then
  return {0, oid, remaining}
end
remaining = redis.call('HINCRBY', META, 'remaining', -1)
redis.call('HSET', USERS, user, oid)
redis.call('HSET', RES, oid, ARGV[5])
redis.call('ZADD', PENDING, ARGV[4], oid)
return {1, oid, remaining}
