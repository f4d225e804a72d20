package config

import (
	"strings"
	"testing"
)

func TestMetricsAddr(t *testing.T) {
	c, err := Load(vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "" {
		t.Fatalf("MetricsAddr = %q by default, want empty (/metrics on the public port)", c.MetricsAddr)
	}
	for _, ok := range []string{":9090", "127.0.0.1:9090", "[::1]:9090", "metrics.internal:9090", "127.0.0.1:0"} {
		c, err := Load(vars(map[string]string{"SECKILL_METRICS_ADDR": ok}))
		if err != nil || c.MetricsAddr != ok {
			t.Errorf("SECKILL_METRICS_ADDR=%s: %q, %v", ok, c.MetricsAddr, err)
		}
	}
	for _, bad := range []string{"9090", "localhost", "127.0.0.1:http", "127.0.0.1:99999", ":8080"} {
		_, err := Load(vars(map[string]string{"SECKILL_METRICS_ADDR": bad}))
		if err == nil || !strings.Contains(err.Error(), "SECKILL_METRICS_ADDR") {
			t.Errorf("SECKILL_METRICS_ADDR=%s: %v, want an error naming the variable", bad, err)
		}
	}
}

func TestDashboardStreamsPerIP(t *testing.T) {
	c, err := Load(vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DashboardStreamsPerIP != 8 {
		t.Fatalf("DashboardStreamsPerIP = %d by default, want 8", c.DashboardStreamsPerIP)
	}
	c, err = Load(vars(map[string]string{"SECKILL_DASHBOARD_STREAMS_PER_IP": "2"}))
	if err != nil || c.DashboardStreamsPerIP != 2 {
		t.Fatalf("SECKILL_DASHBOARD_STREAMS_PER_IP=2: %d, %v", c.DashboardStreamsPerIP, err)
	}
	for _, bad := range []string{"0", "-1", "many"} {
		if _, err := Load(vars(map[string]string{"SECKILL_DASHBOARD_STREAMS_PER_IP": bad})); err == nil || !strings.Contains(err.Error(), "SECKILL_DASHBOARD_STREAMS_PER_IP") {
			t.Errorf("SECKILL_DASHBOARD_STREAMS_PER_IP=%s: %v, want an error naming the variable", bad, err)
		}
	}
}
