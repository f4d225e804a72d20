package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// Main is the whole of the seckill-order-worker binary (platform/process.Main):
// flags, configuration from getenv, run until SIGINT/SIGTERM, exit code.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1 (the distroless image has no curl).
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return process.Main("seckill order-worker", args, getenv, stderr, func(ctx context.Context) error {
		return Run(ctx, getenv, stdout, stderr, nil)
	})
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
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(Addrs)) error {
	cfg, err := LoadProcessConfig(getenv)
	if err != nil {
		return process.InvalidConfig(err)
	}
	log := process.NewLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	reg := process.NewRegistry()

	// closers close what has been opened, in reverse order: at the end of a
	// start that failed (their errors dropped: the start's is the one to
	// see), or as the last step of the shutdown.
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil {
				errs = append(errs, cerr)
			}
		}
		closers = nil
		return errors.Join(errs...)
	}
	defer func() { _ = closeAll() }()

	// First opened, last closed: the shutdown's own spans are flushed.
	tr, err := tracing.Start(ctx, cfg.Tracing)
	if err != nil {
		return fmt.Errorf("tracing (%s): %w", tracing.EndpointVar, err)
	}
	closers = append(closers, func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return tr.Shutdown(sctx)
	})

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

	gdb, err := sqldb.Open(ctx, sqldb.Config{
		DSN: cfg.DBDSN, DataDir: cfg.DataDir, Logger: log,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
		TracerProvider: tr.TracerProvider(),
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
		TracerProvider: tr.TracerProvider(), MQ: tr.MQ(),
	})
	if err != nil {
		return err
	}
	if err := svc.RestoreAll(ctx); err != nil {
		return err
	}

	readyFn := process.Readiness(
		process.Check{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		process.Check{Name: "database", Ping: db.Ping},
		process.Check{Name: "queue", Ping: q.Ping},
	)
	ops, err := process.ServeOps(process.OpsConfig{
		Addr: cfg.HTTPAddr, MetricsAddr: cfg.MetricsAddr, Registry: reg, Ready: readyFn, Logger: log,
	})
	if err != nil {
		return err
	}
	log.Info("seckill ready to start", "role", "order-worker", "config", cfg.Redacted())
	addrs := Addrs{HTTP: ops.Addr(), Metrics: ops.MetricsAddr()}
	metricsAt := "http://" + addrs.HTTP
	if addrs.Metrics != "" {
		metricsAt = "http://" + addrs.Metrics
	}
	printBanner(stdout, cfg, addrs.HTTP, metricsAt)
	if ready != nil {
		ready(addrs)
	}

	return process.Serve(ctx, process.Service{
		Ops: ops, Timeout: cfg.ShutdownTimeout, Logger: log, Draining: "finishing requests and draining the queue",
		// The listeners within the timeout; then the order messages in
		// hand are written (bounded by the service's DrainTimeout, the
		// same SECKILL_SHUTDOWN_TIMEOUT) and the backends closed.
		Stop: func(ctx context.Context) error {
			if err := ops.Shutdown(ctx); err != nil {
				return err
			}
			return closeAll()
		},
	})
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
