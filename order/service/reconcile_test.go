package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/inventory/inventorytest"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/testkit"
)

// The reconciler on the real parts: inventory.Store, order.Store, the order
// worker and the lifecycle, on miniredis + SQLite and on the real Redis +
// MariaDB of SECKILL_TEST_*.

// recEnv is one backend pair with an activity loaded in both.
type recEnv struct {
	t      *testing.T
	rdb    redis.UniversalClient
	prefix string
	inv    *inventory.Store
	db     *order.Store
	act    *order.Activity
	worker *order.Worker
	pub    *recordingPublisher
	reg    *prometheus.Registry
}

func eachReconcileBackend(t *testing.T, fn func(t *testing.T, e *recEnv)) {
	t.Run("miniredis+sqlite", func(t *testing.T) {
		emb, err := inventory.NewEmbedded()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { emb.Close() })
		fn(t, newRecEnv(t, emb.Client, sqldb.Config{DataDir: t.TempDir()}))
	})
	t.Run("redis+mariadb", func(t *testing.T) {
		url, dsn := testkit.RedisURL(t), testkit.MySQLDSN(t)
		rdb, err := inventory.NewClient(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		fn(t, newRecEnv(t, rdb, sqldb.Config{DSN: dsn}))
	})
}

func newRecEnv(t *testing.T, rdb redis.UniversalClient, dbc sqldb.Config) *recEnv {
	t.Helper()
	ctx := context.Background()
	dbc.Logger = quietLog()
	gdb, err := sqldb.Open(ctx, dbc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := gdb.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := order.Migrate(ctx, gdb); err != nil {
		t.Fatal(err)
	}
	prefix := "sktest-rec-" + testkit.RandomHex(4)
	t.Cleanup(func() { inventorytest.DeletePrefix(t, rdb, prefix) })
	e := &recEnv{
		t: t, rdb: rdb, prefix: prefix, inv: inventory.New(rdb, inventory.Options{Prefix: prefix}),
		db: order.NewStore(gdb), pub: &recordingPublisher{}, reg: prometheus.NewRegistry(),
	}
	e.worker = order.NewWorker(e.db, e.inv, order.WorkerConfig{Logger: quietLog()})
	t.Cleanup(func() { e.worker.Close() })
	e.act = e.newActivity(5)
	return e
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newActivity creates an activity open for an hour around now in the
// database and loads it into Redis.
func (e *recEnv) newActivity(stock int64) *order.Activity {
	e.t.Helper()
	now := time.Now().UTC()
	a := &order.Activity{Name: "reconcile", Stock: stock, PriceCents: 1234, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), PayTimeoutSeconds: 60}
	if err := e.db.CreateActivity(context.Background(), a); err != nil {
		e.t.Fatal(err)
	}
	if loaded, err := e.inv.Load(context.Background(), invActivity(a), stock, nil); err != nil || !loaded {
		e.t.Fatalf("Load = %v, %v", loaded, err)
	}
	return a
}

func invActivity(a *order.Activity) inventory.Activity {
	return inventory.Activity{ID: a.ID, Stock: a.Stock, StartsAt: a.StartsAt, EndsAt: a.EndsAt}
}

// reserve takes a unit for user as the gateway does; confirm marks it
// queued (the publish succeeded). No message is published: unless the
// test writes it, its order is the one the queue lost.
func (e *recEnv) reserve(user string, confirm bool) string {
	e.t.Helper()
	ctx := context.Background()
	oid := fmt.Sprintf("o-%s-%s", user, testkit.RandomHex(3))
	r, err := e.inv.Reserve(ctx, e.act.ID, user, "req-"+user, oid, time.Now())
	if err != nil || r.Outcome != inventory.Reserved {
		e.t.Fatalf("Reserve(%s) = %+v, %v", user, r, err)
	}
	if confirm {
		if ok, err := e.inv.Confirm(ctx, e.act.ID, oid); err != nil || !ok {
			e.t.Fatalf("Confirm(%s) = %v, %v", oid, ok, err)
		}
	}
	return oid
}

// write hands the order message of oid to the order worker.
func (e *recEnv) write(oid, user string) {
	e.t.Helper()
	payload, _ := json.Marshal(ordermsg.Message{OrderID: oid, ActivityID: e.act.ID, UserID: user, RequestID: "req-" + user, PriceCents: e.act.PriceCents, ReservedAt: time.Now().UTC()})
	if err := e.worker.Handle(context.Background(), &mq.Message{ID: oid, Payload: payload}); err != nil {
		e.t.Fatalf("worker: %v", err)
	}
	if o, err := e.db.GetOrder(context.Background(), oid); err != nil || o.State != order.StateCreated {
		e.t.Fatalf("order %s after the worker: %+v, %v; want created", oid, o, err)
	}
}

// buy reserves, confirms and writes: a sale that went through.
func (e *recEnv) buy(user string) string {
	oid := e.reserve(user, true)
	e.write(oid, user)
	return oid
}

// cancelLosingRelease cancels a created order in the database (its pay
// deadline passed) while Redis is unreachable for the release: the state
// a crash between the commit and the release leaves.
func (e *recEnv) cancelLosingRelease(oid string) {
	e.t.Helper()
	life := order.NewLifecycle(e.db, failingReleaser{}, order.LifecycleConfig{
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) }, Logger: quietLog(),
	})
	if _, err := life.CancelExpired(context.Background(), oid); err == nil {
		e.t.Fatal("CancelExpired returned nil although the release failed")
	}
	if o, err := e.db.GetOrder(context.Background(), oid); err != nil || o.State != order.StateCancelled {
		e.t.Fatalf("order %s: %+v, %v; want cancelled", oid, o, err)
	}
}

