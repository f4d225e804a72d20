package inventory

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"
)

// TestHoldersListsEveryReservationByUser: Holders is the users hash (user ->
// order id), loses a released holder, refuses above its limit, and reads a
// hash larger than one HSCAN step completely.
func TestHoldersListsEveryReservationByUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		now := t0.Add(time.Minute)
		id := e.load(t, 3)
		if h, ok, err := e.s.Holders(ctx, id, 10); err != nil || !ok || len(h) != 0 {
			t.Fatalf("Holders before any buy = %v, %v, %v; want empty", h, ok, err)
		}
		e.mustReserve(t, id, "u1", "r1", "o1", now)
		e.mustReserve(t, id, "u2", "", "o2", now)
		want := map[string]string{"u1": "o1", "u2": "o2"}
		if h, ok, err := e.s.Holders(ctx, id, 10); err != nil || !ok || !maps.Equal(h, want) {
			t.Fatalf("Holders = %v, %v, %v; want %v", h, ok, err, want)
		}
		if h, ok, err := e.s.Holders(ctx, id, 1); err != nil || ok || h != nil {
			t.Fatalf("Holders above the limit = %v, %v, %v; want nil, false", h, ok, err)
		}
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != Released {
			t.Fatalf("Release = %v, %v", r, err)
		}
		if h, ok, err := e.s.Holders(ctx, id, 0); err != nil || !ok || !maps.Equal(h, map[string]string{"u2": "o2"}) {
			t.Fatalf("Holders after a release = %v, %v, %v", h, ok, err)
		}
		if h, ok, err := e.s.Holders(ctx, randomID(), 10); err != nil || !ok || len(h) != 0 {
			t.Fatalf("Holders of an activity not loaded = %v, %v, %v; want empty", h, ok, err)
		}

		const n = 2*holdersScanCount + 17
		big := e.load(t, n)
		want = make(map[string]string, n)
		for i := range n {
			u, o := "u"+strconv.Itoa(i), orderID(i)
			e.mustReserve(t, big, u, "", o, now)
			want[u] = o
		}
		if h, ok, err := e.s.Holders(ctx, big, n); err != nil || !ok || !maps.Equal(h, want) {
			t.Fatalf("Holders of %d = %d entries, %v, %v; want all", n, len(h), ok, err)
		}
	})
}
