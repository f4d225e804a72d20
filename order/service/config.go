package service

import (
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/flashsale/seckill/mq/backend"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// ServiceName is the order worker's service.name in its traces.
const ServiceName = "seckill-order-worker"

// Shared is the settings every process of the order pipeline reads alike:
// the order worker (ProcessConfig) and the gateway, all-in-one or split
// (gateway/config.Config), embed it. ReadShared reads them, with their
// defaults and the checks that hold in every process, in one place, so a
// variable cannot mean one thing in the gateway and another in the worker.
// Settings whose default or checks differ between the processes
// (SECKILL_DEMO, SECKILL_LOG_FORMAT, the secrets, whether SECKILL_REDIS_URL
// may be empty) stay with each process's loader.
type Shared struct {
	HTTPAddr    string // SECKILL_HTTP_ADDR: the process's listener (the API, or /healthz and /readyz)
	MetricsAddr string // SECKILL_METRICS_ADDR: /metrics on this listener instead of HTTPAddr; empty = on HTTPAddr
	RedisURL    string // SECKILL_REDIS_URL; empty = embedded miniredis (all-in-one only)
	RedisPrefix string // SECKILL_REDIS_PREFIX: key prefix, one per environment sharing a Redis
	DBDSN       string // SECKILL_DB_DSN; empty = embedded SQLite under DataDir
	MQ          string // SECKILL_MQ: embedded, nats or kafka
	NATSURL     string // SECKILL_NATS_URL: comma-separated nats:// URLs
	// NATSReplicas is the replica count of the NATS streams the process
	// creates (SECKILL_NATS_REPLICAS): 3 on a 3-node cluster, so a stored
	// message survives the loss of a node.
	NATSReplicas int
	// QueueSync is SECKILL_QUEUE_SYNC: QueueSyncAlways makes the embedded
	// queue fsync before a publish is acknowledged (a 202 survives a power
	// loss), QueueSyncInterval leaves it to the server's sync interval (a
	// 202 survives a crash of the process).
	QueueSync    string
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
	LogLevel            string        // SECKILL_LOG_LEVEL: debug, info, warn, error
	PublishTimeout      time.Duration // SECKILL_PUBLISH_TIMEOUT
	ReservationTTL      time.Duration // SECKILL_RESERVATION_TIMEOUT: a reservation whose publish is unconfirmed this long is released
	QueueCapacity       int           // SECKILL_QUEUE_CAPACITY (embedded queue)
	ShutdownTimeout     time.Duration // SECKILL_SHUTDOWN_TIMEOUT

	// Tracing is where spans go (SECKILL_OTEL_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT; off when neither is set) and how many
	// new traces are kept (SECKILL_OTEL_SAMPLE_RATIO). Its ServiceName is
	// the one ReadShared was given.
	Tracing tracing.Config

	// Service is the order service's tuning (SECKILL_WORKER_CONCURRENCY,
	// SECKILL_WORKER_BATCH, SECKILL_SWEEP_INTERVAL, SECKILL_RECONCILE_*;
	// the restore runs every third of SECKILL_RESERVATION_TIMEOUT, and
	// Drain waits SECKILL_SHUTDOWN_TIMEOUT), ready for Start.
	Service Config
}

// SECKILL_QUEUE_SYNC values.
const (
	QueueSyncAlways   = "always"
	QueueSyncInterval = "interval"
	// DefaultQueueSync: a 202 survives a power loss of the embedded
	// queue's machine; group commit keeps it cheap (docs/benchmarks.md).
	DefaultQueueSync = QueueSyncAlways
)

// SharedNames lists the environment variables ReadShared reads; each
// process's Names includes them.
func SharedNames() []string {
	return append([]string{
		"SECKILL_HTTP_ADDR", "SECKILL_METRICS_ADDR", "SECKILL_REDIS_URL", "SECKILL_REDIS_PREFIX",
		"SECKILL_DB_DSN", "SECKILL_DB_MAX_OPEN_CONNS", "SECKILL_DB_MAX_IDLE_CONNS", "SECKILL_DB_CONN_MAX_LIFETIME",
		"SECKILL_DATA_DIR", "SECKILL_MQ", "SECKILL_NATS_URL", "SECKILL_NATS_REPLICAS", "SECKILL_QUEUE_SYNC", "SECKILL_QUEUE_CAPACITY",
		"SECKILL_KAFKA_BROKERS", "SECKILL_KAFKA_PARTITIONS", "SECKILL_KAFKA_REPLICATION", "SECKILL_KAFKA_SESSION_TIMEOUT",
		"SECKILL_LOG_LEVEL", "SECKILL_RESERVATION_TIMEOUT", "SECKILL_PUBLISH_TIMEOUT", "SECKILL_SHUTDOWN_TIMEOUT",
		"SECKILL_WORKER_CONCURRENCY", "SECKILL_WORKER_BATCH", "SECKILL_SWEEP_INTERVAL",
		"SECKILL_RECONCILE_INTERVAL", "SECKILL_RECONCILE_AGE",
	}, tracing.Names()...)
}

// ReadShared reads the shared settings through r for the process named
// service (its service.name in traces), recording every problem on r,
// each naming its variable.
func ReadShared(r *env.Reader, service string) Shared {
	s := Shared{
		HTTPAddr:            r.String("SECKILL_HTTP_ADDR", process.DefaultHTTPAddr),
		MetricsAddr:         r.String("SECKILL_METRICS_ADDR", ""),
		RedisURL:            r.String("SECKILL_REDIS_URL", ""),
		RedisPrefix:         r.String("SECKILL_REDIS_PREFIX", "seckill"),
		DBDSN:               r.String("SECKILL_DB_DSN", ""),
		MQ:                  r.OneOf("SECKILL_MQ", MQEmbedded, MQEmbedded, MQNATS, MQKafka),
		NATSURL:             r.String("SECKILL_NATS_URL", ""),
		NATSReplicas:        r.PositiveInt("SECKILL_NATS_REPLICAS", 1),
		QueueSync:           r.OneOf("SECKILL_QUEUE_SYNC", DefaultQueueSync, QueueSyncAlways, QueueSyncInterval),
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
		Tracing:             tracing.FromEnv(r, service),
		Service: Config{
			WorkerConcurrency: r.PositiveInt("SECKILL_WORKER_CONCURRENCY", DefaultWorkerConcurrency),
			WorkerBatch:       r.PositiveInt("SECKILL_WORKER_BATCH", DefaultWorkerBatch),
			SweepInterval:     r.Duration("SECKILL_SWEEP_INTERVAL", DefaultSweepInterval),
			ReconcileInterval: r.Duration("SECKILL_RECONCILE_INTERVAL", DefaultReconcileInterval),
			ReconcileAge:      r.Duration("SECKILL_RECONCILE_AGE", DefaultReconcileAge),
		},
	}
	s.Service.RestoreInterval = max(s.ReservationTTL/3, time.Second)
	s.Service.RestoreWindow = s.ReservationTTL + time.Hour

	if s.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(s.HTTPAddr); err != nil {
			r.Fail("SECKILL_HTTP_ADDR", "must be host:port (e.g. :8080), got %q", s.HTTPAddr)
		}
	}
	if s.MetricsAddr != "" {
		if err := process.CheckMetricsAddr(s.MetricsAddr, s.HTTPAddr); err != nil {
			r.Fail("SECKILL_METRICS_ADDR", "%v", err)
		}
	}
	if s.RedisURL != "" && !hasScheme(s.RedisURL, "redis://", "rediss://", "redis+cluster://", "rediss+cluster://") {
		r.Fail("SECKILL_REDIS_URL", "must start with redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	if s.MQ == MQNATS && s.NATSURL == "" {
		r.Fail("SECKILL_NATS_URL", "is required when SECKILL_MQ=nats")
	}
	for _, u := range strings.Split(s.NATSURL, ",") {
		if u = strings.TrimSpace(u); u != "" && !hasScheme(u, "nats://", "tls://") {
			r.Fail("SECKILL_NATS_URL", "%q must start with nats:// or tls://", u)
		}
	}
	if s.NATSReplicas > 5 {
		r.Fail("SECKILL_NATS_REPLICAS", "must be between 1 and 5 (JetStream's limit), got %d", s.NATSReplicas)
	}
	if s.MQ == MQKafka && len(s.KafkaBrokers) == 0 {
		r.Fail("SECKILL_KAFKA_BROKERS", "is required when SECKILL_MQ=kafka")
	}
	for _, b := range s.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			r.Fail("SECKILL_KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	if s.ReservationTTL <= s.PublishTimeout {
		r.Fail("SECKILL_RESERVATION_TIMEOUT", "must be longer than SECKILL_PUBLISH_TIMEOUT (%s), or live publishes would be reaped", s.PublishTimeout)
	}
	return s
}

// Backends is how a process with these settings reaches its backends.
// clientID names it to the queue; groups are the consumer groups it
// declares on NATS besides the order side's.
func (s Shared) Backends(clientID string, groups map[string][]string) BackendConfig {
	return BackendConfig{
		Tracing: s.Tracing, RedisURL: s.RedisURL, RedisPrefix: s.RedisPrefix,
		DB: sqldb.Config{
			DSN: s.DBDSN, DataDir: s.DataDir,
			MaxOpenConns: s.DBMaxOpenConns, MaxIdleConns: s.DBMaxIdleConns, ConnMaxLifetime: s.DBConnMaxLifetime,
		},
		Queue: backend.Config{
			Backend: s.MQ, StoreDir: filepath.Join(s.DataDir, "queue"), NATSURL: s.NATSURL,
			Replicas: s.NATSReplicas, SyncAlways: s.QueueSync == QueueSyncAlways,
			Capacity: s.QueueCapacity, Groups: groups,
			KafkaBrokers: s.KafkaBrokers, KafkaPartitions: s.KafkaPartitions, KafkaReplication: s.KafkaReplication,
			KafkaSessionTimeout: s.KafkaSessionTimeout, ClientID: clientID, CloseTimeout: s.ShutdownTimeout,
		},
	}
}

// ProcessConfig is the configuration of the seckill-order-worker binary:
// the Shared settings, and what the worker reads its own way.
type ProcessConfig struct {
	Shared
	Demo      bool   // SECKILL_DEMO: only the default log format
	LogFormat string // SECKILL_LOG_FORMAT: text or json
}

// Names lists the environment variables LoadProcessConfig reads.
func Names() []string {
	return append(SharedNames(),
		"SECKILL_DEMO", "SECKILL_LOG_FORMAT",
		// Not used by a worker (it verifies no tokens, and should not be
		// handed them), but validated when present, as the gateway does.
		"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN",
	)
}

// LoadProcessConfig reads the order worker's configuration through getenv.
// Every problem is reported, each naming its variable.
func LoadProcessConfig(getenv func(string) string) (ProcessConfig, error) {
	r := env.New(getenv)
	c := ProcessConfig{Shared: ReadShared(r, ServiceName)}
	// The worker runs apart from the gateway: the embedded Redis and queue,
	// which live inside one process, are the all-in-one binary's alone.
	if c.RedisURL == "" {
		r.Fail("SECKILL_REDIS_URL", "is required: the order worker runs apart from the gateway and shares its Redis (the embedded Redis lives inside one process; use the all-in-one seckill binary for it)")
	}
	if c.MQ == MQEmbedded {
		r.Fail("SECKILL_MQ", "is %s: the order-worker service runs apart from the others and needs SECKILL_MQ=nats or kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", c.MQ)
	}
	c.Demo = r.Bool("SECKILL_DEMO", false) // never all embedded: the queue is not
	c.LogFormat = r.OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[c.Demo], "text", "json")
	if s := r.Raw("SECKILL_JWT_SECRET"); s != "" && len(s) < 16 {
		r.Fail("SECKILL_JWT_SECRET", "must be at least 16 bytes")
	}
	if s := r.Raw("SECKILL_ADMIN_TOKEN"); s != "" && len(s) < 16 {
		r.Fail("SECKILL_ADMIN_TOKEN", "must be at least 16 characters")
	}
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
