// Package natsjs is the durable mq backend on NATS JetStream, and the
// product's default: embedded in the process (a NATS server listening on no
// port, its file store under a directory) or connected to a NATS cluster.
//
// A Publish returns only once JetStream has stored the message (written to
// its file store), so an order answered 202 survives a kill -9 of the
// process, and so do delayed messages; with Config.SyncAlways (or
// sync_interval: always on an external cluster) it also survives a power
// loss (docs/queue-durability.md says what each setting survives). Each
// topic is one stream with interest retention: a message stays until
// every consumer group has acknowledged it. Immediate topics are
// bounded (Config.Capacity, discard-new), which is what lets the gateway
// answer 503 BUSY instead of queueing without end; dead-letter topics keep
// what they hold until an operator replays or deletes it.
//
// Each consumer group is a durable pull consumer with explicit acks. A
// failed message is negatively acknowledged with the subscription's backoff
// as delay; after MaxAttempts failures that are not mq.Transient it is
// published to the dead-letter topic and acknowledged. Transient failures
// are counted in memory per subscription: after a restart a message's
// earlier transient deliveries count as failures, which can only shorten
// the road to the dead-letter topic of a message that also fails for good.
//
// Delayed messages (DeliverAt in the future) are JetStream message
// schedules (nats-server 2.12+) in one stream of their own, because a stream
// that allows schedules cannot discard new messages. When a schedule fires,
// a mover consumer holds the message until its DeliverAt (a schedule may
// fire early: its time has whole-second precision in some clients) and then
// publishes it to its topic, deduplicated by message id, so the handler
// never sees it early and a crash of the mover never duplicates it.
package natsjs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flashsale/seckill/mq"
)

// Defaults of Config.
const (
	// DefaultPrefix names the subjects ("seckill.t.<topic>") and streams
	// ("SECKILL_T_<topic>") of one deployment.
	DefaultPrefix = "seckill"
	// DefaultCapacity bounds each immediate topic: messages not yet
	// acknowledged by every group. 100000 order messages are a few tens
	// of MB on disk.
	DefaultCapacity = 100_000
	// DefaultReplicas: one copy (embedded, or a single server). A NATS
	// cluster should use 3.
	DefaultReplicas = 1
	// DefaultAckWait is how long the server waits for a delivered message
	// to be settled before it redelivers it: after a crash, messages in
	// flight come back this long after their last heartbeat. Handlers
	// that run longer keep their messages with heartbeats.
	DefaultAckWait = 10 * time.Second
	// DefaultDrainTimeout bounds how long Close waits for handlers in
	// flight before it cancels their contexts.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds the start of the embedded server and
	// the connection to an external one.
	DefaultConnectTimeout = 10 * time.Second
)

