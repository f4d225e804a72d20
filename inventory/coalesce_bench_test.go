package inventory

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkCoalescedReserve measures Reserve through a Coalescer with
// batches of 1 (coalescing off: one script call per reserve, as
// Store.Reserve) against batches of up to 16 and 64, on the embedded
// miniredis and on a real Redis in the same run, so the gain reads as a
// ratio. RunParallel runs 32 goroutines per core, buyers arriving at once:
//
//	go test -run '^$' -bench CoalescedReserve -benchmem
//
// The redis sub-benchmarks need SECKILL_TEST_REDIS_URL.
func BenchmarkCoalescedReserve(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) redis.UniversalClient
	}{
		{"miniredis", func(b *testing.B) redis.UniversalClient { return embeddedClient(b) }},
		{"redis", func(b *testing.B) redis.UniversalClient { return realClient(b) }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			rdb := be.open(b)
			for _, n := range []int{1, 16, 64} {
				b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
					benchCoalescedReserve(b, rdb, CoalesceConfig{MaxBatch: n, MaxWait: DefaultCoalesceMaxWait})
				})
			}
		})
	}
}

// benchCoalescedReserve reserves one unit per op, each for a new user, so
// every op takes the full path of the script.
func benchCoalescedReserve(b *testing.B, rdb redis.UniversalClient, cfg CoalesceConfig) {
	e := newEnv(b, rdb)
	ctx := context.Background()
	a := Activity{ID: randomID(), Stock: 1 << 50, StartsAt: t0, EndsAt: t0.Add(window)}
	if _, err := e.s.Load(ctx, a, a.Stock, nil); err != nil {
		b.Fatal(err)
	}
	inv := NewCoalescer(e.s, cfg)
	cnt := &counter{}
	rdb.AddHook(cnt)
	before := cnt.n.Load()
	var n atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := strconv.FormatInt(n.Add(1), 10)
			r, err := inv.Reserve(ctx, a.ID, "u"+i, "r"+i, "o"+i, t0)
			if err != nil || r.Outcome != Reserved {
				b.Errorf("Reserve = %+v, %v", r, err)
				return
			}
		}
	})
	b.StopTimer()
	if calls := cnt.n.Load() - before; calls > 0 {
		b.ReportMetric(float64(n.Load())/float64(calls), "reserves/call")
	}
}
