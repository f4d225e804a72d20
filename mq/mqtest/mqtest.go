// Package mqtest is the conformance suite every mq backend passes, so the
// gateway and the workers can rely on one behaviour whichever backend they
// run on. A backend's test calls Run with a Factory that builds a fresh
// backend per case and the Features it has.
//
// The suite asserts only what the mq contract promises: delivery with
// intact fields, redelivery with backoff, dead-lettering, delayed delivery
// never early, capacity (for bounded backends), drain on Close, bounded
// concurrency, consumer-group fan-out, headers intact on every path a
// message takes, and a trace that crosses the backend through the mqotel
// decorators. Time is only ever measured as a lower bound (nothing arrives
// too early); waits are bounded by WaitTimeout and fail naming what did not
// arrive, so a slow machine makes the suite slower, never red.
package mqtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
)

// WaitTimeout bounds every wait of the suite for an event.
const WaitTimeout = 10 * time.Second

// BackendConfig is what a case asks of the backend it builds.
type BackendConfig struct {
	// Capacity is the bound a bounded backend must enforce per topic and
	// group on unhandled messages (ready, in flight or awaiting a retry).
	// Zero means the backend's default; unbounded backends ignore it.
	Capacity int
}

// Factory builds a fresh backend for one case. Publisher and Subscriber may
// be the same value. The factory should close them in t.Cleanup; the suite
// closes them too, so Close must be idempotent. Topics are named by the
// suite (unique per case, [a-zA-Z0-9._-] only); a backend that needs topics
// created must create them on first use.
type Factory func(t *testing.T, cfg BackendConfig) (mq.Publisher, mq.Subscriber)

// Features declares the optional behaviours of a backend; the cases that
// depend on one are skipped (or weakened, as documented) when it is false.
type Features struct {
	// Bounded: Publish fails with an error wrapping mq.ErrQueueFull once a
	// topic-group holds BackendConfig.Capacity unhandled messages.
	Bounded bool
	// DrainsOnClose: Close returns only after every message accepted
	// before it has been handled. Backends that leave unhandled messages
	// to the next consumer (Kafka commits only handled offsets) leave it
	// false; the suite then only checks that no handler runs after Close.
	DrainsOnClose bool
	// SplitRetries: the decorator pair of package mq/batch with every
	// message sent in an envelope. A message that fails for good inside
	// its envelope is republished alone, due after its backoff, and from
	// then on retried by the backend as a new message: its Attempt goes
	// on counting, but the move costs it a step of the backoff ladder
	// (the redelivery after failed attempt a >= 2 waits at least
	// Backoff(a-1), not Backoff(a)) and one delivery more before it is
	// dead-lettered (MaxAttempts + 1, of which the dead letter's
	// attempts header counts the MaxAttempts since the move). The
	// redelivery, dead-letter and header cases check those bounds when
	// it is set; every other expectation stands. No backend sets it.
	SplitRetries bool
}

// Run runs the conformance cases as parallel subtests of t.
//
// Every case subscribes before it publishes and expects the messages
// published after Subscribe returned; a backend whose groups join
// asynchronously must start new groups at the earliest offset.
func Run(t *testing.T, newBackend Factory, f Features) {
	cases := []struct {
		name string
		run  func(*testing.T, Factory, Features)
	}{
		{"Delivery", testDelivery},
		{"RedeliveryWithBackoff", testRedelivery},
		{"DeadLetterAfterMaxAttempts", testDeadLetter},
		{"TransientFailuresNeverDeadLetter", testTransient},
		{"DelayedNeverEarly", testDelayed},
		{"QueueFull", testQueueFull},
		{"CloseDrains", testCloseDrains},
		{"Concurrency", testConcurrency},
		{"ConsumerGroups", testGroups},
		{"HeadersOnEveryPath", testHeaders},
		{"TracePropagation", testTracePropagation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newBackend, f)
		})
	}
}

