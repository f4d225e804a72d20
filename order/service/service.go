// Package service is where the order side of the pipeline starts: the order
// workers, the cancellers of unpaid orders, the outbox relay, the sweeper,
// the reconciler and the periodic restore of activities Redis lost. The
// all-in-one process calls Start with its own backends; the
// seckill-order-worker binary (Main) opens them itself. A process that only
// serves the gateway uses NewRestorer to put a missing activity back into
// Redis the same way.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/backend"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/platform/process"
)

// Consumer groups: the order workers, and the cancellers of unpaid orders
// (they run in the same processes).
const (
	OrderGroup  = "order-workers"
	CancelGroup = "order-cancellers"
)

// Defaults of Config.
const (
	DefaultWorkerConcurrency = 200
	DefaultWorkerBatch       = order.DefaultWorkerBatchSize
	DefaultSweepInterval     = 15 * time.Second
	DefaultSweepBatch        = 500
	DefaultReconcileInterval = 30 * time.Second
	DefaultReconcileAge      = 5 * time.Minute
	// DefaultRestoreInterval is a third of the default reservation
	// timeout (SECKILL_RESERVATION_TIMEOUT), as the gateway's reaper.
	DefaultRestoreInterval = 10 * time.Second
	// DefaultRestoreWindow: activities that ended longer ago than this
	// are not restored by the periodic pass.
	DefaultRestoreWindow = 30*time.Second + time.Hour
)

// Config tunes a Service. Zero fields take their Default.
type Config struct {
	// WorkerConcurrency is the order messages in flight
	// (SECKILL_WORKER_CONCURRENCY); batches fill from these.
	WorkerConcurrency int
	// WorkerBatch is the most orders written per transaction
	// (SECKILL_WORKER_BATCH).
	WorkerBatch int
	// SweepInterval is how often unpaid orders past their deadline are
	// looked for (SECKILL_SWEEP_INTERVAL); SweepBatch bounds one pass.
	SweepInterval time.Duration
	SweepBatch    int
	// ReconcileInterval and ReconcileAge tune the reconciler
	// (SECKILL_RECONCILE_INTERVAL, SECKILL_RECONCILE_AGE).
	ReconcileInterval time.Duration
	ReconcileAge      time.Duration
	// RestoreInterval is how often activities Redis lost are looked for;
	// RestoreWindow how long after its end an activity is still restored.
	RestoreInterval time.Duration
	RestoreWindow   time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.WorkerConcurrency, DefaultWorkerConcurrency)
	def(&c.WorkerBatch, DefaultWorkerBatch)
	def(&c.SweepBatch, DefaultSweepBatch)
	dur(&c.SweepInterval, DefaultSweepInterval)
	dur(&c.ReconcileInterval, DefaultReconcileInterval)
	dur(&c.ReconcileAge, DefaultReconcileAge)
	dur(&c.RestoreInterval, DefaultRestoreInterval)
	dur(&c.RestoreWindow, DefaultRestoreWindow)
	return c
}

// QueueReader reads a queue without consuming it (*natsjs.Broker): the
// order messages that wait, for the restore and the backlog.
type QueueReader interface {
	Stored(ctx context.Context, topic string, limit int) ([]natsjs.StoredMessage, error)
	Backlog(ctx context.Context, topic, group string) (natsjs.Backlog, error)
}

// lagger is a queue that knows its consumers' lag (*kafka.Broker).
type lagger interface{ Lag() int64 }

// Deps are what the hosting process provides. Start needs them all but
// QueueReader, Registerer and Logger; NewRestorer needs DB, Inventory and,
// when the queue can be read, QueueReader.
type Deps struct {
	DB        *order.Store
	Inventory *inventory.Store
	Queue     backend.Queue
	// QueueReader, when set, lets Restore count the orders accepted but
	// still waiting in the queue, Drain wait for the backlog and the
	// reconciler see its age. Nil on Kafka (its consumer lag is used).
	QueueReader QueueReader
	// Registerer receives the metrics; nil keeps them unexported.
	Registerer prometheus.Registerer
	// Logger; nil uses slog.Default().
	Logger *slog.Logger
	// TracerProvider traces the order side: the workers' batches and
	// their transactions, the relay's rounds, the cancels (see
	// order.WorkerConfig, RelayConfig and LifecycleConfig). Nil: a noop
	// provider, tracing off at no cost.
	TracerProvider trace.TracerProvider
	// MQ traces the queue: Start wraps Queue with mqotel's publisher and
	// subscriber, so each message is handled in a consumer span that
	// continues the trace of its publisher, and the relay's publishes
	// continue the traces stored with the outbox rows. Pass Queue
	// unwrapped. The zero value follows TracerProvider (W3C headers,
	// off when TracerProvider is); platform/tracing's MQ() gives the
	// process's own.
	MQ mqotel.Config
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.TracerProvider, d.MQ = mqotel.Following(d.TracerProvider, d.MQ)
	return d
}

