-- release: ARGV order id, mode. mode 'unclaimed' (Release) releases a
-- pending or queued reservation and leaves a claimed one alone; mode 'any'
-- (ReleaseCancelled) releases whatever the status. Returns {status},
-- status an inventory.ReleaseResult: RELEASED, CLAIMED (nothing changed)
-- or ABSENT (nothing changed); NOT_LOADED for a reservation
-- without meta (nothing changed, see lib.lua); BAD_ARGUMENTS for another mode.
local mode = ARGV[2]
if mode ~= 'unclaimed' and mode ~= 'any' then
  return {BAD_ARGUMENTS}
end
return {release(ARGV[1], mode == 'any')}
