-- repair_meta: ARGV stock, starts_ms, ends_ms, max_remaining. Rebuilds the
-- meta hash of an activity that lost it while its other keys survived (a
-- key evicted or deleted on its own). Every surviving reservation keeps
-- its unit, so remaining = stock - HLEN(res), never above max_remaining
-- (the caller's bound from the database) and never below 0; read and
-- written in one step, so no reservation is missed.
-- Returns {status, ...}, status an inventory.MetaRepairOutcome:
-- {META_REBUILT, remaining} when written, {META_PRESENT} when meta exists
-- (nothing to do), {ACTIVITY_ABSENT} when none of the activity's keys
-- exist (load it from the database instead: Store.Load).
local META_PRESENT, META_REBUILT, ACTIVITY_ABSENT = 1, 2, 3
if redis.call('EXISTS', META) == 1 then
  return {META_PRESENT}
end
if redis.call('EXISTS', RES) == 0 and redis.call('EXISTS', USERS) == 0 and redis.call('EXISTS', PENDING) == 0 then
  return {ACTIVITY_ABSENT}
end
local remaining = tonumber(ARGV[1]) - redis.call('HLEN', RES)
local cap = tonumber(ARGV[4])
if remaining > cap then
  remaining = cap
end
if remaining < 0 then
  remaining = 0
end
redis.call('HSET', META, 'stock', ARGV[1], 'remaining', remaining, 'starts_ms', ARGV[2], 'ends_ms', ARGV[3])
return {META_REBUILT, remaining}
