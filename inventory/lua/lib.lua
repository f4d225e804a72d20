-- lib.lua is prepended to every script of this package (see scripts.go), so
-- the reservation encoding and the release step exist once.
--
-- KEYS of every script, all of one activity (same hash tag {a<ID>}):
--   KEYS[1] meta     hash: stock, remaining, starts_ms, ends_ms
--   KEYS[2] users    hash: user id -> order id
--   KEYS[3] res      hash: order id -> encoded reservation
--   KEYS[4] pending  zset: order id -> reserved at (ms), pending ones only
--
-- An encoded reservation is
--   <status><reserved_ms>:<len(user)>:<user><request id>
-- status is one byte: P pending, Q queued, W claimed (inventory.Status).
-- The status comes first so a status change rewrites one byte, and the
-- user length makes any byte in user and request ids safe.
local META, USERS, RES, PENDING = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function decode(v)
  local c1 = string.find(v, ':', 2, true)
  local c2 = string.find(v, ':', c1 + 1, true)
  local ulen = tonumber(string.sub(v, c1 + 1, c2 - 1))
  local status = string.sub(v, 1, 1)
  local user = string.sub(v, c2 + 1, c2 + ulen)
  local request = string.sub(v, c2 + ulen + 1)
  return status, user, request
end

-- Answers of release, as inventory.ReleaseResult: 1 released, 2 not
-- released because an order worker claimed it, 3 not released because
-- there is no such reservation.
local RELEASED, CLAIMED, ABSENT = 1, 2, 3

-- release undoes one reservation: the unit goes back (never above stock),
-- the user's mark goes only if it still points at this order. A claimed
-- reservation (an order worker took it: the order is, or is being, written)
-- is left untouched and answers CLAIMED unless any_status is true, which
-- only the cancel of a stored order may pass. ABSENT when the reservation
-- is already gone, so a second call is a no-op.
local function release(oid, any_status)
  local v = redis.call('HGET', RES, oid)
  if not v then
    redis.call('ZREM', PENDING, oid)
    return ABSENT
  end
  local status, user = decode(v)
  if status == 'W' and not any_status then
    -- A claimed reservation is never in PENDING; drop a stale entry so
    -- the reaper does not meet it again.
    redis.call('ZREM', PENDING, oid)
    return CLAIMED
  end
  redis.call('HDEL', RES, oid)
  if redis.call('HGET', USERS, user) == oid then
    redis.call('HDEL', USERS, user)
  end
  redis.call('ZREM', PENDING, oid)
  local m = redis.call('HMGET', META, 'stock', 'remaining')
  if m[1] and m[2] and tonumber(m[2]) < tonumber(m[1]) then
    redis.call('HINCRBY', META, 'remaining', 1)
  end
  return RELEASED
end
