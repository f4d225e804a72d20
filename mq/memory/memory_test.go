package memory_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqtest"
)

func TestConformance(t *testing.T) {
	mqtest.Run(t, func(t *testing.T, cfg mqtest.BackendConfig) (mq.Publisher, mq.Subscriber) {
		b := newBroker(t, memory.Config{Capacity: cfg.Capacity})
		return b, b
	}, mqtest.Features{Bounded: true, DrainsOnClose: true})
}

func TestDepth(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, b *memory.Broker, topic string)
		want  int
	}{
		{
			name:  "unknown topic",
			setup: func(*testing.T, *memory.Broker, string) {},
			want:  0,
		},
		{
			name: "held before any subscriber",
			setup: func(t *testing.T, b *memory.Broker, topic string) {
				publishN(t, b, topic, 3)
			},
			want: 3,
		},
		{
			name: "ready and in flight",
			setup: func(t *testing.T, b *memory.Broker, topic string) {
				h := newBlocker(t)
				subscribe(t, b, topic, mq.SubscribeOptions{Group: "g"}, h.handle)
				publishN(t, b, topic, 3)
				waitUntil(t, "a message in flight", func() bool { return h.started.Load() >= 1 })
			},
			want: 3,
		},
		{
			name: "summed over groups",
			setup: func(t *testing.T, b *memory.Broker, topic string) {
				h := newBlocker(t)
				subscribe(t, b, topic, mq.SubscribeOptions{Group: "a"}, h.handle)
				subscribe(t, b, topic, mq.SubscribeOptions{Group: "b"}, h.handle)
				publishN(t, b, topic, 2)
			},
			want: 4,
		},
		{
			name: "awaiting retry",
			setup: func(t *testing.T, b *memory.Broker, topic string) {
				// The first message fails and waits an hour for its retry;
				// with one worker, the second is only taken once the first
				// is settled, so seeing it proves the first awaits a retry.
				var calls atomic.Int64
				block := make(chan struct{})
				t.Cleanup(func() { close(block) })
				subscribe(t, b, topic, mq.SubscribeOptions{Group: "g", MinBackoff: time.Hour},
					func(ctx context.Context, m *mq.Message) error {
						if calls.Add(1) == 1 {
							return errors.New("fail once")
						}
						select {
						case <-block:
						case <-ctx.Done():
						}
						return nil
					})
				publishN(t, b, topic, 2)
				waitUntil(t, "the second message in flight", func() bool { return calls.Load() == 2 })
			},
			want: 2,
		},
		{
			name: "handled",
			setup: func(t *testing.T, b *memory.Broker, topic string) {
				var handled atomic.Int64
				subscribe(t, b, topic, mq.SubscribeOptions{Group: "g", Concurrency: 2},
					func(context.Context, *mq.Message) error { handled.Add(1); return nil })
				publishN(t, b, topic, 5)
				waitUntil(t, "5 messages handled", func() bool { return handled.Load() == 5 })
			},
			want: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, memory.Config{DrainTimeout: 100 * time.Millisecond})
			tc.setup(t, b, "t")
			// Settling follows the handler's return, so poll briefly.
			waitUntil(t, fmt.Sprintf("Depth == %d", tc.want), func() bool { return b.Depth("t") == tc.want })
			if d := b.Depth("other"); d != 0 {
				t.Errorf("Depth of an unrelated topic = %d, want 0", d)
			}
		})
	}
}

