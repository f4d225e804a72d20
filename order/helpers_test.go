package order

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/testkit"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gorm.io/gorm"
)

// backend opens a fresh, migrated database of one dialect for one test.
type backend struct {
	name string
	open func(t testing.TB) *gorm.DB
}

func backends() []backend {
	return []backend{
		{name: "sqlite", open: func(t testing.TB) *gorm.DB {
			return openTestDB(t, sqldb.Config{DataDir: t.TempDir()})
		}},
		{name: "mysql", open: func(t testing.TB) *gorm.DB {
			return openTestDB(t, sqldb.Config{DSN: testkit.MySQLDSN(t)})
		}},
	}
}

func openTestDB(t testing.TB, cfg sqldb.Config) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("sqldb.Open: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := Migrate(ctx, db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// forEachBackend runs fn as one subtest per dialect, each on its own
// database. The mysql subtest is skipped without SECKILL_TEST_MYSQL_DSN.
func forEachBackend(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func newActivity(t testing.TB, s *Store, stock int64) *Activity {
	t.Helper()
	now := time.Now().UTC()
	a := &Activity{
		Name: "flash", Stock: stock, PriceCents: 999,
		StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), PayTimeoutSeconds: 900,
	}
	if err := s.CreateActivity(context.Background(), a); err != nil {
		t.Fatalf("CreateActivity: %v", err)
	}
	return a
}

func message(aid int64, orderID, userID string) ordermsg.Message {
	return ordermsg.Message{
		OrderID: orderID, ActivityID: aid, UserID: userID, RequestID: "req-" + orderID,
		PriceCents: 999, ReservedAt: time.Now().UTC(), TraceID: "trace-" + orderID,
	}
}

func mqMessage(t testing.TB, m ordermsg.Message) *mq.Message {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &mq.Message{ID: "mq-" + m.OrderID, Payload: b, Attempt: 1}
}

// handleAll calls Handle for every message at once and returns the errors
// in message order.
func handleAll(t testing.TB, w *Worker, msgs []ordermsg.Message) []error {
	t.Helper()
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		mm := mqMessage(t, m)
		wg.Go(func() { errs[i] = w.Handle(context.Background(), mm) })
	}
	wg.Wait()
	return errs
}

// fakeClaimer answers true for every order except the released ones, and
// records the ids it was asked about.
type fakeClaimer struct {
	mu       sync.Mutex
	released map[string]bool
	err      error
	calls    [][]string
}

func (c *fakeClaimer) Claim(_ context.Context, _ int64, orderIDs []string) ([]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, append([]string(nil), orderIDs...))
	if c.err != nil {
		return nil, c.err
	}
	out := make([]bool, len(orderIDs))
	for i, id := range orderIDs {
		out[i] = !c.released[id]
	}
	return out, nil
}

func (c *fakeClaimer) claimedIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := make(map[string]int)
	for _, call := range c.calls {
		for _, id := range call {
			n[id]++
		}
	}
	return n
}

// testWorker starts a worker with its own metrics registry and closes it at
// the end of the test.
func testWorker(t testing.TB, s *Store, c Claimer, cfg WorkerConfig) (*Worker, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	w := NewWorker(s, c, cfg)
	t.Cleanup(func() { w.Close() })
	return w, reg
}

func mustActivity(t testing.TB, s *Store, id int64) *Activity {
	t.Helper()
	a, err := s.GetActivity(context.Background(), id)
	if err != nil {
		t.Fatalf("GetActivity(%d): %v", id, err)
	}
	return a
}

func countOrders(t testing.TB, s *Store, aid int64) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Model(&Order{}).Where("activity_id = ?", aid).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// histogram returns the sample count and the samples of a histogram by
// bucket upper bound.
func histogram(t testing.TB, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func counter(t testing.TB, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{result=%q} not found", name, result)
	return 0
}

func orderIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return ids
}
