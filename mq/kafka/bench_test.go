package kafka_test

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flashsale/seckill/mq"
)

// BenchmarkPublish compares the backend's Writer (batched, acks from all
// replicas, 2 ms batch timeout) under 64 concurrent publishers, one message
// per Publish as the gateway does, with the same Writer and one publisher,
// and with one message per produce request (BatchSize 1, sequential), on
// the in-process kfake cluster. It reports
// messages per second and the 99th percentile latency of one publish.
func BenchmarkPublish(b *testing.B) {
	brokers := newCluster(b)
	payload := []byte(`{"order_id":"0249881406908399620-1","activity_id":1,"user_id":"user-123456"}`)

	b.Run("batched-concurrent", func(b *testing.B) {
		br := newBroker(b, testConfig(brokers))
		if err := br.EnsureTopics(b.Context(), "bench-batched"); err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var lat []time.Duration
		var seq atomic.Int64
		b.SetParallelism(32) // 32 x GOMAXPROCS publishers
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				t0 := time.Now()
				err := br.Publish(b.Context(), "bench-batched", &mq.Message{
					Key: "user-" + strconv.FormatInt(seq.Add(1), 10), Payload: payload,
				})
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		report(b, lat, time.Since(start))
	})

	// The same Writer with one publisher: every Publish waits out the
	// batch timeout alone, the floor of its latency.
	b.Run("batched-sequential", func(b *testing.B) {
		br := newBroker(b, testConfig(brokers))
		if err := br.EnsureTopics(b.Context(), "bench-sequential"); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			t0 := time.Now()
			if err := br.Publish(b.Context(), "bench-sequential", &mq.Message{Key: "user-" + strconv.Itoa(i), Payload: payload}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat, time.Since(start))
	})

	b.Run("one-per-write", func(b *testing.B) {
		br := newBroker(b, testConfig(brokers))
		if err := br.EnsureTopics(b.Context(), "bench-single"); err != nil {
			b.Fatal(err)
		}
		w := &kafkago.Writer{
			Addr:         kafkago.TCP(brokers...),
			Balancer:     &kafkago.CRC32Balancer{},
			RequiredAcks: kafkago.RequireAll,
			BatchSize:    1,
			BatchTimeout: time.Millisecond,
		}
		b.Cleanup(func() { _ = w.Close() })
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			t0 := time.Now()
			if err := w.WriteMessages(b.Context(), kafkago.Message{
				Topic: "bench-single", Key: []byte("user-" + strconv.Itoa(i)), Value: payload,
			}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat, time.Since(start))
	})
}

func report(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
