// Package kafka is the Kafka backend of mq, built on segmentio/kafka-go. It
// keeps messages across restarts and lets several processes share the work
// of one consumer group, which the in-memory backend (mq/memory) cannot.
//
// # Records
//
// A mq.Message becomes one Kafka record: Key is the record key, Payload the
// value and Headers the record headers. The backend adds these headers,
// which any Kafka client can read (all values are UTF-8 text):
//
//	x-message-id    the message ID (assigned by Publish when empty); kept
//	                across retries and into the dead-letter topic
//	x-attempt       the delivery attempt this record represents, decimal,
//	                "1" for a fresh publish
//	x-failures      how many deliveries before this one failed with an
//	                error not marked mq.Transient (what MaxAttempts
//	                bounds), decimal, "0" for a fresh publish. A record
//	                without it counts x-attempt - 1 (every earlier delivery
//	                failed and, before the header existed, every failure
//	                counted)
//	x-deliver-at    DeliverAt in RFC 3339 with nanoseconds, UTC; present
//	                only for delayed messages and retries. Consumers must
//	                not handle the record before that instant: the backend's
//	                own subscribers hold it back, a stock consumer must too.
//	x-delay-target  on delay-level records only: the topic the message is
//	                finally delivered to
//
// These names are reserved: a caller's header of the same name is
// overwritten. The dead-letter headers of package mq (x-dead-letter-reason,
// x-dead-letter-attempts, x-original-topic) are ordinary headers of the
// records on mq.DeadLetterTopic(topic). The trace context package mqotel
// adds travels as the standard W3C record headers traceparent, tracestate
// and baggage, which other clients' OpenTelemetry instrumentation reads.
//
// # Partitioning
//
// The Writer hashes the key with kafka.CRC32Balancer, the partitioner of
// librdkafka (and so of the confluent clients for C, Python, Go and .NET),
// so records that other tools produce with the same key land on the same
// partition; a record without a key goes to a random partition. The gateway
// keys order messages by user id, which spreads one hot activity over every
// partition and so over every order worker. The consequence is deliberate:
// workers on different partitions update the same activity row at once (the
// conditional stock update makes that safe), and there is no ordering per
// activity. Records of one key are handed to the workers in partition
// order; with Concurrency above 1 they may run at once, and a retried
// message comes back through the retry topic, behind later ones.
//
// # Consuming
//
// Each Subscribe call is one member of the Kafka consumer group
// opts.Group, built on kafka-go's ConsumerGroup so that assignments and
// commits are explicit. Subscribe returns once the member holds its first
// assignment; a group seen for the first time starts at the earliest
// offset. Each assigned partition has its own reader; fetched records are
// handled by opts.Concurrency workers in fetch order, and a partition's
// offset is committed only up to the first record not yet handled, so a
// crash or a rebalance redelivers (at-least-once) and never skips.
//
// A handler error does not block the partition: the message is republished
// with x-attempt + 1 and x-deliver-at = now + opts.Backoff(attempt) to the
// group's retry topic "<topic>.retry.<group>" (which only that group reads),
// then the original is committed. An error not marked mq.Transient also
// adds one to x-failures; the one that brings x-failures to
// opts.MaxAttempts sends the message to mq.DeadLetterTopic(topic) with the
// dead-letter headers instead (x-dead-letter-attempts is x-attempt, every
// delivery). A transient error leaves x-failures as it is, so an outage is
// retried, at most MaxBackoff apart, for as long as it lasts. Both counts
// travel in the record, so they survive a restart or a rebalance: a record
// redelivered because it was not committed keeps its own counts.
//
// # Delayed delivery
//
// Kafka has no delayed delivery, so the backend builds it from delay-level
// topics shared by every topic of the cluster: "<DelayTopicPrefix>.<level>"
// for each of Config.DelayLevels (default 1s, 5s, 30s, 2m, 10m, 1h). A
// message due in d >= the smallest level is published to the largest level
// <= d, with x-delay-target naming its topic. A forwarder reads every
// partition of every level in order; it waits until a record has sat in its
// level for exactly the level's duration (measured from the record's
// timestamp), then routes it by the time that remains: to the largest level
// that fits, or, under the smallest level, to the target topic. Because every
// record of a level waits the same time, a partition is FIFO by due hop time
// and the forwarder only ever waits on its head. The last stretch (under
// the smallest level) is held by the subscriber, which never hands a record
// to a handler before its x-deliver-at, whatever path it came by; this is
// the guard that makes early delivery impossible, also across clocks.
//
// Trade-offs: a message due in d takes up to about d/level hops per level
// (24 hops through the 1h level for a 24h delay, a handful for a 15 min pay
// deadline), each a produce and a commit; delivery is late by the forward
// and fetch latency of its hops (milliseconds each), never early; delays
// have no upper bound. Forwarders commit a record only after its forward is
// acknowledged, so a restart loses nothing; it may forward a record twice,
// which consumers absorb like any redelivery. Forwarders run in every
// process that subscribes (they form the consumer group
// "<DelayTopicPrefix>.forwarder"), so delayed messages move as long as one
// such process runs. Delay topics need a retention longer than the largest
// level plus any outage (the broker default of 7 days is ample).
package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flashsale/seckill/mq"
)

