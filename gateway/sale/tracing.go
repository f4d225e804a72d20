package sale

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// ScopeName is the instrumentation scope of the spans the sale starts (the
// reserve); give Deps.Tracer this name.
const ScopeName = "github.com/flashsale/seckill/gateway/sale"

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

// startReserve starts the reserve span as a child of ctx (the buy's server
// span). With tracing off it returns ctx and a nil span, allocating
// nothing; endReserve accepts that nil.
func (s *Service) startReserve(ctx context.Context, activityID int64) (context.Context, trace.Span) {
	if s.deps.Tracer == nil {
		return ctx, nil
	}
	return s.deps.Tracer.Start(ctx, SpanReserve, trace.WithAttributes(ActivityIDKey.Int64(activityID)))
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
