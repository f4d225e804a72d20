package batch_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
)

// waitTimeout bounds every wait of these tests for something to happen.
const waitTimeout = 10 * time.Second

// fakePublisher is the backend under a Publisher: it records each Publish
// call (a copy of its messages) and can hold each call until the test lets
// it through.
type fakePublisher struct {
	mu      sync.Mutex
	calls   []published
	gate    chan struct{} // when non-nil, each Publish waits for a value from it
	stop    chan struct{} // closed at the end of the test: held calls fail
	err     error         // returned by every Publish
	closed  bool
	started chan published // receives each call as it starts, when non-nil
}

type published struct {
	topic string
	msgs  []*mq.Message
	ctx   context.Context
}

func (f *fakePublisher) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	p := published{topic: topic, ctx: ctx}
	for _, m := range msgs {
		p.msgs = append(p.msgs, clone(m))
	}
	f.mu.Lock()
	f.calls = append(f.calls, p)
	gate, err, started := f.gate, f.err, f.started
	f.mu.Unlock()
	if started != nil {
		started <- p
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.stop:
			return errors.New("fake backend: test over")
		}
	}
	return err
}

// gated returns a Publisher with cfg over a fakePublisher whose Publish
// calls each wait for the test to release them, and report their start on
// started. At the end of the test the calls still held fail, then the
// Publisher is closed: a test that fails leaves nothing hanging.
func gated(t *testing.T, cfg batch.Config) (*fakePublisher, *batch.Publisher) {
	be := &fakePublisher{gate: make(chan struct{}), stop: make(chan struct{}), started: make(chan published, 64)}
	p := batch.NewPublisher(be, cfg)
	t.Cleanup(func() {
		close(be.stop)
		_ = p.Close()
	})
	return be, p
}

// release lets one held Publish call through.
func (f *fakePublisher) release(t *testing.T) {
	t.Helper()
	select {
	case f.gate <- struct{}{}:
	case <-time.After(waitTimeout):
		t.Fatalf("no Publish call to release after %v", waitTimeout)
	}
}

func (f *fakePublisher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakePublisher) all() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.calls...)
}

func clone(m *mq.Message) *mq.Message {
	c := *m
	c.Headers = maps.Clone(m.Headers)
	c.Payload = append([]byte(nil), m.Payload...)
	return &c
}

// waitUntil polls cond until it holds, failing the test after waitTimeout
// with what did not happen.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive returns the next value of ch, failing the test after
// waitTimeout.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		panic("unreachable")
	}
}

// notYet fails the test if ch yields within a short while: something that
// must wait for an event has not waited.
func notYet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s too early: %v", what, v)
	case <-time.After(20 * time.Millisecond):
	}
}
