package service

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/platform/process"
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

// Run runs the standalone order worker until ctx is done, then stops it
// within SECKILL_SHUTDOWN_TIMEOUT: the listeners, then the order side (the
// order messages in hand are written first, on NATS), the queue (on Kafka,
// only handled offsets are committed), the database, Redis and tracing.
// ready, when not nil, receives the listen addresses once the worker
// consumes (tests).
func Run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(Addrs)) error {
	cfg, err := LoadProcessConfig(getenv)
	if err != nil {
		return process.InvalidConfig(err)
	}
	log := process.NewLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	lc := process.NewLifecycle(log)
	lc.WaitForBackends(cfg.StartWait)
	b := &Backends{Registry: process.NewRegistry(), Log: log}
	bcfg := cfg.Backends(ServiceName, nil)
	bcfg.Migrations = []func(context.Context, *gorm.DB) error{order.Migrate}
	b.Register(lc, bcfg)
	Register(lc, b, cfg.Service)
	ops := process.RegisterOps(lc, []string{ComponentOrders}, func() process.OpsConfig {
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
		Ops: ops.Ops, Stop: lc.Stop, Timeout: cfg.ShutdownTimeout, Logger: log,
		Draining: "finishing requests and draining the queue",
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
