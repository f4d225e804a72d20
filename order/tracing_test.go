package order

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order/ordermsg"
)

// recorded is an SDK provider that keeps every ended span in memory.
type recorded struct {
	tp  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter
}

func newRecorded(t testing.TB) *recorded {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &recorded{tp: tp, exp: exp}
}

// named returns the ended spans called name.
func (r *recorded) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range r.exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// waitNamed waits until n spans called name have ended and returns them.
func (r *recorded) waitNamed(t testing.TB, name string, n int) []tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := r.named(name)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans %q ended, want %d", len(got), name, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// attr returns the attribute key of span s, and whether it is set.
func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// wantAttrs checks span s's attributes.
func wantAttrs(t testing.TB, s tracetest.SpanStub, want ...attribute.KeyValue) {
	t.Helper()
	for _, kv := range want {
		got, ok := attr(s, kv.Key)
		if !ok || got != kv.Value {
			t.Errorf("span %q: %s = %v (set %v), want %v", s.Name, kv.Key, got.Emit(), ok, kv.Value.Emit())
		}
	}
}

// storedTrace returns the span context an outbox row's traceparent names.
func storedTrace(t testing.TB, row outboxRow) trace.SpanContext {
	t.Helper()
	if row.Traceparent == nil {
		t.Fatalf("outbox row %s has no traceparent", row.EventID)
	}
	sc := trace.SpanContextFromContext(contextOf(context.Background(), row.Traceparent))
	if !sc.IsValid() {
		t.Fatalf("outbox row %s: traceparent %q does not parse", row.EventID, *row.Traceparent)
	}
	return sc
}

