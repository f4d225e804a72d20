package natsjs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/natsjs"
)

// order is a payload the size of the gateway's order message.
var order = []byte(`{"order_id":"0251377809887330304-1","activity_id":42,"user_id":"u-123456","request_id":"click-u-123456","price_cents":9900,"reserved_at":"2026-11-11T00:00:00.123Z"}`)

// BenchmarkPublish is the gateway's publish on the durable embedded queue
// (a JetStream file store acknowledged each message) against the in-memory
// queue in the same run, from one goroutine and from many (gin's request
// goroutines), while one group consumes. The ratio is the price of a 202
// that survives kill -9.
func BenchmarkPublish(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	backends := []struct {
		name string
		open func(b *testing.B) mq.Publisher
	}{
		{"memory", func(b *testing.B) mq.Publisher {
			br := memory.New(memory.Config{Capacity: 1 << 20, Logger: log})
			b.Cleanup(func() { _ = br.Close() })
			consume(b, br)
			return br
		}},
		{"natsjs-embedded", func(b *testing.B) mq.Publisher {
			br, err := natsjs.New(b.Context(), natsjs.Config{StoreDir: b.TempDir(), Capacity: 1 << 20, Logger: log})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = br.Close() })
			consume(b, br)
			return br
		}},
	}
	for _, be := range backends {
		b.Run(be.name+"/serial", func(b *testing.B) {
			pub := be.open(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := pub.Publish(ctx, "orders", &mq.Message{Key: "k", Payload: order}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/parallel", func(b *testing.B) {
			pub := be.open(b)
			b.ReportAllocs()
			b.SetParallelism(32) // 32 x GOMAXPROCS concurrent publishers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := pub.Publish(ctx, "orders", &mq.Message{Payload: order}); err != nil && !errors.Is(err, mq.ErrQueueFull) {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func consume(b *testing.B, sub mq.Subscriber) {
	err := sub.Subscribe(b.Context(), "orders", mq.SubscribeOptions{Group: "g", Concurrency: 64}, func(context.Context, *mq.Message) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
}