func TestPublishAllOrNothing(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		setup    func(t *testing.T, b *memory.Broker) // leaves Depth("t") == before
		before   int
		batch    int
	}{
		{
			name:     "held queue short of room",
			capacity: 3,
			setup:    func(*testing.T, *memory.Broker) {},
			batch:    4,
		},
		{
			name:     "group short of room",
			capacity: 3,
			setup: func(t *testing.T, b *memory.Broker) {
				subscribe(t, b, "t", mq.SubscribeOptions{Group: "g"}, newBlocker(t).handle)
				publishN(t, b, "t", 1)
			},
			before: 1,
			batch:  3,
		},
		{
			name:     "one of two groups full",
			capacity: 2,
			setup: func(t *testing.T, b *memory.Broker) {
				h := newBlocker(t)
				subscribe(t, b, "t", mq.SubscribeOptions{Group: "full"}, h.handle)
				publishN(t, b, "t", 2)
				subscribe(t, b, "t", mq.SubscribeOptions{Group: "empty"}, h.handle)
			},
			before: 2,
			batch:  1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, memory.Config{Capacity: tc.capacity, DrainTimeout: 100 * time.Millisecond})
			tc.setup(t, b)
			batch := make([]*mq.Message, tc.batch)
			for i := range batch {
				batch[i] = &mq.Message{Payload: []byte{byte(i)}}
			}
			err := b.Publish(t.Context(), "t", batch...)
			if !errors.Is(err, mq.ErrQueueFull) {
				t.Fatalf("Publish of %d messages: err = %v, want mq.ErrQueueFull", tc.batch, err)
			}
			if d := b.Depth("t"); d != tc.before {
				t.Errorf("Depth after the refused batch = %d, want %d: part of the batch was accepted", d, tc.before)
			}
		})
	}
}

func TestDelayedCapacity(t *testing.T) {
	b := newBroker(t, memory.Config{DelayedCapacity: 2})
	future := func() *mq.Message { return &mq.Message{DeliverAt: time.Now().Add(time.Hour)} }

	if err := b.Publish(t.Context(), "t", future(), future()); err != nil {
		t.Fatalf("publishing 2 future messages with DelayedCapacity 2: %v", err)
	}
	if d := b.Delayed(); d != 2 {
		t.Errorf("Delayed() = %d, want 2", d)
	}
	if err := b.Publish(t.Context(), "t", future()); !errors.Is(err, mq.ErrQueueFull) {
		t.Errorf("third future message: err = %v, want mq.ErrQueueFull", err)
	}
	if err := b.Publish(t.Context(), "t", &mq.Message{}, future()); !errors.Is(err, mq.ErrQueueFull) {
		t.Errorf("batch of a due and a future message: err = %v, want mq.ErrQueueFull", err)
	}
	if d := b.Depth("t"); d != 0 {
		t.Errorf("Depth = %d after the refused batch, want 0: its due message was accepted", d)
	}
	if err := b.Publish(t.Context(), "t", &mq.Message{}); err != nil {
		t.Errorf("a due message while the delayed heap is full: %v, want accepted", err)
	}
	if d := b.Delayed(); d != 2 {
		t.Errorf("Delayed() = %d, want still 2", d)
	}
}

