package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/inventory/inventorytest"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
)

// The meta of an activity is lost while its reservations survive in Redis,
// one of them held by a buyer whose order the database and the queue do
// not know yet (its publish is in flight). The restore keeps that unit off
// sale: remaining + reservations never exceeds the stock.
func TestRestoreKeepsSurvivingReservationsOffSale(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		e.buy("written")              // in the database: claimed
		e.reserve("in-flight", false) // pending: nobody knows it but Redis
		if err := e.rdb.Del(ctx, e.prefix+":{a"+itoa(e.act.ID)+"}:meta").Err(); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.db.GetActivity(ctx, e.act.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, Logger: quietLog()})
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		st := e.stats()
		if st.Reserved != 2 || st.Remaining != 3 {
			t.Fatalf("after the restore: %+v; want 2 reservations and 3 remaining (stock 5)", st)
		}
		e.wantConserved()
	})
}

// Only meta is lost and the whole of the database's live orders survives
// as reservations: the restore rebuilds meta from them, bounded by the
// database.
func TestRestoreRebuildsLostMeta(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		e.buy("a")
		e.buy("b")
		if err := e.rdb.Del(ctx, e.prefix+":{a"+itoa(e.act.ID)+"}:meta").Err(); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.db.GetActivity(ctx, e.act.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, Logger: quietLog()})
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if st := e.stats(); st.Reserved != 2 || st.Remaining != 3 || st.Stock != 5 {
			t.Fatalf("after the restore: %+v; want stock 5, 2 reservations, 3 remaining", st)
		}
		e.wantConserved()
		// A second restore finds it loaded and changes nothing.
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore again: %v", err)
		}
		if st := e.stats(); st.Reserved != 2 || st.Remaining != 3 {
			t.Fatalf("after a second restore: %+v", st)
		}
	})
}

// Redis loses an activity while accepted orders wait in the queue, packed
// the way the gateway publishes them under load: several in one envelope
// (package batch). The restore must see each of them, or their units go
// back on sale (sold twice) and the worker, finding no reservation, writes
// the accepted orders cancelled.
func TestRestoreReadsOrdersInsideEnvelopes(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		e.buy("written")
		var waiting []ordermsg.Message
		for _, u := range []string{"q1", "q2"} {
			oid := e.reserve(u, true)
			waiting = append(waiting, ordermsg.Message{OrderID: oid, ActivityID: e.act.ID, UserID: u, RequestID: "req-" + u,
				PriceCents: e.act.PriceCents, ReservedAt: time.Now().UTC()})
		}
		inventorytest.DeletePrefix(t, e.rdb, e.prefix) // Redis loses the activity
		fresh, err := e.db.GetActivity(ctx, e.act.ID)
		if err != nil {
			t.Fatal(err)
		}
		q := &fakeQueue{msgs: waiting, envelope: true}
		r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, QueueReader: q, Logger: quietLog()})
		if err := r.Restore(ctx, fresh); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if st := e.stats(); st.Reserved != 3 || st.Remaining != 2 {
			t.Fatalf("after the restore: %+v; want 3 reservations (1 written, 2 queued in one envelope) and 2 remaining of 5", st)
		}
		for _, m := range waiting {
			if res, ok, err := e.inv.Lookup(ctx, e.act.ID, m.OrderID); err != nil || !ok || res.Status != inventory.StatusQueued {
				t.Errorf("reservation of %s, queued in an envelope: %+v, %v, %v; want queued", m.OrderID, res, ok, err)
			}
		}
		e.wantConserved()
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fakeQueue is a QueueReader holding order messages that wait in the
// queue. during, when set, runs inside the first Stored call before it
// answers: what happens while the restore reads the queue; gate, when set,
// holds every Stored call until it returns.
type fakeQueue struct {
	msgs   []ordermsg.Message
	during func() []ordermsg.Message // what the queue holds once it ran
	gate   func()
	err    error
	reads  atomic.Int64
	// envelope: the messages are stored as the gateway's group commit
	// stores them, in one envelope of package batch.
	envelope bool
}

func (q *fakeQueue) Stored(_ context.Context, topic string, _ int) ([]natsjs.StoredMessage, error) {
	msgs := q.msgs
	if q.reads.Add(1) == 1 && q.during != nil {
		msgs = q.during()
	}
	if q.gate != nil {
		q.gate()
	}
	if q.err != nil {
		return nil, q.err
	}
	if topic != ordermsg.TopicOrders {
		return nil, fmt.Errorf("read topic %s", topic)
	}
	out := make([]natsjs.StoredMessage, len(msgs))
	for i, m := range msgs {
		payload, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out[i] = natsjs.StoredMessage{Seq: uint64(i + 1), Message: mq.Message{ID: m.OrderID, Key: m.UserID, Payload: payload}}
	}
	if q.envelope && len(out) > 0 {
		inner := make([]*mq.Message, len(out))
		for i := range out {
			inner[i] = &out[i].Message
		}
		env := mq.Message{ID: "envelope-1", Headers: map[string]string{batch.HeaderBatch: strconv.Itoa(len(inner))}, Payload: batch.Encode(inner)}
		return []natsjs.StoredMessage{{Seq: 1, Message: env}}, nil
	}
	return out, nil
}

