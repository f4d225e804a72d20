package batch_test

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
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/memory"
)

// fakeSubscriber keeps the handler a Subscriber registers, so a test can
// deliver messages to it directly and see how it settles them.
type fakeSubscriber struct {
	mu   sync.Mutex
	h    mq.Handler
	opts mq.SubscribeOptions
}

func (f *fakeSubscriber) Subscribe(_ context.Context, _ string, opts mq.SubscribeOptions, h mq.Handler) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h, f.opts = h, opts
	return nil
}

func (f *fakeSubscriber) Close() error { return nil }

func (f *fakeSubscriber) deliver(ctx context.Context, m *mq.Message) error {
	f.mu.Lock()
	h := f.h
	f.mu.Unlock()
	return h(ctx, m)
}

// envelope builds the envelope of msgs as the backend would deliver it.
func envelope(attempt int, msgs ...*mq.Message) *mq.Message {
	return &mq.Message{
		ID:      "env",
		Headers: map[string]string{batch.HeaderBatch: strconv.Itoa(len(msgs))},
		Payload: batch.Encode(msgs),
		Attempt: attempt,
	}
}

// subscribeFake subscribes h through a Subscriber on a fakeSubscriber whose
// republishes go to the returned fakePublisher.
func subscribeFake(t *testing.T, opts mq.SubscribeOptions, h mq.Handler) (*fakeSubscriber, *fakePublisher) {
	t.Helper()
	fs, fp := &fakeSubscriber{}, &fakePublisher{}
	s := batch.NewSubscriber(fs, fp, batch.SubscriberConfig{Logger: quiet()})
	if err := s.Subscribe(t.Context(), "orders", opts, h); err != nil {
		t.Fatal(err)
	}
	return fs, fp
}