// Header names the backend sets on every record; see the package doc.
const (
	HeaderMessageID   = "x-message-id"
	HeaderAttempt     = "x-attempt"
	HeaderFailures    = "x-failures"
	HeaderDeliverAt   = "x-deliver-at"
	HeaderDelayTarget = "x-delay-target"
)

// Defaults of Config. They suit production: the timeouts are the Kafka
// client defaults, the batch timeout trades at most 2 ms of latency for
// batching under load.
const (
	DefaultClientID          = "seckill"
	DefaultPartitions        = 12
	DefaultAuxPartitions     = 3
	DefaultReplicationFactor = 1
	DefaultBatchTimeout      = 2 * time.Millisecond
	DefaultBatchSize         = 100
	DefaultDialTimeout       = 5 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultDelayTopicPrefix  = "mq.delay"
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultSessionTimeout    = 30 * time.Second
	DefaultRebalanceTimeout  = 30 * time.Second
	DefaultJoinGroupBackoff  = 5 * time.Second
	DefaultJoinTimeout       = 60 * time.Second
	DefaultFetchMaxWait      = 500 * time.Millisecond
	DefaultMaxHeld           = 1000
	DefaultCloseTimeout      = 30 * time.Second
)

// DefaultDelayLevels are the delay-level topics when Config.DelayLevels is
// empty: fine near the end (pay deadlines and retries land in the lower
// levels) and coarse above, so that a 24 h delay still needs few hops.
var DefaultDelayLevels = []time.Duration{
	time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour,
}

