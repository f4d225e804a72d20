package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/inventory/inventorytest"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/testkit"
)

// Redis losing data under a running all-in-one: everything (a real Redis
// restarted empty, simulated by deleting every key of the App's prefix), or
// only the meta keys (evicted on their own). The housekeeping loop is slowed
// down to minutes here, and nothing asks the HTTP API about the activities
// until Redis holds them again, so what brings them back is the
// reconciler, which runs every 100 ms.

// redisLossEnv is the App configuration of these tests on one backend.
func redisLossEnv(t *testing.T, real bool) map[string]string {
	env := map[string]string{
		"SECKILL_RECONCILE_INTERVAL":  "100ms",
		"SECKILL_RECONCILE_AGE":       "2s",
		"SECKILL_RESERVATION_TIMEOUT": "10m", // housekeeping every 200 s: out of the way
		"SECKILL_SOLDOUT_TTL":         "100ms",
	}
	if real {
		env["SECKILL_REDIS_URL"] = testkit.RedisURL(t)
		env["SECKILL_DB_DSN"] = testkit.MySQLDSN(t)
	}
	return env
}

func TestRedisLossAfterSpike(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := map[bool]string{false: "embedded", true: "redis+mariadb"}[real]
		t.Run(name+"/every key lost", func(t *testing.T) {
			redisLossScenario(t, redisLossEnv(t, real), false)
		})
		t.Run(name+"/meta lost", func(t *testing.T) {
			redisLossScenario(t, redisLossEnv(t, real), true)
		})
	}
}

