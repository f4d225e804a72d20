package mqotel_test

import (
	"context"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
)

// payload is the size of the gateway's order message.
var payload = []byte(`{"order_id":"01J9Z3Q4M5N6P7R8S9T0V1W2X3","activity_id":"42","user_id":"u-123456","price_cents":9900,"reserved_at":"2024-11-11T00:00:00.123Z"}`)

// benchModes are the ways a service can run the decorators, "bare" being
// the backend not wrapped at all. The first three are tracing off: what
// they add to bare is the cost of tracing off.
func benchModes() []struct {
	name string
	wrap func(mq.Publisher, mq.Subscriber) (mq.Publisher, mq.Subscriber)
} {
	with := func(cfg mqotel.Config) func(mq.Publisher, mq.Subscriber) (mq.Publisher, mq.Subscriber) {
		return func(p mq.Publisher, s mq.Subscriber) (mq.Publisher, mq.Subscriber) {
			return mqotel.NewPublisher(p, cfg), mqotel.NewSubscriber(s, cfg)
		}
	}
	sdk := func(s sdktrace.Sampler) mqotel.Config {
		// No exporter: the cost measured is the instrumentation's, not
		// an exporter's.
		return mqotel.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(s))}
	}
	return []struct {
		name string
		wrap func(mq.Publisher, mq.Subscriber) (mq.Publisher, mq.Subscriber)
	}{
		{"bare", func(p mq.Publisher, s mq.Subscriber) (mq.Publisher, mq.Subscriber) { return p, s }},
		{"off=Disabled", with(mqotel.Config{Disabled: true})},
		{"off=noop-provider", with(mqotel.Config{TracerProvider: noop.NewTracerProvider()})},
		// otel's global provider before any SetTracerProvider: wrapped,
		// spans not recorded. Services with tracing off should not run
		// this way (see Config.TracerProvider).
		{"global-provider-unset", with(mqotel.Config{})},
		{"sdk-sampled-out", with(sdk(sdktrace.NeverSample()))},
		{"sdk-recording", with(sdk(sdktrace.AlwaysSample()))},
	}
}

// discard is a publisher and subscriber that do nothing, so the wrappers'
// own cost is all there is to measure.
type discard struct{ h mq.Handler }

func (discard) Publish(context.Context, string, ...*mq.Message) error { return nil }
func (d *discard) Subscribe(_ context.Context, _ string, _ mq.SubscribeOptions, h mq.Handler) error {
	d.h = h
	return nil
}
func (discard) Close() error { return nil }

// BenchmarkPublishWrapper is the gateway's publish of one message, the
// backend taken away: the decorator's cost alone.
func BenchmarkPublishWrapper(b *testing.B) {
	for _, mode := range benchModes() {
		b.Run(mode.name, func(b *testing.B) {
			d := &discard{}
			pub, _ := mode.wrap(d, d)
			ctx := context.Background()
			m := &mq.Message{ID: "o-1", Key: "u-1", Payload: payload}
			b.ReportAllocs()
			for b.Loop() {
				m.Headers = nil // as a new message would
				if err := pub.Publish(ctx, "orders", m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandleWrapper is one delivery of a traced message to a
// handler, the backend taken away: the decorator's cost alone.
func BenchmarkHandleWrapper(b *testing.B) {
	traced := &mq.Message{ID: "o-1", Key: "u-1", Payload: payload, Attempt: 1}
	traced.Headers = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	for _, mode := range benchModes() {
		b.Run(mode.name, func(b *testing.B) {
			d := &discard{}
			_, sub := mode.wrap(d, d)
			if err := sub.Subscribe(context.Background(), "orders", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error { return nil }); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := d.h(ctx, traced); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryRoundTrip publishes one message on the memory backend
// and waits for its handler, per op; "bare" is the backend unwrapped, in
// the same run.
func BenchmarkMemoryRoundTrip(b *testing.B) {
	for _, mode := range benchModes() {
		b.Run(mode.name, func(b *testing.B) {
			br := memory.New(memory.Config{Logger: slog.New(slog.DiscardHandler)})
			pub, sub := mode.wrap(br, br)
			handled := make(chan struct{})
			err := sub.Subscribe(b.Context(), "orders", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error {
				handled <- struct{}{}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := pub.Publish(ctx, "orders", &mq.Message{ID: "o-1", Key: "u-1", Payload: payload}); err != nil {
					b.Fatal(err)
				}
				<-handled
			}
			b.StopTimer()
			if err := br.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
