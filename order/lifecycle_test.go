package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
)

// fakeReleaser stands for the Redis release script: true the first time an
// order is released, false afterwards.
type fakeReleaser struct {
	mu       sync.Mutex
	released map[string]int // order id -> calls
	err      error
}

func (r *fakeReleaser) ReleaseCancelled(_ context.Context, _ int64, orderID string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return false, r.err
	}
	if r.released == nil {
		r.released = map[string]int{}
	}
	r.released[orderID]++
	return r.released[orderID] == 1, nil
}

func (r *fakeReleaser) calls(orderID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released[orderID]
}

// recordingPublisher keeps what it is given.
type recordingPublisher struct {
	mu   sync.Mutex
	msgs map[string][]*mq.Message // by topic
	err  error
}

func (p *recordingPublisher) Publish(_ context.Context, topic string, msgs ...*mq.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.msgs == nil {
		p.msgs = map[string][]*mq.Message{}
	}
	p.msgs[topic] = append(p.msgs[topic], msgs...)
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func (p *recordingPublisher) topic(name string) []*mq.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*mq.Message(nil), p.msgs[name]...)
}

// at returns a clock fixed at t.
func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// writeOrders stores one created order per user through the worker and
// returns them by id.
func writeOrders(t testing.TB, s *Store, a *Activity, prefix string, n int) []*Order {
	t.Helper()
	w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{})
	var msgs []ordermsg.Message
	for i, id := range orderIDs(prefix, n) {
		msgs = append(msgs, message(a.ID, id, fmt.Sprintf("%s-user-%d", prefix, i)))
	}
	for i, err := range handleAll(t, w, msgs) {
		if err != nil {
			t.Fatalf("write order %s: %v", msgs[i].OrderID, err)
		}
	}
	out := make([]*Order, n)
	for i, m := range msgs {
		o, err := s.GetOrder(context.Background(), m.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return out
}

// outboxOf returns the outbox rows of one order, by event id.
func outboxOf(t testing.TB, s *Store, orderID string) map[string]outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := s.DB().Where("event_id LIKE ?", orderID+"/%").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	m := map[string]outboxRow{}
	for _, r := range rows {
		m[r.EventID] = r
	}
	return m
}

func TestWorkerWritesOutbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 10)
		w, _ := testWorker(t, s, &fakeClaimer{released: map[string]bool{"gone": true}}, WorkerConfig{})
		errs := handleAll(t, w, []ordermsg.Message{message(a.ID, "kept", "u1"), message(a.ID, "gone", "u2")})
		if errors.Join(errs...) != nil {
			t.Fatal(errs)
		}
		kept, err := s.GetOrder(context.Background(), "kept")
		if err != nil {
			t.Fatal(err)
		}

		rows := outboxOf(t, s, "kept")
		if len(rows) != 2 {
			t.Fatalf("outbox of a created order: %d rows, want the created event and the timeout", len(rows))
		}
		created, ok := rows[ordermsg.EventID("kept", ordermsg.EventCreated)]
		if !ok || created.Topic != ordermsg.TopicOrderEvents || created.MsgKey != "u1" || created.DeliverAt != nil {
			t.Errorf("created event row = %+v", created)
		}
		e, err := ordermsg.DecodeEvent(created.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != ordermsg.EventCreated || e.OrderID != "kept" || e.UserID != "u1" || e.ActivityName != a.Name ||
			e.PriceCents != 999 || !e.PayDeadline.Equal(kept.PayDeadline) || e.TraceID != "trace-kept" {
			t.Errorf("created event = %+v", e)
		}
		timeout, ok := rows[timeoutID("kept")]
		if !ok || timeout.Topic != ordermsg.TopicOrderTimeouts || timeout.DeliverAt == nil || !timeout.DeliverAt.Equal(kept.PayDeadline) {
			t.Errorf("timeout row = %+v, want topic %s delivered at %s", timeout, ordermsg.TopicOrderTimeouts, kept.PayDeadline)
		}

		rows = outboxOf(t, s, "gone")
		cancelled, ok := rows[ordermsg.EventID("gone", ordermsg.EventCancelled)]
		if len(rows) != 1 || !ok {
			t.Fatalf("outbox of an unreserved order = %v, want only its cancelled event", rows)
		}
		if e, err := ordermsg.DecodeEvent(cancelled.Payload); err != nil || e.Reason != ordermsg.ReasonReservationLost {
			t.Errorf("cancelled event = %+v, %v; want reason %s", e, err, ordermsg.ReasonReservationLost)
		}
	})
}