// Config tunes a Broker. The zero value of each field selects its default;
// URL or StoreDir must be set.
type Config struct {
	// URL lists the NATS servers to connect to (comma-separated
	// nats:// URLs). Empty: start an embedded server in this process,
	// reachable only from it, storing under StoreDir.
	URL string
	// StoreDir is the embedded server's JetStream store. Required when
	// URL is empty.
	StoreDir string
	// SyncAlways makes the embedded server fsync every write to its
	// store (each stored message, and each removal and consumer state
	// update) before it acknowledges it: a Publish that returned nil
	// survives a crash of the operating system or a power loss, not only
	// a crash of the process. It costs an fsync per stored message,
	// which only group commit makes affordable: publish through
	// mq/batch, whose envelopes carry many messages per write. Off, a
	// Publish that returned nil survives a kill -9 of the process (the
	// write is in the operating system's page cache) but a power loss
	// may take the messages of the last SyncInterval. Embedded server
	// only: for an external one, set jetstream { sync_interval: always }
	// in each server's configuration (New refuses it with URL set, so
	// nobody believes it applies). See docs/queue-durability.md.
	SyncAlways bool
	// SyncInterval is how often the embedded server fsyncs its store
	// when SyncAlways is off: the window of acknowledged messages a power
	// loss can take. Zero selects the server's default, 2 minutes.
	// Embedded server only, like SyncAlways; exclusive with it.
	SyncInterval time.Duration
	// Prefix separates deployments sharing one NATS server. Default
	// DefaultPrefix. Letters, digits, '-' and '_' only.
	Prefix string
	// Capacity bounds each immediate topic; Publish beyond it fails with
	// mq.ErrQueueFull. Default DefaultCapacity.
	Capacity int
	// Groups declares, per topic, the consumer groups that must exist
	// before its first message: a topic keeps a message only until every
	// existing group has acknowledged it, so one published while no group
	// exists is dropped at once. The streams and these groups are created
	// at the first use of a topic, by whichever process comes first (a
	// gateway that starts before any worker keeps its orders).
	Groups map[string][]string
	// Replicas of each stream. Default DefaultReplicas.
	Replicas int
	// AckWait: see DefaultAckWait.
	AckWait time.Duration
	// DrainTimeout: see DefaultDrainTimeout.
	DrainTimeout time.Duration
	// ConnectTimeout: see DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives dead-letter and shutdown reports. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if c.URL == "" && c.StoreDir == "" {
		return errors.New("natsjs: either URL (an external NATS) or StoreDir (the embedded server's store) must be set")
	}
	switch {
	case c.SyncInterval < 0:
		return fmt.Errorf("natsjs: SyncInterval %v: must not be negative", c.SyncInterval)
	case c.SyncAlways && c.SyncInterval > 0:
		return fmt.Errorf("natsjs: SyncAlways and SyncInterval %v: choose one (always syncs every write; an interval syncs every so often)", c.SyncInterval)
	case c.URL != "" && (c.SyncAlways || c.SyncInterval > 0):
		return errors.New("natsjs: SyncAlways and SyncInterval configure the embedded server only; with URL set, configure jetstream { sync_interval: ... } on each NATS server")
	}
	for _, r := range c.Prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("natsjs: prefix %q: only letters, digits, '-' and '_' are allowed", c.Prefix)
		}
	}
	return nil
}

// Broker implements mq.Publisher and mq.Subscriber on JetStream; one Close
// serves both. Create it with New and always Close it.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	srv      *server.Server // nil when connected to an external NATS
	nc       *nats.Conn
	js       jetstream.JetStream
	idPrefix string
	nextID   atomic.Uint64

	mu      sync.Mutex
	streams map[string]bool // topic -> stream ensured
	subs    []*subscription
	closed  bool

	mover     *subscription
	closeOnce sync.Once
	closeErr  error
}

// New starts the embedded server (URL empty) or connects to NATS, makes
// sure the delayed-message stream exists and starts the mover.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, streams: make(map[string]bool)}
	var idb [6]byte
	_, _ = rand.Read(idb[:])
	b.idPrefix = hex.EncodeToString(idb[:]) + "-"

	opts := []nats.Option{
		nats.Name("seckill"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(cfg.ConnectTimeout),
	}
	var err error
	if cfg.URL == "" {
		b.srv, err = startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.nc, err = nats.Connect("", append(opts, nats.InProcessServer(b.srv))...)
	} else {
		b.nc, err = nats.Connect(cfg.URL, append(opts, nats.RetryOnFailedConnect(false))...)
	}
	if err != nil {
		b.shutdownServer()
		if errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) {
			// Nobody answered: a server restarting, or not up yet.
			err = fmt.Errorf("%w: %w", mq.ErrTransient, err)
		}
		return nil, fmt.Errorf("natsjs: connect to %s: %w", b.where(), err)
	}
	b.js, err = jetstream.New(b.nc)
	if err != nil {
		b.nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("natsjs: jetstream on %s: %w", b.where(), err)
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := b.ensureDelayed(sctx); err != nil {
		b.nc.Close()
		b.shutdownServer()
		return nil, err
	}
	if err := b.startMover(sctx); err != nil {
		b.nc.Close()
		b.shutdownServer()
		return nil, err
	}
	return b, nil
}

