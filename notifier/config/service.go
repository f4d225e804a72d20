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
	MetricsAddr         string        // SECKILL_METRICS_ADDR: /metrics here instead, on its own listener; empty = on HTTPAddr
	DBDSN               string        // SECKILL_DB_DSN (MySQL); required
	DataDir             string        // SECKILL_DATA_DIR
	DBMaxOpenConns      int           // SECKILL_DB_MAX_OPEN_CONNS
	DBMaxIdleConns      int           // SECKILL_DB_MAX_IDLE_CONNS
	DBConnMaxLifetime   time.Duration // SECKILL_DB_CONN_MAX_LIFETIME
	MQ                  string        // SECKILL_MQ: nats or kafka
	NATSURL             string        // SECKILL_NATS_URL
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
		"SECKILL_HTTP_ADDR", "SECKILL_METRICS_ADDR", "SECKILL_DB_DSN", "SECKILL_DATA_DIR",
		"SECKILL_DB_MAX_OPEN_CONNS", "SECKILL_DB_MAX_IDLE_CONNS", "SECKILL_DB_CONN_MAX_LIFETIME",
		"SECKILL_MQ", "SECKILL_NATS_URL", "SECKILL_KAFKA_BROKERS", "SECKILL_KAFKA_PARTITIONS", "SECKILL_KAFKA_REPLICATION",
		"SECKILL_KAFKA_SESSION_TIMEOUT", "SECKILL_LOG_FORMAT", "SECKILL_LOG_LEVEL", "SECKILL_SHUTDOWN_TIMEOUT",
		"SECKILL_DEMO",
	}, Names()...)
}

// LoadService reads the standalone notifier's configuration. The notifier
// runs apart from the gateway on NATS or Kafka (the embedded queue lives
// inside one process), and needs the shared database (contacts, notifications).
func LoadService(getenv func(string) string) (Service, error) {
	p := &parser{getenv: getenv}
	s := Service{
		HTTPAddr:            p.str("SECKILL_HTTP_ADDR", ":8080"),
		MetricsAddr:         p.str("SECKILL_METRICS_ADDR", ""),
		DBDSN:               p.str("SECKILL_DB_DSN", ""),
		DataDir:             p.str("SECKILL_DATA_DIR", "./data"),
		DBMaxOpenConns:      p.positiveInt("SECKILL_DB_MAX_OPEN_CONNS", 0),
		DBMaxIdleConns:      p.positiveInt("SECKILL_DB_MAX_IDLE_CONNS", 0),
		DBConnMaxLifetime:   p.duration("SECKILL_DB_CONN_MAX_LIFETIME", 5*time.Minute),
		MQ:                  p.oneOf("SECKILL_MQ", "embedded", "embedded", "nats", "kafka"),
		NATSURL:             p.str("SECKILL_NATS_URL", ""),
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
	if s.MetricsAddr != "" {
		if msg := metricsAddrProblem(s.MetricsAddr, s.HTTPAddr); msg != "" {
			p.fail("SECKILL_METRICS_ADDR", "%s", msg)
		}
	}
	switch s.MQ {
	case "kafka":
		if len(s.KafkaBrokers) == 0 {
			p.fail("SECKILL_KAFKA_BROKERS", "is required when SECKILL_MQ=kafka")
		}
	case "nats":
		if s.NATSURL == "" {
			p.fail("SECKILL_NATS_URL", "is required when SECKILL_MQ=nats")
		}
		for _, u := range strings.Split(s.NATSURL, ",") {
			if u = strings.TrimSpace(u); u != "" && !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
				p.fail("SECKILL_NATS_URL", "%q must start with nats:// or tls://", u)
			}
		}
	default:
		p.fail("SECKILL_MQ", "must be nats or kafka for seckill-notifier (the embedded queue lives inside one process; the all-in-one seckill binary runs the notifier itself)")
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