func (q *fakeQueue) Backlog(context.Context, string, string) (natsjs.Backlog, error) {
	return natsjs.Backlog{Messages: len(q.msgs)}, nil
}

// claimedBefore is the Claimer of a worker that claimed its reservations
// before Redis lost them: it writes them as created whatever Redis says now.
type claimedBefore struct{}

func (claimedBefore) Claim(_ context.Context, _ int64, ids []string) ([]bool, error) {
	out := make([]bool, len(ids))
	for i := range out {
		out[i] = true
	}
	return out, nil
}

// A worker that claimed a reservation before Redis lost the activity
// commits its order while the restore reads (it could not have while Redis
// was down: its claim came before). Whatever the restore read first, Redis
// must not sell more than the database holds: remaining = stock - (queued +
// created + paid), the committed order keeps its reservation (and its
// buyer the one-per-user mark), and the caller's row of the activity, read
// before the commit, does not count.
func TestRestoreWhileAWorkerCommits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		acked bool // the worker acknowledged the message: gone from the queue
	}{
		{"message still in the queue", false},
		{"message acknowledged", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
				ctx := context.Background()
				e.buy("early")
				late := e.reserve("late", true)
				if _, err := e.inv.Claim(ctx, e.act.ID, []string{late}); err != nil {
					t.Fatal(err)
				}
				cached, err := e.db.GetActivity(ctx, e.act.ID) // available 4: the late order is not written yet
				if err != nil {
					t.Fatal(err)
				}
				inventorytest.DeletePrefix(t, e.rdb, e.prefix) // Redis loses the activity

				worker := order.NewWorker(e.db, claimedBefore{}, order.WorkerConfig{Logger: quietLog()})
				t.Cleanup(func() { worker.Close() })
				msg := ordermsg.Message{OrderID: late, ActivityID: e.act.ID, UserID: "late", RequestID: "req-late",
					PriceCents: e.act.PriceCents, ReservedAt: time.Now().UTC()}
				q := &fakeQueue{msgs: []ordermsg.Message{msg}, during: func() []ordermsg.Message {
					payload, _ := json.Marshal(msg)
					if err := worker.Handle(ctx, &mq.Message{ID: late, Payload: payload}); err != nil {
						t.Errorf("worker: %v", err)
					}
					if tc.acked {
						return nil
					}
					return []ordermsg.Message{msg}
				}}
				r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, QueueReader: q, Logger: quietLog()})
				if err := r.Restore(ctx, cached); err != nil {
					t.Fatalf("Restore: %v", err)
				}

				snap, err := e.db.Snapshot(ctx, e.act.ID)
				if err != nil {
					t.Fatal(err)
				}
				if live := snap.Created + snap.Paid; live != 2 || snap.Activity.Available != 3 {
					t.Fatalf("database: %d live orders, available %d; want both orders written, 3 available", live, snap.Activity.Available)
				}
				// Nothing waits unwritten in the queue now: queued = 0.
				st := e.stats()
				if want := snap.Activity.Stock - (0 + snap.Created + snap.Paid); st.Remaining != want || st.Reserved != 2 {
					t.Errorf("redis after the restore: %+v; want remaining %d = stock - (queued + created + paid) and both orders reserved", st, want)
				}
				e.wantConserved()
				if res, ok, err := e.inv.Lookup(ctx, e.act.ID, late); err != nil || !ok || res.Status != inventory.StatusClaimed {
					t.Errorf("reservation of the late order: %+v, %v, %v; want claimed", res, ok, err)
				}
				again, err := e.inv.Reserve(ctx, e.act.ID, "late", "another-click", "o-late-again", time.Now())
				if err != nil || again.Outcome != inventory.AlreadyPurchased {
					t.Errorf("the late buyer buys again: %+v, %v; want AlreadyPurchased", again, err)
				}
			})
		})
	}
}

// parkedInRestore counts the goroutines waiting in Restore for a restore
// to finish: the callers that share one. (Their stacks are the only place
// where a caller that joined a restore in progress shows.)
func parkedInRestore() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	parked := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(g, "service.(*Restorer).Restore(") {
			parked++
		}
	}
	return parked
}