// Service is a running order side.
type Service struct {
	*Restorer
	cfg    Config
	deps   Deps
	worker *order.Worker
	life   *order.Lifecycle
	relay  *order.Relay

	cancel    context.CancelFunc
	bg        sync.WaitGroup
	drainOnce sync.Once
	closeOnce sync.Once
}

// Start subscribes the order workers and the cancellers and runs the relay,
// the sweeper, the reconciler and the periodic restore until Stop. It
// does not restore the activities at start: call RestoreAll first when
// Redis may have lost them. A process runs it through Register.
func Start(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	s := &Service{}
	if err := s.start(ctx, cfg, deps); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) start(ctx context.Context, cfg Config, deps Deps) (err error) {
	if deps.DB == nil || deps.Inventory == nil || deps.Queue == nil {
		return errors.New("order service: DB, Inventory and Queue are required")
	}
	cfg = cfg.withDefaults()
	deps = deps.withDefaults()
	s.Restorer, s.cfg, s.deps = NewRestorer(deps), cfg, deps
	// Everything the order side publishes and consumes goes through the
	// tracing decorators (the queue itself when tracing is off). Neither
	// is closed here: the process closes its queue.
	// The subscriber unpacks the envelopes of the gateways' group commit
	// (mq/batch): each order is handled as its own message, and one that
	// fails for good is republished alone, so its neighbours go on.
	// The relay's rounds go through group commit too: a round's events
	// share an envelope, and its pay-deadline messages one per second of
	// deadlines (due at the latest of them: a cancel is at most a second
	// late, never early), so under SECKILL_QUEUE_SYNC=always an order does
	// not cost an fsync of its own per message it causes.
	pub := mqotel.NewPublisher(batch.NewPublisher(deps.Queue, batch.Config{DelayBucket: time.Second}), deps.MQ)
	sub := mqotel.NewSubscriber(batch.NewSubscriber(deps.Queue, deps.Queue, batch.SubscriberConfig{Logger: deps.Logger}), deps.MQ)
	// The outbox relay runs where the order workers run (the gateway's
	// payments reach it through the table); in-process writers kick it.
	s.relay = order.NewRelay(deps.DB, pub, order.RelayConfig{
		Logger: deps.Logger, Registerer: deps.Registerer, TracerProvider: deps.TracerProvider,
	})
	s.life = order.NewLifecycle(deps.DB, deps.Inventory, order.LifecycleConfig{
		Publisher: pub, Changed: s.relay.Kick, Logger: deps.Logger, Registerer: deps.Registerer,
		TracerProvider: deps.TracerProvider,
	})
	s.worker = order.NewWorker(deps.DB, deps.Inventory, order.WorkerConfig{
		BatchSize: cfg.WorkerBatch, Logger: deps.Logger, Registerer: deps.Registerer, Committed: s.relay.Kick,
		TracerProvider: deps.TracerProvider,
	})
	defer func() {
		if err != nil {
			_ = s.worker.Close()
		}
	}()
	err = sub.Subscribe(ctx, ordermsg.TopicOrders, mq.SubscribeOptions{
		Group: OrderGroup, Concurrency: cfg.WorkerConcurrency, MaxAttempts: 5,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
	}, s.worker.Handle)
	if err != nil {
		return fmt.Errorf("subscribe order workers: %w", err)
	}
	// Cancels are few and each is its own small transaction; a modest
	// concurrency keeps a burst of deadlines from crowding the orders.
	// A cancel fails only while the database or Redis is away, and one
	// that committed but could not return its unit to Redis is finished
	// only by a redelivery (the sweeper looks at created orders):
	// HandleTimeout marks those failures mq.Transient, so they are retried
	// every MaxBackoff for as long as the outage lasts, and MaxAttempts
	// bounds only a permanent failure.
	err = sub.Subscribe(ctx, ordermsg.TopicOrderTimeouts, mq.SubscribeOptions{
		Group: CancelGroup, Concurrency: 16, MaxAttempts: 10,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
	}, s.life.HandleTimeout)
	if err != nil {
		return fmt.Errorf("subscribe order cancellers: %w", err)
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	rec := order.NewReconciler(deps.DB, deps.Inventory, pub, order.ReconcilerConfig{
		Interval: cfg.ReconcileInterval, Age: cfg.ReconcileAge,
		Restorer: s.Restorer, Backlog: s.orderBacklog,
		Logger: deps.Logger, Registerer: deps.Registerer,
	})
	s.bg.Go(func() { s.relay.Run(bg) })
	s.bg.Go(func() { s.life.RunSweeper(bg, cfg.SweepInterval, cfg.SweepBatch) })
	s.bg.Go(func() { rec.Run(bg) }) // Redis against the database: re-drives, lost releases, lost meta
	s.bg.Go(func() { s.restoreLoop(bg) })
	return nil
}

// Lifecycle pays, cancels and expires orders; its writes kick the relay.
func (s *Service) Lifecycle() *order.Lifecycle { return s.life }

// restoreLoop restores, every RestoreInterval, the recent activities that
// Redis lost.
func (s *Service) restoreLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RestoreInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		acts, err := s.deps.DB.ListActivities(ctx)
		if err != nil {
			s.log.Warn("housekeeping: list activities", "err", err)
			continue
		}
		cutoff := time.Now().Add(-s.cfg.RestoreWindow)
		for i := range acts {
			if acts[i].EndsAt.Before(cutoff) {
				continue
			}
			if err := s.Restore(ctx, &acts[i]); err != nil {
				s.log.Warn("housekeeping: restore activity", "activity_id", acts[i].ID, "err", err)
			}
		}
	}
}