type failingReleaser struct{}

func (failingReleaser) ReleaseCancelled(context.Context, int64, string) (bool, error) {
	return false, errors.New("redis unreachable")
}

// reconciler returns a reconciler whose clock runs ahead of the wall clock
// by *ahead (so reservations made now are as old as the test needs).
func (e *recEnv) reconciler(ahead *atomic.Int64, cfg order.ReconcilerConfig) *order.Reconciler {
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	if cfg.Restorer == nil {
		cfg.Restorer = dbRestorer{e}
	}
	cfg.Logger, cfg.Registerer = quietLog(), e.reg
	return order.NewReconciler(e.db, e.inv, e.pub, cfg)
}

// dbRestorer restores a lost activity from the database's live orders, as
// the gateway's restore does when nothing waits in the queue.
type dbRestorer struct{ e *recEnv }

func (r dbRestorer) Restore(ctx context.Context, a *order.Activity) error {
	live, err := r.e.db.ActiveOrders(ctx, a.ID)
	if err != nil {
		return err
	}
	var existing []inventory.Reservation
	for _, o := range live {
		existing = append(existing, inventory.Reservation{OrderID: o.ID, UserID: o.UserID, RequestID: o.RequestID, ReservedAt: o.CreatedAt, Status: inventory.StatusClaimed})
	}
	fresh, err := r.e.db.GetActivity(ctx, a.ID)
	if err != nil {
		return err
	}
	_, err = r.e.inv.Load(ctx, invActivity(fresh), fresh.Available, existing)
	return err
}

// once runs one pass and returns the report of the test's activity.
func (e *recEnv) once(r *order.Reconciler) order.ReconcileReport {
	e.t.Helper()
	reps, err := r.Once(context.Background())
	if err != nil {
		e.t.Fatalf("Once: %v", err)
	}
	for _, rep := range reps {
		if rep.ActivityID == e.act.ID {
			return rep
		}
	}
	e.t.Fatalf("Once reported nothing for activity %d: %+v", e.act.ID, reps)
	return order.ReconcileReport{}
}

func (e *recEnv) stats() inventory.Stats {
	e.t.Helper()
	st, ok, err := e.inv.Stats(context.Background(), e.act.ID)
	if err != nil || !ok {
		e.t.Fatalf("Stats = %+v, %v, %v; want loaded", st, ok, err)
	}
	return st
}

