package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/inventory/inventorytest"
	"github.com/flashsale/seckill/mq"
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

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fakeQueue is a QueueReader holding order messages that wait in the
// queue. during, when set, runs inside the first Stored call before it
// answers: what happens while the restore reads the queue.
type fakeQueue struct {
	msgs   []ordermsg.Message
	during func() []ordermsg.Message // what the queue holds once it ran
	err    error
	reads  atomic.Int64
}

func (q *fakeQueue) Stored(_ context.Context, topic string, _ int) ([]natsjs.StoredMessage, error) {
	msgs := q.msgs
	if q.reads.Add(1) == 1 && q.during != nil {
		msgs = q.during()
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
