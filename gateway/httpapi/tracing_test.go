package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/platform/tracing"
)

// traced wires tr into a fixture as the app does: the server gets it, the
// publisher is wrapped with its mqotel configuration.
func traced(tr *tracing.Tracing) func(*options) {
	return func(o *options) {
		o.Tracing = tr
		o.Publisher = mqotel.NewPublisher(o.Publisher, tr.MQ())
	}
}

func recorder(t testing.TB, exp sdktrace.SpanExporter) *tracing.Tracing {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.Provided(tp)
}

// With tracing on, the buy's server span carries the order id it answered
// with, its reserve is a child with the outcome, and the order message
// carries the server span's trace: the producer span is the server span's
// child and the message's traceparent names the producer span.
func TestBuyIsTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	f := newFixture(t, fixtureOpts{tweak: traced(recorder(t, exp))})
	got := make(chan *mq.Message, 1)
	if err := f.broker.Subscribe(t.Context(), ordermsg.TopicOrders, mq.SubscribeOptions{Group: "t"},
		func(_ context.Context, m *mq.Message) error { got <- m; return nil }); err != nil {
		t.Fatal(err)
	}
	act := openActivity(f, 5)
	r := f.buy(act, "alice", "req-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", r.status, r.raw)
	}
	orderID := r.body["order_id"].(string)
	msg := <-got

	var door, reserve, publish *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		s := &spans[i]
		switch {
		case s.SpanKind == trace.SpanKindServer && s.Name == "POST /api/v1/activities/:id/orders":
			door = s
		case s.Name == sale.SpanReserve:
			reserve = s
		case s.Name == ordermsg.TopicOrders+" publish":
			publish = s
		}
	}
	if door == nil || reserve == nil || publish == nil {
		t.Fatalf("want the buy's server, reserve and publish spans; got %d spans: %v", len(spans), spans.Snapshots())
	}
	if v := attr(door.Attributes, sale.OrderIDKey); v != orderID {
		t.Errorf("server span %s = %q, want the answered order %s", sale.OrderIDKey, v, orderID)
	}
	for _, s := range []*tracetest.SpanStub{reserve, publish} {
		if s.Parent.SpanID() != door.SpanContext.SpanID() || s.SpanContext.TraceID() != door.SpanContext.TraceID() {
			t.Errorf("%q is not a child of the buy's server span", s.Name)
		}
	}
	if v := attr(reserve.Attributes, sale.ReserveOutcome); v != "reserved" {
		t.Errorf("reserve %s = %q, want reserved", sale.ReserveOutcome, v)
	}
	if v := attr(reserve.Attributes, sale.OrderIDKey); v != orderID {
		t.Errorf("reserve %s = %q, want %s", sale.OrderIDKey, v, orderID)
	}
	link := mqotel.Link(msg)
	if link.SpanContext.SpanID() != publish.SpanContext.SpanID() || link.SpanContext.TraceID() != door.SpanContext.TraceID() {
		t.Errorf("the order message's trace context is %v, want the producer span %v of the buy's trace",
			link.SpanContext, publish.SpanContext)
	}
	if msg.Headers["request_id"] == "" {
		t.Error("the request_id header was lost next to the trace headers")
	}

	// A retry with the same request_id is answered with the first order:
	// its server span names that order too.
	exp.Reset()
	if again := f.buy(act, "alice", "req-1"); again.status != http.StatusAccepted || again.body["order_id"] != orderID {
		t.Fatalf("retry: %d %s", again.status, again.raw)
	}
	servers := 0
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			servers++
			if v := attr(s.Attributes, sale.OrderIDKey); v != orderID {
				t.Errorf("retry's server span %s = %q, want %s", sale.OrderIDKey, v, orderID)
			}
		}
	}
	if servers != 1 {
		t.Errorf("the retry made %d server spans, want 1", servers)
	}
}