// wantConserved checks invariant 3 on both sides, with the orders not yet
// written (queued) taken from the reservations.
func (e *recEnv) wantConserved() {
	e.t.Helper()
	st := e.stats()
	snap, err := e.db.Snapshot(context.Background(), e.act.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	live := snap.Created + snap.Paid
	queued := st.Reserved - live
	if st.Remaining != st.Stock-(queued+live) || snap.Activity.Available != snap.Activity.Stock-live || st.Remaining < 0 || live > st.Stock {
		e.t.Errorf("conservation broken: redis %+v, db available %d created %d paid %d", st, snap.Activity.Available, snap.Created, snap.Paid)
	}
}

// metric reads a counter or gauge of the test's registry.
func (e *recEnv) metric(name, label, value string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	e.t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}

func (e *recEnv) drift() float64 {
	return e.metric("seckill_reconcile_drift", "activity_id", fmt.Sprint(e.act.ID))
}

// recordingPublisher records what the reconciler publishes.
type recordingPublisher struct {
	mu   sync.Mutex
	msgs []*mq.Message
	err  error
}

func (p *recordingPublisher) Publish(_ context.Context, topic string, msgs ...*mq.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if topic != ordermsg.TopicOrders {
		return fmt.Errorf("published to %s", topic)
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *recordingPublisher) take() []*mq.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.msgs
	p.msgs = nil
	return out
}

func TestReconcileRedrivesLostOrders(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{Age: 5 * time.Minute, MaxRedrives: 2})
		lost := e.reserve("lost", true)        // queued; its message never reached the queue
		claimed := e.reserve("claimed", true)  // a worker claimed it, then its message was dead-lettered
		pending := e.reserve("pending", false) // the reaper's, not the reconciler's
		written := e.buy("written")            // went through
		if _, err := e.inv.Claim(context.Background(), e.act.ID, []string{claimed}); err != nil {
			t.Fatal(err)
		}
		reservedAt := time.Now()

		// Younger than the age: nothing yet.
		ahead.Store(int64(time.Minute))
		if rep := e.once(r); rep.Redriven != 0 || rep.Drift != 0 || !rep.Measured {
			t.Fatalf("young reservations: %+v; want no re-drive, drift 0", rep)
		}
		if msgs := e.pub.take(); len(msgs) != 0 {
			t.Fatalf("published %d messages for young reservations", len(msgs))
		}

		ahead.Store(int64(10 * time.Minute))
		rep := e.once(r)
		if rep.Redriven != 2 || rep.Unwritten != 3 || rep.Drift != 0 {
			t.Fatalf("report %+v; want 2 re-driven of 3 unwritten, drift 0", rep)
		}
		msgs := e.pub.take()
		got := map[string]ordermsg.Message{}
		for _, m := range msgs {
			var om ordermsg.Message
			if err := json.Unmarshal(m.Payload, &om); err != nil {
				t.Fatal(err)
			}
			if m.ID != om.OrderID || m.Key != om.UserID || m.Headers[order.HeaderRedriven] == "" {
				t.Errorf("message %+v: want ID = order id, Key = user, the re-drive header", m)
			}
			got[om.OrderID] = om
		}
		for oid, user := range map[string]string{lost: "lost", claimed: "claimed"} {
			m, ok := got[oid]
			if !ok {
				t.Errorf("order %s not re-driven; published %v", oid, got)
				continue
			}
			if m.ActivityID != e.act.ID || m.UserID != user || m.RequestID != "req-"+user || m.PriceCents != e.act.PriceCents ||
				m.ReservedAt.Sub(reservedAt).Abs() > time.Second {
				t.Errorf("re-driven message %+v; want activity %d, user %s, its request id, price %d, reserved about %s", m, e.act.ID, user, e.act.PriceCents, reservedAt)
			}
		}
		if _, ok := got[pending]; ok {
			t.Error("a pending reservation was re-driven")
		}
		if _, ok := got[written]; ok {
			t.Error("a written order was re-driven")
		}
		if n := e.metric("seckill_reconcile_repairs_total", "kind", order.RepairRedriven); n != 2 {
			t.Errorf("repairs{redriven} = %v; want 2", n)
		}

		// Within the age again: the same orders are not published twice.
		ahead.Store(int64(11 * time.Minute))
		if rep := e.once(r); rep.Redriven != 0 {
			t.Errorf("second pass within the age re-drove %d", rep.Redriven)
		}
		// The worker writes the re-driven lost order (a duplicate would
		// be a no-op); the claimed one stays lost.
		e.write(lost, "lost")
		e.write(lost, "lost")
		ahead.Store(int64(17 * time.Minute))
		if rep := e.once(r); rep.Redriven != 1 || len(e.pub.take()) != 1 {
			t.Errorf("after the age: %+v; want only the still unwritten claimed order re-driven", rep)
		}
		// MaxRedrives 2: the third time it is left to an operator.
		ahead.Store(int64(23 * time.Minute))
		if rep := e.once(r); rep.Redriven != 0 || rep.Stuck != 1 {
			t.Errorf("after MaxRedrives: %+v; want no re-drive, 1 stuck", rep)
		}
		e.wantConserved()
		if d := e.drift(); d != 0 {
			t.Errorf("drift gauge = %v; want 0", d)
		}
	})
}

