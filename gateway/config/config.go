// Package config reads the gateway's configuration from environment
// variables, through platform/env. A value that is present but invalid is an
// error naming the variable, so a typo stops the process at start instead of
// running with a default nobody asked for.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	notifyconfig "github.com/flashsale/seckill/notifier/config"
	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// Queue backends.
const (
	// MQEmbedded: a NATS JetStream server inside the process, its store
	// under SECKILL_DATA_DIR/queue (durable across crashes).
	MQEmbedded = "embedded"
	// MQNATS: the same backend on an external NATS cluster (SECKILL_NATS_URL).
	MQNATS  = "nats"
	MQKafka = "kafka"
)

// Buy modes (SECKILL_BUY_MODE).
const (
	// BuyModePipeline is the design: Redis reserve, queue, batching workers.
	BuyModePipeline = "pipeline"
	// BuyModeNaive is the teaching anti-pattern: the buy request locks the
	// activity row and inserts the order inside the request. Only for the
	// load tester's side-by-side comparison; never in production.
	BuyModeNaive = "naive"
)

// Buy tokens (SECKILL_BUY_TOKEN): must a buy carry the pass that GET
// /activities/{id}/buy-token hands out from the sale's start.
const (
	BuyTokenRequired = "required"
	BuyTokenOff      = "off"
)

// DefaultBuyTokenTTL matches auth.DefaultBuyTokenTTL.
const DefaultBuyTokenTTL = 2 * time.Minute

// Admission control of the buy route (SECKILL_MAX_BUYS_IN_FLIGHT).
const (
	// DefaultMaxBuysInFlight matches httpapi.DefaultMaxBuysInFlight.
	DefaultMaxBuysInFlight = 512
	// MaxMaxBuysInFlight is the largest bound accepted: beyond it the
	// buys wait for one another for seconds again.
	MaxMaxBuysInFlight = 100000
)

// Coalesced Redis calls (SECKILL_REDIS_BATCH, SECKILL_REDIS_BATCH_WAIT).
const (
	// DefaultRedisBatch matches inventory.DefaultCoalesceMaxBatch.
	DefaultRedisBatch = 64
	// MaxRedisBatch is the largest batch accepted: one script call blocks
	// its Redis (or Cluster master) while it decides the whole batch.
	MaxRedisBatch = 1000
	// DefaultRedisBatchWait matches inventory.DefaultCoalesceMaxWait.
	DefaultRedisBatchWait = 200 * time.Microsecond
	// MaxRedisBatchWait is the longest wait accepted: every buy may wait
	// this long before its reserve is sent.
	MaxRedisBatchWait = 10 * time.Millisecond
)

