package order

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// The Reconciler against the database (SQLite and MariaDB) and an
// in-memory Redis side; the same repairs on the real inventory.Store are
// tested where both meet, in gateway/app (reconcile_test.go).

// fakeInventory keeps one activity's Redis side in memory with the
// semantics of the inventory scripts.
type fakeInventory struct {
	mu        sync.Mutex
	loaded    bool
	stock     int64
	remaining int64
	res       map[string]inventory.Reservation
	malformed []string
	marks     map[string]int
	pageSize  int // Reservations answers at most this many per page
}

func newFakeInventory(stock int64) *fakeInventory {
	return &fakeInventory{loaded: true, stock: stock, remaining: stock, res: map[string]inventory.Reservation{}, marks: map[string]int{}, pageSize: 2}
}

func (f *fakeInventory) hold(oid, user string, status inventory.Status, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res[oid] = inventory.Reservation{OrderID: oid, UserID: user, RequestID: "req-" + oid, ReservedAt: at, Status: status}
	f.remaining--
}

func (f *fakeInventory) Stats(context.Context, int64) (inventory.Stats, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var pending int64
	for _, r := range f.res {
		if r.Status == inventory.StatusPending {
			pending++
		}
	}
	return inventory.Stats{Stock: f.stock, Remaining: f.remaining, Reserved: int64(len(f.res)), Pending: pending}, f.loaded, nil
}

func (f *fakeInventory) Reservations(_ context.Context, _ int64, cursor uint64, _ int64) (inventory.ReservationPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.res))
	for id := range f.res {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var p inventory.ReservationPage
	if cursor == 0 {
		p.Malformed = f.malformed
	}
	end := min(int(cursor)+f.pageSize, len(ids))
	for _, id := range ids[int(cursor):end] {
		p.Reservations = append(p.Reservations, f.res[id])
	}
	if end < len(ids) {
		p.Next = uint64(end)
	}
	return p, nil
}

func (f *fakeInventory) Held(_ context.Context, _ int64, ids []string) ([]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bool, len(ids))
	for i, id := range ids {
		_, out[i] = f.res[id]
	}
	return out, nil
}

func (f *fakeInventory) RepairMeta(_ context.Context, a inventory.Activity, bound int64) (inventory.MetaRepair, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.loaded:
		return inventory.MetaRepair{Outcome: inventory.MetaPresent}, nil
	case len(f.res) == 0:
		return inventory.MetaRepair{Outcome: inventory.ActivityAbsent}, nil
	}
	f.loaded, f.stock = true, a.Stock
	f.remaining = max(min(a.Stock-int64(len(f.res)), bound), 0)
	return inventory.MetaRepair{Outcome: inventory.MetaRebuilt, Remaining: f.remaining}, nil
}

func (f *fakeInventory) LowerRemaining(context.Context, int64) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := max(f.stock-int64(len(f.res)), 0)
	if !f.loaded || f.remaining <= want {
		return 0, f.loaded, nil
	}
	n := f.remaining - want
	f.remaining = want
	return n, true, nil
}

func (f *fakeInventory) MarkRedrive(_ context.Context, _ int64, oid string, before, _ time.Time, _ time.Duration, maxTimes int) (inventory.RedriveDecision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.res[oid]
	if !ok || r.Status == inventory.StatusPending || !r.ReservedAt.Before(before) {
		return inventory.RedriveGone, nil
	}
	if f.marks[oid] >= maxTimes {
		return inventory.RedriveExhausted, nil
	}
	f.marks[oid]++
	return inventory.RedriveNow, nil
}

func (f *fakeInventory) UnmarkRedrive(_ context.Context, _ int64, oid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.marks[oid] > 0 {
		f.marks[oid]--
	}
	return nil
}

func (f *fakeInventory) ReleaseCancelled(_ context.Context, _ int64, oid string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.res[oid]; !ok {
		return false, nil
	}
	delete(f.res, oid)
	if f.remaining < f.stock {
		f.remaining++
	}
	return true, nil
}

type capturePublisher struct {
	mu   sync.Mutex
	msgs []*mq.Message
	err  error
}

