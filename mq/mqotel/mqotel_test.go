package mqotel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
)

// fakePublisher records what it is asked to publish, fills empty IDs like
// natsjs does, and fails with err.
type fakePublisher struct {
	got [][]*mq.Message
	err error
}

func (f *fakePublisher) Publish(_ context.Context, _ string, msgs ...*mq.Message) error {
	for i, m := range msgs {
		if m.ID == "" {
			m.ID = fmt.Sprintf("assigned-%d", i)
		}
	}
	f.got = append(f.got, msgs)
	return f.err
}

func (f *fakePublisher) Close() error { return nil }

// fakeSubscriber keeps the handler it is given, so a test calls it as a
// backend would.
type fakeSubscriber struct {
	topic string
	h     mq.Handler
}

func (f *fakeSubscriber) Subscribe(_ context.Context, topic string, _ mq.SubscribeOptions, h mq.Handler) error {
	f.topic, f.h = topic, h
	return nil
}

func (f *fakeSubscriber) Close() error { return nil }

func newTracing(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]string {
	m := make(map[attribute.Key]string, len(s.Attributes))
	for _, a := range s.Attributes {
		m[a.Key] = a.Value.Emit()
	}
	return m
}

func TestOffReturnsTheBackendItself(t *testing.T) {
	b := memory.New(memory.Config{})
	t.Cleanup(func() { _ = b.Close() })
	tp, _ := newTracing(t)
	tests := []struct {
		name string
		cfg  mqotel.Config
		off  bool
	}{
		{"Disabled", mqotel.Config{Disabled: true, TracerProvider: tp}, true},
		{"noop provider", mqotel.Config{TracerProvider: noop.NewTracerProvider()}, true},
		{"SDK provider", mqotel.Config{TracerProvider: tp}, false},
		{"global provider", mqotel.Config{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mqotel.NewPublisher(b, tc.cfg) == mq.Publisher(b); got != tc.off {
				t.Errorf("NewPublisher returned the broker itself: %t, want %t", got, tc.off)
			}
			if got := mqotel.NewSubscriber(b, tc.cfg) == mq.Subscriber(b); got != tc.off {
				t.Errorf("NewSubscriber returned the broker itself: %t, want %t", got, tc.off)
			}
		})
	}
}

// A Headers map shared by several messages is never written: each message
// gets a copy with its own trace context.
func TestPublishCopiesHeadersOnWrite(t *testing.T) {
	tp, exp := newTracing(t)
	inner := &fakePublisher{}
	pub := mqotel.NewPublisher(inner, mqotel.Config{TracerProvider: tp})
	shared := map[string]string{"request_id": "r-1"}
	a := &mq.Message{ID: "a", Headers: shared}
	b := &mq.Message{ID: "b", Headers: shared}
	c := &mq.Message{ID: "c"} // nil Headers
	if err := pub.Publish(t.Context(), "orders", a, b, c); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"request_id": "r-1"}; !maps.Equal(shared, want) {
		t.Errorf("the caller's shared map became %v, want it untouched %v", shared, want)
	}
	spans := map[string]trace.SpanID{}
	for _, s := range exp.GetSpans() {
		spans[attrs(s)["messaging.message.id"]] = s.SpanContext.SpanID()
	}
	for _, m := range []*mq.Message{a, b, c} {
		tp := m.Headers["traceparent"]
		if want := spans[m.ID].String(); tp == "" || tp[36:52] != want {
			t.Errorf("message %s: traceparent %q, want one naming its producer span %s", m.ID, tp, want)
		}
	}
	if a.Headers["request_id"] != "r-1" || b.Headers["request_id"] != "r-1" {
		t.Errorf("copies lost the caller's header: %v, %v", a.Headers, b.Headers)
	}
	if len(inner.got) != 1 || len(inner.got[0]) != 3 {
		t.Errorf("inner publisher got %d calls, want 1 with the 3 messages", len(inner.got))
	}
}