// startEmbedded runs a JetStream server inside the process. It listens on
// no port: only this process reaches it, through an in-process connection.
func startEmbedded(cfg Config) (*server.Server, error) {
	opts := &server.Options{
		ServerName:   "seckill-embedded",
		DontListen:   true,
		JetStream:    true,
		StoreDir:     cfg.StoreDir,
		NoSigs:       true,
		NoLog:        true,
		SyncAlways:   cfg.SyncAlways,
		SyncInterval: cfg.SyncInterval, // zero: the server's default
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsjs: embedded server in %s: %w", cfg.StoreDir, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(cfg.ConnectTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsjs: embedded server in %s not ready after %v", cfg.StoreDir, cfg.ConnectTimeout)
	}
	return srv, nil
}

func (b *Broker) where() string {
	if b.cfg.URL != "" {
		return b.cfg.URL
	}
	return "the embedded server in " + filepath.Clean(b.cfg.StoreDir)
}

func (b *Broker) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Ping checks that the connection is up and JetStream answers.
func (b *Broker) Ping(ctx context.Context) error {
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("natsjs: %s: %w", b.where(), err)
	}
	return nil
}

// MessagingSystem names the backend in telemetry: the messaging.system
// attribute of the spans package mqotel starts around it.
func (b *Broker) MessagingSystem() string { return "nats" }

// Close stops every subscription (waiting up to DrainTimeout for the
// handlers in flight; messages fetched but not yet handled go back to the
// server at once), stops the mover, flushes and closes the connection and
// shuts the embedded server down. Messages not yet handled stay stored for
// the next start. Later Publish and Subscribe calls fail with mq.ErrClosed.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		subs := b.subs
		b.subs = nil
		b.mu.Unlock()

		deadline := time.Now().Add(b.cfg.DrainTimeout)
		var errs []error
		for _, s := range subs {
			s.stop(deadline)
		}
		if b.mover != nil {
			b.mover.stop(deadline)
		}
		if err := b.nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("natsjs: flush: %w", err))
		}
		b.nc.Close()
		b.shutdownServer()
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Subjects and stream names. Topic names are [a-zA-Z0-9._-]; stream and
// consumer names may not contain '.', so they are encoded injectively:
// '_' becomes "__" and '.' becomes "_d".
func (b *Broker) topicSubject(topic string) string { return b.cfg.Prefix + ".t." + topic }
func (b *Broker) dueSubject(topic string) string   { return b.cfg.Prefix + ".due." + topic }
func (b *Broker) scheduleSubject(topic, id string) string {
	return b.cfg.Prefix + ".sched." + topic + "." + id
}
func (b *Broker) topicStream(topic string) string {
	return strings.ToUpper(b.cfg.Prefix) + "_T_" + encodeName(topic)
}
func (b *Broker) delayedStream() string { return strings.ToUpper(b.cfg.Prefix) + "_DELAYED" }

