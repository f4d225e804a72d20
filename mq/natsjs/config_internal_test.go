package natsjs

import (
	"strings"
	"testing"
	"time"
)

// TestSyncSettingsReachTheEmbeddedServer: SyncAlways and SyncInterval are
// what the embedded JetStream runs with; zero keeps the server's default.
func TestSyncSettingsReachTheEmbeddedServer(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		wantAlways   bool
		wantInterval time.Duration
	}{
		{"default", Config{}, false, 2 * time.Minute},
		{"always", Config{SyncAlways: true}, true, 2 * time.Minute},
		{"interval", Config{SyncInterval: 5 * time.Second}, false, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.StoreDir = t.TempDir()
			b, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			js := b.srv.JetStreamConfig()
			if js.SyncAlways != tc.wantAlways || js.SyncInterval != tc.wantInterval {
				t.Errorf("embedded JetStream runs with sync_always %t, sync_interval %v; want %t, %v",
					js.SyncAlways, js.SyncInterval, tc.wantAlways, tc.wantInterval)
			}
		})
	}
}

// TestSyncSettingsRefused: settings that cannot mean what they say stop New
// with an error naming them, before anything starts.
func TestSyncSettingsRefused(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative interval", Config{StoreDir: "x", SyncInterval: -time.Second}, "must not be negative"},
		{"always and an interval", Config{StoreDir: "x", SyncAlways: true, SyncInterval: time.Second}, "choose one"},
		{"always on an external server", Config{URL: "nats://127.0.0.1:1", SyncAlways: true}, "embedded server only"},
		{"interval on an external server", Config{URL: "nats://127.0.0.1:1", SyncInterval: time.Second}, "embedded server only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(t.Context(), tc.cfg)
			if err == nil {
				_ = b.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
