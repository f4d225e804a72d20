package delivery_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/seckill/notifier/smtptest"
	"github.com/flashsale/seckill/testkit"
)

// The standalone notifier with SECKILL_METRICS_ADDR: /metrics answers there,
// and 404 on SECKILL_HTTP_ADDR, which keeps /healthz and /readyz.
func TestRunServesMetricsOnMetricsAddr(t *testing.T) {
	dsn := testkit.MySQLDSN(t)
	brokers := newCluster(t)
	smtp := smtptest.Start(t)
	seedContacts(t, dsn, nil)
	metricsAddr := testkit.FreeAddr(t)
	env := map[string]string{
		"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": strings.Join(brokers, ","), "SECKILL_KAFKA_PARTITIONS": "1",
		"SECKILL_KAFKA_SESSION_TIMEOUT": "6s", "SECKILL_DB_DSN": dsn, "SECKILL_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_METRICS_ADDR": metricsAddr,
		"SECKILL_SMTP_URL":     smtp.URL(), "SECKILL_SMTP_FROM": "shop@example.com", "SECKILL_SHUTDOWN_TIMEOUT": "10s",
	}
	run := startRun(t, env)
	base := run.base
	for _, tc := range []struct {
		url  string
		code int
		want string
	}{
		{"http://" + metricsAddr + "/metrics", http.StatusOK, "seckill_notifications_total"},
		{base + "/metrics", http.StatusNotFound, ""},
		{base + "/healthz", http.StatusOK, "ok"},
		{base + "/readyz", http.StatusOK, "ready"},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d, want %d with %q", tc.url, resp.StatusCode, tc.code, tc.want)
		}
	}
	run.stop(t)
	if _, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		t.Error("the metrics listener still answers after Run returned")
	}
}
