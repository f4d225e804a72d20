package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/tracing"
)

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		want    tracing.Config
		wantBad string // the variable reported, "" for none
	}{
		{
			name: "unset is off",
			vars: nil,
			want: tracing.Config{SampleRatio: 1, ServiceName: "svc"},
		},
		{
			name: "seckill endpoint",
			vars: map[string]string{tracing.EndpointVar: " http://jaeger:4318 "},
			want: tracing.Config{Endpoint: "http://jaeger:4318", SampleRatio: 1, ServiceName: "svc"},
		},
		{
			name: "standard endpoint",
			vars: map[string]string{tracing.StandardEndpointVar: "https://collector.example:4318/otlp"},
			want: tracing.Config{Endpoint: "https://collector.example:4318/otlp", SampleRatio: 1, ServiceName: "svc"},
		},
		{
			name: "seckill endpoint wins over the standard one",
			vars: map[string]string{tracing.EndpointVar: "http://a:4318", tracing.StandardEndpointVar: "http://b:4318"},
			want: tracing.Config{Endpoint: "http://a:4318", SampleRatio: 1, ServiceName: "svc"},
		},
		{
			name: "ratio",
			vars: map[string]string{tracing.EndpointVar: "http://a:4318", tracing.SampleRatioVar: "0.25"},
			want: tracing.Config{Endpoint: "http://a:4318", SampleRatio: 0.25, ServiceName: "svc"},
		},
		{
			name:    "endpoint without scheme",
			vars:    map[string]string{tracing.EndpointVar: "localhost:4318"},
			want:    tracing.Config{SampleRatio: 1, ServiceName: "svc"},
			wantBad: tracing.EndpointVar,
		},
		{
			name:    "bad standard endpoint is reported under its own name",
			vars:    map[string]string{tracing.StandardEndpointVar: "grpc://collector:4317"},
			want:    tracing.Config{SampleRatio: 1, ServiceName: "svc"},
			wantBad: tracing.StandardEndpointVar,
		},
		{
			name:    "ratio above one",
			vars:    map[string]string{tracing.SampleRatioVar: "1.5"},
			want:    tracing.Config{SampleRatio: 1, ServiceName: "svc"},
			wantBad: tracing.SampleRatioVar,
		},
		{
			name:    "ratio zero",
			vars:    map[string]string{tracing.SampleRatioVar: "0"},
			want:    tracing.Config{SampleRatio: 1, ServiceName: "svc"},
			wantBad: tracing.SampleRatioVar,
		},
		{
			name:    "ratio not a number",
			vars:    map[string]string{tracing.SampleRatioVar: "half"},
			want:    tracing.Config{SampleRatio: 1, ServiceName: "svc"},
			wantBad: tracing.SampleRatioVar,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.New(getenv(tt.vars))
			got := tracing.FromEnv(r, "svc")
			if got != tt.want {
				t.Errorf("FromEnv = %+v, want %+v", got, tt.want)
			}
			err := r.Err()
			if tt.wantBad == "" {
				if err != nil {
					t.Errorf("Err = %v, want nil", err)
				}
				return
			}
			var ve *env.VarError
			if !errors.As(err, &ve) || ve.Name != tt.wantBad {
				t.Errorf("Err = %v, want a problem with %s", err, tt.wantBad)
			}
		})
	}
}

// collector is an OTLP/HTTP receiver: it records the path and the spans
// of every export request.
type collector struct {
	mu    sync.Mutex
	paths []string
	reqs  []*collectortrace.ExportTraceServiceRequest
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &collectortrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func TestStartExportsToEndpoint(t *testing.T) {
	var c collector
	srv := httptest.NewServer(&c)
	t.Cleanup(srv.Close)

	r := env.New(getenv(map[string]string{tracing.EndpointVar: srv.URL}))
	cfg := tracing.FromEnv(r, "seckill-test")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	tr, err := tracing.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("Enabled = false with an endpoint set")
	}
	_, span := tr.TracerProvider().Tracer("test").Start(t.Context(), "buy")
	span.End()
	// Shutdown flushes the batch: the span must have reached the
	// collector by the time it returns.
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("collector received no export request")
	}
	for _, p := range c.paths {
		if p != "/v1/traces" {
			t.Errorf("export went to %q, want /v1/traces", p)
		}
	}
	var names []string
	for _, req := range c.reqs {
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
					if service != "seckill-test" {
						t.Errorf("span %q has service.name %q, want seckill-test", s.GetName(), service)
					}
				}
			}
		}
	}
	if len(names) != 1 || names[0] != "buy" {
		t.Errorf("exported spans %q, want [buy]", names)
	}
}

func TestStartRejectsUnworkableConfig(t *testing.T) {
	for _, cfg := range []tracing.Config{
		{Endpoint: "collector:4318"},
		{Endpoint: "http://collector:4318", SampleRatio: 2},
		{Endpoint: "http://collector:4318", SampleRatio: -0.5},
	} {
		if tr, err := tracing.Start(t.Context(), cfg); err == nil {
			_ = tr.Shutdown(t.Context())
			t.Errorf("Start(%+v) = nil error, want one", cfg)
		}
	}
}

