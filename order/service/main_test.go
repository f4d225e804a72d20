package service

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/seckill/testkit"
)

// runWorker runs the seckill-order-worker's Run over env until the test
// ends, and returns its addresses once it consumes.
func runWorker(t *testing.T, env map[string]string) Addrs {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, func(k string) string { return env[k] }, io.Discard, io.Discard, func(a Addrs) { addrs <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker not ready within 60s")
	}
	return Addrs{}
}

// An order worker's ops port (health, readiness, metrics) follows
// SECKILL_METRICS_ADDR as the gateway's does (moved from gateway/app with
// the worker).
func TestWorkerMetricsOnTheirOwnListener(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	mr := miniredis.RunT(t)
	a := runWorker(t, map[string]string{
		"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
		"SECKILL_KAFKA_PARTITIONS": "1", "SECKILL_METRICS_ADDR": "127.0.0.1:0", "SECKILL_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_REDIS_URL": "redis://" + mr.Addr(), "SECKILL_DATA_DIR": t.TempDir(), "SECKILL_LOG_LEVEL": "warn",
	})
	if code, body := testkit.Get(t, "http://"+a.Metrics+"/metrics"); code != http.StatusOK || !strings.Contains(body, "seckill_queue_depth") {
		t.Fatalf("GET /metrics on the metrics address: %d, want 200 with the seckill series", code)
	}
	if code, _ := testkit.Get(t, "http://"+a.HTTP+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("GET /metrics on the worker's ops port: %d, want 404", code)
	}
	if code, _ := testkit.Get(t, "http://"+a.HTTP+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz on the worker's ops port: %d", code)
	}
	if code, body := testkit.Get(t, "http://"+a.HTTP+"/readyz"); code != http.StatusOK {
		t.Fatalf("GET /readyz on the worker's ops port: %d %s", code, body)
	}
}

// A worker verifies no tokens: it starts without the gateway's secrets,
// still rejects invalid ones, and refuses what only works inside one
// process (the embedded queue and Redis), each error naming its variable.
func TestWorkerConfiguration(t *testing.T) {
	base := map[string]string{
		"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": "k:9092", "SECKILL_REDIS_URL": "redis://r:6379",
		"SECKILL_DB_DSN": "u:p@tcp(db:3306)/seckill", "SECKILL_DEMO": "false",
	}
	load := func(change map[string]string) (ProcessConfig, error) {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range change {
			env[k] = v
		}
		return LoadProcessConfig(func(k string) string { return env[k] })
	}
	c, err := load(nil)
	if err != nil {
		t.Fatalf("LoadProcessConfig: %v", err)
	}
	if c.Service.WorkerConcurrency != DefaultWorkerConcurrency || c.Service.WorkerBatch != DefaultWorkerBatch || c.HTTPAddr != ":8080" ||
		c.LogFormat != "json" || c.Service.RestoreInterval != 10*time.Second || c.ShutdownTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		name   string
		change map[string]string
		want   string
	}{
		{"split worker on the embedded queue", map[string]string{"SECKILL_MQ": ""}, "SECKILL_MQ"},
		{"embedded redis", map[string]string{"SECKILL_REDIS_URL": ""}, "SECKILL_REDIS_URL"},
		{"redis URL without scheme", map[string]string{"SECKILL_REDIS_URL": "r:6379"}, "SECKILL_REDIS_URL"},
		{"invalid secret", map[string]string{"SECKILL_JWT_SECRET": "short"}, "SECKILL_JWT_SECRET"},
		{"invalid admin token", map[string]string{"SECKILL_ADMIN_TOKEN": "short"}, "SECKILL_ADMIN_TOKEN"},
		{"nats without URL", map[string]string{"SECKILL_MQ": "nats"}, "SECKILL_NATS_URL"},
		{"kafka without brokers", map[string]string{"SECKILL_KAFKA_BROKERS": ""}, "SECKILL_KAFKA_BROKERS"},
		{"bad concurrency", map[string]string{"SECKILL_WORKER_CONCURRENCY": "0"}, "SECKILL_WORKER_CONCURRENCY"},
		{"bad batch", map[string]string{"SECKILL_WORKER_BATCH": "x"}, "SECKILL_WORKER_BATCH"},
		{"bad sweep", map[string]string{"SECKILL_SWEEP_INTERVAL": "-1s"}, "SECKILL_SWEEP_INTERVAL"},
		{"reservation shorter than publish", map[string]string{"SECKILL_RESERVATION_TIMEOUT": "1s"}, "SECKILL_RESERVATION_TIMEOUT"},
		{"metrics on the ops port", map[string]string{"SECKILL_METRICS_ADDR": ":8080"}, "SECKILL_METRICS_ADDR"},
		{"bad log level", map[string]string{"SECKILL_LOG_LEVEL": "loud"}, "SECKILL_LOG_LEVEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := load(tc.change); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one naming %s", err, tc.want)
			}
		})
	}
	// Run reports the configuration problem before touching any backend.
	err = Run(context.Background(), func(k string) string { return map[string]string{"SECKILL_REDIS_URL": "redis://r:6379"}[k] }, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "invalid configuration") || !strings.Contains(err.Error(), "SECKILL_MQ") {
		t.Fatalf("Run on the embedded queue: %v", err)
	}
}
