package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
)

// startWorker consumes the fixture's order messages into its database.
func (f *fixture) startWorker() {
	f.t.Helper()
	w := order.NewWorker(f.store, f.inv, order.WorkerConfig{Logger: quiet()})
	f.t.Cleanup(func() { w.Close() })
	if err := f.broker.Subscribe(context.Background(), ordermsg.TopicOrders, mq.SubscribeOptions{Group: "w", Concurrency: 4}, w.Handle); err != nil {
		f.t.Fatal(err)
	}
}

// waitState polls the owner's view of an order until it reaches state.
func (f *fixture) waitState(id, user, state string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := f.call("GET", "/api/v1/orders/"+id, f.token(user), nil)
		if r.status == http.StatusOK && r.body["state"] == state {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("order %s did not reach %s within 10s: %d %s", id, state, r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPayOrder(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	act := openActivity(f, 5)
	queued := f.buy(act, "alice", "").body["order_id"].(string)

	// No worker yet: the order is still queued and cannot be paid.
	r := f.call("POST", "/api/v1/orders/"+queued+"/pay", f.token("alice"), nil)
	if r.status != http.StatusConflict || r.body["code"] != "NOT_PAYABLE" {
		t.Fatalf("pay a queued order: %d %s, want 409 NOT_PAYABLE", r.status, r.raw)
	}

	f.startWorker()
	f.waitState(queued, "alice", order.StateCreated)
	tests := []struct {
		name, order, user string
		status            int
		code              string
	}{
		{"another user", queued, "mallory", http.StatusNotFound, "NOT_FOUND"},
		{"owner pays", queued, "alice", http.StatusOK, ""},
		{"owner pays again", queued, "alice", http.StatusOK, ""},
		{"unknown order", "0249881406908399620-" + act, "alice", http.StatusNotFound, "NOT_FOUND"},
		{"malformed id", "not-an-id", "alice", http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.call("POST", "/api/v1/orders/"+tt.order+"/pay", f.token(tt.user), nil)
			if r.status != tt.status || (tt.code != "" && r.body["code"] != tt.code) {
				t.Fatalf("pay: %d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
			}
			if r.status == http.StatusOK && r.body["state"] != order.StatePaid {
				t.Errorf("pay answered state %v", r.body["state"])
			}
		})
	}
	f.waitState(queued, "alice", order.StatePaid)
	if r := f.call("POST", "/api/v1/orders/"+queued+"/pay", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("pay without a token: %d, want 401", r.status)
	}
	if s := f.stats(act); num(s, "orders_paid") != 1 || num(s, "db_available") != 4 {
		t.Errorf("stats after paying: %v", s)
	}
}

// TestPayAfterDeadline: a payment that arrives after the deadline finds the
// order cancelled (Pay cancels it on the spot when the timer has not yet),
// and the unit is back on sale.
func TestPayAfterDeadline(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	r := f.call("POST", "/api/v1/admin/activities", adminToken, jsonBody(map[string]any{
		"name": "short", "stock": 1, "price_cents": 100, "pay_timeout_seconds": 1,
		"starts_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	act := r.body["id"].(string)
	f.startWorker()
	id := f.buy(act, "alice", "").body["order_id"].(string)
	f.waitState(id, "alice", order.StateCreated)
	if r := f.buy(act, "bob", ""); r.status != http.StatusGone {
		t.Fatalf("second buyer while the unit is held: %d, want 410", r.status)
	}
	time.Sleep(1100 * time.Millisecond) // past the 1 s pay deadline; nothing else cancels here

	r = f.call("POST", "/api/v1/orders/"+id+"/pay", f.token("alice"), nil)
	if r.status != http.StatusConflict || r.body["code"] != "ORDER_CANCELLED" {
		t.Fatalf("late payment: %d %s, want 409 ORDER_CANCELLED", r.status, r.raw)
	}
	f.waitState(id, "alice", order.StateCancelled)
	s := f.stats(act)
	if num(s, "remaining") != 1 || num(s, "db_available") != 1 || num(s, "orders_cancelled") != 1 {
		t.Fatalf("stats after the late payment: %v, want the unit back in redis and the database", s)
	}
	if r := f.buy(act, "bob", ""); r.status != http.StatusAccepted {
		t.Fatalf("bob buys the returned unit: %d %s", r.status, r.raw)
	}
}
