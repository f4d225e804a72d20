package app

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
	"github.com/flashsale/seckill/testkit"
)

// A gateway killed between a buy's reserve and its publish leaves a
// pending reservation on a real Redis. The gateway that starts next (or
// any other) settles it as soon as the dead one's node lease lapses: the
// buyer's order is published and written, and its unit is not held until
// the reservation timeout (10 minutes here, so only the settling can do
// it within the test).
func TestRestartedGatewaySettlesItsPredecessorsReservations(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	a, c := startApp(t, map[string]string{"SECKILL_REDIS_URL": redisURL, "SECKILL_RESERVATION_TIMEOUT": "10m"})
	ctx := context.Background()
	act := c.createActivity(t, 5, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	actID, _ := strconv.ParseInt(act, 10, 64)

	// The predecessor: a node leased and never renewed again (killed).
	dead, err := a.b.Inventory.LeaseNode(ctx, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := orderid.New(dead)
	if err != nil {
		t.Fatal(err)
	}
	oid := ids.Next(actID)
	if r, err := a.b.Inventory.Reserve(ctx, actID, "killed-mid-buy", "req-1", oid, time.Now()); err != nil || r.Outcome != inventory.Reserved {
		t.Fatalf("reserve: %+v %v", r, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := a.Store().GetOrder(ctx, oid)
		if err == nil && o.State == order.StateCreated && o.UserID == "killed-mid-buy" {
			break
		}
		if time.Now().After(deadline) {
			res, _, _ := a.b.Inventory.Lookup(ctx, actID, oid)
			t.Fatalf("the dead gateway's reservation was not settled: reservation %+v, order %v %v", res, o, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := c.waitDrained(t, act, 1); s.Remaining != 4 || s.OrdersCreated != 1 || s.Queued != 0 {
		t.Fatalf("stats %+v, want the one unit sold to its buyer", s)
	}
}
