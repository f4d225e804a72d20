package order

import (
	"context"
	"slices"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The worker's tracing, as decorators that newWriter puts around the plain
// writer and store only when tracing is on: with it off, the batch path
// runs no tracing code at all.

// tracedMsg is what the batch needs of a message's trace.
type tracedMsg struct {
	consumer trace.SpanContext // the consumer span Handle ran in: the order's trace
	producer trace.Link        // the message's producer span, for the batch's links
}

// trace is the trace the order of r continues: the consumer span its
// Handle ran in; invalid when tracing is off or the message came without a
// trace.
func (r *request) trace() trace.SpanContext {
	if r.tr == nil {
		return trace.SpanContext{}
	}
	return r.tr.consumer
}

// tracedWriter traces each batch with a span "orders write batch".
// Following the messaging conventions for batch processing it links to the
// producer span of every message, since one span cannot be the child of
// many; a batch of one message is moreover that message's processing, and
// its child. The span says what became of the messages and ends in error
// when one failed.
type tracedWriter struct {
	next   writer
	tracer trace.Tracer
}

func (t tracedWriter) write(ctx context.Context, batch []*request) map[string]outcome {
	links := make([]trace.Link, 0, len(batch))
	for _, r := range batch {
		if r.tr != nil && r.tr.producer.SpanContext.IsValid() {
			links = append(links, r.tr.producer)
		}
	}
	parent := ctx
	if len(batch) == 1 && batch[0].trace().IsValid() {
		parent = trace.ContextWithSpanContext(ctx, batch[0].trace())
	}
	ctx, span := t.tracer.Start(parent, "orders write batch",
		trace.WithLinks(links...),
		trace.WithAttributes(semconv.MessagingBatchMessageCount(len(batch))))
	out := t.next.write(ctx, batch)
	// Ended before the callers are answered: their consumer spans end
	// after it, as a parent should.
	endBatch(span, batch, out)
	return out
}

// endBatch records on a batch's span what became of its messages and ends
// it, in error when a message failed.
func endBatch(span trace.Span, batch []*request, outcomes map[string]outcome) {
	var created, cancelled, duplicate, failed int
	var firstErr error
	answered := make(map[string]bool, len(batch))
	for _, r := range batch {
		o := outcomes[r.msg.OrderID]
		switch {
		case o.err != nil:
			failed++
			if firstErr == nil {
				firstErr = o.err
			}
		case answered[r.msg.OrderID], o.result == resultDuplicate:
			duplicate++
		case o.result == resultUnreserved:
			cancelled++
		default:
			created++
		}
		answered[r.msg.OrderID] = true
	}
	span.SetAttributes(CreatedKey.Int(created), CancelledKey.Int(cancelled), DuplicateKey.Int(duplicate), FailedKey.Int(failed))
	endSpan(span, firstErr)
}

// tracedStore traces the batch's transactions, children of the batch's
// span: "order batch tx" for the whole batch, "order tx" for each order
// written on its own after the batch's failed.
type tracedStore struct {
	batchStore
	tracer trace.Tracer
}

func (s tracedStore) writeOrders(ctx context.Context, orders newOrders, now time.Time) error {
	ctx, span := s.startTx(ctx, "order batch tx", orders.rows)
	err := s.batchStore.writeOrders(ctx, orders, now)
	endSpan(span, err)
	return err
}

func (s tracedStore) writeOrder(ctx context.Context, r Order, outbox []outboxRow, now time.Time) (bool, error) {
	ctx, span := s.startTx(ctx, "order tx", []Order{r})
	duplicate, err := s.batchStore.writeOrder(ctx, r, outbox, now)
	endSpan(span, err)
	return duplicate, err
}

// startTx starts the span of a transaction writing rows (never empty),
// with its size, its activity (or activities) and its created and
// cancelled orders.
func (s tracedStore) startTx(ctx context.Context, name string, rows []Order) (context.Context, trace.Span) {
	var created, cancelled int
	var activities []int64
	for _, r := range rows {
		if r.State == StateCreated {
			created++
		} else {
			cancelled++
		}
		if !slices.Contains(activities, r.ActivityID) {
			activities = append(activities, r.ActivityID)
		}
	}
	activity := ActivityIDKey.Int64(activities[0])
	if len(activities) > 1 {
		slices.Sort(activities)
		activity = ActivityIDsKey.Int64Slice(activities)
	}
	return s.tracer.Start(ctx, name, trace.WithAttributes(
		BatchSizeKey.Int(len(rows)), activity, CreatedKey.Int(created), CancelledKey.Int(cancelled)))
}