// TestSubscribeUnpacks: each message of an envelope reaches the handler with
// its own ID, Key, Headers and Payload and the envelope's Attempt; a plain
// message is handed over as delivered.
func TestSubscribeUnpacks(t *testing.T) {
	var mu sync.Mutex
	got := map[string]*mq.Message{}
	var plain *mq.Message
	fs, _ := subscribeFake(t, mq.SubscribeOptions{Concurrency: 4}, func(_ context.Context, m *mq.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.ID == "plain" {
			plain = m
		}
		got[m.ID] = m
		return nil
	})
	inner := []*mq.Message{msg("a"), {ID: "b", Payload: []byte("no key, no headers")}, msg("c")}
	if err := fs.deliver(t.Context(), envelope(3, inner...)); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	delivered := &mq.Message{ID: "plain", Key: "k", Headers: map[string]string{"h": "v"}, Payload: []byte("p"), Attempt: 2}
	if err := fs.deliver(t.Context(), delivered); err != nil {
		t.Fatalf("plain message: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("handler saw %d messages, want 4", len(got))
	}
	for _, w := range inner {
		m := got[w.ID]
		if m == nil {
			t.Errorf("message %s not handled", w.ID)
			continue
		}
		assertSameMessages(t, []*mq.Message{m}, []*mq.Message{w})
		if m.Attempt != 3 {
			t.Errorf("message %s: Attempt %d, want the envelope's 3", w.ID, m.Attempt)
		}
	}
	if plain != delivered {
		t.Errorf("plain message handed over as %+v, want the delivered Message itself", plain)
	}
}

// TestSubscribeRunsEnvelopeConcurrently: the messages of an envelope are in
// the handler at the same time (a batching handler sees them together),
// never more than Concurrency, and messages of one key one after another in
// publish order.
func TestSubscribeRunsEnvelopeConcurrently(t *testing.T) {
	t.Run("together", func(t *testing.T) {
		const n = 4
		var arrived sync.WaitGroup
		arrived.Add(n)
		all := make(chan struct{})
		go func() { arrived.Wait(); close(all) }()
		fs, _ := subscribeFake(t, mq.SubscribeOptions{Concurrency: n}, func(context.Context, *mq.Message) error {
			arrived.Done()
			select {
			case <-all:
				return nil
			case <-time.After(waitTimeout):
				t.Errorf("handler waited %v for the other messages of its envelope: they are not handled together", waitTimeout)
				return errors.New("the other messages of the envelope never arrived")
			}
		})
		// Two keys and two keyless messages: each kind runs alongside.
		inner := []*mq.Message{msg("a"), msg("b"), {ID: "c"}, {ID: "d"}}
		if err := fs.deliver(t.Context(), envelope(1, inner...)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bounded by Concurrency", func(t *testing.T) {
		const concurrency = 3
		release := make(chan struct{})
		var active, peak atomic.Int64
		fs, _ := subscribeFake(t, mq.SubscribeOptions{Concurrency: concurrency}, func(context.Context, *mq.Message) error {
			n := active.Add(1)
			defer active.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			return nil
		})
		var msgs []*mq.Message
		for i := range 10 {
			msgs = append(msgs, msg(strconv.Itoa(i)))
		}
		done := make(chan error, 2)
		go func() { done <- fs.deliver(t.Context(), envelope(1, msgs[:6]...)) }()
		go func() { done <- fs.deliver(t.Context(), msgs[6]) }() // plain ones share the bound
		waitUntil(t, "Concurrency handlers busy", func() bool { return active.Load() == concurrency })
		time.Sleep(20 * time.Millisecond) // room to over-deliver, if it would
		close(release)
		for range 2 {
			if err := receive(t, done, "the deliveries"); err != nil {
				t.Fatal(err)
			}
		}
		if p := peak.Load(); p != concurrency {
			t.Errorf("peak of %d handler calls at once, want Concurrency = %d", p, concurrency)
		}
	})
	t.Run("in order within a key", func(t *testing.T) {
		var mu sync.Mutex
		var order []string
		var activeK atomic.Int64
		fs, _ := subscribeFake(t, mq.SubscribeOptions{Concurrency: 8}, func(_ context.Context, m *mq.Message) error {
			if m.Key == "k" {
				if activeK.Add(1) > 1 {
					t.Errorf("two messages of key k in the handler at once")
				}
				defer activeK.Add(-1)
				time.Sleep(5 * time.Millisecond) // a later one would overtake, if it could
			}
			mu.Lock()
			order = append(order, m.ID)
			mu.Unlock()
			return nil
		})
		keyed := func(id string) *mq.Message { return &mq.Message{ID: id, Key: "k"} }
		if err := fs.deliver(t.Context(), envelope(1, keyed("1"), msg("x"), keyed("2"), keyed("3"))); err != nil {
			t.Fatal(err)
		}
		var ofK []string
		for _, id := range order {
			if id != "x" {
				ofK = append(ofK, id)
			}
		}
		if fmt.Sprint(ofK) != "[1 2 3]" {
			t.Errorf("messages of key k handled in order %v, want [1 2 3]", ofK)
		}
	})
}

// TestSubscribeOutcome: how an envelope is settled from its messages'
// outcomes.
func TestSubscribeOutcome(t *testing.T) {
	permanent := errors.New("bad order")
	transient := mq.Transient(errors.New("database unreachable"))
	opts := mq.SubscribeOptions{Concurrency: 4, MinBackoff: time.Second, MaxBackoff: time.Minute}
	tests := []struct {
		name       string
		fail       map[string]error // by message ID; "panic" panics
		publishErr error
		cancelled  bool
		check      func(t *testing.T, err error, republished []published)
	}{
		{
			name: "all succeed: acknowledged",
			check: func(t *testing.T, err error, rep []published) {
				if err != nil || len(rep) != 0 {
					t.Errorf("err %v, %d republishes; want nil and none", err, len(rep))
				}
			},
		},
		{
			name: "transient only: redelivered whole",
			fail: map[string]error{"b": transient},
			check: func(t *testing.T, err error, rep []published) {
				if !mq.IsTransient(err) || !strings.Contains(err.Error(), "database unreachable") {
					t.Errorf("err %v, want a transient error naming the failure", err)
				}
				if len(rep) != 0 {
					t.Errorf("%d republishes, want none: the whole envelope comes back", len(rep))
				}
			},
		},
		{
			name: "permanent: the failed ones leave alone",
			fail: map[string]error{"a": permanent, "c": transient},
			check: func(t *testing.T, err error, rep []published) {
				if err != nil {
					t.Fatalf("err %v, want nil: the envelope is acknowledged once its failures are republished", err)
				}
				assertSplit(t, rep, []string{"a", "c"}, 4, opts.Backoff(4))
			},
		},
		{
			name: "panic counts as a permanent failure",
			fail: map[string]error{"b": errors.New("panic")},
			check: func(t *testing.T, err error, rep []published) {
				if err != nil {
					t.Fatalf("err %v, want nil", err)
				}
				assertSplit(t, rep, []string{"b"}, 4, opts.Backoff(4))
			},
		},
		{
			name:       "republish fails: redelivered whole",
			fail:       map[string]error{"a": permanent},
			publishErr: errors.New("queue down"),
			check: func(t *testing.T, err error, _ []published) {
				if !mq.IsTransient(err) || !strings.Contains(err.Error(), "queue down") {
					t.Errorf("err %v, want a transient error naming the republish failure", err)
				}
			},
		},
		{
			name:      "force-stopped: given back whole",
			fail:      map[string]error{"a": permanent},
			cancelled: true,
			check: func(t *testing.T, err error, rep []published) {
				if !errors.Is(err, context.Canceled) || len(rep) != 0 {
					t.Errorf("err %v, %d republishes; want context.Canceled and none", err, len(rep))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			fs, fp := subscribeFake(t, opts, func(_ context.Context, m *mq.Message) error {
				err := tc.fail[m.ID]
				if err != nil && err.Error() == "panic" {
					panic("handler bug")
				}
				if err != nil && tc.cancelled {
					cancel()
				}
				return err
			})
			fp.err = tc.publishErr
			err := fs.deliver(ctx, envelope(4, msg("a"), msg("b"), msg("c")))
			tc.check(t, err, fp.all())
		})
	}
}

// assertSplit checks that the messages ids were republished alone, plain,
// exactly as published plus HeaderAttempts = attempt, due after backoff.
func assertSplit(t *testing.T, rep []published, ids []string, attempt int, backoff time.Duration) {
	t.Helper()
	if len(rep) != 1 {
		t.Fatalf("%d republish calls, want 1", len(rep))
	}
	if rep[0].topic != "orders" {
		t.Errorf("republished to %q, want the envelope's topic", rep[0].topic)
	}
	got := rep[0].msgs
	if len(got) != len(ids) {
		t.Fatalf("republished %d messages, want %v", len(got), ids)
	}
	for i, m := range got {
		want := msg(ids[i])
		want.Headers[batch.HeaderAttempts] = strconv.Itoa(attempt)
		assertSameMessages(t, []*mq.Message{m}, []*mq.Message{want})
		if wait := time.Until(m.DeliverAt); wait < backoff-time.Second || wait > backoff {
			t.Errorf("message %s due in %v, want the backoff %v", m.ID, wait, backoff)
		}
	}
}

// TestSubscribeMalformed: an envelope that does not decode fails for good
// (the backend dead-letters it whole after MaxAttempts), without a handler
// call.
func TestSubscribeMalformed(t *testing.T) {
	tests := []struct {
		name string
		env  *mq.Message
	}{
		{"garbage", &mq.Message{ID: "env", Headers: map[string]string{batch.HeaderBatch: "1"}, Payload: []byte("not an envelope")}},
		{"count mismatch", &mq.Message{ID: "env", Headers: map[string]string{batch.HeaderBatch: "3"}, Payload: batch.Encode([]*mq.Message{msg("a")})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			fs, _ := subscribeFake(t, mq.SubscribeOptions{}, func(context.Context, *mq.Message) error { called = true; return nil })
			err := fs.deliver(t.Context(), tc.env)
			if !errors.Is(err, batch.ErrMalformed) || mq.IsTransient(err) {
				t.Errorf("err %v, want a permanent error wrapping ErrMalformed", err)
			}
			if called {
				t.Error("handler called for a malformed envelope")
			}
		})
	}
}

// TestSubscribeAttemptsCarryOn: a message republished after a failure in an
// envelope counts its earlier deliveries, plain or enveloped again, and the
// handler never sees the bookkeeping header.
func TestSubscribeAttemptsCarryOn(t *testing.T) {
	var mu sync.Mutex
	got := map[string]*mq.Message{}
	fs, _ := subscribeFake(t, mq.SubscribeOptions{}, func(_ context.Context, m *mq.Message) error {
		mu.Lock()
		got[m.ID] = clone(m)
		mu.Unlock()
		return nil
	})
	withAttempts := func(id string) *mq.Message {
		m := msg(id)
		m.Headers[batch.HeaderAttempts] = "2"
		return m
	}
	plain := withAttempts("plain")
	plain.Attempt = 1
	if err := fs.deliver(t.Context(), plain); err != nil {
		t.Fatal(err)
	}
	if err := fs.deliver(t.Context(), envelope(3, withAttempts("inner"))); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"plain": 3, "inner": 5} {
		m := got[id]
		if m == nil {
			t.Fatalf("%s not handled", id)
		}
		if m.Attempt != want {
			t.Errorf("%s: Attempt %d, want %d", id, m.Attempt, want)
		}
		if !maps.Equal(m.Headers, msg(id).Headers) {
			t.Errorf("%s: headers %v, want %v", id, m.Headers, msg(id).Headers)
		}
	}
	if _, ok := plain.Headers[batch.HeaderAttempts]; !ok {
		t.Error("the delivered Message's headers were modified")
	}
}

// TestEnvelopeOnMemoryBackend: through a real backend, one bad message in
// an envelope is retried and dead-lettered alone, its neighbours handled
// once; a transient failure brings the whole envelope back.
func TestEnvelopeOnMemoryBackend(t *testing.T) {
	b := memory.New(memory.Config{Logger: quiet()})
	pub := batch.NewPublisher(b, batch.Config{})
	sub := batch.NewSubscriber(b, b, batch.SubscriberConfig{Logger: quiet()})
	t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
	const topic, maxAttempts = "orders", 2

	var mu sync.Mutex
	calls := map[string][]int{} // id -> attempts seen
	dead := make(chan *mq.Message, 8)
	err := b.Subscribe(t.Context(), mq.DeadLetterTopic(topic), mq.SubscribeOptions{Group: "ops"}, func(_ context.Context, m *mq.Message) error {
		dead <- clone(m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = sub.Subscribe(t.Context(), topic, mq.SubscribeOptions{Group: "g", Concurrency: 8, MaxAttempts: maxAttempts, MinBackoff: time.Millisecond},
		func(_ context.Context, m *mq.Message) error {
			mu.Lock()
			calls[m.ID] = append(calls[m.ID], m.Attempt)
			n := len(calls[m.ID])
			mu.Unlock()
			switch {
			case m.ID == "bad":
				return errors.New("bad order")
			case m.ID == "flaky" && n == 1:
				return mq.Transient(errors.New("database unreachable"))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), topic, msg("good"), msg("bad"), msg("other")); err != nil {
		t.Fatal(err)
	}
	d := receive(t, dead, "the bad message's dead letter")
	if d.ID != "bad" || d.Headers["h"] != "bad" || d.Headers[batch.HeaderAttempts] != "1" {
		t.Errorf("dead letter %s with headers %v, want bad with its own headers and %s=1", d.ID, d.Headers, batch.HeaderAttempts)
	}
	if err := pub.Publish(t.Context(), topic, msg("flaky"), msg("steady")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the flaky envelope to come back", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls["steady"]) == 2
	})
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil { // drains: a wrongful redelivery would show
		t.Fatal(err)
	}
	want := map[string][]int{
		"good": {1}, "other": {1},
		"bad":   {1, 2, 3}, // in the envelope, then alone: MaxAttempts of its own
		"flaky": {1, 2}, "steady": {1, 2},
	}
	mu.Lock()
	defer mu.Unlock()
	for id, w := range want {
		if fmt.Sprint(calls[id]) != fmt.Sprint(w) {
			t.Errorf("%s handled with attempts %v, want %v", id, calls[id], w)
		}
	}
	select {
	case m := <-dead:
		t.Errorf("%s dead-lettered too, want only the bad message", m.ID)
	default:
	}
}
