-- wr_lib.lua is prepended, after lib.lua, to the waiting room's scripts
-- (waitroom.go): an activity's queue, in its slot with its stock.
--
-- KEYS[7] WR   hash: starts_ms, open_ms, rate, cap, pass_ms, secret, epoch
--              (which set-up this is: a queue lost with Redis and set up
--              again has another), and
--              the inlet: head (places admitted), active (admitted, not
--              yet resolved), skipped (admitted, the pass lapsed unused),
--              last_ms, credit, seq, clock_ms (the latest now seen:
--              room_clock)
-- KEYS[8] WRQ  zset: user -> place key. A pre-queue arrival's key is a
--              keyed hash of its user id (the first 52 bits of
--              sha1(secret:user)): unpredictable to users, replayable
--              with the secret, and needing no shuffle at the start. A
--              later arrival's key is 2^52 + its arrival number, behind
--              the whole pre-queue in arrival order. After the start no
--              key is added before an existing one, so a place's rank
--              never changes.
-- KEYS[9] WRU  hash: user -> W (waiting), A:<admitted_ms>:<expires_ms>,
--              B:<ms> (bought), X:<ms> (pass expired unused: passed over),
--              S:<ms> (admitted and told sold out)
-- KEYS[10] WRP  zset: user -> pass expiry (ms), the admitted unresolved
local WR, WRQ, WRU, WRP = KEYS[7], KEYS[8], KEYS[9], KEYS[10]

-- Failures, besides lib.lua's, as inventory.scriptStatus.
local NOT_CONFIGURED = -4 -- no waiting room for this activity in Redis: inventory.ErrQueueNotConfigured

-- Answers, as inventory.QueueStatus.
local PREQUEUE, WAITING, ADMITTED, BOUGHT, EXPIRED, SOLD_OUT, NOT_JOINED, TOO_EARLY = 1, 2, 3, 4, 5, 6, 7, 8

local LATE_BASE = 4503599627370496 -- 2^52

local function num(key, field, default)
  local v = redis.call('HGET', key, field)
  if not v then return default end
  return tonumber(v)
end

-- room_clock is the room's clock (ms): the caller's now, never earlier than
-- a call before it (clock_ms). A gateway reads its clock before its call
-- reaches Redis, and calls overtake each other on the way (one gateway's
-- connections, or two gateways): without it a join that read the clock
-- just before the start but arrived after an admission at the start would
-- draw a pre-queue place ahead of the inlet's head, behind people already
-- admitted, and never be admitted in its turn.
local function room_clock(now)
  local seen = num(WR, 'clock_ms', 0)
  if now < seen then
    return seen
  end
  redis.call('HSET', WR, 'clock_ms', now)
  return now
end

-- sold_out: nothing left and nothing pending that could come back.
local function sold_out()
  return num(META, 'remaining', 0) <= 0 and redis.call('ZCARD', PENDING) == 0
end

-- advance moves the inlet by the time elapsed since the last call, for
-- whoever calls: passes that lapsed resolve their holders (bought when
-- they hold a reservation, passed over when not), then places are admitted
-- in rank order while the admitted-unresolved are fewer than the cap (the
-- units left, unless a cap is set) and the rate's credit lasts. Nothing
-- is admitted before the start or while nothing is left.
local function advance(now)
  local starts = num(WR, 'starts_ms', 0)
  if now < starts then
    return
  end
  local active = num(WR, 'active', 0)
  local lapsed = redis.call('ZRANGEBYSCORE', WRP, '-inf', now)
  for _, u in ipairs(lapsed) do
    if redis.call('HEXISTS', USERS, u) == 1 then
      redis.call('HSET', WRU, u, 'B:' .. now)
    else
      redis.call('HSET', WRU, u, 'X:' .. now)
      redis.call('HINCRBY', WR, 'skipped', 1)
    end
    active = active - 1
  end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', WRP, '-inf', now)
  end
  local head = num(WR, 'head', 0)
  local total = redis.call('ZCARD', WRQ)
  local remaining = num(META, 'remaining', 0)
  local cap = num(WR, 'cap', 0)
  if cap <= 0 then
    cap = remaining
  end
  local n = math.min(cap - active, total - head)
  if remaining <= 0 then
    n = 0
  end
  local rate = num(WR, 'rate', 0)
  local last = num(WR, 'last_ms', starts)
  if rate > 0 then
    -- At most a second's worth of credit: a quiet minute is no burst.
    local credit = math.min(num(WR, 'credit', 0) + (now - math.max(last, starts)) * rate / 1000, math.max(rate, 1))
    n = math.min(n, math.floor(credit))
    if n < 0 then n = 0 end
    redis.call('HSET', WR, 'credit', tostring(credit - n))
  end
  if n > 0 then
    local pass = num(WR, 'pass_ms', 60000)
    local users = redis.call('ZRANGE', WRQ, head, head + n - 1)
    for _, u in ipairs(users) do
      redis.call('HSET', WRU, u, 'A:' .. now .. ':' .. (now + pass))
      redis.call('ZADD', WRP, now + pass, u)
    end
    head = head + #users
    active = active + #users
  end
  redis.call('HSET', WR, 'head', head, 'active', active, 'last_ms', now)
end

-- user_state answers user's place after an advance, its last value the
-- waiting room's epoch (which set-up the place belongs to).
local function user_state(user, now)
  local epoch = num(WR, 'epoch', 0)
  local st = redis.call('HGET', WRU, user)
  if not st then
    return {NOT_JOINED, epoch}
  end
  local starts = num(WR, 'starts_ms', 0)
  if now < starts then
    return {PREQUEUE, redis.call('ZCARD', WRQ), epoch}
  end
  local rank = redis.call('ZRANK', WRQ, user)
  if redis.call('HEXISTS', USERS, user) == 1 then
    return {BOUGHT, rank, epoch}
  end
  local kind = string.sub(st, 1, 1)
  if kind == 'A' then
    local exp = tonumber(string.match(st, '^A:%d+:(%d+)$'))
    if sold_out() then
      return {SOLD_OUT, rank, epoch}
    end
    return {ADMITTED, rank, exp, epoch}
  elseif kind == 'B' then
    return {BOUGHT, rank, epoch}
  elseif kind == 'X' then
    return {EXPIRED, rank, epoch}
  elseif kind == 'S' or sold_out() then
    return {SOLD_OUT, rank, epoch}
  end
  return {WAITING, rank, num(WR, 'head', 0), redis.call('ZCARD', WRQ), num(WR, 'active', 0), epoch}
end
