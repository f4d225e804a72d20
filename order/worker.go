package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/metrics"
)

// Errors a Handle call may wrap. Handle sorts its errors for the queue (see
// PermanentWriteError): the permanent ones below, a malformed message
// (ordermsg.ErrMalformed) and an unknown activity (ErrNotFound) are retried
// MaxAttempts times and then dead-lettered, so they tell an operator why;
// every other failure is marked mq.Transient and waited out.
var (
	// ErrWorkerClosed: Handle was called after Close. Transient: another
	// worker (or this process after its restart) takes the message.
	ErrWorkerClosed = errors.New("order: worker closed")
	// ErrOutOfStock: the database has fewer units available than the
	// batch needs. Redis admitted more than the database holds, which
	// only a bug or a manual edit can cause; nothing was written.
	ErrOutOfStock = errors.New("order: database stock exhausted")
	// ErrUserHasOrder: another live (created or paid) order of the same
	// user and activity is already stored (one unit per user per activity).
	ErrUserHasOrder = errors.New("order: user already has an order for this activity")
	// ErrOrderIDClash: the order id is already stored for another
	// activity or user; two gateways minted the same id, or a message was
	// forged. Nothing was written.
	ErrOrderIDClash = errors.New("order: order id already stored for another activity or user")
)

// PermanentWriteError reports whether a Handle error can never succeed on a
// redelivery: the message itself is wrong (ordermsg.ErrMalformed, an unknown
// activity, ErrOrderIDClash) or the stored data refuses it for good
// (ErrUserHasOrder, ErrOutOfStock).
//
// Everything else is transient, known or not: a database that refuses or
// drops connections, a timeout (the batch's own deadline included), a
// deadlock victim (1213) or a lock wait timeout (1205), Redis failing the
// claim, a worker that is closing. The list is of the permanent errors, not
// of the transient ones, on purpose: an error nobody foresaw is retried
// forever rather than dead-lettered, because an accepted order that is
// dropped is a broken promise to a buyer (invariant 5), while a message
// retried in vain costs a log line every MaxBackoff until someone looks.
func PermanentWriteError(err error) bool {
	for _, target := range []error{ordermsg.ErrMalformed, ErrNotFound, ErrOrderIDClash, ErrUserHasOrder, ErrOutOfStock} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// classify marks err for the queue: permanent errors are returned as they
// are, so they count toward MaxAttempts; all others are mq.Transient.
func classify(err error) error {
	if err == nil || PermanentWriteError(err) {
		return err
	}
	return mq.Transient(err)
}

// Claimer takes over a Redis reservation for the order worker. Claim
// reports, per order id, whether its reservation was still held (and is now
// claimed); false means it was released meanwhile and the unit went back on
// sale, so the order must not take a unit from the database. Claiming twice
// is harmless. inventory.Store satisfies it.
type Claimer interface {
	Claim(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error)
}

// Defaults of WorkerConfig.
const (
	DefaultWorkerBatchSize = 100
	DefaultWorkerLinger    = 2 * time.Millisecond
)

// WorkerConfig tunes a Worker. Zero values select the defaults.
type WorkerConfig struct {
	// BatchSize caps the messages written in one transaction. Default
	// DefaultWorkerBatchSize.
	BatchSize int
	// Linger is how long the batcher waits, after the first message of a
	// batch, for more to arrive. Default DefaultWorkerLinger.
	Linger time.Duration
	// Logger receives failed writes. Nil uses slog.Default().
	Logger *slog.Logger
	// Registerer receives the worker's metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// Committed is called after each batch that wrote rows (and so outbox
	// messages): pass the in-process Relay's Kick. Nil: nothing.
	Committed func()
	// TracerProvider traces each batch: a span "orders write batch"
	// linked to every message's producer span (and the child of the
	// message's consumer span when the batch is that one message), the
	// transaction's span "order batch tx" under it, and each order's
	// trace stored with its outbox rows, so that its events and its
	// pay-deadline message continue the order's trace. Handle must then
	// run under mqotel's subscriber, which puts the consumer span in its
	// context. Default (nil) a noop provider: tracing off, and the batch
	// path allocates nothing for it.
	TracerProvider trace.TracerProvider
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultWorkerBatchSize
	}
	if c.Linger <= 0 {
		c.Linger = DefaultWorkerLinger
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Committed == nil {
		c.Committed = func() {}
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	return c
}

const (
	// writeTimeout bounds one batch (claims and transaction). The batch
	// does not use the callers' contexts: it serves many of them at once.
	writeTimeout = 30 * time.Second
	// activityCacheTTL: activity rows change only in stock, which the
	// worker never reads from the cache, so a short TTL only bounds how
	// long a deleted or re-timed activity is remembered.
	activityCacheTTL = 30 * time.Second
)

// Outcomes of one message, the result label of seckill_orders_written_total.
const (
	resultCreated    = "created"
	resultDuplicate  = "duplicate"
	resultUnreserved = "cancelled_unreserved"
	resultFailed     = "failed"
)

// Worker writes order messages into the database. Concurrent Handle calls
// are grouped into batches, each written in one transaction, because the
// database's cost is per transaction (a commit, a row lock on the activity)
// far more than per row: batching is what lets a few connections keep up
// with the queue.
type Worker struct {
	store     *Store
	claimer   Claimer
	log       *slog.Logger
	size      int
	linger    time.Duration
	metrics   *workerMetrics
	committed func()
	tracer    trace.Tracer // nil: tracing off

	reqs      chan *request // unbuffered: a send succeeds only while the batcher runs
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// activities is owned by the batcher goroutine.
	activities map[int64]cachedActivity
}

type request struct {
	msg ordermsg.Message
	res chan error // buffered: the batcher never blocks on a caller gone
	tr  *tracedMsg // nil when tracing is off
}

// tracedMsg is what the batch needs of a message's trace.
type tracedMsg struct {
	consumer trace.SpanContext // the consumer span Handle ran in: the order's trace
	producer trace.Link        // the message's producer span, for the batch's links
}

type cachedActivity struct {
	a       Activity
	fetched time.Time
}

// NewWorker starts a worker's batcher. Subscribe its Handle to
// ordermsg.TopicOrders with a Concurrency of at least BatchSize so that
// batches can fill; call Close when done.
func NewWorker(store *Store, claimer Claimer, cfg WorkerConfig) *Worker {
	cfg = cfg.withDefaults()
	w := &Worker{
		store:      store,
		claimer:    claimer,
		log:        cfg.Logger,
		size:       cfg.BatchSize,
		linger:     cfg.Linger,
		committed:  cfg.Committed,
		tracer:     tracerOf(cfg.TracerProvider),
		reqs:       make(chan *request),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		activities: make(map[int64]cachedActivity),
	}
	if cfg.Registerer != nil {
		w.metrics = newWorkerMetrics(cfg.Registerer, w.log)
	}
	go w.run()
	return w
}

// Handle writes one order message (an mq.Handler). It returns nil once the
// order is stored (or was stored before: redeliveries are expected), and an
// error otherwise, so that the queue redelivers it: a permanent error (see
// PermanentWriteError) until MaxAttempts and then to the dead-letter topic,
// any other wrapped with mq.Transient, so that an outage of the database or
// Redis is waited out however long it lasts.
func (w *Worker) Handle(ctx context.Context, m *mq.Message) error {
	return classify(w.handle(ctx, m))
}

func (w *Worker) handle(ctx context.Context, m *mq.Message) error {
	msg, err := ordermsg.DecodeMessage(m.Payload)
	if err != nil {
		w.metrics.written(resultFailed, 1)
		return fmt.Errorf("mq message %s: %w", m.ID, err)
	}
	select {
	case <-w.quit:
		return fmt.Errorf("order %s: %w", msg.OrderID, ErrWorkerClosed)
	default:
	}
	r := &request{msg: msg, res: make(chan error, 1)}
	if w.tracer != nil {
		// Read here, in parallel, rather than in the batcher.
		r.tr = &tracedMsg{consumer: trace.SpanContextFromContext(ctx), producer: mqotel.Link(m)}
	}
	select {
	case w.reqs <- r:
	case <-w.quit:
		return fmt.Errorf("order %s: %w", msg.OrderID, ErrWorkerClosed)
	case <-ctx.Done():
		return fmt.Errorf("order %s: %w", msg.OrderID, ctx.Err())
	}
	select {
	case err := <-r.res:
		return err
	case <-ctx.Done():
		// The batch may still commit; the redelivery will find the row.
		return fmt.Errorf("order %s: %w", msg.OrderID, ctx.Err())
	}
}

// Close writes the batch being collected, stops the batcher and returns
// once it has stopped. Handle calls after Close return ErrWorkerClosed.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() { close(w.quit) })
	<-w.done
	return nil
}

// run is the batcher: it collects requests into batches and writes them one
// batch at a time. While a batch is being written, new Handle calls wait on
// the unbuffered channel, so the next batch fills by itself under load.
func (w *Worker) run() {
	defer close(w.done)
	for {
		var first *request
		select {
		case first = <-w.reqs:
		case <-w.quit:
			w.drain()
			return
		}
		batch, closing := w.fill([]*request{first})
		w.flush(batch)
		if closing {
			w.drain()
			return
		}
	}
}

// fill adds requests to batch until it is full or Linger has passed. It
// reports whether Close was called meanwhile.
func (w *Worker) fill(batch []*request) ([]*request, bool) {
	if len(batch) >= w.size {
		return batch, false
	}
	timer := time.NewTimer(w.linger)
	defer timer.Stop()
	for len(batch) < w.size {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		case <-timer.C:
			return batch, false
		case <-w.quit:
			return batch, true
		}
	}
	return batch, false
}

