package order

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
	"gorm.io/gorm"
)

// long is a Linger no test waits for: batches in these tests are flushed by
// filling up (BatchSize reached) or by Close, never by the timer, so which
// messages share a batch is deterministic.
const long = time.Hour

func TestWorkerWritesOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 10)
		w, reg := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 100, Linger: time.Millisecond})
		m := message(a.ID, "o-1", "u-1")
		before := time.Now().UTC()

		// A lone message is flushed when Linger passes.
		if err := w.Handle(context.Background(), mqMessage(t, m)); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		o, err := s.GetOrder(context.Background(), "o-1")
		if err != nil {
			t.Fatalf("GetOrder: %v", err)
		}
		if o.ActivityID != a.ID || o.UserID != "u-1" || o.State != StateCreated || o.PriceCents != 999 ||
			o.RequestID != "req-o-1" || o.TraceID != "trace-o-1" || o.Version != 0 {
			t.Errorf("order = %+v", o)
		}
		wantDeadline := before.Add(time.Duration(a.PayTimeoutSeconds) * time.Second)
		if o.PayDeadline.Before(wantDeadline.Truncate(time.Microsecond)) || o.PayDeadline.After(time.Now().Add(time.Duration(a.PayTimeoutSeconds)*time.Second)) {
			t.Errorf("pay deadline %v is not write time + %ds", o.PayDeadline, a.PayTimeoutSeconds)
		}
		got := mustActivity(t, s, a.ID)
		if got.Available != 9 || got.Version != 1 {
			t.Errorf("activity available=%d version=%d, want 9 and 1", got.Available, got.Version)
		}
		if n := counter(t, reg, "seckill_orders_written_total", resultCreated); n != 1 {
			t.Errorf("written{created} = %v, want 1", n)
		}
	})
}

func TestWorkerRedelivery(t *testing.T) {
	tests := []struct {
		name       string
		concurrent bool
		copies     int
	}{
		{name: "sequential", copies: 2},
		{name: "concurrent", concurrent: true, copies: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, db *gorm.DB) {
				s := NewStore(db)
				a := newActivity(t, s, 10)
				claimer := &fakeClaimer{}
				w, reg := testWorker(t, s, claimer, WorkerConfig{BatchSize: tt.copies, Linger: time.Millisecond})
				m := message(a.ID, "o-1", "u-1")
				var errs []error
				if tt.concurrent {
					errs = handleAll(t, w, repeat(m, tt.copies))
				} else {
					for range tt.copies {
						errs = append(errs, w.Handle(context.Background(), mqMessage(t, m)))
					}
				}
				for i, err := range errs {
					if err != nil {
						t.Errorf("delivery %d: %v", i, err)
					}
				}
				if n := countOrders(t, s, a.ID); n != 1 {
					t.Errorf("%d orders stored, want 1", n)
				}
				got := mustActivity(t, s, a.ID)
				if got.Available != 9 || got.Version != 1 {
					t.Errorf("activity available=%d version=%d, want 9 and 1 (decremented once)", got.Available, got.Version)
				}
				created := counter(t, reg, "seckill_orders_written_total", resultCreated)
				dup := counter(t, reg, "seckill_orders_written_total", resultDuplicate)
				if created != 1 || dup != float64(tt.copies-1) {
					t.Errorf("written created=%v duplicate=%v, want 1 and %d", created, dup, tt.copies-1)
				}
			})
		})
	}
}