// TestReconcileRedriveSurvivesAQueueOutage: while the queue refuses, no
// order uses up its re-drives; once it is back, the order is re-driven at
// the next pass, not an age later.
func TestReconcileRedriveSurvivesAQueueOutage(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		lost := e.reserve("lost", true)
		var ahead atomic.Int64
		ahead.Store(int64(10 * time.Minute))
		r := e.reconciler(&ahead, order.ReconcilerConfig{MaxRedrives: 1})
		e.pub.err = errors.New("queue down")
		for range 3 {
			if rep := e.once(r); rep.Redriven != 0 || rep.Stuck != 0 {
				t.Fatalf("queue down: %+v; want nothing re-driven, nothing given up", rep)
			}
		}
		e.pub.err = nil
		if rep := e.once(r); rep.Redriven != 1 {
			t.Fatalf("queue back: %+v; want the order re-driven", rep)
		}
		if msgs := e.pub.take(); len(msgs) != 1 || msgs[0].ID != lost {
			t.Errorf("published %v; want %s", msgs, lost)
		}
	})
}

func TestReconcileWaitsForTheQueueBacklog(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		lost := e.reserve("lost", true)
		var ahead atomic.Int64
		ahead.Store(int64(10 * time.Minute))
		for _, c := range []struct {
			name    string
			backlog func(context.Context) (time.Time, bool, error)
			want    int
		}{
			// A backlog older than the reservation: its message may be in it.
			{"older backlog", func(context.Context) (time.Time, bool, error) { return time.Now().Add(time.Second), true, nil }, 0},
			{"backlog of unknown age", func(context.Context) (time.Time, bool, error) { return time.Time{}, true, nil }, 0},
			{"backlog unreadable", func(context.Context) (time.Time, bool, error) { return time.Time{}, false, errors.New("down") }, 0},
			// Only messages published after the reservation (+ age) wait.
			{"newer backlog", func(context.Context) (time.Time, bool, error) { return time.Now().Add(6 * time.Minute), true, nil }, 1},
		} {
			r := e.reconciler(&ahead, order.ReconcilerConfig{Backlog: c.backlog})
			if rep := e.once(r); rep.Redriven != c.want {
				t.Errorf("%s: re-drove %d; want %d", c.name, rep.Redriven, c.want)
			}
		}
		if msgs := e.pub.take(); len(msgs) != 1 || msgs[0].ID != lost {
			t.Errorf("published %v; want the lost order once", msgs)
		}
	})
}

func TestReconcileReleasesCancelledOrders(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{})
		oid := e.buy("late")
		e.buy("keeps")
		e.cancelLosingRelease(oid)
		if st := e.stats(); st.Remaining != 3 || st.Reserved != 2 {
			t.Fatalf("before: %+v; want the cancelled order's unit still held", st)
		}
		rep := e.once(r)
		if rep.Released != 1 || rep.Drift != 0 {
			t.Fatalf("report %+v; want 1 released, drift 0", rep)
		}
		if st := e.stats(); st.Remaining != 4 || st.Reserved != 1 {
			t.Errorf("after: %+v; want the unit back: remaining 4, 1 reservation", st)
		}
		e.wantConserved()
		if n := e.metric("seckill_reconcile_repairs_total", "kind", order.RepairReleasedCancelled); n != 1 {
			t.Errorf("repairs{released_cancelled} = %v; want 1", n)
		}
		// The buyer may buy the returned unit again; a second pass
		// returns nothing more.
		e.buy("late")
		if rep := e.once(r); rep.Released != 0 || rep.Drift != 0 {
			t.Errorf("second pass: %+v", rep)
		}
		e.wantConserved()
	})
}

