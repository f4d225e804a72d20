package app

import (
	"context"
	"fmt"

	"github.com/flashsale/seckill/mq/kafka"
	"github.com/flashsale/seckill/order"
)

// openKafka connects to the brokers and creates the topics this pipeline
// uses, so a misconfigured cluster fails at start, naming Kafka.
func (a *App) openKafka(ctx context.Context) error {
	b, err := kafka.New(ctx, kafka.Config{
		Brokers: a.cfg.KafkaBrokers, ClientID: "seckill-" + a.role.String(),
		Partitions: a.cfg.KafkaPartitions, ReplicationFactor: a.cfg.KafkaReplication,
		SessionTimeout: a.cfg.KafkaSessionTimeout, RebalanceTimeout: a.cfg.KafkaSessionTimeout,
		HeartbeatInterval: max(a.cfg.KafkaSessionTimeout/10, 100e6),
		CloseTimeout:      a.cfg.ShutdownTimeout,
		Logger:            a.log,
	})
	if err != nil {
		return fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): %w", err)
	}
	a.queue = b
	if err := b.EnsureTopics(ctx, order.TopicOrders, order.TopicOrderTimeouts, order.TopicOrderEvents); err != nil {
		return fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): create topics: %w", err)
	}
	a.queuePing = b.Ping
	a.depth = func() int { return int(b.Lag()) }
	return nil
}
