package service

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/kafka"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/config"
	"github.com/flashsale/seckill/order"
)

// Main is the whole of the seckill-notifier binary: flags, configuration
// from getenv, run until SIGINT/SIGTERM, exit code.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1 (the distroless image has no curl).
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seckill-notifier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	health := fs.Bool("healthcheck", false, "probe GET /healthz on SECKILL_HTTP_ADDR and exit 0 if healthy")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *health {
		if err := healthcheck(getenv("SECKILL_HTTP_ADDR")); err != nil {
			fmt.Fprintln(stderr, "unhealthy:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, getenv, stdout, stderr, nil); err != nil {
		fmt.Fprintf(stderr, "seckill-notifier: %v\n", err)
		return 1
	}
	return 0
}

func healthcheck(addr string) error {
	if addr == "" {
		addr = ":8080"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("SECKILL_HTTP_ADDR %q: %w", addr, err)
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %d", resp.StatusCode)
	}
	return nil
}

// Run runs the standalone notifier until ctx is done, then shuts down: stop
// serving, stop fetching and finish the events in hand (their offsets are
// committed), stop the retrier, close the database. ready, when not nil,
// receives the listen address once the notifier consumes (tests).
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(addr string)) error {
	cfg, err := config.LoadService(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	log := newLogger(cfg, stderr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := order.OpenDB(ctx, order.DBConfig{
		DSN: cfg.DBDSN, DataDir: cfg.DataDir, Logger: log,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
	})
	if err != nil {
		return fmt.Errorf("database (SECKILL_DB_DSN): %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("database (SECKILL_DB_DSN): %w", err)
	}
	defer sqlDB.Close()

	broker, err := openQueue(ctx, cfg, log)
	if err != nil {
		return err
	}
	brokerClosed := false
	closeBroker := func() error {
		if brokerClosed {
			return nil
		}
		brokerClosed = true
		return broker.Close()
	}
	defer closeBroker()

	n, err := Start(ctx, cfg.Delivery, Deps{DB: db, Subscriber: broker, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	defer n.Close()

	readyFn := func(ctx context.Context) error {
		var errs []error
		if err := sqlDB.PingContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("database: %w", err))
		}
		if err := broker.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("queue (%s): %w", cfg.MQ, err))
		}
		return errors.Join(errs...)
	}
	ops, err := serveOps(cfg, reg, readyFn)
	if err != nil {
		return err
	}
	metricsAt := ops.addr()
	if m := ops.metricsAddr(); m != "" {
		metricsAt = m
	}
	fmt.Fprintf(stdout, "seckill-notifier consuming %s (group %s); health on http://%s/healthz /readyz, metrics on http://%s/metrics\n",
		order.TopicOrderEvents, notifier.Group, ops.addr(), metricsAt)
	if ready != nil {
		ready(ops.addr())
	}

	select {
	case <-ctx.Done():
	case err := <-ops.served:
		_ = ops.shutdown(context.Background())
		return fmt.Errorf("http server stopped: %w", err)
	}
	log.Info("shutting down: finishing the events in hand")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := ops.shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := closeBroker(); err != nil {
		errs = append(errs, fmt.Errorf("queue (%s): %w", cfg.MQ, err))
	}
	if err := n.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// opsServers are the notifier's HTTP listeners: the ops port
// (SECKILL_HTTP_ADDR) and, when SECKILL_METRICS_ADDR is set, a listener of
// its own for /metrics, which the ops port then answers 404 for.
type opsServers struct {
	ops, metrics     *http.Server // metrics nil: /metrics is on ops
	opsLn, metricsLn net.Listener
	served           chan error // the first listener that stops by itself
}

// serveOps listens on cfg's addresses and serves in the background.
func serveOps(cfg config.Service, reg *prometheus.Registry, ready func(context.Context) error) (*opsServers, error) {
	o := &opsServers{served: make(chan error, 2)}
	var err error
	if o.opsLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("SECKILL_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	opsReg := reg
	if cfg.MetricsAddr != "" {
		if o.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			o.opsLn.Close()
			return nil, fmt.Errorf("SECKILL_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		opsReg = nil
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		o.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { o.served <- o.metrics.Serve(o.metricsLn) }()
	}
	o.ops = &http.Server{Handler: OpsHandler(opsReg, ready), ReadHeaderTimeout: 5 * time.Second}
	go func() { o.served <- o.ops.Serve(o.opsLn) }()
	return o, nil
}

// addr is the ops port's address; metricsAddr the metrics listener's, or
// "" when /metrics is on the ops port.
func (o *opsServers) addr() string { return o.opsLn.Addr().String() }

func (o *opsServers) metricsAddr() string {
	if o.metricsLn == nil {
		return ""
	}
	return o.metricsLn.Addr().String()
}

// shutdown stops both listeners, finishing the requests in flight.
func (o *opsServers) shutdown(ctx context.Context) error {
	var errs []error
	if err := o.ops.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if o.metrics != nil {
		if err := o.metrics.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics listener: %w", err))
		}
	}
	return errors.Join(errs...)
}

// OpsHandler serves /healthz (the process runs), /readyz (ready reports the
// backends reachable; 503 naming the failing one) and /metrics of reg. A nil
// reg leaves /metrics out (404): it is served on SECKILL_METRICS_ADDR.
func OpsHandler(reg *prometheus.Registry, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "UNAVAILABLE", "message": "not ready: " + err.Error()})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	return mux
}

func newLogger(cfg config.Service, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by LoadService
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// queue is what the notifier needs of its queue backend.
type queue interface {
	mq.Subscriber
	Ping(ctx context.Context) error
}

// openQueue connects the configured backend: a NATS cluster (the order
// events stream and this group are created if missing, so events published
// before the first notifier started are kept) or Kafka.
func openQueue(ctx context.Context, cfg config.Service, log *slog.Logger) (queue, error) {
	if cfg.MQ == "nats" {
		b, err := natsjs.New(ctx, natsjs.Config{
			URL: cfg.NATSURL, DrainTimeout: cfg.ShutdownTimeout, Logger: log,
			Groups: map[string][]string{order.TopicOrderEvents: {notifier.Group}},
		})
		if err != nil {
			return nil, fmt.Errorf("nats (SECKILL_NATS_URL): %w", err)
		}
		return b, nil
	}
	b, err := kafka.New(ctx, kafka.Config{
		Brokers: cfg.KafkaBrokers, ClientID: "seckill-notifier",
		Partitions: cfg.KafkaPartitions, ReplicationFactor: cfg.KafkaReplication,
		SessionTimeout: cfg.KafkaSessionTimeout, RebalanceTimeout: cfg.KafkaSessionTimeout,
		HeartbeatInterval: max(cfg.KafkaSessionTimeout/10, 100*time.Millisecond),
		CloseTimeout:      cfg.ShutdownTimeout,
		Logger:            log,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): %w", err)
	}
	if err := b.EnsureTopics(ctx, order.TopicOrderEvents); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): create topics: %w", err)
	}
	return b, nil
}
