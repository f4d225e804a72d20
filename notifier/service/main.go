package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/kafka"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/config"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
)

// Main is the whole of the seckill-notifier binary (platform/process.Main):
// flags, configuration from getenv, run until SIGINT/SIGTERM, exit code.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1 (the distroless image has no curl).
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return process.Main("seckill-notifier", args, getenv, stderr, func(ctx context.Context) error {
		return Run(ctx, getenv, stdout, stderr, nil)
	})
}

// Run runs the standalone notifier until ctx is done, then shuts down: stop
// serving, stop fetching and finish the events in hand (their offsets are
// committed), stop the retrier, close the database. ready, when not nil,
// receives the listen address once the notifier consumes (tests).
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(addr string)) error {
	cfg, err := config.LoadService(getenv)
	if err != nil {
		return process.InvalidConfig(err)
	}
	log := process.NewLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	reg := process.NewRegistry()

	// First started, last stopped: the spans of the shutdown are flushed.
	tr, err := tracing.Start(ctx, cfg.Tracing)
	if err != nil {
		return fmt.Errorf("tracing (%s): %w", tracing.EndpointVar, err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}()

	db, err := sqldb.Open(ctx, sqldb.Config{
		DSN: cfg.DBDSN, DataDir: cfg.DataDir, Logger: log,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
		TracerProvider: tr.TracerProvider(),
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

	n, err := Start(ctx, cfg.Delivery, Deps{
		DB: db, Subscriber: broker, Registerer: reg, Logger: log,
		TracerProvider: tr.TracerProvider(), MQ: tr.MQ(),
	})
	if err != nil {
		return err
	}
	defer n.Close()

	readyFn := process.Readiness(
		process.Check{Name: "database", Ping: sqlDB.PingContext},
		process.Check{Name: "queue", Ping: broker.Ping},
	)
	ops, err := serveOps(cfg, reg, readyFn, log)
	if err != nil {
		return err
	}
	metricsAt := ops.Addr()
	if m := ops.MetricsAddr(); m != "" {
		metricsAt = m
	}
	fmt.Fprintf(stdout, "seckill-notifier consuming %s (group %s); health on http://%s/healthz /readyz, metrics on http://%s/metrics\n",
		ordermsg.TopicOrderEvents, notifier.Group, ops.Addr(), metricsAt)
	if ready != nil {
		ready(ops.Addr())
	}

	return process.Serve(ctx, process.Service{
		Ops: ops, Timeout: cfg.ShutdownTimeout, Logger: log, Draining: "finishing the events in hand",
		Stop: func(ctx context.Context) error {
			var errs []error
			if err := ops.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
			if err := closeBroker(); err != nil {
				errs = append(errs, fmt.Errorf("queue (%s): %w", cfg.MQ, err))
			}
			if err := n.Close(); err != nil {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		},
	})
}

// serveOps serves the notifier's /healthz, /readyz and /metrics on
// cfg.HTTPAddr, /metrics on cfg.MetricsAddr instead when that is set.
func serveOps(cfg config.Service, reg *prometheus.Registry, ready func(context.Context) error, log *slog.Logger) (*process.Ops, error) {
	return process.ServeOps(process.OpsConfig{Addr: cfg.HTTPAddr, MetricsAddr: cfg.MetricsAddr, Registry: reg, Ready: ready, Logger: log})
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
			Groups: map[string][]string{ordermsg.TopicOrderEvents: {notifier.Group}},
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
	if err := b.EnsureTopics(ctx, ordermsg.TopicOrderEvents); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("kafka (SECKILL_KAFKA_BROKERS): create topics: %w", err)
	}
	return b, nil
}
