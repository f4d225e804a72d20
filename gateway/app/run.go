package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/platform/process"
)

// Main is the whole of a service binary's main (platform/process.Main): it
// parses the flags, runs the target until SIGINT/SIGTERM and returns the exit
// code.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1, for container health checks in images without a
//	              shell or curl.
func Main(target Target, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return process.Main("seckill "+target.String(), args, getenv, stderr, func(ctx context.Context) error {
		return Run(ctx, target, getenv, stdout, stderr)
	})
}

// Run starts target with the configuration from getenv and blocks until ctx is
// done, then shuts down gracefully (stop accepting, drain, close) within
// SECKILL_SHUTDOWN_TIMEOUT.
func Run(ctx context.Context, target Target, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return process.InvalidConfig(err)
	}
	log := process.NewLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	a, err := New(ctx, cfg, log, target)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return errors.Join(err, a.Shutdown(context.Background()))
	}
	a.printBanner(stdout)
	if cfg.Demo {
		act, err := a.SeedDemo(ctx)
		if err != nil {
			return errors.Join(err, a.Shutdown(context.Background()))
		}
		fmt.Fprintf(stdout, "  demo activity %d: %q, %d units, starts %s\n\n", act.ID, act.Name, act.Stock, act.StartsAt.Format("15:04:05 MST"))
	}
	return process.Serve(ctx, process.Service{
		Ops: a.ops.Ops, Stop: a.Shutdown, Timeout: cfg.ShutdownTimeout, Logger: log,
		Draining: "finishing requests and draining the queue",
	})
}

// printBanner tells the operator where to go. A generated demo admin token
// is printed here, on stdout, once: it is never written to the logs.
func (a *App) printBanner(w io.Writer) {
	host, port, _ := net.SplitHostPort(a.Addr())
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	mode := map[bool]string{true: "demo mode", false: "production mode"}[a.cfg.Demo]
	fmt.Fprintf(w, "\nseckill %s is running (%s, queue: %s)\n", a.target, mode, a.cfg.MQ)
	fmt.Fprintf(w, "  sale page        %s/\n", base)
	fmt.Fprintf(w, "  live dashboard   %s/dashboard\n", base)
	fmt.Fprintf(w, "  API              %s/api/v1/activities/{id}\n", base)
	metrics := base
	if a.cfg.MetricsAddr != "" {
		metrics = "http://" + a.MetricsAddr()
	}
	fmt.Fprintf(w, "  health, metrics  %s/healthz  %s/readyz  %s/metrics\n", base, base, metrics)
	if a.cfg.GeneratedAdminToken {
		fmt.Fprintf(w, "  admin token      %s   (random per start; set SECKILL_ADMIN_TOKEN to fix it)\n", a.cfg.AdminToken)
	}
}
