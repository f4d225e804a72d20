package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/seckill/testkit"
)

// With SECKILL_METRICS_ADDR, /metrics is served on its own listener and the
// public port answers 404 for it (Prometheus series stay off the internet);
// the public port keeps its health checks.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	a, c := startApp(t, map[string]string{"SECKILL_METRICS_ADDR": "127.0.0.1:0"})
	if a.MetricsAddr() == "" || a.MetricsAddr() == a.Addr() {
		t.Fatalf("MetricsAddr() = %q (public %q), want a listener of its own", a.MetricsAddr(), a.Addr())
	}
	code, body := testkit.Get(t, "http://"+a.MetricsAddr()+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "seckill_queue_depth") || !strings.Contains(body, "seckill_rate_limited_total") {
		t.Fatalf("GET /metrics on the metrics address: %d, want 200 with the seckill series:\n%.500s", code, body)
	}
	if code, body := testkit.Get(t, c.base+"/metrics"); code != http.StatusNotFound || strings.Contains(body, "seckill_queue_depth") {
		t.Fatalf("GET /metrics on the public address: %d %.200s, want 404", code, body)
	}
	if code, _ := testkit.Get(t, c.base+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz on the public address: %d", code)
	}
	if code, _ := testkit.Get(t, "http://"+a.MetricsAddr()+"/api/v1/activities"); code != http.StatusNotFound {
		t.Fatalf("the metrics listener serves the API: %d, want 404", code)
	}
}

// Without the setting, /metrics stays on the public port, as before.
func TestMetricsOnThePublicPortByDefault(t *testing.T) {
	a, c := startApp(t, nil)
	if a.MetricsAddr() != "" {
		t.Fatalf("MetricsAddr() = %q without SECKILL_METRICS_ADDR, want empty", a.MetricsAddr())
	}
	if code, body := testkit.Get(t, c.base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "seckill_queue_depth") {
		t.Fatalf("GET /metrics on the public address: %d, want 200 with the seckill series", code)
	}
}
