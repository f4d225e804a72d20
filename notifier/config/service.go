package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Service is the configuration of the seckill-notifier binary: Delivery
// plus the settings every seckill service shares. The shared names mean
// what the README's configuration table says.
type Service struct {
	Delivery Delivery

	HTTPAddr            string        // SECKILL_HTTP_ADDR: /healthz, /readyz, /metrics
	DBDSN               string        // SECKILL_DB_DSN (MySQL); required
	DataDir             string        // SECKILL_DATA_DIR
	DBMaxOpenConns      int           // SECKILL_DB_MAX_OPEN_CONNS
	DBMaxIdleConns      int           // SECKILL_DB_MAX_IDLE_CONNS
	DBConnMaxLifetime   time.Duration // SECKILL_DB_CONN_MAX_LIFETIME
	MQ                  string        // SECKILL_MQ: must be kafka
	KafkaBrokers        []string      // SECKILL_KAFKA_BROKERS
	KafkaPartitions     int           // SECKILL_KAFKA_PARTITIONS
	KafkaReplication    int           // SECKILL_KAFKA_REPLICATION
	KafkaSessionTimeout time.Duration // SECKILL_KAFKA_SESSION_TIMEOUT
	LogFormat           string        // SECKILL_LOG_FORMAT
	LogLevel            string        // SECKILL_LOG_LEVEL
	ShutdownTimeout     time.Duration // SECKILL_SHUTDOWN_TIMEOUT
	Demo                bool          // SECKILL_DEMO: unconfigured channels log instead of staying off
}

// ServiceNames lists every variable LoadService reads.
func ServiceNames() []string {
	return append([]string{
		"SECKILL_HTTP_ADDR", "SECKILL_DB_DSN", "SECKILL_DATA_DIR",
		"SECKILL_DB_MAX_OPEN_CONNS", "SECKILL_DB_MAX_IDLE_CONNS", "SECKILL_DB_CONN_MAX_LIFETIME",
		"SECKILL_MQ", "SECKILL_KAFKA_BROKERS", "SECKILL_KAFKA_PARTITIONS", "SECKILL_KAFKA_REPLICATION",
		"SECKILL_KAFKA_SESSION_TIMEOUT", "SECKILL_LOG_FORMAT", "SECKILL_LOG_LEVEL", "SECKILL_SHUTDOWN_TIMEOUT",
		"SECKILL_DEMO",
	}, Names()...)
}

// LoadService reads the standalone notifier's configuration. The notifier
// runs apart from the gateway only on Kafka (the embedded queue lives inside
// one process), and needs the shared database (contacts, notifications).
func LoadService(getenv func(string) string) (Service, error) {
	p := &parser{getenv: getenv}
	s := Service{
		HTTPAddr:            p.str("SECKILL_HTTP_ADDR", ":8080"),
		DBDSN:               p.str("SECKILL_DB_DSN", ""),
		DataDir:             p.str("SECKILL_DATA_DIR", "./data"),
		DBMaxOpenConns:      p.positiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0),
		DBMaxIdleConns:      p.positiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0),
		DBConnMaxLifetime:   p.duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute),
		MQ:                  p.oneOf("SECKILL_MQ", "embedded", "embedded", "kafka"),
		KafkaBrokers:        p.list("SECKILL_KAFKA_BROKERS"),
		KafkaPartitions:     p.positiveInt("SECKILL_KAFKA_PARTITIONS", 12),
		KafkaReplication:    p.positiveInt("SECKILL_KAFKA_REPLICATION", 1),
		KafkaSessionTimeout: p.duration("SECKILL_KAFKA_SESSION_TIMEOUT", 30*time.Second),
		LogLevel:            p.oneOf("SECKILL_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout:     p.duration("SECKILL_SHUTDOWN_TIMEOUT", 30*time.Second),
		Demo:                p.boolean("SECKILL_DEMO", false),
	}
	s.LogFormat = p.oneOf("SECKILL_LOG_FORMAT", map[bool]string{true: "text", false: "json"}[s.Demo], "text", "json")
	if _, _, err := net.SplitHostPort(s.HTTPAddr); err != nil {
		p.fail("SECKILL_HTTP_ADDR", "must be host:port (e.g. :8080), got %q", s.HTTPAddr)
	}
	if s.MQ != "kafka" {
		p.fail("SECKILL_MQ", "must be kafka for seckill-notifier (the embedded queue lives inside one process; the all-in-one seckill binary runs the notifier itself)")
	}
	if len(s.KafkaBrokers) == 0 {
		p.fail("SECKILL_KAFKA_BROKERS", "is required")
	}
	for _, b := range s.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			p.fail("SECKILL_KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	if s.DBDSN == "" {
		p.fail("SECKILL_DB_DSN", "is required: the notifier keeps contacts and its notification ledger in the shared database")
	}
	for name, d := range map[string]time.Duration{
		"SECKILL_SHUTDOWN_TIMEOUT": s.ShutdownTimeout, "SECKILL_KAFKA_SESSION_TIMEOUT": s.KafkaSessionTimeout,
		"SECKILL_DB_CONN_MAX_LIFETIME": s.DBConnMaxLifetime,
	} {
		if d <= 0 {
			p.fail(name, "must be a positive duration")
		}
	}
	s.Delivery = loadDelivery(p, s.Demo)
	if m, t := s.Delivery.Channels(); !m && !t {
		p.fail("SECKILL_SMTP_URL", "nothing to send: set SECKILL_SMTP_URL and/or SECKILL_SMS_WEBHOOK_URL (or SECKILL_DEMO=true to write notifications to the log)")
	}
	return s, errors.Join(p.errs...)
}

// parser collects one error per bad variable instead of stopping at the
// first.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, format string, args ...any) {
	for _, e := range p.errs {
		if strings.HasPrefix(e.Error(), name+" ") {
			return // one complaint per variable
		}
	}
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
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		p.fail(name, "must be a positive integer, got %q", v)
		return def
	}
	return n
}

func (p *parser) positiveFloat(name string, def float64) float64 {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f != f || f > 1e9 {
		p.fail(name, "must be a positive number, got %q", v)
		return def
	}
	return f
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, "must be a positive duration like 500ms or 2s, got %q", v)
		return def
	}
	return d
}

func (p *parser) boolean(name string, def bool) bool {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}
