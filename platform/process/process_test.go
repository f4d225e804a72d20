package process_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/env"
	"github.com/flashsale/seckill/platform/process"

	"github.com/flashsale/seckill/testkit"
)

func testRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := process.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "seckill_test_total", Help: "test"}))
	return reg
}

func serveOps(t *testing.T, cfg process.OpsConfig) *process.Ops {
	t.Helper()
	ops, err := process.ServeOps(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ops.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return ops
}

// With SECKILL_METRICS_ADDR, /metrics moves to a listener of its own and
// the HTTP port answers 404 for it; without, it stays there. /healthz and
// /readyz are on the HTTP port either way.
func TestServeOpsHonoursMetricsAddr(t *testing.T) {
	reg := testRegistry(t)
	for _, tc := range []struct {
		name, metricsAddr string
	}{{"own listener", "127.0.0.1:0"}, {"on the HTTP port", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			ops := serveOps(t, process.OpsConfig{
				Addr: "127.0.0.1:0", MetricsAddr: tc.metricsAddr, Registry: reg,
				Ready: func(context.Context) error { return nil },
			})
			base := "http://" + ops.Addr()
			if code, body := testkit.Get(t, base+"/healthz"); code != http.StatusOK || body != `{"status":"ok"}` {
				t.Fatalf("/healthz: %d %s", code, body)
			}
			if code, body := testkit.Get(t, base+"/readyz"); code != http.StatusOK || body != `{"status":"ready"}` {
				t.Fatalf("/readyz: %d %s", code, body)
			}
			code, body := testkit.Get(t, base+"/metrics")
			if tc.metricsAddr == "" {
				if ops.MetricsAddr() != "" || code != http.StatusOK || !strings.Contains(body, "seckill_test_total") || !strings.Contains(body, "go_goroutines") {
					t.Fatalf("/metrics on the HTTP port: %d (metrics addr %q), want 200 with the series", code, ops.MetricsAddr())
				}
				return
			}
			if code != http.StatusNotFound {
				t.Fatalf("/metrics on the HTTP port: %d, want 404", code)
			}
			if ops.MetricsAddr() == "" || ops.MetricsAddr() == ops.Addr() {
				t.Fatalf("metrics addr %q (http %q), want a listener of its own", ops.MetricsAddr(), ops.Addr())
			}
			if code, body := testkit.Get(t, "http://"+ops.MetricsAddr()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "seckill_test_total") {
				t.Fatalf("/metrics on the metrics address: %d, want 200 with the series", code)
			}
			if code, _ := testkit.Get(t, "http://"+ops.MetricsAddr()+"/healthz"); code != http.StatusNotFound {
				t.Fatalf("/healthz on the metrics address: %d, want 404 (it serves /metrics only)", code)
			}
		})
	}
}

