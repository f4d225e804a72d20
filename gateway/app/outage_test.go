package app

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/testkit"
)

// TestRedisOutageDuringSpike kills Redis in the middle of a spike and brings
// it back: while it is down buys get 503 BUSY (not hangs, not 500s), order
// messages already queued are retried by the workers, and once Redis is back
// every 202 order is in the database exactly once and the stock adds up.
func TestRedisOutageDuringSpike(t *testing.T) {
	redis := testkit.StartRedisServer(t)
	a, c := startApp(t, map[string]string{"SECKILL_REDIS_URL": redis.URL()})
	const stock = 150
	activity := c.createActivity(t, stock, time.Now().Add(-time.Second), time.Now().Add(time.Hour))

	var (
		mu       sync.Mutex
		accepted = map[string]string{} // order id -> user
		busy     atomic.Int64
		next     atomic.Int64
	)
	buy := func() int {
		user := fmt.Sprintf("u-%d", next.Add(1))
		var body struct {
			OrderID string `json:"order_id"`
			Code    string `json:"code"`
		}
		status := c.do(t, "POST", "/api/v1/activities/"+activity+"/orders", c.token(t, user), c.buyBody(t, activity, user, ""), &body)
		switch status {
		case http.StatusAccepted:
			mu.Lock()
			accepted[body.OrderID] = user
			mu.Unlock()
		case http.StatusServiceUnavailable:
			if body.Code != "BUSY" {
				t.Errorf("503 with code %q, want BUSY", body.Code)
			}
			busy.Add(1)
		case http.StatusGone:
		default:
			t.Errorf("buy: unexpected status %d (%s)", status, body.Code)
		}
		return status
	}
	burst := func(n int) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range n / 20 {
					buy()
				}
			})
		}
		wg.Wait()
	}

	burst(100)
	redis.Stop()
	down := 0
	for range 20 {
		if buy() == http.StatusServiceUnavailable {
			down++
		}
	}
	if down != 20 {
		t.Fatalf("%d of 20 buys during the outage got 503 BUSY, want all", down)
	}
	redis.Start()
	burst(400) // more users than the units left: sells out

	s := c.waitDrained(t, activity, stock)
	t.Logf("accepted %d, busy %d, stats %+v", len(accepted), busy.Load(), s)
	if len(accepted) != stock {
		t.Fatalf("%d orders accepted, want exactly the %d units", len(accepted), stock)
	}
	if s.Remaining != 0 || s.OrdersCreated != stock || s.Queued != 0 || s.DBAvailable != 0 {
		t.Fatalf("after recovery: %+v", s)
	}
	rows := map[string]string{}
	var list []struct{ ID, UserID, State string }
	if err := a.Store().DB().Table("orders").Select("id, user_id, state").Where("activity_id = ?", mustParseID(t, activity)).Scan(&list).Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		rows[r.ID] = r.UserID
	}
	if len(rows) != len(list) || len(rows) != stock {
		t.Fatalf("database holds %d rows (%d distinct), want %d", len(list), len(rows), stock)
	}
	for id, user := range accepted {
		if rows[id] != user {
			t.Errorf("accepted order %s of %s is not in the database", id, user)
		}
	}
}