// When a batch's transaction fails and its orders are written one by one,
// each keeps exactly its own outbox rows: a cancelled one (its reservation
// gone) its cancelled event, a created one its created event and timeout,
// and the order that cannot be written none.
func TestWorkerWritesOutboxOneByOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 10)
		claimer := &fakeClaimer{released: map[string]bool{"gone": true}}
		w, _ := testWorker(t, s, claimer, WorkerConfig{BatchSize: 1})
		if err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "first", "alice"))); err != nil {
			t.Fatal(err)
		}
		w.Close()
		// alice's second order fails the batch's transaction.
		w, _ = testWorker(t, s, claimer, WorkerConfig{BatchSize: 4, Linger: long})
		errs := handleAll(t, w, []ordermsg.Message{
			message(a.ID, "gone", "u1"), message(a.ID, "second", "alice"),
			message(a.ID, "kept-1", "u2"), message(a.ID, "kept-2", "u3"),
		})
		if errs[0] != nil || errs[2] != nil || errs[3] != nil || !errors.Is(errs[1], ErrUserHasOrder) {
			t.Fatalf("Handle = %v; want only alice's second order to fail", errs)
		}
		want := map[string][]string{
			"gone":   {ordermsg.EventID("gone", ordermsg.EventCancelled)},
			"second": nil,
			"kept-1": {ordermsg.EventID("kept-1", ordermsg.EventCreated), timeoutID("kept-1")},
			"kept-2": {ordermsg.EventID("kept-2", ordermsg.EventCreated), timeoutID("kept-2")},
		}
		for id, events := range want {
			rows := outboxOf(t, s, id)
			if len(rows) != len(events) {
				t.Errorf("order %s: %d outbox rows, want %v", id, len(rows), events)
			}
			for _, ev := range events {
				if _, ok := rows[ev]; !ok {
					t.Errorf("order %s: no outbox row %s", id, ev)
				}
			}
		}
	})
}

func TestPay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := newActivity(t, s, 10)
		os := writeOrders(t, s, a, "pay", 4)
		rel := &fakeReleaser{}
		reg := prometheus.NewRegistry()
		before := at(os[0].PayDeadline.Add(-time.Second))
		l := NewLifecycle(s, rel, LifecycleConfig{Now: before, Registerer: reg})
		late := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[0].PayDeadline.Add(time.Second))})
		if _, err := late.CancelExpired(ctx, os[1].ID); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name      string
			life      *Lifecycle
			order     string
			user      string
			wantErr   error
			wantState string
		}{
			{"owner pays", l, os[0].ID, os[0].UserID, nil, StatePaid},
			{"pays twice", l, os[0].ID, os[0].UserID, nil, StatePaid},
			{"another user", l, os[2].ID, "intruder", ErrNotFound, StateCreated},
			{"unknown order", l, "nope", "u", ErrNotFound, ""},
			{"cancelled", l, os[1].ID, os[1].UserID, ErrOrderCancelled, StateCancelled},
			{"past the deadline", late, os[3].ID, os[3].UserID, ErrOrderCancelled, StateCancelled},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o, err := tt.life.Pay(ctx, tt.order, tt.user)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Pay = %v, want %v", err, tt.wantErr)
				}
				if err == nil && o.State != StatePaid {
					t.Errorf("Pay returned state %s", o.State)
				}
				if tt.wantState == "" {
					return
				}
				stored, err := s.GetOrder(ctx, tt.order)
				if err != nil {
					t.Fatal(err)
				}
				if stored.State != tt.wantState {
					t.Errorf("stored state %s, want %s", stored.State, tt.wantState)
				}
			})
		}

		paid := outboxOf(t, s, os[0].ID)
		if _, ok := paid[ordermsg.EventID(os[0].ID, ordermsg.EventPaid)]; !ok || len(paid) != 3 {
			t.Errorf("outbox of the paid order = %v, want created, timeout and one paid event", keys(paid))
		}
		if got := mustActivity(t, s, a.ID).Available; got != 10-4+2 {
			t.Errorf("available = %d, want %d (two cancelled orders returned their units)", got, 10-4+2)
		}
		if rel.calls(os[3].ID) != 1 {
			t.Errorf("the order paid after its deadline was released %d times in redis, want 1", rel.calls(os[3].ID))
		}
		if got := counterValue(t, reg, "seckill_orders_paid_total"); got != 1 {
			t.Errorf("seckill_orders_paid_total = %v, want 1", got)
		}
	})
}