// testDelivery: every message is delivered once, with ID (assigned when
// empty), key, headers and payload intact, and Attempt == 1.
func testDelivery(t *testing.T, newBackend Factory, _ Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	rec := newRecorder()
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g", Concurrency: 2}, rec.handler(nil))

	const n = 20
	want := make(map[string]*mq.Message, n)
	var batch []*mq.Message
	for i := range n {
		m := &mq.Message{
			Key:     "key-" + strconv.Itoa(i%3),
			Headers: map[string]string{"h": "v-" + strconv.Itoa(i), "trace": "t"},
			Payload: []byte("payload-" + strconv.Itoa(i)),
		}
		if i%2 == 0 {
			m.ID = "id-" + strconv.Itoa(i)
		}
		want[string(m.Payload)] = cloneMessage(m)
		if i < n/2 {
			publish(t, pub, topic, m) // one at a time
		} else {
			batch = append(batch, m)
		}
	}
	publish(t, pub, topic, batch...)

	rec.waitCount(t, n, fmt.Sprintf("%d messages on %s", n, topic))
	closeAll(t, pub, sub)

	got := rec.all()
	if len(got) != n {
		t.Fatalf("got %d deliveries of %d messages, want each exactly once", len(got), n)
	}
	seen := make(map[string]bool, n)
	for _, d := range got {
		p := string(d.msg.Payload)
		w, ok := want[p]
		switch {
		case !ok:
			t.Errorf("delivered unknown payload %q", p)
			continue
		case seen[p]:
			t.Errorf("payload %q delivered twice", p)
		}
		seen[p] = true
		if d.msg.Key != w.Key {
			t.Errorf("payload %q: key %q, want %q", p, d.msg.Key, w.Key)
		}
		if !maps.Equal(d.msg.Headers, w.Headers) {
			t.Errorf("payload %q: headers %v, want %v", p, d.msg.Headers, w.Headers)
		}
		if d.msg.Attempt != 1 {
			t.Errorf("payload %q: Attempt %d, want 1", p, d.msg.Attempt)
		}
		if w.ID != "" && d.msg.ID != w.ID {
			t.Errorf("payload %q: ID %q, want %q", p, d.msg.ID, w.ID)
		}
		if d.msg.ID == "" {
			t.Errorf("payload %q: empty ID, want one assigned by the backend", p)
		}
	}
}

