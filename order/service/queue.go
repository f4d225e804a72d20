package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/kafka"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/platform/metrics"
)

// Queue backends (SECKILL_MQ).
const (
	MQEmbedded = "embedded"
	MQNATS     = "nats"
	MQKafka    = "kafka"
)

// QueueConfig selects and tunes the queue backend of a process.
type QueueConfig struct {
	// Backend is MQEmbedded (a JetStream server inside the process, its
	// store in StoreDir), MQNATS (NATSURL) or MQKafka (KafkaBrokers).
	Backend  string
	StoreDir string
	NATSURL  string
	// Capacity bounds the order messages the NATS stream holds.
	Capacity int
	// Groups are consumer groups to declare on NATS besides the order
	// workers' and the cancellers' (the all-in-one's notifier), so
	// messages published before they first subscribe are kept.
	Groups map[string][]string

	KafkaBrokers        []string
	KafkaPartitions     int
	KafkaReplication    int
	KafkaSessionTimeout time.Duration
	// ClientID names the process to Kafka.
	ClientID string
	// CloseTimeout bounds the drain of Close.
	CloseTimeout time.Duration
	Logger       *slog.Logger
}

// OpenedQueue is a connected queue backend.
type OpenedQueue struct {
	Queue
	// NATS is the broker when the backend is NATS (embedded or external),
	// else nil: it reads stored messages and dead letters.
	NATS  *natsjs.Broker
	kafka *kafka.Broker
	ping  func(context.Context) error
}

// OpenQueue connects the configured backend. On NATS the order workers' and
// the cancellers' groups (and cfg.Groups) are declared, so a gateway that
// starts before any worker keeps its accepted orders; on Kafka the
// pipeline's topics are created, so a misconfigured cluster fails at
// start, naming Kafka.
func OpenQueue(ctx context.Context, cfg QueueConfig) (*OpenedQueue, error) {
	if cfg.Backend == MQKafka {
		b, err := kafka.New(ctx, kafka.Config{
			Brokers: cfg.KafkaBrokers, ClientID: cfg.ClientID,
			Partitions: cfg.KafkaPartitions, ReplicationFactor: cfg.KafkaReplication,
			SessionTimeout: cfg.KafkaSessionTimeout, RebalanceTimeout: cfg.KafkaSessionTimeout,
			HeartbeatInterval: max(cfg.KafkaSessionTimeout/10, 100*time.Millisecond),
			CloseTimeout:      cfg.CloseTimeout,
			Logger:            cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): %w", err)
		}
		if err := b.EnsureTopics(ctx, ordermsg.TopicOrders, ordermsg.TopicOrderTimeouts, ordermsg.TopicOrderEvents); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): create topics: %w", err)
		}
		return &OpenedQueue{Queue: b, kafka: b, ping: b.Ping}, nil
	}
	groups := map[string][]string{
		ordermsg.TopicOrders:        {OrderGroup},
		ordermsg.TopicOrderTimeouts: {CancelGroup},
	}
	for t, gs := range cfg.Groups {
		groups[t] = append(groups[t], gs...)
	}
	ncfg := natsjs.Config{
		Capacity: cfg.Capacity, DrainTimeout: cfg.CloseTimeout,
		Groups: groups, Logger: cfg.Logger,
	}
	what := "embedded queue (SECKILL_DATA_DIR)"
	if cfg.Backend == MQNATS {
		ncfg.URL = cfg.NATSURL
		what = "nats (SECKILL_NATS_URL)"
	} else {
		ncfg.StoreDir = cfg.StoreDir
	}
	b, err := natsjs.New(ctx, ncfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &OpenedQueue{Queue: b, NATS: b, ping: b.Ping}, nil
}

// Reader is the queue as a QueueReader, or nil when it cannot be read
// without consuming (Kafka).
func (q *OpenedQueue) Reader() QueueReader {
	if q.NATS == nil {
		return nil
	}
	return q.NATS
}

// Ping checks that the backend answers, for readiness probes.
func (q *OpenedQueue) Ping(ctx context.Context) error { return q.ping(ctx) }

// Depth is the order messages not yet written: the NATS backlog of the
// order workers, or this process's Kafka consumer lag; -1 when unknown.
func (q *OpenedQueue) Depth() int {
	if q.kafka != nil {
		return int(q.kafka.Lag())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	bl, err := q.NATS.Backlog(ctx, ordermsg.TopicOrders, OrderGroup)
	if err != nil {
		return -1
	}
	return bl.Messages
}

// DeadLetterTopics are the topics whose dead letters an operator can read
// and replay (GET /api/v1/admin/dead-letters/{topic}).
var DeadLetterTopics = []string{ordermsg.TopicOrders, ordermsg.TopicOrderTimeouts, ordermsg.TopicOrderEvents}

// RegisterMetrics exports the queue depth and, on NATS, the age of the
// oldest order message not yet written and the depth of each dead-letter
// topic, read at each scrape. It panics on a clash of names (see
// metrics.MustRegister): it is called once per process and registry.
func (q *OpenedQueue) RegisterMetrics(reg prometheus.Registerer) {
	cs := []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seckill_queue_depth",
		Help: "Order messages not yet handled: waiting in the embedded queue, or the order workers' consumer lag on Kafka.",
	}, func() float64 { return float64(q.Depth()) })}
	if b := q.NATS; b != nil {
		cs = append(cs, natsMetrics(b)...)
	}
	metrics.MustRegister(reg, cs...)
}

// natsMetrics are the gauges that read b: the order backlog's age and the
// dead-letter topics.
func natsMetrics(b *natsjs.Broker) []prometheus.Collector {
	cs := []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seckill_queue_oldest_age_seconds",
		Help: "Age of the oldest order message not yet written to the database (0 when none, -1 when the queue cannot be read): how far behind the order workers are, and how long an outage has lasted.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		bl, err := b.Backlog(ctx, ordermsg.TopicOrders, OrderGroup)
		switch {
		case err != nil:
			return -1 // unknown: not the healthy 0
		case bl.Oldest.IsZero():
			return 0
		}
		return time.Since(bl.Oldest).Seconds()
	})}
	for _, topic := range DeadLetterTopics {
		dlq := mq.DeadLetterTopic(topic)
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "seckill_dead_letters",
			Help:        "Messages on a dead-letter topic, waiting for an operator (GET /api/v1/admin/dead-letters/{topic}).",
			ConstLabels: prometheus.Labels{"topic": topic},
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := b.Len(ctx, dlq)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	return cs
}