// redisLossScenario: two activities, one sold in part (40 of 100 left)
// and one sold out; some orders paid. Then Redis loses every key of the
// App's prefix (metaOnly false) or the meta key of each activity
// (metaOnly true; also one accepted order whose message the queue lost is
// left in Redis, for the reconciler to re-drive). The activities must come
// back to a state the audit accepts, with the drift gauge at 0, and
// selling must go on where stock lasts.
func redisLossScenario(t *testing.T, env map[string]string, metaOnly bool) {
	a, c := startApp(t, env)
	ctx := context.Background()
	partial := c.createActivity(t, 100, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	soldOut := c.createActivity(t, 30, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	ids := []int64{mustParseID(t, partial), mustParseID(t, soldOut)}

	won := buyEach(t, c, partial, "p", 60)
	if len(won) != 60 {
		t.Fatalf("partial sale: %d of 60 buyers got 202; want all", len(won))
	}
	wonOut := buyEach(t, c, soldOut, "s", 50)
	if len(wonOut) != 30 {
		t.Fatalf("sold-out sale: %d of 50 buyers got 202; want 30", len(wonOut))
	}
	c.waitDrained(t, partial, 60)
	c.waitDrained(t, soldOut, 30)
	paid := 0
	for user, oid := range won {
		if paid == 10 {
			break
		}
		if code := c.do(t, "POST", "/api/v1/orders/"+oid+"/pay", c.token(t, user), nil, nil); code != http.StatusOK {
			t.Fatalf("pay %s: status %d", oid, code)
		}
		paid++
	}
	restoredBefore := appCounter(t, a, "seckill_reconcile_repairs_total", "kind", order.RepairActivityRestored)
	rebuiltBefore := appCounter(t, a, "seckill_reconcile_repairs_total", "kind", order.RepairMetaRebuilt)

	ghost := ""
	if metaOnly {
		// An order accepted (202) whose message the queue lost: its
		// reservation is queued in Redis, the database never saw it.
		ghost = "ghost-" + testkit.RandomHex(4)
		r, err := a.b.Inventory.Reserve(ctx, ids[0], "ghost", "ghost-req", ghost, time.Now())
		if err != nil || r.Outcome != inventory.Reserved {
			t.Fatalf("ghost reserve: %+v, %v", r, err)
		}
		if ok, err := a.b.Inventory.Confirm(ctx, ids[0], ghost); err != nil || !ok {
			t.Fatal(ok, err)
		}
		for _, id := range ids {
			if err := a.b.Redis.Del(ctx, fmt.Sprintf("%s:{a%d}:meta", a.cfg.RedisPrefix, id)).Err(); err != nil {
				t.Fatal(err)
			}
		}
	} else if n := inventorytest.DeletePrefix(t, a.b.Redis, a.cfg.RedisPrefix); n < 6 {
		t.Fatalf("deleted %d keys; want at least the 3 of each activity", n)
	}

	// Wait for Redis to hold both again, without touching the HTTP API
	// (whose lazy load would restore them by itself).
	untilOK(t, 15*time.Second, "activities back in redis", func() error {
		for _, id := range ids {
			if _, ok, err := a.b.Inventory.Stats(ctx, id); err != nil || !ok {
				return fmt.Errorf("activity %d not in redis (%v)", id, err)
			}
		}
		return nil
	})
	kind, before := order.RepairActivityRestored, restoredBefore
	if metaOnly {
		kind, before = order.RepairMetaRebuilt, rebuiltBefore
	}
	if got := appCounter(t, a, "seckill_reconcile_repairs_total", "kind", kind); got < before+2 {
		t.Errorf("repairs{%s} went from %v to %v; want the reconciler to have repaired both activities", kind, before, got)
	}

	wantCreated := int64(60 - paid)
	if metaOnly {
		// The reconciler re-drives the ghost's order after the age; the
		// worker writes it.
		wantCreated++
		untilOK(t, 15*time.Second, "the lost order re-driven and written", func() error {
			o, err := a.Store().GetOrder(ctx, ghost)
			if err != nil {
				return err
			}
			if o.State != order.StateCreated {
				return fmt.Errorf("order %s is %s", ghost, o.State)
			}
			return nil
		})
		c.waitStats(t, partial, "ghost order settled", func(s statsResp) bool { return s.Queued == 0 })
	}
	sp := auditStats(t, c, partial)
	if sp.OrdersCreated != wantCreated || sp.OrdersPaid != int64(paid) || sp.Remaining != 100-wantCreated-int64(paid) {
		t.Errorf("partial sale after the loss: %+v; want %d created, %d paid, %d remaining", sp, wantCreated, paid, 100-wantCreated-int64(paid))
	}
	so := auditStats(t, c, soldOut)
	if so.Remaining != 0 || so.OrdersCreated != 30 {
		t.Errorf("sold-out sale after the loss: %+v; want remaining 0, 30 created", so)
	}
	untilOK(t, 5*time.Second, "drift gauges at 0", func() error {
		for _, id := range ids {
			if d := appGauge(t, a, "seckill_reconcile_drift", "activity_id", fmt.Sprint(id)); d != 0 {
				return fmt.Errorf("activity %d: drift %v", id, d)
			}
		}
		return nil
	})

	// Selling goes on while stock lasts; earlier buyers stay one unit each.
	for user := range won {
		if code, _ := c.buyOne(t, partial, user); code != http.StatusConflict {
			t.Errorf("earlier buyer %s buys again: status %d; want 409", user, code)
		}
		break
	}
	if code, oid := c.buyOne(t, partial, "newcomer"); code != http.StatusAccepted || oid == "" {
		t.Fatalf("new buyer on the partial sale: status %d; want 202", code)
	}
	if code, _ := c.buyOne(t, soldOut, "newcomer"); code != http.StatusGone {
		t.Errorf("new buyer on the sold-out sale: status %d; want 410", code)
	}
	c.waitStats(t, partial, "newcomer's order written", func(s statsResp) bool {
		return s.Queued == 0 && s.OrdersCreated == wantCreated+1
	})
	sp = auditStats(t, c, partial)
	if sp.Remaining != 100-wantCreated-1-int64(paid) {
		t.Errorf("after the new sale: %+v", sp)
	}
}

// buyEach has n users buy once each, 20 at a time, and returns the
// order id of each user answered 202.
func buyEach(t *testing.T, c *client, activity, prefix string, n int) map[string]string {
	t.Helper()
	var mu sync.Mutex
	won := map[string]string{}
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	for i := range n {
		user := fmt.Sprintf("%s-user-%03d", prefix, i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			code, oid := c.buyOne(t, activity, user)
			switch code {
			case http.StatusAccepted:
				mu.Lock()
				won[user] = oid
				mu.Unlock()
			case http.StatusGone:
			default:
				t.Errorf("buy for %s: status %d", user, code)
			}
		})
	}
	wg.Wait()
	return won
}

// auditStats reads the stats and checks what the load tester's audit
// checks: conservation on both sides and no oversell.
func auditStats(t *testing.T, c *client, activity string) statsResp {
	t.Helper()
	s := c.stats(t, activity)
	live := s.OrdersCreated + s.OrdersPaid
	if s.Remaining != s.Stock-(s.Queued+live) || s.DBAvailable != s.Stock-live || live > s.Stock || s.Remaining < 0 || s.Queued < 0 {
		t.Errorf("activity %s fails the audit: %+v", activity, s)
	}
	return s
}

func untilOK(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func appMetric(t *testing.T, a *App, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := a.b.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue(), true
					}
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func appCounter(t *testing.T, a *App, name, label, value string) float64 {
	t.Helper()
	v, ok := appMetric(t, a, name, label, value)
	if !ok {
		t.Fatalf("metric %s{%s=%q} not registered", name, label, value)
	}
	return v
}

// appGauge is NaN-free: a gauge not set yet reads as an error value.
func appGauge(t *testing.T, a *App, name, label, value string) float64 {
	t.Helper()
	v, ok := appMetric(t, a, name, label, value)
	if !ok {
		return -1e9
	}
	return v
}

// TestReconcilerQuietDuringSpike: a reconciler passing every 50 ms through
// a spike, with a 1 s age, finds nothing to repair and no drift: its
// measure holds while orders are reserved, queued and written, and the
// backlog keeps it from re-driving orders that merely wait in the queue.
func TestReconcilerQuietDuringSpike(t *testing.T) {
	for _, real := range []bool{false, true} {
		t.Run(map[bool]string{false: "embedded", true: "redis+mariadb"}[real], func(t *testing.T) {
			env := map[string]string{"SECKILL_RECONCILE_INTERVAL": "50ms", "SECKILL_RECONCILE_AGE": "1s"}
			if real {
				env["SECKILL_REDIS_URL"] = testkit.RedisURL(t)
				env["SECKILL_DB_DSN"] = testkit.MySQLDSN(t)
			}
			a, c := startApp(t, env)
			done := make(chan struct{})
			var drifts []string
			samples := 0
			var watch sync.WaitGroup
			watch.Go(func() {
				for {
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
					}
					mfs, err := a.b.Registry.Gather()
					if err != nil {
						continue
					}
					for _, mf := range mfs {
						if mf.GetName() != "seckill_reconcile_drift" {
							continue
						}
						for _, m := range mf.GetMetric() {
							samples++
							if v := m.GetGauge().GetValue(); v != 0 {
								drifts = append(drifts, fmt.Sprintf("activity %s: %v", m.GetLabel()[0].GetValue(), v))
							}
						}
					}
				}
			})
			spike(t, c, a, 2000, 100, 200)
			time.Sleep(300 * time.Millisecond) // a few passes over the settled sale
			close(done)
			watch.Wait()
			if len(drifts) > 0 {
				t.Errorf("drift seen during the spike: %v", drifts)
			}
			if samples == 0 {
				t.Error("the reconciler never measured the sale")
			}
			for _, kind := range []string{order.RepairRedriven, order.RepairReleasedCancelled, order.RepairMetaRebuilt, order.RepairActivityRestored, order.RepairRemainingLowered} {
				if n := appCounter(t, a, "seckill_reconcile_repairs_total", "kind", kind); n != 0 {
					t.Errorf("repairs{%s} = %v during a healthy spike; want 0", kind, n)
				}
			}
		})
	}
}
