// Package ratelimit keys token-bucket limiters (golang.org/x/time/rate) by
// client IP or user id. A flash sale sees a million distinct users in a
// minute, so per-key limiters are dropped once idle and each shard has a hard
// cap: memory stays bounded however many keys pass through.
package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const shards = 64

// Config sets one family of per-key limiters.
type Config struct {
	Rate  rate.Limit // tokens per second per key
	Burst int        // bucket size per key
	// IdleTTL drops a key's limiter after this long without a request; a
	// returning key starts with a full bucket, which is harmless because
	// an idle key was not bursting. Default 5 minutes.
	IdleTTL time.Duration
	// MaxKeys caps the number of live limiters (default 1,000,000). At the
	// cap, an arbitrary live key is evicted to make room.
	MaxKeys int
}

// Keyed holds one limiter per key.
type Keyed struct {
	cfg    Config
	seed   maphash.Seed
	now    func() time.Time
	shards [shards]shard
	perCap int
}

type shard struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	lim      *rate.Limiter
	lastSeen int64 // unix nanoseconds, guarded by the shard mutex
}

// NewKeyed returns limiters configured by cfg.
func NewKeyed(cfg Config) *Keyed {
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = 5 * time.Minute
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 1_000_000
	}
	k := &Keyed{cfg: cfg, seed: maphash.MakeSeed(), now: time.Now, perCap: max(1, cfg.MaxKeys/shards)}
	for i := range k.shards {
		k.shards[i].m = make(map[string]*entry)
	}
	return k
}

// Allow reports whether key may proceed now; when not, retryAfter says when
// a token will be available.
func (k *Keyed) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := k.now()
	s := &k.shards[maphash.String(k.seed, key)%shards]
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		if len(s.m) >= k.perCap {
			for victim := range s.m { // map order is random: a cheap random eviction
				delete(s.m, victim)
				break
			}
		}
		e = &entry{lim: rate.NewLimiter(k.cfg.Rate, k.cfg.Burst)}
		s.m[key] = e
	}
	e.lastSeen = now.UnixNano()
	s.mu.Unlock()
	return allow(e.lim, now)
}

// Len returns the number of live per-key limiters.
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

// Sweep drops limiters idle for longer than IdleTTL and returns how many.
func (k *Keyed) Sweep() int {
	cutoff := k.now().Add(-k.cfg.IdleTTL).UnixNano()
	dropped := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		for key, e := range s.m {
			if e.lastSeen < cutoff {
				delete(s.m, key)
				dropped++
			}
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
