package process

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A listener that stops by itself (here: its socket closed under it) stops
// the service as a signal would, and Serve returns the listener's error.
func TestServeStopsWhenAListenerFails(t *testing.T) {
	for _, tc := range []struct {
		name, metricsAddr string
		broken            func(o *Ops) error
		want              string
	}{
		{"http", "", func(o *Ops) error { return o.httpLn.Close() }, "http server stopped"},
		{"metrics", "127.0.0.1:0", func(o *Ops) error { return o.metricsLn.Close() }, "metrics server stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ops, err := ServeOps(OpsConfig{Addr: "127.0.0.1:0", MetricsAddr: tc.metricsAddr, Registry: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ops.Shutdown(context.Background()) })
			if err := tc.broken(ops); err != nil {
				t.Fatal(err)
			}
			stopped := false
			done := make(chan error, 1)
			go func() {
				done <- Serve(context.Background(), Service{
					Ops: ops, Timeout: time.Minute, Draining: "test", Logger: log,
					Stop: func(ctx context.Context) error { stopped = true; return ops.Shutdown(ctx) },
				})
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Serve: %v, want the listener's error (%q)", err, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return after its listener broke")
			}
			if !stopped {
				t.Error("Stop was not called")
			}
			if strings.Contains(logs.String(), "stopped cleanly") {
				t.Errorf("a broken listener logged a clean stop:\n%s", logs.String())
			}
		})
	}
}
