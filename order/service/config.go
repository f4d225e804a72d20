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
	StartWait           time.Duration // SECKILL_START_WAIT: how long a start waits for an unreachable backend

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
	return env.Names(env.Describe(func(r *env.Reader) { ReadShared(r, "") }))
}

// ReadShared reads the shared settings through r for the process named
// service (its service.name in traces), recording every problem on r,
// each naming its variable. The descriptions are the configuration
// reference (docs/configuration.md): the notifier, which reads some of
// these names itself (notifier/delivery.LoadProcessConfig), describes them in the
// same words.
func ReadShared(r *env.Reader, service string) Shared {
	s := Shared{
		HTTPAddr: r.String("SECKILL_HTTP_ADDR", process.DefaultHTTPAddr,
			"listen address: the API of the all-in-one and the gateway; `/healthz`, `/readyz` and `/metrics` of the order worker and the notifier"),
		MetricsAddr: r.String("SECKILL_METRICS_ADDR", "",
			"`host:port` of a separate listener for `/metrics` (e.g. `127.0.0.1:9090`, a port only Prometheus reaches); the public port then answers 404 for `/metrics`. Unset: `/metrics` on SECKILL_HTTP_ADDR"),
		RedisURL: r.String("SECKILL_REDIS_URL", "",
			"`redis://` or `rediss://` (TLS) URL, or `redis+cluster://h1:p1,h2:p2` (`rediss+cluster://`) for a Redis Cluster. Unset: an embedded miniredis, in the all-in-one only (the order worker requires it)"),
		RedisPrefix: r.String("SECKILL_REDIS_PREFIX", "seckill",
			"prefix of every Redis key; give each environment sharing one Redis its own"),
		DBDSN: r.String("SECKILL_DB_DSN", "",
			"MySQL/MariaDB DSN (`user:pass@tcp(host:3306)/db`; a secret when it holds a password). Unset: an embedded SQLite file under SECKILL_DATA_DIR (the notifier requires a DSN)"),
		MQ: r.OneOf("SECKILL_MQ", MQEmbedded, []string{MQEmbedded, MQNATS, MQKafka},
			"the queue: `embedded` (NATS JetStream inside the process, stored under `SECKILL_DATA_DIR/queue`; the all-in-one only), `nats` (a NATS cluster, 2.12 or later) or `kafka`"),
		NATSURL: r.String("SECKILL_NATS_URL", "",
			"comma-separated `nats://` or `tls://` URLs of the NATS cluster; required with `SECKILL_MQ=nats`"),
		NATSReplicas: r.PositiveInt("SECKILL_NATS_REPLICAS", 1,
			"replicas of the NATS JetStream streams the process creates, 1 to 5: 3 on a 3-node cluster, so a stored message survives the loss of a node"),
		QueueSync: r.OneOf("SECKILL_QUEUE_SYNC", DefaultQueueSync, []string{QueueSyncAlways, QueueSyncInterval},
			"the embedded queue's disk writes: `always` fsyncs before a publish is acknowledged (group-committed; a 202 survives a power loss), `interval` leaves it to the server's sync interval (a 202 survives a crash of the process)"),
		KafkaBrokers: r.List("SECKILL_KAFKA_BROKERS",
			"comma-separated `host:port` of the Kafka brokers; required with `SECKILL_MQ=kafka`"),
		KafkaPartitions: r.PositiveInt("SECKILL_KAFKA_PARTITIONS", 12,
			"partitions of the Kafka topics created at start: the most order workers that can share the load"),
		KafkaReplication: r.PositiveInt("SECKILL_KAFKA_REPLICATION", 1,
			"replication factor of the Kafka topics created at start (3 for a real cluster)"),
		KafkaSessionTimeout: r.Duration("SECKILL_KAFKA_SESSION_TIMEOUT", 30*time.Second,
			"how long a silent Kafka consumer keeps its partitions before the group gives them to the others: the pause after a worker crash"),
		DBMaxOpenConns: r.DefaultText("16 on MySQL, 4 on SQLite").PositiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0,
			"database connections one process may open; workers × this must fit the server's `max_connections`"),
		DBMaxIdleConns: r.DefaultText("SECKILL_DB_MAX_OPEN_CONNS").PositiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0,
			"idle database connections kept, at most SECKILL_DB_MAX_OPEN_CONNS"),
		DBConnMaxLifetime: r.Duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute,
			"database connections are closed and replaced after this long"),
		DataDir: r.String("SECKILL_DATA_DIR", "./data",
			"where embedded state lives: the SQLite file and the embedded queue's store"),
		LogLevel: r.OneOf("SECKILL_LOG_LEVEL", "info", []string{"debug", "info", "warn", "error"},
			"least severe log level written"),
		PublishTimeout: r.Duration("SECKILL_PUBLISH_TIMEOUT", 2*time.Second,
			"how long a buy waits for the queue to accept its order message; past it the unit is released and the answer is 503 BUSY"),
		ReservationTTL: r.Duration("SECKILL_RESERVATION_TIMEOUT", 30*time.Second,
			"a reservation whose publish was never confirmed this long is released by the reaper (a dead gateway's are settled sooner, through its node lease); must exceed SECKILL_PUBLISH_TIMEOUT. The restore of Redis runs every third of it"),
		QueueCapacity: r.PositiveInt("SECKILL_QUEUE_CAPACITY", 100000,
			"bound of each NATS topic (`embedded` or `nats`): order messages not yet written; past it buys get 503 BUSY"),
		ShutdownTimeout: r.Duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second,
			process.ShutdownTimeoutHelp),
		StartWait: r.NonNegativeDuration("SECKILL_START_WAIT", process.DefaultStartWait, process.StartWaitHelp),
		Tracing:   tracing.FromEnv(r, service),
		Service: Config{
			WorkerConcurrency: r.PositiveInt("SECKILL_WORKER_CONCURRENCY", DefaultWorkerConcurrency,
				"order messages in flight in one process's workers; batches fill from these, so keep it at least SECKILL_WORKER_BATCH"),
			WorkerBatch: r.PositiveInt("SECKILL_WORKER_BATCH", DefaultWorkerBatch,
				"most orders written per database transaction"),
			SweepInterval: r.Duration("SECKILL_SWEEP_INTERVAL", DefaultSweepInterval,
				"how often each worker process cancels the unpaid orders past their deadline whose pay-deadline message was lost"),
			ReconcileInterval: r.Duration("SECKILL_RECONCILE_INTERVAL", DefaultReconcileInterval,
				"how often each worker process runs the reconciler: Redis against the database, repairing what has a known cause"),
			ReconcileAge: r.Duration("SECKILL_RECONCILE_AGE", DefaultReconcileAge,
				"a queued or claimed reservation whose order is still not in the database this long after it was reserved has its order message published again; keep it well above the time an order normally takes to be written"),
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

// Settings describes every environment variable LoadProcessConfig reads,
// with its default and description, in the order read.
func Settings() []env.Setting {
	return env.Describe(func(r *env.Reader) { readProcessConfig(r) })
}

// Names lists the environment variables LoadProcessConfig reads.
func Names() []string { return env.Names(Settings()) }

// LoadProcessConfig reads the order worker's configuration through getenv.
// Every problem is reported, each naming its variable.
func LoadProcessConfig(getenv func(string) string) (ProcessConfig, error) {
	r := env.New(getenv)
	c := readProcessConfig(r)
	return c, r.Err()
}

func readProcessConfig(r *env.Reader) ProcessConfig {
	c := ProcessConfig{Shared: ReadShared(r, ServiceName)}
	// The worker runs apart from the gateway: the embedded Redis and queue,
	// which live inside one process, are the all-in-one binary's alone.
	if c.RedisURL == "" {
		r.Fail("SECKILL_REDIS_URL", "is required: the order worker runs apart from the gateway and shares its Redis (the embedded Redis lives inside one process; use the all-in-one seckill binary for it)")
	}
	if c.MQ == MQEmbedded {
		r.Fail("SECKILL_MQ", "is %s: the order-worker service runs apart from the others and needs SECKILL_MQ=nats or kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", c.MQ)
	}
	// Never all embedded (the queue is not): demo mode only sets the
	// default log format.
	c.Demo = r.DefaultText("true when every backend is embedded (only the all-in-one can be)").Bool("SECKILL_DEMO", false,
		"demo mode: text logs; in the all-in-one and the gateway also the demo login, a seeded demo activity, buy tokens off and generated secrets; in the notifier, mail and SMS without a server go to the log")
	c.LogFormat = r.DefaultText("text in demo mode, json otherwise").
		OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[c.Demo], []string{"text", "json"}, "log line format")
	// Not used by a worker (it verifies no tokens, and should not be
	// handed them), but validated when present, as the gateway does.
	if s := r.DefaultText("random per start in demo mode; required otherwise").Raw("SECKILL_JWT_SECRET",
		"HS256 secret of user tokens, from which the buy tokens' key is derived; 16 bytes or more, a secret (the order worker uses none, but refuses a short one)"); s != "" && len(s) < 16 {
		r.Fail("SECKILL_JWT_SECRET", "must be at least 16 bytes")
	}
	if s := r.DefaultText("random per start, printed, in demo mode; required otherwise").Raw("SECKILL_ADMIN_TOKEN",
		"bearer token of `/api/v1/admin`; 16 characters or more, a secret (the order worker uses none, but refuses a short one)"); s != "" && len(s) < 16 {
		r.Fail("SECKILL_ADMIN_TOKEN", "must be at least 16 characters")
	}
	return c
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
