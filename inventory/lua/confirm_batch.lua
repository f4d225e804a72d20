-- confirm_batch: ARGV order ids of one activity, in the order the confirms
-- arrived. Returns {OK, status...}: one status per order id, in the same
-- order, exactly as confirm.lua answers it: 1 (queued, or already queued
-- or claimed) or 0 (the reservation is gone).
--
-- confirm_one is confirm.lua itself, wrapped as a function of its ARGV by
-- scripts.go (newScripts).
local out = {OK}
for i = 1, #ARGV do
  out[i + 1] = confirm_one({ARGV[i]})[1]
end
return out