// testRedelivery: a failing message comes back with Attempt incremented,
// never before opts.Backoff(attempt) has passed since the failure (see
// SplitRetries for the one exception); once the handler succeeds (attempt
// 3) it is neither redelivered nor dead-lettered.
func testRedelivery(t *testing.T, newBackend Factory, f Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	opts := mq.SubscribeOptions{Group: "g", MaxAttempts: 5, MinBackoff: 50 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}

	dlq := newRecorder()
	subscribe(t, sub, mq.DeadLetterTopic(topic), mq.SubscribeOptions{Group: "g"}, dlq.handler(nil))

	var mu sync.Mutex
	failedAt := map[int]time.Time{} // attempt -> when its handler returned the error
	rec := newRecorder()
	subscribe(t, sub, topic, opts, rec.handler(func(_ context.Context, m *mq.Message) error {
		if m.Attempt < 3 {
			mu.Lock()
			defer mu.Unlock()
			failedAt[m.Attempt] = time.Now()
			return fmt.Errorf("transient failure on attempt %d", m.Attempt)
		}
		return nil
	}))

	publish(t, pub, topic, &mq.Message{Key: "k", Payload: []byte("retry-me")})
	rec.waitCount(t, 3, "3 deliveries (2 failures, then success)")
	closeAll(t, pub, sub) // a wrongful further redelivery would be drained here

	got := rec.all()
	if len(got) != 3 {
		t.Fatalf("got %d deliveries, want 3: a message whose handler succeeded was redelivered", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	def := opts.WithDefaults()
	for i, d := range got {
		if d.msg.Attempt != i+1 {
			t.Errorf("delivery %d: Attempt %d, want %d", i+1, d.msg.Attempt, i+1)
		}
		if string(d.msg.Payload) != "retry-me" || d.msg.ID != got[0].msg.ID {
			t.Errorf("delivery %d: ID %q payload %q, want the same message (%q, \"retry-me\")",
				i+1, d.msg.ID, d.msg.Payload, got[0].msg.ID)
		}
		if i == 0 {
			continue
		}
		failed := failedAt[i]
		backoff := def.Backoff(i)
		if f.SplitRetries {
			backoff = def.Backoff(max(i-1, 1))
		}
		if wait := d.at.Sub(failed); wait < backoff {
			t.Errorf("attempt %d arrived %v after attempt %d failed, want at least the backoff %v", i+1, wait, i, backoff)
		}
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("dead-letter topic got %d messages, want none: the handler succeeded on attempt 3", n)
	}
}

// testDeadLetter: after MaxAttempts failures (one more with SplitRetries)
// the handler is not called again and the message is on the dead-letter
// topic with its payload, key and headers plus the reason, attempts and
// original-topic headers.
func testDeadLetter(t *testing.T, newBackend Factory, f Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	const maxAttempts = 3
	reason := "permanent failure " + randomHex(4)

	dlq := newRecorder()
	subscribe(t, sub, mq.DeadLetterTopic(topic), mq.SubscribeOptions{Group: "ops"}, dlq.handler(nil))
	rec := newRecorder()
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g", MaxAttempts: maxAttempts, MinBackoff: time.Millisecond},
		rec.handler(func(context.Context, *mq.Message) error { return errors.New(reason) }))

	headers := map[string]string{"h": "v"}
	publish(t, pub, topic, &mq.Message{Key: "k", Headers: maps.Clone(headers), Payload: []byte("poison")})
	dlq.waitCount(t, 1, "the message on "+mq.DeadLetterTopic(topic))
	closeAll(t, pub, sub)

	if n, want := len(rec.all()), deliveriesToDeadLetter(maxAttempts, f); n != want {
		t.Errorf("handler called %d times, want exactly %d (MaxAttempts = %d, SplitRetries %t)", n, want, maxAttempts, f.SplitRetries)
	}
	got := dlq.all()
	if len(got) != 1 {
		t.Fatalf("dead-letter topic got %d messages, want 1", len(got))
	}
	m := got[0].msg
	if string(m.Payload) != "poison" || m.Key != "k" {
		t.Errorf("dead letter key %q payload %q, want the original (\"k\", \"poison\")", m.Key, m.Payload)
	}
	if r := m.Headers[mq.HeaderDeadLetterReason]; !strings.Contains(r, reason) {
		t.Errorf("header %s = %q, want it to contain the handler error %q", mq.HeaderDeadLetterReason, r, reason)
	}
	if a := m.Headers[mq.HeaderDeadLetterAttempts]; a != strconv.Itoa(maxAttempts) {
		t.Errorf("header %s = %q, want %d", mq.HeaderDeadLetterAttempts, a, maxAttempts)
	}
	if o := m.Headers[mq.HeaderOriginalTopic]; o != topic {
		t.Errorf("header %s = %q, want %q", mq.HeaderOriginalTopic, o, topic)
	}
	for k, v := range headers {
		if m.Headers[k] != v {
			t.Errorf("dead letter lost original header %s=%q (got %q)", k, v, m.Headers[k])
		}
	}
}

// testTransient: failures marked mq.Transient (an outage) are retried past
// MaxAttempts and never dead-lettered; a permanent failure after them still
// has its full MaxAttempts.
func testTransient(t *testing.T, newBackend Factory, _ Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	const maxAttempts = 2
	const outage = 3 * maxAttempts // transient failures in a row

	dlq := newRecorder()
	subscribe(t, sub, mq.DeadLetterTopic(topic), mq.SubscribeOptions{Group: "ops"}, dlq.handler(nil))
	rec := newRecorder()
	var calls atomic.Int64
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g", MaxAttempts: maxAttempts, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		rec.handler(func(context.Context, *mq.Message) error {
			switch n := calls.Add(1); {
			case n <= outage:
				return mq.Transient(fmt.Errorf("database unreachable (call %d)", n))
			case n == outage+1:
				return errors.New("one permanent failure")
			default:
				return nil
			}
		}))
	publish(t, pub, topic, &mq.Message{Payload: []byte("through the outage")})
	rec.waitCount(t, outage+2, "the deliveries through the outage and the permanent failure")
	closeAll(t, pub, sub)

	got := rec.all()
	if len(got) != outage+2 {
		t.Errorf("handler called %d times, want %d (%d transient failures, 1 permanent, 1 success)", len(got), outage+2, outage)
	}
	for i, d := range got {
		if d.msg.Attempt != i+1 {
			t.Errorf("delivery %d has Attempt %d, want %d (transient failures count as deliveries)", i+1, d.msg.Attempt, i+1)
		}
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d messages dead-lettered, want 0: transient failures must not count toward MaxAttempts = %d", n, maxAttempts)
	}
}

