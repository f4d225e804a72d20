-- reserve_batch: ARGV in groups of five, each group the ARGV of one
-- reserve.lua call (user, request id, order id, now_ms, encoded
-- reservation), in the order the requests arrived. Returns the answers
-- flat, three per request in the same order: outcome, order id, remaining,
-- exactly as reserve.lua answers.
--
-- reserve_one is reserve.lua itself, wrapped as a function of its ARGV by
-- coalesce.go (see reserveBatchSource), so every request is decided by the
-- single script's code, one after the other, each seeing the writes of the
-- ones before it, as if they had been sent one by one in this order. All
-- requests are of one activity: KEYS are its four keys, one cluster slot.
if #ARGV % 5 ~= 0 then
  return redis.error_reply('ERR reserve_batch wants ARGV in groups of five')
end
local out = {}
for i = 1, #ARGV, 5 do
  local r = reserve_one({ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]})
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out
