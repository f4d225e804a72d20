package service

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ProcessConfig is the configuration of the seckill-order-worker binary,
// read from the same variables, with the same defaults and checks, as the
// gateway's configuration (gateway/config) reads them. The order module may
// not import the gateway, so this is a second parser of the same names:
// gateway/config's TestWorkerReadsTheSameSettings fails when the two drift,
// until one shared parser serves every binary.
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

	// Service is the order service's tuning (SECKILL_WORKER_CONCURRENCY,
	// SECKILL_WORKER_BATCH, SECKILL_SWEEP_INTERVAL, SECKILL_RECONCILE_*;
	// the restore runs every third of SECKILL_RESERVATION_TIMEOUT).
	Service Config
}

// Names lists the environment variables LoadProcessConfig reads.
func Names() []string {
	return []string{
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
	}
}

// LoadProcessConfig reads the order worker's configuration through getenv.
// Every problem is reported, each naming its variable.
func LoadProcessConfig(getenv func(string) string) (ProcessConfig, error) {
	p := parser{getenv: getenv}
	c := ProcessConfig{
		HTTPAddr:            p.str("SECKILL_HTTP_ADDR", ":8080"),
		MetricsAddr:         p.str("SECKILL_METRICS_ADDR", ""),
		RedisURL:            p.str("SECKILL_REDIS_URL", ""),
		RedisPrefix:         p.str("SECKILL_REDIS_PREFIX", "seckill"),
		DBDSN:               p.str("SECKILL_DB_DSN", ""),
		MQ:                  p.oneOf("SECKILL_MQ", MQEmbedded, MQEmbedded, MQNATS, MQKafka),
		NATSURL:             p.str("SECKILL_NATS_URL", ""),
		KafkaBrokers:        p.list("SECKILL_KAFKA_BROKERS"),
		KafkaPartitions:     p.positiveInt("SECKILL_KAFKA_PARTITIONS", 12),
		KafkaReplication:    p.positiveInt("SECKILL_KAFKA_REPLICATION", 1),
		KafkaSessionTimeout: p.duration("SECKILL_KAFKA_SESSION_TIMEOUT", 30*time.Second),
		DBMaxOpenConns:      p.positiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0),
		DBMaxIdleConns:      p.positiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0),
		DBConnMaxLifetime:   p.duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute),
		DataDir:             p.str("SECKILL_DATA_DIR", "./data"),
		LogLevel:            p.oneOf("SECKILL_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		PublishTimeout:      p.duration("SECKILL_PUBLISH_TIMEOUT", 2*time.Second),
		ReservationTTL:      p.duration("SECKILL_RESERVATION_TIMEOUT", 30*time.Second),
		QueueCapacity:       p.positiveInt("SECKILL_QUEUE_CAPACITY", 100000),
		ShutdownTimeout:     p.duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second),
		Service: Config{
			WorkerConcurrency: p.positiveInt("SECKILL_WORKER_CONCURRENCY", DefaultWorkerConcurrency),
			WorkerBatch:       p.positiveInt("SECKILL_WORKER_BATCH", DefaultWorkerBatch),
			SweepInterval:     p.duration("SECKILL_SWEEP_INTERVAL", DefaultSweepInterval),
			ReconcileInterval: p.duration("SECKILL_RECONCILE_INTERVAL", DefaultReconcileInterval),
			ReconcileAge:      p.duration("SECKILL_RECONCILE_AGE", DefaultReconcileAge),
		},
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			p.fail("SECKILL_HTTP_ADDR", "must be host:port (e.g. :8080), got %q", c.HTTPAddr)
		}
	}
	if c.MetricsAddr != "" {
		if msg := metricsAddrProblem(c.MetricsAddr, c.HTTPAddr); msg != "" {
			p.fail("SECKILL_METRICS_ADDR", "%s", msg)
		}
	}
	switch {
	case c.RedisURL == "":
		p.fail("SECKILL_REDIS_URL", "is required: the order worker runs apart from the gateway and shares its Redis (the embedded Redis lives inside one process; use the all-in-one seckill binary for it)")
	case !hasScheme(c.RedisURL, "redis://", "rediss://", "redis+cluster://", "rediss+cluster://"):
		p.fail("SECKILL_REDIS_URL", "must start with redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	if c.MQ == MQEmbedded {
		p.fail("SECKILL_MQ", "is %s: the order-worker service runs apart from the others and needs SECKILL_MQ=nats or kafka (the embedded queue lives inside one process; use the all-in-one seckill binary for it)", c.MQ)
	}
	if c.MQ == MQNATS && c.NATSURL == "" {
		p.fail("SECKILL_NATS_URL", "is required when SECKILL_MQ=nats")
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		if u = strings.TrimSpace(u); u != "" && !hasScheme(u, "nats://", "tls://") {
			p.fail("SECKILL_NATS_URL", "%q must start with nats:// or tls://", u)
		}
	}
	if c.MQ == MQKafka && len(c.KafkaBrokers) == 0 {
		p.fail("SECKILL_KAFKA_BROKERS", "is required when SECKILL_MQ=kafka")
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			p.fail("SECKILL_KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	for name, d := range map[string]time.Duration{
		"SECKILL_PUBLISH_TIMEOUT": c.PublishTimeout, "SECKILL_RESERVATION_TIMEOUT": c.ReservationTTL,
		"SECKILL_SHUTDOWN_TIMEOUT": c.ShutdownTimeout, "SECKILL_DB_CONN_MAX_LIFETIME": c.DBConnMaxLifetime,
		"SECKILL_KAFKA_SESSION_TIMEOUT": c.KafkaSessionTimeout, "SECKILL_SWEEP_INTERVAL": c.Service.SweepInterval,
		"SECKILL_RECONCILE_INTERVAL": c.Service.ReconcileInterval, "SECKILL_RECONCILE_AGE": c.Service.ReconcileAge,
	} {
		if d <= 0 {
			p.fail(name, "must be a positive duration")
		}
	}
	if c.ReservationTTL <= c.PublishTimeout {
		p.fail("SECKILL_RESERVATION_TIMEOUT", "must be longer than SECKILL_PUBLISH_TIMEOUT (%s), or live publishes would be reaped", c.PublishTimeout)
	}
	c.Demo = p.boolean("SECKILL_DEMO", false) // never all embedded: the queue is not
	c.LogFormat = p.oneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[c.Demo], "text", "json")
	if s := getenv("SECKILL_JWT_SECRET"); s != "" && len(s) < 16 {
		p.fail("SECKILL_JWT_SECRET", "must be at least 16 bytes")
	}
	if s := getenv("SECKILL_ADMIN_TOKEN"); s != "" && len(s) < 16 {
		p.fail("SECKILL_ADMIN_TOKEN", "must be at least 16 characters")
	}
	c.Service.RestoreInterval = max(c.ReservationTTL/3, time.Second)
	c.Service.RestoreWindow = c.ReservationTTL + time.Hour
	c.Service.DrainTimeout = c.ShutdownTimeout
	return c, errors.Join(p.errs...)
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
	}
}

