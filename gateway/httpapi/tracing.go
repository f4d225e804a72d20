package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// ScopeName is the instrumentation scope of the spans this package starts
// itself (the reserve); the server spans are otelgin's.
const ScopeName = "github.com/flashsale/seckill/gateway/httpapi"

// SpanReserve is the span of the Redis reserve in the buy path: the
// coalescer may send one script for several buys, so the go-redis span
// under it can be shared with other requests' reserves and does not say
// which buy it decided; this one does.
const SpanReserve = "reserve"

// Attributes of the buy's spans. The order id goes on the buy's server
// span under the order side's key, so one search finds the door and the
// write of an order.
const (
	OrderIDKey     = order.OrderIDKey
	ActivityIDKey  = order.ActivityIDKey
	ReserveOutcome = attribute.Key("seckill.reserve.outcome")
)

// untraced lists the routes that get no server span: probes and scrapes,
// which would bury the buys under their noise.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// installTracing puts otelgin's middleware first on e, so the server span
// covers every filter (and a recovered panic's 500), and keeps a tracer for
// the buy path's own spans. It installs nothing when tracing is off: a
// noop provider's span still costs allocations per request.
func (s *Server) installTracing(e *gin.Engine) {
	t := s.cfg.Tracing
	if !t.Enabled() {
		return
	}
	s.tracer = t.TracerProvider().Tracer(ScopeName)
	// No server name: server.address is then the request's Host, the
	// name the client used, which is what a gateway behind a balancer
	// should report.
	e.Use(otelgin.Middleware("",
		otelgin.WithTracerProvider(t.TracerProvider()),
		// The gateway is the public door: a client's traceparent is not
		// believed. Sampling is parent-based, so a bot sending "sampled"
		// would force every one of its requests into the collector past
		// SECKILL_OTEL_SAMPLE_RATIO, and could pick trace ids to splice
		// its requests into another buyer's trace. Every buy starts a
		// trace of its own.
		otelgin.WithPropagators(propagation.NewCompositeTextMapPropagator()),
		// The gateway's HTTP metrics are its own (metrics.go); otelgin's
		// would go to otel's global meter, nobody's.
		otelgin.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgin.WithGinFilter(func(c *gin.Context) bool { return !untraced[c.FullPath()] }),
	))
}

// startReserve starts the reserve span as a child of ctx (the buy's server
// span). With tracing off it returns ctx and a nil span, allocating
// nothing; endReserve accepts that nil.
func (s *Server) startReserve(ctx context.Context, activityID int64) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, nil
	}
	return s.tracer.Start(ctx, SpanReserve, trace.WithAttributes(ActivityIDKey.Int64(activityID)))
}

// endReserve ends a reserve span with its outcome and the order it
// decided: orderID when it reserved, the earlier order when the request
// was a retry (Existing), none otherwise.
func endReserve(span trace.Span, orderID string, res inventory.ReserveResult, err error) {
	if span == nil {
		return
	}
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	case res.Outcome == inventory.Reserved:
		span.SetAttributes(ReserveOutcome.String(res.Outcome.String()), OrderIDKey.String(orderID))
	case res.Outcome == inventory.Existing:
		span.SetAttributes(ReserveOutcome.String(res.Outcome.String()), OrderIDKey.String(res.OrderID))
	default:
		span.SetAttributes(ReserveOutcome.String(res.Outcome.String()))
	}
	span.End()
}

// traceOrder puts the id of the order a buy was answered with on the buy's
// server span, so a trace is found by the order id the client saw. Nothing
// when tracing is off.
func (s *Server) traceOrder(ctx context.Context, orderID string) {
	if s.tracer == nil {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(OrderIDKey.String(orderID))
}
