-- load: ARGV stock, remaining, starts_ms, ends_ms, token. Set-if-absent:
-- {1} when written, {0} when meta already exists (another gateway loaded
-- it) or another Load took over. A Load that restored reservations passes
-- the token its chunks wrote (restore.lua): when it is gone, Redis lost
-- those reservations (it restarted) and meta, which counts their units as
-- held, is not written: {2}. An empty token (nothing restored) checks
-- nothing.
if redis.call('EXISTS', META) == 1 then
  return {0}
end
if ARGV[5] ~= '' then
  local cur = redis.call('GET', LOADING)
  if not cur then
    return {2}
  end
  if cur ~= ARGV[5] then
    return {0}
  end
end
redis.call('HSET', META, 'stock', ARGV[1], 'remaining', ARGV[2], 'starts_ms', ARGV[3], 'ends_ms', ARGV[4])
redis.call('DEL', LOADING)
return {1}
