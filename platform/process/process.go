// Package process is the one runner of the seckill binaries (the all-in-one
// seckill, seckill-gateway, seckill-order-worker, seckill-notifier): the
// flags every binary takes, the signals that stop it, its logger and
// registry, its ops listeners and its graceful shutdown.
//
// A binary's main is process.Main around the service's Run; Run loads its
// configuration (a failure is InvalidConfig), starts its backends and its
// Ops, prints where to look, and hands over to Serve, which waits for
// SIGINT/SIGTERM and stops the service within SECKILL_SHUTDOWN_TIMEOUT.
package process

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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DefaultHTTPAddr is SECKILL_HTTP_ADDR's default, which -healthcheck probes
// when the variable is unset.
const DefaultHTTPAddr = ":8080"

// Main is the whole of a service binary's main: it parses the flags, runs
// run until SIGINT or SIGTERM cancels its context, and returns the exit
// code. name is the binary's name in usage and error messages.
//
//	-healthcheck  GET /healthz on this process's SECKILL_HTTP_ADDR and exit
//	              0 or 1, for container health checks in images without a
//	              shell or curl.
func Main(name string, args []string, getenv func(string) string, stderr io.Writer, run func(ctx context.Context) error) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
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
	// After the first signal, a second one kills at once (Go's default),
	// for an operator who will not wait for the drain. Nothing accepted is
	// lost by that: the queue and the reconciler are built for a kill -9.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// Healthcheck asks the local process listening on addr (":8080" style;
// empty = DefaultHTTPAddr) for /healthz.
func Healthcheck(addr string) error {
	if addr = strings.TrimSpace(addr); addr == "" {
		addr = DefaultHTTPAddr
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

// InvalidConfig is the error Run returns when the configuration does not
// load: the problems, one per line under a heading, so the operator sees
// every bad variable at once. It wraps err.
func InvalidConfig(err error) error { return invalidConfig{err} }

type invalidConfig struct{ err error }

func (e invalidConfig) Error() string {
	return "invalid configuration:\n  " + strings.ReplaceAll(e.err.Error(), "\n", "\n  ")
}

func (e invalidConfig) Unwrap() error { return e.err }

// NewLogger builds the process logger from SECKILL_LOG_FORMAT ("json" for
// log pipelines; anything else is text, for people) and SECKILL_LOG_LEVEL
// (debug, info, warn, error; the config packages validate both).
func NewLogger(format, level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated at load; info otherwise
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// NewRegistry returns the registry a process exports on /metrics, holding
// the Go runtime's and the process's own collectors already.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Service is a started service, as Serve runs it.
type Service struct {
	// Ops are its listeners; one that stops by itself stops the service.
	Ops *Ops
	// Stop stops it: the listeners (Ops.Shutdown), then the work in hand,
	// then the backends. Its context ends after Timeout.
	Stop func(ctx context.Context) error
	// Timeout bounds Stop (SECKILL_SHUTDOWN_TIMEOUT).
	Timeout time.Duration
	// Draining says what Stop finishes, for the log line that starts it
	// (e.g. "finishing requests and draining the queue").
	Draining string
	// Logger receives the shutdown's progress; nil discards it.
	Logger *slog.Logger
}

// Serve blocks until ctx is done (SIGINT, SIGTERM) or a listener of s.Ops
// stops by itself, then runs s.Stop under a context that expires after
// s.Timeout. It returns nil after a clean stop on ctx; otherwise the
// listener's error and Stop's, the latter prefixed "shutdown: ".
func Serve(ctx context.Context, s Service) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-s.Ops.Failed():
		s.Logger.Error("a listener stopped by itself: stopping the service", "err", failed)
	}
	s.Logger.Info("shutting down: " + s.Draining)
	sctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
		return errors.Join(failed, fmt.Errorf("shutdown: %w", err))
	}
	if failed != nil {
		return failed
	}
	s.Logger.Info("stopped cleanly")
	return nil
}
