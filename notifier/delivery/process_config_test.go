package delivery_test

import (
	"strings"
	"testing"

	"github.com/flashsale/seckill/notifier/delivery"
)

// SECKILL_METRICS_ADDR means for seckill-notifier what it means for the
// other services: /metrics on a listener of its own.
func TestServiceMetricsAddr(t *testing.T) {
	base := map[string]string{
		"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": "k:9092", "SECKILL_DB_DSN": "u:p@tcp(db:3306)/seckill",
		"SECKILL_SMTP_URL": "smtp://mail.example.com",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	s, err := delivery.LoadProcessConfig(env(base))
	if err != nil || s.MetricsAddr != "" {
		t.Fatalf("default: MetricsAddr %q, %v; want empty", s.MetricsAddr, err)
	}
	s, err = delivery.LoadProcessConfig(env(with("SECKILL_METRICS_ADDR", "127.0.0.1:9091")))
	if err != nil || s.MetricsAddr != "127.0.0.1:9091" {
		t.Fatalf("SECKILL_METRICS_ADDR=127.0.0.1:9091: %q, %v", s.MetricsAddr, err)
	}
	for _, bad := range []string{"9091", "host", "h:port", ":8080"} {
		if _, err := delivery.LoadProcessConfig(env(with("SECKILL_METRICS_ADDR", bad))); err == nil || !strings.Contains(err.Error(), "SECKILL_METRICS_ADDR") {
			t.Errorf("SECKILL_METRICS_ADDR=%s: %v, want an error naming the variable", bad, err)
		}
	}
}
