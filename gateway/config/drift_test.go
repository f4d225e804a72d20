package config_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/order/service"
)

// TestWorkerReadsTheSameSettings: the order worker binary loads its own
// environment (order/service, which may not import the gateway). The
// settings both processes read are service.Shared, read for both by
// service.ReadShared; this fails when either loader changes one of
// them afterwards (a default or value of its own), so the two processes
// disagree, or stops listing one of them in its Names.
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
			w, err := service.LoadProcessConfig(get)
			if err != nil {
				t.Fatal(err)
			}
			// Each process names itself in its traces; everything else
			// must be the same.
			gs, ws := g.Shared, w.Shared
			gs.Tracing.ServiceName, ws.Tracing.ServiceName = "", ""
			gv, wv := reflect.ValueOf(gs), reflect.ValueOf(ws)
			for i := range gv.NumField() {
				if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
					t.Errorf("%s: the gateway reads %+v, the order worker %+v", gv.Type().Field(i).Name, gv.Field(i), wv.Field(i))
				}
			}
		})
	}
}

// Both processes list every shared variable, so a manifest setting one is
// checked for either (deploy checks manifests against Names).
func TestBothListTheSharedNames(t *testing.T) {
	gateway, worker := config.Names(), service.Names()
	for _, n := range service.SharedNames() {
		if !slices.Contains(gateway, n) {
			t.Errorf("config.Names() does not list %s", n)
		}
		if !slices.Contains(worker, n) {
			t.Errorf("service.Names() does not list %s", n)
		}
	}
}
