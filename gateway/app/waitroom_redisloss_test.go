package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory/inventorytest"
)

type queueResp struct {
	State       string `json:"state"`
	Position    int64  `json:"position"`
	BuyToken    string `json:"buy_token"`
	PollAfterMS int64  `json:"poll_after_ms"`
	Code        string `json:"code"`
}

// Redis loses everything mid-sale of an activity with queue admission. The
// waiting room is gone with it: people who were waiting are not in the
// queue any more (404) and join again, behind nobody they were not behind
// before the loss but in a new draw; passes already handed out are signed
// tokens and still buy; and the reserve still decides every unit, so
// nothing is oversold and both sides of the stock agree after the drain.
func TestWaitingRoomAfterRedisLoss(t *testing.T) {
	for _, real := range []bool{false, true} {
		t.Run(map[bool]string{false: "embedded", true: "redis+mariadb"}[real], func(t *testing.T) {
			env := redisLossEnv(t, real)
			env["SECKILL_QUEUE_PASS_TTL"] = "1m"
			a, c := startApp(t, env)
			const stock = 3
			starts := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
			var act activityResp
			if code := c.do(t, "POST", "/api/v1/admin/activities", testAdminToken, map[string]any{
				"name": "queue", "stock": stock, "price_cents": 100, "admission": "queue", "pay_timeout_seconds": 600,
				"starts_at": starts.UTC().Format(time.RFC3339Nano), "ends_at": starts.Add(time.Hour).UTC().Format(time.RFC3339),
			}, &act); code != http.StatusCreated {
				t.Fatalf("create: %d", code)
			}
			path := "/api/v1/activities/" + act.ID + "/queue"
			users := []string{"q0", "q1", "q2", "q3", "q4", "q5"}
			for _, u := range users {
				var q queueResp
				if code := c.do(t, "POST", path, c.token(t, u), nil, &q); code != http.StatusOK || q.State != "prequeue" {
					t.Fatalf("join %s: %d %+v", u, code, q)
				}
			}
			time.Sleep(time.Until(starts) + 100*time.Millisecond)
			passes := map[string]string{}
			var waiting []string
			var pollAfter time.Duration
			for _, u := range users {
				var q queueResp
				c.do(t, "GET", path, c.token(t, u), nil, &q)
				switch q.State {
				case "admitted":
					passes[u] = q.BuyToken
				case "waiting":
					waiting = append(waiting, u)
					pollAfter = max(pollAfter, time.Duration(q.PollAfterMS)*time.Millisecond)
				default:
					t.Fatalf("%s after the start: %+v", u, q)
				}
			}
			if len(passes) != stock {
				t.Fatalf("admitted %d, want %d (as many as units)", len(passes), stock)
			}
			buy := func(u string) int {
				return c.do(t, "POST", "/api/v1/activities/"+act.ID+"/orders", c.token(t, u),
					map[string]string{"request_id": "r-" + u, "buy_token": passes[u]}, nil)
			}
			var admitted []string
			for u := range passes {
				admitted = append(admitted, u)
			}
			if code := buy(admitted[0]); code != http.StatusAccepted {
				t.Fatalf("first buyer: %d", code)
			}
			c.waitDrained(t, act.ID, 1)

			if n := inventorytest.DeletePrefix(t, a.b.Redis, a.cfg.RedisPrefix); n == 0 {
				t.Fatal("nothing deleted: the test lost nothing")
			}

			// A pass handed out before the loss still buys.
			if code := buy(admitted[1]); code != http.StatusAccepted {
				t.Fatalf("a pass from before the loss: %d, want 202", code)
			}
			// The waiting are out of the queue and, at their next poll (a
			// poll before it is answered from the gateway's memory), join
			// again.
			time.Sleep(pollAfter)
			for _, u := range waiting {
				var q queueResp
				if code := c.do(t, "GET", path, c.token(t, u), nil, &q); code != http.StatusNotFound {
					t.Fatalf("%s after the loss: %d %+v, want 404 (not in the new queue)", u, code, q)
				}
				if code := c.do(t, "POST", path, c.token(t, u), nil, &q); code != http.StatusOK {
					t.Fatalf("%s joins again: %d %+v", u, code, q)
				}
			}
			// Everyone who holds a pass now tries to buy: no more units than
			// stock are sold, and the conservation holds on both sides.
			for _, u := range append(admitted[2:], waiting...) {
				var q queueResp
				c.do(t, "GET", path, c.token(t, u), nil, &q)
				if q.BuyToken != "" {
					passes[u] = q.BuyToken
				}
				if passes[u] != "" {
					buy(u)
				}
			}
			s := c.waitDrained(t, act.ID, stock)
			if s.OrdersCreated+s.OrdersPaid > stock || s.Remaining < 0 ||
				s.Remaining != s.Stock-(s.Queued+s.OrdersCreated+s.OrdersPaid) || s.DBAvailable != s.Stock-(s.OrdersCreated+s.OrdersPaid) {
				t.Fatalf("after the loss: %+v; want at most %d sold and both sides conserved", s, stock)
			}
		})
	}
}
