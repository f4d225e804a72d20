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
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/mqotel"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/metrics"
)

// outboxRow is one message waiting in the outbox table: an order event or
// an order's pay-deadline message (ordermsg.Event, ordermsg.Timeout).
type outboxRow struct {
	ID          int64 `gorm:"primaryKey;autoIncrement"`
	EventID     string
	Topic       string
	MsgKey      string
	Payload     []byte
	DeliverAt   *time.Time
	CreatedAt   time.Time
	PublishedAt *time.Time
	// Traceparent is the W3C traceparent of the span the row was written
	// in (the order's consumer span, the cancel, the payment request), nil
	// when that was not traced: the relay publishes the row in that trace.
	Traceparent *string
}

func (outboxRow) TableName() string { return "outbox" }

// timeoutID is the outbox id of an order's pay-deadline message.
func timeoutID(orderID string) string { return orderID + "/timeout" }

// newEvent builds the outbox row of an event about o.
func newEvent(o *Order, typ, reason, activityName string, now time.Time) outboxRow {
	e := ordermsg.Event{
		ID: ordermsg.EventID(o.ID, typ), Type: typ, OrderID: o.ID, ActivityID: o.ActivityID, ActivityName: activityName,
		UserID: o.UserID, PriceCents: o.PriceCents, PayDeadline: o.PayDeadline.UTC(), Reason: reason,
		RequestID: o.RequestID, TraceID: o.TraceID, OccurredAt: now.UTC(),
	}
	payload, _ := json.Marshal(e) // cannot fail: plain fields
	return outboxRow{EventID: e.ID, Topic: ordermsg.TopicOrderEvents, MsgKey: o.UserID, Payload: payload, CreatedAt: now}
}

// newTimeout builds the outbox row of o's pay-deadline message.
func newTimeout(o *Order, now time.Time) outboxRow {
	deadline := o.PayDeadline.UTC()
	payload, _ := json.Marshal(ordermsg.Timeout{OrderID: o.ID, ActivityID: o.ActivityID, PayDeadline: deadline})
	return outboxRow{
		EventID: timeoutID(o.ID), Topic: ordermsg.TopicOrderTimeouts, MsgKey: o.UserID,
		Payload: payload, DeliverAt: &deadline, CreatedAt: now,
	}
}

// tracedRows records sc, the trace the rows are written in, on each of them;
// nothing when sc is not valid.
func tracedRows(rows []outboxRow, sc trace.SpanContext) {
	tp := traceparentOf(sc)
	if tp == nil {
		return
	}
	for i := range rows {
		rows[i].Traceparent = tp
	}
}

// insertOutbox adds rows to the outbox inside tx.
func insertOutbox(tx *gorm.DB, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.CreateInBatches(rows, sqldb.InsertBatchSize).Error; err != nil {
		return fmt.Errorf("write %d outbox messages: %w", len(rows), err)
	}
	return nil
}

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
			if err := r.purge(ctx, now.Add(-r.retention)); err != nil && ctx.Err() == nil {
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
	var relayed int
	err := sqldb.Transaction(ctx, r.store.db, func(tx *gorm.DB) (err error) {
		relayed = 0
		q := tx.Where("published_at IS NULL").Order("id").Limit(r.batch)
		if tx.Dialector.Name() == "mysql" {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var rows []outboxRow
		if err := q.Find(&rows).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
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
		// One Publish per topic, in id order within it: a topic's
		// messages keep their order, and a round costs one call per topic
		// (the rows of two topics interleave).
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
			if err := r.pub.Publish(pctx, topic, msgs...); err != nil {
				if len(ids) == 0 {
					return fmt.Errorf("publish %d outbox messages to %s: %w", len(msgs), topic, err)
				}
				r.log.Warn("outbox relay: publish failed, retrying next round", "topic", topic, "messages", len(msgs), "err", err)
				break // mark what went out; the rest goes next round
			}
			for _, row := range byTopic[topic] {
				ids = append(ids, row.ID)
			}
		}
		now := time.Now().UTC()
		if err := tx.WithContext(pctx).Model(&outboxRow{}).Where("id IN ?", ids).Update("published_at", now).Error; err != nil {
			return fmt.Errorf("mark %d outbox messages published: %w", len(ids), err)
		}
		relayed = len(ids)
		return nil
	})
	if err == nil {
		r.metrics.relayed(relayed)
	}
	return relayed, err
}

// purge deletes published rows older than before, a bounded chunk per call.
func (r *Relay) purge(ctx context.Context, before time.Time) error {
	// The derived table lets MySQL delete from the table it selects from.
	return r.store.db.WithContext(ctx).Exec(`DELETE FROM outbox WHERE id IN (
		SELECT id FROM (SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < ? ORDER BY id LIMIT 1000) old)`,
		before.UTC()).Error
}

// OutboxBacklog returns how many outbox rows wait to be relayed and when the
// oldest of them was written (zero when none wait).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	db := s.db.WithContext(ctx).Model(&outboxRow{}).Where("published_at IS NULL")
	var n int64
	if err := db.Count(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("count outbox backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	// The oldest row's own column, not MIN(): SQLite loses the column's
	// declared type in an aggregate and would hand back text.
	var oldest []outboxRow
	err := s.db.WithContext(ctx).Select("id", "created_at").Where("published_at IS NULL").Order("id").Limit(1).Find(&oldest).Error
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read outbox backlog: %w", err)
	}
	if len(oldest) == 0 {
		return n, time.Time{}, nil
	}
	return n, oldest[0].CreatedAt, nil
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
