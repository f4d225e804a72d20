package order

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/order/ordermsg"
)

// Claimer takes over a Redis reservation for the order worker. Claim
// reports, per order id, whether its reservation was still held (and is now
// claimed); false means it was released meanwhile and the unit went back on
// sale, so the order must not take a unit from the database. Claiming twice
// is harmless. inventory.Store satisfies it.
type Claimer interface {
	Claim(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error)
}

// Outcomes of one message, the result label of seckill_orders_written_total.
const (
	resultCreated    = "created"
	resultDuplicate  = "duplicate"
	resultUnreserved = "cancelled_unreserved"
	resultFailed     = "failed"
)

// activityCacheTTL: activity rows change only in stock, which the worker
// never reads from the cache, so a short TTL only bounds how long a deleted
// or re-timed activity is remembered.
const activityCacheTTL = 30 * time.Second

// outcome is what happened to one distinct order of a batch.
type outcome struct {
	result string
	err    error
}

// writer writes the orders of a batch of messages and says what became of
// each distinct order id: batchWriter, or tracedWriter around it.
type writer interface {
	write(ctx context.Context, batch []*request) map[string]outcome
}

// batchStore is the database side of a batch: *Store, or tracedStore
// around it.
type batchStore interface {
	GetActivity(ctx context.Context, id int64) (*Activity, error)
	storedOrders(ctx context.Context, ids []string) (map[string]Order, error)
	writeOrders(ctx context.Context, orders newOrders, now time.Time) error
	writeOrder(ctx context.Context, r Order, outbox []outboxRow, now time.Time) (duplicate bool, err error)
}

// newWriter returns the writer of a worker: a batchWriter over store, and
// with a tracer (tracing on) the same with its batches and transactions
// traced.
func newWriter(store *Store, claimer Claimer, log *slog.Logger, committed func(), tracer trace.Tracer) writer {
	var st batchStore = store
	if tracer != nil {
		st = tracedStore{batchStore: st, tracer: tracer}
	}
	var w writer = &batchWriter{
		store: st, claimer: claimer, log: log, committed: committed,
		activities: make(map[int64]cachedActivity),
	}
	if tracer != nil {
		w = tracedWriter{next: w, tracer: tracer}
	}
	return w
}

// batchWriter turns a batch of order messages into stored orders: it skips
// the orders stored already (redeliveries), claims the reservations of the
// others in Redis, and writes each as created (claimed) or cancelled (its
// reservation was gone) with its outbox rows, all in one transaction.
type batchWriter struct {
	store     batchStore
	claimer   Claimer
	log       *slog.Logger
	committed func()

	// activities is owned by the batcher goroutine, the only caller of
	// write.
	activities map[int64]cachedActivity
}

type cachedActivity struct {
	a       Activity
	fetched time.Time
}

// queuedOrder is one distinct order of a batch.
type queuedOrder struct {
	msg   ordermsg.Message
	trace trace.SpanContext // the trace its outbox rows continue; invalid when untraced
}