// The worker's batch on the real path: the gateway's publish under a buy
// span, the queue's consumer span, then the batch. Its span links to every
// message's producer span (and, for a batch of one, is the consumer span's
// child), the transaction's span is the batch's child, and every order's
// outbox rows keep that order's own trace.
func TestWorkerTracesTheBatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		orders   int
		released int // reservations gone: stored cancelled
	}{
		{"one message", 1, 0},
		{"several messages", 5, 0},
		{"several, one reservation lost", 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, db *gorm.DB) {
				rec := newRecorded(t)
				s := NewStore(db)
				a := newActivity(t, s, 10)
				claimer := &fakeClaimer{released: map[string]bool{}}
				ids := orderIDs("traced", tc.orders)
				for _, id := range ids[:tc.released] {
					claimer.released[id] = true
				}
				// A long linger: the batch is written when full, so it
				// holds every message.
				w, _ := testWorker(t, s, claimer, WorkerConfig{BatchSize: tc.orders, Linger: time.Minute, TracerProvider: rec.tp})
				broker := memory.New(memory.Config{})
				t.Cleanup(func() { broker.Close() })
				tcfg := mqotel.Config{TracerProvider: rec.tp}
				pub, sub := mqotel.NewPublisher(broker, tcfg), mqotel.NewSubscriber(broker, tcfg)
				err := sub.Subscribe(t.Context(), ordermsg.TopicOrders, mq.SubscribeOptions{Group: "w", Concurrency: tc.orders}, w.Handle)
				if err != nil {
					t.Fatal(err)
				}

				buys := map[string]trace.TraceID{} // order id -> its buy's trace
				for i, id := range ids {
					ctx, buy := rec.tp.Tracer("test").Start(t.Context(), "buy")
					buys[id] = buy.SpanContext().TraceID()
					if err := pub.Publish(ctx, ordermsg.TopicOrders, mqMessage(t, message(a.ID, id, fmt.Sprintf("u-%d", i)))); err != nil {
						t.Fatal(err)
					}
					buy.End()
				}
				consumers := rec.waitNamed(t, ordermsg.TopicOrders+" process", tc.orders)
				producers := rec.named(ordermsg.TopicOrders + " publish")

				batches := rec.named("orders write batch")
				if len(batches) != 1 {
					t.Fatalf("%d batch spans, want 1", len(batches))
				}
				batch := batches[0]
				wantAttrs(t, batch, attribute.Int("messaging.batch.message_count", tc.orders),
					CreatedKey.Int(tc.orders-tc.released), CancelledKey.Int(tc.released), FailedKey.Int(0))
				linked := map[trace.SpanID]bool{}
				for _, l := range batch.Links {
					linked[l.SpanContext.SpanID()] = true
				}
				if len(batch.Links) != tc.orders {
					t.Errorf("batch span has %d links, want %d (one per message)", len(batch.Links), tc.orders)
				}
				for _, p := range producers {
					if !linked[p.SpanContext.SpanID()] {
						t.Errorf("batch span does not link the producer span of trace %s", p.SpanContext.TraceID())
					}
				}
				if tc.orders == 1 {
					if batch.Parent.SpanID() != consumers[0].SpanContext.SpanID() || batch.SpanContext.TraceID() != buys[ids[0]] {
						t.Errorf("batch of one: parent %s in trace %s, want the consumer span %s in the buy's trace %s",
							batch.Parent.SpanID(), batch.SpanContext.TraceID(), consumers[0].SpanContext.SpanID(), buys[ids[0]])
					}
				} else if batch.Parent.IsValid() {
					t.Errorf("batch of %d has parent %s; want a root linked to each message", tc.orders, batch.Parent.SpanID())
				}

				txs := rec.named("order batch tx")
				if len(txs) != 1 {
					t.Fatalf("%d transaction spans, want 1", len(txs))
				}
				if txs[0].Parent.SpanID() != batch.SpanContext.SpanID() || txs[0].SpanContext.TraceID() != batch.SpanContext.TraceID() {
					t.Errorf("transaction span's parent is %s, want the batch span %s", txs[0].Parent.SpanID(), batch.SpanContext.SpanID())
				}
				wantAttrs(t, txs[0], BatchSizeKey.Int(tc.orders), ActivityIDKey.Int64(a.ID),
					CreatedKey.Int(tc.orders-tc.released), CancelledKey.Int(tc.released))

				consumerOf := map[trace.TraceID]trace.SpanID{}
				for _, c := range consumers {
					consumerOf[c.SpanContext.TraceID()] = c.SpanContext.SpanID()
				}
				for _, id := range ids {
					rows := outboxOf(t, s, id)
					if len(rows) == 0 {
						t.Fatalf("order %s: no outbox rows", id)
					}
					for _, row := range rows {
						sc := storedTrace(t, row)
						if sc.TraceID() != buys[id] || sc.SpanID() != consumerOf[buys[id]] {
							t.Errorf("outbox row %s keeps span %s of trace %s, want the consumer span %s of its buy's trace %s",
								row.EventID, sc.SpanID(), sc.TraceID(), consumerOf[buys[id]], buys[id])
						}
					}
				}
			})
		})
	}
}

// A message handled without a trace (tracing off upstream, or an untraced
// Handle) leaves its outbox rows without one.
func TestWorkerUntracedMessageStoresNoTrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		rec := newRecorded(t)
		s := NewStore(db)
		a := newActivity(t, s, 10)
		for _, tp := range []trace.TracerProvider{nil, rec.tp} {
			w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{TracerProvider: tp})
			id := fmt.Sprintf("plain-%t", tp != nil)
			if err := w.Handle(t.Context(), mqMessage(t, message(a.ID, id, id))); err != nil {
				t.Fatal(err)
			}
			for _, row := range outboxOf(t, s, id) {
				if row.Traceparent != nil {
					t.Errorf("provider %v: outbox row %s keeps traceparent %q, want none", tp != nil, row.EventID, *row.Traceparent)
				}
			}
		}
	})
}

// tracedHandle has the worker write order id as if its message had been
// handled in a consumer span of trace parent, and returns that span.
func tracedHandle(t testing.TB, rec *recorded, w *Worker, a *Activity, id string) trace.SpanContext {
	t.Helper()
	ctx, consumer := rec.tp.Tracer("test").Start(t.Context(), ordermsg.TopicOrders+" process")
	defer consumer.End()
	if err := w.Handle(ctx, mqMessage(t, message(a.ID, id, "user-"+id))); err != nil {
		t.Fatal(err)
	}
	return consumer.SpanContext()
}