func TestReconcileRebuildsLostMeta(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{MetaSettle: 2 * time.Second})
		e.buy("written")
		e.reserve("queued", true)
		e.reserve("pending", false)
		if err := e.rdb.Del(context.Background(), e.prefix+fmt.Sprintf(":{a%d}:meta", e.act.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		// First seen missing: a restore may be writing it; wait.
		if rep := e.once(r); !rep.MetaPending || rep.MetaRebuilt || rep.Measured {
			t.Fatalf("first pass: %+v; want meta pending", rep)
		}
		ahead.Store(int64(3 * time.Second))
		rep := e.once(r)
		if !rep.MetaRebuilt || rep.Drift != 0 || !rep.Measured {
			t.Fatalf("second pass: %+v; want meta rebuilt, drift 0", rep)
		}
		if st := e.stats(); st != (inventory.Stats{Stock: 5, Remaining: 2, Reserved: 3, Pending: 1}) {
			t.Errorf("after the rebuild: %+v; want remaining 5 - 3 reservations", st)
		}
		e.wantConserved()
		if n := e.metric("seckill_reconcile_repairs_total", "kind", order.RepairMetaRebuilt); n != 1 {
			t.Errorf("repairs{meta_rebuilt} = %v; want 1", n)
		}
		e.buy("after")
		e.buy("after2")
		if r, err := e.inv.Reserve(context.Background(), e.act.ID, "one-too-many", "", "o-x", time.Now()); err != nil || r.Outcome != inventory.SoldOut {
			t.Errorf("after the rebuild, a sixth buyer of 5: %+v, %v; want SoldOut", r, err)
		}
	})
}

// TestReconcileRebuildsMetaWithinTheDatabase: meta went together with the
// reservation of a written order. Redis alone would count that unit free;
// the database's bound keeps it off sale, and the missing reservation is
// reported.
func TestReconcileRebuildsMetaWithinTheDatabase(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{})
		written := e.buy("written")
		e.reserve("queued", true)
		ctx := context.Background()
		tag := e.prefix + fmt.Sprintf(":{a%d}:", e.act.ID)
		if err := e.rdb.Del(ctx, tag+"meta").Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.HDel(ctx, tag+"res", written).Err(); err != nil {
			t.Fatal(err)
		}
		e.once(r)
		ahead.Store(int64(time.Minute))
		rep := e.once(r)
		if !rep.MetaRebuilt || rep.Missing != 1 || rep.Drift != 0 {
			t.Fatalf("report %+v; want meta rebuilt, 1 order without reservation, drift 0", rep)
		}
		// 5 units: 1 written, 1 queued. 3 on sale, not 4.
		if st := e.stats(); st.Remaining != 3 {
			t.Errorf("remaining = %d; want 3 (the written order's unit stays sold)", st.Remaining)
		}
	})
}

func TestReconcileRestoresALostActivity(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{})
		e.buy("a")
		e.buy("b")
		if n := inventorytest.DeletePrefix(t, e.rdb, e.prefix); n == 0 {
			t.Fatal("no key deleted")
		}
		rep := e.once(r)
		if !rep.Restored || rep.Drift != 0 || !rep.Measured {
			t.Fatalf("report %+v; want restored, drift 0", rep)
		}
		if st := e.stats(); st.Remaining != 3 || st.Reserved != 2 {
			t.Errorf("restored: %+v; want remaining 3, 2 reservations", st)
		}
		e.wantConserved()
		if n := e.metric("seckill_reconcile_repairs_total", "kind", order.RepairActivityRestored); n != 1 {
			t.Errorf("repairs{activity_restored} = %v; want 1", n)
		}
		// Their buyers cannot buy twice; others can.
		if res, err := e.inv.Reserve(context.Background(), e.act.ID, "a", "", "o-again", time.Now()); err != nil || res.Outcome != inventory.AlreadyPurchased {
			t.Errorf("a buys again: %+v, %v; want AlreadyPurchased", res, err)
		}
		e.buy("c")
		e.wantConserved()
	})
}

func TestReconcileLowersRemainingAboveTheReservations(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{})
		e.buy("a")
		e.reserve("b", true)
		// Meta restored from the database alone (the lazy restore knows
		// nothing of the queued reservation): remaining = available.
		if err := e.rdb.HSet(context.Background(), e.prefix+fmt.Sprintf(":{a%d}:meta", e.act.ID), "remaining", 4).Err(); err != nil {
			t.Fatal(err)
		}
		rep := e.once(r)
		if rep.Lowered != 1 || rep.Drift != 0 {
			t.Fatalf("report %+v; want 1 unit off sale, drift 0", rep)
		}
		if st := e.stats(); st.Remaining != 3 {
			t.Errorf("remaining = %d; want 3", st.Remaining)
		}
		e.wantConserved()
		if n := e.metric("seckill_reconcile_repairs_total", "kind", order.RepairRemainingLowered); n != 1 {
			t.Errorf("repairs{remaining_lowered} = %v; want 1", n)
		}
	})
}

