package config

import (
	"strings"
	"testing"

	"github.com/flashsale/seckill/platform/tracing"
)

func TestTracingSettings(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want tracing.Config
	}{
		{"off by default", nil, tracing.Config{SampleRatio: 1, ServiceName: "seckill"}},
		{"seckill endpoint", map[string]string{"SECKILL_OTEL_ENDPOINT": "http://jaeger:4318"},
			tracing.Config{Endpoint: "http://jaeger:4318", SampleRatio: 1, ServiceName: "seckill"}},
		{"standard endpoint and a ratio", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "SECKILL_OTEL_SAMPLE_RATIO": "0.1"},
			tracing.Config{Endpoint: "http://collector:4318", SampleRatio: 0.1, ServiceName: "seckill"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(vars(tt.set))
			if err != nil {
				t.Fatal(err)
			}
			if c.Tracing != tt.want {
				t.Errorf("Tracing = %+v, want %+v", c.Tracing, tt.want)
			}
			if got := c.Redacted()["tracing"]; got != tt.want.On() {
				t.Errorf("Redacted()[tracing] = %v, want %v", got, tt.want.On())
			}
		})
	}
}

func TestTracingBadValuesNameTheVariable(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"SECKILL_OTEL_ENDPOINT", "jaeger:4318"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"},
		{"SECKILL_OTEL_SAMPLE_RATIO", "2"},
		{"SECKILL_OTEL_SAMPLE_RATIO", "0"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := Load(vars(map[string]string{tc.name: tc.value}))
			if err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("%s=%q: err = %v, want an error naming the variable", tc.name, tc.value, err)
			}
		})
	}
}

// The endpoint may carry credentials (a hosted collector's user and
// password): the logged configuration says only whether tracing is on.
func TestRedactedHidesTheTracingEndpoint(t *testing.T) {
	c, err := Load(vars(map[string]string{"SECKILL_OTEL_ENDPOINT": "https://user:hunter2hunter2@collector.example:4318"}))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Redacted() {
		if s, _ := v.(string); strings.Contains(s, "hunter2") || strings.Contains(s, "collector.example") {
			t.Errorf("Redacted()[%s] = %q shows the tracing endpoint", k, s)
		}
	}
}