// The relay publishes each row in the trace the row was written in: the
// producer span is the child of the stored span (not of the relay's round)
// and links to the round's span, and the message carries the trace on. A
// row written without a trace is published in the round's.
func TestRelayContinuesTheRowsTrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		rec := newRecorded(t)
		s := NewStore(db)
		a := newActivity(t, s, 10)
		w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{TracerProvider: rec.tp})
		order := tracedHandle(t, rec, w, a, "relayed")
		if err := w.Handle(t.Context(), mqMessage(t, message(a.ID, "untraced", "user-untraced"))); err != nil {
			t.Fatal(err)
		}

		sink := &recordingPublisher{}
		r := NewRelay(s, mqotel.NewPublisher(sink, mqotel.Config{TracerProvider: rec.tp}), RelayConfig{TracerProvider: rec.tp})
		if n, err := r.RelayOnce(t.Context()); err != nil || n != 4 {
			t.Fatalf("RelayOnce = %d, %v; want 4 (2 orders x event and timeout)", n, err)
		}
		rounds := rec.named("outbox relay")
		if len(rounds) != 1 {
			t.Fatalf("%d relay spans, want 1", len(rounds))
		}
		round := rounds[0]
		wantAttrs(t, round, RelayedKey.Int(4))

		for _, topic := range []string{ordermsg.TopicOrderEvents, ordermsg.TopicOrderTimeouts} {
			msgs := sink.topic(topic)
			if len(msgs) != 2 {
				t.Fatalf("%s: %d messages, want 2", topic, len(msgs))
			}
			for _, m := range msgs {
				got := trace.SpanContextFromContext(mqotel.Extract(context.Background(), m))
				want := order.TraceID()
				if m.ID == ordermsg.EventID("untraced", ordermsg.EventCreated) || m.ID == timeoutID("untraced") {
					want = round.SpanContext.TraceID()
				}
				if got.TraceID() != want {
					t.Errorf("%s message %s carries trace %s, want %s", topic, m.ID, got.TraceID(), want)
				}
			}
		}
		for _, p := range append(rec.named(ordermsg.TopicOrderEvents+" publish"), rec.named(ordermsg.TopicOrderTimeouts+" publish")...) {
			id, _ := attr(p, "messaging.message.id")
			switch id.AsString() {
			case ordermsg.EventID("relayed", ordermsg.EventCreated), timeoutID("relayed"):
				if p.Parent.SpanID() != order.SpanID() || p.SpanContext.TraceID() != order.TraceID() {
					t.Errorf("producer span of %s: parent %s in trace %s, want the order's consumer span %s in %s",
						id.AsString(), p.Parent.SpanID(), p.SpanContext.TraceID(), order.SpanID(), order.TraceID())
				}
				if len(p.Links) != 1 || p.Links[0].SpanContext.SpanID() != round.SpanContext.SpanID() {
					t.Errorf("producer span of %s links %v, want the relay's round %s", id.AsString(), p.Links, round.SpanContext.SpanID())
				}
			default:
				if p.Parent.SpanID() != round.SpanContext.SpanID() {
					t.Errorf("producer span of untraced %s: parent %s, want the relay's round %s", id.AsString(), p.Parent.SpanID(), round.SpanContext.SpanID())
				}
			}
		}
	})
}

// An idle relay round starts no span: polling is not worth a trace.
func TestRelayIdleRoundIsNotTraced(t *testing.T) {
	rec := newRecorded(t)
	s := NewStore(backends()[0].open(t))
	r := NewRelay(s, &recordingPublisher{}, RelayConfig{TracerProvider: rec.tp})
	if n, err := r.RelayOnce(t.Context()); err != nil || n != 0 {
		t.Fatalf("RelayOnce = %d, %v; want 0", n, err)
	}
	if spans := rec.exp.GetSpans(); len(spans) != 0 {
		t.Errorf("idle round recorded %d spans (%s), want none", len(spans), spans[0].Name)
	}
}