// TestWorkerRedeliveryAcrossWorkers covers two worker processes that both
// find the order absent and both try to insert it: the loser's batch fails
// on the primary key and its one-by-one retry reports a redelivery.
func TestWorkerRedeliveryAcrossWorkers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 10)
		// Both workers pass the existence check before either inserts:
		// each blocks in Claim until the other has claimed too.
		var both sync.WaitGroup
		both.Add(2)
		claimer := &barrierClaimer{barrier: &both}
		w1, reg1 := testWorker(t, s, claimer, WorkerConfig{BatchSize: 2, Linger: long})
		w2, reg2 := testWorker(t, s, claimer, WorkerConfig{BatchSize: 1})
		m := message(a.ID, "o-1", "u-1")
		other := message(a.ID, "o-2", "u-2")
		var wg sync.WaitGroup
		errs := make([]error, 3)
		wg.Go(func() { errs[0] = w1.Handle(context.Background(), mqMessage(t, m)) })
		wg.Go(func() { errs[1] = w1.Handle(context.Background(), mqMessage(t, other)) })
		wg.Go(func() { errs[2] = w2.Handle(context.Background(), mqMessage(t, m)) })
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
		}
		if n := countOrders(t, s, a.ID); n != 2 {
			t.Errorf("%d orders, want 2", n)
		}
		if got := mustActivity(t, s, a.ID); got.Available != 8 {
			t.Errorf("available = %d, want 8 (o-1 taken once)", got.Available)
		}
		if claimer.calls.Load() != 2 {
			t.Errorf("%d claims, want 2", claimer.calls.Load())
		}
		dups := counter(t, reg1, "seckill_orders_written_total", resultDuplicate) +
			counter(t, reg2, "seckill_orders_written_total", resultDuplicate)
		if dups != 1 {
			t.Errorf("written{duplicate} over both workers = %v, want 1", dups)
		}
	})
}

type barrierClaimer struct {
	barrier *sync.WaitGroup
	calls   atomic.Int64
}

func (c *barrierClaimer) Claim(_ context.Context, _ int64, orderIDs []string) ([]bool, error) {
	if c.calls.Add(1) <= 2 {
		c.barrier.Done()
		c.barrier.Wait()
	}
	out := make([]bool, len(orderIDs))
	for i := range out {
		out[i] = true
	}
	return out, nil
}

func TestWorkerBatchWithExistingAndNewOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 10)
		claimer := &fakeClaimer{}
		w, reg := testWorker(t, s, claimer, WorkerConfig{BatchSize: 1})
		if err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "old", "u-old"))); err != nil {
			t.Fatal(err)
		}
		w.Close()

		w, reg = testWorker(t, s, claimer, WorkerConfig{BatchSize: 3, Linger: long})
		errs := handleAll(t, w, []ordermsg.Message{
			message(a.ID, "old", "u-old"),
			message(a.ID, "new-1", "u-1"),
			message(a.ID, "new-2", "u-2"),
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
		if h := histogram(t, reg, "seckill_order_batch_size"); h.GetSampleCount() != 1 || h.GetSampleSum() != 3 {
			t.Fatalf("batches=%d messages=%v, want the 3 messages in one batch", h.GetSampleCount(), h.GetSampleSum())
		}
		if n := countOrders(t, s, a.ID); n != 3 {
			t.Errorf("%d orders, want 3", n)
		}
		got := mustActivity(t, s, a.ID)
		if got.Available != 7 || got.Version != 2 {
			t.Errorf("available=%d version=%d, want 7 and 2 (one update per batch)", got.Available, got.Version)
		}
		if claims := claimer.claimedIDs(); claims["old"] != 1 || claims["new-1"] != 1 || claims["new-2"] != 1 {
			t.Errorf("claims = %v, want each order claimed once (the redelivery not again)", claims)
		}
		if dup := counter(t, reg, "seckill_orders_written_total", resultDuplicate); dup != 1 {
			t.Errorf("written{duplicate} = %v, want 1", dup)
		}
	})
}

func TestWorkerGroupsConcurrentMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		const n, batch, stock = 60, 10, 100
		s := NewStore(db)
		a := newActivity(t, s, stock)
		w, reg := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: batch, Linger: long})
		var msgs []ordermsg.Message
		for i, id := range orderIDs("o", n) {
			msgs = append(msgs, message(a.ID, id, orderIDs("u", n)[i]))
		}
		for i, err := range handleAll(t, w, msgs) {
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
		if got := countOrders(t, s, a.ID); got != n {
			t.Errorf("%d orders, want %d", got, n)
		}
		got := mustActivity(t, s, a.ID)
		if got.Available != stock-n {
			t.Errorf("available = %d, want %d", got.Available, stock-n)
		}
		h := histogram(t, reg, "seckill_order_batch_size")
		if h.GetSampleCount() != n/batch || h.GetSampleSum() != n {
			t.Errorf("batches=%d messages=%v, want %d full batches of %d", h.GetSampleCount(), h.GetSampleSum(), n/batch, batch)
		}
		if got.Version != n/batch {
			t.Errorf("version = %d, want %d (one stock update per batch)", got.Version, n/batch)
		}
		if d := histogram(t, reg, "seckill_order_db_write_seconds"); d.GetSampleCount() != n/batch {
			t.Errorf("write duration samples = %d, want %d", d.GetSampleCount(), n/batch)
		}
	})
}

