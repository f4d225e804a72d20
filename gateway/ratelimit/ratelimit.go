// Package ratelimit limits requests per client IP or user id (Keyed) and over
// everything (Global), as token buckets: Rate tokens per second, at most Burst
// in the bucket, one token per request, and a refused request takes nothing.
//
// A flash sale sees a million distinct users in a minute, so a Keyed limiter
// keeps only 16 bytes of state per key: a 64-bit hash of the key and the
// bucket's theoretical arrival time (GCRA, the generic cell rate algorithm),
// in a sharded table. It decides exactly as a golang.org/x/time/rate Limiter
// of the same rate and burst would (see the equivalence test), in under a
// quarter of the memory (docs/benchmarks.md). Idle keys are dropped, which loses
// nothing, and each shard has a hard cap: memory stays bounded however many
// keys pass through.
package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const shards = 256

// maxSpan bounds Burst x emission interval (about 73 years), so that the
// arithmetic on theoretical arrival times cannot overflow an int64.
const maxSpan = 1 << 61

// Config sets one family of per-key limiters.
type Config struct {
	Rate  rate.Limit // tokens per second per key
	Burst int        // bucket size per key
	// IdleTTL drops a key once its bucket has been full for this long. A
	// full bucket is what a new key starts with, so dropping it changes no
	// decision; the delay only saves churn. Default 5 minutes.
	IdleTTL time.Duration
	// MaxKeys caps the number of live keys (default 1,000,000). At the cap a
	// new key evicts a live one, preferring one whose bucket is already full
	// (a lossless eviction), else the one closest to full.
	MaxKeys int
}

// Keyed holds one token bucket per key.
//
// The bucket is kept as GCRA state: its theoretical arrival time tat, the
// moment the bucket will be full again if no request comes (tokens =
// Burst - (tat-now)/T, capped at Burst). With emission interval T = 1/Rate, a
// request at now computes newTAT = max(tat, now) + T and is allowed iff
// newTAT - now <= Burst*T (at least one token), storing newTAT; a refused one
// stores nothing and may retry after newTAT - now - Burst*T. A key whose tat
// is not after now has a full bucket, the same as a key never seen, so it
// needs no entry at all.
//
// Times are int64 nanoseconds on the monotonic clock, and T is 1e9/Rate
// rounded to the nearest nanosecond (at least 1): exact for every rate that
// divides 1e9 (the defaults 2, 10000 and 20000/s among them). For other rates
// a saturated key drifts from the ideal by under half a nanosecond per
// allowed request, until its bucket next fills.
type Keyed struct {
	cfg    Config
	seed   maphash.Seed
	now    func() time.Time
	epoch  time.Time // times are nanoseconds since epoch (monotonic)
	t      int64     // emission interval T, nanoseconds
	span   int64     // Burst * T: how far ahead of now tat may be
	mode   mode
	perCap int
	shards [shards]shard
}

type mode uint8

const (
	gcra   mode = iota
	always      // Rate is Inf: every request passes, nothing is stored
	never       // Burst <= 0: no request ever passes
	frozen      // Rate <= 0 (or so low that Burst*T exceeds maxSpan): no refill
)

// A shard maps the 64-bit hash of a key to its tat. The map holds no
// pointers, so the garbage collector never scans it.
//
// Keys are hashed with maphash and a per-process random seed. Two distinct
// keys that hash alike share one bucket: among n live keys a given key
// collides with probability about n/2^64 (5e-14 for a million), an outsider
// cannot aim for it without the seed, and the only effect is that two users
// share a rate limit (one may get a 429 a little early). That is why the key
// itself is not kept.
type shard struct {
	mu   sync.Mutex
	m    map[uint64]int64
	peak int // len(m) at the last Sweep; a map never shrinks, so Sweep rebuilds it
	_    [40]byte
}

