-- lib.lua is prepended to every script of this package (see scripts.go), so
-- the key names, the reply statuses, the reservation encoding and the
-- release step exist once.
--
-- KEYS of every script, all of one activity (same hash tag {a<ID>}), in
-- the order of activityKeys.forScript (scripts.go):
--   KEYS[1] meta     hash: stock, remaining, starts_ms, ends_ms
--   KEYS[2] users    hash: user id -> order id
--   KEYS[3] res      hash: order id -> encoded reservation
--   KEYS[4] pending  zset: order id -> reserved at (ms), pending ones only
--   KEYS[5] redrive  hash: order id -> "<last re-drive ms>:<times>"
--   KEYS[6] loading  string: the token of the restore in progress (Load)
--
-- Every script answers {status, values...}. A status >= 0 is the script's
-- answer, as its header says (decoded in Go into a named type or a flag);
-- a status < 0 is one of the failures below, the same number for the same
-- failure in every script, decoded in Go into a sentinel error
-- (inventory.scriptStatus). No script raises an error or answers a
-- string to say what happened: an error reply means Redis failed.
--
-- An encoded reservation is
--   <status><reserved_ms>:<len(user)>:<user><request id>
-- status is one byte: P pending, Q queued, W claimed (inventory.Status).
-- The status comes first so a status change rewrites one byte, and the
-- user length makes any byte in user and request ids safe.
local META, USERS, RES, PENDING, REDRIVE, LOADING = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

-- The status of a script that answers only values.
local OK = 0
-- Failures, as inventory.scriptStatus.
local NOT_LOADED = -1     -- meta is missing: inventory.ErrNotLoaded
local ORDER_ID_TAKEN = -2 -- a new order id already names a reservation: inventory.ErrInvalid
local BAD_ARGUMENTS = -3  -- ARGV the script cannot take: inventory.ErrInvalid

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
--
-- A reservation found without meta (a restore has written the activity's
-- reservations and not yet its meta, or was cut short) is left alone:
-- NOT_LOADED. The meta the restore writes counts that reservation's unit
-- as held, so dropping the reservation now would lose the unit to both
-- remaining and the reservations. The caller retries, or the reconciler
-- returns the unit of a cancelled order once meta is back. Without meta
-- and without the reservation it is ABSENT, as with meta: a restore reads
-- the database, where a released unit is already back.
local function release(oid, any_status)
  local v = redis.call('HGET', RES, oid)
  if not v then
    redis.call('ZREM', PENDING, oid)
    return ABSENT
  end
  local m = redis.call('HMGET', META, 'stock', 'remaining')
  if not m[1] or not m[2] then
    return NOT_LOADED
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
  if tonumber(m[2]) < tonumber(m[1]) then
    redis.call('HINCRBY', META, 'remaining', 1)
  end
  return RELEASED
end