func TestWorkerReleasedReservation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 5)
		claimer := &fakeClaimer{released: map[string]bool{"gone": true}}
		w, reg := testWorker(t, s, claimer, WorkerConfig{BatchSize: 2, Linger: long})
		errs := handleAll(t, w, []ordermsg.Message{message(a.ID, "gone", "u-1"), message(a.ID, "kept", "u-2")})
		for i, err := range errs {
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
		states := map[string]string{"gone": StateCancelled, "kept": StateCreated}
		for id, want := range states {
			o, err := s.GetOrder(context.Background(), id)
			if err != nil {
				t.Fatalf("GetOrder(%s): %v", id, err)
			}
			if o.State != want {
				t.Errorf("order %s state = %s, want %s", id, o.State, want)
			}
		}
		if got := mustActivity(t, s, a.ID); got.Available != 4 {
			t.Errorf("available = %d, want 4 (the released unit not taken)", got.Available)
		}
		if n := counter(t, reg, "seckill_orders_written_total", resultUnreserved); n != 1 {
			t.Errorf("written{cancelled_unreserved} = %v, want 1", n)
		}

		// Only released reservations in a batch: stock and version unchanged.
		claimer.released["gone-2"] = true
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, _ = testWorker(t, s, claimer, WorkerConfig{BatchSize: 1})
		if err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "gone-2", "u-3"))); err != nil {
			t.Fatal(err)
		}
		if got := mustActivity(t, s, a.ID); got.Available != 4 || got.Version != 1 {
			t.Errorf("available=%d version=%d, want 4 and 1", got.Available, got.Version)
		}
	})
}

func TestWorkerOutOfStock(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, db *gorm.DB) {
			s := NewStore(db)
			a := newActivity(t, s, 0)
			w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 1})
			err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "o-1", "u-1")))
			if !errors.Is(err, ErrOutOfStock) {
				t.Fatalf("Handle = %v, want ErrOutOfStock", err)
			}
			if _, err := s.GetOrder(context.Background(), "o-1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("order written anyway: %v", err)
			}
			if got := mustActivity(t, s, a.ID); got.Available != 0 || got.Version != 0 {
				t.Errorf("available=%d version=%d, want 0 and 0", got.Available, got.Version)
			}
		})
	})
	t.Run("batch", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, db *gorm.DB) {
			s := NewStore(db)
			a := newActivity(t, s, 2)
			w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 3, Linger: long})
			errs := handleAll(t, w, []ordermsg.Message{message(a.ID, "o-1", "u-1"), message(a.ID, "o-2", "u-2"), message(a.ID, "o-3", "u-3")})
			var failed int
			for i, err := range errs {
				switch {
				case err == nil:
				case errors.Is(err, ErrOutOfStock):
					failed++
					id := []string{"o-1", "o-2", "o-3"}[i]
					if _, gerr := s.GetOrder(context.Background(), id); !errors.Is(gerr, ErrNotFound) {
						t.Errorf("order %s failed but was written: %v", id, gerr)
					}
				default:
					t.Errorf("message %d: %v, want nil or ErrOutOfStock", i, err)
				}
			}
			if failed != 1 {
				t.Errorf("%d messages failed, want 1", failed)
			}
			if n := countOrders(t, s, a.ID); n != 2 {
				t.Errorf("%d orders, want 2", n)
			}
			if got := mustActivity(t, s, a.ID); got.Available != 0 {
				t.Errorf("available = %d, want 0", got.Available)
			}
		})
	})
}

