package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestKeyedLimitsEachKeySeparately(t *testing.T) {
	k := NewKeyed(Config{Rate: 1, Burst: 3})
	for i := range 3 {
		if ok, _ := k.Allow("alice"); !ok {
			t.Fatalf("request %d within burst rejected", i+1)
		}
	}
	ok, retry := k.Allow("alice")
	if ok {
		t.Fatal("request past burst allowed")
	}
	if retry <= 0 || retry > time.Second {
		t.Fatalf("retryAfter = %v, want within (0, 1s] at 1 token/s", retry)
	}
	if ok, _ := k.Allow("bob"); !ok {
		t.Fatal("another key was limited by alice's bucket")
	}
}

func TestRejectedRequestTakesNoToken(t *testing.T) {
	clock := time.Unix(1000, 0)
	k := NewKeyed(Config{Rate: 1, Burst: 1})
	k.now = func() time.Time { return clock }
	if ok, _ := k.Allow("u"); !ok {
		t.Fatal("first request rejected")
	}
	for range 10 { // hammering while empty must not push the next token further away
		k.Allow("u")
	}
	clock = clock.Add(time.Second)
	if ok, _ := k.Allow("u"); !ok {
		t.Fatal("a token refilled after 1s was not available: rejected requests consumed tokens")
	}
}

func TestSweepDropsIdleKeys(t *testing.T) {
	clock := time.Unix(1000, 0)
	k := NewKeyed(Config{Rate: 10, Burst: 10, IdleTTL: time.Minute})
	k.now = func() time.Time { return clock }
	for i := range 100 {
		k.Allow(fmt.Sprint("idle-", i))
	}
	clock = clock.Add(2 * time.Minute)
	k.Allow("fresh")
	if n := k.Sweep(); n != 100 {
		t.Fatalf("Sweep dropped %d, want the 100 idle keys", n)
	}
	if k.Len() != 1 {
		t.Fatalf("Len = %d after sweep, want 1 (the fresh key)", k.Len())
	}
}

func TestMemoryBoundedWithManyDistinctKeys(t *testing.T) {
	k := NewKeyed(Config{Rate: 1, Burst: 1, MaxKeys: shards * 100})
	for i := range 200_000 {
		k.Allow(fmt.Sprint("user-", i))
	}
	if n := k.Len(); n > shards*100 {
		t.Fatalf("Len = %d, want at most the cap %d", n, shards*100)
	}
}

func TestGlobal(t *testing.T) {
	g := NewGlobal(rate.Limit(1), 2)
	a, _ := g.Allow()
	b, _ := g.Allow()
	c, retry := g.Allow()
	if !a || !b || c {
		t.Fatalf("burst 2: got %v %v %v", a, b, c)
	}
	if retry <= 0 {
		t.Fatalf("retryAfter = %v, want > 0", retry)
	}
}
