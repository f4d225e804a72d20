-- redrive_undo: ARGV order id. REDRIVE is the activity's redrive hash.
-- Takes back a mark of redrive.lua whose publish failed: one re-drive
-- fewer, and no gap to wait, so the next pass tries again. Returns {1}
-- when there was a mark, {0} otherwise.
local r = redis.call('HGET', REDRIVE, ARGV[1])
if not r then
  return {0}
end
local c = string.find(r, ':', 1, true)
local times = (c and tonumber(string.sub(r, c + 1)) or 1) - 1
if times <= 0 then
  redis.call('HDEL', REDRIVE, ARGV[1])
else
  redis.call('HSET', REDRIVE, ARGV[1], '0:' .. tostring(times))
end
return {1}
