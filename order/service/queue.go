package service

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/backend"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/platform/metrics"
)

// Queue backends (SECKILL_MQ).
const (
	MQEmbedded = backend.Embedded
	MQNATS     = backend.NATS
	MQKafka    = backend.Kafka
)

// Queue is the process's queue backend, opened by OpenQueue, with what the
// order pipeline reads of it: its depth, its dead letters, its metrics.
type Queue struct {
	*backend.Opened
}

// OpenQueue opens the configured backend (mq/backend, the one opener) for
// the order pipeline: on NATS the order workers' and the cancellers'
// groups are declared besides cfg.Groups, so a gateway that starts before
// any worker keeps its accepted orders; on Kafka the pipeline's topics
// are created.
func OpenQueue(ctx context.Context, cfg backend.Config) (*Queue, error) {
	groups := map[string][]string{
		ordermsg.TopicOrders:        {OrderGroup},
		ordermsg.TopicOrderTimeouts: {CancelGroup},
	}
	for t, gs := range cfg.Groups {
		groups[t] = append(groups[t], gs...)
	}
	cfg.Groups = groups
	cfg.Topics = append(cfg.Topics, ordermsg.TopicOrders, ordermsg.TopicOrderTimeouts, ordermsg.TopicOrderEvents)
	o, err := backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Queue{Opened: o}, nil
}

// Reader is the queue as a QueueReader, or nil when it cannot be read
// without consuming (Kafka).
func (q *Queue) Reader() QueueReader {
	if q.NATS == nil {
		return nil
	}
	return q.NATS
}

// Depth is the order messages not yet written: the NATS backlog of the
// order workers, or this process's Kafka consumer lag; -1 when unknown.
func (q *Queue) Depth() int {
	if q.Kafka != nil {
		return int(q.Kafka.Lag())
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
func (q *Queue) RegisterMetrics(reg prometheus.Registerer) {
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
