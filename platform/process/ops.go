package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpsConfig is what a process serves on its listeners.
type OpsConfig struct {
	// Addr is SECKILL_HTTP_ADDR: the process's HTTP port.
	Addr string
	// MetricsAddr is SECKILL_METRICS_ADDR: when set, /metrics is served on
	// a listener of its own there, and Addr answers 404 for it, so the
	// series stay off a public port.
	MetricsAddr string
	// Registry is what /metrics exports.
	Registry *prometheus.Registry
	// Ready reports whether the backends are reachable, for /readyz
	// (Readiness builds one); its causes are logged to Logger, only the
	// backends' names reach the caller.
	Ready func(context.Context) error
	// Logger gets what /readyz does not tell the caller. Default: discard.
	Logger *slog.Logger
	// Handler, when set, serves Addr instead of OpsHandler: the gateway's
	// API, which answers /healthz, /readyz and (without MetricsAddr)
	// /metrics itself. Ready is then unused.
	Handler http.Handler
	// OnShutdown runs when Shutdown starts: for requests that never end
	// by themselves (live dashboard streams), which Shutdown would
	// otherwise wait for until its deadline.
	OnShutdown func()
}

// Ops are a process's running listeners: Addr and, with MetricsAddr, the
// metrics listener.
type Ops struct {
	http, metrics     *http.Server // metrics nil: /metrics is on http
	httpLn, metricsLn net.Listener
	failed            chan error // each listener that stopped by itself
	wg                sync.WaitGroup
	shutdownOnce      sync.Once
	shutdownErr       error
}

// ServeOps listens on cfg.Addr (and cfg.MetricsAddr) and serves in the
// background until Shutdown. A listen failure is an error naming its
// variable, and leaves nothing listening.
func ServeOps(cfg OpsConfig) (*Ops, error) {
	o := &Ops{failed: make(chan error, 2)}
	var err error
	if o.httpLn, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("SECKILL_HTTP_ADDR %s: %w", cfg.Addr, err)
	}
	handler, opsReg := cfg.Handler, cfg.Registry
	if cfg.MetricsAddr != "" {
		if o.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			o.httpLn.Close()
			return nil, fmt.Errorf("SECKILL_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		opsReg = nil
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
		o.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
		o.serve(o.metrics, o.metricsLn, "metrics server stopped")
	}
	if handler == nil {
		handler = OpsHandler(opsReg, cfg.Ready, cfg.Logger)
	}
	o.http = &http.Server{
		Handler: handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	if cfg.OnShutdown != nil {
		o.http.RegisterOnShutdown(cfg.OnShutdown)
	}
	o.serve(o.http, o.httpLn, "http server stopped")
	return o, nil
}

// serve runs srv on ln until Shutdown; an earlier end is sent to Failed,
// where Serve picks it up.
func (o *Ops) serve(srv *http.Server, ln net.Listener, what string) {
	o.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.failed <- fmt.Errorf("%s: %w", what, err)
		}
	})
}

// Addr is the address of the HTTP listener (SECKILL_HTTP_ADDR, its port
// resolved).
func (o *Ops) Addr() string { return o.httpLn.Addr().String() }

// MetricsAddr is the address of the metrics listener, or "" when /metrics
// is on Addr.
func (o *Ops) MetricsAddr() string {
	if o.metricsLn == nil {
		return ""
	}
	return o.metricsLn.Addr().String()
}

// Failed delivers the error of each listener that stops by itself (not by
// Shutdown).
func (o *Ops) Failed() <-chan error { return o.failed }

// Shutdown stops both listeners, finishing the requests in flight until ctx
// ends, and waits for their goroutines. Later calls return the first
// call's result.
func (o *Ops) Shutdown(ctx context.Context) error {
	o.shutdownOnce.Do(func() {
		var errs []error
		if err := o.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if o.metrics != nil {
			if err := o.metrics.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("metrics listener shutdown: %w", err))
			}
		}
		o.wg.Wait()
		o.shutdownErr = errors.Join(errs...)
	})
	return o.shutdownErr
}

// OpsHandler serves what a service without an API of its own exposes:
// /healthz (the process runs), /readyz (ready reports the backends
// reachable; 503 naming the failing one) and /metrics of reg. A nil reg
// leaves /metrics out (404): it is served on SECKILL_METRICS_ADDR.
func OpsHandler(reg *prometheus.Registry, ready func(context.Context) error, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
			log.Warn("not ready", "err", err) // the causes; the caller reads only the backends' names
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "UNAVAILABLE", "message": ReadyMessage(err)})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	return mux
}

// CheckMetricsAddr says what is wrong with SECKILL_METRICS_ADDR addr given
// SECKILL_HTTP_ADDR httpAddr, or nil: it must be host:port with a numeric
// port (0 picks a free one), and not the listener of httpAddr, which would
// put /metrics back on the public port it was moved off.
func CheckMetricsAddr(addr, httpAddr string) error {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 0 || n > 65535 {
		return fmt.Errorf("must be host:port (e.g. 127.0.0.1:9090 or :9090), got %q", addr)
	}
	hhost, hport, err := net.SplitHostPort(httpAddr)
	if err != nil || n == 0 || hport != port {
		return nil
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if host == hhost || wildcard(host) || wildcard(hhost) {
		return fmt.Errorf("%q is the listener of SECKILL_HTTP_ADDR (%s): give /metrics a port of its own, or leave it empty to serve it there", addr, httpAddr)
	}
	return nil
}

// ComponentHTTP names a process's listeners in its lifecycle.
const ComponentHTTP = "http"

// Listeners are a process's ops listeners as a lifecycle component
// (RegisterOps); Ops is set once the component started.
type Listeners struct{ *Ops }

// RegisterOps adds the process's listeners to lc as ComponentHTTP, needing
// needs (the backends /readyz pings, the API the handler serves). cfg is
// called at start: what the listeners serve exists only then. Stopping
// shuts them down, finishing the requests in flight within the shutdown's
// deadline.
func RegisterOps(lc *Lifecycle, needs []string, cfg func() OpsConfig) *Listeners {
	l := &Listeners{}
	lc.Add(Component{
		Name: ComponentHTTP, Needs: needs,
		Start: func(context.Context) error {
			o, err := ServeOps(cfg())
			if err != nil {
				return err
			}
			l.Ops = o
			return nil
		},
		Stop: func(ctx context.Context) error { return l.Shutdown(ctx) },
	})
	return l
}
