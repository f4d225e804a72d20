package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/platform/metrics"
)

// Defaults of RelayConfig.
const (
	DefaultRelayBatchSize = 200
	DefaultRelayInterval  = 200 * time.Millisecond
	DefaultRelayRetention = 24 * time.Hour
)

// RelayConfig tunes a Relay. Zero values select the defaults.
type RelayConfig struct {
	// BatchSize caps the messages published per round. Default
	// DefaultRelayBatchSize.
	BatchSize int
	// Interval is how often the outbox is polled when nobody kicks the
	// relay (another process wrote the rows). Default DefaultRelayInterval.
	Interval time.Duration
	// Retention is how long published rows are kept (for audits) before
	// they are deleted. Default DefaultRelayRetention.
	Retention time.Duration
	// Logger receives publish failures. Nil uses slog.Default().
	Logger *slog.Logger
	// Registerer receives the relay's metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// TracerProvider traces each round that publishes rows with a span
	// "outbox relay". Each row's own trace goes on whatever the provider:
	// its stored traceparent is put in the message's headers, where
	// mqotel's publisher continues it. Default (nil) a noop provider.
	TracerProvider trace.TracerProvider
}

func (c RelayConfig) withDefaults() RelayConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultRelayBatchSize
	}
	if c.Interval <= 0 {
		c.Interval = DefaultRelayInterval
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRelayRetention
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	return c
}

// Relay publishes the outbox to the queue, at least once: it publishes a
// round of rows and only then marks them published, so a relay killed in
// between publishes them again after the restart (consumers dedupe by event
// id). Several relays may run (one per worker process): on MySQL each round
// locks its rows with SKIP LOCKED, so they share the work instead of
// publishing the same rows.
type Relay struct {
	store     *Store
	pub       mq.Publisher
	log       *slog.Logger
	batch     int
	interval  time.Duration
	retention time.Duration
	kick      chan struct{}
	metrics   *relayMetrics
	tracer    trace.Tracer // nil: tracing off
}

// NewRelay returns a relay of store's outbox onto pub; call Run.
func NewRelay(store *Store, pub mq.Publisher, cfg RelayConfig) *Relay {
	cfg = cfg.withDefaults()
	r := &Relay{
		store: store, pub: pub, log: cfg.Logger,
		batch: cfg.BatchSize, interval: cfg.Interval, retention: cfg.Retention,
		kick: make(chan struct{}, 1), tracer: tracerOf(cfg.TracerProvider),
	}
	if cfg.Registerer != nil {
		r.metrics = newRelayMetrics(cfg.Registerer, r.log)
	}
	return r
}

// Kick asks the relay to look at the outbox now rather than at the next
// poll: writers in the same process call it after they commit.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done. A failing round is logged and retried at
// the next poll; nothing is lost, because rows stay until published.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	var lastGauge, lastPurge time.Time
	for {
		for {
			n, err := r.RelayOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("outbox relay", "err", err)
				}
				break
			}
			if n < r.batch {
				break
			}
		}
		now := time.Now()
		if r.metrics != nil && now.Sub(lastGauge) >= time.Second {
			lastGauge = now
			if pending, oldest, err := r.store.OutboxBacklog(ctx); err == nil {
				r.metrics.backlog(pending, oldest, now)
			}
		}
		if now.Sub(lastPurge) >= time.Minute {
			lastPurge = now
			if err := r.store.purgeOutbox(ctx, now.Add(-r.retention)); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox purge", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// RelayOnce publishes up to one batch of unpublished rows, oldest first, and
// marks them published. It returns how many it relayed.
//
// A row written in a traced span carries that trace into the message's
// headers, so the message's producer span continues the trace of the order
// (or payment, or cancel) that wrote it, not the relay's: the order's trace
// goes on across the outbox. The round's own span, when traced, is linked
// from each producer span.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	relayed, err := r.store.relayOutbox(ctx, r.batch, func(rows []outboxRow, mark markFunc) (relayed int, err error) {
		pctx := ctx
		if r.tracer != nil {
			// Started once there is something to relay: an idle poll
			// five times a second is not worth a trace.
			var span trace.Span
			pctx, span = r.tracer.Start(ctx, "outbox relay")
			defer func() {
				span.SetAttributes(RelayedKey.Int(relayed))
				endSpan(span, err)
			}()
		}
		ids, err := r.publish(pctx, rows)
		if err != nil {
			return 0, err
		}
		if err := mark(pctx, ids); err != nil {
			return 0, err
		}
		return len(ids), nil
	})
	if err == nil {
		r.metrics.relayed(relayed)
	}
	return relayed, err
}

