package order

import (
	"log/slog"
	"testing"
	"time"
)

// TestConfigDefaults: a zero field takes its DefaultX, a set one is kept.
func TestConfigDefaults(t *testing.T) {
	log := slog.New(slog.DiscardHandler)

	w := WorkerConfig{}.withDefaults()
	if w.BatchSize != DefaultWorkerBatchSize || w.Linger != DefaultWorkerLinger || w.Logger == nil || w.Committed == nil {
		t.Errorf("WorkerConfig{}.withDefaults() = %+v, want the defaults", w)
	}
	w = WorkerConfig{BatchSize: 7, Linger: time.Second, Logger: log}.withDefaults()
	if w.BatchSize != 7 || w.Linger != time.Second || w.Logger != log {
		t.Errorf("WorkerConfig set fields = %+v, want them kept", w)
	}

	r := RelayConfig{}.withDefaults()
	if r.BatchSize != DefaultRelayBatchSize || r.Interval != DefaultRelayInterval || r.Retention != DefaultRelayRetention || r.Logger == nil {
		t.Errorf("RelayConfig{}.withDefaults() = %+v, want the defaults", r)
	}
	r = RelayConfig{BatchSize: 3, Interval: time.Hour, Retention: time.Minute, Logger: log}.withDefaults()
	if r.BatchSize != 3 || r.Interval != time.Hour || r.Retention != time.Minute || r.Logger != log {
		t.Errorf("RelayConfig set fields = %+v, want them kept", r)
	}

	l := LifecycleConfig{}.withDefaults()
	if l.Now == nil || l.Changed == nil || l.Logger == nil {
		t.Errorf("LifecycleConfig{}.withDefaults() = %+v, want a clock, a no-op Changed and a logger", l)
	}
}
