package mqtest

// What the conformance cases share: recording deliveries, waiting for them,
// building and closing a backend, unique topic names.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
)

// deliveriesToDeadLetter is how many times a message that always fails is
// delivered before it is dead-lettered.
func deliveriesToDeadLetter(maxAttempts int, f Features) int {
	if f.SplitRetries {
		return maxAttempts + 1
	}
	return maxAttempts
}

// delivery is one handler call as the suite saw it.
type delivery struct {
	msg *mq.Message
	at  time.Time // when the handler was called
}

// recorder collects the deliveries of one or more handlers.
type recorder struct {
	mu  sync.Mutex
	got []delivery
}

func newRecorder() *recorder { return &recorder{} }

// handler records each delivery, then returns next's result (nil when next
// is nil).
func (r *recorder) handler(next mq.Handler) mq.Handler {
	return func(ctx context.Context, m *mq.Message) error {
		r.mu.Lock()
		r.got = append(r.got, delivery{msg: cloneMessage(m), at: time.Now()})
		r.mu.Unlock()
		if next == nil {
			return nil
		}
		return next(ctx, m)
	}
}

func (r *recorder) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *recorder) waitCount(t *testing.T, n int, what string) {
	t.Helper()
	waitUntil(t, what, func() bool { return len(r.all()) >= n })
}

// waitUntil polls cond until it holds, failing the test after WaitTimeout
// with what did not happen.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", WaitTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// blockUntil returns a handler body that waits for release (or its context).
func blockUntil(release <-chan struct{}) mq.Handler {
	return func(ctx context.Context, _ *mq.Message) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func build(t *testing.T, newBackend Factory, cfg BackendConfig) (mq.Publisher, mq.Subscriber) {
	t.Helper()
	pub, sub := newBackend(t, cfg)
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("publisher Close: %v", err)
		}
		if err := sub.Close(); err != nil {
			t.Errorf("subscriber Close: %v", err)
		}
	})
	return pub, sub
}

// closeAll closes the backend so the case can inspect what was delivered:
// on a draining backend anything still pending (a wrongful redelivery or
// duplicate) is handled before it returns.
func closeAll(t *testing.T, pub mq.Publisher, sub mq.Subscriber) {
	t.Helper()
	if err := pub.Close(); err != nil {
		t.Fatalf("publisher Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("subscriber Close: %v", err)
	}
}

func subscribe(t *testing.T, sub mq.Subscriber, topic string, opts mq.SubscribeOptions, h mq.Handler) {
	t.Helper()
	if err := sub.Subscribe(t.Context(), topic, opts, h); err != nil {
		t.Fatalf("Subscribe(%q, group %q): %v", topic, opts.Group, err)
	}
}

func publish(t *testing.T, pub mq.Publisher, topic string, msgs ...*mq.Message) {
	t.Helper()
	if err := pub.Publish(t.Context(), topic, msgs...); err != nil {
		t.Fatalf("Publish(%q, %d messages): %v", topic, len(msgs), err)
	}
}

// topicName returns a topic name unique to this test run and valid on
// Kafka (at most 249 characters of [a-zA-Z0-9._-], with room for the
// dead-letter suffix).
func topicName(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 150 {
		name = name[len(name)-150:]
	}
	return "mqtest-" + name + "-" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func cloneMessage(m *mq.Message) *mq.Message {
	c := *m
	c.Headers = maps.Clone(m.Headers)
	c.Payload = append([]byte(nil), m.Payload...)
	return &c
}
