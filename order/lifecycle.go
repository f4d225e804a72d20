package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/platform/metrics"
)

// Errors of the order lifecycle; the gateway maps them to HTTP answers.
var (
	// ErrOrderCancelled: the order was cancelled (its pay deadline passed)
	// and can no longer be paid.
	ErrOrderCancelled = errors.New("order: order cancelled")
	// ErrStockInconsistent: returning a unit would lift the activity's
	// available stock above its stock, so the unit was never taken or was
	// already returned. Only a bug or a manual edit gets here; the cancel
	// is not applied, and the message is retried, then dead-lettered.
	ErrStockInconsistent = errors.New("order: available stock would exceed stock")
)

// errNotDue is returned by the canceller for a timeout that arrived before
// the order's deadline (clocks of two machines disagree).
var errNotDue = errors.New("order: pay deadline not reached")

// Releaser gives a cancelled order's unit back to Redis: remaining + 1 and
// the user's reservation removed, so the user may buy again. The
// reservation is claimed (a worker wrote the order), which is why this is
// not inventory.Store.Release: that one leaves claimed reservations alone.
// Releasing twice is a no-op (false). inventory.Store satisfies it; it also
// tells every gateway that units came back, so their local sold-out flags
// clear.
type Releaser interface {
	ReleaseCancelled(ctx context.Context, activityID int64, orderID string) (bool, error)
}

// LifecycleConfig wires a Lifecycle. Zero values select the defaults.
type LifecycleConfig struct {
	// Publisher reschedules a pay-deadline message that arrived early
	// (another machine's clock). Nil: an early message is retried by the
	// queue instead.
	Publisher mq.Publisher
	// Changed is called after each committed state change (it wrote to the
	// outbox): pass the in-process Relay's Kick. Nil: nothing.
	Changed func()
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// Logger; nil uses slog.Default().
	Logger *slog.Logger
	// Registerer receives the lifecycle metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// TracerProvider traces the cancel a pay-deadline message asks for
	// with a span "order cancel", the child of the message's consumer
	// span when HandleTimeout runs under mqotel's subscriber. Whatever the
	// provider, the outbox rows of a payment or a cancel keep the trace of
	// the context they were written in. Default (nil) a noop provider.
	TracerProvider trace.TracerProvider
}

