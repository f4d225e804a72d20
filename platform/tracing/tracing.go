// Package tracing starts a seckill process's OpenTelemetry tracing, the one
// way every binary does it: spans exported over OTLP/HTTP (protobuf) to a
// collector such as Jaeger or Grafana Tempo, sampled by a ratio that
// follows the caller's decision, each span carrying the process's
// service.name.
//
// Tracing is off unless an endpoint is configured, and off means off: Start
// then returns a Tracing whose provider is trace/noop, no exporter and no
// goroutine exist, and instrumentation that asks Enabled installs nothing,
// so the hot paths cost what they cost before tracing existed.
//
// # Use
//
// A service reads the settings with the rest of its configuration, starts
// tracing once in main, hands the Tracing to what it wires, and shuts it
// down last so the spans of the shutdown itself are flushed:
//
//	r := env.New(os.Getenv)
//	tcfg := tracing.FromEnv(r, "seckill-order")
//	// ... other settings; then if err := r.Err(); err != nil { ... }
//	tr, err := tracing.Start(ctx, tcfg)
//	if err != nil { ... }
//	defer tr.Shutdown(context.WithoutCancel(ctx)) // flushes queued spans
//
//	pub := mqotel.NewPublisher(broker, tr.MQ())   // the broker itself when off
//	tracer := tr.TracerProvider().Tracer("github.com/flashsale/seckill/order/worker")
//	if tr.Enabled() { /* install instrumentation (gin, redis, gorm) */ }
//	// go-redis and gorm: tr.ChildrenOnly(), so background loops do not
//	// start a trace per query
//
// Nothing here sets otel's global provider or propagator: a process passes
// TracerProvider and Propagator to each instrumentation explicitly, so two
// services embedded in one process (the all-in-one) and parallel tests
// never share tracing state. Tests that want the spans in memory wrap their
// own provider with Provided.
//
// A nil *Tracing is valid and off: its methods return the noop provider, a
// Disabled mqotel.Config and a nil error, so a component's Config can hold
// an optional *Tracing without a check at every use.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/platform/env"
)

// The settings FromEnv reads.
const (
	// EndpointVar is the collector's base URL, e.g. http://localhost:4318;
	// spans go to its /v1/traces. Tracing is off when it and
	// StandardEndpointVar are both unset.
	EndpointVar = "SECKILL_OTEL_ENDPOINT"
	// StandardEndpointVar is OpenTelemetry's own name for the same base
	// URL, honoured so a platform that injects it (an operator, a sidecar
	// convention) needs no seckill-specific setting; EndpointVar wins when
	// both are set.
	StandardEndpointVar = "OTEL_EXPORTER_OTLP_ENDPOINT"
	// SampleRatioVar is the fraction of new traces recorded, greater than
	// 0 and at most 1.
	SampleRatioVar = "SECKILL_OTEL_SAMPLE_RATIO"
)

// Names lists every variable FromEnv reads, for a process's list of the
// settings it knows (deployment files are checked against it).
func Names() []string {
	return env.Names(env.Describe(func(r *env.Reader) { FromEnv(r, "") }))
}

// DefaultSampleRatio records every trace: a flash sale's interesting
// traces are its rare failures, and a collector sized for the sale can
// take them all; lower it when the collector cannot.
const DefaultSampleRatio = 1.0

// DefaultServiceName is service.name when Config.ServiceName is empty.
const DefaultServiceName = "seckill"

// tracesPath is where an OTLP/HTTP collector receives spans, appended to
// the base URL as OTEL_EXPORTER_OTLP_ENDPOINT's specification says.
const tracesPath = "/v1/traces"

// Config configures Start.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP base URL (http or https,
	// e.g. http://localhost:4318): spans are POSTed to Endpoint +
	// "/v1/traces". Empty turns tracing off.
	Endpoint string
	// SampleRatio is the fraction of traces started here that are
	// recorded, in (0, 1]. A span whose parent came with the request or
	// the message follows the parent's decision instead, so a trace is
	// recorded whole or not at all across services. Default
	// DefaultSampleRatio.
	SampleRatio float64
	// ServiceName is the resource's service.name, the name a trace viewer
	// shows for this process's spans. Default DefaultServiceName.
	ServiceName string
}

func (c Config) withDefaults() Config {
	if c.SampleRatio == 0 {
		c.SampleRatio = DefaultSampleRatio
	}
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	return c
}

// On reports whether c turns tracing on.
func (c Config) On() bool { return c.Endpoint != "" }

