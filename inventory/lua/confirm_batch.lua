-- confirm_batch: ARGV order ids of one activity, in the order the confirms
-- arrived. Returns one answer per order id, in the same order, exactly as
-- confirm.lua answers it: 1 (queued, or already queued or claimed) or 0
-- (the reservation is gone).
--
-- confirm_one is confirm.lua itself, wrapped as a function of its ARGV by
-- coalesce.go (see confirmBatchSource).
local out = {}
for i = 1, #ARGV do
  out[i] = confirm_one({ARGV[i]})
end
return out
