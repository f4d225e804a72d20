package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/testkit"
)

func (c *client) createShortActivity(t testing.TB, stock, payTimeoutSeconds int64) string {
	t.Helper()
	var act activityResp
	code := c.do(t, "POST", "/api/v1/admin/activities", testAdminToken, map[string]any{
		"name": "short pay window", "stock": stock, "price_cents": 500,
		"starts_at": time.Now().Add(-time.Second).UTC().Format(time.RFC3339),
		"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "pay_timeout_seconds": payTimeoutSeconds,
	}, &act)
	if code != http.StatusCreated {
		t.Fatalf("create activity: status %d", code)
	}
	return act.ID
}

// buyOne buys for user and returns the status and the order id.
func (c *client) buyOne(t testing.TB, activity, user string) (int, string) {
	t.Helper()
	var body struct {
		OrderID string `json:"order_id"`
	}
	code := c.do(t, "POST", "/api/v1/activities/"+activity+"/orders", c.token(t, user), c.buyBody(t, activity, user, ""), &body)
	return code, body.OrderID
}

func (c *client) orderState(t testing.TB, id, user string) string {
	t.Helper()
	var o struct {
		State string `json:"state"`
	}
	if code := c.do(t, "GET", "/api/v1/orders/"+id, c.token(t, user), nil, &o); code != http.StatusOK {
		t.Fatalf("GET order %s: status %d", id, code)
	}
	return o.State
}

// waitStats polls the stats until cond holds.
func (c *client) waitStats(t testing.TB, activity string, what string, cond func(statsResp) bool) statsResp {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := c.stats(t, activity)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s; stats %+v", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPayTimeoutReturnsUnits is the order lifecycle end to end on each
// backend: with a 2 s pay window, the unpaid orders are cancelled by their
// delayed messages, their units return to Redis and the database, the
// gateway's sold-out flag clears at once (its TTL is an hour here, so only
// the release announcement can clear it) and new buyers, and the cancelled
// buyers themselves, buy the units again; paid orders stay paid.
func TestPayTimeoutReturnsUnits(t *testing.T) {
	backends := []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"embedded", func(t *testing.T) map[string]string { return map[string]string{} }},
		{"redis+mariadb", func(t *testing.T) map[string]string {
			return map[string]string{"SECKILL_REDIS_URL": testkit.RedisURL(t), "SECKILL_DB_DSN": testkit.MySQLDSN(t)}
		}},
		{"kafka+redis+mariadb", func(t *testing.T) map[string]string {
			redisURL, dsn := testkit.RedisURL(t), testkit.MySQLDSN(t)
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			return map[string]string{
				"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
				"SECKILL_KAFKA_PARTITIONS": "3", "SECKILL_KAFKA_SESSION_TIMEOUT": "6s",
				"SECKILL_REDIS_URL": redisURL, "SECKILL_DB_DSN": dsn,
			}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			env := b.env(t)
			env["SECKILL_SOLDOUT_TTL"] = "1h"
			env["SECKILL_SWEEP_INTERVAL"] = "1h" // the delayed messages alone must do it
			_, c := startApp(t, env)
			payTimeoutScenario(t, c)
		})
	}
}