// /readyz answers 503 naming the failing backends, and only them.
func TestReadyzNamesTheFailingBackend(t *testing.T) {
	ops := serveOps(t, process.OpsConfig{
		Addr: "127.0.0.1:0", Registry: testRegistry(t),
		Ready: process.Readiness(
			process.Check{Name: "redis", Ping: func(context.Context) error { return errors.New("dial tcp 10.0.0.7:6379: connection refused") }},
			process.Check{Name: "database", Ping: func(context.Context) error { return nil }},
			process.Check{Name: "queue", Ping: func(context.Context) error { return errors.New("user seckill: access denied") }},
		),
	})
	code, body := testkit.Get(t, "http://"+ops.Addr()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"UNAVAILABLE"`) || !strings.Contains(body, "not ready: redis, queue unreachable") {
		t.Fatalf("/readyz: %d %s, want 503 naming redis and queue", code, body)
	}
	// The causes (addresses, user names) are for the log, not the caller.
	if strings.Contains(body, "10.0.0.7") || strings.Contains(body, "seckill") || strings.Contains(body, "database") {
		t.Fatalf("/readyz leaks a cause or names a healthy backend: %s", body)
	}
}

// A Handler of the process's own serves the HTTP port instead of the ops
// handler, and OnShutdown runs when Shutdown starts.
func TestServeOpsWithAHandlerOfItsOwn(t *testing.T) {
	api := http.NewServeMux()
	api.HandleFunc("GET /api", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("api")) })
	closed := make(chan struct{})
	ops, err := process.ServeOps(process.OpsConfig{
		Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", Registry: testRegistry(t), Handler: api,
		OnShutdown: func() { close(closed) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := testkit.Get(t, "http://"+ops.Addr()+"/api"); code != http.StatusOK || body != "api" {
		t.Fatalf("/api: %d %q", code, body)
	}
	if code, _ := testkit.Get(t, "http://"+ops.Addr()+"/healthz"); code != http.StatusNotFound {
		t.Fatalf("/healthz: %d, want 404 (the handler given serves the port)", code)
	}
	if code, _ := testkit.Get(t, "http://"+ops.MetricsAddr()+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics on the metrics address: %d", code)
	}
	if err := ops.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("OnShutdown did not run")
	}
	if err := ops.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v, want the first one's nil", err)
	}
	for _, addr := range []string{ops.Addr(), ops.MetricsAddr()} {
		if _, err := http.Get("http://" + addr + "/"); err == nil {
			t.Errorf("%s still answers after Shutdown", addr)
		}
	}
}

// An address that cannot be listened on stops the start, naming its
// variable, and leaves nothing listening.
func TestServeOpsAddrInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	for _, tc := range []struct {
		name, addr, metricsAddr, variable string
		released                          string // an address the failed start must not keep
	}{
		{"http", taken.Addr().String(), "", "SECKILL_HTTP_ADDR", ""},
		{"http before metrics", taken.Addr().String(), "127.0.0.1:0", "SECKILL_HTTP_ADDR", ""},
		{"metrics", "", taken.Addr().String(), "SECKILL_METRICS_ADDR", free()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr
			if addr == "" {
				addr = tc.released
			}
			_, err := process.ServeOps(process.OpsConfig{Addr: addr, MetricsAddr: tc.metricsAddr, Registry: prometheus.NewRegistry()})
			if err == nil || !strings.Contains(err.Error(), tc.variable) {
				t.Fatalf("ServeOps: %v, want an error naming %s", err, tc.variable)
			}
			if tc.released == "" {
				return
			}
			ln, err := net.Listen("tcp", tc.released)
			if err != nil {
				t.Fatalf("%s is still taken after the failed start: %v", tc.released, err)
			}
			ln.Close()
		})
	}
}

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, httpAddr string
		ok             bool
	}{
		{":9090", ":8080", true},
		{"127.0.0.1:9090", ":8080", true},
		{"[::1]:9090", ":8080", true},
		{"metrics.internal:9090", ":8080", true},
		{"127.0.0.1:0", ":8080", true},
		{"127.0.0.1:8080", "10.0.0.1:8080", true}, // same port, another interface
		{"9090", ":8080", false},
		{"localhost", ":8080", false},
		{"127.0.0.1:http", ":8080", false},
		{"127.0.0.1:99999", ":8080", false},
		{":8080", ":8080", false},
		{"127.0.0.1:8080", ":8080", false},
		{"127.0.0.1:8080", "127.0.0.1:8080", false},
	} {
		t.Run(tc.addr+"/"+tc.httpAddr, func(t *testing.T) {
			if err := process.CheckMetricsAddr(tc.addr, tc.httpAddr); (err == nil) != tc.ok {
				t.Fatalf("CheckMetricsAddr(%q, %q) = %v, want ok=%v", tc.addr, tc.httpAddr, err, tc.ok)
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	up := serveOps(t, process.OpsConfig{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
	_, port, _ := net.SplitHostPort(up.Addr())
	if err := process.Healthcheck(" :" + port + " "); err != nil {
		t.Fatalf("Healthcheck of a running process: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, downPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if err := process.Healthcheck(":" + downPort); err == nil {
		t.Fatal("Healthcheck of a port nobody listens on: nil, want an error")
	}
	if err := process.Healthcheck("8080"); err == nil || !strings.Contains(err.Error(), "SECKILL_HTTP_ADDR") {
		t.Fatalf("Healthcheck(\"8080\"): %v, want an error naming SECKILL_HTTP_ADDR", err)
	}
}

func TestMain_(t *testing.T) {
	noenv := func(string) string { return "" }
	for _, tc := range []struct {
		name   string
		args   []string
		run    error
		code   int
		stderr string
	}{
		{"clean run", nil, nil, 0, ""},
		{"failed run", nil, errors.New("boom"), 1, "seckill-test: boom\n"},
		{"bad flag", []string{"-nope"}, nil, 2, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ran := false
			code := process.Main("seckill-test", tc.args, noenv, &stderr, func(ctx context.Context) error {
				ran = true
				if ctx.Err() != nil {
					t.Error("run's context is done before any signal")
				}
				return tc.run
			})
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr.String(), tc.code, tc.stderr)
			}
			if ran != (tc.code != 2) {
				t.Fatalf("run called = %v", ran)
			}
		})
	}
}

func TestMainHealthcheckFlag(t *testing.T) {
	up := serveOps(t, process.OpsConfig{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
	run := func(context.Context) error { t.Error("-healthcheck ran the service"); return nil }
	getenv := func(addr string) func(string) string {
		return func(k string) string { return map[string]string{"SECKILL_HTTP_ADDR": addr}[k] }
	}
	if code := process.Main("x", []string{"-healthcheck"}, getenv(up.Addr()), io.Discard, run); code != 0 {
		t.Fatalf("-healthcheck against a running process: exit %d, want 0", code)
	}
	var stderr bytes.Buffer
	if code := process.Main("x", []string{"-healthcheck"}, getenv("127.0.0.1:bad"), &stderr, run); code != 1 || !strings.Contains(stderr.String(), "unhealthy") {
		t.Fatalf("-healthcheck against nothing: exit %d, %q; want 1 and unhealthy", code, stderr.String())
	}
}

func TestInvalidConfigListsEveryProblemIndented(t *testing.T) {
	r := env.New(func(k string) string { return map[string]string{"A": "x", "B": "0s"}[k] })
	r.PositiveInt("A", 1, "a")
	r.Duration("B", time.Second, "b")
	err := process.InvalidConfig(r.Err())
	want := "invalid configuration:\n  A must be a positive integer, got \"x\"\n  B must be a positive duration like 500ms or 2s, got \"0s\""
	if err.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", err, want)
	}
	var ve *env.VarError
	if !errors.As(err, &ve) || ve.Name != "A" {
		t.Fatalf("errors.As(*env.VarError) = %v, want the first problem through the wrapper", ve)
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		json          bool
		debugShown    bool
	}{
		{"json", "info", true, false},
		{"text", "debug", false, true},
		{"text", "warn", false, false},
	} {
		t.Run(tc.format+"/"+tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			log := process.NewLogger(tc.format, tc.level, &buf)
			log.Debug("dbg")
			log.Error("boom", "k", "v")
			out := buf.String()
			if strings.HasPrefix(out, "{") != tc.json {
				t.Errorf("output %q: json = %v, want %v", out, strings.HasPrefix(out, "{"), tc.json)
			}
			if strings.Contains(out, "dbg") != tc.debugShown {
				t.Errorf("output %q: debug shown = %v, want %v", out, !tc.debugShown, tc.debugShown)
			}
			if !strings.Contains(out, "boom") {
				t.Errorf("output %q lacks the error line", out)
			}
		})
	}
}

// Serve stops the service when its context ends, within the timeout, and
// logs the clean stop; a Stop error is returned as a shutdown error.
func TestServeStopsOnContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stopErr error
		want    string // "" = nil
	}{
		{"clean", nil, ""},
		{"stop fails", errors.New("queue: drain timed out"), "shutdown: queue: drain timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := serveOps(t, process.OpsConfig{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
			var logs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var deadline time.Time
			err := process.Serve(ctx, process.Service{
				Ops: ops, Timeout: time.Minute, Draining: "finishing the test", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Stop: func(ctx context.Context) error {
					deadline, _ = ctx.Deadline()
					return errors.Join(ops.Shutdown(ctx), tc.stopErr)
				},
			})
			if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
				t.Fatalf("Serve: %v, want %q", err, tc.want)
			}
			if deadline.IsZero() || time.Until(deadline) > time.Minute {
				t.Fatalf("Stop's context deadline %v, want one within the timeout", deadline)
			}
			if !strings.Contains(logs.String(), "shutting down: finishing the test") {
				t.Errorf("log lacks the shutdown line:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "stopped cleanly") != (tc.stopErr == nil) {
				t.Errorf("log %q: clean-stop line present = %v, want %v", logs.String(), !(tc.stopErr == nil), tc.stopErr == nil)
			}
		})
	}
}