// Config is everything the all-in-one process and the split services need.
type Config struct {
	HTTPAddr     string   // SECKILL_HTTP_ADDR
	MetricsAddr  string   // SECKILL_METRICS_ADDR: /metrics on this listener instead of HTTPAddr; empty = on HTTPAddr
	RedisURL     string   // SECKILL_REDIS_URL; empty = embedded miniredis
	RedisPrefix  string   // SECKILL_REDIS_PREFIX: key prefix, one per environment sharing a Redis
	DBDSN        string   // SECKILL_DB_DSN; empty = embedded SQLite under DataDir
	MQ           string   // SECKILL_MQ: embedded, nats or kafka
	NATSURL      string   // SECKILL_NATS_URL: comma-separated nats:// URLs
	KafkaBrokers []string // SECKILL_KAFKA_BROKERS
	// KafkaPartitions is the partition count of topics the process creates
	// (SECKILL_KAFKA_PARTITIONS); it caps how many order workers share the load.
	KafkaPartitions  int
	KafkaReplication int // SECKILL_KAFKA_REPLICATION: replication factor of created topics
	// KafkaSessionTimeout is how long the group coordinator waits for a
	// silent consumer before giving its partitions to the others
	// (SECKILL_KAFKA_SESSION_TIMEOUT): the pause after a worker crash.
	KafkaSessionTimeout time.Duration
	DBMaxOpenConns      int           // SECKILL_DB_MAX_OPEN_CONNS (0 = the driver default of the order module)
	DBMaxIdleConns      int           // SECKILL_DB_MAX_IDLE_CONNS
	DBConnMaxLifetime   time.Duration // SECKILL_DB_CONN_MAX_LIFETIME
	DataDir             string        // SECKILL_DATA_DIR
	JWTSecret           []byte        // SECKILL_JWT_SECRET
	AdminToken          string        // SECKILL_ADMIN_TOKEN
	Demo                bool          // SECKILL_DEMO

	// GeneratedAdminToken is true when AdminToken was made up at start
	// (demo mode), so the process prints it once for the operator.
	GeneratedAdminToken bool

	LogFormat string // SECKILL_LOG_FORMAT: text or json
	LogLevel  string // SECKILL_LOG_LEVEL: debug, info, warn, error

	RateGlobal        float64 // SECKILL_RATE_GLOBAL: requests/s over all API calls
	RateGlobalBurst   int     // SECKILL_RATE_GLOBAL_BURST
	RatePerIP         float64 // SECKILL_RATE_PER_IP
	RatePerIPBurst    int     // SECKILL_RATE_PER_IP_BURST
	RatePerUser       float64 // SECKILL_RATE_PER_USER
	RatePerUserBurst  int     // SECKILL_RATE_PER_USER_BURST
	RateLimiterIdle   time.Duration
	TrustedProxies    []string      // SECKILL_TRUSTED_PROXIES: CIDRs or IPs whose X-Forwarded-For is believed
	MaxBodyBytes      int64         // SECKILL_MAX_BODY_BYTES
	SoldOutTTL        time.Duration // SECKILL_SOLDOUT_TTL
	PublishTimeout    time.Duration // SECKILL_PUBLISH_TIMEOUT
	ReservationTTL    time.Duration // SECKILL_RESERVATION_TIMEOUT: a reservation whose publish is unconfirmed this long is released
	QueueCapacity     int           // SECKILL_QUEUE_CAPACITY (embedded queue)
	WorkerConcurrency int           // SECKILL_WORKER_CONCURRENCY: order messages in flight; batches fill from these
	WorkerBatch       int           // SECKILL_WORKER_BATCH: most orders written per database transaction
	ShutdownTimeout   time.Duration // SECKILL_SHUTDOWN_TIMEOUT
	SweepInterval     time.Duration // SECKILL_SWEEP_INTERVAL: how often unpaid orders past their deadline are looked for (the pay-deadline messages' safety net)
	BuyMode           string        // SECKILL_BUY_MODE: pipeline (default) or naive (the anti-pattern, for comparisons)
	BuyToken          string        // SECKILL_BUY_TOKEN: required (default) or off (default in demo mode)
	BuyTokenTTL       time.Duration // SECKILL_BUY_TOKEN_TTL: how long a buy token is valid
	// ReconcileInterval is how often each order-worker process compares
	// Redis with the database and repairs what has a known cause
	// (SECKILL_RECONCILE_INTERVAL).
	ReconcileInterval time.Duration
	// ReconcileAge: a queued or claimed reservation older than this whose
	// order is not in the database has its order message published again
	// (SECKILL_RECONCILE_AGE).
	ReconcileAge time.Duration
	// DashboardStreamsPerIP caps the live dashboard streams one client IP
	// holds (SECKILL_DASHBOARD_STREAMS_PER_IP), inside the process's total of 64.
	DashboardStreamsPerIP int
	// MaxBuysInFlight bounds the buys one gateway works on at once; past
	// it a buy is answered 503 BUSY with Retry-After at once
	// (SECKILL_MAX_BUYS_IN_FLIGHT, default 512).
	MaxBuysInFlight int
	// RedisBatch is the most reserves (or confirms) of one activity one
	// Redis script call serves (SECKILL_REDIS_BATCH); 1 sends each alone.
	RedisBatch int
	// RedisBatchWait is the longest the first request of a batch waits for
	// others (SECKILL_REDIS_BATCH_WAIT).
	RedisBatchWait time.Duration

	// Tracing is OpenTelemetry tracing (SECKILL_OTEL_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT, SECKILL_OTEL_SAMPLE_RATIO): off unless
	// an endpoint is set. Its ServiceName is "seckill"; the app names the
	// split gateway "seckill-gateway".
	Tracing tracing.Config

	// Notify is the notifier of the all-in-one process (SECKILL_SMTP_*,
	// SECKILL_SMS_*, SECKILL_MAIL_*, SECKILL_NOTIFY_*, SECKILL_NOTIFIER_ENABLED).
	Notify notifyconfig.Delivery
}

