-- redrive: ARGV order id, cutoff_ms, now_ms, gap_ms, max. REDRIVE is the
-- activity's redrive hash: order id -> "<last re-drive ms>:<times>".
-- Decides, for every reconciler of every process at once, whether the
-- order message of a reservation may be published again: it must still
-- be queued or claimed and reserved before cutoff_ms, not re-driven in
-- the last gap_ms, and re-driven fewer than max times. Returns {status},
-- status an inventory.RedriveDecision: REDRIVE_NOW (marked: publish it
-- now), REDRIVE_GONE (no longer such a reservation), REDRIVE_THROTTLED
-- (re-driven less than gap_ms ago) or REDRIVE_EXHAUSTED (re-driven max
-- times already: left to an operator).
local REDRIVE_NOW, REDRIVE_GONE, REDRIVE_THROTTLED, REDRIVE_EXHAUSTED = 1, 2, 3, 4
local oid = ARGV[1]
local v = redis.call('HGET', RES, oid)
if not v then
  redis.call('HDEL', REDRIVE, oid)
  return {REDRIVE_GONE}
end
local status = string.sub(v, 1, 1)
local c1 = string.find(v, ':', 2, true)
if not c1 then
  return {REDRIVE_GONE} -- malformed: Store.Reservations reports it
end
local reserved = tonumber(string.sub(v, 2, c1 - 1))
if (status ~= 'Q' and status ~= 'W') or reserved >= tonumber(ARGV[2]) then
  return {REDRIVE_GONE}
end
local now = tonumber(ARGV[3])
local last, times = 0, 0
local r = redis.call('HGET', REDRIVE, oid)
if r then
  local c = string.find(r, ':', 1, true)
  last, times = tonumber(string.sub(r, 1, c - 1)), tonumber(string.sub(r, c + 1))
end
if times >= tonumber(ARGV[5]) then
  return {REDRIVE_EXHAUSTED}
end
if r and now - last < tonumber(ARGV[4]) then
  return {REDRIVE_THROTTLED}
end
redis.call('HSET', REDRIVE, oid, ARGV[3] .. ':' .. tostring(times + 1))
return {REDRIVE_NOW}
