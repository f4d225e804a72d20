package mqtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqotel"
)

// headerDelay is how far in the future the delayed messages of the header
// and trace cases are due: past the smallest delay level the Kafka tests
// configure (250ms), so that on Kafka they take a delay-level topic and the
// forwarder, not only the subscriber's hold.
const headerDelay = 300 * time.Millisecond

// testHeaders: a message's headers arrive exactly as published (names,
// case, empty values, the W3C trace header names included) on every path
// a message takes: immediate, delayed, redelivered after a failure (also
// with a backoff long enough to take Kafka's delay levels), delayed then
// redelivered, and onto the dead-letter topic, where the dead-letter
// headers are added to the original ones.
func testHeaders(t *testing.T, newBackend Factory, f Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	const maxAttempts = 2
	opts := mq.SubscribeOptions{Group: "g", MaxAttempts: maxAttempts, MinBackoff: headerDelay, MaxBackoff: headerDelay}

	headers := func(path string) map[string]string {
		return map[string]string{
			"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tracestate":   "seckill=" + path,
			"baggage":      "path=" + path,
			"X-Mixed-Case": path,
			"x-empty":      "",
		}
	}
	type path struct {
		name       string
		delayed    bool
		fail       func(attempt int) bool
		deliveries int
	}
	never := func(int) bool { return false }
	once := func(attempt int) bool { return attempt == 1 }
	always := func(int) bool { return true }
	paths := []path{
		{name: "immediate", fail: never, deliveries: 1},
		{name: "delayed", delayed: true, fail: never, deliveries: 1},
		{name: "redelivered", fail: once, deliveries: 2},
		{name: "delayed-redelivered", delayed: true, fail: once, deliveries: 2},
		{name: "dead-lettered", fail: always, deliveries: deliveriesToDeadLetter(maxAttempts, f)},
	}
	byName := make(map[string]path, len(paths))
	total := 0
	for _, p := range paths {
		byName[p.name] = p
		total += p.deliveries
	}

	dlq := newRecorder()
	subscribe(t, sub, mq.DeadLetterTopic(topic), mq.SubscribeOptions{Group: "ops"}, dlq.handler(nil))
	rec := newRecorder()
	subscribe(t, sub, topic, opts, rec.handler(func(_ context.Context, m *mq.Message) error {
		if p, ok := byName[string(m.Payload)]; ok && p.fail(m.Attempt) {
			return fmt.Errorf("failing %s on attempt %d", p.name, m.Attempt)
		}
		return nil
	}))
	for _, p := range paths {
		m := &mq.Message{Key: p.name, Headers: headers(p.name), Payload: []byte(p.name)}
		if p.delayed {
			m.DeliverAt = time.Now().Add(headerDelay)
		}
		publish(t, pub, topic, m)
	}
	rec.waitCount(t, total, fmt.Sprintf("%d deliveries over %d paths", total, len(paths)))
	dlq.waitCount(t, 1, "the dead letter on "+mq.DeadLetterTopic(topic))
	closeAll(t, pub, sub)

	count := map[string]int{}
	for _, d := range rec.all() {
		p := string(d.msg.Payload)
		count[p]++
		if want := headers(p); !maps.Equal(d.msg.Headers, want) {
			t.Errorf("%s, attempt %d: headers %q, want exactly %q", p, d.msg.Attempt, d.msg.Headers, want)
		}
	}
	for _, p := range paths {
		if count[p.name] != p.deliveries {
			t.Errorf("%s: %d deliveries, want %d", p.name, count[p.name], p.deliveries)
		}
	}
	got := dlq.all()
	if len(got) != 1 {
		t.Fatalf("dead-letter topic got %d messages, want 1", len(got))
	}
	want := headers("dead-lettered")
	for _, k := range []string{mq.HeaderDeadLetterReason, mq.HeaderDeadLetterAttempts, mq.HeaderOriginalTopic} {
		if v, ok := got[0].msg.Headers[k]; !ok {
			t.Errorf("dead letter lacks header %s", k)
		} else {
			want[k] = v // checked by testDeadLetter
		}
	}
	if !maps.Equal(got[0].msg.Headers, want) {
		t.Errorf("dead letter headers %q, want the original ones plus the dead-letter ones: %q", got[0].msg.Headers, want)
	}
}

