package config

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

// Service is the configuration of the seckill-notifier binary: Delivery
// plus the settings every seckill service shares. The shared names mean
// what the README's configuration table says.
type Service struct {
	Delivery Delivery

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
	Demo                bool          // SECKILL_DEMO: unconfigured channels log instead of staying off
	// Tracing is where spans go (SECKILL_OTEL_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT; off when neither is set) and how many
	// new traces are kept (SECKILL_OTEL_SAMPLE_RATIO).
	Tracing tracing.Config
}

// ServiceNames lists every variable LoadService reads.
func ServiceNames() []string {
	return append([]string{
		"SECKILL_HTTP_ADDR", "SECKILL_METRICS_ADDR", "SECKILL_DB_DSN", "SECKILL_DATA_DIR",
		"SECKILL_DB_MAX_OPEN_CONNS", "SECKILL_DB_MAX_IDLE_CONNS", "SECKILL_DB_CONN_MAX_LIFETIME",
		"SECKILL_MQ", "SECKILL_NATS_URL", "SECKILL_NATS_REPLICAS", "SECKILL_KAFKA_BROKERS", "SECKILL_KAFKA_PARTITIONS", "SECKILL_KAFKA_REPLICATION",
		"SECKILL_KAFKA_SESSION_TIMEOUT", "SECKILL_LOG_FORMAT", "SECKILL_LOG_LEVEL", "SECKILL_SHUTDOWN_TIMEOUT",
		"SECKILL_DEMO",
	}, append(Names(), tracing.Names()...)...)
}

// LoadService reads the standalone notifier's configuration. The notifier
// runs apart from the gateway on NATS or Kafka (the embedded queue lives
// inside one process), and needs the shared database (contacts, notifications).
func LoadService(getenv func(string) string) (Service, error) {
	r := env.New(getenv)
	s := Service{
		HTTPAddr:            r.String("SECKILL_HTTP_ADDR", process.DefaultHTTPAddr),
		MetricsAddr:         r.String("SECKILL_METRICS_ADDR", ""),
		DBDSN:               r.String("SECKILL_DB_DSN", ""),
		DataDir:             r.String("SECKILL_DATA_DIR", "./data"),
		DBMaxOpenConns:      r.PositiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0),
		DBMaxIdleConns:      r.PositiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0),
		DBConnMaxLifetime:   r.Duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute),
		MQ:                  r.OneOf("SECKILL_MQ", "embedded", "embedded", "nats", "kafka"),
		NATSURL:             r.String("SECKILL_NATS_URL", ""),
		NATSReplicas:        r.PositiveInt("SECKILL_NATS_REPLICAS", 1),
		KafkaBrokers:        r.List("SECKILL_KAFKA_BROKERS"),
		KafkaPartitions:     r.PositiveInt("SECKILL_KAFKA_PARTITIONS", 12),
		KafkaReplication:    r.PositiveInt("SECKILL_KAFKA_REPLICATION", 1),
		KafkaSessionTimeout: r.Duration("SECKILL_KAFKA_SESSION_TIMEOUT", 30*time.Second),
		LogLevel:            r.OneOf("SECKILL_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout:     r.Duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second),
		Demo:                r.Bool("SECKILL_DEMO", false),
		Tracing:             tracing.FromEnv(r, ServiceName),
	}
	s.LogFormat = r.OneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[s.Demo], "text", "json")
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
	s.Delivery = ReadDelivery(r, s.Demo)
	if m, t := s.Delivery.Channels(); !m && !t {
		r.Fail("SECKILL_SMTP_URL", "nothing to send: set SECKILL_SMTP_URL and/or SECKILL_SMS_WEBHOOK_URL (or SECKILL_DEMO=true to write notifications to the log)")
	}
	return s, r.Err()
}