// Names lists every environment variable Load reads, so deploy files can be
// checked against it (an unknown name in a manifest is a typo nobody sees).
func Names() []string {
	names := append([]string{
		"SECKILL_HTTP_ADDR", "SECKILL_REDIS_URL", "SECKILL_REDIS_PREFIX", "SECKILL_DB_DSN", "SECKILL_MQ", "SECKILL_NATS_URL",
		"SECKILL_KAFKA_BROKERS", "SECKILL_KAFKA_PARTITIONS", "SECKILL_KAFKA_REPLICATION", "SECKILL_KAFKA_SESSION_TIMEOUT",
		"SECKILL_DB_MAX_OPEN_CONNS", "SECKILL_DB_MAX_IDLE_CONNS", "SECKILL_DB_CONN_MAX_LIFETIME",
		"SECKILL_DATA_DIR", "SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN", "SECKILL_DEMO",
		"SECKILL_LOG_FORMAT", "SECKILL_LOG_LEVEL",
		"SECKILL_RATE_GLOBAL", "SECKILL_RATE_GLOBAL_BURST", "SECKILL_RATE_PER_IP", "SECKILL_RATE_PER_IP_BURST",
		"SECKILL_RATE_PER_USER", "SECKILL_RATE_PER_USER_BURST", "SECKILL_RATE_LIMITER_IDLE",
		"SECKILL_TRUSTED_PROXIES", "SECKILL_MAX_BODY_BYTES", "SECKILL_SOLDOUT_TTL", "SECKILL_PUBLISH_TIMEOUT",
		"SECKILL_RESERVATION_TIMEOUT", "SECKILL_QUEUE_CAPACITY", "SECKILL_WORKER_CONCURRENCY",
		"SECKILL_WORKER_BATCH", "SECKILL_SHUTDOWN_TIMEOUT", "SECKILL_BUY_MODE", "SECKILL_SWEEP_INTERVAL",
		"SECKILL_METRICS_ADDR", "SECKILL_DASHBOARD_STREAMS_PER_IP", "SECKILL_MAX_BUYS_IN_FLIGHT",
		"SECKILL_RECONCILE_INTERVAL", "SECKILL_RECONCILE_AGE",
		"SECKILL_REDIS_BATCH", "SECKILL_REDIS_BATCH_WAIT", "SECKILL_BUY_TOKEN", "SECKILL_BUY_TOKEN_TTL",
	}, notifyconfig.Names()...)
	return append(names, tracing.Names()...)
}

// Embedded reports whether every backend is the in-process default.
func (c Config) Embedded() bool {
	return c.RedisURL == "" && c.DBDSN == "" && c.MQ == MQEmbedded
}