func TestProducerSpans(t *testing.T) {
	tests := []struct {
		name      string
		msgs      int
		err       error
		wantBatch string
		wantError string // error.type, "" when the publish succeeds
	}{
		{name: "one message", msgs: 1},
		{name: "batch", msgs: 3, wantBatch: "3"},
		{name: "queue full", msgs: 1, err: fmt.Errorf("memory: publish: %w", mq.ErrQueueFull), wantError: "queue_full"},
		{name: "batch fails", msgs: 2, err: errors.New("broker down"), wantBatch: "2", wantError: "_OTHER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, exp := newTracing(t)
			pub := mqotel.NewPublisher(&fakePublisher{err: tc.err}, mqotel.Config{TracerProvider: tp})
			ctx, parent := tp.Tracer("test").Start(t.Context(), "buy")
			msgs := make([]*mq.Message, tc.msgs)
			for i := range msgs {
				msgs[i] = &mq.Message{}
			}
			msgs[0].ID = "caller-id"
			if err := pub.Publish(ctx, "orders", msgs...); !errors.Is(err, tc.err) {
				t.Fatalf("Publish: %v, want %v", err, tc.err)
			}
			parent.End()
			var producers []tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.SpanKind == trace.SpanKindProducer {
					producers = append(producers, s)
				}
			}
			if len(producers) != tc.msgs {
				t.Fatalf("%d producer spans, want one per message (%d)", len(producers), tc.msgs)
			}
			for i, s := range producers {
				a := attrs(s)
				want := map[attribute.Key]string{
					"messaging.system":              "mq", // the fake does not name itself
					"messaging.destination.name":    "orders",
					"messaging.operation.type":      "send",
					"messaging.operation.name":      "publish",
					"messaging.message.id":          msgs[i].ID, // the caller's, or assigned by the backend
					"messaging.batch.message_count": tc.wantBatch,
					"error.type":                    tc.wantError,
				}
				for k, v := range want {
					if a[k] != v {
						t.Errorf("span %d: %s = %q, want %q", i, k, a[k], v)
					}
				}
				if s.Name != "orders publish" {
					t.Errorf("span %d: name %q, want \"orders publish\"", i, s.Name)
				}
				if s.Parent.SpanID() != parent.SpanContext().SpanID() {
					t.Errorf("span %d: parent %v, want the caller's span %v", i, s.Parent.SpanID(), parent.SpanContext().SpanID())
				}
				if got, want := s.Status.Code, map[bool]codes.Code{true: codes.Error, false: codes.Unset}[tc.err != nil]; got != want {
					t.Errorf("span %d: status %v, want %v", i, got, want)
				}
			}
		})
	}
}

// A message that already carries a trace context (an outbox row published
// by a relay) continues that trace and links to the publisher's span.
func TestPublishContinuesTheMessagesTrace(t *testing.T) {
	tp, exp := newTracing(t)
	pub := mqotel.NewPublisher(&fakePublisher{}, mqotel.Config{TracerProvider: tp})
	reqCtx, req := tp.Tracer("test").Start(t.Context(), "request")
	row := &mq.Message{ID: "row"}
	mqotel.Inject(reqCtx, row)
	req.End()

	relayCtx, relay := tp.Tracer("test").Start(context.Background(), "relay round")
	plain := &mq.Message{ID: "plain"}
	if err := pub.Publish(relayCtx, "events", row, plain); err != nil {
		t.Fatal(err)
	}
	relay.End()
	for _, s := range exp.GetSpans() {
		switch attrs(s)["messaging.message.id"] {
		case "row":
			if s.Parent.SpanID() != req.SpanContext().SpanID() {
				t.Errorf("row's producer span has parent %v, want the request's span %v", s.Parent.SpanID(), req.SpanContext().SpanID())
			}
			if len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != relay.SpanContext().SpanID() {
				t.Errorf("row's producer span links %v, want one link to the relay's span %v", s.Links, relay.SpanContext().SpanID())
			}
		case "plain":
			if s.Parent.SpanID() != relay.SpanContext().SpanID() || len(s.Links) != 0 {
				t.Errorf("plain message's producer span: parent %v, %d links; want the relay's span %v, no link",
					s.Parent.SpanID(), len(s.Links), relay.SpanContext().SpanID())
			}
		}
	}
}

