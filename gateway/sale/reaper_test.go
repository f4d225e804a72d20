package sale_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
)

// orphanFixture is a sale (this gateway, node self) beside an activity in
// Redis holding one pending reservation of each: a dead gateway's, a live
// gateway's and this gateway's own.
type orphanFixture struct {
	*saleFixture
	act                   order.Activity
	dead, live, own, self int64
	orders                map[int64]string // node -> its pending order id
}

func newOrphanFixture(t *testing.T) *orphanFixture {
	t.Helper()
	f := &orphanFixture{saleFixture: newSale(t, 10, sale.Config{}), orders: map[int64]string{}}
	ctx := context.Background()
	now := time.Unix(0, f.now.Load())
	f.act = order.Activity{ID: activityID, Stock: 10, Available: 10, PriceCents: 100,
		StartsAt: now.Add(-time.Second), EndsAt: now.Add(time.Hour)}
	if _, err := f.store.Load(ctx, inventory.Activity{ID: f.act.ID, Stock: 10, StartsAt: f.act.StartsAt, EndsAt: f.act.EndsAt}, 10, nil); err != nil {
		t.Fatal(err)
	}
	lease := func() int64 {
		n, err := f.store.LeaseNode(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.dead, f.live, f.self = lease(), lease(), lease()
	if err := f.store.DropNode(ctx, f.dead); err != nil { // it crashed: its mark lapsed
		t.Fatal(err)
	}
	for _, n := range []int64{f.dead, f.live, f.self} {
		ids, err := orderid.New(n)
		if err != nil {
			t.Fatal(err)
		}
		oid := ids.Next(f.act.ID)
		if r, err := f.store.Reserve(ctx, f.act.ID, "user-of-"+oid, "req-"+oid, oid, now); err != nil || r.Outcome != inventory.Reserved {
			t.Fatalf("reserve: %+v %v", r, err)
		}
		f.orders[n] = oid
	}
	return f
}

func (f *orphanFixture) status(t *testing.T, node int64) inventory.Status {
	t.Helper()
	r, ok, err := f.store.Lookup(context.Background(), f.act.ID, f.orders[node])
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return r.Status
}

// A pending reservation of a gateway that died is published (its buyer's
// order goes to the queue) and confirmed by the next pass of any live
// gateway, without waiting for the reservation timeout; a live gateway's
// and this gateway's own are left to them.
func TestSettleOrphansPublishesADeadGatewaysReservation(t *testing.T) {
	f := newOrphanFixture(t)
	n, err := f.sale.SettleOrphans(context.Background(), f.store, f.self, []order.Activity{f.act})
	if err != nil || n != 1 {
		t.Fatalf("settled %d, %v; want the dead gateway's one", n, err)
	}
	if len(f.pub.msgs) != 1 || f.pub.msgs[0].ID != f.orders[f.dead] {
		t.Fatalf("published %v, want the order %s", f.pub.msgs, f.orders[f.dead])
	}
	if s := f.status(t, f.dead); s != inventory.StatusQueued {
		t.Fatalf("dead gateway's reservation %q after settling, want queued", s)
	}
	for _, n := range []int64{f.live, f.self} {
		if s := f.status(t, n); s != inventory.StatusPending {
			t.Fatalf("node %d's reservation %q, want it left pending", n, s)
		}
	}
}

// When the queue refuses the dead gateway's order, the unit goes back on
// sale (and its buyer may buy again) instead of waiting for the reaper.
func TestSettleOrphansReleasesWhenTheQueueRefuses(t *testing.T) {
	f := newOrphanFixture(t)
	f.pub.err = mq.ErrQueueFull
	before, _, _ := f.store.Remaining(context.Background(), f.act.ID)
	if _, err := f.sale.SettleOrphans(context.Background(), f.store, f.self, []order.Activity{f.act}); err != nil {
		t.Fatal(err)
	}
	if s := f.status(t, f.dead); s != "" {
		t.Fatalf("dead gateway's reservation %q after a refused publish, want released", s)
	}
	if after, _, _ := f.store.Remaining(context.Background(), f.act.ID); after != before+1 {
		t.Fatalf("remaining %d -> %d, want its unit back", before, after)
	}
}
