package mqtest

// Conformance cases of flow control: the capacity bound, the concurrency
// bound, and draining on Close.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
)

// testQueueFull: a bounded backend refuses the message past Capacity with
// mq.ErrQueueFull, never delivers it, and accepts again once drained.
func testQueueFull(t *testing.T, newBackend Factory, f Features) {
	if !f.Bounded {
		t.Skip("backend is unbounded (Features.Bounded is false)")
	}
	const capacity = 4
	pub, sub := build(t, newBackend, BackendConfig{Capacity: capacity})
	topic := topicName(t)
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // runs before the backend closes
	rec := newRecorder()
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g"}, rec.handler(blockUntil(release)))

	for i := range capacity {
		publish(t, pub, topic, &mq.Message{Payload: []byte("m" + strconv.Itoa(i))})
	}
	err := pub.Publish(t.Context(), topic, &mq.Message{Payload: []byte("refused")})
	if !errors.Is(err, mq.ErrQueueFull) {
		t.Fatalf("publishing message %d with Capacity %d: err = %v, want mq.ErrQueueFull", capacity+1, capacity, err)
	}

	unblock()
	rec.waitCount(t, capacity, "the accepted messages to be handled")
	publish(t, pub, topic, &mq.Message{Payload: []byte("after-drain")})
	rec.waitCount(t, capacity+1, "the message published after the queue drained")
	closeAll(t, pub, sub)
	for _, d := range rec.all() {
		if string(d.msg.Payload) == "refused" {
			t.Errorf("the message refused with ErrQueueFull was delivered")
		}
	}
}

// testCloseDrains: Close returns only after the handlers in flight returned
// and (DrainsOnClose) every accepted message was handled; then Publish and
// Subscribe fail with mq.ErrClosed, and Close again succeeds.
func testCloseDrains(t *testing.T, newBackend Factory, f Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	var active, handled atomic.Int64
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g", Concurrency: 3}, func(context.Context, *mq.Message) error {
		active.Add(1)
		defer active.Add(-1)
		time.Sleep(20 * time.Millisecond) // slow enough that Close finds work queued
		handled.Add(1)
		return nil
	})

	const n = 12
	for i := range n {
		publish(t, pub, topic, &mq.Message{Payload: []byte(strconv.Itoa(i))})
	}
	if !f.DrainsOnClose {
		waitUntil(t, "a message to be handled", func() bool { return handled.Load() > 0 })
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("publisher Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("subscriber Close: %v", err)
	}
	if a := active.Load(); a != 0 {
		t.Errorf("%d handlers still running after Close returned", a)
	}
	if h := handled.Load(); f.DrainsOnClose && h != n {
		t.Errorf("%d of %d accepted messages handled when Close returned, want all", h, n)
	}

	err := pub.Publish(context.Background(), topic, &mq.Message{Payload: []byte("late")})
	if !errors.Is(err, mq.ErrClosed) {
		t.Errorf("Publish after Close: err = %v, want mq.ErrClosed", err)
	}
	err = sub.Subscribe(context.Background(), topic, mq.SubscribeOptions{Group: "late"}, func(context.Context, *mq.Message) error { return nil })
	if !errors.Is(err, mq.ErrClosed) {
		t.Errorf("Subscribe after Close: err = %v, want mq.ErrClosed", err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("second publisher Close: %v, want nil (Close is idempotent)", err)
	}
	if err := sub.Close(); err != nil {
		t.Errorf("second subscriber Close: %v, want nil (Close is idempotent)", err)
	}
}

// testConcurrency: a subscription runs up to, and never more than,
// Concurrency handlers at once.
func testConcurrency(t *testing.T, newBackend Factory, _ Features) {
	tests := []struct {
		concurrency int
		messages    int
	}{
		{concurrency: 4, messages: 12},
		{concurrency: 1, messages: 6},
	}
	for _, tc := range tests {
		t.Run("concurrency="+strconv.Itoa(tc.concurrency), func(t *testing.T) {
			t.Parallel()
			pub, sub := build(t, newBackend, BackendConfig{})
			topic := topicName(t)
			release := make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			t.Cleanup(unblock)
			var active, peak, handled atomic.Int64
			subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g", Concurrency: tc.concurrency},
				func(ctx context.Context, _ *mq.Message) error {
					n := active.Add(1)
					defer active.Add(-1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					select {
					case <-release:
					case <-ctx.Done():
					}
					handled.Add(1)
					return nil
				})
			for i := range tc.messages {
				publish(t, pub, topic, &mq.Message{Payload: []byte(strconv.Itoa(i))})
			}
			waitUntil(t, fmt.Sprintf("%d handlers in flight at once", tc.concurrency),
				func() bool { return active.Load() >= int64(tc.concurrency) })
			// Give a backend that over-delivers the chance to show it; a
			// correct one stays at Concurrency however long this takes.
			time.Sleep(20 * time.Millisecond)
			unblock()
			waitUntil(t, fmt.Sprintf("all %d messages handled", tc.messages),
				func() bool { return handled.Load() == int64(tc.messages) })
			if p := peak.Load(); p != int64(tc.concurrency) {
				t.Errorf("peak of %d handlers in flight, want exactly Concurrency = %d", p, tc.concurrency)
			}
		})
	}
}
