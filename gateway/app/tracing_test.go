package app

import (
	"context"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/testkit"
)

// traceSVG, when set, is where TestTraceOfOneOrder/embedded writes the
// waterfall of the order's trace (the README's picture):
//
//	go test ./app -run 'TestTraceOfOneOrder/embedded' -trace-svg ../../docs/trace-one-order.svg
var traceSVG = flag.String("trace-svg", "", "write the embedded order's trace as an SVG waterfall to this file")

// Names of the spans the buy's trace must hold across the queue: otelgin's
// server span of the buy route, the gateway's reserve, and mqotel's
// producer and consumer spans of the orders topic.
const (
	spanBuy     = "POST /api/v1/activities/:id/orders"
	spanPublish = "orders publish"
	spanProcess = "orders process"
)

// span is one finished span, from the in-memory exporter or from OTLP.
type span struct {
	TraceID, SpanID, Parent string // hex; Parent "" for a root
	Name, Service           string
	Scope                   string // the instrumentation that started it
	Kind                    trace.SpanKind
	Start, End              time.Time
	Attrs                   map[string]string
}

// memorySpans records a process's spans in memory, under service.
func memorySpans(t *testing.T, service string) (*sdktrace.TracerProvider, func() []span) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	// After the app's shutdown (cleanups run last in, first out): the
	// app only stops using the provider.
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, func() []span {
		var out []span
		for _, s := range exp.GetSpans() {
			r := span{
				TraceID: s.SpanContext.TraceID().String(), SpanID: s.SpanContext.SpanID().String(),
				Name: s.Name, Kind: s.SpanKind, Start: s.StartTime, End: s.EndTime, Service: service,
				Scope: s.InstrumentationScope.Name, Attrs: attrs(s.Attributes),
			}
			if s.Parent.IsValid() {
				r.Parent = s.Parent.SpanID().String()
			}
			out = append(out, r)
		}
		return out
	}
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// otlpCollector receives OTLP/HTTP exports, as Jaeger or a collector would,
// from another process.
type otlpCollector struct {
	mu    sync.Mutex
	spans []span
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := &collectortrace.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(body, req)
	}
	if err != nil || r.URL.Path != "/v1/traces" {
		http.Error(w, "want an OTLP protobuf export on /v1/traces", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == string(semconv.ServiceNameKey) {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, fromOTLP(s, service, ss.GetScope().GetName()))
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *otlpCollector) get() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

func fromOTLP(s *tracepb.Span, service, scope string) span {
	m := map[string]string{}
	for _, kv := range s.GetAttributes() {
		m[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	// OTLP numbers the kinds as the API does (0 unspecified, 1 internal...).
	return span{
		TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
		Parent: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Service: service, Scope: scope,
		Kind:  trace.SpanKind(s.GetKind()),
		Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), End: time.Unix(0, int64(s.GetEndTimeUnixNano())),
		Attrs: m,
	}
}

// doorOf finds the server span of the buy that was answered with orderID:
// the search by order id a trace viewer offers.
func doorOf(spans []span, orderID string) (span, bool) {
	for _, s := range spans {
		if s.Kind == trace.SpanKindServer && s.Attrs[string(sale.OrderIDKey)] == orderID {
			return s, true
		}
	}
	return span{}, false
}

// find returns the span of trace named name whose parent is parent (any
// parent when parent is "").
func find(spans []span, traceID, name, parent string) (span, bool) {
	for _, s := range spans {
		if s.TraceID == traceID && s.Name == name && (parent == "" || s.Parent == parent) {
			return s, true
		}
	}
	return span{}, false
}

// waitSpan polls get until it holds the span find describes.
func waitSpan(t *testing.T, get func() []span, traceID, name, parent string) span {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s, ok := find(get(), traceID, name, parent); ok {
			return s
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range get() {
				if s.TraceID == traceID {
					names = append(names, s.Service+": "+s.Name+" (parent "+s.Parent+")")
				}
			}
			t.Fatalf("no span %q with parent %q in trace %s within 60s; the trace holds:\n%s",
				name, parent, traceID, strings.Join(names, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkDoor asserts the gateway's half of one buy's trace and returns the
// trace id and the producer span: the buy's server span, found by its
// order id; the reserve under it; the publish of the order message under
// it too.
func checkDoor(t *testing.T, spans []span, orderID string) (door, publish span) {
	t.Helper()
	door, ok := doorOf(spans, orderID)
	if !ok {
		t.Fatalf("no server span carries %s=%s", sale.OrderIDKey, orderID)
	}
	if door.Name != spanBuy {
		t.Errorf("the buy's server span is %q, want %q", door.Name, spanBuy)
	}
	reserve, ok := find(spans, door.TraceID, sale.SpanReserve, door.SpanID)
	if !ok {
		t.Errorf("no %q span under the buy's server span", sale.SpanReserve)
	} else if got := reserve.Attrs[string(sale.ReserveOutcome)]; got != "reserved" {
		t.Errorf("reserve outcome %q, want reserved", got)
	}
	publish, ok = find(spans, door.TraceID, spanPublish, door.SpanID)
	if !ok {
		t.Fatalf("no %q span under the buy's server span", spanPublish)
	}
	if publish.Kind != trace.SpanKindProducer {
		t.Errorf("%q is a %s span, want producer", spanPublish, publish.Kind)
	}
	return door, publish
}

// TestTraceOfOneOrder: one buy is one trace across the asynchronous gap.
// The buy's server span (found by its order id), its reserve and the
// publish of its order message are one trace with the order side's
// processing of that message, whose consumer span is the child of the
// producer span: in one process on the embedded NATS JetStream queue, and
// across processes on Kafka, where the order worker exports its spans over
// OTLP/HTTP to a collector like Jaeger's.
func TestTraceOfOneOrder(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		tp, spans := memorySpans(t, "seckill")
		a, c := startRoleWith(t, AllInOne, nil, Options{TracerProvider: tp})
		activity := c.createActivity(t, 5, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
		code, orderID := c.buyOne(t, activity, "traced-buyer")
		if code != http.StatusAccepted {
			t.Fatalf("buy: %d, want 202", code)
		}
		c.waitStats(t, activity, "the order written", func(s statsResp) bool { return s.OrdersCreated == 1 })

		door, publish := checkDoor(t, spans(), orderID)
		process := waitSpan(t, spans, door.TraceID, spanProcess, publish.SpanID)
		if process.Kind != trace.SpanKindConsumer {
			t.Errorf("%q is a %s span, want consumer", spanProcess, process.Kind)
		}

		if *traceSVG != "" {
			writeTracePicture(t, a, spans, door.TraceID, orderID)
		}
	})

	t.Run("kafka-split", func(t *testing.T) {
		redisURL, dsn := testkit.RedisURL(t), testkit.MySQLDSN(t)
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		var collector otlpCollector
		jaeger := httptest.NewServer(&collector)
		t.Cleanup(jaeger.Close)

		env := map[string]string{
			"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
			"SECKILL_KAFKA_PARTITIONS": "3", "SECKILL_KAFKA_SESSION_TIMEOUT": "6s",
			"SECKILL_REDIS_URL": redisURL, "SECKILL_DB_DSN": dsn, "SECKILL_DEMO": "false",
			"SECKILL_REDIS_PREFIX": "sktest-" + testkit.RandomHex(4),
		}
		workerEnv := map[string]string{"SECKILL_OTEL_ENDPOINT": jaeger.URL}
		for k, v := range env {
			workerEnv[k] = v
		}
		tp, spans := memorySpans(t, "seckill-gateway")
		_, c := startRoleWith(t, GatewayOnly, env, Options{TracerProvider: tp})
		startWorker(t, buildBinary(t, "seckill-order-worker"), workerEnv)

		activity := c.createActivity(t, 5, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
		code, orderID := c.buyOne(t, activity, "traced-buyer")
		if code != http.StatusAccepted {
			t.Fatalf("buy: %d, want 202", code)
		}
		c.waitStats(t, activity, "the order written", func(s statsResp) bool { return s.OrdersCreated == 1 })

		door, publish := checkDoor(t, spans(), orderID)
		// The worker's batching exporter sends every few seconds.
		process := waitSpan(t, collector.get, door.TraceID, spanProcess, publish.SpanID)
		if process.Kind != trace.SpanKindConsumer || process.Service != "seckill-order-worker" {
			t.Errorf("%q is a %s span of %q, want a consumer span of seckill-order-worker", spanProcess, process.Kind, process.Service)
		}
	})
}

// writeTracePicture waits for the rest of the order's trace (the order
// side's batch, its transaction and what follows them run after the
// consumer span's parent has ended) and writes it as an SVG waterfall to
// -trace-svg. It is a picture, not an assertion: it waits until the trace
// has stopped growing for a second.
func writeTracePicture(t *testing.T, a *App, spans func() []span, traceID, orderID string) {
	t.Helper()
	count := func() int {
		n := 0
		for _, s := range spans() {
			if s.TraceID == traceID {
				n++
			}
		}
		return n
	}
	last, since := count(), time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && time.Since(since) < time.Second; {
		time.Sleep(50 * time.Millisecond)
		if n := count(); n != last {
			last, since = n, time.Now()
		}
	}
	var trace []span
	for _, s := range spans() {
		if s.TraceID == traceID {
			trace = append(trace, s)
		}
	}
	svg := renderWaterfall(trace, "One order's trace: "+orderID+" (all-in-one, "+a.cfg.MQ+" NATS JetStream queue)")
	if err := os.WriteFile(*traceSVG, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote the %d spans of trace %s to %s", len(trace), traceID, *traceSVG)
}