// testTracePropagation: through the mqotel decorators, a trace started
// before Publish continues on the far side of the backend. Publisher and
// subscriber get tracer providers of their own (two processes, whose only
// link is the message), exporting to one in-memory exporter. For an
// immediate, a delayed and a redelivered message (the first and last
// published in one batch), each consumer span is a child of its message's
// producer span, itself a child of the span the publisher's caller
// started; the handler runs inside the consumer span and sees the
// caller's baggage; the context travels in the header traceparent; the
// failed delivery's span has status Error.
func testTracePropagation(t *testing.T, newBackend Factory, _ Features) {
	exp := tracetest.NewInMemoryExporter()
	newProvider := func() *sdktrace.TracerProvider {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	pubTP, subTP := newProvider(), newProvider()
	rawPub, rawSub := build(t, newBackend, BackendConfig{})
	pub := mqotel.NewPublisher(rawPub, mqotel.Config{TracerProvider: pubTP})
	sub := mqotel.NewSubscriber(rawSub, mqotel.Config{TracerProvider: subTP})
	topic := topicName(t)
	id := func(name string) string { return name + "-" + randomHex(4) }
	immediate, delayed, redelivered := id("immediate"), id("delayed"), id("redelivered")

	type call struct {
		msg     *mq.Message
		span    trace.SpanContext
		baggage string
	}
	var mu sync.Mutex
	var calls []call
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g", MinBackoff: 10 * time.Millisecond},
		func(ctx context.Context, m *mq.Message) error {
			mu.Lock()
			calls = append(calls, call{cloneMessage(m), trace.SpanContextFromContext(ctx), baggage.FromContext(ctx).Member("order").Value()})
			mu.Unlock()
			if m.ID == redelivered && m.Attempt == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		})

	member, err := baggage.NewMember("order", "o-42")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := pubTP.Tracer("mqtest").Start(baggage.ContextWithBaggage(t.Context(), bag), "buy")
	err = pub.Publish(ctx, topic,
		&mq.Message{ID: immediate, Key: "k", Payload: []byte("immediate")},
		&mq.Message{ID: redelivered, Key: "k", Payload: []byte("redelivered")})
	if err != nil {
		t.Fatalf("Publish a batch of 2: %v", err)
	}
	err = pub.Publish(ctx, topic, &mq.Message{ID: delayed, Payload: []byte("delayed"), DeliverAt: time.Now().Add(headerDelay)})
	if err != nil {
		t.Fatalf("Publish a delayed message: %v", err)
	}
	root.End()

	const deliveries = 4 // immediate, delayed, redelivered twice
	consumers := func() []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindConsumer {
				out = append(out, s)
			}
		}
		return out
	}
	waitUntil(t, fmt.Sprintf("%d consumer spans", deliveries), func() bool { return len(consumers()) >= deliveries })
	closeAll(t, pub, sub)

	producers := map[string]tracetest.SpanStub{} // by message id
	for _, s := range exp.GetSpans() {
		if s.SpanKind != trace.SpanKindProducer {
			continue
		}
		mid := attr(s.Attributes, "messaging.message.id")
		if _, dup := producers[mid]; dup {
			t.Errorf("message %s has two producer spans", mid)
		}
		producers[mid] = s
		if s.Name != topic+" publish" {
			t.Errorf("producer span %q, want %q", s.Name, topic+" publish")
		}
		if s.Parent.SpanID() != root.SpanContext().SpanID() || s.SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("producer span of %s has parent %v in trace %v, want the caller's span %v in trace %v",
				mid, s.Parent.SpanID(), s.SpanContext.TraceID(), root.SpanContext().SpanID(), root.SpanContext().TraceID())
		}
		if d := attr(s.Attributes, "messaging.destination.name"); d != topic {
			t.Errorf("producer span of %s: messaging.destination.name %q, want %q", mid, d, topic)
		}
	}
	for _, mid := range []string{immediate, delayed, redelivered} {
		if _, ok := producers[mid]; !ok {
			t.Errorf("no producer span for message %s", mid)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(calls) != deliveries {
		t.Errorf("handler called %d times, want %d", len(calls), deliveries)
	}
	spans := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range consumers() {
		spans[s.SpanContext.SpanID()] = s
	}
	for _, c := range calls {
		what := fmt.Sprintf("message %s attempt %d", c.msg.ID, c.msg.Attempt)
		prod, ok := producers[c.msg.ID]
		if !ok {
			continue // reported above
		}
		if tp, want := c.msg.Headers["traceparent"], prod.SpanContext.SpanID().String(); !strings.Contains(tp, want) {
			t.Errorf("%s: header traceparent %q, want it to name the producer span %s", what, tp, want)
		}
		if c.baggage != "o-42" {
			t.Errorf("%s: handler sees baggage order=%q, want \"o-42\" from the publisher's context", what, c.baggage)
		}
		s, ok := spans[c.span.SpanID()]
		if !ok {
			t.Errorf("%s: the handler's context holds span %v, which is no consumer span", what, c.span.SpanID())
			continue
		}
		if s.Name != topic+" process" {
			t.Errorf("%s: consumer span %q, want %q", what, s.Name, topic+" process")
		}
		if s.SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("%s: consumer span in trace %v, want the publisher's trace %v", what, s.SpanContext.TraceID(), root.SpanContext().TraceID())
		}
		if s.Parent.SpanID() != prod.SpanContext.SpanID() || !s.Parent.IsRemote() {
			t.Errorf("%s: consumer span's parent is %v (remote %t), want the producer span %v (remote)",
				what, s.Parent.SpanID(), s.Parent.IsRemote(), prod.SpanContext.SpanID())
		}
		if mid := attr(s.Attributes, "messaging.message.id"); mid != c.msg.ID {
			t.Errorf("%s: consumer span has messaging.message.id %q", what, mid)
		}
		failed := c.msg.ID == redelivered && c.msg.Attempt == 1
		if got := s.Status.Code == codes.Error; got != failed {
			t.Errorf("%s: consumer span status %v, want Error only for the failed attempt", what, s.Status.Code)
		}
	}
}

// attr returns the value of key in attrs as a string, "" when absent.
func attr(attrs []attribute.KeyValue, key attribute.Key) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}
