// Package backend opens the queue backend a process is configured for
// (SECKILL_MQ): the embedded NATS JetStream server, a NATS cluster, or
// Kafka. It is the one opener every seckill process uses; what a process
// consumes (its topics and groups) is its caller's to say.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/kafka"
	"github.com/flashsale/seckill/mq/natsjs"
)

// Backends (SECKILL_MQ).
const (
	Embedded = "embedded"
	NATS     = "nats"
	Kafka    = "kafka"
)

// Config selects and tunes a backend.
type Config struct {
	// Backend is Embedded (a JetStream server inside the process, its
	// store in StoreDir), NATS (NATSURL) or Kafka (KafkaBrokers).
	Backend  string
	StoreDir string
	NATSURL  string
	// Replicas of each NATS stream the process creates
	// (SECKILL_NATS_REPLICAS; 3 on a 3-node cluster).
	Replicas int
	// SyncAlways makes the embedded server fsync every write before a
	// publish is acknowledged (SECKILL_QUEUE_SYNC=always).
	SyncAlways bool
	// Capacity bounds each immediate NATS topic.
	Capacity int
	// Groups are the consumer groups to declare per topic on NATS, so
	// messages published before a group first subscribes are kept.
	Groups map[string][]string
	// Topics are created on Kafka at open, so a misconfigured cluster
	// fails at start, naming Kafka.
	Topics []string

	KafkaBrokers        []string
	KafkaPartitions     int
	KafkaReplication    int
	KafkaSessionTimeout time.Duration
	// ClientID names the process to Kafka and NATS.
	ClientID string
	// CloseTimeout bounds the drain of Close.
	CloseTimeout time.Duration
	Logger       *slog.Logger
}

// Queue is an open backend: a publisher and a subscriber with one Close.
type Queue interface {
	mq.Publisher
	mq.Subscriber
}

// Opened is a connected backend.
type Opened struct {
	Queue
	// NATS is the broker when the backend is NATS (embedded or a
	// cluster), else nil: it reads stored messages and dead letters.
	NATS *natsjs.Broker
	// Kafka is the broker when the backend is Kafka, else nil: it knows
	// its consumers' lag.
	Kafka *kafka.Broker
	what  string
}

// Open connects the configured backend. An error names the setting to look
// at.
func Open(ctx context.Context, cfg Config) (*Opened, error) {
	switch cfg.Backend {
	case Kafka:
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
		if len(cfg.Topics) > 0 {
			if err := b.EnsureTopics(ctx, cfg.Topics...); err != nil {
				_ = b.Close()
				return nil, fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): create topics: %w", err)
			}
		}
		return &Opened{Queue: b, Kafka: b, what: "kafka (SECKILL_KAFKA_BROKERS)"}, nil
	case NATS, Embedded, "":
	default:
		return nil, fmt.Errorf("SECKILL_MQ=%s: want %s, %s or %s", cfg.Backend, Embedded, NATS, Kafka)
	}
	ncfg := natsjs.Config{
		Capacity: cfg.Capacity, DrainTimeout: cfg.CloseTimeout, Replicas: cfg.Replicas,
		Groups: cfg.Groups, Logger: cfg.Logger,
	}
	what := "embedded queue (SECKILL_DATA_DIR)"
	if cfg.Backend == NATS {
		ncfg.URL = cfg.NATSURL
		what = "nats (SECKILL_NATS_URL)"
	} else {
		ncfg.StoreDir, ncfg.SyncAlways = cfg.StoreDir, cfg.SyncAlways
	}
	b, err := natsjs.New(ctx, ncfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &Opened{Queue: b, NATS: b, what: what}, nil
}

// Ping checks that the backend answers, for readiness probes.
func (o *Opened) Ping(ctx context.Context) error {
	if o.Kafka != nil {
		return o.Kafka.Ping(ctx)
	}
	return o.NATS.Ping(ctx)
}

// Close closes the backend: the subscriptions stop (handlers in flight
// finish, up to CloseTimeout) and later publishes fail. The error names
// the backend.
func (o *Opened) Close() error {
	if err := o.Queue.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", o.what, err)
	}
	return nil
}