func TestWorkerSecondOrderOfUser(t *testing.T) {
	t.Run("against a stored order", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, db *gorm.DB) {
			s := NewStore(db)
			a := newActivity(t, s, 10)
			claimer := &fakeClaimer{}
			w, _ := testWorker(t, s, claimer, WorkerConfig{BatchSize: 1})
			if err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "first", "alice"))); err != nil {
				t.Fatal(err)
			}
			w.Close()
			w, reg := testWorker(t, s, claimer, WorkerConfig{BatchSize: 3, Linger: long})
			errs := handleAll(t, w, []ordermsg.Message{
				message(a.ID, "bob-1", "bob"),
				message(a.ID, "second", "alice"),
				message(a.ID, "carol-1", "carol"),
			})
			if errs[0] != nil || errs[2] != nil {
				t.Errorf("neighbours failed: %v, %v", errs[0], errs[2])
			}
			err := errs[1]
			if !errors.Is(err, ErrUserHasOrder) || !strings.Contains(err.Error(), "first") || !strings.Contains(err.Error(), "second") {
				t.Errorf("second order of alice: %v, want ErrUserHasOrder naming first and second", err)
			}
			for _, id := range []string{"first", "bob-1", "carol-1"} {
				if _, err := s.GetOrder(context.Background(), id); err != nil {
					t.Errorf("GetOrder(%s): %v", id, err)
				}
			}
			if _, err := s.GetOrder(context.Background(), "second"); !errors.Is(err, ErrNotFound) {
				t.Errorf("second order stored: %v", err)
			}
			if got := mustActivity(t, s, a.ID); got.Available != 7 {
				t.Errorf("available = %d, want 7", got.Available)
			}
			if n := counter(t, reg, "seckill_orders_written_total", resultFailed); n != 1 {
				t.Errorf("written{failed} = %v, want 1", n)
			}
		})
	})
	t.Run("within one batch", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, db *gorm.DB) {
			s := NewStore(db)
			a := newActivity(t, s, 10)
			w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 3, Linger: long})
			errs := handleAll(t, w, []ordermsg.Message{
				message(a.ID, "alice-1", "alice"),
				message(a.ID, "bob-1", "bob"),
				message(a.ID, "alice-2", "alice"),
			})
			if errs[1] != nil {
				t.Errorf("bob's order failed: %v", errs[1])
			}
			var failed int
			for _, err := range []error{errs[0], errs[2]} {
				if err == nil {
					continue
				}
				failed++
				if !errors.Is(err, ErrUserHasOrder) || !strings.Contains(err.Error(), "alice-1") || !strings.Contains(err.Error(), "alice-2") {
					t.Errorf("clash error %q does not name both orders", err)
				}
			}
			if failed != 1 {
				t.Errorf("%d of alice's orders failed, want exactly 1", failed)
			}
			if n := countOrders(t, s, a.ID); n != 2 {
				t.Errorf("%d orders, want 2", n)
			}
			if got := mustActivity(t, s, a.ID); got.Available != 8 {
				t.Errorf("available = %d, want 8", got.Available)
			}
		})
	})
}

func TestWorkerRejectsMalformedMessages(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	a := newActivity(t, s, 10)
	w, reg := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 1})
	valid := `"order_id":"o","activity_id":` + itoa(a.ID) + `,"user_id":"u","price_cents":1`
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"not JSON", `order please`, "invalid character"},
		{"wrong type", `{"order_id":7}`, "order_id"},
		{"no order id", `{"activity_id":1,"user_id":"u"}`, "order_id is empty"},
		{"no activity", `{"order_id":"o","user_id":"u"}`, "activity_id 0"},
		{"no user", `{"order_id":"o","activity_id":1}`, "user_id is empty"},
		{"negative price", `{` + valid + `,"price_cents":-5}`, "price_cents -5"},
		{"long order id", `{"order_id":"` + strings.Repeat("x", 65) + `","activity_id":1,"user_id":"u"}`, "order_id is longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.Handle(context.Background(), &mq.Message{ID: "m1", Payload: []byte(tt.payload)})
			if !errors.Is(err, ordermsg.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle = %v, want ordermsg.ErrMalformed mentioning %q", err, tt.want)
			}
		})
	}
	if n := countOrders(t, s, a.ID); n != 0 {
		t.Errorf("%d orders written from malformed messages", n)
	}
	if n := counter(t, reg, "seckill_orders_written_total", resultFailed); n != float64(len(tests)) {
		t.Errorf("written{failed} = %v, want %d", n, len(tests))
	}
}

