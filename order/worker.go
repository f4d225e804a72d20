package order

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order/ordermsg"
)

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

// writeTimeout bounds one batch (claims and transaction). The batch does
// not use the callers' contexts: it serves many of them at once.
const writeTimeout = 30 * time.Second

// Worker writes order messages into the database. Concurrent Handle calls
// are grouped into batches, each written in one transaction, because the
// database's cost is per transaction (a commit, a row lock on the activity)
// far more than per row: batching is what lets a few connections keep up
// with the queue. The Worker is the batcher; what a batch does (claims,
// rows, outbox) is its writer's (write.go), and every statement the
// Store's.
type Worker struct {
	writer  writer
	log     *slog.Logger
	size    int
	linger  time.Duration
	metrics *workerMetrics
	traced  bool // Handle reads each message's trace for the batch

	reqs      chan *request // unbuffered: a send succeeds only while the batcher runs
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type request struct {
	msg ordermsg.Message
	res chan error // buffered: the batcher never blocks on a caller gone
	tr  *tracedMsg // nil when tracing is off
}

// NewWorker starts a worker's batcher. Subscribe its Handle to
// ordermsg.TopicOrders with a Concurrency of at least BatchSize so that
// batches can fill; call Close when done.
func NewWorker(store *Store, claimer Claimer, cfg WorkerConfig) *Worker {
	cfg = cfg.withDefaults()
	tracer := tracerOf(cfg.TracerProvider)
	w := &Worker{
		writer: newWriter(store, claimer, cfg.Logger, cfg.Committed, tracer),
		log:    cfg.Logger,
		size:   cfg.BatchSize,
		linger: cfg.Linger,
		traced: tracer != nil,
		reqs:   make(chan *request),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
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
	if w.traced {
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

// flush writes batch and answers its callers.
func (w *Worker) flush(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	start := time.Now()
	outcomes := w.writer.write(ctx, batch)
	w.metrics.observeBatch(len(batch), time.Since(start))

	answered := make(map[string]bool, len(outcomes))
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