// Config tunes a Broker. Only Brokers is required; every zero field selects
// the documented default.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// ClientID names this process to the brokers (logs, quotas). Default
	// DefaultClientID.
	ClientID string
	// Partitions is the partition count of the topics EnsureTopics creates
	// for callers: the most consumers of one group that can work at once.
	// Default DefaultPartitions.
	Partitions int
	// AuxPartitions is the partition count of the auxiliary topics (delay
	// levels, retry and dead-letter topics), which carry little traffic
	// and cost a reader per partition. Default DefaultAuxPartitions.
	AuxPartitions int
	// ReplicationFactor of created topics; use 3 on a production cluster.
	// Default DefaultReplicationFactor (a single development broker).
	ReplicationFactor int
	// BatchTimeout is how long the Writer waits to fill a batch. kafka-go's
	// own default (1 s) would add a second to every publish. Default
	// DefaultBatchTimeout.
	BatchTimeout time.Duration
	// BatchSize is the most records per partition batch. Default
	// DefaultBatchSize.
	BatchSize int
	// DialTimeout bounds connecting to a broker, and New's reachability
	// check. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// WriteTimeout bounds one produce request, acknowledgement included.
	// Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// DelayLevels are the delay-level durations, see the package doc. They
	// name topics, so every process of a cluster must use the same levels.
	// Default DefaultDelayLevels.
	DelayLevels []time.Duration
	// DelayTopicPrefix prefixes the delay-level topics and names the
	// forwarders' consumer group. Default DefaultDelayTopicPrefix.
	DelayTopicPrefix string
	// DisableDelayForwarding keeps this process from running forwarders
	// even when it subscribes; some other process must run them.
	DisableDelayForwarding bool
	// SkipTopicCreation makes the Broker assume the topics exist (created
	// by an operator) instead of creating them on first use; EnsureTopics
	// still creates on request.
	SkipTopicCreation bool
	// HeartbeatInterval, SessionTimeout, RebalanceTimeout and
	// JoinGroupBackoff tune the consumer groups (kafka-go's defaults). Tests
	// shorten them so that rebalances take milliseconds.
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
	// JoinTimeout bounds how long Subscribe waits for the first
	// assignment. Default DefaultJoinTimeout.
	JoinTimeout time.Duration
	// FetchMaxWait is the longest a fetch waits on an empty partition; it
	// also bounds how long stopping a reader can take. Default
	// DefaultFetchMaxWait.
	FetchMaxWait time.Duration
	// MaxHeld bounds, per subscription, the records fetched but not yet
	// handled (queued for a worker or held until their x-deliver-at);
	// fetching pauses at the bound. Default DefaultMaxHeld.
	MaxHeld int
	// CloseTimeout bounds how long Close waits for handlers in flight
	// before it cancels their contexts. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Logger receives consumer-group, retry and dead-letter reports.
	// Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	defInt(&c.Partitions, DefaultPartitions)
	defInt(&c.AuxPartitions, DefaultAuxPartitions)
	defInt(&c.ReplicationFactor, DefaultReplicationFactor)
	defInt(&c.BatchSize, DefaultBatchSize)
	defInt(&c.MaxHeld, DefaultMaxHeld)
	def(&c.BatchTimeout, DefaultBatchTimeout)
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&c.SessionTimeout, DefaultSessionTimeout)
	def(&c.RebalanceTimeout, DefaultRebalanceTimeout)
	def(&c.JoinGroupBackoff, DefaultJoinGroupBackoff)
	def(&c.JoinTimeout, DefaultJoinTimeout)
	def(&c.FetchMaxWait, DefaultFetchMaxWait)
	def(&c.CloseTimeout, DefaultCloseTimeout)
	if len(c.DelayLevels) == 0 {
		c.DelayLevels = DefaultDelayLevels
	}
	c.DelayLevels = slices.Clone(c.DelayLevels)
	slices.Sort(c.DelayLevels)
	c.DelayLevels = slices.Compact(c.DelayLevels)
	if c.DelayTopicPrefix == "" {
		c.DelayTopicPrefix = DefaultDelayTopicPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Broker is a connection to a Kafka cluster; it implements mq.Publisher and
// mq.Subscriber, and one Close serves both roles.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	writer   *kafkago.Writer
	client   *kafkago.Client
	dialer   *kafkago.Dialer
	levels   []delayLevel
	idPrefix string
	nextID   atomic.Uint64

	// created caches the topics this Broker created or found, so only
	// the first use of a topic costs a CreateTopics round trip.
	created sync.Map // topic name -> struct{}

	mu         sync.Mutex
	closing    bool
	consumers  []*consumer
	forwarding bool
	publishes  sync.WaitGroup // Publish calls in flight, for Close

	closeOnce sync.Once
	closeErr  error
}

var (
	_ mq.Publisher  = (*Broker)(nil)
	_ mq.Subscriber = (*Broker)(nil)
)

