package batch_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/natsjs"
)

// storeCounter counts what reaches the backend: Publish calls and the
// messages they carry, so a benchmark can report how many order messages
// each stored message (and so each write and, with SyncAlways, each fsync
// of the stream) carried.
type storeCounter struct {
	mq.Publisher
	stored, orders atomic.Int64
}

func (c *storeCounter) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	c.stored.Add(int64(len(msgs)))
	for _, m := range msgs {
		if n := m.Headers[batch.HeaderBatch]; n != "" {
			var k int64
			_, _ = fmt.Sscan(n, &k)
			c.orders.Add(k)
		} else {
			c.orders.Add(1)
		}
	}
	return c.Publisher.Publish(ctx, topic, msgs...)
}

// BenchmarkDurablePublish is the gateway's publish during a spike on the
// embedded JetStream backend with its file store on disk (b.TempDir()):
// 64 and 256 concurrent publishers (gin's request goroutines), each
// publishing one order message per call and timing it, while one consumer
// group acknowledges them; and one publisher alone, a quiet topic, where
// batching must cost nothing. All four settings run in one go, so they are
// compared on the same machine under the same load:
//
//	sync=interval  the server's default: a Publish is acknowledged once the
//	               message is written (in the OS's page cache), fsync every
//	               2 minutes
//	sync=always    fsync before every acknowledgement
//	batch=off|on   publishers alone, or through batch.Publisher (and the
//	               consumer through batch.Subscriber)
//
// Metrics: ns/op is the time per published order at that concurrency (the
// inverse of throughput); p50-us and p99-us the latency of one Publish call;
// orders/store how many orders each message the stream stored carried (one
// write, and with sync=always one fsync, each).
func BenchmarkDurablePublish(b *testing.B) {
	for _, sync := range []string{"interval", "always"} {
		for _, batching := range []string{"off", "on"} {
			for _, publishers := range []int{1, 64, 256} {
				name := fmt.Sprintf("sync=%s/batch=%s/publishers=%d", sync, batching, publishers)
				b.Run(name, func(b *testing.B) {
					benchDurablePublish(b, sync == "always", batching == "on", publishers)
				})
			}
		}
	}
}

func benchDurablePublish(b *testing.B, syncAlways, batching bool, publishers int) {
	br, err := natsjs.New(b.Context(), natsjs.Config{
		StoreDir: b.TempDir(), SyncAlways: syncAlways, Capacity: 1 << 20, Logger: quiet(),
		Groups: map[string][]string{"orders": {"workers"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	counter := &storeCounter{Publisher: br}
	var pub mq.Publisher = counter
	var sub mq.Subscriber = br
	if batching {
		pub = batch.NewPublisher(counter, batch.Config{})
		sub = batch.NewSubscriber(br, br, batch.SubscriberConfig{Logger: quiet()})
	}
	b.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
	err = sub.Subscribe(b.Context(), "orders", mq.SubscribeOptions{Group: "workers", Concurrency: 64},
		func(context.Context, *mq.Message) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Publish(b.Context(), "orders", &mq.Message{Payload: order}); err != nil {
		b.Fatal(err) // the stream exists before the clock starts
	}
	counter.stored.Store(0)
	counter.orders.Store(0)

	var mu sync.Mutex
	var latencies []time.Duration
	publish := func(next func() bool) {
		ctx := context.Background()
		var mine []time.Duration
		for next() {
			start := time.Now()
			err := pub.Publish(ctx, "orders", &mq.Message{Key: "u-123456", Payload: order})
			if err != nil && !errors.Is(err, mq.ErrQueueFull) {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	}
	b.ReportAllocs()
	b.ResetTimer()
	if publishers == 1 {
		publish(b.Loop)
	} else {
		// RunParallel runs parallelism x GOMAXPROCS goroutines.
		b.SetParallelism((publishers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) { publish(pb.Next) })
	}
	b.StopTimer()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		q := func(p float64) float64 {
			return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
		}
		b.ReportMetric(q(0.50), "p50-us")
		b.ReportMetric(q(0.99), "p99-us")
	}
	if n := counter.stored.Load(); n > 0 {
		b.ReportMetric(float64(counter.orders.Load())/float64(n), "orders/store")
	}
}
