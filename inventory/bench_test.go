package inventory

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkReserve measures the reserve script against a plain HINCRBY
// round trip on the same backend in the same run, so the cost of the script
// reads as a ratio that does not depend on the machine:
//
//	go test -run '^$' -bench Reserve -benchmem
//
// The redis sub-benchmarks need SECKILL_TEST_REDIS_URL.
func BenchmarkReserve(b *testing.B) {
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
			b.Run("reserve", func(b *testing.B) { benchReserve(b, rdb) })
			b.Run("hincrby", func(b *testing.B) { benchHIncrBy(b, rdb) })
		})
	}
}

// benchReserve reserves one unit per op, each for a new user, so every op
// takes the full path (checks, decrement, three writes).
func benchReserve(b *testing.B, rdb redis.UniversalClient) {
	e := newEnv(b, rdb)
	ctx := context.Background()
	a := Activity{ID: randomID(), Stock: 1 << 50, StartsAt: t0, EndsAt: t0.Add(window)}
	if _, err := e.s.Load(ctx, a, a.Stock, nil); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := strconv.FormatInt(n.Add(1), 10)
			r, err := e.s.Reserve(ctx, a.ID, "u"+i, "r"+i, "o"+i, t0)
			if err != nil || r.Outcome != Reserved {
				b.Errorf("Reserve = %+v, %v", r, err)
				return
			}
		}
	})
}

// benchHIncrBy is the reference: one plain command round trip.
func benchHIncrBy(b *testing.B, rdb redis.UniversalClient) {
	e := newEnv(b, rdb)
	ctx := context.Background()
	key := e.s.keys(randomID()).meta
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rdb.HIncrBy(ctx, key, "remaining", -1).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