func (c LifecycleConfig) withDefaults() LifecycleConfig {
	if c.Changed == nil {
		c.Changed = func() {}
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Lifecycle moves stored orders on: created -> paid by the owner, created ->
// cancelled at the pay deadline (with the unit returned to the database and
// to Redis). Every transition is a version-checked update guarded by the
// state it leaves, so a payment and a cancellation racing for one order
// cannot both win, and a redelivered cancel returns nothing twice.
type Lifecycle struct {
	store    *Store
	releaser Releaser
	pub      mq.Publisher
	changed  func()
	now      func() time.Time
	log      *slog.Logger
	metrics  *lifecycleMetrics
	tracer   trace.Tracer // nil: tracing off
}

// NewLifecycle returns a Lifecycle over store that returns units through r.
func NewLifecycle(store *Store, r Releaser, cfg LifecycleConfig) *Lifecycle {
	cfg = cfg.withDefaults()
	l := &Lifecycle{
		store: store, releaser: r, pub: cfg.Publisher, changed: cfg.Changed, now: cfg.Now, log: cfg.Logger,
		tracer: tracerOf(cfg.TracerProvider),
	}
	if cfg.Registerer != nil {
		l.metrics = newLifecycleMetrics(cfg.Registerer, l.log)
	}
	return l
}

// maxTransitionTries bounds the re-reads after a lost version check: each
// loss means another transition committed, after which the order is no
// longer created, so the second read decides.
const maxTransitionTries = 3

// Pay marks order orderID of userID paid and returns it. Paying a paid order
// again returns it unchanged. Another user's order, and an order not yet
// stored (still queued), are ErrNotFound: the caller tells them apart with
// the Redis reservation. A cancelled order is ErrOrderCancelled; so is an
// order past its deadline, which Pay cancels on the spot (the unit goes
// back) rather than leave it to the timer.
func (l *Lifecycle) Pay(ctx context.Context, orderID, userID string) (*Order, error) {
	var last error
	for range maxTransitionTries {
		o, err := l.store.GetOrder(ctx, orderID)
		if err != nil {
			return nil, err
		}
		if o.UserID != userID {
			return nil, fmt.Errorf("order %s of another user: %w", orderID, ErrNotFound)
		}
		switch o.State {
		case StatePaid:
			return o, nil
		case StateCancelled:
			return nil, fmt.Errorf("order %s: %w", orderID, ErrOrderCancelled)
		}
		now := l.now().UTC()
		if !now.Before(o.PayDeadline) {
			// The next read says what happened: cancelled (even if the
			// Redis release failed: the pay-deadline message repeats it),
			// paid meanwhile, or still created after a failed cancel.
			_, last = l.CancelExpired(ctx, orderID)
			continue
		}
		won, err := l.transition(ctx, o, StatePaid, now, func(name string) []outboxRow {
			rows := []outboxRow{newEvent(o, ordermsg.EventPaid, "", name, now)}
			tracedRows(rows, trace.SpanContextFromContext(ctx)) // the payment request's trace
			return rows
		})
		if err != nil {
			return nil, err
		}
		if won {
			l.metrics.paid()
			o.State, o.Version, o.UpdatedAt = StatePaid, o.Version+1, now
			return o, nil
		}
	}
	if last != nil {
		return nil, fmt.Errorf("order %s: pay after the deadline: %w", orderID, last)
	}
	return nil, fmt.Errorf("order %s: pay: the order kept changing", orderID)
}

// CancelExpired cancels order orderID if it is still created and its pay
// deadline has passed: in one transaction the order becomes cancelled, its
// unit returns to the activity's available stock and the cancelled event
// goes to the outbox; then the unit returns to Redis. It reports whether
// this call cancelled the order. A paid order is left alone. For an order
// cancelled earlier it repeats only the Redis release (idempotent), which
// finishes a cancel whose release failed after the commit. The cancelled
// event continues the trace of ctx.
func (l *Lifecycle) CancelExpired(ctx context.Context, orderID string) (bool, error) {
	outcome, err := l.cancelExpired(ctx, orderID)
	return outcome == OutcomeCancelled, err
}

// cancelExpired is CancelExpired, reporting what it found: OutcomeCancelled
// (this call cancelled the order), OutcomeAlreadyPaid or
// OutcomeAlreadyCancelled, or OutcomeFailed with the error.
func (l *Lifecycle) cancelExpired(ctx context.Context, orderID string) (string, error) {
	for range maxTransitionTries {
		o, err := l.store.GetOrder(ctx, orderID)
		if err != nil {
			return OutcomeFailed, err
		}
		switch o.State {
		case StatePaid:
			return OutcomeAlreadyPaid, nil
		case StateCancelled:
			if err := l.release(ctx, o); err != nil {
				return OutcomeFailed, err
			}
			return OutcomeAlreadyCancelled, nil
		}
		now := l.now().UTC()
		if now.Before(o.PayDeadline) {
			return OutcomeFailed, fmt.Errorf("order %s due at %s: %w", orderID, o.PayDeadline.Format(time.RFC3339Nano), errNotDue)
		}
		won, err := l.transition(ctx, o, StateCancelled, now, func(name string) []outboxRow {
			rows := []outboxRow{newEvent(o, ordermsg.EventCancelled, ordermsg.ReasonPayTimeout, name, now)}
			tracedRows(rows, trace.SpanContextFromContext(ctx))
			return rows
		})
		if err != nil {
			return OutcomeFailed, err
		}
		if won {
			l.metrics.cancelled(ordermsg.ReasonPayTimeout)
			// Cancelled, whatever the release says: its failure is
			// the error, and a redelivery repeats only the release.
			return OutcomeCancelled, l.release(ctx, o)
		}
	}
	return OutcomeFailed, fmt.Errorf("order %s: cancel: the order kept changing", orderID)
}

// transition moves o from created to state in the store (Store.transition)
// and tells the relay when it won.
func (l *Lifecycle) transition(ctx context.Context, o *Order, state string, now time.Time, events func(activityName string) []outboxRow) (bool, error) {
	won, err := l.store.transition(ctx, o, state, now, events)
	if won {
		l.changed()
	}
	return won, err
}

func (l *Lifecycle) release(ctx context.Context, o *Order) error {
	if _, err := l.releaser.ReleaseCancelled(ctx, o.ActivityID, o.ID); err != nil {
		return fmt.Errorf("order %s cancelled; returning its unit to redis: %w", o.ID, err)
	}
	return nil
}

// Sweep cancels up to limit orders whose pay deadline passed while they are
// still created, oldest deadline first, on the (state, pay_deadline) index.
// It is the safety net under the pay-deadline messages: an order whose
// message was lost is cancelled by the next sweep. It returns how many it
// cancelled; one failing order does not stop the others.
func (l *Lifecycle) Sweep(ctx context.Context, limit int) (int, error) {
	due, err := l.store.dueOrders(ctx, l.now().UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	var errs []error
	n := 0
	for _, id := range due {
		won, err := l.CancelExpired(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if won {
			n++
		}
	}
	l.metrics.swept(n)
	return n, errors.Join(errs...)
}

// RunSweeper sweeps every interval until ctx is done, in batches of limit
// until a batch comes back short.
func (l *Lifecycle) RunSweeper(ctx context.Context, interval time.Duration, limit int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := l.Sweep(ctx, limit)
			if err != nil && ctx.Err() == nil {
				l.log.Warn("sweeper", "err", err)
			}
			if n > 0 {
				l.log.Info("sweeper cancelled unpaid orders past their deadline", "count", n)
			}
			if n < limit || err != nil {
				break
			}
		}
	}
}

// HandleTimeout is the mq.Handler of ordermsg.TopicOrderTimeouts: it cancels the
// order if it is still unpaid. Delivering one message twice is harmless.
//
// Its only permanent error is ErrStockInconsistent (a bug or a manual edit:
// the queue retries it MaxAttempts times, then dead-letters it). Every other
// failure is marked mq.Transient and retried for as long as it lasts: the
// database or Redis away, a deadlock, a reschedule the queue refused, a
// message early by another machine's clock. A cancel that committed but
// could not return its unit to Redis is finished only by such a redelivery,
// so an unknown error is waited out rather than dropped, like the order
// worker's.
//
// With tracing on, the cancel runs in a span "order cancel" (a child of the
// consumer span in ctx, so in the order's trace) with the order id and
// the outcome: cancelled, already_paid, already_cancelled, rescheduled,
// unknown_order, malformed or failed.
func (l *Lifecycle) HandleTimeout(ctx context.Context, m *mq.Message) error {
	var span trace.Span
	if l.tracer != nil {
		ctx, span = l.tracer.Start(ctx, "order cancel")
	}
	outcome, orderID, err := l.handleTimeout(ctx, m)
	if span != nil {
		span.SetAttributes(OrderIDKey.String(orderID), CancelOutcome.String(outcome))
		endSpan(span, err)
	}
	if err == nil || errors.Is(err, ErrStockInconsistent) {
		return err
	}
	return mq.Transient(err)
}

func (l *Lifecycle) handleTimeout(ctx context.Context, m *mq.Message) (outcome, orderID string, err error) {
	var t ordermsg.Timeout
	if err := json.Unmarshal(m.Payload, &t); err != nil || t.OrderID == "" {
		// Redelivery cannot fix it; the sweeper covers the order if any.
		l.log.Error("dropping malformed pay-deadline message", "message_id", m.ID, "err", err)
		return OutcomeMalformed, t.OrderID, nil
	}
	outcome, err = l.cancelExpired(ctx, t.OrderID)
	switch {
	case errors.Is(err, ErrNotFound):
		// Written to the outbox in the order's own transaction, so the
		// order exists unless it was deleted by hand.
		l.log.Warn("pay-deadline message for an unknown order", "order_id", t.OrderID)
		return OutcomeUnknownOrder, t.OrderID, nil
	case errors.Is(err, errNotDue) && l.pub != nil:
		// Another machine's clock ran ahead: schedule it again for the
		// deadline rather than burn the queue's attempts.
		again := &mq.Message{ID: m.ID, Key: m.Key, Payload: m.Payload, DeliverAt: t.PayDeadline}
		if perr := l.pub.Publish(ctx, ordermsg.TopicOrderTimeouts, again); perr != nil {
			return OutcomeFailed, t.OrderID, fmt.Errorf("reschedule %s: %w (after %w)", t.OrderID, perr, err)
		}
		return OutcomeRescheduled, t.OrderID, nil
	}
	return outcome, t.OrderID, err
}

// lifecycleMetrics is nil when the lifecycle has no Registerer.
type lifecycleMetrics struct {
	paidTotal      prometheus.Counter
	cancelledTotal *prometheus.CounterVec
	sweptTotal     prometheus.Counter
}

func newLifecycleMetrics(reg prometheus.Registerer, log *slog.Logger) *lifecycleMetrics {
	m := &lifecycleMetrics{
		paidTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_orders_paid_total",
			Help: "Orders moved from created to paid.",
		}),
		cancelledTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_orders_cancelled_total",
			Help: "Orders cancelled with their unit returned, by reason (pay_timeout). Orders the worker stored cancelled because their reservation was gone are in seckill_orders_written_total{result=\"cancelled_unreserved\"}.",
		}, []string{"reason"}),
		sweptTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_sweeper_cancelled_total",
			Help: "Orders the sweeper cancelled because their pay-deadline message had not (a lost or late message).",
		}),
	}
	var errs [3]error
	m.paidTotal, errs[0] = metrics.Shared(reg, m.paidTotal)
	m.cancelledTotal, errs[1] = metrics.Shared(reg, m.cancelledTotal)
	m.sweptTotal, errs[2] = metrics.Shared(reg, m.sweptTotal)
	if err := errors.Join(errs[:]...); err != nil {
		log.Warn("order worker metric not registered", "err", err)
	}
	m.cancelledTotal.WithLabelValues(ordermsg.ReasonPayTimeout)
	return m
}

func (m *lifecycleMetrics) paid() {
	if m != nil {
		m.paidTotal.Inc()
	}
}

func (m *lifecycleMetrics) cancelled(reason string) {
	if m != nil {
		m.cancelledTotal.WithLabelValues(reason).Inc()
	}
}

func (m *lifecycleMetrics) swept(n int) {
	if m != nil {
		m.sweptTotal.Add(float64(n))
	}
}
