package config

import (
	"strings"
	"testing"
	"time"
)

func vars(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaultsAreEmbeddedDemo(t *testing.T) {
	c, err := Load(vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded() || !c.Demo {
		t.Fatalf("empty environment: embedded=%v demo=%v, want both true", c.Embedded(), c.Demo)
	}
	if c.HTTPAddr != ":8080" || c.MQ != "embedded" || c.DataDir != "./data" || c.LogFormat != "text" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(c.JWTSecret) == 0 || c.AdminToken == "" || !c.GeneratedAdminToken {
		t.Fatal("demo mode must make up a JWT secret and an admin token")
	}
	c2, _ := Load(vars(nil))
	if string(c2.JWTSecret) == string(c.JWTSecret) || c2.AdminToken == c.AdminToken {
		t.Fatal("demo secrets must be random per start")
	}
	if c.SoldOutTTL != time.Second || c.RatePerUserBurst != 5 {
		t.Fatalf("unexpected tuning defaults: %+v", c)
	}
}

func TestProductionRequiresSecrets(t *testing.T) {
	_, err := Load(vars(map[string]string{"SECKILL_REDIS_URL": "redis://127.0.0.1:6379"}))
	if err == nil {
		t.Fatal("non-embedded config without secrets accepted")
	}
	for _, name := range []string{"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	c, err := Load(vars(map[string]string{
		"SECKILL_REDIS_URL": "redis://127.0.0.1:6379", "SECKILL_JWT_SECRET": "0123456789abcdef0123",
		"SECKILL_ADMIN_TOKEN": "admin-token-0123456789",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Demo || c.LogFormat != "json" || c.GeneratedAdminToken {
		t.Fatalf("production config: demo=%v format=%s generated=%v", c.Demo, c.LogFormat, c.GeneratedAdminToken)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	cases := []struct{ name, value string }{
		{"SECKILL_MQ", "rabbit"},
		{"SECKILL_HTTP_ADDR", "8080"},
		{"SECKILL_REDIS_URL", "http://x"},
		{"SECKILL_DEMO", "maybe"},
		{"SECKILL_RATE_GLOBAL", "-3"},
		{"SECKILL_RATE_PER_USER_BURST", "many"},
		{"SECKILL_SOLDOUT_TTL", "1 second"},
		{"SECKILL_TRUSTED_PROXIES", "10.0.0.0/99"},
		{"SECKILL_JWT_SECRET", "short"},
		{"SECKILL_LOG_FORMAT", "xml"},
		{"SECKILL_MAX_BODY_BYTES", "0"},
		{"SECKILL_RESERVATION_TIMEOUT", "1s"},
		{"SECKILL_SWEEP_INTERVAL", "0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(vars(map[string]string{tc.name: tc.value}))
			if err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("%s=%q: err = %v, want an error naming the variable", tc.name, tc.value, err)
			}
		})
	}
}

func TestKafkaNeedsBrokers(t *testing.T) {
	_, err := Load(vars(map[string]string{"SECKILL_MQ": "kafka", "SECKILL_DEMO": "true"}))
	if err == nil || !strings.Contains(err.Error(), "SECKILL_KAFKA_BROKERS") {
		t.Fatalf("err = %v, want one naming SECKILL_KAFKA_BROKERS", err)
	}
	c, err := Load(vars(map[string]string{"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": "a:9092, b:9092", "SECKILL_DEMO": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "b:9092" || c.Embedded() {
		t.Fatalf("brokers = %v embedded=%v", c.KafkaBrokers, c.Embedded())
	}
}

func TestRedactedHoldsNoSecrets(t *testing.T) {
	c, err := Load(vars(map[string]string{
		"SECKILL_REDIS_URL": "redis://:hunter2hunter2@h:6379", "SECKILL_JWT_SECRET": "jwt-secret-0123456789",
		"SECKILL_ADMIN_TOKEN": "admin-token-0123456789",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Redacted() {
		s, _ := v.(string)
		for _, secret := range []string{"hunter2", "jwt-secret", "admin-token"} {
			if strings.Contains(s, secret) {
				t.Errorf("Redacted()[%s] leaks %s", k, secret)
			}
		}
	}
}

func TestNamesListsEveryVariableLoadReads(t *testing.T) {
	read := map[string]bool{}
	_, _ = Load(func(k string) string { read[k] = true; return "" })
	listed := map[string]bool{}
	for _, n := range Names() {
		if listed[n] {
			t.Errorf("Names lists %s twice", n)
		}
		listed[n] = true
	}
	for n := range read {
		if !listed[n] {
			t.Errorf("Load reads %s but Names does not list it", n)
		}
	}
	for n := range listed {
		if !read[n] {
			t.Errorf("Names lists %s but Load never reads it", n)
		}
	}
}

// The gateway reads with the same rules as every seckill process
// (platform/env): blank counts as unset, values are trimmed, durations must
// be positive, and each bad variable is reported once, even when a
// cross-check would fail it again.
func TestSharedReadingRules(t *testing.T) {
	c, err := Load(vars(map[string]string{
		"SECKILL_KAFKA_PARTITIONS": "   ", "SECKILL_SOLDOUT_TTL": " \t", "SECKILL_DEMO": " ",
		"SECKILL_WORKER_BATCH": " 50 ", "SECKILL_PUBLISH_TIMEOUT": " 3s ",
	}))
	if err != nil {
		t.Fatalf("blank and padded values: %v", err)
	}
	if c.KafkaPartitions != 12 || c.SoldOutTTL != time.Second || !c.Demo || c.Service.WorkerBatch != 50 || c.PublishTimeout != 3*time.Second {
		t.Fatalf("partitions %d, sold-out TTL %s, demo %v, batch %d, publish %s; want the defaults for blanks and the trimmed values",
			c.KafkaPartitions, c.SoldOutTTL, c.Demo, c.Service.WorkerBatch, c.PublishTimeout)
	}

	_, err = Load(vars(map[string]string{
		"SECKILL_SOLDOUT_TTL": "0s", "SECKILL_SHUTDOWN_TIMEOUT": "-5s",
		"SECKILL_RESERVATION_TIMEOUT": "soon", "SECKILL_PUBLISH_TIMEOUT": "45s", // bad, and shorter than the publish timeout
		"SECKILL_MAX_BUYS_IN_FLIGHT": "0",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"SECKILL_SOLDOUT_TTL", "SECKILL_SHUTDOWN_TIMEOUT", "SECKILL_RESERVATION_TIMEOUT", "SECKILL_MAX_BUYS_IN_FLIGHT"} {
		if n := strings.Count(err.Error(), name+" "); n != 1 {
			t.Errorf("%s reported %d times, want once:\n%v", name, n, err)
		}
	}
	if !strings.Contains(err.Error(), `SECKILL_RESERVATION_TIMEOUT must be a positive duration like 500ms or 2s, got "soon"`) {
		t.Errorf("SECKILL_RESERVATION_TIMEOUT: want the parse problem, not the cross-check:\n%v", err)
	}
}
