package mqtest

// Conformance cases of delivery: what arrives, when and to whom (fields
// intact, delayed messages never early, every consumer group).

import (
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
)

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
