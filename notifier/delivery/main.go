package delivery

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/flashsale/seckill/mq/backend"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/process"
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

// Run runs the standalone notifier until ctx is done, then stops it within
// SECKILL_SHUTDOWN_TIMEOUT: the listeners, the retrier, the queue (the
// events in hand finish and their offsets are committed), the database and
// tracing. ready, when not nil, receives the listen address once the
// notifier consumes (tests).
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(addr string)) error {
	cfg, err := LoadProcessConfig(getenv)
	if err != nil {
		return process.InvalidConfig(err)
	}
	log := process.NewLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	lc := process.NewLifecycle(log)
	lc.WaitForBackends(cfg.StartWait)
	b := &service.Backends{Registry: process.NewRegistry(), Log: log}
	b.Register(lc, backends(cfg))
	Register(lc, b, cfg.Delivery, Deps{})
	ops := process.RegisterOps(lc, []string{ComponentNotifier}, func() process.OpsConfig {
		return process.OpsConfig{
			Addr: cfg.HTTPAddr, MetricsAddr: cfg.MetricsAddr, Registry: b.Registry, Logger: log,
			Ready: process.Readiness(b.Checks()...),
		}
	})
	if err := process.BackendUp(b.Registry, 2*time.Second, b.Checks); err != nil {
		return err
	}
	if err := lc.Start(ctx, cfg.ShutdownTimeout, process.ComponentHTTP); err != nil {
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
		Ops: ops.Ops, Stop: lc.Stop, Timeout: cfg.ShutdownTimeout, Logger: log, Draining: "finishing the events in hand",
	})
}

// backends is how the notifier reaches its database and queue: the shared
// settings, as the order side reads them. It declares its own consumer
// group, so events published before it first subscribes are kept.
func backends(cfg ProcessConfig) service.BackendConfig {
	return service.BackendConfig{
		Tracing: cfg.Tracing,
		DB: sqldb.Config{
			DSN: cfg.DBDSN, DataDir: cfg.DataDir,
			MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
		},
		Queue: backend.Config{
			Backend: cfg.MQ, NATSURL: cfg.NATSURL, Replicas: cfg.NATSReplicas,
			Groups:       map[string][]string{ordermsg.TopicOrderEvents: {notifier.Group}},
			KafkaBrokers: cfg.KafkaBrokers, KafkaPartitions: cfg.KafkaPartitions, KafkaReplication: cfg.KafkaReplication,
			KafkaSessionTimeout: cfg.KafkaSessionTimeout, ClientID: "seckill-notifier", CloseTimeout: cfg.ShutdownTimeout,
		},
	}
}
