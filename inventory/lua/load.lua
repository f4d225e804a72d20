-- load: ARGV stock, remaining, starts_ms, ends_ms. Set-if-absent: {1} when
-- written, {0} when meta already exists (another gateway loaded it).
if redis.call('EXISTS', META) == 1 then
  return {0}
end
redis.call('HSET', META, 'stock', ARGV[1], 'remaining', ARGV[2], 'starts_ms', ARGV[3], 'ends_ms', ARGV[4])
return {1}