func TestCancelExpired(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := newActivity(t, s, 5)
		os := writeOrders(t, s, a, "cancel", 2)
		rel := &fakeReleaser{}
		early := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[0].PayDeadline.Add(-time.Millisecond))})
		due := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[0].PayDeadline)})

		if won, err := early.CancelExpired(ctx, os[0].ID); won || !errors.Is(err, errNotDue) {
			t.Fatalf("CancelExpired before the deadline = %v, %v; want errNotDue", won, err)
		}
		if got := mustActivity(t, s, a.ID).Available; got != 3 {
			t.Fatalf("available = %d after an early cancel, want 3 (unchanged)", got)
		}

		// The same cancel delivered twice: one state change, one unit back.
		for i, want := range []bool{true, false} {
			won, err := due.CancelExpired(ctx, os[0].ID)
			if err != nil || won != want {
				t.Fatalf("delivery %d: CancelExpired = %v, %v; want %v", i+1, won, err, want)
			}
		}
		if got := mustActivity(t, s, a.ID).Available; got != 4 {
			t.Errorf("available = %d after one cancel delivered twice, want 4", got)
		}
		o, _ := s.GetOrder(ctx, os[0].ID)
		if o.State != StateCancelled || o.Version != os[0].Version+1 {
			t.Errorf("order after cancel: state %s version %d, want cancelled, version %d", o.State, o.Version, os[0].Version+1)
		}
		if _, ok := outboxOf(t, s, os[0].ID)[ordermsg.EventID(os[0].ID, ordermsg.EventCancelled)]; !ok {
			t.Error("no cancelled event in the outbox")
		}

		// A paid order is never cancelled.
		if _, err := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[1].PayDeadline.Add(-time.Second))}).Pay(ctx, os[1].ID, os[1].UserID); err != nil {
			t.Fatal(err)
		}
		if won, err := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[1].PayDeadline)}).CancelExpired(ctx, os[1].ID); won || err != nil {
			t.Errorf("CancelExpired of a paid order = %v, %v", won, err)
		}
		if rel.calls(os[1].ID) != 0 {
			t.Error("a paid order's reservation was released")
		}

		// Redis down after the commit: the error asks for a redelivery,
		// which finishes the release without returning a second unit.
		os2 := writeOrders(t, s, a, "redis-down", 1)
		down := &fakeReleaser{err: errors.New("redis: connection refused")}
		if _, err := NewLifecycle(s, down, LifecycleConfig{Now: at(os2[0].PayDeadline)}).CancelExpired(ctx, os2[0].ID); err == nil {
			t.Fatal("CancelExpired hid the failed release")
		}
		if won, err := NewLifecycle(s, rel, LifecycleConfig{Now: at(os2[0].PayDeadline)}).CancelExpired(ctx, os2[0].ID); won || err != nil {
			t.Fatalf("redelivery = %v, %v", won, err)
		}
		if rel.calls(os2[0].ID) != 1 {
			t.Errorf("redelivery released %d times, want 1", rel.calls(os2[0].ID))
		}
		if got := mustActivity(t, s, a.ID).Available; got != 4 {
			t.Errorf("available = %d, want 4", got)
		}
	})
}

// TestPayCancelRace fires the payment and the pay-deadline cancel of every
// order at the same moment, round after round: each order must end either
// paid or cancelled, and units come back exactly for the cancelled ones.
func TestPayCancelRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		const n, rounds = 200, 3
		for round := range rounds {
			a := newActivity(t, s, n)
			os := writeOrders(t, s, a, fmt.Sprintf("race%d", round), n)
			rel := &fakeReleaser{}
			// Two machines whose clocks sit either side of the deadline:
			// both transitions are legal, only one may win.
			first, last := os[0].PayDeadline, os[0].PayDeadline
			for _, o := range os {
				first, last = minTime(first, o.PayDeadline), maxTime(last, o.PayDeadline)
			}
			payer := NewLifecycle(s, rel, LifecycleConfig{Now: at(first.Add(-time.Millisecond))})
			canceller := NewLifecycle(s, rel, LifecycleConfig{Now: at(last.Add(time.Millisecond))})
			start := make(chan struct{})
			payErrs := make([]error, n)
			var wg sync.WaitGroup
			for i, o := range os {
				wg.Go(func() { <-start; _, payErrs[i] = payer.Pay(ctx, o.ID, o.UserID) })
				wg.Go(func() {
					<-start
					if _, err := canceller.CancelExpired(ctx, o.ID); err != nil {
						t.Errorf("cancel %s: %v", o.ID, err)
					}
				})
			}
			close(start)
			wg.Wait()

			var paid, cancelled int64
			for i, o := range os {
				stored, err := s.GetOrder(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				events := outboxOf(t, s, o.ID)
				_, hasPaid := events[ordermsg.EventID(o.ID, ordermsg.EventPaid)]
				_, hasCancelled := events[ordermsg.EventID(o.ID, ordermsg.EventCancelled)]
				switch stored.State {
				case StatePaid:
					paid++
					if payErrs[i] != nil || !hasPaid || hasCancelled || rel.calls(o.ID) != 0 {
						t.Errorf("paid order %s: pay error %v, events %v, released %d times", o.ID, payErrs[i], keys(events), rel.calls(o.ID))
					}
				case StateCancelled:
					cancelled++
					if !errors.Is(payErrs[i], ErrOrderCancelled) || hasPaid || !hasCancelled || rel.calls(o.ID) != 1 {
						t.Errorf("cancelled order %s: pay error %v, events %v, released %d times", o.ID, payErrs[i], keys(events), rel.calls(o.ID))
					}
				default:
					t.Errorf("order %s ended %s", o.ID, stored.State)
				}
			}
			if got := mustActivity(t, s, a.ID).Available; got != cancelled {
				t.Errorf("round %d: %d paid, %d cancelled, available %d; want available = cancelled", round, paid, cancelled, got)
			}
			t.Logf("round %d: %d paid, %d cancelled", round, paid, cancelled)
		}
	})
}

