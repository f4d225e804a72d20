package ratelimit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestKeyedDecidesAsXTimeRate drives a Keyed limiter and one
// golang.org/x/time/rate Limiter per key (through allow, the code the Keyed
// limiter used before GCRA and Global still uses) with the same random
// request times, random sweeps in between, and asserts the same decision
// every time and the same Retry-After to within rounding.
func TestKeyedDecidesAsXTimeRate(t *testing.T) {
	cases := []struct {
		rate  rate.Limit
		burst int
	}{
		{2, 5}, {10000, 20000}, {20000, 20000}, // the defaults
		{1, 1}, {1, 3}, {0.1, 2}, {0.001, 1}, {100, 100}, {1000, 7}, {1e9, 3},
		{3, 4}, {7.5, 10}, {0.3, 2}, // 1e9/rate is not a whole number of nanoseconds
		{0, 3}, // no refill at all
	}
	const keys = 3
	names := []string{"key-0", "key-1", "key-2"}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("rate=%v,burst=%d", tc.rate, tc.burst), func(t *testing.T) {
			emission := float64(time.Second) / float64(tc.rate) // T in ns
			if tc.rate == 0 {
				emission = float64(time.Second)
			}
			exact := emission == math.Trunc(emission)
			// Enough requests to drain every bucket several times over.
			steps, seeds := max(3000, 8*keys*tc.burst), 8
			if tc.burst > 1000 {
				steps, seeds = 4*keys*tc.burst, 1
			}
			totalAllowed, totalRefused := 0, 0
			for seed := range uint64(seeds) {
				rng := rand.New(rand.NewPCG(seed, uint64(tc.burst)))
				clock := time.Unix(1_700_000_000, 0)
				idle := []time.Duration{1, time.Duration(emission), 5 * time.Minute}[seed%3]
				k := NewKeyed(Config{Rate: tc.rate, Burst: tc.burst, IdleTTL: idle})
				k.now = func() time.Time { return clock }
				ref := make([]*rate.Limiter, keys)
				for i := range ref {
					ref[i] = rate.NewLimiter(tc.rate, tc.burst)
				}
				allowed, phase, phaseLeft := 0, 0, 0
				for step := range steps {
					if phaseLeft--; phaseLeft <= 0 {
						phase, phaseLeft = rng.IntN(4), 20+rng.IntN(10*max(20, tc.burst))
					}
					// Gaps between requests over all keys; each key sees about
					// a third of the requests.
					var gap float64
					switch phase {
					case 0: // a flood: many times the rate, often at the same instant
						if rng.IntN(2) == 0 {
							gap = rng.Float64() * emission / (2 * keys)
						}
					case 1: // about the rate: hovering around an empty bucket
						gap = rng.Float64() * 2 * emission / keys
					case 2: // below the rate: refilling
						gap = rng.Float64() * 4 * emission / keys
					case 3: // one idle stretch, past IdleTTL and a full refill at times
						gap = rng.Float64() * 2 * float64(idle+time.Duration(float64(tc.burst)*emission))
						phaseLeft = 0
					}
					clock = clock.Add(time.Duration(gap))
					if rng.IntN(20) == 0 {
						k.Sweep() // dropping full buckets must change nothing
					}
					key := rng.IntN(keys)
					got, gotRetry := k.Allow(names[key])
					want, wantRetry := allow(ref[key], clock)
					if got != want {
						t.Fatalf("seed %d step %d key %d: Keyed allowed=%v, x/time/rate allowed=%v", seed, step, key, got, want)
					}
					if got {
						allowed++
						totalAllowed++
						continue
					}
					totalRefused++
					tolerance := 2 * time.Nanosecond
					if !exact {
						tolerance += time.Duration(allowed) // < 0.5 ns of drift per allowed request
					}
					if tc.rate == 0 {
						if gotRetry != rate.InfDuration || wantRetry < 100*365*24*time.Hour {
							t.Fatalf("seed %d step %d: Retry-After %v, x/time/rate %v; want both unbounded", seed, step, gotRetry, wantRetry)
						}
					} else if d := gotRetry - wantRetry; d > tolerance || d < -tolerance {
						t.Fatalf("seed %d step %d: Retry-After %v, x/time/rate %v (off by %v)", seed, step, gotRetry, wantRetry, d)
					}
				}
			}
			t.Logf("%d allowed, %d refused", totalAllowed, totalRefused)
			if tc.rate == 0 {
				if totalAllowed != seeds*keys*tc.burst {
					t.Fatalf("rate 0: %d allowed, want the bursts only (%d)", totalAllowed, seeds*keys*tc.burst)
				}
			} else if total := totalAllowed + totalRefused; totalAllowed < total/10 || totalRefused < total/10 {
				t.Fatalf("%d allowed, %d refused: the sequence does not exercise both", totalAllowed, totalRefused)
			}
		})
	}
}

