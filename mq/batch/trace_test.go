package batch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
)

// countingPublisher passes Publish calls through and keeps the messages
// that reached the backend.
type countingPublisher struct {
	mq.Publisher
	mu   sync.Mutex
	sent []*mq.Message
}

func (c *countingPublisher) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	c.mu.Lock()
	for _, m := range msgs {
		c.sent = append(c.sent, clone(m))
	}
	c.mu.Unlock()
	return c.Publisher.Publish(ctx, topic, msgs...)
}

// MessagingSystem is the backend's.
func (c *countingPublisher) MessagingSystem() string {
	return c.Publisher.(interface{ MessagingSystem() string }).MessagingSystem()
}

// TestTraceThroughEnvelopes: stacked as the package doc says (mqotel
// outside batch, on both sides), two buyers' messages that share one
// envelope each keep their own trace: every message's consumer span is the
// child of its own producer span, itself the child of its buyer's span, and
// the handler runs inside it.
func TestTraceThroughEnvelopes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	newProvider := func() *sdktrace.TracerProvider {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	pubTP, subTP := newProvider(), newProvider()
	b := memory.New(memory.Config{Logger: quiet()})
	backend := &countingPublisher{Publisher: b}
	// MaxBatch 2 and a long MaxWait: the two messages go in one envelope.
	pub := mqotel.NewPublisher(batch.NewPublisher(backend, batch.Config{MaxBatch: 2, MaxWait: time.Hour}), mqotel.Config{TracerProvider: pubTP})
	sub := mqotel.NewSubscriber(batch.NewSubscriber(b, b, batch.SubscriberConfig{Logger: quiet()}), mqotel.Config{TracerProvider: subTP})
	t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })

	var mu sync.Mutex
	handled := map[string]trace.SpanContext{} // message id -> span in the handler's context
	err := sub.Subscribe(t.Context(), "orders", mq.SubscribeOptions{Group: "g", Concurrency: 2}, func(ctx context.Context, m *mq.Message) error {
		mu.Lock()
		handled[m.ID] = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	buyers := map[string]trace.SpanContext{} // message id -> the buyer's span
	var wg sync.WaitGroup
	for _, id := range []string{"order-1", "order-2"} {
		ctx, span := pubTP.Tracer("test").Start(t.Context(), "buy "+id)
		buyers[id] = span.SpanContext()
		wg.Go(func() {
			defer span.End()
			if err := pub.Publish(ctx, "orders", &mq.Message{ID: id, Payload: []byte(id)}); err != nil {
				t.Errorf("Publish %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	waitUntil(t, "both messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 2
	})

	backend.mu.Lock()
	if len(backend.sent) != 1 || backend.sent[0].Headers[batch.HeaderBatch] != "2" {
		t.Errorf("the backend got %d messages, want one envelope of both", len(backend.sent))
	}
	backend.mu.Unlock()

	spans := map[trace.SpanKind]map[string]tracetest.SpanStub{trace.SpanKindProducer: {}, trace.SpanKindConsumer: {}}
	for _, s := range exp.GetSpans() {
		if byID, ok := spans[s.SpanKind]; ok {
			byID[attr(s, "messaging.message.id")] = s
			if sys := attr(s, "messaging.system"); sys != "memory" {
				t.Errorf("%s span of %s: messaging.system %q, want the backend's \"memory\"", s.SpanKind, attr(s, "messaging.message.id"), sys)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, buyer := range buyers {
		prod, ok := spans[trace.SpanKindProducer][id]
		if !ok {
			t.Errorf("%s: no producer span", id)
			continue
		}
		cons, ok := spans[trace.SpanKindConsumer][id]
		if !ok {
			t.Errorf("%s: no consumer span", id)
			continue
		}
		if prod.Parent.SpanID() != buyer.SpanID() || prod.SpanContext.TraceID() != buyer.TraceID() {
			t.Errorf("%s: producer span's parent %v, want the buyer's span %v", id, prod.Parent.SpanID(), buyer.SpanID())
		}
		if cons.Parent.SpanID() != prod.SpanContext.SpanID() || !cons.Parent.IsRemote() || cons.SpanContext.TraceID() != buyer.TraceID() {
			t.Errorf("%s: consumer span's parent %v in trace %v, want its producer span %v in the buyer's trace %v",
				id, cons.Parent.SpanID(), cons.SpanContext.TraceID(), prod.SpanContext.SpanID(), buyer.TraceID())
		}
		if handled[id].SpanID() != cons.SpanContext.SpanID() {
			t.Errorf("%s: the handler ran in span %v, want its consumer span %v", id, handled[id].SpanID(), cons.SpanContext.SpanID())
		}
	}
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}