// TestReconcileReportsDrift: what has no known cause is measured and
// reported, never repaired.
func TestReconcileReportsDrift(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		ctx := context.Background()
		var ahead atomic.Int64
		r := e.reconciler(&ahead, order.ReconcilerConfig{})
		written := e.buy("a")
		e.buy("b")
		if rep := e.once(r); rep.Drift != 0 || e.drift() != 0 {
			t.Fatalf("sound activity: %+v", rep)
		}

		// A written order's unit released by mistake: Redis would sell
		// it again (oversell risk, +1).
		if ok, err := e.inv.ReleaseCancelled(ctx, e.act.ID, written); err != nil || !ok {
			t.Fatal(ok, err)
		}
		rep := e.once(r)
		if rep.Drift != 1 || rep.Missing != 1 || e.drift() != 1 {
			t.Fatalf("released written order: %+v, gauge %v; want drift +1, 1 missing reservation", rep, e.drift())
		}
		if st := e.stats(); st.Remaining != 4 {
			t.Errorf("remaining = %d; the reconciler must not guess (want 4 as it was)", st.Remaining)
		}

		// Units vanished from Redis (-1 each): reported, not put back.
		if err := e.rdb.HIncrBy(ctx, e.prefix+fmt.Sprintf(":{a%d}:meta", e.act.ID), "remaining", -3).Err(); err != nil {
			t.Fatal(err)
		}
		if rep := e.once(r); rep.Drift != -2 || e.stats().Remaining != 1 {
			t.Errorf("after 3 units vanished: %+v, remaining %d; want drift -2, remaining 1 kept", rep, e.stats().Remaining)
		}

		// The database's books broken by hand: available one too many.
		if err := e.db.DB().Exec("UPDATE activities SET available = available + 1 WHERE id = ?", e.act.ID).Error; err != nil {
			t.Fatal(err)
		}
		if rep := e.once(r); rep.Drift != -3 || rep.DB.Activity.Available != 4 {
			t.Errorf("after the database gained a unit: %+v; want drift -3", rep)
		}
	})
}

// TestReconcilersRunTogether: four reconcilers (four worker processes) on
// an activity needing every repair make each repair once.
func TestReconcilersRunTogether(t *testing.T) {
	eachReconcileBackend(t, func(t *testing.T, e *recEnv) {
		var ahead atomic.Int64
		rs := make([]*order.Reconciler, 4)
		for i := range rs {
			rs[i] = e.reconciler(&ahead, order.ReconcilerConfig{})
		}
		cancelled := e.buy("cancelled")
		e.cancelLosingRelease(cancelled)
		e.buy("written")
		e.reserve("lost", true)
		if err := e.rdb.Del(context.Background(), e.prefix+fmt.Sprintf(":{a%d}:meta", e.act.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		all := func() {
			var wg sync.WaitGroup
			for _, r := range rs {
				wg.Go(func() {
					if _, err := r.Once(context.Background()); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		all() // releases the cancelled unit; sees meta missing
		ahead.Store(int64(10 * time.Minute))
		all() // rebuilds meta, re-drives the lost order
		all()
		for kind, want := range map[string]float64{
			order.RepairReleasedCancelled: 1, order.RepairMetaRebuilt: 1, order.RepairRedriven: 1,
			order.RepairRemainingLowered: 0, order.RepairActivityRestored: 0,
		} {
			if n := e.metric("seckill_reconcile_repairs_total", "kind", kind); n != want {
				t.Errorf("repairs{%s} = %v; want %v", kind, n, want)
			}
		}
		if msgs := e.pub.take(); len(msgs) != 1 {
			t.Errorf("published %d messages; want the lost order once", len(msgs))
		}
		// 5 units: 1 written, 1 queued (lost, re-driven), 3 on sale.
		if st := e.stats(); st.Remaining != 3 || st.Reserved != 2 {
			t.Errorf("after: %+v; want remaining 3, 2 reservations", st)
		}
		e.wantConserved()
		if d := e.drift(); d != 0 {
			t.Errorf("drift = %v; want 0", d)
		}
	})
}
