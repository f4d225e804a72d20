-- release: ARGV order id, mode. mode 'unclaimed' (Release) releases a
-- pending or queued reservation and leaves a claimed one alone; mode 'any'
-- (ReleaseCancelled) releases whatever the status. Returns 1 released,
-- 2 claimed (nothing changed), 3 absent (nothing changed).
local mode = ARGV[2]
if mode ~= 'unclaimed' and mode ~= 'any' then
  return redis.error_reply('ERR release mode must be unclaimed or any')
end
return release(ARGV[1], mode == 'any')
