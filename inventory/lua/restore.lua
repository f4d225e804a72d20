-- restore: ARGV groups of four: order id, user id, encoded reservation,
-- pending score ('' unless pending). Returns {1} when written; writes
-- nothing and returns {0} once meta exists: the activity is live and these
-- reservations may be stale.
if redis.call('EXISTS', META) == 1 then
  return {0}
end
for i = 1, #ARGV, 4 do
  redis.call('HSET', USERS, ARGV[i + 1], ARGV[i])
  redis.call('HSET', RES, ARGV[i], ARGV[i + 2])
  if ARGV[i + 3] ~= '' then
    redis.call('ZADD', PENDING, ARGV[i + 3], ARGV[i])
  else
    redis.call('ZREM', PENDING, ARGV[i])
  end
end
return {1}
