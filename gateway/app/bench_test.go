package app

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkInStockBuy is the in-stock phase of a sale on the whole
// all-in-one (HTTP, the reserve, the publish to the embedded JetStream
// queue, its order workers writing to SQLite), every op a new buyer, 64
// at once, under each SECKILL_QUEUE_SYNC and with and without group commit
// (SECKILL_PUBLISH_BATCH), all in one run: the ratio between the cases is
// what the default is chosen from (docs/benchmarks.md). It reports the
// buys' p99 besides ns/op.
//
//	cd gateway && go test -run '^$' -bench InStockBuy -benchtime 5000x ./app/
func BenchmarkInStockBuy(b *testing.B) {
	for _, tc := range []struct{ sync, batch string }{
		{"interval", "1"}, {"interval", "128"}, {"always", "1"}, {"always", "128"},
	} {
		b.Run("sync="+tc.sync+"/batch="+tc.batch, func(b *testing.B) {
			_, c := startRoleWith(b, AllInOne, map[string]string{
				"SECKILL_QUEUE_SYNC": tc.sync, "SECKILL_PUBLISH_BATCH": tc.batch,
				"SECKILL_RATE_PER_USER": "1000", "SECKILL_RATE_PER_IP": "1000000", "SECKILL_RATE_PER_IP_BURST": "1000000",
				"SECKILL_RATE_GLOBAL": "1000000", "SECKILL_RATE_GLOBAL_BURST": "1000000",
			}, Options{})
			act := c.createActivity(b, 10_000_000, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
			var seq atomic.Int64
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.SetParallelism(32) // 64 buyers at once on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					user := "u" + strconv.FormatInt(seq.Add(1), 10)
					start := time.Now()
					code := c.do(b, http.MethodPost, "/api/v1/activities/"+act+"/orders", c.token(b, user), nil, nil)
					mine = append(mine, time.Since(start))
					if code != http.StatusAccepted {
						b.Errorf("buy: %d", code)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			}
		})
	}
}
