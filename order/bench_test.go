package order

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
)

// BenchmarkDrain measures how fast the worker drains queued order messages
// at several batch sizes, and in the same run how fast the database takes a
// plain batched INSERT of the same rows (one transaction per batch, no
// lookup, claim or stock update). The ratio worker/raw says how much of the
// database's pace the worker's bookkeeping costs.
//
// Handle is driven by 2*BatchSize goroutines, as an mq subscription with
// Concurrency 2*BatchSize would, so that the next batch is waiting while one
// is written.
func BenchmarkDrain(b *testing.B) {
	for _, be := range backends() {
		for _, size := range []int{1, 10, 100, 500} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, size), func(b *testing.B) {
				db := be.open(b)
				s := NewStore(db)
				ctx := context.Background()

				a := newActivity(b, s, int64(b.N))
				msgs := make([]*mq.Message, b.N)
				for i := range msgs {
					msgs[i] = mqMessage(b, message(a.ID, fmt.Sprintf("w-%09d", i), fmt.Sprintf("u-%09d", i)))
				}
				w := NewWorker(s, &fakeClaimer{}, WorkerConfig{BatchSize: size})
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range 2 * size {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(len(msgs)) {
								return
							}
							if err := w.Handle(ctx, msgs[i]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				workerTime := time.Since(start)
				b.StopTimer()
				w.Close()

				raw := newActivity(b, s, int64(b.N))
				deadline := time.Now().UTC().Add(15 * time.Minute)
				rows := make([]Order, b.N)
				for i := range rows {
					rows[i] = Order{
						ID: fmt.Sprintf("r-%09d", i), ActivityID: raw.ID, UserID: fmt.Sprintf("u-%09d", i),
						RequestID: "req", TraceID: "trace", State: StateCreated, PriceCents: 999, PayDeadline: deadline,
					}
				}
				start = time.Now()
				for lo := 0; lo < len(rows); lo += size {
					chunk := rows[lo:min(lo+size, len(rows))]
					if err := db.WithContext(ctx).Create(&chunk).Error; err != nil {
						b.Fatal(err)
					}
				}
				rawTime := time.Since(start)

				if n := countOrders(b, s, a.ID); n != int64(b.N) {
					b.Fatalf("worker wrote %d orders, want %d", n, b.N)
				}
				workerRate := float64(b.N) / workerTime.Seconds()
				rawRate := float64(b.N) / rawTime.Seconds()
				b.ReportMetric(workerRate, "orders/s")
				b.ReportMetric(rawRate, "raw_orders/s")
				b.ReportMetric(workerRate/rawRate, "worker/raw")
			})
		}
	}
}
