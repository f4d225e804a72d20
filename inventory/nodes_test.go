package inventory

import (
	"context"
	"testing"
	"time"
)

// Every lease takes a node of its own and marks it alive; a mark that is
// not renewed lapses after its ttl, and a dropped one is gone at once.
func TestNodeLeases(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		a, err := e.s.LeaseNode(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.s.LeaseNode(ctx, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if a == b || a < 0 || a >= maxNodes || b < 0 || b >= maxNodes {
			t.Fatalf("leased nodes %d and %d: want two distinct nodes in 0..%d", a, b, maxNodes-1)
		}
		alive, err := e.s.NodesAlive(ctx, []int64{a, b, 999})
		if err != nil || !alive[a] || !alive[b] || alive[999] {
			t.Fatalf("alive %v, %v; want %d and %d alive, 999 not", alive, err, a, b)
		}
		// b's mark lapses with its ttl: Redis expires it, unless renewed.
		if ttl, err := e.rdb.PTTL(ctx, e.s.nodeAliveKey(b)).Result(); err != nil || ttl <= 0 || ttl > 50*time.Millisecond {
			t.Fatalf("b's mark expires in %v (%v), want within its 50ms ttl", ttl, err)
		}
		if err := e.s.RenewNode(ctx, b, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ttl, err := e.rdb.PTTL(ctx, e.s.nodeAliveKey(b)).Result(); err != nil || ttl <= 50*time.Millisecond {
			t.Fatalf("after a renewal b's mark expires in %v (%v), want the new ttl", ttl, err)
		}
		if err := e.s.DropNode(ctx, 999); err != nil { // dropping an absent mark is no error
			t.Fatal(err)
		}
		if err := e.s.DropNode(ctx, a); err != nil {
			t.Fatal(err)
		}
		if alive, _ := e.s.NodesAlive(ctx, []int64{a}); alive[a] {
			t.Fatalf("node %d alive after DropNode", a)
		}
	})
}

// PendingReservations lists the reservations reserved and never confirmed,
// with their buyer and request, and none of the confirmed or claimed ones.
func TestPendingReservations(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 10)
		reserve := func(user, order string) {
			t.Helper()
			if r, err := e.s.Reserve(ctx, id, user, "req-"+user, order, t0.Add(time.Minute)); err != nil || r.Outcome != Reserved {
				t.Fatalf("reserve %s: %+v %v", order, r, err)
			}
		}
		reserve("pending-user", "o-pending")
		reserve("queued-user", "o-queued")
		reserve("claimed-user", "o-claimed")
		if ok, err := e.s.Confirm(ctx, id, "o-queued"); err != nil || !ok {
			t.Fatalf("confirm: %v %v", ok, err)
		}
		if ok, err := e.s.Claim(ctx, id, []string{"o-claimed"}); err != nil || len(ok) != 1 || !ok[0] {
			t.Fatalf("claim: %v %v", ok, err)
		}
		got, err := e.s.PendingReservations(ctx, id, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].OrderID != "o-pending" || got[0].UserID != "pending-user" || got[0].RequestID != "req-pending-user" || got[0].Status != StatusPending {
			t.Fatalf("pending %+v, want only o-pending of pending-user", got)
		}
	})
}