func TestConsumerSpans(t *testing.T) {
	panicked := errors.New("boom")
	tests := []struct {
		name      string
		handler   error // returned, or panicked with when it is panicked
		status    codes.Code
		errorType string
	}{
		{"success", nil, codes.Unset, ""},
		{"permanent failure", errors.New("bad payload"), codes.Error, "permanent"},
		{"transient failure", mq.Transient(errors.New("database unreachable")), codes.Error, "transient"},
		{"panic", panicked, codes.Error, "permanent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, exp := newTracing(t)
			pubCtx, producer := tp.Tracer("test").Start(t.Context(), "orders publish")
			m := &mq.Message{ID: "m-1", Attempt: 3}
			mqotel.Inject(pubCtx, m)
			producer.End()

			inner := &fakeSubscriber{}
			sub := mqotel.NewSubscriber(inner, mqotel.Config{TracerProvider: tp, System: "kafka"})
			var inHandler trace.SpanContext
			err := sub.Subscribe(t.Context(), "orders", mq.SubscribeOptions{}, func(ctx context.Context, _ *mq.Message) error {
				inHandler = trace.SpanContextFromContext(ctx)
				if tc.handler == panicked {
					panic(panicked)
				}
				return tc.handler
			})
			if err != nil {
				t.Fatal(err)
			}
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				err = inner.h(t.Context(), m)
			}()
			if tc.handler == panicked {
				if recovered != panicked {
					t.Errorf("recovered %v, want the handler's panic passed on to the backend", recovered)
				}
			} else if err != tc.handler {
				t.Errorf("wrapped handler returned %v, want the handler's %v", err, tc.handler)
			}

			var consumer *tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.SpanKind == trace.SpanKindConsumer {
					consumer = &s
				}
			}
			if consumer == nil {
				t.Fatal("no consumer span")
			}
			if consumer.Name != "orders process" {
				t.Errorf("name %q, want \"orders process\"", consumer.Name)
			}
			if consumer.Parent.SpanID() != producer.SpanContext().SpanID() {
				t.Errorf("parent %v, want the producer span %v", consumer.Parent.SpanID(), producer.SpanContext().SpanID())
			}
			if consumer.SpanContext.SpanID() != inHandler.SpanID() {
				t.Errorf("the handler's context holds span %v, want the consumer span %v", inHandler.SpanID(), consumer.SpanContext.SpanID())
			}
			if consumer.Status.Code != tc.status {
				t.Errorf("status %v, want %v", consumer.Status.Code, tc.status)
			}
			a := attrs(*consumer)
			want := map[attribute.Key]string{
				"messaging.system":              "kafka",
				"messaging.destination.name":    "orders",
				"messaging.consumer.group.name": "default", // SubscribeOptions' default
				"messaging.operation.type":      "process",
				"messaging.message.id":          "m-1",
				mqotel.AttemptKey:               "3",
				"error.type":                    tc.errorType,
			}
			for k, v := range want {
				if a[k] != v {
					t.Errorf("%s = %q, want %q", k, a[k], v)
				}
			}
		})
	}
}

// A message without trace context starts a trace of its own, even when
// the subscription's context holds a span (the service's startup).
func TestConsumerWithoutContextStartsANewTrace(t *testing.T) {
	tp, exp := newTracing(t)
	startCtx, startup := tp.Tracer("test").Start(t.Context(), "startup")
	defer startup.End()
	inner := &fakeSubscriber{}
	sub := mqotel.NewSubscriber(inner, mqotel.Config{TracerProvider: tp})
	if err := sub.Subscribe(startCtx, "orders", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_ = inner.h(startCtx, &mq.Message{ID: "foreign", Headers: map[string]string{"h": "v"}})
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want the consumer span only", len(spans))
	}
	if s := spans[0]; s.Parent.IsValid() || s.SpanContext.TraceID() == startup.SpanContext().TraceID() {
		t.Errorf("consumer span has parent %v in trace %v, want a new root (not the startup trace %v)",
			s.Parent.SpanID(), s.SpanContext.TraceID(), startup.SpanContext().TraceID())
	}
}

