-- restore: ARGV token, token ttl (ms), first ('1' for a Load's first
-- chunk), then groups of four: order id, user id, encoded reservation,
-- pending score ('' unless pending). Returns {1} when written; writes
-- nothing and returns {0} once meta exists (the activity is live and these
-- reservations may be stale) or when another Load took over (its first
-- chunk replaced the token); {2} when the token is gone: Redis lost what
-- this Load wrote before (it restarted), and the Load must start again.
if redis.call('EXISTS', META) == 1 then
  return {0}
end
if ARGV[3] == '1' then
  redis.call('SET', LOADING, ARGV[1], 'PX', ARGV[2])
else
  local cur = redis.call('GET', LOADING)
  if not cur then
    return {2}
  end
  if cur ~= ARGV[1] then
    return {0}
  end
end
for i = 4, #ARGV, 4 do
  redis.call('HSET', USERS, ARGV[i + 1], ARGV[i])
  redis.call('HSET', RES, ARGV[i], ARGV[i + 2])
  if ARGV[i + 3] ~= '' then
    redis.call('ZADD', PENDING, ARGV[i + 3], ARGV[i])
  else
    redis.call('ZREM', PENDING, ARGV[i])
  end
end
return {1}