// TestKeyedTokenArrivesOnTime: at 10/s a token is there exactly 100ms after
// the bucket ran dry, not a nanosecond earlier.
func TestKeyedTokenArrivesOnTime(t *testing.T) {
	clock := time.Unix(1000, 0)
	k := NewKeyed(Config{Rate: 10, Burst: 2})
	k.now = func() time.Time { return clock }
	ref := rate.NewLimiter(10, 2)
	check := func(wantOK bool, wantRetry time.Duration) {
		t.Helper()
		ok, retry := k.Allow("u")
		rok, rretry := allow(ref, clock)
		if ok != wantOK || retry != wantRetry || rok != wantOK || rretry != wantRetry {
			t.Fatalf("at %v: Keyed (%v, %v), x/time/rate (%v, %v), want (%v, %v)", clock, ok, retry, rok, rretry, wantOK, wantRetry)
		}
	}
	check(true, 0)
	check(true, 0)
	check(false, 100*time.Millisecond)
	clock = clock.Add(100*time.Millisecond - 1)
	// One nanosecond early: refused. (x/time/rate computes the 1ns wait in
	// floating point and truncates it, here to 0, so it would let this one
	// through: its decisions are exact only to within a nanosecond, which a
	// request lands in with probability about 1ns/T.)
	if ok, retry := k.Allow("u"); ok || retry != 1 {
		t.Fatalf("1ns before the token: (%v, %v), want refused, retry in 1ns", ok, retry)
	}
	clock = clock.Add(1)
	check(true, 0)
	check(false, 100*time.Millisecond)
	clock = clock.Add(time.Hour)
	check(true, 0)
	check(true, 0)
	check(false, 100*time.Millisecond)
}

func TestKeyedEdgeRates(t *testing.T) {
	inf := NewKeyed(Config{Rate: rate.Inf, Burst: 0})
	for range 1000 {
		if ok, _ := inf.Allow("u"); !ok {
			t.Fatal("rate Inf refused a request")
		}
	}
	if inf.Len() != 0 {
		t.Fatalf("rate Inf kept %d keys, want none", inf.Len())
	}
	zeroBurst := NewKeyed(Config{Rate: 10, Burst: 0})
	if ok, retry := zeroBurst.Allow("u"); ok || retry != time.Second {
		t.Fatalf("burst 0: (%v, %v), want refused with 1s as x/time/rate", ok, retry)
	}
}

// TestSweepKeepsBucketsNotYetFull: a key idle for longer than IdleTTL whose
// bucket has not refilled yet is kept; dropping it would hand out tokens the
// documented token bucket does not have.
func TestSweepKeepsBucketsNotYetFull(t *testing.T) {
	clock := time.Unix(1000, 0)
	k := NewKeyed(Config{Rate: 0.001, Burst: 1, IdleTTL: time.Minute}) // one token per 1000s
	k.now = func() time.Time { return clock }
	k.Allow("slow")
	clock = clock.Add(10 * time.Minute)
	if n := k.Sweep(); n != 0 {
		t.Fatalf("Sweep dropped %d keys, want 0: the bucket refills only at 1000s", n)
	}
	if ok, retry := k.Allow("slow"); ok || retry != 400*time.Second {
		t.Fatalf("after the sweep: (%v, %v), want refused, retry in 400s", ok, retry)
	}
	clock = clock.Add(400*time.Second + time.Minute + 1) // full, and idle past IdleTTL
	if n := k.Sweep(); n != 1 {
		t.Fatalf("Sweep dropped %d keys, want 1", n)
	}
}