// publish publishes rows with one Publish per topic, in id order within
// it: a topic's messages keep their order, and a round costs one call per
// topic (the rows of two topics interleave). It returns the ids of the rows
// that went out; a failure after the first topic went out is logged and
// leaves the rest to the next round.
func (r *Relay) publish(ctx context.Context, rows []outboxRow) ([]int64, error) {
	var topics []string
	byTopic := map[string][]outboxRow{}
	for _, row := range rows {
		if _, ok := byTopic[row.Topic]; !ok {
			topics = append(topics, row.Topic)
		}
		byTopic[row.Topic] = append(byTopic[row.Topic], row)
	}
	var ids []int64
	for _, topic := range topics {
		msgs := make([]*mq.Message, 0, len(byTopic[topic]))
		for _, row := range byTopic[topic] {
			m := &mq.Message{ID: row.EventID, Key: row.MsgKey, Payload: row.Payload}
			if row.DeliverAt != nil {
				m.DeliverAt = *row.DeliverAt
			}
			if row.Traceparent != nil {
				mqotel.Inject(contextOf(context.Background(), row.Traceparent), m)
			}
			msgs = append(msgs, m)
		}
		if err := r.pub.Publish(ctx, topic, msgs...); err != nil {
			if len(ids) == 0 {
				return nil, fmt.Errorf("publish %d outbox messages to %s: %w", len(msgs), topic, err)
			}
			r.log.Warn("outbox relay: publish failed, retrying next round", "topic", topic, "messages", len(msgs), "err", err)
			break // mark what went out; the rest goes next round
		}
		for _, row := range byTopic[topic] {
			ids = append(ids, row.ID)
		}
	}
	return ids, nil
}

// relayMetrics is nil when the relay has no Registerer.
type relayMetrics struct {
	relayedTotal prometheus.Counter
	pending      prometheus.Gauge
	lag          prometheus.Gauge
}

func newRelayMetrics(reg prometheus.Registerer, log *slog.Logger) *relayMetrics {
	m := &relayMetrics{
		relayedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_outbox_relayed_total",
			Help: "Outbox messages (order events and pay-deadline messages) published to the queue.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_outbox_pending",
			Help: "Outbox messages written but not yet published.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_outbox_lag_seconds",
			Help: "Age of the oldest outbox message not yet published (0 when none waits).",
		}),
	}
	var errs [3]error
	m.relayedTotal, errs[0] = metrics.Shared(reg, m.relayedTotal)
	m.pending, errs[1] = metrics.Shared(reg, m.pending)
	m.lag, errs[2] = metrics.Shared(reg, m.lag)
	if err := errors.Join(errs[:]...); err != nil {
		log.Warn("order worker metric not registered", "err", err)
	}
	return m
}

func (m *relayMetrics) relayed(n int) {
	if m != nil {
		m.relayedTotal.Add(float64(n))
	}
}

func (m *relayMetrics) backlog(pending int64, oldest, now time.Time) {
	m.pending.Set(float64(pending))
	if oldest.IsZero() {
		m.lag.Set(0)
		return
	}
	m.lag.Set(max(now.Sub(oldest).Seconds(), 0))
}
