package app

import (
	"context"
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

	"github.com/flashsale/seckill/gateway/config"
)

// Main is the whole of a service binary's main: it parses the flags, runs
// the role until SIGINT/SIGTERM and returns the exit code.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1, for container health checks in images without a
//	              shell or curl.
func Main(role Role, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(role.String(), flag.ContinueOnError)
	fs.SetOutput(stderr)
	health := fs.Bool("healthcheck", false, "probe GET /healthz on SECKILL_HTTP_ADDR and exit 0 if healthy")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *health {
		if err := Healthcheck(getenv("SECKILL_HTTP_ADDR")); err != nil {
			fmt.Fprintln(stderr, "unhealthy:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, role, getenv, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "seckill %s: %v\n", role, err)
		return 1
	}
	return 0
}

// Healthcheck asks the local process listening on addr (":8080" style;
// empty = the default) for /healthz.
func Healthcheck(addr string) error {
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

// Run starts role with the configuration from getenv and blocks until ctx is
// done, then shuts down gracefully (stop accepting, drain, close).
func Run(ctx context.Context, role Role, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	log := NewLogger(cfg, stderr)
	a, err := New(ctx, cfg, log, role)
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

	<-ctx.Done()
	log.Info("shutting down: finishing requests and draining the queue")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// NewLogger builds the process logger: text for people in demo mode, JSON
// for log pipelines otherwise.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config.Load
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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
	fmt.Fprintf(w, "\nseckill %s is running (%s, queue: %s)\n", a.role, mode, a.cfg.MQ)
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