func TestCloseDropsFutureMessagesAndReports(t *testing.T) {
	logs := &logRecorder{}
	b := newBroker(t, memory.Config{Logger: slog.New(logs)})
	var handled atomic.Int64
	subscribe(t, b, "t", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error { handled.Add(1); return nil })
	for range 3 {
		if err := b.Publish(t.Context(), "t", &mq.Message{DeliverAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, b, "t", 1)

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if h := handled.Load(); h != 1 {
		t.Errorf("handled %d messages, want 1: the due one, and none of the future ones", h)
	}
	if d := b.Delayed(); d != 0 {
		t.Errorf("Delayed() after Close = %d, want 0", d)
	}
	warnings := logs.find(slog.LevelWarn, "future-dated")
	if len(warnings) != 1 {
		t.Fatalf("got %d warnings about dropped future-dated messages, want 1; logs: %v", len(warnings), logs.messages())
	}
	if n, ok := attr(warnings[0], "count"); !ok || n.Int64() != 3 {
		t.Errorf("warning count attribute = %v, want 3", n)
	}
}

func TestHeldUntilFirstSubscriber(t *testing.T) {
	b := newBroker(t, memory.Config{})
	publishN(t, b, "t", 3) // before anyone subscribes

	first, second := &payloads{}, &payloads{}
	subscribe(t, b, "t", mq.SubscribeOptions{Group: "first"}, first.handle)
	waitUntil(t, "the 3 held messages in the first group", func() bool { return first.len() == 3 })
	subscribe(t, b, "t", mq.SubscribeOptions{Group: "second"}, second.handle)
	if err := b.Publish(t.Context(), "t", &mq.Message{Payload: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := first.all(); len(got) != 4 {
		t.Errorf("first group got %q, want the 3 held messages and \"new\"", got)
	}
	if got := second.all(); len(got) != 1 || got[0] != "new" {
		t.Errorf("second group got %q, want only [\"new\"]: held messages go to the first group only", got)
	}
}

func TestDeadLetterRetainedWithoutSubscriber(t *testing.T) {
	logs := &logRecorder{}
	b := newBroker(t, memory.Config{Logger: slog.New(logs)})
	subscribe(t, b, "t", mq.SubscribeOptions{MaxAttempts: 2, MinBackoff: time.Millisecond},
		func(context.Context, *mq.Message) error { return errors.New("db down") })
	if err := b.Publish(t.Context(), "t", &mq.Message{Payload: []byte("order-1")}); err != nil {
		t.Fatal(err)
	}
	dlq := mq.DeadLetterTopic("t")
	waitUntil(t, "the dead letter held on "+dlq+" and logged", func() bool {
		return b.Depth(dlq) == 1 && len(logs.find(slog.LevelError, "dead-lettered")) > 0
	})
	if n := len(logs.find(slog.LevelError, "dead-lettered")); n != 1 {
		t.Errorf("got %d error logs about the dead letter, want 1; logs: %v", n, logs.messages())
	}

	var got atomic.Pointer[mq.Message]
	subscribe(t, b, dlq, mq.SubscribeOptions{Group: "operator"}, func(_ context.Context, m *mq.Message) error {
		got.Store(m)
		return nil
	})
	waitUntil(t, "the operator to read the dead letter", func() bool { return got.Load() != nil })
	m := got.Load()
	if string(m.Payload) != "order-1" || m.Headers[mq.HeaderDeadLetterReason] != "db down" {
		t.Errorf("dead letter payload %q reason %q, want \"order-1\" and \"db down\"", m.Payload, m.Headers[mq.HeaderDeadLetterReason])
	}
}

// TestTransientFailuresInterleaved: only the failures not marked transient
// count toward MaxAttempts, also when they alternate with transient ones;
// the dead letter reports every delivery in its attempts header, and the
// retries of an outage are paced by the backoff capped at MaxBackoff.
func TestTransientFailuresInterleaved(t *testing.T) {
	b := newBroker(t, memory.Config{})
	// P = permanent, T = transient: the third P is the third counted
	// failure, MaxAttempts = 3, at delivery 8.
	const script = "TPTTPTTP"
	const maxBackoff = 4 * time.Millisecond
	var (
		mu       sync.Mutex
		attempts []int
		times    []time.Time
	)
	subscribe(t, b, "t", mq.SubscribeOptions{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: maxBackoff},
		func(_ context.Context, m *mq.Message) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, m.Attempt)
			times = append(times, time.Now())
			n := len(attempts)
			if n > len(script) {
				return nil
			}
			err := fmt.Errorf("failure %d", n)
			if script[n-1] == 'T' {
				return mq.Transient(err)
			}
			return err
		})
	var dead atomic.Pointer[mq.Message]
	subscribe(t, b, mq.DeadLetterTopic("t"), mq.SubscribeOptions{Group: "ops"}, func(_ context.Context, m *mq.Message) error {
		dead.Store(m)
		return nil
	})
	publishN(t, b, "t", 1)
	waitUntil(t, "the dead letter", func() bool { return dead.Load() != nil })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if want := "[1 2 3 4 5 6 7 8]"; fmt.Sprint(attempts) != want {
		t.Errorf("attempts %v, want %s: transient failures are deliveries but do not count toward MaxAttempts", attempts, want)
	}
	m := dead.Load()
	if m.Headers[mq.HeaderDeadLetterAttempts] != "8" || m.Headers[mq.HeaderDeadLetterReason] != "failure 8" {
		t.Errorf("dead letter attempts %q reason %q, want \"8\" and \"failure 8\"",
			m.Headers[mq.HeaderDeadLetterAttempts], m.Headers[mq.HeaderDeadLetterReason])
	}
	opts := mq.SubscribeOptions{MinBackoff: time.Millisecond, MaxBackoff: maxBackoff}
	for i := 1; i < len(times); i++ {
		if wait, want := times[i].Sub(times[i-1]), opts.Backoff(i); wait < want {
			t.Errorf("delivery %d came %v after delivery %d, want at least the backoff %v", i+1, wait, i, want)
		}
	}
}

func TestCloseTimeoutCancelsHandlers(t *testing.T) {
	b := newBroker(t, memory.Config{DrainTimeout: 50 * time.Millisecond})
	var started, returned atomic.Bool
	var ctxErr atomic.Value
	subscribe(t, b, "t", mq.SubscribeOptions{}, func(ctx context.Context, _ *mq.Message) error {
		started.Store(true)
		<-ctx.Done() // a handler stuck until force-stopped
		ctxErr.Store(ctx.Err())
		returned.Store(true)
		return ctx.Err()
	})
	publishN(t, b, "t", 2)
	waitUntil(t, "the handler to start", started.Load)

	err := b.Close()
	if err == nil || !strings.Contains(err.Error(), "2 messages unhandled") {
		t.Errorf("Close = %v, want an error reporting 2 messages unhandled", err)
	}
	if !returned.Load() {
		t.Error("Close returned before the cancelled handler did")
	}
	if e, _ := ctxErr.Load().(error); !errors.Is(e, context.Canceled) {
		t.Errorf("handler context error = %v, want context.Canceled", e)
	}
	if again := b.Close(); again == nil || again.Error() != err.Error() {
		t.Errorf("second Close = %v, want the first result %v", again, err)
	}
}

func TestCloseConcurrentCallsAgree(t *testing.T) {
	b := newBroker(t, memory.Config{})
	var handled atomic.Int64
	subscribe(t, b, "t", mq.SubscribeOptions{}, func(context.Context, *mq.Message) error {
		time.Sleep(time.Millisecond)
		handled.Add(1)
		return nil
	})
	publishN(t, b, "t", 10)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if h := handled.Load(); h != 10 {
				t.Errorf("a Close returned with %d of 10 messages handled", h)
			}
		})
	}
	wg.Wait()
}

