package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// refKeyed is the Keyed limiter as it was before GCRA: one *rate.Limiter per
// key in a map keyed by the key string. It stays here as the reference the
// benchmarks measure against (bytes per key, Allow ns/op).
type refKeyed struct {
	cfg    Config
	seed   maphash.Seed
	shards [64]refShard
	perCap int
}

type refShard struct {
	mu sync.Mutex
	m  map[string]*refEntry
}

type refEntry struct {
	lim      *rate.Limiter
	lastSeen int64
}

func newRefKeyed(cfg Config) *refKeyed {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 1_000_000
	}
	k := &refKeyed{cfg: cfg, seed: maphash.MakeSeed(), perCap: max(1, cfg.MaxKeys/64)}
	for i := range k.shards {
		k.shards[i].m = make(map[string]*refEntry)
	}
	return k
}

func (k *refKeyed) Allow(key string) (bool, time.Duration) {
	now := time.Now()
	s := &k.shards[maphash.String(k.seed, key)%64]
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		if len(s.m) >= k.perCap {
			for victim := range s.m {
				delete(s.m, victim)
				break
			}
		}
		e = &refEntry{lim: rate.NewLimiter(k.cfg.Rate, k.cfg.Burst)}
		s.m[key] = e
	}
	e.lastSeen = now.UnixNano()
	s.mu.Unlock()
	return allow(e.lim, now)
}