// orderBacklog tells the reconciler which order messages may still wait:
// on NATS the publish time of the oldest one the order workers have not
// settled; on Kafka only whether this process's consumers lag (the age is
// unknown, so nothing is re-driven while they do).
func (s *Service) orderBacklog(ctx context.Context) (time.Time, bool, error) {
	if s.deps.QueueReader != nil {
		bl, err := s.deps.QueueReader.Backlog(ctx, ordermsg.TopicOrders, OrderGroup)
		if err != nil {
			return time.Time{}, false, err
		}
		return bl.Oldest, bl.Messages > 0, nil
	}
	l, ok := s.deps.Queue.(lagger)
	if !ok {
		return time.Time{}, false, nil
	}
	switch n := l.Lag(); {
	case n < 0:
		return time.Time{}, false, errors.New("queue depth unknown")
	case n > 0:
		return time.Time{}, true, nil
	}
	return time.Time{}, false, nil
}

// ComponentOrders names the order side in a process's lifecycle.
const ComponentOrders = "orders"

// Register adds the order side to lc, on the backends of b (Redis, the
// database and the queue, which it needs). The returned Service is usable
// once lc started it. Starting runs Start, then restores the activities
// Redis lost (RestoreAll: the workers' claims wait for them); stopping
// runs Stop.
func Register(lc *process.Lifecycle, b *Backends, cfg Config) *Service {
	s := &Service{}
	lc.Add(process.Component{
		Name: ComponentOrders, Needs: []string{ComponentRedis, ComponentDatabase, ComponentQueue},
		Start: func(ctx context.Context) error {
			err := s.start(ctx, cfg, Deps{
				DB: b.DB, Inventory: b.Inventory, Queue: b.Queue, QueueReader: b.Queue.Reader(),
				Registerer: b.Registry, Logger: b.Log,
				// Start wraps the queue itself (mqotel): the order
				// workers' consumer spans continue the buys' traces.
				TracerProvider: b.Tracing.TracerProvider(), MQ: b.Tracing.MQ(),
			})
			if err != nil {
				return err
			}
			return s.RestoreAll(ctx)
		},
		Stop: func(ctx context.Context) error { return s.Stop(ctx, b.Queue) },
	})
	return s
}

// drainReserve is what a drain leaves of the shutdown's deadline for the
// stages after it (closing the queue, the database, flushing spans).
func drainReserve(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return min(5*time.Second, time.Until(d)/4)
}

// Stop stops the order side within ctx's deadline: it waits until the
// order workers have settled every order message, when the queue can be
// read (an operator stopping a process expects its orders written; the
// queue is durable, so nothing is lost if the deadline comes first), then
// stops the relay, the sweeper, the reconciler and the restore, closes
// the queue (q: its subscriptions end with it, after the handlers in
// flight) and then the worker's batcher. A nil Service stops as nothing.
func (s *Service) Stop(ctx context.Context, q io.Closer) error {
	if s == nil || s.worker == nil {
		return nil
	}
	var errs []error
	s.drainOnce.Do(func() {
		if s.deps.QueueReader != nil {
			dctx, cancel := context.WithTimeout(ctx, max(time.Until(deadlineOf(ctx))-drainReserve(ctx), 0))
			err := s.waitDrained(dctx)
			cancel()
			if err != nil {
				s.log.Warn("queue not drained before shutdown; the rest is written at the next start", "err", err)
			}
		}
		s.cancel()
		s.bg.Wait()
	})
	if q != nil {
		if err := q.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.closeOnce.Do(func() {
		if err := s.worker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("order worker: %w", err))
		}
	})
	return errors.Join(errs...)
}

// deadlineOf is ctx's deadline, or far away when it has none.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(24 * time.Hour)
}

// waitDrained waits until the order workers have settled every order
// message, or ctx is done.
func (s *Service) waitDrained(ctx context.Context) error {
	for {
		bl, err := s.deps.QueueReader.Backlog(ctx, ordermsg.TopicOrders, OrderGroup)
		if err == nil && bl.Messages == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d order messages left at the shutdown deadline (last error: %v)", bl.Messages, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
