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

	"github.com/flashsale/seckill/mq/kafka"
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

	broker, err := kafka.New(ctx, kafka.Config{
		Brokers: cfg.KafkaBrokers, ClientID: "seckill-notifier",
		Partitions: cfg.KafkaPartitions, ReplicationFactor: cfg.KafkaReplication,
		SessionTimeout: cfg.KafkaSessionTimeout, RebalanceTimeout: cfg.KafkaSessionTimeout,
		HeartbeatInterval: max(cfg.KafkaSessionTimeout/10, 100*time.Millisecond),
		CloseTimeout:      cfg.ShutdownTimeout,
		Logger:            log,
	})
	if err != nil {
		return fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): %w", err)
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
	if err := broker.EnsureTopics(ctx, order.TopicOrderEvents); err != nil {
		return fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): create topics: %w", err)
	}

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
			errs = append(errs, fmt.Errorf("kafka: %w", err))
		}
		return errors.Join(errs...)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("SECKILL_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: OpsHandler(reg, readyFn), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "seckill-notifier consuming %s (group %s); health and metrics on http://%s/healthz /readyz /metrics\n",
		order.TopicOrderEvents, notifier.Group, ln.Addr())
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http server stopped: %w", err)
	}
	log.Info("shutting down: finishing the events in hand")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := closeBroker(); err != nil {
		errs = append(errs, fmt.Errorf("kafka: %w", err))
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

// OpsHandler serves /healthz (the process runs), /readyz (ready reports the
// backends reachable; 503 naming the failing one) and /metrics.
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
