package delivery_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/flashsale/seckill/notifier/delivery"
)

// notifierRun is the seckill-notifier's Run started by a test over env.
type notifierRun struct {
	base   string // http://host:port of its ops listener
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startRun runs delivery.Run over env until it is ready; it fails the test
// when Run stops or is not ready within 60s.
func startRun(t *testing.T, env map[string]string) *notifierRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &notifierRun{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		r.done <- delivery.Run(ctx, func(k string) string { return env[k] }, io.Discard, r.stderr, func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		r.base = "http://" + a
	case err := <-r.done:
		t.Fatalf("Run stopped at start: %v\n%s", err, r.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not become ready in 60s\n%s", r.stderr.String())
	}
	return r
}

// stop ends Run's context and requires it to return nil within 30s.
func (r *notifierRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop within 30s of its context ending")
	}
}