func TestInjectExtractLink(t *testing.T) {
	tp, _ := newTracing(t)
	member, _ := baggage.NewMember("order", "o-7")
	bag, _ := baggage.New(member)
	ctx, span := tp.Tracer("test").Start(baggage.ContextWithBaggage(t.Context(), bag), "request")
	defer span.End()

	shared := map[string]string{"request_id": "r"}
	m := &mq.Message{ID: "m-7", Headers: shared}
	mqotel.Inject(ctx, m)
	if len(shared) != 1 {
		t.Errorf("Inject wrote into the caller's map: %v", shared)
	}
	for _, h := range []string{"traceparent", "baggage"} {
		if m.Headers[h] == "" {
			t.Errorf("Inject set no %s header: %v", h, m.Headers)
		}
	}

	got := mqotel.Extract(context.Background(), m)
	if sc := trace.SpanContextFromContext(got); !sc.IsRemote() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("Extract: span context %v (remote %t), want the injected %v", sc.SpanID(), sc.IsRemote(), span.SpanContext().SpanID())
	}
	if v := baggage.FromContext(got).Member("order").Value(); v != "o-7" {
		t.Errorf("Extract: baggage order=%q, want \"o-7\"", v)
	}

	l := mqotel.Link(m)
	if l.SpanContext.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("Link to %v, want the injected span %v", l.SpanContext.SpanID(), span.SpanContext().SpanID())
	}
	if len(l.Attributes) != 1 || l.Attributes[0].Value.AsString() != "m-7" {
		t.Errorf("Link attributes %v, want messaging.message.id m-7", l.Attributes)
	}
	if l := mqotel.Link(&mq.Message{ID: "untraced"}); l.SpanContext.IsValid() || len(l.Attributes) != 0 {
		t.Errorf("Link of a message without trace context = %v, want the zero Link", l)
	}
}

// End to end on the memory backend, which names itself.
func TestMemoryBackendRoundTrip(t *testing.T) {
	tp, exp := newTracing(t)
	b := memory.New(memory.Config{})
	cfg := mqotel.Config{TracerProvider: tp}
	pub, sub := mqotel.NewPublisher(b, cfg), mqotel.NewSubscriber(b, cfg)
	done := make(chan trace.SpanContext, 1)
	err := sub.Subscribe(t.Context(), "orders", mq.SubscribeOptions{Group: "workers"}, func(ctx context.Context, _ *mq.Message) error {
		done <- trace.SpanContextFromContext(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tp.Tracer("test").Start(t.Context(), "buy")
	if err := pub.Publish(ctx, "orders", &mq.Message{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	got := <-done
	if err := sub.Close(); err != nil { // the broker: its drain ends the handler's span
		t.Fatal(err)
	}
	if got.TraceID() != root.SpanContext().TraceID() {
		t.Errorf("handler ran in trace %v, want the publisher's %v", got.TraceID(), root.SpanContext().TraceID())
	}
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindProducer || s.SpanKind == trace.SpanKindConsumer {
			if sys := attrs(s)["messaging.system"]; sys != "memory" {
				t.Errorf("%s: messaging.system %q, want \"memory\" (the backend's own name)", s.Name, sys)
			}
		}
	}
}

// Following settles a service's provider and its queue's: nil means off
// (noop), never otel's global provider; an unset queue provider follows
// the service's; a queue provider of its own is kept.
func TestFollowing(t *testing.T) {
	own := sdktrace.NewTracerProvider()
	other := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = own.Shutdown(context.Background()); _ = other.Shutdown(context.Background()) })

	tp, cfg := mqotel.Following(nil, mqotel.Config{})
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Errorf("nil provider became %T, want noop", tp)
	}
	if cfg.TracerProvider != tp {
		t.Errorf("the queue's provider %T does not follow the service's", cfg.TracerProvider)
	}
	if tp, cfg = mqotel.Following(own, mqotel.Config{}); tp != own || cfg.TracerProvider != own {
		t.Errorf("Following(own, zero) = %v, %v; want own for both", tp, cfg.TracerProvider)
	}
	if tp, cfg = mqotel.Following(own, mqotel.Config{TracerProvider: other, System: "x"}); tp != own || cfg.TracerProvider != other || cfg.System != "x" {
		t.Errorf("Following(own, other) = %v, %+v; want own, and the queue's config kept", tp, cfg)
	}
}
