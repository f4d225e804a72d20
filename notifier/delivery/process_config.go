package delivery

import (
	"net"
	"strings"
	"time"

	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// ServiceName is the standalone notifier's service.name in its traces.
const ServiceName = "seckill-notifier"

// ProcessConfig is the configuration of the seckill-notifier binary: Delivery
// plus the settings every seckill service shares. The shared names mean
// what docs/configuration.md says.
type ProcessConfig struct {
	Delivery Config

	HTTPAddr            string        // SECKILL_HTTP_ADDR: /healthz, /readyz, /metrics
	MetricsAddr         string        // SECKILL_METRICS_ADDR: /metrics here instead, on its own listener; empty = on HTTPAddr
	DBDSN               string        // SECKILL_DB_DSN (MySQL); required
	DataDir             string        // SECKILL_DATA_DIR
	DBMaxOpenConns      int           // SECKILL_DB_MAX_OPEN_CONNS
	DBMaxIdleConns      int           // SECKILL_DB_MAX_IDLE_CONNS
	DBConnMaxLifetime   time.Duration // SECKILL_DB_CONN_MAX_LIFETIME
	MQ                  string        // SECKILL_MQ: nats or kafka
	NATSURL             string        // SECKILL_NATS_URL
	NATSReplicas        int           // SECKILL_NATS_REPLICAS: replicas of the streams it creates
	KafkaBrokers        []string      // SECKILL_KAFKA_BROKERS
	KafkaPartitions     int           // SECKILL_KAFKA_PARTITIONS
	KafkaReplication    int           // SECKILL_KAFKA_REPLICATION
	KafkaSessionTimeout time.Duration // SECKILL_KAFKA_SESSION_TIMEOUT
	LogFormat           string        // SECKILL_LOG_FORMAT
	LogLevel            string        // SECKILL_LOG_LEVEL
	ShutdownTimeout     time.Duration // SECKILL_SHUTDOWN_TIMEOUT
	StartWait           time.Duration // SECKILL_START_WAIT
	Demo                bool          // SECKILL_DEMO: unconfigured channels log instead of staying off
	// Tracing is where spans go (SECKILL_OTEL_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT; off when neither is set) and how many
	// new traces are kept (SECKILL_OTEL_SAMPLE_RATIO).
	Tracing tracing.Config
}

// ProcessSettings describes every variable LoadProcessConfig reads, with its
// default and description, in the order read.
func ProcessSettings() []env.Setting {
	return env.Describe(func(r *env.Reader) { readProcessConfig(r) })
}

// ProcessNames lists every variable LoadProcessConfig reads.
func ProcessNames() []string { return env.Names(ProcessSettings()) }

// LoadProcessConfig reads the standalone notifier's configuration. The notifier
// runs apart from the gateway on NATS or Kafka (the embedded queue lives
// inside one process), and needs the shared database (contacts, notifications).
func LoadProcessConfig(getenv func(string) string) (ProcessConfig, error) {
	r := env.New(getenv)
	s := readProcessConfig(r)
	return s, r.Err()
}

// readProcessConfig reads the settings every seckill process shares with the
// order side's own reader (order/service.ReadShared), which the notifier
// does not import: same names, defaults and descriptions (the
// configuration reference requires them equal), so a variable means one
// thing in every process.
func readProcessConfig(r *env.Reader) ProcessConfig {
	s := ProcessConfig{
		HTTPAddr: r.String("SECKILL_HTTP_ADDR", process.DefaultHTTPAddr,
			"listen address: the API of the all-in-one and the gateway; `/healthz`, `/readyz` and `/metrics` of the order worker and the notifier"),
		MetricsAddr: r.String("SECKILL_METRICS_ADDR", "",
			"`host:port` of a separate listener for `/metrics` (e.g. `127.0.0.1:9090`, a port only Prometheus reaches); the public port then answers 404 for `/metrics`. Unset: `/metrics` on SECKILL_HTTP_ADDR"),
		DBDSN: r.String("SECKILL_DB_DSN", "",
			"MySQL/MariaDB DSN (`user:pass@tcp(host:3306)/db`; a secret when it holds a password). Unset: an embedded SQLite file under SECKILL_DATA_DIR (the notifier requires a DSN)"),
		DataDir: r.String("SECKILL_DATA_DIR", "./data",
			"where embedded state lives: the SQLite file and the embedded queue's store"),
		DBMaxOpenConns: r.DefaultText("16 on MySQL, 4 on SQLite").PositiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0,
			"database connections one process may open; workers × this must fit the server's `max_connections`"),
		DBMaxIdleConns: r.DefaultText("SECKILL_DB_MAX_OPEN_CONNS").PositiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0,
			"idle database connections kept, at most SECKILL_DB_MAX_OPEN_CONNS"),
		DBConnMaxLifetime: r.Duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute,
			"database connections are closed and replaced after this long"),
		MQ: r.OneOf("SECKILL_MQ", "embedded", []string{"embedded", "nats", "kafka"},
			"the queue: `embedded` (NATS JetStream inside the process, stored under `SECKILL_DATA_DIR/queue`; the all-in-one only), `nats` (a NATS cluster, 2.12 or later) or `kafka`"),
		NATSURL: r.String("SECKILL_NATS_URL", "",
			"comma-separated `nats://` or `tls://` URLs of the NATS cluster; required with `SECKILL_MQ=nats`"),
		NATSReplicas: r.PositiveInt("SECKILL_NATS_REPLICAS", 1,
			"replicas of the NATS JetStream streams the process creates, 1 to 5: 3 on a 3-node cluster, so a stored message survives the loss of a node"),
		KafkaBrokers: r.List("SECKILL_KAFKA_BROKERS",
			"comma-separated `host:port` of the Kafka brokers; required with `SECKILL_MQ=kafka`"),
		KafkaPartitions: r.PositiveInt("SECKILL_KAFKA_PARTITIONS", 12,
			"partitions of the Kafka topics created at start: the most order workers that can share the load"),
		KafkaReplication: r.PositiveInt("SECKILL_KAFKA_REPLICATION", 1,
			"replication factor of the Kafka topics created at start (3 for a real cluster)"),
		KafkaSessionTimeout: r.Duration("SECKILL_KAFKA_SESSION_TIMEOUT", 30*time.Second,
			"how long a silent Kafka consumer keeps its partitions before the group gives them to the others: the pause after a worker crash"),
		LogLevel: r.OneOf("SECKILL_LOG_LEVEL", "info", []string{"debug", "info", "warn", "error"},
			"least severe log level written"),
		ShutdownTimeout: r.Duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second, process.ShutdownTimeoutHelp),
		StartWait:       r.NonNegativeDuration("SECKILL_START_WAIT", process.DefaultStartWait, process.StartWaitHelp),
		Demo: r.DefaultText("true when every backend is embedded (only the all-in-one can be)").Bool("SECKILL_DEMO", false,
			"demo mode: text logs; in the all-in-one and the gateway also the demo login, a seeded demo activity, buy tokens off and generated secrets; in the notifier, mail and SMS without a server go to the log"),
		Tracing: tracing.FromEnv(r, ServiceName),
	}
	s.LogFormat = r.DefaultText("text in demo mode, json otherwise").
		OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[s.Demo], []string{"text", "json"}, "log line format")
	if _, _, err := net.SplitHostPort(s.HTTPAddr); err != nil {
		r.Fail("SECKILL_HTTP_ADDR", "must be host:port (e.g. :8080), got %q", s.HTTPAddr)
	}
	if s.MetricsAddr != "" {
		if err := process.CheckMetricsAddr(s.MetricsAddr, s.HTTPAddr); err != nil {
			r.Fail("SECKILL_METRICS_ADDR", "%v", err)
		}
	}
	switch s.MQ {
	case "kafka":
		if len(s.KafkaBrokers) == 0 {
			r.Fail("SECKILL_KAFKA_BROKERS", "is required when SECKILL_MQ=kafka")
		}
	case "nats":
		if s.NATSURL == "" {
			r.Fail("SECKILL_NATS_URL", "is required when SECKILL_MQ=nats")
		}
		for _, u := range strings.Split(s.NATSURL, ",") {
			if u = strings.TrimSpace(u); u != "" && !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
				r.Fail("SECKILL_NATS_URL", "%q must start with nats:// or tls://", u)
			}
		}
	default:
		r.Fail("SECKILL_MQ", "must be nats or kafka for seckill-notifier (the embedded queue lives inside one process; the all-in-one seckill binary runs the notifier itself)")
	}
	for _, b := range s.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			r.Fail("SECKILL_KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	if s.DBDSN == "" {
		r.Fail("SECKILL_DB_DSN", "is required: the notifier keeps contacts and its notification ledger in the shared database")
	}
	s.Delivery = ReadConfig(r, s.Demo)
	if m, t := s.Delivery.Channels(); !m && !t {
		r.Fail("SECKILL_SMTP_URL", "nothing to send: set SECKILL_SMTP_URL and/or SECKILL_SMS_WEBHOOK_URL (or SECKILL_DEMO=true to write notifications to the log)")
	}
	return s
}