// Probes and scrapes get no span: they would bury the buys.
func TestProbesAreNotTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	f := newFixture(t, fixtureOpts{tweak: traced(recorder(t, exp))})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := f.call("GET", path, "", nil); r.status != http.StatusOK {
			t.Fatalf("%s: %d", path, r.status)
		}
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("probes made %d spans, want none: %v", n, exp.GetSpans().Snapshots())
	}
}

func attr(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// newTracedBenchFixture is newBenchFixture with tr wired as the app wires
// it (nil: no tracing field set at all, the code before tracing).
func newTracedBenchFixture(b *testing.B, rdb redis.UniversalClient, tr *tracing.Tracing) benchFixture {
	if tr == nil {
		return newBenchFixture(b, rdb)
	}
	return newBenchFixture(b, rdb, traced(tr))
}

// With tracing off, as the app wires it without SECKILL_OTEL_ENDPOINT, a
// buy allocates exactly what it allocates with no tracing field set at all
// (the code before tracing). Measured on the sold-out buy, the path that
// runs entirely in the gateway, so nothing but the gateway allocates; the
// in-stock path is compared in BenchmarkHandler.
func TestTracingOffAllocatesNothing(t *testing.T) {
	off, err := tracing.Start(t.Context(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	noLimits := func(o *options) {
		o.Limits = httpapi.Limits{}
		// The local flag asks Redis again once per SoldOutTTL: under the
		// race detector the 500 runs outlast the default second, and that
		// one Redis call would be counted in one variant and not another.
		o.SoldOutTTL = time.Hour
	}
	allocs := func(tweak func(*options)) float64 {
		f := newFixture(t, fixtureOpts{tweak: func(o *options) { noLimits(o); tweak(o) }})
		act := openActivity(f, 1)
		f.buy(act, "winner", "")
		f.buy(act, "loser", "") // sets the local sold-out flag
		tok := f.token("late")
		return testing.AllocsPerRun(500, func() {
			r := httptest.NewRequest("POST", "/api/v1/activities/"+act+"/orders", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, r)
			if w.Code != http.StatusGone {
				t.Fatalf("late buy: %d, want 410", w.Code)
			}
		})
	}
	unset := allocs(func(*options) {})
	offAllocs := allocs(traced(off))
	on := allocs(traced(recorder(t, tracetest.NewNoopExporter())))
	t.Logf("allocs per sold-out buy: no tracing field %.0f, tracing off %.0f, tracing on %.0f", unset, offAllocs, on)
	// Exact without the race detector; with it, pooled buffers are
	// dropped at random and either variant may round up by one.
	slack := 0.0
	if raceDetector {
		slack = 1
	}
	if offAllocs > unset+slack {
		t.Errorf("tracing off: %.0f allocs per buy, want %.0f as without tracing", offAllocs, unset)
	}
	if on <= unset {
		t.Errorf("tracing on: %.0f allocs per buy, not more than off (%.0f): the measure does not see the spans", on, unset)
	}
}

// The door does not believe a client's traceparent: a buy that sends one
// still starts a trace of its own, so a client can neither force sampling
// nor put its requests into someone else's trace.
func TestClientTraceparentIsIgnored(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	f := newFixture(t, fixtureOpts{tweak: traced(recorder(t, exp))})
	act := openActivity(f, 5)
	const foreignTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest("POST", f.ts.URL+"/api/v1/activities/"+act+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token("mallory"))
	req.Header.Set("traceparent", "00-"+foreignTrace+"-00f067aa0ba902b7-01")
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("buy: %d", resp.StatusCode)
	}
	var door *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindServer {
			door = &spans[i]
		}
	}
	if door == nil {
		t.Fatal("no server span for the buy")
	}
	if door.SpanContext.TraceID().String() == foreignTrace || door.Parent.IsValid() {
		t.Fatalf("the buy's server span joined the client's trace (trace %s, parent %v)", door.SpanContext.TraceID(), door.Parent)
	}
}