// Load reads the configuration of a process that serves the HTTP API,
// through getenv (os.Getenv in main, a map in tests). Every problem is
// reported, once per variable, each naming its variable.
// (The order worker reads its own settings: order/service.LoadProcessConfig.)
func Load(getenv func(string) string) (Config, error) {
	r := env.New(getenv)
	c := Config{
		HTTPAddr:            r.String("SECKILL_HTTP_ADDR", process.DefaultHTTPAddr),
		MetricsAddr:         r.String("SECKILL_METRICS_ADDR", ""),
		RedisURL:            r.String("SECKILL_REDIS_URL", ""),
		RedisPrefix:         r.String("SECKILL_REDIS_PREFIX", "seckill"),
		DBDSN:               r.String("SECKILL_DB_DSN", ""),
		MQ:                  r.OneOf("SECKILL_MQ", MQEmbedded, MQEmbedded, MQNATS, MQKafka),
		NATSURL:             r.String("SECKILL_NATS_URL", ""),
		KafkaBrokers:        r.List("SECKILL_KAFKA_BROKERS"),
		KafkaPartitions:     r.PositiveInt("SECKILL_KAFKA_PARTITIONS", 12),
		KafkaReplication:    r.PositiveInt("SECKILL_KAFKA_REPLICATION", 1),
		KafkaSessionTimeout: r.Duration("SECKILL_KAFKA_SESSION_TIMEOUT", 30*time.Second),
		DBMaxOpenConns:      r.PositiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0),
		DBMaxIdleConns:      r.PositiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0),
		DBConnMaxLifetime:   r.Duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute),
		DataDir:             r.String("SECKILL_DATA_DIR", "./data"),
		LogLevel:            r.OneOf("SECKILL_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		RateGlobal:          r.PositiveFloat("SECKILL_RATE_GLOBAL", 20000),
		RateGlobalBurst:     r.PositiveInt("SECKILL_RATE_GLOBAL_BURST", 20000),
		RatePerIP:           r.PositiveFloat("SECKILL_RATE_PER_IP", 10000),
		RatePerIPBurst:      r.PositiveInt("SECKILL_RATE_PER_IP_BURST", 20000),
		RatePerUser:         r.PositiveFloat("SECKILL_RATE_PER_USER", 2),
		RatePerUserBurst:    r.PositiveInt("SECKILL_RATE_PER_USER_BURST", 5),
		RateLimiterIdle:     r.Duration("SECKILL_RATE_LIMITER_IDLE", 5*time.Minute),
		TrustedProxies:      r.List("SECKILL_TRUSTED_PROXIES"),
		MaxBodyBytes:        int64(r.PositiveInt("SECKILL_MAX_BODY_BYTES", 64<<10)),
		SoldOutTTL:          r.Duration("SECKILL_SOLDOUT_TTL", time.Second),
		PublishTimeout:      r.Duration("SECKILL_PUBLISH_TIMEOUT", 2*time.Second),
		ReservationTTL:      r.Duration("SECKILL_RESERVATION_TIMEOUT", 30*time.Second),
		QueueCapacity:       r.PositiveInt("SECKILL_QUEUE_CAPACITY", 100000),
		WorkerConcurrency:   r.PositiveInt("SECKILL_WORKER_CONCURRENCY", 200),
		WorkerBatch:         r.PositiveInt("SECKILL_WORKER_BATCH", 100),
		ShutdownTimeout:     r.Duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second),
		SweepInterval:       r.Duration("SECKILL_SWEEP_INTERVAL", 15*time.Second),
		ReconcileInterval:   r.Duration("SECKILL_RECONCILE_INTERVAL", 30*time.Second),
		ReconcileAge:        r.Duration("SECKILL_RECONCILE_AGE", 5*time.Minute),
		BuyMode:             r.OneOf("SECKILL_BUY_MODE", BuyModePipeline, BuyModePipeline, BuyModeNaive),
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			r.Fail("SECKILL_HTTP_ADDR", "must be host:port (e.g. :8080), got %q", c.HTTPAddr)
		}
	}
	c.DashboardStreamsPerIP = r.PositiveInt("SECKILL_DASHBOARD_STREAMS_PER_IP", 8)
	c.MaxBuysInFlight = r.PositiveInt("SECKILL_MAX_BUYS_IN_FLIGHT", DefaultMaxBuysInFlight)
	if c.MaxBuysInFlight > MaxMaxBuysInFlight {
		r.Fail("SECKILL_MAX_BUYS_IN_FLIGHT", "must be at most %d (a bound that large no longer bounds the wait), got %d", MaxMaxBuysInFlight, c.MaxBuysInFlight)
	}
	c.RedisBatch = r.PositiveInt("SECKILL_REDIS_BATCH", DefaultRedisBatch)
	if c.RedisBatch > MaxRedisBatch {
		r.Fail("SECKILL_REDIS_BATCH", "must be at most %d (one script call blocks Redis for the whole batch), got %d", MaxRedisBatch, c.RedisBatch)
	}
	c.RedisBatchWait = r.Duration("SECKILL_REDIS_BATCH_WAIT", DefaultRedisBatchWait)
	if c.RedisBatchWait > MaxRedisBatchWait {
		r.Fail("SECKILL_REDIS_BATCH_WAIT", "must be a positive duration of at most %s (e.g. 200us), got %s", MaxRedisBatchWait, c.RedisBatchWait)
	}
	if c.MetricsAddr != "" {
		if err := process.CheckMetricsAddr(c.MetricsAddr, c.HTTPAddr); err != nil {
			r.Fail("SECKILL_METRICS_ADDR", "%v", err)
		}
	}
	if c.RedisURL != "" && !hasScheme(c.RedisURL, "redis://", "rediss://", "redis+cluster://", "rediss+cluster://") {
		r.Fail("SECKILL_REDIS_URL", "must start with redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	if c.MQ == MQNATS && c.NATSURL == "" {
		r.Fail("SECKILL_NATS_URL", "is required when SECKILL_MQ=nats")
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		if u = strings.TrimSpace(u); u != "" && !hasScheme(u, "nats://", "tls://") {
			r.Fail("SECKILL_NATS_URL", "%q must start with nats:// or tls://", u)
		}
	}
	if c.MQ == MQKafka && len(c.KafkaBrokers) == 0 {
		r.Fail("SECKILL_KAFKA_BROKERS", "is required when SECKILL_MQ=kafka")
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			r.Fail("SECKILL_KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	for _, tp := range c.TrustedProxies {
		if net.ParseIP(tp) == nil {
			if _, _, err := net.ParseCIDR(tp); err != nil {
				r.Fail("SECKILL_TRUSTED_PROXIES", "%q is neither an IP nor a CIDR", tp)
			}
		}
	}
	if c.ReservationTTL <= c.PublishTimeout {
		r.Fail("SECKILL_RESERVATION_TIMEOUT", "must be longer than SECKILL_PUBLISH_TIMEOUT (%s), or live publishes would be reaped", c.PublishTimeout)
	}

	c.Demo = r.Bool("SECKILL_DEMO", c.Embedded())
	c.BuyToken = r.OneOf("SECKILL_BUY_TOKEN", map[bool]string{true: BuyTokenOff, false: BuyTokenRequired}[c.Demo], BuyTokenRequired, BuyTokenOff)
	c.BuyTokenTTL = r.Duration("SECKILL_BUY_TOKEN_TTL", DefaultBuyTokenTTL)
	c.LogFormat = r.OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[c.Demo], "text", "json")
	c.Notify = notifyconfig.ReadDelivery(r, c.Demo)
	c.Tracing = tracing.FromEnv(r, "seckill")

	if s := r.Raw("SECKILL_JWT_SECRET"); s != "" {
		if len(s) < 16 {
			r.Fail("SECKILL_JWT_SECRET", "must be at least 16 bytes")
		}
		c.JWTSecret = []byte(s)
	} else if c.Demo {
		c.JWTSecret = []byte(randomHex(32))
	} else {
		r.Fail("SECKILL_JWT_SECRET", "is required outside demo mode")
	}
	if s := r.Raw("SECKILL_ADMIN_TOKEN"); s != "" {
		if len(s) < 16 {
			r.Fail("SECKILL_ADMIN_TOKEN", "must be at least 16 characters")
		}
		c.AdminToken = s
	} else if c.Demo {
		c.AdminToken = randomHex(16)
		c.GeneratedAdminToken = true
	} else {
		r.Fail("SECKILL_ADMIN_TOKEN", "is required outside demo mode")
	}
	return c, r.Err()
}

// Redacted returns the settings that are safe to log: no secrets, no
// passwords inside URLs.
func (c Config) Redacted() map[string]any {
	return map[string]any{
		"http_addr": c.HTTPAddr, "redis": backendName(c.RedisURL, "embedded miniredis"),
		"db": backendName(c.DBDSN, "embedded sqlite in "+c.DataDir), "mq": c.MQ,
		"kafka_brokers": strings.Join(c.KafkaBrokers, ","), "demo": c.Demo,
		"worker_concurrency": c.WorkerConcurrency, "worker_batch": c.WorkerBatch,
		"buy_mode": c.BuyMode, "buy_token": c.BuyToken, "metrics_addr": c.MetricsAddr,
		"tracing": c.Tracing.On(),
	}
}

func backendName(v, embedded string) string {
	if v == "" {
		return embedded
	}
	return "external"
}

func hasScheme(s string, schemes ...string) bool {
	for _, p := range schemes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