// testDelayed: a future-dated message never arrives before its DeliverAt,
// and one published later but due earlier arrives first.
func testDelayed(t *testing.T, newBackend Factory, _ Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	rec := newRecorder()
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "g"}, rec.handler(nil))

	now := time.Now()
	due := map[string]time.Time{
		"late":  now.Add(400 * time.Millisecond),
		"early": now.Add(200 * time.Millisecond),
	}
	// Distinct keys: a partitioned backend need not order across them, but
	// must still deliver by due time.
	publish(t, pub, topic, &mq.Message{Key: "a", Payload: []byte("late"), DeliverAt: due["late"]})
	publish(t, pub, topic, &mq.Message{Key: "b", Payload: []byte("early"), DeliverAt: due["early"]})

	rec.waitCount(t, 2, "2 delayed messages")
	got := rec.all()
	for _, d := range got {
		p := string(d.msg.Payload)
		if d.at.Before(due[p]) {
			t.Errorf("%q arrived %v before its DeliverAt", p, due[p].Sub(d.at))
		}
		if d.msg.Attempt != 1 {
			t.Errorf("%q: Attempt %d, want 1", p, d.msg.Attempt)
		}
	}
	if p := string(got[0].msg.Payload); p != "early" {
		t.Errorf("first arrival %q, want \"early\" (published later but due earlier)", p)
	}
}

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

// testGroups: every group receives every message once; the members of one
// group share the messages, each handled exactly once in total.
func testGroups(t *testing.T, newBackend Factory, _ Features) {
	pub, sub := build(t, newBackend, BackendConfig{})
	topic := topicName(t)
	a, b, c1, c2 := newRecorder(), newRecorder(), newRecorder(), newRecorder()
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "a"}, a.handler(nil))
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "b", Concurrency: 2}, b.handler(nil))
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "c", Concurrency: 2}, c1.handler(nil))
	subscribe(t, sub, topic, mq.SubscribeOptions{Group: "c", Concurrency: 2}, c2.handler(nil))

	const n = 30
	for i := range n {
		publish(t, pub, topic, &mq.Message{Key: strconv.Itoa(i), Payload: []byte(strconv.Itoa(i))})
	}
	a.waitCount(t, n, "every message in group a")
	b.waitCount(t, n, "every message in group b")
	waitUntil(t, "every message in group c (two members)", func() bool { return len(c1.all())+len(c2.all()) >= n })
	closeAll(t, pub, sub) // duplicates still pending would be drained here

	for _, g := range []struct {
		name string
		got  []delivery
	}{
		{"a", a.all()},
		{"b", b.all()},
		{"c", append(c1.all(), c2.all()...)},
	} {
		count := make(map[string]int)
		for _, d := range g.got {
			count[string(d.msg.Payload)]++
		}
		for i := range n {
			if k := count[strconv.Itoa(i)]; k != 1 {
				t.Errorf("group %s handled message %d %d times, want exactly once", g.name, i, k)
			}
		}
		if len(g.got) != n {
			t.Errorf("group %s handled %d deliveries, want %d", g.name, len(g.got), n)
		}
	}
}