func encodeName(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '_':
			sb.WriteString("__")
		case '.':
			sb.WriteString("_d")
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// isDeadLetterTopic: dead-letter topics keep their messages until an
// operator acts, whether or not anyone consumes them.
func isDeadLetterTopic(topic string) bool { return strings.HasSuffix(topic, mq.DeadLetterTopic("")) }

// ensureStream creates (or updates) the stream of topic once per Broker.
func (b *Broker) ensureStream(ctx context.Context, topic string) error {
	b.mu.Lock()
	done := b.streams[topic]
	b.mu.Unlock()
	if done {
		return nil
	}
	cfg := jetstream.StreamConfig{
		Name:        b.topicStream(topic),
		Description: "seckill mq topic " + topic,
		Subjects:    []string{b.topicSubject(topic)},
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Duplicates:  2 * time.Minute,
	}
	if isDeadLetterTopic(topic) {
		cfg.Retention = jetstream.LimitsPolicy
		cfg.MaxMsgs = -1
		cfg.AllowDirect = true
	} else {
		cfg.Retention = jetstream.InterestPolicy
		cfg.Discard = jetstream.DiscardNew
		cfg.MaxMsgs = int64(b.cfg.Capacity)
	}
	si, err := b.createStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("natsjs: stream %s for topic %s on %s: %w", cfg.Name, topic, b.where(), err)
	}
	for _, g := range b.cfg.Groups[topic] {
		if _, err := b.js.Consumer(ctx, cfg.Name, encodeName(g)); err == nil {
			continue // exists: leave its settings to its subscribers
		}
		if _, err := b.consumer(ctx, cfg.Name, cfg.Subjects[0], g, 1); err != nil {
			return fmt.Errorf("natsjs: declare group %s of topic %s on %s: %w", g, topic, b.where(), err)
		}
	}
	if !isDeadLetterTopic(topic) && si.CachedInfo().State.Consumers == 0 && len(b.cfg.Groups[topic]) == 0 {
		b.log.Warn("natsjs: topic has no consumer group yet: its messages are dropped until one subscribes (declare it in Config.Groups)", "topic", topic)
	}
	b.mu.Lock()
	b.streams[topic] = true
	b.mu.Unlock()
	return nil
}

// Bounds of createStream's attempts.
const (
	createAttempt      = 2 * time.Second
	createAttemptsSpan = 15 * time.Second
)

// createStream creates or updates a stream (see retryCreate).
func (b *Broker) createStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return retryCreate(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.js.CreateOrUpdateStream(ctx, cfg) })
}

// retryCreate runs create (a stream's or a consumer's create-or-update, or
// the lookup that follows one) in
// attempts of createAttempt each, for up to createAttemptsSpan (or ctx).
// On a cluster that has just formed, or when several processes create the
// same replicated stream at once (every process of a cluster starting
// together), the server may create it yet never answer the request: a
// single call would wait out its whole deadline and fail although the
// stream exists. A later attempt finds it and answers at once. An answer
// from the server (an APIError: an old server refusing schedules, a
// conflicting configuration) is final. When no attempt got an answer, the
// error wraps mq.ErrTransient: a cluster too busy to answer in time is a
// backend not reachable yet, which a starting process waits for
// (SECKILL_START_WAIT) instead of exiting.
func retryCreate[T any](ctx context.Context, create func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, createAttemptsSpan)
	defer cancel()
	var apiErr *jetstream.APIError
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		actx, acancel := context.WithTimeout(ctx, createAttempt)
		v, err := create(actx)
		acancel()
		if err == nil || errors.As(err, &apiErr) {
			return v, err
		}
		if ctx.Err() != nil {
			return v, fmt.Errorf("%w: %w", mq.ErrTransient, err)
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w: %w", mq.ErrTransient, err)
		case <-time.After(wait):
		}
	}
}

// ensureDelayed creates the stream that holds schedules and the fired
// messages waiting for the mover. It cannot be bounded with discard-new
// (JetStream refuses that with schedules); one schedule per order is small.
func (b *Broker) ensureDelayed(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:              b.delayedStream(),
		Description:       "seckill mq delayed messages: schedules and fired messages awaiting their time",
		Subjects:          []string{b.cfg.Prefix + ".sched.>", b.cfg.Prefix + ".due.>"},
		Storage:           jetstream.FileStorage,
		Replicas:          b.cfg.Replicas,
		Retention:         jetstream.LimitsPolicy,
		MaxMsgs:           -1,
		AllowMsgSchedules: true,
		AllowRollup:       true,
		Duplicates:        2 * time.Minute,
	}
	if _, err := b.createStream(ctx, cfg); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			// The server answered no: an old one knows no message schedules.
			return fmt.Errorf("natsjs: delayed-message stream %s on %s (needs nats-server 2.12 or later): %w", cfg.Name, b.where(), err)
		}
		return fmt.Errorf("natsjs: delayed-message stream %s on %s: %w", cfg.Name, b.where(), err)
	}
	return nil
}
