package batch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
)

// publishAsync runs p.Publish in a goroutine and returns its result
// channel.
func publishAsync(ctx context.Context, p *batch.Publisher, topic string, msgs ...*mq.Message) <-chan error {
	res := make(chan error, 1)
	go func() { res <- p.Publish(ctx, topic, msgs...) }()
	return res
}

func msg(id string) *mq.Message {
	return &mq.Message{ID: id, Key: "key-" + id, Headers: map[string]string{"h": id}, Payload: []byte("payload-" + id)}
}

// envelopeOf decodes the envelope a Publish call carried, failing the test
// if it was not one.
func envelopeOf(t *testing.T, c published) []*mq.Message {
	t.Helper()
	if len(c.msgs) != 1 {
		t.Fatalf("backend Publish of %d messages, want one envelope", len(c.msgs))
	}
	env := c.msgs[0]
	if _, ok := env.Headers[batch.HeaderBatch]; !ok {
		t.Fatalf("backend got message %q with headers %v, want an envelope (header %s)", env.ID, env.Headers, batch.HeaderBatch)
	}
	msgs, err := batch.Decode(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if n := env.Headers[batch.HeaderBatch]; n != fmt.Sprint(len(msgs)) {
		t.Errorf("envelope header %s = %q, carries %d messages", batch.HeaderBatch, n, len(msgs))
	}
	return msgs
}

func ids(msgs []*mq.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// TestPublishGroupsWhileStoring: a lone message is sent at once, plain; the
// callers that arrive while it is being stored share the next envelope,
// which carries each message exactly; nobody's Publish returns before the
// backend accepted the message that carries theirs.
func TestPublishGroupsWhileStoring(t *testing.T) {
	be, p := gated(t, batch.Config{MaxBatch: 8})
	ctx := t.Context()

	first := publishAsync(ctx, p, "orders", msg("a"))
	c1 := receive(t, be.started, "the first message's Publish")
	if len(c1.msgs) != 1 || c1.msgs[0].ID != "a" || c1.msgs[0].Headers[batch.HeaderBatch] != "" {
		t.Fatalf("first backend call %v, want message a alone and plain", ids(c1.msgs))
	}
	want := []*mq.Message{msg("b"), msg("c"), msg("d"), msg("e"), msg("f")}
	var rest []<-chan error
	for _, m := range want {
		rest = append(rest, publishAsync(ctx, p, "orders", clone(m)))
	}
	waitUntil(t, "5 callers waiting", func() bool { return batch.Waiting(p, "orders") == 5 })
	notYet(t, first, "the first Publish returned before the backend accepted it")

	be.release(t)
	if err := receive(t, first, "the first Publish"); err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	c2 := receive(t, be.started, "the envelope's Publish")
	for _, r := range rest {
		notYet(t, r, "a Publish returned before its envelope was accepted")
	}
	be.release(t)
	for i, r := range rest {
		if err := receive(t, r, "Publish "+want[i].ID); err != nil {
			t.Errorf("Publish %s: %v", want[i].ID, err)
		}
	}
	got := envelopeOf(t, c2)
	// Callers joined in no particular order: compare by ID.
	byID := map[string]*mq.Message{}
	for _, m := range got {
		byID[m.ID] = m
	}
	ordered := make([]*mq.Message, len(want))
	for i, w := range want {
		ordered[i] = byID[w.ID]
		if ordered[i] == nil {
			ordered[i] = &mq.Message{}
		}
	}
	assertSameMessages(t, ordered, want)
	if n := len(be.all()); n != 2 {
		t.Errorf("%d backend Publish calls, want 2 (one plain message, one envelope)", n)
	}
}

// TestPublishIdleTopicGoesStraight: on an idle topic a lone message is
// published by its caller, with the caller's context (whose values, a
// trace span among them, the backend may use), as the wrapped publisher
// would have been called without batching.
func TestPublishIdleTopicGoesStraight(t *testing.T) {
	type key struct{}
	be := &fakePublisher{}
	p := batch.NewPublisher(be, batch.Config{})
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.WithValue(t.Context(), key{}, "the caller's")
	if err := p.Publish(ctx, "orders", msg("a")); err != nil {
		t.Fatal(err)
	}
	calls := be.all()
	if len(calls) != 1 || fmt.Sprint(ids(calls[0].msgs)) != "[a]" {
		t.Fatalf("backend calls %v, want one with message a", calls)
	}
	if v := calls[0].ctx.Value(key{}); v != "the caller's" {
		t.Errorf("the backend's Publish got a context without the caller's values (%v): the message took a detour", v)
	}
}

// TestPublishEnvelopeError: every caller in a failed envelope gets its
// error, mq.ErrQueueFull still recognisable.
func TestPublishEnvelopeError(t *testing.T) {
	be, p := gated(t, batch.Config{})
	be.err = fmt.Errorf("backend: topic full: %w", mq.ErrQueueFull)
	ctx := t.Context()

	first := publishAsync(ctx, p, "orders", msg("a"))
	receive(t, be.started, "the first Publish")
	b, c := publishAsync(ctx, p, "orders", msg("b")), publishAsync(ctx, p, "orders", msg("c"))
	waitUntil(t, "2 callers waiting", func() bool { return batch.Waiting(p, "orders") == 2 })
	be.release(t)
	envelopeOf(t, receive(t, be.started, "the envelope's Publish"))
	be.release(t)
	for name, r := range map[string]<-chan error{"a": first, "b": b, "c": c} {
		if err := receive(t, r, "Publish "+name); !errors.Is(err, mq.ErrQueueFull) {
			t.Errorf("Publish %s: %v, want an error wrapping mq.ErrQueueFull", name, err)
		}
	}
}

// TestPublishCallerLeavesWhileWaiting: a caller whose context ends before
// its batch is sent gets ctx.Err() and its message is never sent; the
// others of its batch are.
func TestPublishCallerLeavesWhileWaiting(t *testing.T) {
	be, p := gated(t, batch.Config{})

	first := publishAsync(t.Context(), p, "orders", msg("a"))
	receive(t, be.started, "the first Publish")
	leaving, leave := context.WithCancel(t.Context())
	left := publishAsync(leaving, p, "orders", msg("left"))
	stayed := publishAsync(t.Context(), p, "orders", msg("stayed"))
	waitUntil(t, "2 callers waiting", func() bool { return batch.Waiting(p, "orders") == 2 })

	leave()
	err := receive(t, left, "the Publish whose context ended")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("Publish after its context ended: %v, want context.Canceled, saying nothing was sent", err)
	}
	be.release(t)
	c2 := receive(t, be.started, "the second batch's Publish")
	if got := ids(c2.msgs); len(got) != 1 || got[0] != "stayed" {
		t.Errorf("second backend call carries %v, want only [stayed], plain", got)
	}
	be.release(t)
	for name, r := range map[string]<-chan error{"a": first, "stayed": stayed} {
		if err := receive(t, r, "Publish "+name); err != nil {
			t.Errorf("Publish %s: %v", name, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range be.all() {
		for _, m := range c.msgs {
			if m.ID == "left" || strings.Contains(string(m.Payload), "payload-left") {
				t.Errorf("the message of the caller that left was sent")
			}
		}
	}
}

// TestPublishCallerLeavesAfterSend: a caller whose context ends while its
// envelope is being stored gets an error wrapping ctx.Err() that says the
// message may have been stored; the send goes on for the callers still
// waiting, and is cancelled once none is.
func TestPublishCallerLeavesAfterSend(t *testing.T) {
	be, p := gated(t, batch.Config{})

	first := publishAsync(t.Context(), p, "orders", msg("a"))
	receive(t, be.started, "the first Publish")
	ctxB, leaveB := context.WithCancel(t.Context())
	ctxC, leaveC := context.WithCancel(t.Context())
	b, c := publishAsync(ctxB, p, "orders", msg("b")), publishAsync(ctxC, p, "orders", msg("c"))
	waitUntil(t, "2 callers waiting", func() bool { return batch.Waiting(p, "orders") == 2 })
	be.release(t)
	if err := receive(t, first, "the first Publish"); err != nil {
		t.Fatal(err)
	}
	env := receive(t, be.started, "the envelope's Publish")

	leaveB()
	err := receive(t, b, "b's Publish")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "may have been stored") {
		t.Errorf("b left after its envelope was sent: %v, want context.Canceled, saying it may have been stored", err)
	}
	if env.ctx.Err() != nil {
		t.Fatalf("the envelope's send was cancelled while c still waits for it")
	}
	leaveC()
	if err := receive(t, c, "c's Publish"); !errors.Is(err, context.Canceled) {
		t.Errorf("c: %v, want context.Canceled", err)
	}
	waitUntil(t, "the envelope's send to be cancelled once nobody waits", func() bool { return env.ctx.Err() != nil })
}

// TestPublishUnbatched: delayed messages and messages too big for an
// envelope are sent alone, as they are; MaxBatch 1 sends everything
// straight through.
func TestPublishUnbatched(t *testing.T) {
	due := time.Now().Add(time.Hour)
	big := &mq.Message{ID: "big", Payload: make([]byte, 300)}
	tests := []struct {
		name string
		cfg  batch.Config
		msgs []*mq.Message
		want [][]string // IDs per backend call
	}{
		{"delayed", batch.Config{}, []*mq.Message{{ID: "later", DeliverAt: due}}, [][]string{{"later"}}},
		{"too big", batch.Config{MaxBytes: 256}, []*mq.Message{big}, [][]string{{"big"}}},
		{"MaxBatch 1", batch.Config{MaxBatch: 1}, []*mq.Message{msg("x"), msg("y")}, [][]string{{"x", "y"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := &fakePublisher{}
			p := batch.NewPublisher(be, tc.cfg)
			if err := p.Publish(t.Context(), "orders", tc.msgs...); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			calls := be.all()
			if len(calls) != len(tc.want) {
				t.Fatalf("%d backend calls, want %d", len(calls), len(tc.want))
			}
			for i, c := range calls {
				if got := ids(c.msgs); fmt.Sprint(got) != fmt.Sprint(tc.want[i]) {
					t.Errorf("call %d carries %v, want %v", i, got, tc.want[i])
				}
				for _, m := range c.msgs {
					if _, ok := m.Headers[batch.HeaderBatch]; ok {
						t.Errorf("message %s went in an envelope", m.ID)
					}
				}
			}
			if got := calls[0].msgs[0].DeliverAt; !got.Equal(tc.msgs[0].DeliverAt) {
				t.Errorf("DeliverAt %v, want %v", got, tc.msgs[0].DeliverAt)
			}
		})
	}
}

// TestPublishBounds: envelopes never exceed MaxBatch messages or MaxBytes.
func TestPublishBounds(t *testing.T) {
	record := len(batch.Encode([]*mq.Message{msg("00")})) - 2 // one record
	tests := []struct {
		name  string
		cfg   batch.Config
		sizes []int // messages per backend call after the first
	}{
		{"MaxBatch", batch.Config{MaxBatch: 3}, []int{3, 3, 1}},
		{"MaxBytes", batch.Config{MaxBytes: 2*record + 2}, []int{2, 2, 2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be, p := gated(t, tc.cfg)
			first := publishAsync(t.Context(), p, "orders", msg("00"))
			receive(t, be.started, "the first Publish")
			total := 0
			for _, n := range tc.sizes {
				total += n
			}
			var rest []<-chan error
			for i := range total {
				rest = append(rest, publishAsync(t.Context(), p, "orders", msg(fmt.Sprintf("%02d", i+1))))
			}
			waitUntil(t, fmt.Sprintf("%d callers waiting", total), func() bool { return batch.Waiting(p, "orders") == total })
			be.release(t)
			for i, want := range tc.sizes {
				c := receive(t, be.started, fmt.Sprintf("backend call %d", i+2))
				got := len(c.msgs)
				if want > 1 {
					got = len(envelopeOf(t, c))
				}
				if got != want {
					t.Errorf("backend call %d carries %d messages, want %d", i+2, got, want)
				}
				be.release(t)
			}
			for _, r := range append(rest, first) {
				if err := receive(t, r, "a Publish"); err != nil {
					t.Error(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPublishMaxWait: with a MaxWait, a batch is not sent while a slot is
// free until it is full or its first message waited that long; Close sends
// it at once and closes the backend.
func TestPublishMaxWait(t *testing.T) {
	be := &fakePublisher{started: make(chan published, 8)}
	p := batch.NewPublisher(be, batch.Config{MaxBatch: 3, MaxWait: time.Hour})
	ctx := t.Context()

	a, b := publishAsync(ctx, p, "orders", msg("a")), publishAsync(ctx, p, "orders", msg("b"))
	waitUntil(t, "2 callers waiting", func() bool { return batch.Waiting(p, "orders") == 2 })
	notYet(t, be.started, "a batch of 2 of MaxBatch 3 sent before MaxWait")
	c := publishAsync(ctx, p, "orders", msg("c"))
	if got := envelopeOf(t, receive(t, be.started, "the full batch")); len(got) != 3 {
		t.Errorf("full envelope carries %d messages, want 3", len(got))
	}
	for _, r := range []<-chan error{a, b, c} {
		if err := receive(t, r, "a Publish"); err != nil {
			t.Error(err)
		}
	}

	d := publishAsync(ctx, p, "orders", msg("d"))
	waitUntil(t, "d waiting", func() bool { return batch.Waiting(p, "orders") == 1 })
	notYet(t, be.started, "a batch of 1 sent before MaxWait")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ids(receive(t, be.started, "the batch sent by Close").msgs); fmt.Sprint(got) != "[d]" {
		t.Errorf("Close sent %v, want [d]", got)
	}
	if err := receive(t, d, "d's Publish"); err != nil {
		t.Errorf("Publish d, answered at Close: %v", err)
	}
	if !be.closed {
		t.Error("Close did not close the wrapped publisher")
	}
	if err := p.Publish(ctx, "orders", msg("e")); !errors.Is(err, mq.ErrClosed) {
		t.Errorf("Publish after Close: %v, want mq.ErrClosed", err)
	}
}

// TestPublishFields: IDs are assigned (and written back) where missing,
// distinct; an envelope takes its messages' key when they share one.
func TestPublishFields(t *testing.T) {
	be := &fakePublisher{}
	p := batch.NewPublisher(be, batch.Config{})
	t.Cleanup(func() { _ = p.Close() })
	same := []*mq.Message{{Key: "k", Payload: []byte("1")}, {Key: "k", Payload: []byte("2")}}
	mixed := []*mq.Message{{Key: "k", Payload: []byte("3")}, {Key: "other", Payload: []byte("4")}}
	for _, msgs := range [][]*mq.Message{same, mixed} {
		if err := p.Publish(t.Context(), "orders", msgs...); err != nil {
			t.Fatal(err)
		}
	}
	calls := be.all()
	if len(calls) != 2 {
		t.Fatalf("%d backend calls, want 2 envelopes", len(calls))
	}
	seen := map[string]bool{}
	for i, c := range calls {
		want := []string{"k", ""}[i]
		if k := c.msgs[0].Key; k != want {
			t.Errorf("envelope %d has key %q, want %q", i, k, want)
		}
		for j, m := range envelopeOf(t, c) {
			caller := [][]*mq.Message{same, mixed}[i][j]
			if m.ID == "" || m.ID != caller.ID || seen[m.ID] {
				t.Errorf("message %d of envelope %d has ID %q (caller's Message: %q), want a fresh one, written back", j, i, m.ID, caller.ID)
			}
			seen[m.ID] = true
		}
	}
}

// TestPublishRefuses: what no envelope may carry is refused before anything
// is sent, naming what was wrong.
func TestPublishRefuses(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		msgs  []*mq.Message
		want  string
	}{
		{"nil message", "orders", []*mq.Message{msg("a"), nil}, "message 2 of 2 is nil"},
		{"envelope header", "orders", []*mq.Message{{ID: "a", Headers: map[string]string{batch.HeaderBatch: "2"}}}, "carries header x-batch"},
		{"attempts header", "orders", []*mq.Message{{ID: "a", Headers: map[string]string{batch.HeaderAttempts: "2"}}}, "carries header x-batch-attempts"},
		{"empty topic", "", []*mq.Message{msg("a")}, "empty topic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := &fakePublisher{}
			p := batch.NewPublisher(be, batch.Config{})
			err := p.Publish(t.Context(), tc.topic, tc.msgs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Publish: %v, want an error saying %q", err, tc.want)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(be.all()); n != 0 {
				t.Errorf("%d backend calls, want none", n)
			}
		})
	}
}