// drain writes the requests of Handle calls that raced with Close.
func (w *Worker) drain() {
	for {
		var batch []*request
	collect:
		for len(batch) < w.size {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		if len(batch) == 0 {
			return
		}
		w.flush(batch)
	}
}

// outcome is what happened to one distinct order of a batch.
type outcome struct {
	result string
	err    error
}

func (w *Worker) flush(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	var span trace.Span
	var traces map[string]trace.SpanContext // by order id; nil when tracing is off
	if w.tracer != nil {
		ctx, span, traces = w.startBatch(ctx, batch)
	}

	// Concurrent redeliveries of one order may share a batch: write it
	// once and give every copy the same answer.
	var msgs []ordermsg.Message
	seen := make(map[string]bool, len(batch))
	for _, r := range batch {
		if !seen[r.msg.OrderID] {
			seen[r.msg.OrderID] = true
			msgs = append(msgs, r.msg)
		}
	}

	start := time.Now()
	outcomes := w.write(ctx, msgs, traces)
	w.metrics.observeBatch(len(batch), time.Since(start))
	if span != nil {
		// Ended before the callers are answered: their consumer spans
		// end after it, as a parent should.
		endBatch(span, batch, outcomes)
	}

	answered := make(map[string]bool, len(msgs))
	var retried int
	var firstRetried error
	for _, r := range batch {
		o := outcomes[r.msg.OrderID]
		result := o.result
		if answered[r.msg.OrderID] && o.err == nil {
			result = resultDuplicate
		}
		answered[r.msg.OrderID] = true
		w.metrics.written(result, 1)
		switch {
		case o.err == nil:
		case PermanentWriteError(o.err):
			w.log.Warn("order not written", "order_id", r.msg.OrderID, "activity_id", r.msg.ActivityID, "trace_id", r.msg.TraceID, "err", o.err)
		default:
			// An outage fails every order of every batch: one line per
			// batch, not one per order and redelivery.
			retried++
			if firstRetried == nil {
				firstRetried = o.err
			}
		}
		r.res <- o.err
	}
	if retried > 0 {
		w.log.Warn("orders not written, the queue redelivers them", "orders", retried, "batch", len(batch), "err", firstRetried)
	}
}

// startBatch starts the span of a batch. Following the messaging
// conventions for batch processing it links to the producer span of every
// message, since one span cannot be the child of many; a batch of one
// message is moreover that message's processing, and its child. It returns
// the batch's context and each order's trace, which the order's outbox rows
// carry on.
func (w *Worker) startBatch(ctx context.Context, batch []*request) (context.Context, trace.Span, map[string]trace.SpanContext) {
	links := make([]trace.Link, 0, len(batch))
	traces := make(map[string]trace.SpanContext, len(batch))
	for _, r := range batch {
		if r.tr == nil {
			continue
		}
		if r.tr.producer.SpanContext.IsValid() {
			links = append(links, r.tr.producer)
		}
		if _, ok := traces[r.msg.OrderID]; !ok && r.tr.consumer.IsValid() {
			traces[r.msg.OrderID] = r.tr.consumer
		}
	}
	parent := ctx
	if len(batch) == 1 && batch[0].tr != nil && batch[0].tr.consumer.IsValid() {
		parent = trace.ContextWithSpanContext(ctx, batch[0].tr.consumer)
	}
	ctx, span := w.tracer.Start(parent, "orders write batch",
		trace.WithLinks(links...),
		trace.WithAttributes(semconv.MessagingBatchMessageCount(len(batch))))
	return ctx, span, traces
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

// startTx starts the span of a transaction writing rows, a child of the
// batch's, or returns ctx and a span that records nothing when tracing is
// off.
func (w *Worker) startTx(ctx context.Context, name string, rows []Order) (context.Context, trace.Span) {
	if w.tracer == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
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
	activity := ActivityIDKey.Int64(activities[0]) // rows is never empty
	if len(activities) > 1 {
		slices.Sort(activities)
		activity = ActivityIDsKey.Int64Slice(activities)
	}
	return w.tracer.Start(ctx, name, trace.WithAttributes(
		BatchSizeKey.Int(len(rows)), activity, CreatedKey.Int(created), CancelledKey.Int(cancelled)))
}

// write stores msgs (distinct order ids) and returns each one's outcome.
// traces holds the trace of each order (nil with tracing off), which its
// outbox rows keep.
func (w *Worker) write(ctx context.Context, msgs []ordermsg.Message, traces map[string]trace.SpanContext) map[string]outcome {
	out := make(map[string]outcome, len(msgs))
	fail := func(m ordermsg.Message, err error) {
		out[m.OrderID] = outcome{result: resultFailed, err: fmt.Errorf("order %s: %w", m.OrderID, err)}
	}

	// a) Orders already stored are redeliveries.
	existing, err := w.existing(ctx, ids(msgs))
	if err != nil {
		for _, m := range msgs {
			fail(m, err)
		}
		return out
	}
	var fresh []ordermsg.Message
	for _, m := range msgs {
		if e, ok := existing[m.OrderID]; ok {
			if e.ActivityID != m.ActivityID || e.UserID != m.UserID {
				fail(m, fmt.Errorf("%w: stored for activity %d user %s", ErrOrderIDClash, e.ActivityID, e.UserID))
				continue
			}
			out[m.OrderID] = outcome{result: resultDuplicate}
			continue
		}
		fresh = append(fresh, m)
	}
	if len(fresh) == 0 {
		return out
	}

	// b) Claim the reservations, outside the transaction: a Redis round
	// trip must not hold the database's write lock.
	now := time.Now().UTC().Truncate(time.Microsecond)
	var rows []Order
	outbox := make(map[string][]outboxRow, len(fresh)) // by order id
	byActivity := make(map[int64][]ordermsg.Message)
	for _, m := range fresh {
		byActivity[m.ActivityID] = append(byActivity[m.ActivityID], m)
	}
	for aid, ms := range byActivity {
		a, err := w.activity(ctx, aid)
		if err != nil {
			for _, m := range ms {
				fail(m, err)
			}
			continue
		}
		claimed, err := w.claimer.Claim(ctx, aid, ids(ms))
		if err == nil && len(claimed) != len(ms) {
			err = fmt.Errorf("claimer answered %d results for %d orders", len(claimed), len(ms))
		}
		if err != nil {
			for _, m := range ms {
				fail(m, fmt.Errorf("claim reservation: %w", err))
			}
			continue
		}
		deadline := now.Add(time.Duration(a.PayTimeoutSeconds) * time.Second)
		for i, m := range ms {
			state := StateCreated
			if !claimed[i] {
				state = StateCancelled
			}
			o := Order{
				ID: m.OrderID, ActivityID: m.ActivityID, UserID: m.UserID,
				RequestID: m.RequestID, TraceID: m.TraceID,
				State: state, PriceCents: m.PriceCents, PayDeadline: deadline,
				CreatedAt: now, UpdatedAt: now,
			}
			rows = append(rows, o)
			// The order's events and its pay-deadline message commit with
			// it, so neither can be lost between the write and a publish.
			if state == StateCreated {
				outbox[o.ID] = []outboxRow{newEvent(&o, ordermsg.EventCreated, "", a.Name, now), newTimeout(&o, now)}
			} else {
				outbox[o.ID] = []outboxRow{newEvent(&o, ordermsg.EventCancelled, ordermsg.ReasonReservationLost, a.Name, now)}
			}
			tracedRows(outbox[o.ID], traces[o.ID])
		}
	}
	if len(rows) == 0 {
		return out
	}

	// c, d) One transaction for the whole batch; if it fails, one per
	// order, so that one bad order cannot fail its neighbours.
	txCtx, span := w.startTx(ctx, "order batch tx", rows)
	err = w.store.db.WithContext(txCtx).Transaction(func(tx *gorm.DB) error {
		var msgs []outboxRow
		for _, r := range rows {
			msgs = append(msgs, outbox[r.ID]...)
		}
		return insertOrders(tx, rows, msgs, now)
	})
	endSpan(span, err)
	if err == nil {
		w.committed()
		for _, r := range rows {
			out[r.ID] = outcome{result: rowResult(r)}
		}
		return out
	}
	if len(rows) > 1 {
		w.log.Debug("batch write failed, writing orders one by one", "orders", len(rows), "err", err)
	}
	wrote := false
	for i, r := range rows {
		oneCtx, span := w.startTx(ctx, "order tx", rows[i:i+1])
		out[r.ID] = w.writeOne(oneCtx, r, outbox[r.ID], now)
		endSpan(span, out[r.ID].err)
		wrote = wrote || out[r.ID].err == nil
	}
	if wrote {
		w.committed()
	}
	return out
}

// writeOne stores one order in its own transaction and explains a unique
// key clash: the same order id is a redelivery that raced with another
// worker; another order of the same user is an error naming both.
func (w *Worker) writeOne(ctx context.Context, r Order, msgs []outboxRow, now time.Time) outcome {
	db := w.store.db.WithContext(ctx)
	err := db.Transaction(func(tx *gorm.DB) error { return insertOrders(tx, []Order{r}, msgs, now) })
	if err == nil {
		return outcome{result: rowResult(r)}
	}
	if !errors.Is(err, gorm.ErrDuplicatedKey) {
		return outcome{result: resultFailed, err: fmt.Errorf("order %s: %w", r.ID, err)}
	}
	var same Order
	switch lerr := db.Select("id", "activity_id", "user_id").Where("id = ?", r.ID).Take(&same).Error; {
	case lerr == nil && same.ActivityID == r.ActivityID && same.UserID == r.UserID:
		return outcome{result: resultDuplicate}
	case lerr == nil:
		return outcome{result: resultFailed, err: fmt.Errorf("order %s: %w: stored for activity %d user %s", r.ID, ErrOrderIDClash, same.ActivityID, same.UserID)}
	case !errors.Is(lerr, gorm.ErrRecordNotFound):
		return outcome{result: resultFailed, err: fmt.Errorf("order %s: %w (looking up the clash: %w)", r.ID, err, lerr)}
	}
	var other Order
	live := []string{StateCreated, StatePaid}
	if lerr := db.Select("id").Where("activity_id = ? AND user_id = ? AND state IN ?", r.ActivityID, r.UserID, live).Take(&other).Error; lerr == nil {
		return outcome{result: resultFailed, err: fmt.Errorf("order %s: %w: user %s of activity %d already has order %s",
			r.ID, ErrUserHasOrder, r.UserID, r.ActivityID, other.ID)}
	}
	return outcome{result: resultFailed, err: fmt.Errorf("order %s: %w", r.ID, err)}
}

// insertOrders takes the units of the created orders from their activities
// and inserts every row and its outbox messages. The stock update comes first so that the
// activity's row lock is taken before the foreign-key checks of the insert
// take shared locks on it (two workers would otherwise deadlock on MySQL
// upgrading them), and activities are locked in id order for the same
// reason.
func insertOrders(tx *gorm.DB, rows []Order, msgs []outboxRow, now time.Time) error {
	need := make(map[int64]int64)
	for _, r := range rows {
		if r.State == StateCreated {
			need[r.ActivityID]++
		}
	}
	aids := make([]int64, 0, len(need))
	for aid := range need {
		aids = append(aids, aid)
	}
	slices.Sort(aids)
	for _, aid := range aids {
		n := need[aid]
		res := tx.Model(&Activity{}).
			Where("id = ? AND available >= ?", aid, n).
			Updates(map[string]any{
				"available":  gorm.Expr("available - ?", n),
				"version":    gorm.Expr("version + 1"),
				"updated_at": now,
			})
		if res.Error != nil {
			return fmt.Errorf("take %d units of activity %d: %w", n, aid, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("take %d units of activity %d: %w", n, aid, ErrOutOfStock)
		}
	}
	if err := tx.CreateInBatches(rows, sqldb.InsertBatchSize).Error; err != nil {
		return fmt.Errorf("insert %d orders: %w", len(rows), err)
	}
	return insertOutbox(tx, msgs)
}

// existing returns the stored orders among ids.
func (w *Worker) existing(ctx context.Context, orderIDs []string) (map[string]Order, error) {
	var found []Order
	err := w.store.db.WithContext(ctx).
		Select("id", "activity_id", "user_id").
		Where("id IN ?", orderIDs).
		Find(&found).Error
	if err != nil {
		return nil, fmt.Errorf("look up stored orders: %w", err)
	}
	m := make(map[string]Order, len(found))
	for _, o := range found {
		m[o.ID] = o
	}
	return m, nil
}

// activity returns activity aid from the cache or the database.
func (w *Worker) activity(ctx context.Context, aid int64) (Activity, error) {
	now := time.Now()
	if c, ok := w.activities[aid]; ok && now.Sub(c.fetched) < activityCacheTTL {
		return c.a, nil
	}
	a, err := w.store.GetActivity(ctx, aid)
	if err != nil {
		return Activity{}, err
	}
	for id, c := range w.activities {
		if now.Sub(c.fetched) >= activityCacheTTL {
			delete(w.activities, id)
		}
	}
	w.activities[aid] = cachedActivity{a: *a, fetched: now}
	return *a, nil
}

func rowResult(r Order) string {
	if r.State == StateCancelled {
		return resultUnreserved
	}
	return resultCreated
}

func ids(msgs []ordermsg.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.OrderID
	}
	return out
}

// workerMetrics is nil when the worker has no Registerer; its methods then
// do nothing.
type workerMetrics struct {
	batchSize    prometheus.Histogram
	writeSeconds prometheus.Histogram
	writtenTotal *prometheus.CounterVec
}

func newWorkerMetrics(reg prometheus.Registerer, log *slog.Logger) *workerMetrics {
	m := &workerMetrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_order_batch_size",
			Help:    "Order messages written per database transaction.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_order_db_write_seconds",
			Help:    "Time to write one batch of orders (lookup, claims, transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		writtenTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_orders_written_total",
			Help: "Order messages handled by the worker, by result.",
		}, []string{"result"}),
	}
	// Shared: the workers of one process count into one series.
	var errs [3]error
	m.batchSize, errs[0] = metrics.Shared(reg, m.batchSize)
	m.writeSeconds, errs[1] = metrics.Shared(reg, m.writeSeconds)
	m.writtenTotal, errs[2] = metrics.Shared(reg, m.writtenTotal)
	if err := errors.Join(errs[:]...); err != nil {
		log.Warn("order worker metric not registered", "err", err)
	}
	for _, r := range []string{resultCreated, resultDuplicate, resultUnreserved, resultFailed} {
		m.writtenTotal.WithLabelValues(r)
	}
	return m
}

func (m *workerMetrics) observeBatch(n int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(n))
	m.writeSeconds.Observe(d.Seconds())
}

func (m *workerMetrics) written(result string, n int) {
	if m == nil {
		return
	}
	m.writtenTotal.WithLabelValues(result).Add(float64(n))
}
