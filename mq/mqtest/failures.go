package mqtest

// Conformance cases of the failure path: redelivery with backoff,
// dead-lettering, transient failures that never dead-letter.

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