func TestHandlerPanicIsRedelivered(t *testing.T) {
	logs := &logRecorder{}
	b := newBroker(t, memory.Config{Logger: slog.New(logs)})
	var attempts []int
	var mu sync.Mutex
	subscribe(t, b, "t", mq.SubscribeOptions{MinBackoff: time.Millisecond}, func(_ context.Context, m *mq.Message) error {
		mu.Lock()
		attempts = append(attempts, m.Attempt)
		mu.Unlock()
		if m.Attempt == 1 {
			panic("boom")
		}
		return nil
	})
	publishN(t, b, "t", 1)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2]" {
		t.Errorf("attempts %v, want [1 2]: a panic counts as a failed attempt", attempts)
	}
	if n := len(logs.find(slog.LevelError, "panicked")); n != 1 {
		t.Errorf("got %d panic logs, want 1", n)
	}
}

func TestSubscribeContextCarriesValuesNotCancellation(t *testing.T) {
	type key struct{}
	b := newBroker(t, memory.Config{})
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	type seen struct {
		value any
		err   error
	}
	got := make(chan seen, 1)
	err := b.Subscribe(ctx, "t", mq.SubscribeOptions{}, func(ctx context.Context, _ *mq.Message) error {
		got <- seen{ctx.Value(key{}), ctx.Err()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel() // the subscription outlives it, so Close can still drain
	publishN(t, b, "t", 1)
	select {
	case s := <-got:
		if s.value != "v" || s.err != nil {
			t.Errorf("handler context value %v err %v, want \"v\" and nil", s.value, s.err)
		}
	case <-time.After(mqtest.WaitTimeout):
		t.Fatal("no delivery after the Subscribe context was cancelled")
	}
}

func TestMessagesAreCopied(t *testing.T) {
	b := newBroker(t, memory.Config{})
	a, other := &payloads{}, &payloads{}
	var headers sync.Map // group -> header "h" as delivered
	subscribe(t, b, "t", mq.SubscribeOptions{Group: "a", MinBackoff: time.Millisecond}, func(ctx context.Context, m *mq.Message) error {
		if m.Attempt == 1 { // scribble over our copy, then ask for a redelivery
			m.Payload[0] = 'X'
			m.Headers["h"] = "scribbled"
			return errors.New("retry")
		}
		headers.Store("a", m.Headers["h"])
		return a.handle(ctx, m)
	})
	subscribe(t, b, "t", mq.SubscribeOptions{Group: "other"}, func(ctx context.Context, m *mq.Message) error {
		headers.Store("other", m.Headers["h"])
		return other.handle(ctx, m)
	})

	msg := &mq.Message{Headers: map[string]string{"h": "orig"}, Payload: []byte("orig")}
	if err := b.Publish(t.Context(), "t", msg); err != nil {
		t.Fatal(err)
	}
	msg.Payload[0] = 'Y' // the publisher reuses its buffers
	msg.Headers["h"] = "reused"
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		name string
		got  *payloads
	}{{"a", a}, {"other", other}} {
		h, _ := headers.Load(g.name)
		if p := g.got.all(); len(p) != 1 || p[0] != "orig" || h != "orig" {
			t.Errorf("group %s got payloads %q header %v, want [\"orig\"] and \"orig\"", g.name, p, h)
		}
	}
	if msg.ID != "" {
		t.Errorf("Publish set the caller's ID to %q, want the caller's message untouched", msg.ID)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		topic string
		msgs  []*mq.Message
		is    error
	}{
		{"empty topic", context.Background(), "", []*mq.Message{{}}, nil},
		{"nil message", context.Background(), "t", []*mq.Message{{}, nil}, nil},
		{"cancelled context", cancelled, "t", []*mq.Message{{}}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, memory.Config{})
			err := b.Publish(tc.ctx, tc.topic, tc.msgs...)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("Publish = %v, want an error (wrapping %v)", err, tc.is)
			}
			if d := b.Depth(tc.topic); d != 0 {
				t.Errorf("Depth = %d after a rejected Publish, want 0", d)
			}
		})
	}
}