func TestWorkerUnknownActivityAndClaimFailure(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	a := newActivity(t, s, 10)
	claimErr := errors.New("redis down")
	tests := []struct {
		name    string
		claimer *fakeClaimer
		msg     ordermsg.Message
		want    error
	}{
		{"unknown activity", &fakeClaimer{}, message(a.ID+1, "o-1", "u-1"), ErrNotFound},
		{"claim fails", &fakeClaimer{err: claimErr}, message(a.ID, "o-2", "u-2"), claimErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := testWorker(t, s, tt.claimer, WorkerConfig{BatchSize: 1})
			if err := w.Handle(context.Background(), mqMessage(t, tt.msg)); !errors.Is(err, tt.want) {
				t.Errorf("Handle = %v, want %v", err, tt.want)
			}
			if _, err := s.GetOrder(context.Background(), tt.msg.OrderID); !errors.Is(err, ErrNotFound) {
				t.Errorf("order written: %v", err)
			}
		})
	}
	if got := mustActivity(t, s, a.ID); got.Available != 10 {
		t.Errorf("available = %d, want 10", got.Available)
	}
}

func TestWorkerClose(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	a := newActivity(t, s, 10)
	w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 10, Linger: long})

	// Hand a request to the batcher directly: the send returns once the
	// batcher holds it, so Close is certain to find it pending in a batch
	// that is neither full nor timed out.
	r := &request{msg: message(a.ID, "pending", "u-1"), res: make(chan error, 1)}
	w.reqs <- r
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-r.res; err != nil {
		t.Errorf("pending order: %v", err)
	}
	if _, err := s.GetOrder(context.Background(), "pending"); err != nil {
		t.Errorf("pending order not flushed by Close: %v", err)
	}

	err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "late", "u-2")))
	if !errors.Is(err, ErrWorkerClosed) {
		t.Errorf("Handle after Close = %v, want ErrWorkerClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.GetOrder(context.Background(), "late"); !errors.Is(err, ErrNotFound) {
		t.Errorf("order handled after Close was written: %v", err)
	}
}

func TestWorkerHandleContextCancelled(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	a := newActivity(t, s, 10)
	w, _ := testWorker(t, s, &fakeClaimer{}, WorkerConfig{BatchSize: 10, Linger: long})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = w.Handle(ctx, mqMessage(t, message(a.ID, "o-1", "u-1"))) })
	cancel()
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Handle = %v, want context.Canceled", err)
	}
}

func repeat(m ordermsg.Message, n int) []ordermsg.Message {
	out := make([]ordermsg.Message, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestWorkerUserBuysAgainAfterReleasedReservation: a user whose reservation
// was released (the gateway died before the publish; later, an unpaid order
// cancelled) buys the returned unit again. The cancelled row must not block
// the new order: uniqueness covers live orders only.
func TestWorkerUserBuysAgainAfterReleasedReservation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 5)
		claimer := &fakeClaimer{released: map[string]bool{"first": true}}
		w, _ := testWorker(t, s, claimer, WorkerConfig{BatchSize: 1})
		for _, id := range []string{"first", "second"} {
			if err := w.Handle(context.Background(), mqMessage(t, message(a.ID, id, "alice"))); err != nil {
				t.Fatalf("order %s of alice: %v", id, err)
			}
		}
		for id, want := range map[string]string{"first": StateCancelled, "second": StateCreated} {
			o, err := s.GetOrder(context.Background(), id)
			if err != nil || o.State != want {
				t.Fatalf("order %s: %+v, %v; want state %s", id, o, err, want)
			}
		}
		if got := mustActivity(t, s, a.ID); got.Available != 4 {
			t.Errorf("available = %d, want 4 (one live order)", got.Available)
		}
		// A second live order is still refused.
		err := w.Handle(context.Background(), mqMessage(t, message(a.ID, "third", "alice")))
		if !errors.Is(err, ErrUserHasOrder) || !strings.Contains(err.Error(), "second") {
			t.Fatalf("a second live order of alice: %v, want ErrUserHasOrder naming second", err)
		}
	})
}