func TestSweep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		short := newActivity(t, s, 10) // pay timeout 900s
		long := &Activity{Name: "long", Stock: 10, PriceCents: 1, StartsAt: short.StartsAt, EndsAt: short.EndsAt, PayTimeoutSeconds: 7200}
		if err := s.CreateActivity(ctx, long); err != nil {
			t.Fatal(err)
		}
		expired := writeOrders(t, s, short, "expired", 5)
		notDue := writeOrders(t, s, long, "later", 2)
		rel := &fakeReleaser{}
		sweepAt := expired[0].PayDeadline.Add(time.Minute)
		l := NewLifecycle(s, rel, LifecycleConfig{Now: at(sweepAt)})
		if _, err := NewLifecycle(s, rel, LifecycleConfig{Now: at(expired[0].PayDeadline.Add(-time.Second))}).Pay(ctx, expired[4].ID, expired[4].UserID); err != nil {
			t.Fatal(err)
		}

		// Nobody delivers the pay-deadline messages: only the sweeper acts,
		// in bounded batches.
		for i, want := range []int{3, 1, 0} {
			n, err := l.Sweep(ctx, 3)
			if err != nil || n != want {
				t.Fatalf("sweep %d = %d, %v; want %d", i+1, n, err, want)
			}
		}
		for _, o := range expired[:4] {
			if got, _ := s.GetOrder(ctx, o.ID); got.State != StateCancelled || rel.calls(o.ID) != 1 {
				t.Errorf("expired order %s: %s, released %d times", o.ID, got.State, rel.calls(o.ID))
			}
		}
		if got, _ := s.GetOrder(ctx, expired[4].ID); got.State != StatePaid {
			t.Errorf("the sweeper touched a paid order: %s", got.State)
		}
		for _, o := range notDue {
			if got, _ := s.GetOrder(ctx, o.ID); got.State != StateCreated {
				t.Errorf("the sweeper cancelled %s before its deadline", o.ID)
			}
		}
		if got := mustActivity(t, s, short.ID).Available; got != 10-5+4 {
			t.Errorf("available = %d, want %d", got, 10-5+4)
		}
	})
}

func TestHandleTimeout(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	ctx := context.Background()
	a := newActivity(t, s, 3)
	os := writeOrders(t, s, a, "timeout", 2)
	payload := func(o *Order) []byte {
		b, _ := json.Marshal(ordermsg.Timeout{OrderID: o.ID, ActivityID: o.ActivityID, PayDeadline: o.PayDeadline})
		return b
	}
	rel := &fakeReleaser{}
	pub := &recordingPublisher{}
	due := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[0].PayDeadline), Publisher: pub})
	for i := range 2 {
		if err := due.HandleTimeout(ctx, &mq.Message{ID: "m", Payload: payload(os[0])}); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	if got := mustActivity(t, s, a.ID).Available; got != 2 {
		t.Errorf("available = %d after one timeout delivered twice, want 2", got)
	}

	// Early (a clock behind the publisher's): rescheduled for the deadline.
	early := NewLifecycle(s, rel, LifecycleConfig{Now: at(os[1].PayDeadline.Add(-time.Minute)), Publisher: pub})
	if err := early.HandleTimeout(ctx, &mq.Message{ID: "m2", Key: os[1].UserID, Payload: payload(os[1])}); err != nil {
		t.Fatal(err)
	}
	again := pub.topic(ordermsg.TopicOrderTimeouts)
	if len(again) != 1 || !again[0].DeliverAt.Equal(os[1].PayDeadline) {
		t.Fatalf("rescheduled = %+v, want one message at %s", again, os[1].PayDeadline)
	}
	if got, _ := s.GetOrder(ctx, os[1].ID); got.State != StateCreated {
		t.Errorf("an early timeout cancelled the order")
	}
	for _, bad := range [][]byte{[]byte("{"), []byte(`{"order_id":""}`)} {
		if err := due.HandleTimeout(ctx, &mq.Message{ID: "bad", Payload: bad}); err != nil {
			t.Errorf("malformed timeout %q = %v, want it dropped (nil)", bad, err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
