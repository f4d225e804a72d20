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

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// Main is the whole of the seckill-order-worker binary: flags,
// configuration from getenv, run until SIGINT/SIGTERM, exit code.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1 (the distroless image has no curl).
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seckill-order-worker", flag.ContinueOnError)
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
		fmt.Fprintf(stderr, "seckill order-worker: %v\n", err)
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

// Addrs are where a running order worker listens.
type Addrs struct {
	HTTP    string // /healthz, /readyz and, unless Metrics is set, /metrics
	Metrics string // SECKILL_METRICS_ADDR's listener; "" when /metrics is on HTTP
}

// Run runs the standalone order worker until ctx is done, then shuts down:
// stop serving, wait for the order messages to be written (up to
// SECKILL_SHUTDOWN_TIMEOUT, on NATS), close the queue (on Kafka, only handled
// offsets are committed), the worker, the database and Redis. ready, when
// not nil, receives the listen addresses once the worker consumes (tests).
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(Addrs)) (err error) {
	cfg, err := LoadProcessConfig(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	log := newLogger(cfg, stderr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var closers []func() error // in reverse order at the end
	stopping := false          // a shutdown, not a failed start
	defer func() {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil {
				errs = append(errs, cerr)
			}
		}
		if cerr := errors.Join(errs...); cerr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", cerr)
		}
		if err == nil && stopping {
			log.Info("stopped cleanly")
		}
	}()

	rdb, err := inventory.NewClient(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis (SECKILL_REDIS_URL): %w", err)
	}
	closers = append(closers, func() error {
		if err := rdb.Close(); err != nil {
			return fmt.Errorf("close redis: %w", err)
		}
		return nil
	})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("redis (SECKILL_REDIS_URL) unreachable: %w", err)
	}

	gdb, err := order.OpenDB(ctx, order.DBConfig{
		DSN: cfg.DBDSN, DataDir: cfg.DataDir, Logger: log,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
	})
	if err != nil {
		return fmt.Errorf("database (SECKILL_DB_DSN): %w", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return fmt.Errorf("database (SECKILL_DB_DSN): %w", err)
	}
	closers = append(closers, func() error {
		if err := sqlDB.Close(); err != nil {
			return fmt.Errorf("close database: %w", err)
		}
		return nil
	})
	if err := order.Migrate(ctx, gdb); err != nil {
		return fmt.Errorf("database migrations: %w", err)
	}
	db := order.NewStore(gdb)
	inv := inventory.New(rdb, inventory.Options{Prefix: cfg.RedisPrefix})

	q, err := OpenQueue(ctx, QueueConfig{
		Backend: cfg.MQ, NATSURL: cfg.NATSURL, Capacity: cfg.QueueCapacity,
		KafkaBrokers: cfg.KafkaBrokers, KafkaPartitions: cfg.KafkaPartitions, KafkaReplication: cfg.KafkaReplication,
		KafkaSessionTimeout: cfg.KafkaSessionTimeout, ClientID: "seckill-order-worker",
		CloseTimeout: cfg.ShutdownTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	var svc *Service
	// Drain before the queue closes, the worker after it (its handlers
	// are done by then).
	closers = append(closers, func() error { return svc.Close() })
	closers = append(closers, func() error {
		svc.Drain()
		if err := q.Close(); err != nil {
			return fmt.Errorf("drain queue: %w", err)
		}
		return nil
	})
	q.RegisterMetrics(reg)

	svc, err = Start(ctx, cfg.Service, Deps{
		DB: db, Inventory: inv, Queue: q, QueueReader: q.Reader(), Registerer: reg, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := svc.RestoreAll(ctx); err != nil {
		return err
	}

	readyFn := func(ctx context.Context) error {
		var errs []error
		if err := rdb.Ping(ctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
		if err := db.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("database: %w", err))
		}
		if err := q.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("queue (%s): %w", cfg.MQ, err))
		}
		return errors.Join(errs...)
	}
	ops, err := serveOps(cfg, reg, readyFn)
	if err != nil {
		return err
	}
	log.Info("seckill ready to start", "role", "order-worker", "config", cfg.Redacted())
	addrs := Addrs{HTTP: ops.opsLn.Addr().String()}
	metricsAt := "http://" + addrs.HTTP
	if ops.metricsLn != nil {
		addrs.Metrics = ops.metricsLn.Addr().String()
		metricsAt = "http://" + addrs.Metrics
	}
	printBanner(stdout, cfg, addrs.HTTP, metricsAt)
	if ready != nil {
		ready(addrs)
	}

	select {
	case <-ctx.Done():
	case err := <-ops.served:
		_ = ops.shutdown(context.Background())
		return fmt.Errorf("http server stopped: %w", err)
	}
	log.Info("shutting down: finishing requests and draining the queue")
	sctx, cancelShutdown := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelShutdown()
	if err := ops.shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: http shutdown: %w", err)
	}
	stopping = true
	return nil
}

// printBanner tells the operator where to look.
func printBanner(w io.Writer, cfg ProcessConfig, addr, metricsAt string) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(w, "\nseckill order-worker is running (production mode, queue: %s)\n", cfg.MQ)
	fmt.Fprintf(w, "  health, metrics  %s/healthz  %s/readyz  %s/metrics\n", base, base, metricsAt)
}

// opsServers are the worker's HTTP listeners: the ops port
// (SECKILL_HTTP_ADDR) and, when SECKILL_METRICS_ADDR is set, a listener of
// its own for /metrics, which the ops port then answers 404 for.
type opsServers struct {
	ops, metrics     *http.Server // metrics nil: /metrics is on ops
	opsLn, metricsLn net.Listener
	served           chan error // the first listener that stops by itself
}

func serveOps(cfg ProcessConfig, reg *prometheus.Registry, ready func(context.Context) error) (*opsServers, error) {
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
		o.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { o.served <- o.metrics.Serve(o.metricsLn) }()
	}
	o.ops = &http.Server{
		Handler: OpsHandler(opsReg, ready), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	go func() { o.served <- o.ops.Serve(o.opsLn) }()
	return o, nil
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

// OpsHandler serves what an order worker exposes: /healthz (the process
// runs), /readyz (ready reports the backends reachable; 503 naming the
// failing one) and /metrics of reg. A nil reg leaves /metrics out (404): it
// is served on SECKILL_METRICS_ADDR.
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

func newLogger(cfg ProcessConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by LoadProcessConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
