package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSettingsValidate(t *testing.T) {
	ok := Settings{}.withDefaults()
	tests := []struct {
		name   string
		change func(*Settings)
		want   string // "" = valid
	}{
		{"defaults", func(*Settings) {}, ""},
		{"interval", func(s *Settings) { s.QueueSync, s.SyncInterval = QueueSyncInterval, time.Second }, ""},
		{"production limits", func(s *Settings) { s.Limits = LimitsProduction }, ""},
		{"extra setting", func(s *Settings) { s.Env = map[string]string{"SECKILL_WORKER_BATCH": "20"} }, ""},
		{"privileged port", func(s *Settings) { s.BasePort = 80 }, "base port 80"},
		{"ports past 65535", func(s *Settings) { s.BasePort = 65500 }, "base port 65500"},
		{"queue sync", func(s *Settings) { s.QueueSync = "sometimes" }, `queue sync "sometimes"`},
		{"limits", func(s *Settings) { s.Limits = "none" }, `limits "none"`},
		{"not a seckill variable", func(s *Settings) { s.Env = map[string]string{"PATH": "/tmp"} }, `setting "PATH"`},
		{"queue sync through --set", func(s *Settings) { s.Env = map[string]string{"SECKILL_QUEUE_SYNC": "interval"} }, "--queue-sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.change(&s)
			err := s.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate: %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestSettingsDefaultsAndEquality(t *testing.T) {
	d := Settings{}.withDefaults()
	if d.BasePort != DefaultBasePort || d.QueueSync != QueueSyncAlways || d.Limits != LimitsLoadTest || d.SyncInterval != DefaultSyncInterval {
		t.Fatalf("defaults = %+v", d)
	}
	// The interval does not matter under "always": it must not make two
	// otherwise equal clusters differ.
	a := Settings{SyncInterval: time.Second}.withDefaults()
	if !a.equal(d) {
		t.Fatalf("%+v and %+v differ only in an unused interval, yet are not equal", a, d)
	}
	b := d
	b.Demo = true
	b.Env = map[string]string{"SECKILL_WORKER_BATCH": "20"}
	if b.equal(d) {
		t.Fatal("demo and extra settings do not count")
	}
	if diff := d.diff(b); !strings.Contains(diff, "demo false (running) vs true") || !strings.Contains(diff, "SECKILL_WORKER_BATCH") {
		t.Fatalf("diff = %q", diff)
	}
}

func TestFindRoot(t *testing.T) {
	wd, err := os.Getwd() // loadtest/cluster
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Dir(filepath.Dir(wd)); root != want {
		t.Fatalf("FindRoot(%s) = %s, want %s (the directory with go.work)", wd, root, want)
	}
	if _, err := FindRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "go.work") {
		t.Fatalf("a directory outside the repository: %v, want an error naming go.work", err)
	}
}
