package order

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the spans the order side
// starts: the worker's batch and its transaction, the relay's round and the
// cancel of an unpaid order.
const ScopeName = "github.com/flashsale/seckill/order"

// Attributes of the order side's spans. The OpenTelemetry conventions have
// none for a shop's orders; these are the names the trace viewer and any
// dashboard built on it search by.
const (
	ActivityIDKey  = attribute.Key("seckill.activity.id")
	ActivityIDsKey = attribute.Key("seckill.activity.ids") // a batch of several activities
	OrderIDKey     = attribute.Key("seckill.order.id")
	BatchSizeKey   = attribute.Key("seckill.order.batch_size")
	CreatedKey     = attribute.Key("seckill.orders.created")
	CancelledKey   = attribute.Key("seckill.orders.cancelled")
	DuplicateKey   = attribute.Key("seckill.orders.duplicate")
	FailedKey      = attribute.Key("seckill.orders.failed")
	CancelOutcome  = attribute.Key("seckill.order.cancel.outcome")
	RelayedKey     = attribute.Key("seckill.outbox.relayed")
)

// traceparentHeader is the W3C header an outbox row keeps.
const traceparentHeader = "traceparent"

// Outcomes of a pay-deadline message, the CancelOutcome attribute.
const (
	OutcomeCancelled        = "cancelled"
	OutcomeAlreadyPaid      = "already_paid"
	OutcomeAlreadyCancelled = "already_cancelled"
	OutcomeRescheduled      = "rescheduled" // early: another machine's clock
	OutcomeUnknownOrder     = "unknown_order"
	OutcomeMalformed        = "malformed"
	OutcomeFailed           = "failed"
)

// tracerOf returns the tracer of tp, or nil when tracing is off (no
// provider, or a noop one). Callers test for nil before building anything
// for a span: even a noop tracer's Start allocates a context, and with
// tracing off the worker's batch path must cost what it cost before.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	if _, off := tp.(noop.TracerProvider); off {
		return nil
	}
	return tp.Tracer(ScopeName)
}

// endSpan ends span with err's outcome.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceparentOf returns the W3C traceparent of sc, written by the standard
// propagator, or nil when sc is not valid (tracing off, or a message that
// came without a trace). It is what an outbox row keeps of the trace it was
// written in, so that the relay's later publish continues that trace rather
// than its own. tracestate is left behind: it is vendor data for the next
// hop of a request, not worth a column.
func traceparentOf(sc trace.SpanContext) *string {
	if !sc.IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	tp, ok := c[traceparentHeader]
	if !ok {
		return nil
	}
	return &tp
}

// contextOf returns ctx carrying the remote span context a stored
// traceparent names, or ctx unchanged when tp is nil or unreadable.
func contextOf(ctx context.Context, tp *string) context.Context {
	if tp == nil {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{traceparentHeader: *tp})
}