// The cancel of a pay-deadline message is a span under the message's
// consumer span, naming the order and what became of it; the cancelled
// event it writes continues the trace.
func TestCancelSpan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		rec := newRecorded(t)
		s := NewStore(db)
		a := newActivity(t, s, 10)
		w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{TracerProvider: rec.tp})
		for _, id := range []string{"unpaid", "paid"} {
			tracedHandle(t, rec, w, a, id)
		}
		life := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{TracerProvider: rec.tp})
		if _, err := life.Pay(t.Context(), "paid", "user-paid"); err != nil {
			t.Fatal(err)
		}
		late := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{TracerProvider: rec.tp, Now: at(time.Now().Add(time.Hour))})

		for _, tc := range []struct {
			order, outcome string
		}{
			{"unpaid", OutcomeCancelled},
			{"unpaid", OutcomeAlreadyCancelled}, // a redelivery
			{"paid", OutcomeAlreadyPaid},
			{"never-stored", OutcomeUnknownOrder},
		} {
			t.Run(tc.order+"/"+tc.outcome, func(t *testing.T) {
				rec.exp.Reset()
				ctx, consumer := rec.tp.Tracer("test").Start(t.Context(), ordermsg.TopicOrderTimeouts+" process")
				m := &mq.Message{ID: timeoutID(tc.order), Payload: fmt.Appendf(nil, `{"order_id":%q,"activity_id":%d}`, tc.order, a.ID)}
				err := late.HandleTimeout(ctx, m)
				consumer.End()
				if err != nil {
					t.Fatal(err)
				}
				cancels := rec.named("order cancel")
				if len(cancels) != 1 {
					t.Fatalf("%d cancel spans, want 1", len(cancels))
				}
				c := cancels[0]
				if c.Parent.SpanID() != consumer.SpanContext().SpanID() {
					t.Errorf("cancel span's parent is %s, want the consumer span %s", c.Parent.SpanID(), consumer.SpanContext().SpanID())
				}
				wantAttrs(t, c, OrderIDKey.String(tc.order), CancelOutcome.String(tc.outcome))
				if tc.outcome != OutcomeCancelled {
					return
				}
				row, ok := outboxOf(t, s, tc.order)[ordermsg.EventID(tc.order, ordermsg.EventCancelled)]
				if !ok {
					t.Fatal("no cancelled event in the outbox")
				}
				if sc := storedTrace(t, row); sc.TraceID() != c.SpanContext.TraceID() || sc.SpanID() != c.SpanContext.SpanID() {
					t.Errorf("cancelled event keeps span %s of trace %s, want the cancel span %s of %s",
						sc.SpanID(), sc.TraceID(), c.SpanContext.SpanID(), c.SpanContext.TraceID())
				}
			})
		}
	})
}

// A payment's event keeps the trace of the request that paid.
func TestPaidEventKeepsThePaymentsTrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		rec := newRecorded(t)
		s := NewStore(db)
		a := newActivity(t, s, 10)
		w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{})
		if err := w.Handle(t.Context(), mqMessage(t, message(a.ID, "to-pay", "payer"))); err != nil {
			t.Fatal(err)
		}
		ctx, req := rec.tp.Tracer("test").Start(t.Context(), "POST /orders/{id}/pay")
		if _, err := NewLifecycle(s, &fakeReleaser{}, LifecycleConfig{}).Pay(ctx, "to-pay", "payer"); err != nil {
			t.Fatal(err)
		}
		req.End()
		row := outboxOf(t, s, "to-pay")[ordermsg.EventID("to-pay", ordermsg.EventPaid)]
		if sc := storedTrace(t, row); sc.SpanID() != req.SpanContext().SpanID() {
			t.Errorf("paid event keeps span %s, want the payment request's %s", sc.SpanID(), req.SpanContext().SpanID())
		}
	})
}
