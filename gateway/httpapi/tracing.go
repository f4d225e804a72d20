package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/gateway/sale"
)

// untraced lists the routes that get no server span: probes and scrapes,
// which would bury the buys under their noise.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// installTracing puts otelgin's middleware first on e, so the server span
// covers every filter (and a recovered panic's 500). It installs nothing when tracing is off: a
// noop provider's span still costs allocations per request.
func (s *Server) installTracing(e *gin.Engine) {
	t := s.deps.Tracing
	if !t.Enabled() {
		return
	}
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

// traceOrder puts the id of the order a buy was answered with on the buy's
// server span, so a trace is found by the order id the client saw. Nothing
// when tracing is off.
func (s *Server) traceOrder(ctx context.Context, orderID string) {
	if !s.deps.Tracing.Enabled() {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(sale.OrderIDKey.String(orderID))
}
