package service

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
)

// headerSink keeps the trace each order event arrived with, by event id.
type headerSink struct {
	mu     sync.Mutex
	traces map[string]trace.TraceID
}

func (s *headerSink) handle(_ context.Context, m *mq.Message) error {
	sc := trace.SpanContextFromContext(mqotel.Extract(context.Background(), m))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traces[m.ID] = sc.TraceID()
	return nil
}

func (s *headerSink) trace(id string) (trace.TraceID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.traces[id]
	return t, ok
}

// One order, one trace: the buy's publish, the worker's consumer span,
// batch and transaction, the relay's publish of the created event and of
// the pay-deadline message, the canceller's consumer span and cancel, and
// the relay's publish of the cancelled event all share the buy's trace ID,
// across the queue and the outbox, with the service wired as a process
// wires it (Deps.TracerProvider; the queue passed unwrapped).
func TestOneOrderOneTrace(t *testing.T) {
	ctx := t.Context()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	emb, err := inventory.NewEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	inv := inventory.New(emb.Client, inventory.Options{Prefix: "sktest-trace"})
	gdb, err := sqldb.Open(ctx, sqldb.Config{DataDir: t.TempDir(), Logger: quietLog(), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := gdb.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := order.Migrate(ctx, gdb); err != nil {
		t.Fatal(err)
	}
	db := order.NewStore(gdb)
	now := time.Now().UTC()
	// A one-second pay deadline: the timeout comes back within the test.
	a := &order.Activity{Name: "traced", Stock: 3, PriceCents: 500, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), PayTimeoutSeconds: 1}
	if err := db.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if ok, err := inv.Load(ctx, invActivity(a), a.Stock, nil); err != nil || !ok {
		t.Fatalf("Load = %v, %v", ok, err)
	}

	broker := memory.New(memory.Config{Logger: quietLog()})
	sink := &headerSink{traces: map[string]trace.TraceID{}}
	if err := broker.Subscribe(ctx, ordermsg.TopicOrderEvents, mq.SubscribeOptions{Group: "sink"}, sink.handle); err != nil {
		t.Fatal(err)
	}
	svc, err := Start(ctx, Config{}, Deps{DB: db, Inventory: inv, Queue: broker, Logger: quietLog(), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx, broker)
	})

	// The gateway's side: reserve, then publish under the buy's span.
	const oid, user = "o-traced", "u-traced"
	if r, err := inv.Reserve(ctx, a.ID, user, "req-traced", oid, time.Now()); err != nil || r.Outcome != inventory.Reserved {
		t.Fatalf("Reserve = %+v, %v", r, err)
	}
	bctx, buy := tp.Tracer("gateway").Start(ctx, "POST /api/v1/activities/{id}/buy")
	payload, _ := json.Marshal(ordermsg.Message{OrderID: oid, ActivityID: a.ID, UserID: user, RequestID: "req-traced", PriceCents: a.PriceCents, ReservedAt: now})
	gw := mqotel.NewPublisher(broker, mqotel.Config{TracerProvider: tp})
	if err := gw.Publish(bctx, ordermsg.TopicOrders, &mq.Message{ID: oid, Key: user, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	buy.End()
	want := buy.SpanContext().TraceID()

	// Wait for the end of the story: the cancelled event delivered, and
	// the spans around it ended (the sink may have the event before the
	// relay's publish returns, and before the canceller's handler does).
	cancelledID := ordermsg.EventID(oid, ordermsg.EventCancelled)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, delivered := sink.trace(cancelledID)
		spans := exp.GetSpans()
		if delivered && len(named(spans, ordermsg.TopicOrderTimeouts+" process")) > 0 && len(named(spans, ordermsg.TopicOrderEvents+" publish")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cancelled event within 15s; spans so far: %v", names(exp.GetSpans()))
		}
		time.Sleep(10 * time.Millisecond)
	}

	spans := exp.GetSpans()
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("%d spans %q, want 1 (spans: %v)", len(byName[name]), name, names(spans))
		}
		return byName[name][0]
	}
	for _, name := range []string{
		ordermsg.TopicOrders + " publish", ordermsg.TopicOrders + " process",
		"orders write batch", "order batch tx",
		ordermsg.TopicOrderTimeouts + " publish", ordermsg.TopicOrderTimeouts + " process", "order cancel",
	} {
		if got := one(name).SpanContext.TraceID(); got != want {
			t.Errorf("span %q is in trace %s, want the buy's %s", name, got, want)
		}
	}
	if events := byName[ordermsg.TopicOrderEvents+" publish"]; len(events) != 2 {
		t.Errorf("%d order-events publish spans, want 2 (created, cancelled)", len(events))
	} else {
		for _, e := range events {
			if e.SpanContext.TraceID() != want {
				t.Errorf("order-events publish span is in trace %s, want the buy's %s", e.SpanContext.TraceID(), want)
			}
		}
	}
	for _, id := range []string{ordermsg.EventID(oid, ordermsg.EventCreated), cancelledID} {
		if got, _ := sink.trace(id); got != want {
			t.Errorf("event %s arrived in trace %s, want the buy's %s", id, got, want)
		}
	}

	batch, tx := one("orders write batch"), one("order batch tx")
	if len(batch.Links) != 1 || batch.Links[0].SpanContext.SpanID() != one(ordermsg.TopicOrders+" publish").SpanContext.SpanID() {
		t.Errorf("batch span links %v, want the buy's producer span", batch.Links)
	}
	if tx.Parent.SpanID() != batch.SpanContext.SpanID() {
		t.Errorf("transaction span's parent is %s, want the batch span %s", tx.Parent.SpanID(), batch.SpanContext.SpanID())
	}
	cancel := one("order cancel")
	if cancel.Parent.SpanID() != one(ordermsg.TopicOrderTimeouts+" process").SpanContext.SpanID() {
		t.Errorf("cancel span's parent is %s, want the pay-deadline message's consumer span", cancel.Parent.SpanID())
	}
	var outcome string
	for _, kv := range cancel.Attributes {
		if kv.Key == order.CancelOutcome {
			outcome = kv.Value.AsString()
		}
	}
	if outcome != order.OutcomeCancelled {
		t.Errorf("cancel outcome %q, want %q", outcome, order.OutcomeCancelled)
	}
	// The database statements of the batch are the transaction's children.
	var stmts int
	for _, s := range spans {
		if s.Parent.SpanID() == tx.SpanContext.SpanID() {
			stmts++
		}
	}
	if stmts == 0 {
		t.Error("no statement span under the batch's transaction")
	}
}

func named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