// sdkGoroutines counts goroutines running the OpenTelemetry SDK (the batch
// processor's loop) or the OTLP exporter.
func sdkGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "go.opentelemetry.io/otel/sdk") || strings.Contains(g, "go.opentelemetry.io/otel/exporters") {
			n++
		}
	}
	return n
}

// offChecks asserts that tr is off in every way a caller can see.
func offChecks(t *testing.T, tr *tracing.Tracing) {
	t.Helper()
	if tr.Enabled() {
		t.Error("Enabled = true, want false")
	}
	if _, ok := tr.TracerProvider().(noop.TracerProvider); !ok {
		t.Errorf("TracerProvider is %T, want noop.TracerProvider", tr.TracerProvider())
	}
	if !tr.MQ().Disabled {
		t.Error("MQ().Disabled = false, want true")
	}
	b := memory.New(memory.Config{})
	t.Cleanup(func() { _ = b.Close() })
	if p := mqotel.NewPublisher(b, tr.MQ()); p != mq.Publisher(b) {
		t.Errorf("mqotel.NewPublisher with MQ() wrapped the broker (%T): off must leave it bare", p)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

func TestOffStartsNothing(t *testing.T) {
	// Earlier tests shut their providers down, but the SDK's goroutines end a
	// moment later: counting before they have would blame (or excuse) Start
	// for them, so wait until none is left.
	deadline := time.Now().Add(10 * time.Second)
	for n := sdkGoroutines(); n > 0; n = sdkGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d SDK or exporter goroutines of earlier tests still run after 10s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr, err := tracing.Start(t.Context(), tracing.Config{ServiceName: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if after := sdkGoroutines(); after != 0 {
		t.Errorf("off Start left %d SDK or exporter goroutines running, want 0", after)
	}
	offChecks(t, tr)
}

func TestNilTracingIsOff(t *testing.T) {
	offChecks(t, nil)
}

func TestProvided(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	tr := tracing.Provided(tp)
	if !tr.Enabled() {
		t.Fatal("Provided(sdk provider).Enabled = false")
	}
	if got := tr.MQ(); got.Disabled || got.TracerProvider != trace.TracerProvider(tp) || got.Propagator == nil {
		t.Errorf("MQ() = %+v, want the provided provider and a propagator, not disabled", got)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(t.Context(), "x")
	span.End()
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("provided provider recorded %d spans, want 1", n)
	}

	offChecks(t, tracing.Provided(noop.NewTracerProvider()))
	offChecks(t, tracing.Provided(nil))
}

// The sampler follows a parent that came with the request or message, so a
// trace is kept or dropped whole across services; the ratio decides only
// for traces that start here.
func TestSamplerFollowsParent(t *testing.T) {
	var c collector
	srv := httptest.NewServer(&c)
	t.Cleanup(srv.Close)
	tr, err := tracing.Start(t.Context(), tracing.Config{Endpoint: srv.URL, SampleRatio: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	tracer := tr.TracerProvider().Tracer("test")

	parent := func(flags trace.TraceFlags) context.Context {
		return trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{1, 2, 3},
			SpanID:     trace.SpanID{4, 5, 6},
			TraceFlags: flags,
			Remote:     true,
		}))
	}
	for _, tt := range []struct {
		name  string
		flags trace.TraceFlags
		want  bool
	}{
		{"sampled parent", trace.FlagsSampled, true},
		{"unsampled parent", 0, false},
	} {
		_, span := tracer.Start(parent(tt.flags), "child")
		if got := span.SpanContext().IsSampled(); got != tt.want {
			t.Errorf("%s: child sampled = %v, want %v", tt.name, got, tt.want)
		}
		span.End()
	}
}

func TestChildrenOnly(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tracing.Provided(tp)
	lib := tr.ChildrenOnly().Tracer("lib")

	// No span in the context: a background loop's query starts nothing.
	ctx, span := lib.Start(t.Context(), "orphan")
	if span.IsRecording() || ctx != t.Context() {
		t.Error("ChildrenOnly started a root span")
	}
	span.End()

	parentCtx, parent := tr.TracerProvider().Tracer("app").Start(t.Context(), "batch")
	_, child := lib.Start(parentCtx, "query")
	child.End()
	parent.End()

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("recorded %d spans, want the batch and its query", len(spans))
	}
	q := spans[0]
	if q.Name != "query" || q.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("first span %q with parent %s, want query under the batch %s", q.Name, q.Parent.SpanID(), parent.SpanContext().SpanID())
	}

	if _, ok := tracing.Provided(nil).ChildrenOnly().(noop.TracerProvider); !ok {
		t.Error("off ChildrenOnly is not the noop provider")
	}
}
