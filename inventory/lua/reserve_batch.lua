-- reserve_batch: ARGV in groups of five, each group the ARGV of one
-- reserve.lua call (user, request id, order id, now_ms, encoded
-- reservation), in the order the requests arrived. Returns {OK, answer...}
-- with the answers flat, three per request in the same order: status,
-- order id, remaining, exactly as reserve.lua answers; BAD_ARGUMENTS when
-- ARGV is not in groups of five.
--
-- reserve_one is reserve.lua itself, wrapped as a function of its ARGV by
-- scripts.go (newScripts), so every request is decided by the single
-- script's code, one after the other, each seeing the writes of the ones
-- before it, as if they had been sent one by one in this order. All
-- requests are of one activity: KEYS are its keys, one cluster slot.
if #ARGV % 5 ~= 0 then
  return {BAD_ARGUMENTS}
end
local out = {OK}
for i = 1, #ARGV, 5 do
  local r = reserve_one({ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]})
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out