// TestSweepGivesMemoryBack: a shard table emptied by a sweep is rebuilt small.
func TestSweepGivesMemoryBack(t *testing.T) {
	clock := time.Unix(1000, 0)
	k := NewKeyed(Config{Rate: 10, Burst: 1, IdleTTL: time.Minute})
	k.now = func() time.Time { return clock }
	for i := range 100_000 {
		k.Allow(fmt.Sprint("spike-", i))
	}
	clock = clock.Add(2 * time.Minute)
	k.Allow("survivor")
	if n := k.Sweep(); n != 100_000 {
		t.Fatalf("Sweep dropped %d, want 100000", n)
	}
	for i := range k.shards {
		if p := k.shards[i].peak; p > 1 {
			t.Fatalf("shard %d: peak %d after the sweep, want its table rebuilt at its new size", i, p)
		}
	}
	if ok, _ := k.Allow("survivor"); ok {
		t.Fatal("the survivor's state was lost when its shard was rebuilt")
	}
}

// TestEvictionPrefersFullerBuckets: at the cap, a new key evicts a key closer
// to full rather than the one that just emptied its bucket.
func TestEvictionPrefersFullerBuckets(t *testing.T) {
	clock := time.Unix(1000, 0)
	k := NewKeyed(Config{Rate: 1, Burst: 2, MaxKeys: shards * 4})
	k.now = func() time.Time { return clock }
	k.Allow("hot")
	k.Allow("hot") // empty: full again in 2s
	for i := range 20_000 {
		k.Allow(fmt.Sprint("filler-", i)) // one token each: full again in 1s
	}
	if n := k.Len(); n > shards*4 {
		t.Fatalf("Len = %d, want at most the cap %d", n, shards*4)
	}
	if ok, _ := k.Allow("hot"); ok {
		t.Fatal("the emptied bucket was evicted before fuller ones")
	}
}

// TestManyKeysEachOwnBucket: 300,000 keys each get exactly their burst.
func TestManyKeysEachOwnBucket(t *testing.T) {
	k := NewKeyed(Config{Rate: 0.001, Burst: 2, MaxKeys: 2_000_000})
	const n = 300_000
	for round := range 3 {
		for i := range n {
			ok, _ := k.Allow("user-" + fmt.Sprint(i))
			if want := round < 2; ok != want {
				t.Fatalf("round %d key %d: allowed=%v, want %v", round, i, ok, want)
			}
		}
	}
	if k.Len() != n {
		t.Fatalf("Len = %d, want %d", k.Len(), n)
	}
}

// TestKeyedConcurrent hammers one hot key and many private keys from several
// goroutines while sweeping: the hot key lets through no more than burst plus
// what refilled, and every private key exactly its burst.
func TestKeyedConcurrent(t *testing.T) {
	const workers, perWorker, burst = 8, 500, 20
	const r = 1000
	k := NewKeyed(Config{Rate: r, Burst: burst, IdleTTL: time.Millisecond})
	slow := NewKeyed(Config{Rate: 0.001, Burst: 3, IdleTTL: time.Millisecond})
	var hot atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				k.Sweep()
				slow.Sweep()
				k.Len()
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if ok, _ := k.Allow("hot"); ok {
					hot.Add(1)
				}
				key := fmt.Sprint("w", w, "-", i)
				for j := range 4 {
					if ok, _ := slow.Allow(key); ok != (j < 3) {
						t.Errorf("key %s request %d: allowed=%v", key, j, ok)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	elapsed := time.Since(start)
	if max := int64(burst + float64(r)*elapsed.Seconds() + 1); hot.Load() > max || hot.Load() < burst {
		t.Fatalf("hot key allowed %d in %v, want between %d and %d", hot.Load(), elapsed, burst, max)
	}
	if n := slow.Len(); n != workers*perWorker {
		t.Fatalf("slow Len = %d, want %d: a bucket not yet full was swept", n, workers*perWorker)
	}
}
