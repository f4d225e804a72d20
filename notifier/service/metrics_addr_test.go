package service

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/notifier/config"

	"github.com/flashsale/seckill/testkit"
)

// With SECKILL_METRICS_ADDR the notifier's /metrics moves to its own
// listener and the ops port answers 404 for it; without, it stays there.
func TestServeOpsHonoursMetricsAddr(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "seckill_test_total", Help: "test"}))
	ready := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name, metricsAddr string
	}{{"own listener", "127.0.0.1:0"}, {"on the ops port", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := serveOps(config.Service{HTTPAddr: "127.0.0.1:0", MetricsAddr: tc.metricsAddr}, reg, ready, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := ops.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			public := "http://" + ops.Addr()
			if code, _ := testkit.Get(t, public+"/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz: %d", code)
			}
			code, body := testkit.Get(t, public+"/metrics")
			if tc.metricsAddr == "" {
				if ops.MetricsAddr() != "" || code != http.StatusOK || !strings.Contains(body, "seckill_test_total") {
					t.Fatalf("/metrics on the ops port: %d (metrics addr %q), want 200", code, ops.MetricsAddr())
				}
				return
			}
			if code != http.StatusNotFound {
				t.Fatalf("/metrics on the ops port: %d, want 404", code)
			}
			if ops.MetricsAddr() == "" || ops.MetricsAddr() == ops.Addr() {
				t.Fatalf("metrics addr %q (ops %q), want a listener of its own", ops.MetricsAddr(), ops.Addr())
			}
			if code, body := testkit.Get(t, "http://"+ops.MetricsAddr()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "seckill_test_total") {
				t.Fatalf("/metrics on the metrics address: %d, want 200 with the series", code)
			}
		})
	}
}

// A metrics address that cannot be listened on stops the start, naming the
// variable, and leaves nothing listening.
func TestServeOpsMetricsAddrInUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := serveOps(config.Service{HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"}, reg, func(context.Context) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Shutdown(context.Background())
	_, err = serveOps(config.Service{HTTPAddr: "127.0.0.1:0", MetricsAddr: first.MetricsAddr()}, reg, func(context.Context) error { return nil }, nil)
	if err == nil || !strings.Contains(err.Error(), "SECKILL_METRICS_ADDR") {
		t.Fatalf("serveOps on a taken metrics address: %v, want an error naming SECKILL_METRICS_ADDR", err)
	}
}
