package inventory

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory/inventorytest"
	"github.com/flashsale/seckill/testkit"
	"github.com/redis/go-redis/v9"
)

// t0 is the start of every test activity; tests pass times explicitly, so
// nothing depends on the wall clock.
var t0 = time.Date(2030, 11, 11, 0, 0, 0, 0, time.UTC)

const window = 2 * time.Hour

// env is one backend under test: a Store with a random key prefix, and the
// raw client for assertions on keys.
type env struct {
	s      *Store
	rdb    redis.UniversalClient
	prefix string
}

// eachBackend runs fn against a fresh embedded miniredis and against the
// real Redis of SECKILL_TEST_REDIS_URL (skipped when unset, failed under
// CI=true), so both run the same scripts through the same assertions.
func eachBackend(t *testing.T, fn func(t *testing.T, e env)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, newEnv(t, embeddedClient(t))) })
	t.Run("redis", func(t *testing.T) { fn(t, newEnv(t, realClient(t))) })
}

func embeddedClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	e, err := NewEmbedded()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e.Client
}

func realClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	rdb, err := NewClient(testkit.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// newEnv gives the test its own key prefix on rdb and deletes every key
// under it at the end: the real Redis is shared and is never flushed.
func newEnv(tb testing.TB, rdb redis.UniversalClient) env {
	tb.Helper()
	prefix := "seckilltest-" + testkit.RandomHex(6)
	tb.Cleanup(func() { inventorytest.DeletePrefix(tb, rdb, prefix) })
	return env{s: New(rdb, Options{Prefix: prefix}), rdb: rdb, prefix: prefix}
}

func scanKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// randomID returns an activity id no other test run will use.
func randomID() int64 { return rand.Int64N(1<<62) + 1 }

// load loads a fresh activity with the given stock, full remaining, open
// from t0 for window.
func (e env) load(t *testing.T, stock int64) int64 {
	t.Helper()
	id := randomID()
	a := Activity{ID: id, Stock: stock, StartsAt: t0, EndsAt: t0.Add(window)}
	loaded, err := e.s.Load(context.Background(), a, stock, nil)
	if err != nil || !loaded {
		t.Fatalf("Load(%+v) = %v, %v; want true, nil", a, loaded, err)
	}
	return id
}

// reserve calls Reserve at now and fails the test on an error.
func (e env) reserve(t *testing.T, id int64, user, request, order string, now time.Time) ReserveResult {
	t.Helper()
	r, err := e.s.Reserve(context.Background(), id, user, request, order, now)
	if err != nil {
		t.Fatalf("Reserve(%d, %q, %q, %q) error: %v", id, user, request, order, err)
	}
	return r
}

// mustReserve reserves and fails the test unless the outcome is Reserved.
func (e env) mustReserve(t *testing.T, id int64, user, request, order string, now time.Time) {
	t.Helper()
	if r := e.reserve(t, id, user, request, order, now); r.Outcome != Reserved || r.OrderID != order {
		t.Fatalf("Reserve(%q, %q, %q) = %+v; want Reserved %s", user, request, order, r, order)
	}
}

func (e env) stats(t *testing.T, id int64) Stats {
	t.Helper()
	st, ok, err := e.s.Stats(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("Stats(%d) = %+v, %v, %v; want loaded", id, st, ok, err)
	}
	return st
}

func (e env) lookup(t *testing.T, id int64, order string) (Reservation, bool) {
	t.Helper()
	r, ok, err := e.s.Lookup(context.Background(), id, order)
	if err != nil {
		t.Fatalf("Lookup(%d, %q): %v", id, order, err)
	}
	return r, ok
}

func orderID(i int) string { return "o" + strconv.Itoa(i) }

// reserveDistinctUsers has users distinct users reserve one unit each of
// activity id (loaded with stock units) at once, and checks that exactly
// stock of them got one and the rest were told SoldOut, and that every unit
// is then reserved and pending.
func reserveDistinctUsers(t *testing.T, s *Store, id int64, users, stock int) {
	t.Helper()
	ctx := context.Background()
	results := make([]ReserveResult, users)
	errs := make([]error, users)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			results[i], errs[i] = s.Reserve(ctx, id, "u"+strconv.Itoa(i), "r", orderID(i), t0)
		})
	}
	wg.Wait()
	counts := map[Outcome]int{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("Reserve %d: %v", i, errs[i])
		}
		counts[r.Outcome]++
	}
	if counts[Reserved] != stock || counts[SoldOut] != users-stock || len(counts) != 2 {
		t.Errorf("outcomes = %v; want %d Reserved, %d SoldOut", counts, stock, users-stock)
	}
	st, ok, err := s.Stats(ctx, id)
	want := Stats{Stock: int64(stock), Remaining: 0, Reserved: int64(stock), Pending: int64(stock)}
	if err != nil || !ok || st != want {
		t.Errorf("Stats = %+v, %v, %v; want every unit reserved and pending", st, ok, err)
	}
}
