package service

import (
	"net"
	"strings"
	"time"

	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// ServiceName is the order worker's service.name in its traces.
const ServiceName = "seckill-order-worker"

// ProcessConfig is the configuration of the seckill-order-worker binary,
// read from the same variables, with the same defaults and checks, as the
// gateway's configuration (gateway/config) reads them. Both read through
// platform/env, so a variable is parsed the same way in both; the order
// module may not import the gateway, so the defaults and cross-checks of
// the shared names are written twice, and gateway/config's
// TestWorkerReadsTheSameSettings fails when the two drift.
type ProcessConfig struct {
	HTTPAddr            string // SECKILL_HTTP_ADDR: /healthz, /readyz (and /metrics)
	MetricsAddr         string // SECKILL_METRICS_ADDR: /metrics on this listener instead
	RedisURL            string // SECKILL_REDIS_URL: required (the embedded Redis lives in one process)
	RedisPrefix         string // SECKILL_REDIS_PREFIX
	DBDSN               string // SECKILL_DB_DSN; empty = embedded SQLite under DataDir
	DBMaxOpenConns      int    // SECKILL_DB_MAX_OPEN_CONNS
	DBMaxIdleConns      int    // SECKILL_DB_MAX_IDLE_CONNS
	DBConnMaxLifetime   time.Duration
	DataDir             string   // SECKILL_DATA_DIR
	MQ                  string   // SECKILL_MQ: nats or kafka
	NATSURL             string   // SECKILL_NATS_URL
	QueueCapacity       int      // SECKILL_QUEUE_CAPACITY
	KafkaBrokers        []string // SECKILL_KAFKA_BROKERS
	KafkaPartitions     int      // SECKILL_KAFKA_PARTITIONS
	KafkaReplication    int      // SECKILL_KAFKA_REPLICATION
	KafkaSessionTimeout time.Duration
	Demo                bool   // SECKILL_DEMO: only the default log format
	LogFormat           string // SECKILL_LOG_FORMAT: text or json
	LogLevel            string // SECKILL_LOG_LEVEL
	ReservationTTL      time.Duration
	PublishTimeout      time.Duration
	ShutdownTimeout     time.Duration // SECKILL_SHUTDOWN_TIMEOUT

	// Tracing is where spans go (SECKILL_OTEL_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT; off when neither is set) and how many
	// new traces are kept (SECKILL_OTEL_SAMPLE_RATIO).
	Tracing tracing.Config

	// Service is the order service's tuning (SECKILL_WORKER_CONCURRENCY,
	// SECKILL_WORKER_BATCH, SECKILL_SWEEP_INTERVAL, SECKILL_RECONCILE_*;
	// the restore runs every third of SECKILL_RESERVATION_TIMEOUT).
	Service Config
}

// Names lists the environment variables LoadProcessConfig reads.
func Names() []string {
	return append([]string{
		"SECKILL_HTTP_ADDR", "SECKILL_METRICS_ADDR", "SECKILL_REDIS_URL", "SECKILL_REDIS_PREFIX",
		"SECKILL_DB_DSN", "SECKILL_DB_MAX_OPEN_CONNS", "SECKILL_DB_MAX_IDLE_CONNS", "SECKILL_DB_CONN_MAX_LIFETIME",
		"SECKILL_DATA_DIR", "SECKILL_MQ", "SECKILL_NATS_URL", "SECKILL_QUEUE_CAPACITY",
		"SECKILL_KAFKA_BROKERS", "SECKILL_KAFKA_PARTITIONS", "SECKILL_KAFKA_REPLICATION", "SECKILL_KAFKA_SESSION_TIMEOUT",
		"SECKILL_DEMO", "SECKILL_LOG_FORMAT", "SECKILL_LOG_LEVEL",
		"SECKILL_RESERVATION_TIMEOUT", "SECKILL_PUBLISH_TIMEOUT", "SECKILL_SHUTDOWN_TIMEOUT",
		"SECKILL_WORKER_CONCURRENCY", "SECKILL_WORKER_BATCH", "SECKILL_SWEEP_INTERVAL",
		"SECKILL_RECONCILE_INTERVAL", "SECKILL_RECONCILE_AGE",
		// Not used by a worker (it verifies no tokens, and should not be
		// handed them), but validated when present, as the gateway does.
		"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN",
	}, tracing.Names()...)
}

// LoadProcessConfig reads the order worker's configuration through getenv.
// Every problem is reported, each naming its variable.
func LoadProcessConfig(getenv func(string) string) (ProcessConfig, error) {
	r := env.New(getenv)
	c := ProcessConfig{
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
		PublishTimeout:      r.Duration("SECKILL_PUBLISH_TIMEOUT", 2*time.Second),
		ReservationTTL:      r.Duration("SECKILL_RESERVATION_TIMEOUT", 30*time.Second),
		QueueCapacity:       r.PositiveInt("SECKILL_QUEUE_CAPACITY", 100000),
		ShutdownTimeout:     r.Duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second),
		Tracing:             tracing.FromEnv(r, ServiceName),
		Service: Config{
			WorkerConcurrency: r.PositiveInt("SECKILL_WORKER_CONCURRENCY", DefaultWorkerConcurrency),
			WorkerBatch:       r.PositiveInt("SECKILL_WORKER_BATCH", DefaultWorkerBatch),
			SweepInterval:     r.Duration("SECKILL_SWEEP_INTERVAL", DefaultSweepInterval),
			ReconcileInterval: r.Duration("SECKILL_RECONCILE_INTERVAL", DefaultReconcileInterval),
			ReconcileAge:      r.Duration("SECKILL_RECONCILE_AGE", DefaultReconcileAge),
		},
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			r.Fail("SECKILL_HTTP_ADDR", "must be host:port (e.g. :8080), got %q", c.HTTPAddr)
		}
	}
	if c.MetricsAddr != "" {
		if err := process.CheckMetricsAddr(c.MetricsAddr, c.HTTPAddr); err != nil {
			r.Fail("SECKILL_METRICS_ADDR", "%v", err)
		}
	}
	switch {
	case c.RedisURL == "":
		r.Fail("SECKILL_REDIS_URL", "is required: the order worker runs apart from the gateway and shares its Redis (the embedded Redis lives inside one process; use the all-in-one seckill binary for it)")
	case !hasScheme(c.RedisURL, "redis://", "rediss://", "redis+cluster://", "rediss+cluster://"):
		r.Fail("SECKILL_REDIS_URL", "must start with redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	if c.MQ == MQEmbedded {
		r.Fail("SECKILL_MQ", "is %s: the order-worker service runs apart from the others and needs SECKILL_MQ=nats or kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", c.MQ)
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
	if c.ReservationTTL <= c.PublishTimeout {
		r.Fail("SECKILL_RESERVATION_TIMEOUT", "must be longer than SECKILL_PUBLISH_TIMEOUT (%s), or live publishes would be reaped", c.PublishTimeout)
	}
	c.Demo = r.Bool("SECKILL_DEMO", false) // never all embedded: the queue is not
	c.LogFormat = r.OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[c.Demo], "text", "json")
	if s := r.Raw("SECKILL_JWT_SECRET"); s != "" && len(s) < 16 {
		r.Fail("SECKILL_JWT_SECRET", "must be at least 16 bytes")
	}
	if s := r.Raw("SECKILL_ADMIN_TOKEN"); s != "" && len(s) < 16 {
		r.Fail("SECKILL_ADMIN_TOKEN", "must be at least 16 characters")
	}
	c.Service.RestoreInterval = max(c.ReservationTTL/3, time.Second)
	c.Service.RestoreWindow = c.ReservationTTL + time.Hour
	c.Service.DrainTimeout = c.ShutdownTimeout
	return c, r.Err()
}

// Redacted returns the settings that are safe to log: no secrets, no
// passwords inside URLs.
func (c ProcessConfig) Redacted() map[string]any {
	db := "external"
	if c.DBDSN == "" {
		db = "embedded sqlite in " + c.DataDir
	}
	return map[string]any{
		"http_addr": c.HTTPAddr, "redis": "external", "db": db, "mq": c.MQ,
		"kafka_brokers":      strings.Join(c.KafkaBrokers, ","),
		"worker_concurrency": c.Service.WorkerConcurrency, "worker_batch": c.Service.WorkerBatch,
		"metrics_addr": c.MetricsAddr,
		// Whether, not where: a collector URL may carry credentials.
		"tracing": c.Tracing.On(), "trace_sample_ratio": c.Tracing.SampleRatio,
	}
}

func hasScheme(s string, schemes ...string) bool {
	for _, p := range schemes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