// metricsAddrProblem says what is wrong with SECKILL_METRICS_ADDR, or "":
// it must be host:port with a numeric port (0 picks a free one), and not
// the listener of SECKILL_HTTP_ADDR.
func metricsAddrProblem(addr, httpAddr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("must be host:port (e.g. 127.0.0.1:9090 or :9090), got %q", addr)
	}
	hhost, hport, err := net.SplitHostPort(httpAddr)
	if err != nil || n == 0 || hport != port {
		return ""
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if host == hhost || wildcard(host) || wildcard(hhost) {
		return fmt.Sprintf("%q is the listener of SECKILL_HTTP_ADDR (%s): give /metrics a port of its own, or leave it empty to serve it there", addr, httpAddr)
	}
	return ""
}

func hasScheme(s string, schemes ...string) bool {
	for _, p := range schemes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// parser collects one error per bad variable instead of stopping at the first.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) list(name string) []string {
	var out []string
	for _, part := range strings.Split(p.getenv(name), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(p.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

func (p *parser) positiveInt(name string, def int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		p.fail(name, "must be a positive integer, got %q", v)
		return def
	}
	return n
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.fail(name, "must be a duration like 500ms or 2s, got %q", v)
		return def
	}
	return d
}

func (p *parser) boolean(name string, def bool) bool {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}