func (b *batchWriter) write(ctx context.Context, batch []*request) map[string]outcome {
	orders := distinct(batch)
	out := make(map[string]outcome, len(orders))
	fresh := b.unstored(ctx, orders, out)
	if len(fresh) == 0 {
		return out
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	writes := b.claim(ctx, fresh, now, out)
	if len(writes.rows) == 0 {
		return out
	}
	b.commit(ctx, writes, now, out)
	return out
}

// distinct returns the distinct orders of batch in arrival order:
// concurrent redeliveries of one order may share a batch, and are written
// once and all given its answer. An order continues the trace of the first
// of its copies that has one.
func distinct(batch []*request) []queuedOrder {
	if len(batch) == 1 { // the common case of a quiet queue: nothing to compare
		return []queuedOrder{{msg: batch[0].msg, trace: batch[0].trace()}}
	}
	orders := make([]queuedOrder, 0, len(batch))
	index := make(map[string]int, len(batch))
	for _, r := range batch {
		i, seen := index[r.msg.OrderID]
		if !seen {
			index[r.msg.OrderID] = len(orders)
			orders = append(orders, queuedOrder{msg: r.msg, trace: r.trace()})
		} else if !orders[i].trace.IsValid() {
			orders[i].trace = r.trace()
		}
	}
	return orders
}

// unstored returns the orders that are not stored yet. A stored one is a
// redelivery (duplicate), or ErrOrderIDClash when it is stored for another
// activity or user.
func (b *batchWriter) unstored(ctx context.Context, orders []queuedOrder, out map[string]outcome) []queuedOrder {
	stored, err := b.store.storedOrders(ctx, orderIDsOf(orders))
	if err != nil {
		failAll(out, orders, err)
		return nil
	}
	fresh := orders[:0]
	for _, o := range orders {
		s, ok := stored[o.msg.OrderID]
		switch {
		case !ok:
			fresh = append(fresh, o)
		case s.ActivityID != o.msg.ActivityID || s.UserID != o.msg.UserID:
			fail(out, o.msg, fmt.Errorf("%w: stored for activity %d user %s", ErrOrderIDClash, s.ActivityID, s.UserID))
		default:
			out[o.msg.OrderID] = outcome{result: resultDuplicate}
		}
	}
	return fresh
}

// claim claims the reservations of orders, one Redis call per activity and
// outside any transaction (a Redis round trip must not hold the database's
// write lock), and returns what to write: each order created when its
// reservation was claimed, cancelled when it was gone. The orders of an
// unknown activity, or whose claim failed, fail.
func (b *batchWriter) claim(ctx context.Context, orders []queuedOrder, now time.Time, out map[string]outcome) newOrders {
	byActivity := make(map[int64][]queuedOrder)
	for _, o := range orders {
		byActivity[o.msg.ActivityID] = append(byActivity[o.msg.ActivityID], o)
	}
	writes := newOrders{
		rows:   make([]Order, 0, len(orders)),
		outbox: make([]outboxRow, 0, 2*len(orders)), // a created order has two
		ends:   make([]int, 0, len(orders)),
	}
	for aid, os := range byActivity {
		a, err := b.activity(ctx, aid)
		if err != nil {
			failAll(out, os, err)
			continue
		}
		claimed, err := b.claimer.Claim(ctx, aid, orderIDsOf(os))
		if err == nil && len(claimed) != len(os) {
			err = fmt.Errorf("claimer answered %d results for %d orders", len(claimed), len(os))
		}
		if err != nil {
			failAll(out, os, fmt.Errorf("claim reservation: %w", err))
			continue
		}
		for i, o := range os {
			writes.add(&a, o, claimed[i], now)
		}
	}
	return writes
}

// add adds the row of order o of activity a, created when its reservation
// was claimed and cancelled when not, with the outbox rows that commit with
// it, so that neither its events nor its pay-deadline message can be lost
// between the write and a publish.
func (n *newOrders) add(a *Activity, o queuedOrder, claimed bool, now time.Time) {
	m := o.msg
	r := Order{
		ID: m.OrderID, ActivityID: m.ActivityID, UserID: m.UserID,
		RequestID: m.RequestID, TraceID: m.TraceID,
		State: StateCreated, PriceCents: m.PriceCents,
		PayDeadline: now.Add(time.Duration(a.PayTimeoutSeconds) * time.Second),
		CreatedAt:   now, UpdatedAt: now,
	}
	start := len(n.outbox)
	if claimed {
		n.outbox = append(n.outbox, newEvent(&r, ordermsg.EventCreated, "", a.Name, now), newTimeout(&r, now))
	} else {
		r.State = StateCancelled
		n.outbox = append(n.outbox, newEvent(&r, ordermsg.EventCancelled, ordermsg.ReasonReservationLost, a.Name, now))
	}
	tracedRows(n.outbox[start:], o.trace)
	n.rows = append(n.rows, r)
	n.ends = append(n.ends, len(n.outbox))
}

// commit writes orders in one transaction for the whole batch; if that
// fails, in one transaction per order, so that one bad order cannot fail
// its neighbours.
func (b *batchWriter) commit(ctx context.Context, orders newOrders, now time.Time, out map[string]outcome) {
	err := b.store.writeOrders(ctx, orders, now)
	if err == nil {
		b.committed()
		for _, r := range orders.rows {
			out[r.ID] = outcome{result: rowResult(r)}
		}
		return
	}
	if len(orders.rows) > 1 {
		b.log.Debug("batch write failed, writing orders one by one", "orders", len(orders.rows), "err", err)
	}
	wrote := false
	for i, r := range orders.rows {
		duplicate, err := b.store.writeOrder(ctx, r, orders.outboxOf(i), now)
		switch {
		case err != nil:
			out[r.ID] = outcome{result: resultFailed, err: err}
		case duplicate:
			out[r.ID] = outcome{result: resultDuplicate}
		default:
			out[r.ID] = outcome{result: rowResult(r)}
		}
		wrote = wrote || err == nil
	}
	if wrote {
		b.committed()
	}
}

// activity returns activity aid from the cache or the database.
func (b *batchWriter) activity(ctx context.Context, aid int64) (Activity, error) {
	now := time.Now()
	if c, ok := b.activities[aid]; ok && now.Sub(c.fetched) < activityCacheTTL {
		return c.a, nil
	}
	a, err := b.store.GetActivity(ctx, aid)
	if err != nil {
		return Activity{}, err
	}
	for id, c := range b.activities {
		if now.Sub(c.fetched) >= activityCacheTTL {
			delete(b.activities, id)
		}
	}
	b.activities[aid] = cachedActivity{a: *a, fetched: now}
	return *a, nil
}

func fail(out map[string]outcome, m ordermsg.Message, err error) {
	out[m.OrderID] = outcome{result: resultFailed, err: fmt.Errorf("order %s: %w", m.OrderID, err)}
}

func failAll(out map[string]outcome, orders []queuedOrder, err error) {
	for _, o := range orders {
		fail(out, o.msg, err)
	}
}

func rowResult(r Order) string {
	if r.State == StateCancelled {
		return resultUnreserved
	}
	return resultCreated
}

func orderIDsOf(orders []queuedOrder) []string {
	out := make([]string, len(orders))
	for i, o := range orders {
		out[i] = o.msg.OrderID
	}
	return out
}
