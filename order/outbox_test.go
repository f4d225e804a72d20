package order

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/order/ordermsg"
)

// crashAfterPublish publishes to the real queue and then fails, as a relay
// killed between the publish and marking the rows published would.
type crashAfterPublish struct{ mq.Publisher }

func (p crashAfterPublish) Publish(ctx context.Context, topic string, msgs ...*mq.Message) error {
	if err := p.Publisher.Publish(ctx, topic, msgs...); err != nil {
		return err
	}
	return errors.New("relay killed after the publish")
}

// eventSink is a consumer of order events that dedupes by event id, as
// every consumer must (the notifier does so with the unique key of its
// ledger): a duplicate carries the id of its original.
type eventSink struct {
	mu    sync.Mutex
	seen  int            // deliveries
	acted map[string]int // event id -> times acted on
}

func (c *eventSink) handle(_ context.Context, m *mq.Message) error {
	e, err := ordermsg.DecodeEvent(m.Payload)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen++
	if c.acted[e.ID] == 0 {
		c.acted[e.ID]++
	}
	return nil
}

func (c *eventSink) counts() (seen int, acted map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := make(map[string]int, len(c.acted))
	for k, v := range c.acted {
		cp[k] = v
	}
	return c.seen, cp
}

func TestRelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := newActivity(t, s, 10)
		broker := memory.New(memory.Config{})
		t.Cleanup(func() { broker.Close() })
		sink := &eventSink{acted: map[string]int{}}
		if err := broker.Subscribe(ctx, ordermsg.TopicOrderEvents, mq.SubscribeOptions{Group: "sink", Concurrency: 4}, sink.handle); err != nil {
			t.Fatal(err)
		}

		// The orders commit, and the relay that should publish their
		// events dies first: nothing has been published.
		os := writeOrders(t, s, a, "relay", 3)
		if n, _, err := s.OutboxBacklog(ctx); err != nil || n != 6 {
			t.Fatalf("outbox backlog = %d, %v; want 6 (3 created events, 3 timeouts)", n, err)
		}

		// The next relay publishes, then dies before marking the rows.
		if _, err := NewRelay(s, crashAfterPublish{broker}, RelayConfig{}).RelayOnce(ctx); err == nil {
			t.Fatal("RelayOnce hid the publish error")
		}
		if n, _, _ := s.OutboxBacklog(ctx); n != 6 {
			t.Fatalf("outbox backlog = %d after the crash, want all 6 still to relay", n)
		}

		// After the restart everything goes out again: duplicates that the
		// consumer must absorb.
		reg := prometheus.NewRegistry()
		relay := NewRelay(s, broker, RelayConfig{Registerer: reg})
		if n, err := relay.RelayOnce(ctx); err != nil || n != 6 {
			t.Fatalf("RelayOnce after restart = %d, %v; want 6", n, err)
		}
		if n, err := relay.RelayOnce(ctx); err != nil || n != 0 {
			t.Fatalf("a second round relayed %d (%v), want 0", n, err)
		}
		waitFor(t, func() bool { seen, _ := sink.counts(); return seen == 6 })
		seen, acted := sink.counts()
		if len(acted) != 3 {
			t.Errorf("consumer acted on %d events (%v), want the 3 created events", len(acted), acted)
		}
		for _, o := range os {
			if acted[ordermsg.EventID(o.ID, ordermsg.EventCreated)] != 1 {
				t.Errorf("event of %s acted on %d times, want 1 (delivered %d times in all)", o.ID, acted[ordermsg.EventID(o.ID, ordermsg.EventCreated)], seen)
			}
		}
		// The timeouts wait in the queue for their deadlines. The crashed
		// round died on its first topic (the events, whose rows come
		// first), so they went out once.
		if got := broker.Delayed(); got != 3 {
			t.Errorf("delayed messages in the queue = %d, want the 3 timeouts", got)
		}
		if got := counterValue(t, reg, "seckill_outbox_relayed_total"); got != 6 {
			t.Errorf("seckill_outbox_relayed_total = %v, want 6", got)
		}
	})
}

// TestRelayRun checks the loop: rows written after it started go out on a
// kick, and the backlog gauge follows.
func TestRelayRun(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	a := newActivity(t, s, 10)
	pub := &recordingPublisher{}
	relay := NewRelay(s, pub, RelayConfig{Interval: time.Hour}) // only kicks wake it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { relay.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{Committed: relay.Kick})
	if err := errors.Join(handleAll(t, w, []ordermsg.Message{message(a.ID, "kicked", "u1")})...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return len(pub.topic(ordermsg.TopicOrderEvents)) == 1 && len(pub.topic(ordermsg.TopicOrderTimeouts)) == 1
	})
	m := pub.topic(ordermsg.TopicOrderTimeouts)[0]
	o, _ := s.GetOrder(context.Background(), "kicked")
	if m.ID != timeoutID("kicked") || m.Key != "u1" || !m.DeliverAt.Equal(o.PayDeadline) {
		t.Errorf("timeout message = %+v, want id %s key u1 at %s", m, timeoutID("kicked"), o.PayDeadline)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