func payTimeoutScenario(t *testing.T, c *client) {
	const stock, paid = 10, 4
	activity := c.createShortActivity(t, stock, 2)
	orders := map[string]string{} // user -> order id
	for i := range stock {
		user := fmt.Sprintf("first-%d", i)
		code, id := c.buyOne(t, activity, user)
		if code != http.StatusAccepted {
			t.Fatalf("buy %s: %d", user, code)
		}
		orders[user] = id
	}
	if code, _ := c.buyOne(t, activity, "late-0"); code != http.StatusGone {
		t.Fatalf("buy after the sell-out: %d, want 410 (which sets the sold-out flag)", code)
	}
	c.waitStats(t, activity, "all orders written", func(s statsResp) bool { return s.OrdersCreated == stock })
	for i := range paid {
		user := fmt.Sprintf("first-%d", i)
		var out struct {
			State string `json:"state"`
		}
		if code := c.do(t, "POST", "/api/v1/orders/"+orders[user]+"/pay", c.token(t, user), nil, &out); code != http.StatusOK || out.State != order.StatePaid {
			t.Fatalf("pay %s: %d %+v", user, code, out)
		}
	}

	s := c.waitStats(t, activity, "unpaid orders cancelled", func(s statsResp) bool { return s.OrdersCancelled == stock-paid })
	want := statsResp{Stock: stock, Remaining: stock - paid, Reserved: paid, OrdersPaid: paid, OrdersCancelled: stock - paid, DBAvailable: stock - paid}
	if s != want {
		t.Fatalf("after the pay deadline: %+v, want %+v", s, want)
	}
	for i := range stock {
		user := fmt.Sprintf("first-%d", i)
		wantState := order.StateCancelled
		if i < paid {
			wantState = order.StatePaid
		}
		if got := c.orderState(t, orders[user], user); got != wantState {
			t.Errorf("order of %s is %s, want %s", user, got, wantState)
		}
	}

	// The returned units sell again at once: to the buyer the flag turned
	// away, to new buyers, and to a buyer whose order was cancelled.
	again := []string{"late-0", "late-1", "late-2", "late-3", "late-4", fmt.Sprintf("first-%d", stock-1)}
	for _, user := range again {
		if code, _ := c.buyOne(t, activity, user); code != http.StatusAccepted {
			t.Fatalf("%s buys a returned unit: %d, want 202", user, code)
		}
	}
	if code, _ := c.buyOne(t, activity, "late-5"); code != http.StatusGone {
		t.Fatalf("buy after the second sell-out: %d, want 410", code)
	}
	s = c.waitStats(t, activity, "second sale written", func(s statsResp) bool { return s.Queued == 0 && s.OrdersCreated == int64(len(again)) })
	if s.Remaining != 0 || s.DBAvailable != 0 || s.OrdersPaid != paid || s.Remaining != s.Stock-(s.Queued+s.OrdersCreated+s.OrdersPaid) {
		t.Fatalf("after the second sale: %+v", s)
	}
}

// TestSweeperCancelsWhenTheDelayedMessageIsLost: the embedded queue keeps
// delayed messages in memory, so a restart loses the pay-deadline messages
// of the orders written before it. The sweeper of the next process finds
// those orders past their deadline and cancels them, returning the units.
func TestSweeperCancelsWhenTheDelayedMessageIsLost(t *testing.T) {
	dir := t.TempDir()
	prefix := "sktest-" + testkit.RandomHex(4)
	env := map[string]string{"SECKILL_DATA_DIR": dir, "SECKILL_REDIS_PREFIX": prefix, "SECKILL_SWEEP_INTERVAL": "1h"}
	a1, c1 := startApp(t, env)
	activity := c1.createShortActivity(t, 3, 2)
	for i := range 3 {
		if code, _ := c1.buyOne(t, activity, fmt.Sprintf("u%d", i)); code != http.StatusAccepted {
			t.Fatalf("buy: %d", code)
		}
	}
	c1.waitStats(t, activity, "orders written", func(s statsResp) bool { return s.OrdersCreated == 3 })
	if err := a1.Shutdown(t.Context()); err != nil { // drops the delayed messages
		t.Fatal(err)
	}

	env["SECKILL_SWEEP_INTERVAL"] = "200ms"
	_, c2 := startApp(t, env)
	// A cancel commits, then returns its unit to Redis: wait for both.
	s := c2.waitStats(t, activity, "the sweeper cancelled the orders and returned the units",
		func(s statsResp) bool { return s.OrdersCancelled == 3 && s.Reserved == 0 })
	if s.Remaining != 3 || s.DBAvailable != 3 || s.OrdersCreated != 0 {
		t.Fatalf("after the sweep: %+v, want all 3 units back", s)
	}
}