// FromEnv reads the tracing settings through r for the process named
// service (its service.name). A bad value is recorded on r like any
// other setting's, and the returned Config then has tracing off for it.
func FromEnv(r *env.Reader, service string) Config {
	c := Config{ServiceName: service}
	name := EndpointVar
	c.Endpoint = r.String(EndpointVar, "", "OpenTelemetry tracing: the collector's OTLP/HTTP base URL (e.g. `http://localhost:4318`; spans are POSTed to `/v1/traces`). Unset, with OTEL_EXPORTER_OTLP_ENDPOINT unset too: tracing off, at no cost")
	standard := r.String(StandardEndpointVar, "", "OpenTelemetry's standard name for the same base URL, honoured when SECKILL_OTEL_ENDPOINT is unset")
	if c.Endpoint == "" {
		name, c.Endpoint = StandardEndpointVar, standard
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			r.Fail(name, "%v", err)
			c.Endpoint = ""
		}
	}
	c.SampleRatio = r.PositiveFloat(SampleRatioVar, DefaultSampleRatio, "fraction of new traces recorded, more than 0 and at most 1; a trace that arrives with a request (`traceparent`) or a message keeps its caller's decision, so a trace is kept or dropped whole")
	if c.SampleRatio > 1 {
		r.Fail(SampleRatioVar, "must be at most 1 (a fraction of traces), got %g", c.SampleRatio)
		c.SampleRatio = DefaultSampleRatio
	}
	return c
}

// checkEndpoint says what is wrong with a collector base URL, or nil.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be the collector's http or https base URL like http://localhost:4318, got %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be a base URL without query or fragment, got %q", s)
	}
	return nil
}

// Tracing is a process's tracing, on or off. Create one with Start (or
// Provided in tests); a nil *Tracing is off.
type Tracing struct {
	tp trace.TracerProvider
	// sdk is the provider Start built, shut down by Shutdown; nil when
	// off or Provided (whoever built a provided one shuts it down).
	sdk *sdktrace.TracerProvider
	on  bool
}

// Start starts tracing as cfg says: with cfg.Endpoint empty it returns an
// off Tracing and starts nothing. With an endpoint it builds an OTLP/HTTP
// exporter (which connects lazily: a collector that is down costs dropped
// spans, never a failed start) behind a batching processor. The error is
// for a Config that cannot work: an endpoint that is no http(s) URL, a
// ratio outside (0, 1].
func Start(ctx context.Context, cfg Config) (*Tracing, error) {
	cfg = cfg.withDefaults()
	if !cfg.On() {
		return &Tracing{tp: noop.NewTracerProvider()}, nil
	}
	if err := checkEndpoint(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("tracing: endpoint %w", err)
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing: sample ratio must be in (0, 1], got %g", cfg.SampleRatio)
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(strings.TrimRight(cfg.Endpoint, "/")+tracesPath))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", cfg.Endpoint, err)
	}
	// Schemaless: resource.Default carries the SDK's semconv schema and a
	// second schema URL would make the merge fail.
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource for %s: %w", cfg.ServiceName, err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Tracing{tp: sdk, sdk: sdk, on: true}, nil
}

// Provided returns a Tracing over tp, which the caller built and shuts
// down: tests record spans with an in-memory exporter this way and hand
// the result to what they wire, exactly as main hands Start's. A nil or
// noop tp gives an off Tracing.
func Provided(tp trace.TracerProvider) *Tracing {
	if tp == nil {
		return &Tracing{tp: noop.NewTracerProvider()}
	}
	_, isNoop := tp.(noop.TracerProvider)
	return &Tracing{tp: tp, on: !isNoop}
}

// Enabled reports whether spans are recorded: instrumentation that has a
// cost even with a noop provider (a gin middleware, a redis hook) is
// installed only when it is true.
func (t *Tracing) Enabled() bool { return t != nil && t.on }

// TracerProvider returns the provider to create tracers from: the SDK's
// when on, trace/noop's when off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return noop.NewTracerProvider()
	}
	return t.tp
}

// ChildrenOnly returns a provider whose tracers start a span only under a
// span that is already in the context, for the instrumentation of shared
// clients (go-redis, gorm): their commands are worth a span inside a buy,
// a batch or a relay round, but a process's background loops (reapers,
// sweeps, the dashboard's sampling) would otherwise each start a root
// trace every few seconds and bury the orders. Off, it is the noop
// provider.
func (t *Tracing) ChildrenOnly() trace.TracerProvider {
	if !t.Enabled() {
		return noop.NewTracerProvider()
	}
	return childrenOnly{tp: t.tp}
}

type childrenOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (c childrenOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{tr: c.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	tr trace.Tracer
}

// Start starts a span when ctx holds one (local or from a message or
// request); otherwise it returns ctx and the non-recording span
// trace.SpanFromContext gives, on which End and the setters do nothing.
func (c childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return c.tr.Start(ctx, name, opts...)
}

// Propagator returns the propagator of trace context across HTTP and the
// queue: W3C Trace Context and Baggage, the headers mqotel writes, for
// instrumentation that would otherwise use otel's global propagator (which
// propagates nothing until someone sets it).
func (t *Tracing) Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// MQ returns the mqotel configuration for this process's brokers:
// Disabled when off, so mqotel.NewPublisher and NewSubscriber return the
// broker itself.
func (t *Tracing) MQ() mqotel.Config {
	if !t.Enabled() {
		return mqotel.Config{Disabled: true}
	}
	return mqotel.Config{TracerProvider: t.tp, Propagator: t.Propagator()}
}

// Shutdown exports the spans still queued and stops the exporter, within
// ctx: call it once, after the last traced work (a service's own graceful
// shutdown), so that work's spans are not lost. Off, or Provided, it does
// nothing.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush and shutdown: %w", err)
	}
	return nil
}