// untilAllArrived returns a gate for fakeQueue that holds the queue read
// until n callers wait for a restore, or (a restorer that shares nothing)
// n reads of the queue are held; a generous deadline only keeps a broken
// test from hanging.
func untilAllArrived(t *testing.T, q *fakeQueue, n int) func() {
	var held atomic.Int64
	return func() {
		held.Add(1)
		deadline := time.Now().Add(30 * time.Second)
		for parkedInRestore() < n && held.Load() < int64(n) {
			if time.Now().After(deadline) {
				t.Errorf("after 30s, %d callers wait for a restore and %d queue reads are held; want %d", parkedInRestore(), held.Load(), n)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// countOrderReads counts the statements that read the orders table.
func countOrderReads(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	err := db.Callback().Query().After("gorm:query").Register("test:count_order_reads", func(tx *gorm.DB) {
		if tx.Statement.Table == "orders" {
			n.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return &n
}

// After Redis lost an activity, twenty buys ask to restore it at once. One
// restore runs: the queue and the database are read as often as by a
// single restore, and every caller gets its result, a success or the
// failure.
func TestConcurrentRestoresShareOne(t *testing.T) {
	const callers = 20
	for _, tc := range []struct {
		name     string
		queueErr error
	}{
		{"restored", nil},
		{"queue unreadable", errors.New("stream unavailable")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
				ctx := context.Background()
				e.buy("early")
				waiting := e.reserve("waiting", true)
				q := &fakeQueue{err: tc.queueErr, msgs: []ordermsg.Message{{OrderID: waiting, ActivityID: e.act.ID, UserID: "waiting",
					RequestID: "req-waiting", PriceCents: e.act.PriceCents, ReservedAt: time.Now().UTC()}}}
				r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, QueueReader: q, Logger: quietLog()})
				orderReads := countOrderReads(t, e.db.DB())

				// What one restore reads, alone.
				inventorytest.DeletePrefix(t, e.rdb, e.prefix)
				if err := r.Restore(ctx, e.act); !errors.Is(err, tc.queueErr) {
					t.Fatalf("Restore = %v; want %v", err, tc.queueErr)
				}
				oneQueue, oneOrders := q.reads.Load(), orderReads.Load()
				if oneQueue != 1 || oneOrders == 0 && tc.queueErr == nil {
					t.Fatalf("one restore read the queue %d times and the orders %d times", oneQueue, oneOrders)
				}

				// Twenty at once: the queue answers only once all of them
				// wait, so they all ask while the first restore runs.
				inventorytest.DeletePrefix(t, e.rdb, e.prefix)
				q.reads.Store(0)
				orderReads.Store(0)
				q.gate = untilAllArrived(t, q, callers)
				errs := make([]error, callers)
				var wg sync.WaitGroup
				for i := range callers {
					wg.Go(func() { errs[i] = r.Restore(ctx, e.act) })
				}
				wg.Wait()
				for i, err := range errs {
					if !errors.Is(err, tc.queueErr) {
						t.Errorf("caller %d: Restore = %v; want %v", i, err, tc.queueErr)
					}
				}
				if got := q.reads.Load(); got != oneQueue {
					t.Errorf("%d concurrent restores read the queue %d times; one restore reads it %d", callers, got, oneQueue)
				}
				if got := orderReads.Load(); got != oneOrders {
					t.Errorf("%d concurrent restores read the orders %d times; one restore reads them %d", callers, got, oneOrders)
				}
				if tc.queueErr != nil {
					return
				}
				if st := e.stats(); st.Reserved != 2 || st.Remaining != 3 {
					t.Errorf("after the restores: %+v; want the written and the queued order reserved, 3 of 5 left", st)
				}
				e.wantConserved()
			})
		})
	}
}

// A caller that stops waiting (its request ended) gets its context's
// error; the restore it started goes on for everyone else, and is not run
// again.
func TestRestoreGoesOnWhenItsCallerLeaves(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		e.buy("early")
		inventorytest.DeletePrefix(t, e.rdb, e.prefix)
		release := make(chan struct{})
		q := &fakeQueue{gate: func() { <-release }}
		r := NewRestorer(Deps{DB: e.db, Inventory: e.inv, QueueReader: q, Logger: quietLog()})

		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- r.Restore(cctx, e.act) }()
		deadline := time.Now().Add(30 * time.Second)
		for q.reads.Load() == 0 { // the restore is reading the queue
			if time.Now().After(deadline) {
				t.Fatal("the restore never read the queue")
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Restore of the caller that left = %v; want context.Canceled", err)
			}
		case <-time.After(30 * time.Second):
			close(release)
			t.Fatal("the caller that left still waits for the restore")
		}
		close(release)
		if err := r.Restore(ctx, e.act); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if n := q.reads.Load(); n != 1 {
			t.Errorf("the queue was read %d times; want once, by the restore the first caller started", n)
		}
		if st := e.stats(); st.Reserved != 1 || st.Remaining != 4 {
			t.Errorf("after the restore: %+v; want the written order reserved, 4 of 5 left", st)
		}
	})
}
