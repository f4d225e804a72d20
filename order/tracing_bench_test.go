package order

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
)

// workerTracingModes are the ways a worker can run, as for the tracing
// benchmark: the first two are tracing off, and cost what the worker cost
// before it was traced (compare allocs/op of "off" with the code before,
// in the same run). No exporter: what is measured is the instrumentation.
func workerTracingModes() []struct {
	name string
	tp   trace.TracerProvider
} {
	return []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", nil},
		{"off=noop-provider", noop.NewTracerProvider()},
		{"sdk-sampled-out", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))},
		{"sdk-recording", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))},
	}
}

// BenchmarkWorkerBatch is one full batch per op on SQLite: size Handle
// calls at once, each a new order whose message carries a trace (as the
// gateway sends it with tracing on) and is handled in a consumer span's
// context, written in one transaction with its outbox rows. BatchSize is
// size and the linger long, so every op is exactly one batch.
func BenchmarkWorkerBatch(b *testing.B) {
	for _, mode := range workerTracingModes() {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode.name, size), func(b *testing.B) {
				s := NewStore(backends()[0].open(b))
				a := newActivity(b, s, 1<<40)
				w := NewWorker(s, &fakeClaimer{}, WorkerConfig{BatchSize: size, Linger: time.Minute, TracerProvider: mode.tp})
				b.Cleanup(func() { w.Close() })
				consumer := trace.NewSpanContext(trace.SpanContextConfig{
					TraceID: trace.TraceID{0x0a, 0xf7}, SpanID: trace.SpanID{0xb7, 0xad}, TraceFlags: trace.FlagsSampled, Remote: true,
				})
				ctx := trace.ContextWithRemoteSpanContext(context.Background(), consumer)
				headers := map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
				next := 0
				batch := func() []*mq.Message {
					msgs := make([]*mq.Message, size)
					for i := range msgs {
						id := fmt.Sprintf("b-%09d", next)
						next++
						msgs[i] = mqMessage(b, message(a.ID, id, "u-"+id))
						msgs[i].Headers = headers
					}
					return msgs
				}
				var wg sync.WaitGroup
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					msgs := batch()
					b.StartTimer()
					for _, m := range msgs {
						wg.Go(func() {
							if err := w.Handle(ctx, m); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
				}
			})
		}
	}
}
