package memory_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
)

// order is a payload the size of the gateway's order message.
var order = []byte(`{"order_id":"01J9Z3Q4M5N6P7R8S9T0V1W2X3","activity_id":"42","user_id":"u-123456","price_cents":9900,"reserved_at":"2024-11-11T00:00:00.123Z"}`)

// BenchmarkPublish measures the gateway's hot path alone: one message into
// a topic nobody consumes yet (the held queue, the same ring a group uses).
// The broker is replaced untimed every chunk messages to bound memory.
func BenchmarkPublish(b *testing.B) {
	const chunk = 4096
	ctx := context.Background()
	br := benchBroker(b, chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%chunk == 0 {
			b.StopTimer()
			_ = br.Close() // discards the held messages
			br = benchBroker(b, chunk)
			b.StartTimer()
		}
		if err := br.Publish(ctx, "orders", &mq.Message{Key: "k", Payload: order}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishParallel publishes from GOMAXPROCS goroutines, as gin's
// request goroutines do, while one worker consumes: the contention the
// gateway sees. A refused publish (ErrQueueFull: the worker fell behind) is
// what the gateway answers 503 BUSY for; it is counted, not fatal.
func BenchmarkPublishParallel(b *testing.B) {
	br := benchBroker(b, 0)
	if err := br.Subscribe(b.Context(), "orders", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error { return nil }); err != nil {
		b.Fatal(err)
	}
	var refused atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			err := br.Publish(ctx, "orders", &mq.Message{Payload: order})
			switch {
			case errors.Is(err, mq.ErrQueueFull):
				refused.Add(1)
			case err != nil:
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
}

// BenchmarkPublishHandle measures throughput from Publish to a handler
// returning nil; ns/op is per message end to end.
func BenchmarkPublishHandle(b *testing.B) {
	for _, concurrency := range []int{1, 4} {
		b.Run("concurrency="+strconv.Itoa(concurrency), func(b *testing.B) {
			br := benchBroker(b, b.N+1)
			var handled atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			err := br.Subscribe(b.Context(), "orders", mq.SubscribeOptions{Concurrency: concurrency},
				func(context.Context, *mq.Message) error {
					if handled.Add(1) == n {
						close(done)
					}
					return nil
				})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := br.Publish(ctx, "orders", &mq.Message{Payload: order}); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func benchBroker(b *testing.B, capacity int) *memory.Broker {
	br := memory.New(memory.Config{
		Capacity: max(capacity, memory.DefaultCapacity),
		// Close after a benchmark discards what is left rather than wait.
		DrainTimeout: time.Millisecond,
		Logger:       slog.New(slog.DiscardHandler),
	})
	b.Cleanup(func() { _ = br.Close() })
	return br
}