// New connects to the cluster: it fails, naming kafka and the addresses,
// when none of cfg.Brokers answers within DialTimeout. It creates no topic
// and joins no group; Subscribe and Publish do that on first use.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no broker addresses configured")
	}
	for _, d := range cfg.DelayLevels {
		if d < time.Millisecond {
			return nil, fmt.Errorf("kafka: delay level %v is under a millisecond", d)
		}
	}
	transport := &kafkago.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: cfg.DialTimeout,
	}
	b := &Broker{
		cfg: cfg,
		log: cfg.Logger.With("mq", "kafka"),
		client: &kafkago.Client{
			Addr:      kafkago.TCP(cfg.Brokers...),
			Timeout:   cfg.WriteTimeout,
			Transport: transport,
		},
		dialer: &kafkago.Dialer{
			ClientID:  cfg.ClientID,
			Timeout:   cfg.DialTimeout,
			DualStack: true,
		},
		idPrefix: newIDPrefix(),
	}
	b.writer = &kafkago.Writer{
		Addr: kafkago.TCP(cfg.Brokers...),
		// Key hash compatible with librdkafka; see the package doc.
		Balancer: &kafkago.CRC32Balancer{},
		// Publish must mean "durable": wait for every in-sync replica.
		RequiredAcks: kafkago.RequireAll,
		BatchTimeout: cfg.BatchTimeout,
		BatchSize:    cfg.BatchSize,
		WriteTimeout: cfg.WriteTimeout,
		ReadTimeout:  cfg.WriteTimeout,
		Transport:    transport,
		// Topics are created explicitly, with their partition count.
		AllowAutoTopicCreation: false,
	}
	for _, d := range cfg.DelayLevels {
		b.levels = append(b.levels, delayLevel{d: d, topic: cfg.DelayTopicPrefix + "." + levelName(d)})
	}
	if err := b.checkReachable(ctx); err != nil {
		_ = b.writer.Close()
		return nil, err
	}
	return b, nil
}

// checkReachable asks each bootstrap broker for its API versions until one
// answers.
func (b *Broker) checkReachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	var errs []error
	for _, addr := range b.cfg.Brokers {
		conn, err := b.dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			_, err = conn.ApiVersions()
			_ = conn.Close()
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("kafka: no broker reachable at %s: %w", strings.Join(b.cfg.Brokers, ","), errors.Join(errs...))
}

// Ping checks that the cluster answers a request, for /readyz.
func (b *Broker) Ping(ctx context.Context) error {
	if _, err := b.client.ApiVersions(ctx, &kafkago.ApiVersionsRequest{}); err != nil {
		return fmt.Errorf("kafka: ping %s: %w", strings.Join(b.cfg.Brokers, ","), err)
	}
	return nil
}

// Lag is the consumer lag over this Broker's subscriptions: records on
// their assigned partitions past the committed offsets, as of the last
// fetch. It reads counters only, so a metrics scrape may call it often.
func (b *Broker) Lag() int64 {
	b.mu.Lock()
	cs := slices.Clone(b.consumers)
	b.mu.Unlock()
	var sum int64
	for _, c := range cs {
		if c.sub != nil {
			sum += c.lag()
		}
	}
	return sum
}

// Close stops every subscription and forwarder (no more fetching; handlers
// in flight finish, up to CloseTimeout; handled offsets are committed;
// unhandled records stay for the group's next member), leaves the groups
// and closes the Writer. Later Publish and Subscribe calls return
// mq.ErrClosed; Close is idempotent. A handler must not call Close.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		consumers := b.consumers
		b.mu.Unlock()

		// Stop all at once: each stop waits for its handlers, which may
		// still publish retries, so the Writer closes last.
		var wg sync.WaitGroup
		errs := make([]error, len(consumers))
		for i, c := range consumers {
			wg.Go(func() { errs[i] = c.stop(b.cfg.CloseTimeout) })
		}
		wg.Wait()
		b.publishes.Wait()
		errs = append(errs, b.writer.Close())
		if err := errors.Join(errs...); err != nil {
			b.closeErr = fmt.Errorf("kafka: close: %w", err)
		}
	})
	return b.closeErr
}

// MessagingSystem names the backend in telemetry: the messaging.system
// attribute of the spans package mqotel starts around it.
func (b *Broker) MessagingSystem() string { return "kafka" }

// beginPublish registers a Publish call, or reports mq.ErrClosed.
func (b *Broker) beginPublish() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.publishes.Add(1)
	return true
}

func newIDPrefix() string {
	p := make([]byte, 6)
	_, _ = rand.Read(p) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(p) + "-"
}
