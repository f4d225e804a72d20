package batch_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
)

// With a DelayBucket, the delayed messages of one Publish call that fall in
// the same bucket go as one envelope due at the latest of their times
// (never early), a delayed message alone in its bucket goes as it is, and
// an immediate one is not held back with them.
func TestDelayedMessagesShareAnEnvelopePerBucket(t *testing.T) {
	be := &fakePublisher{}
	p := batch.NewPublisher(be, batch.Config{DelayBucket: time.Second})
	t.Cleanup(func() { _ = p.Close() })
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	due := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	msgs := []*mq.Message{
		{ID: "a1", Payload: []byte("a1"), DeliverAt: due(100)},
		{ID: "b1", Payload: []byte("b1"), DeliverAt: due(1500)},
		{ID: "a2", Payload: []byte("a2"), DeliverAt: due(900)},
		{ID: "c1", Payload: []byte("c1"), DeliverAt: due(3200)},
		{ID: "a3", Payload: []byte("a3"), DeliverAt: due(400)},
		{ID: "now", Payload: []byte("now")},
	}
	if err := p.Publish(context.Background(), "timeouts", msgs...); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*mq.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	var sent []*mq.Message
	for _, c := range be.all() {
		sent = append(sent, c.msgs...)
	}
	got := map[string]time.Time{} // every original message -> when the backend delivers it
	envelopes := 0
	for _, m := range sent {
		if m.Headers[batch.HeaderBatch] == "" {
			got[m.ID] = m.DeliverAt
			continue
		}
		envelopes++
		inner, err := batch.Decode(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range inner {
			got[im.ID] = m.DeliverAt
		}
	}
	if envelopes != 1 {
		t.Fatalf("%d envelopes, want 1 (a1, a2, a3 share a bucket; b1 and c1 are alone in theirs)", envelopes)
	}
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a1", "a2", "a3", "b1", "c1", "now"}) {
		t.Fatalf("sent %v, want every message once", ids)
	}
	for id, at := range got {
		want := byID[id].DeliverAt
		switch {
		case want.IsZero() && !at.IsZero():
			t.Errorf("%s was immediate, sent due at %v", id, at)
		case at.Before(want):
			t.Errorf("%s due at %v, sent due at %v: early", id, want, at)
		case at.Sub(want) >= time.Second:
			t.Errorf("%s due at %v, sent due at %v: later than its bucket", id, want, at)
		}
	}
	if !got["a1"].Equal(due(900)) {
		t.Errorf("the a bucket's envelope is due at %v, want its latest, %v", got["a1"], due(900))
	}
}