func (p *capturePublisher) Publish(_ context.Context, _ string, msgs ...*mq.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// storeOrder writes an order row directly, as a worker would have, taking
// its unit from the activity when it is live.
func storeOrder(t *testing.T, s *Store, a *Activity, oid, user, state string) {
	t.Helper()
	now := time.Now().UTC()
	err := s.DB().Transaction(func(tx *gorm.DB) error {
		if state != StateCancelled {
			if err := tx.Exec("UPDATE activities SET available = available - 1 WHERE id = ?", a.ID).Error; err != nil {
				return err
			}
		}
		return tx.Create(&Order{ID: oid, ActivityID: a.ID, UserID: user, RequestID: "req-" + oid, State: state, PriceCents: a.PriceCents, PayDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

func reportOf(t *testing.T, reps []ReconcileReport, id int64) ReconcileReport {
	t.Helper()
	for _, r := range reps {
		if r.ActivityID == id {
			return r
		}
	}
	t.Fatalf("no report for activity %d in %+v", id, reps)
	return ReconcileReport{}
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, id int64) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "seckill_reconcile_drift" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == fmt.Sprint(id) {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func TestReconcilerConfigDefaults(t *testing.T) {
	c := ReconcilerConfig{}.withDefaults()
	if c.Interval != DefaultReconcileInterval || c.Age != DefaultReconcileAge || c.Horizon != DefaultReconcileHorizon ||
		c.PageSize != DefaultReconcilePageSize || c.MaxRedrives != DefaultReconcileMaxRedrives ||
		c.RedriveLimit != DefaultReconcileRedriveLimit || c.MetaSettle != DefaultReconcileMetaSettle || c.Now == nil || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	if DefaultReconcileInterval != 30*time.Second || DefaultReconcileAge != 5*time.Minute {
		t.Errorf("documented defaults changed: interval %v, age %v", DefaultReconcileInterval, DefaultReconcileAge)
	}
	c = ReconcilerConfig{Interval: time.Second, Age: time.Minute, PageSize: 7}.withDefaults()
	if c.Interval != time.Second || c.Age != time.Minute || c.PageSize != 7 {
		t.Errorf("set values replaced: %+v", c)
	}
}

// TestReconcilerEachRepair takes one activity through every repair and the
// report, on each database.
func TestReconcilerEachRepair(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		s := NewStore(db)
		a := newActivity(t, s, 10)
		inv := newFakeInventory(10)
		pub := &capturePublisher{}
		reg := prometheus.NewRegistry()
		clock := time.Now().Add(10 * time.Minute)
		r := NewReconciler(s, inv, pub, ReconcilerConfig{
			Age: 5 * time.Minute, PageSize: 2, Logger: quiet(), Registerer: reg,
			Now: func() time.Time { return clock },
		})
		old := time.Now()
		inv.hold("written", "u1", inventory.StatusClaimed, old)
		storeOrder(t, s, a, "written", "u1", StateCreated)
		inv.hold("paid", "u2", inventory.StatusClaimed, old)
		storeOrder(t, s, a, "paid", "u2", StatePaid)
		inv.hold("cancelled", "u3", inventory.StatusClaimed, old)
		storeOrder(t, s, a, "cancelled", "u3", StateCancelled)
		inv.hold("lost", "u4", inventory.StatusQueued, old)
		inv.hold("pending", "u5", inventory.StatusPending, old)
		inv.hold("young", "u6", inventory.StatusQueued, clock)
		inv.malformed = []string{"garbage"}

		rep := reportOf(t, onceOK(t, r), a.ID)
		want := ReconcileReport{ActivityID: a.ID, Redriven: 1, Released: 1, Malformed: 1, Reservations: 6, Unwritten: 3, Measured: true}
		got := rep
		got.Redis, got.DB = inventory.Stats{}, Snapshot{}
		if got != want {
			t.Errorf("report = %+v; want %+v", got, want)
		}
		if rep.Redis != (inventory.Stats{Stock: 10, Remaining: 5, Reserved: 5, Pending: 1}) || rep.DB.Created != 1 || rep.DB.Paid != 1 || rep.DB.Cancelled != 1 || rep.DB.Activity.Available != 8 {
			t.Errorf("sides = %+v / %+v", rep.Redis, rep.DB)
		}
		if len(pub.msgs) != 1 || pub.msgs[0].ID != "lost" {
			t.Fatalf("published %v; want the lost order", pub.msgs)
		}
		if g, ok := gaugeOf(t, reg, a.ID); !ok || g != 0 {
			t.Errorf("drift gauge = %v, %v; want 0", g, ok)
		}

		// Redis loses meta: rebuilt once it stays missing for the settle
		// time, within the database's bound.
		inv.mu.Lock()
		inv.loaded, inv.remaining = false, 0
		inv.mu.Unlock()
		if rep := reportOf(t, onceOK(t, r), a.ID); !rep.MetaPending || rep.Measured {
			t.Errorf("first pass without meta: %+v; want pending", rep)
		}
		clock = clock.Add(time.Minute)
		if rep := reportOf(t, onceOK(t, r), a.ID); !rep.MetaRebuilt || rep.Drift != 0 || rep.Redis.Remaining != 5 {
			t.Errorf("second pass without meta: %+v; want rebuilt, remaining 10 - 5", rep)
		}

		// remaining above stock - reservations: lowered.
		inv.mu.Lock()
		inv.remaining = 8
		inv.mu.Unlock()
		if rep := reportOf(t, onceOK(t, r), a.ID); rep.Lowered != 3 || rep.Drift != 0 {
			t.Errorf("remaining too high: %+v; want 3 lowered", rep)
		}

		// A live order without its reservation, remaining unchanged:
		// reported (+1: Redis would sell its unit), not repaired.
		inv.mu.Lock()
		delete(inv.res, "paid")
		inv.remaining++
		inv.mu.Unlock()
		rep = reportOf(t, onceOK(t, r), a.ID)
		if rep.Missing != 1 || rep.Drift != 1 {
			t.Errorf("missing reservation: %+v; want missing 1, drift +1", rep)
		}
		if g, _ := gaugeOf(t, reg, a.ID); g != 1 {
			t.Errorf("drift gauge = %v; want 1", g)
		}

		// Redis loses everything and no restorer is configured: reported,
		// nothing measured, no error.
		inv.mu.Lock()
		inv.loaded, inv.res = false, map[string]inventory.Reservation{}
		inv.mu.Unlock()
		if rep := reportOf(t, onceOK(t, r), a.ID); rep.Restored || rep.Measured {
			t.Errorf("lost activity without a restorer: %+v", rep)
		}
	})
}

func onceOK(t *testing.T, r *Reconciler) []ReconcileReport {
	t.Helper()
	reps, err := r.Once(context.Background())
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	return reps
}

func TestReconcilerRestoresThroughTheRestorer(t *testing.T) {
	s := NewStore(openTestDB(t, sqldb.Config{DataDir: t.TempDir()}))
	a := newActivity(t, s, 3)
	inv := newFakeInventory(3)
	inv.loaded = false
	restored := 0
	r := NewReconciler(s, inv, &capturePublisher{}, ReconcilerConfig{Logger: quiet(), Restorer: restorerFunc(func(_ context.Context, got *Activity) error {
		if got.ID != a.ID {
			t.Errorf("restorer got activity %d; want %d", got.ID, a.ID)
		}
		restored++
		inv.mu.Lock()
		inv.loaded, inv.remaining = true, got.Available
		inv.mu.Unlock()
		return nil
	})})
	rep := reportOf(t, onceOK(t, r), a.ID)
	if !rep.Restored || restored != 1 || !rep.Measured || rep.Drift != 0 {
		t.Errorf("report %+v, restorer called %d times; want restored once, drift 0", rep, restored)
	}
	// A failing restorer is an error of the pass naming the activity.
	inv.loaded = false
	r = NewReconciler(s, inv, &capturePublisher{}, ReconcilerConfig{Logger: quiet(), Restorer: restorerFunc(func(context.Context, *Activity) error {
		return errors.New("database away")
	})})
	if _, err := r.Once(context.Background()); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("activity %d", a.ID)) || !strings.Contains(err.Error(), "database away") {
		t.Errorf("Once with a failing restorer: %v", err)
	}
}

type restorerFunc func(ctx context.Context, a *Activity) error

func (f restorerFunc) Restore(ctx context.Context, a *Activity) error { return f(ctx, a) }

func TestReconcilerRedriveLimitsAndFailures(t *testing.T) {
	s := NewStore(openTestDB(t, sqldb.Config{DataDir: t.TempDir()}))
	a := newActivity(t, s, 10)
	inv := newFakeInventory(10)
	old := time.Now().Add(-time.Hour)
	for i := range 5 {
		inv.hold(fmt.Sprintf("lost-%d", i), fmt.Sprintf("u%d", i), inventory.StatusQueued, old)
	}
	pub := &capturePublisher{err: errors.New("queue full")}
	r := NewReconciler(s, inv, pub, ReconcilerConfig{Logger: quiet(), RedriveLimit: 2, MaxRedrives: 2})
	// A queue that refuses: no re-drive, and however long it lasts, no
	// order uses up its re-drives.
	for range 5 {
		if rep := reportOf(t, onceOK(t, r), a.ID); rep.Redriven != 0 || rep.Stuck != 0 {
			t.Errorf("with the queue down: %+v; want nothing re-driven or stuck", rep)
		}
	}
	if n := len(pub.msgs); n != 0 {
		t.Fatalf("%d published", n)
	}
	for oid, n := range inv.marks {
		if n != 0 {
			t.Errorf("order %s: %d re-drives used while the queue was down", oid, n)
		}
	}
	pub.err = nil
	if rep := reportOf(t, onceOK(t, r), a.ID); rep.Redriven != 2 {
		t.Errorf("re-drove %d; want the limit of 2 per pass", rep.Redriven)
	}
	total := 2
	for range 10 {
		rep := reportOf(t, onceOK(t, r), a.ID)
		if rep.Redriven > 2 {
			t.Fatalf("re-drove %d in one pass; limit 2", rep.Redriven)
		}
		total += rep.Redriven
		if rep.Redriven == 0 {
			if rep.Stuck != 5 {
				t.Errorf("after every order had its re-drives: %+v; want 5 stuck", rep)
			}
			break
		}
	}
	if total != 10 || len(pub.msgs) != 10 {
		t.Errorf("%d re-drives, %d published; want 5 orders x MaxRedrives 2", total, len(pub.msgs))
	}
}

func TestReconcilerSkipsOldActivities(t *testing.T) {
	s := NewStore(openTestDB(t, sqldb.Config{DataDir: t.TempDir()}))
	a := newActivity(t, s, 3)
	reg := prometheus.NewRegistry()
	clock := time.Now()
	r := NewReconciler(s, newFakeInventory(3), &capturePublisher{}, ReconcilerConfig{
		Logger: quiet(), Registerer: reg, Horizon: time.Hour, Now: func() time.Time { return clock },
	})
	if reps := onceOK(t, r); len(reps) != 1 {
		t.Fatalf("reports %+v; want the open activity", reps)
	}
	if _, ok := gaugeOf(t, reg, a.ID); !ok {
		t.Fatal("no drift gauge for the activity")
	}
	clock = a.EndsAt.Add(2 * time.Hour) // ended longer than the horizon ago
	if reps := onceOK(t, r); len(reps) != 0 {
		t.Errorf("reports %+v; want none past the horizon", reps)
	}
	if _, ok := gaugeOf(t, reg, a.ID); ok {
		t.Error("drift gauge of an activity past the horizon kept")
	}
}

// TestReconcilerLookups: the database side on each backend, with more
// orders than a page.
func TestReconcilerLookups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := newActivity(t, s, 20)
		inv := newFakeInventory(20)
		var all []string
		for i := range 7 {
			oid := fmt.Sprintf("c-%02d", i)
			storeOrder(t, s, a, oid, "uc"+oid, StateCreated)
			all = append(all, oid)
			if i%3 != 0 {
				inv.hold(oid, "uc"+oid, inventory.StatusClaimed, time.Now())
			}
		}
		for i := range 4 {
			oid := fmt.Sprintf("p-%02d", i)
			storeOrder(t, s, a, oid, "up"+oid, StatePaid)
			all = append(all, oid)
			if i != 0 {
				inv.hold(oid, "up"+oid, inventory.StatusClaimed, time.Now())
			}
		}
		storeOrder(t, s, a, "x-cancelled", "ux", StateCancelled)
		states, err := s.orderStates(ctx, append(all, "x-cancelled", "nope"))
		if err != nil || len(states) != 12 || states["x-cancelled"] != StateCancelled || states["p-01"] != StatePaid || states["c-01"] != StateCreated {
			t.Errorf("orderStates = %v, %v", states, err)
		}
		r := NewReconciler(s, inv, &capturePublisher{}, ReconcilerConfig{Logger: quiet(), PageSize: 3})
		missing, err := r.missing(ctx, a.ID)
		slices.Sort(missing)
		if want := []string{"c-00", "c-03", "c-06", "p-00"}; err != nil || !slices.Equal(missing, want) {
			t.Errorf("missing = %v, %v; want %v", missing, err, want)
		}
	})
}