func TestSubscribeRejectsBadInput(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	ok := func(context.Context, *mq.Message) error { return nil }
	tests := []struct {
		name  string
		ctx   context.Context
		topic string
		h     mq.Handler
	}{
		{"empty topic", context.Background(), "", ok},
		{"nil handler", context.Background(), "t", nil},
		{"cancelled context", cancelled, "t", ok},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, memory.Config{})
			if err := b.Subscribe(tc.ctx, tc.topic, mq.SubscribeOptions{}, tc.h); err == nil {
				t.Error("Subscribe = nil, want an error")
			}
		})
	}
}

// newBroker returns a broker logging to the test output, closed at cleanup.
func newBroker(t *testing.T, cfg memory.Config) *memory.Broker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	b := memory.New(cfg)
	t.Cleanup(func() { _ = b.Close() }) // tests that care check Close themselves
	return b
}

func subscribe(t *testing.T, b *memory.Broker, topic string, opts mq.SubscribeOptions, h mq.Handler) {
	t.Helper()
	if err := b.Subscribe(t.Context(), topic, opts, h); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
}

func publishN(t *testing.T, b *memory.Broker, topic string, n int) {
	t.Helper()
	for i := range n {
		if err := b.Publish(t.Context(), topic, &mq.Message{Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(mqtest.WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", mqtest.WaitTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// blocker is a handler that holds every message until the test ends.
type blocker struct {
	release chan struct{}
	started atomic.Int64
}

func newBlocker(t *testing.T) *blocker {
	h := &blocker{release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) }) // before the broker's Close
	return h
}

func (h *blocker) handle(ctx context.Context, _ *mq.Message) error {
	h.started.Add(1)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return nil
}

// payloads records the payloads a handler saw.
type payloads struct {
	mu  sync.Mutex
	got []string
}

func (p *payloads) handle(_ context.Context, m *mq.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, string(m.Payload))
	return nil
}

func (p *payloads) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func (p *payloads) len() int { return len(p.all()) }

// logRecorder is a slog.Handler keeping every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// find returns the records at level whose message contains substr.
func (l *logRecorder) find(level slog.Level, substr string) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Message, substr) {
			out = append(out, r)
		}
	}
	return out
}

func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

func attr(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}
