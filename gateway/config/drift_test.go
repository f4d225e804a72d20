package config_test

import (
	"reflect"
	"testing"

	"github.com/flashsale/seckill/gateway/config"
	orderservice "github.com/flashsale/seckill/order/service"
)

// TestWorkerReadsTheSameSettings: the order worker binary loads its own
// environment (order/service, which may not import the gateway). Both
// loaders read through platform/env, so a value is parsed the same way in
// both, but each writes its own defaults and checks for the names they
// share: the two must agree on every one, defaults included. A default
// changed in one place fails here.
func TestWorkerReadsTheSameSettings(t *testing.T) {
	base := map[string]string{
		"SECKILL_MQ": "nats", "SECKILL_NATS_URL": "nats://n1:4222,nats://n2:4222",
		"SECKILL_REDIS_URL": "redis://r:6379", "SECKILL_DB_DSN": "u:p@tcp(db:3306)/seckill",
		"SECKILL_JWT_SECRET": "0123456789abcdef0123", "SECKILL_ADMIN_TOKEN": "0123456789abcdef0123",
	}
	for _, tc := range []struct {
		name string
		set  map[string]string
	}{
		{"defaults", nil},
		{"every shared setting", map[string]string{
			"SECKILL_HTTP_ADDR": ":9000", "SECKILL_METRICS_ADDR": ":9001", "SECKILL_REDIS_PREFIX": "other",
			"SECKILL_DB_MAX_OPEN_CONNS": "7", "SECKILL_DB_MAX_IDLE_CONNS": "3", "SECKILL_DB_CONN_MAX_LIFETIME": "1m",
			"SECKILL_DATA_DIR": "/var/lib/x", "SECKILL_QUEUE_CAPACITY": "1234",
			"SECKILL_KAFKA_PARTITIONS": "5", "SECKILL_KAFKA_REPLICATION": "3", "SECKILL_KAFKA_SESSION_TIMEOUT": "9s",
			"SECKILL_LOG_LEVEL": "debug", "SECKILL_RESERVATION_TIMEOUT": "45s", "SECKILL_PUBLISH_TIMEOUT": "3s",
			"SECKILL_SHUTDOWN_TIMEOUT": "20s", "SECKILL_WORKER_CONCURRENCY": "77", "SECKILL_WORKER_BATCH": "33",
			"SECKILL_SWEEP_INTERVAL": "5s", "SECKILL_RECONCILE_INTERVAL": "11s", "SECKILL_RECONCILE_AGE": "2m",
			"SECKILL_OTEL_ENDPOINT": "http://jaeger:4318", "SECKILL_OTEL_SAMPLE_RATIO": "0.25",
		}},
		{"the standard tracing endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}},
		{"blank is unset, padding trimmed", map[string]string{
			"SECKILL_HTTP_ADDR": " :9000 ", "SECKILL_REDIS_PREFIX": "  ", "SECKILL_DB_MAX_OPEN_CONNS": " 7 ",
			"SECKILL_KAFKA_PARTITIONS": "\t", "SECKILL_LOG_LEVEL": " WARN ", "SECKILL_SHUTDOWN_TIMEOUT": " 20s ",
			"SECKILL_WORKER_BATCH": " ", "SECKILL_RECONCILE_AGE": " 2m ",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.set {
				env[k] = v
			}
			get := func(k string) string { return env[k] }
			g, err := config.Load(get)
			if err != nil {
				t.Fatal(err)
			}
			w, err := orderservice.LoadProcessConfig(get)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name          string
				gateway, work any
			}{
				{"SECKILL_HTTP_ADDR", g.HTTPAddr, w.HTTPAddr},
				{"SECKILL_METRICS_ADDR", g.MetricsAddr, w.MetricsAddr},
				{"SECKILL_REDIS_URL", g.RedisURL, w.RedisURL},
				{"SECKILL_REDIS_PREFIX", g.RedisPrefix, w.RedisPrefix},
				{"SECKILL_DB_DSN", g.DBDSN, w.DBDSN},
				{"SECKILL_DB_MAX_OPEN_CONNS", g.DBMaxOpenConns, w.DBMaxOpenConns},
				{"SECKILL_DB_MAX_IDLE_CONNS", g.DBMaxIdleConns, w.DBMaxIdleConns},
				{"SECKILL_DB_CONN_MAX_LIFETIME", g.DBConnMaxLifetime, w.DBConnMaxLifetime},
				{"SECKILL_DATA_DIR", g.DataDir, w.DataDir},
				{"SECKILL_MQ", g.MQ, w.MQ},
				{"SECKILL_NATS_URL", g.NATSURL, w.NATSURL},
				{"SECKILL_QUEUE_CAPACITY", g.QueueCapacity, w.QueueCapacity},
				{"SECKILL_KAFKA_PARTITIONS", g.KafkaPartitions, w.KafkaPartitions},
				{"SECKILL_KAFKA_REPLICATION", g.KafkaReplication, w.KafkaReplication},
				{"SECKILL_KAFKA_SESSION_TIMEOUT", g.KafkaSessionTimeout, w.KafkaSessionTimeout},
				{"SECKILL_LOG_LEVEL", g.LogLevel, w.LogLevel},
				{"SECKILL_RESERVATION_TIMEOUT", g.ReservationTTL, w.ReservationTTL},
				{"SECKILL_PUBLISH_TIMEOUT", g.PublishTimeout, w.PublishTimeout},
				{"SECKILL_SHUTDOWN_TIMEOUT", g.ShutdownTimeout, w.ShutdownTimeout},
				{"SECKILL_WORKER_CONCURRENCY", g.WorkerConcurrency, w.Service.WorkerConcurrency},
				{"SECKILL_WORKER_BATCH", g.WorkerBatch, w.Service.WorkerBatch},
				{"SECKILL_SWEEP_INTERVAL", g.SweepInterval, w.Service.SweepInterval},
				{"SECKILL_RECONCILE_INTERVAL", g.ReconcileInterval, w.Service.ReconcileInterval},
				{"SECKILL_RECONCILE_AGE", g.ReconcileAge, w.Service.ReconcileAge},
				{"SECKILL_OTEL_ENDPOINT", g.Tracing.Endpoint, w.Tracing.Endpoint},
				{"SECKILL_OTEL_SAMPLE_RATIO", g.Tracing.SampleRatio, w.Tracing.SampleRatio},
			} {
				if !reflect.DeepEqual(c.gateway, c.work) {
					t.Errorf("%s: the gateway reads %v, the order worker %v", c.name, c.gateway, c.work)
				}
			}
		})
	}
}