// NewKeyed returns limiters configured by cfg.
func NewKeyed(cfg Config) *Keyed {
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = 5 * time.Minute
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 1_000_000
	}
	k := &Keyed{cfg: cfg, seed: maphash.MakeSeed(), now: time.Now, epoch: time.Now(), perCap: max(1, cfg.MaxKeys/shards)}
	switch {
	case cfg.Rate == rate.Inf:
		k.mode = always
	case cfg.Burst <= 0:
		k.mode = never
	default:
		t := math.Round(float64(time.Second) / float64(cfg.Rate))
		if cfg.Rate <= 0 || t*float64(cfg.Burst+1) > maxSpan {
			// x/time/rate at a zero limit lets Burst requests through, then
			// none. A frozen clock does the same: now is always 0, T is 1.
			k.mode, t = frozen, 1
		}
		k.t = max(1, int64(t))
		k.span = int64(cfg.Burst) * k.t
	}
	for i := range k.shards {
		k.shards[i].m = make(map[uint64]int64)
	}
	return k
}

// clock returns now as nanoseconds since k.epoch.
func (k *Keyed) clock() int64 {
	if k.mode == frozen {
		return 0
	}
	return int64(k.now().Sub(k.epoch))
}

// Allow reports whether key may proceed now; when not, retryAfter says when
// a token will be available.
func (k *Keyed) Allow(key string) (ok bool, retryAfter time.Duration) {
	switch k.mode {
	case always:
		return true, 0
	case never:
		return false, time.Second // as x/time/rate: a request larger than the bucket
	}
	now := k.clock()
	h := maphash.String(k.seed, key)
	s := &k.shards[h%shards]
	s.mu.Lock()
	tat, found := s.m[h]
	if !found || tat < now {
		tat = now
	}
	newTAT := tat + k.t
	if over := newTAT - now - k.span; over > 0 {
		s.mu.Unlock()
		if k.mode == frozen {
			return false, rate.InfDuration
		}
		return false, time.Duration(over)
	}
	if !found && len(s.m) >= k.perCap {
		s.evict(now)
	}
	s.m[h] = newTAT
	s.mu.Unlock()
	return true, 0
}

// evict drops one key to make room: the first of a few (in the map's random
// order) whose bucket is full, else the one of them closest to full.
func (s *shard) evict(now int64) {
	var victim uint64
	oldest, seen := int64(math.MaxInt64), 0
	for h, tat := range s.m {
		if tat <= now {
			victim = h
			break
		}
		if tat < oldest {
			victim, oldest = h, tat
		}
		if seen++; seen == 8 {
			break
		}
	}
	delete(s.m, victim)
}

// Len returns the number of keys with state (those not known to have a full bucket).
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Sweep drops keys whose bucket has been full for longer than IdleTTL (a
// returning key starts full, so this changes no decision) and returns how
// many. A shard's table that the sweep left under a quarter full is rebuilt
// at its new size, so memory taken by a spike is given back.
func (k *Keyed) Sweep() int {
	if k.mode == frozen {
		return 0 // no clock: no bucket ever refills, so none is dropped
	}
	cutoff := k.clock() - int64(k.cfg.IdleTTL)
	dropped := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		s.peak = max(s.peak, len(s.m)) // only Sweep shrinks a shard: this is its peak
		for h, tat := range s.m {
			if tat < cutoff {
				delete(s.m, h)
				dropped++
			}
		}
		if len(s.m) <= s.peak/4 && s.peak >= 64 {
			m := make(map[uint64]int64, len(s.m))
			for h, tat := range s.m {
				m[h] = tat
			}
			s.m, s.peak = m, len(m)
		}
		s.mu.Unlock()
	}
	return dropped
}

// Run sweeps every interval until ctx is done.
func (k *Keyed) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.Sweep()
		}
	}
}

// Global is a single limiter for everything.
type Global struct{ lim *rate.Limiter }

// NewGlobal returns a limiter of r tokens per second and bucket burst.
func NewGlobal(r rate.Limit, burst int) *Global { return &Global{lim: rate.NewLimiter(r, burst)} }

// Allow reports whether a request may proceed now.
func (g *Global) Allow() (bool, time.Duration) { return allow(g.lim, time.Now()) }

// allow takes a token if one is there; otherwise it reports how long until one
// would be, without keeping a reservation (a rejected request takes nothing).
func allow(l *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return true, 0
	}
	r.CancelAt(now)
	return false, d
}
