-- wr_setup: ARGV starts_ms, open_ms, rate, cap, pass_ms, secret. Makes the
-- activity's waiting room unless it exists (every field is kept when it
-- does: gateways racing to set it up agree on the first one's secret).
-- Answers {OK, 1} when it made it, {OK, 0} when it existed.
if redis.call('EXISTS', WR) == 1 then
  return {OK, 0}
end
redis.call('HSET', WR, 'starts_ms', ARGV[1], 'open_ms', ARGV[2], 'rate', ARGV[3], 'cap', ARGV[4],
  'pass_ms', ARGV[5], 'secret', ARGV[6], 'head', 0, 'active', 0, 'last_ms', ARGV[1], 'credit', 1, 'seq', 0)
return {OK, 1}
