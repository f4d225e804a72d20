package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/testkit"
)

// scanAll pages through Reservations with a small count and returns the
// reservations by order id (a reservation seen twice must be equal) and
// the malformed ids.
func scanAll(t *testing.T, s *Store, id int64, count int64) (map[string]Reservation, []string) {
	t.Helper()
	got := map[string]Reservation{}
	var malformed []string
	var cursor uint64
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("Reservations never returned cursor 0")
		}
		p, err := s.Reservations(context.Background(), id, cursor, count)
		if err != nil {
			t.Fatalf("Reservations(%d, %d): %v", id, cursor, err)
		}
		for _, r := range p.Reservations {
			if prev, ok := got[r.OrderID]; ok && prev != r {
				t.Fatalf("reservation %s scanned twice, differently: %+v and %+v", r.OrderID, prev, r)
			}
			got[r.OrderID] = r
		}
		malformed = append(malformed, p.Malformed...)
		if p.Next == 0 {
			return got, malformed
		}
		cursor = p.Next
	}
}

func TestReservationsScan(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		const n = 300 // above the listpack threshold: a real Redis pages
		id := e.load(t, n+10)
		want := map[string]Reservation{}
		for i := range n {
			oid, user, req := orderID(i), fmt.Sprintf("user:%d", i), fmt.Sprintf("req:%d", i)
			at := t0.Add(time.Duration(i) * time.Millisecond)
			e.mustReserve(t, id, user, req, oid, at)
			want[oid] = Reservation{OrderID: oid, UserID: user, RequestID: req, ReservedAt: at, Status: StatusPending}
		}
		// Bytes that would confuse a naive decoder: colons and digits in
		// the user id, an empty request id.
		e.mustReserve(t, id, "1:2:u", "", "odd", t0)
		want["odd"] = Reservation{OrderID: "odd", UserID: "1:2:u", ReservedAt: t0, Status: StatusPending}
		for i := 0; i < n; i += 3 {
			if ok, err := e.s.Confirm(ctx, id, orderID(i)); err != nil || !ok {
				t.Fatal(ok, err)
			}
			r := want[orderID(i)]
			r.Status = StatusQueued
			want[orderID(i)] = r
		}
		var claim []string
		for i := 1; i < n; i += 3 {
			claim = append(claim, orderID(i))
			r := want[orderID(i)]
			r.Status = StatusClaimed
			want[orderID(i)] = r
		}
		if _, err := e.s.Claim(ctx, id, claim); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.HSet(ctx, e.s.keys(id).res, "garbage", "Qnot-a-reservation").Err(); err != nil {
			t.Fatal(err)
		}

		got, malformed := scanAll(t, e.s, id, 50)
		if len(got) != len(want) {
			t.Fatalf("scanned %d reservations; want %d", len(got), len(want))
		}
		for oid, w := range want {
			if g := got[oid]; !g.ReservedAt.Equal(w.ReservedAt) || g.UserID != w.UserID || g.RequestID != w.RequestID || g.Status != w.Status || g.OrderID != oid {
				t.Errorf("reservation %s = %+v; want %+v", oid, g, w)
			}
		}
		if !slices.Equal(malformed, []string{"garbage"}) {
			t.Errorf("malformed = %v; want [garbage]", malformed)
		}

		// An activity that is not loaded has none.
		if p, err := e.s.Reservations(ctx, randomID(), 0, 10); err != nil || len(p.Reservations) != 0 || p.Next != 0 {
			t.Errorf("Reservations of an unknown activity = %+v, %v; want an empty last page", p, err)
		}
	})
}

func TestHeld(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 3)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		e.mustReserve(t, id, "u2", "", "o2", t0)
		if _, err := e.s.Claim(ctx, id, []string{"o2"}); err != nil {
			t.Fatal(err)
		}
		got, err := e.s.Held(ctx, id, []string{"o2", "nope", "o1"})
		if err != nil || !slices.Equal(got, []bool{true, false, true}) {
			t.Errorf("Held = %v, %v; want [true false true]", got, err)
		}
		if got, err := e.s.Held(ctx, id, nil); err != nil || len(got) != 0 {
			t.Errorf("Held(nothing) = %v, %v", got, err)
		}
	})
}

func TestRepairMeta(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 5)
		a := Activity{ID: id, Stock: 5, StartsAt: t0, EndsAt: t0.Add(window)}
		e.mustReserve(t, id, "u1", "", "o1", t0)
		e.mustReserve(t, id, "u2", "", "o2", t0)
		e.mustReserve(t, id, "u3", "", "o3", t0)
		if _, err := e.s.Claim(ctx, id, []string{"o1"}); err != nil {
			t.Fatal(err)
		}

		if r, err := e.s.RepairMeta(ctx, a, 5); err != nil || r != (MetaRepair{Outcome: MetaPresent}) {
			t.Fatalf("RepairMeta with meta present = %+v, %v; want MetaPresent", r, err)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 5, Remaining: 2, Reserved: 3, Pending: 2}) {
			t.Fatalf("RepairMeta with meta present changed the activity: %+v", st)
		}

		got := make(chan int64, 1)
		if err := e.s.SubscribeReleases(ctx, func(id int64) { got <- id }); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Del(ctx, e.s.keys(id).meta).Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := e.s.RepairMeta(ctx, a, 100); err != nil || r != (MetaRepair{Outcome: MetaRebuilt, Remaining: 2}) {
			t.Fatalf("RepairMeta = %+v, %v; want rebuilt with remaining 5 - 3 = 2", r, err)
		}
		expectRelease(t, got, id)
		if st := e.stats(t, id); st != (Stats{Stock: 5, Remaining: 2, Reserved: 3, Pending: 2}) {
			t.Errorf("after the repair: %+v; want stock 5, remaining 2, 3 reservations", st)
		}
		// The window came back too: selling goes on, and the holders are
		// still one per user.
		if r := e.reserve(t, id, "u1", "", "o9", t0); r.Outcome != AlreadyPurchased {
			t.Errorf("u1 again: %v; want AlreadyPurchased", r.Outcome)
		}
		if r := e.reserve(t, id, "u4", "", "o4", t0.Add(-time.Second)); r.Outcome != NotStarted {
			t.Errorf("before the start: %v; want NotStarted", r.Outcome)
		}
		e.mustReserve(t, id, "u4", "", "o4", t0)
		e.mustReserve(t, id, "u5", "", "o5", t0)
		if r := e.reserve(t, id, "u6", "", "o6", t0); r.Outcome != SoldOut {
			t.Errorf("sixth buyer of five units: %v; want SoldOut", r.Outcome)
		}

		// The caller's bound wins when it is lower (the database knows of
		// units Redis lost with meta), and remaining never goes negative.
		if err := e.rdb.Del(ctx, e.s.keys(id).meta).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.HDel(ctx, e.s.keys(id).res, "o4", "o5").Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := e.s.RepairMeta(ctx, a, 1); err != nil || r != (MetaRepair{Outcome: MetaRebuilt, Remaining: 1}) {
			t.Fatalf("RepairMeta with bound 1 = %+v, %v; want remaining 1", r, err)
		}
		if err := e.rdb.Del(ctx, e.s.keys(id).meta).Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := e.s.RepairMeta(ctx, a, -3); err != nil || r != (MetaRepair{Outcome: MetaRebuilt, Remaining: 0}) {
			t.Fatalf("RepairMeta with a negative bound = %+v, %v; want remaining 0", r, err)
		}

		// Nothing of the activity left: Load's job, not this one's.
		for _, k := range e.s.keys(id).forScript() {
			if err := e.rdb.Del(ctx, k).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := e.s.RepairMeta(ctx, a, 5); err != nil || r != (MetaRepair{Outcome: ActivityAbsent}) {
			t.Fatalf("RepairMeta of a lost activity = %+v, %v; want ActivityAbsent", r, err)
		}
		if _, ok, _ := e.s.Stats(ctx, id); ok {
			t.Error("RepairMeta of a lost activity wrote meta")
		}
		if _, err := e.s.RepairMeta(ctx, Activity{ID: id, Stock: 0, StartsAt: t0, EndsAt: t0.Add(window)}, 5); !errors.Is(err, ErrInvalid) {
			t.Errorf("RepairMeta with stock 0: %v; want ErrInvalid", err)
		}
	})
}

func TestLowerRemaining(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 5)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		e.mustReserve(t, id, "u2", "", "o2", t0)
		if n, ok, err := e.s.LowerRemaining(ctx, id); err != nil || !ok || n != 0 {
			t.Fatalf("LowerRemaining of a sound activity = %d, %v, %v; want 0, true", n, ok, err)
		}
		// Meta restored as if the two reservations did not exist.
		if err := e.rdb.HSet(ctx, e.s.keys(id).meta, "remaining", 5).Err(); err != nil {
			t.Fatal(err)
		}
		if n, ok, err := e.s.LowerRemaining(ctx, id); err != nil || !ok || n != 2 {
			t.Fatalf("LowerRemaining = %d, %v, %v; want 2 units off sale", n, ok, err)
		}
		if st := e.stats(t, id); st.Remaining != 3 {
			t.Errorf("remaining = %d; want 3", st.Remaining)
		}
		// It never raises remaining: units missing from Redis are
		// reported by the reconciler, not put back on sale.
		if err := e.rdb.HSet(ctx, e.s.keys(id).meta, "remaining", 1).Err(); err != nil {
			t.Fatal(err)
		}
		if n, _, err := e.s.LowerRemaining(ctx, id); err != nil || n != 0 || e.stats(t, id).Remaining != 1 {
			t.Errorf("LowerRemaining below the sum = %d, %v, remaining %d; want 0 and remaining 1 kept", n, err, e.stats(t, id).Remaining)
		}
		// More reservations than stock: remaining stops at 0.
		if err := e.rdb.HSet(ctx, e.s.keys(id).meta, "stock", 1, "remaining", 4).Err(); err != nil {
			t.Fatal(err)
		}
		if n, _, err := e.s.LowerRemaining(ctx, id); err != nil || n != 4 || e.stats(t, id).Remaining != 0 {
			t.Errorf("LowerRemaining with 2 reservations of 1 unit = %d, %v; want 4 off sale, remaining 0", n, err)
		}
		if n, ok, err := e.s.LowerRemaining(ctx, randomID()); err != nil || ok || n != 0 {
			t.Errorf("LowerRemaining of an unloaded activity = %d, %v, %v; want 0, false, nil", n, ok, err)
		}
	})
}

func TestMarkRedrive(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 5)
		e.mustReserve(t, id, "u1", "", "pending", t0)
		e.mustReserve(t, id, "u2", "", "queued", t0)
		e.mustReserve(t, id, "u3", "", "claimed", t0)
		e.mustReserve(t, id, "u4", "", "young", t0.Add(time.Hour))
		for _, oid := range []string{"queued", "young"} {
			if ok, err := e.s.Confirm(ctx, id, oid); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
		if _, err := e.s.Claim(ctx, id, []string{"claimed"}); err != nil {
			t.Fatal(err)
		}
		cutoff, now, gap := t0.Add(time.Minute), t0.Add(2*time.Hour), 5*time.Minute
		mark := func(oid string, now time.Time) RedriveDecision {
			t.Helper()
			d, err := e.s.MarkRedrive(ctx, id, oid, cutoff, now, gap, 2)
			if err != nil {
				t.Fatalf("MarkRedrive(%s): %v", oid, err)
			}
			return d
		}
		for oid, want := range map[string]RedriveDecision{
			"pending": RedriveGone, // the reaper's, not the reconciler's
			"young":   RedriveGone, // reserved after the cutoff
			"none":    RedriveGone,
			"claimed": RedriveNow,
		} {
			if got := mark(oid, now); got != want {
				t.Errorf("MarkRedrive(%s) = %v; want %v", oid, got, want)
			}
		}
		if got := mark("queued", now); got != RedriveNow {
			t.Fatalf("first MarkRedrive(queued) = %v; want %v", got, RedriveNow)
		}
		if got := mark("queued", now.Add(gap-time.Millisecond)); got != RedriveThrottled {
			t.Errorf("MarkRedrive within the gap = %v; want %v", got, RedriveThrottled)
		}
		if got := mark("queued", now.Add(gap)); got != RedriveNow {
			t.Errorf("MarkRedrive after the gap = %v; want %v", got, RedriveNow)
		}
		if got := mark("queued", now.Add(3*gap)); got != RedriveExhausted {
			t.Errorf("third MarkRedrive with max 2 = %v; want %v", got, RedriveExhausted)
		}
		if v, err := e.rdb.HGet(ctx, e.s.keys(id).redrive, "queued").Result(); err != nil || !strings.HasSuffix(v, ":2") {
			t.Errorf("redrive mark = %q, %v; want two re-drives recorded", v, err)
		}
		// A publish that failed gives its re-drive back, with no gap.
		if err := e.s.UnmarkRedrive(ctx, id, "queued"); err != nil {
			t.Fatal(err)
		}
		if got := mark("queued", now.Add(3*gap)); got != RedriveNow {
			t.Errorf("MarkRedrive after an undo = %v; want %v", got, RedriveNow)
		}
		if err := e.s.UnmarkRedrive(ctx, id, "claimed"); err != nil {
			t.Fatal(err)
		}
		if n, err := e.rdb.HExists(ctx, e.s.keys(id).redrive, "claimed").Result(); err != nil || n {
			t.Errorf("undo of the only re-drive kept the mark: %v, %v", n, err)
		}
		if err := e.s.UnmarkRedrive(ctx, id, "never-marked"); err != nil {
			t.Errorf("UnmarkRedrive of an unmarked order: %v", err)
		}
		// The reservation goes (its order was cancelled): so does the mark.
		if ok, err := e.s.ReleaseCancelled(ctx, id, "queued"); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if got := mark("queued", now.Add(4*gap)); got != RedriveGone {
			t.Errorf("MarkRedrive of a released reservation = %v; want %v", got, RedriveGone)
		}
		if n, err := e.rdb.HExists(ctx, e.s.keys(id).redrive, "queued").Result(); err != nil || n {
			t.Errorf("mark of a released reservation kept: %v, %v", n, err)
		}
		if !strings.Contains(e.s.keys(id).redrive, fmt.Sprintf("{a%d}", id)) {
			t.Errorf("redrive key %s is outside the activity's hash slot", e.s.keys(id).redrive)
		}
	})
}

// TestScanOnRedisCluster runs the reconciler's calls on a real Redis
// Cluster: every script names only keys of one hash slot, the redrive key
// included.
func TestScanOnRedisCluster(t *testing.T) {
	nodes := startCluster(t)
	rdb := clusterClient(t, nodes)
	ctx := context.Background()
	s := New(rdb, Options{Prefix: "reconcile"})
	for id := int64(1); id <= 12; id++ {
		a := Activity{ID: id, Stock: 3, StartsAt: t0, EndsAt: t0.Add(window)}
		if loaded, err := s.Load(ctx, a, 3, nil); err != nil || !loaded {
			t.Fatalf("Load(%d) = %v, %v", id, loaded, err)
		}
		if r, err := s.Reserve(ctx, id, "u1", "", "o1", t0); err != nil || r.Outcome != Reserved {
			t.Fatalf("Reserve(%d) = %+v, %v", id, r, err)
		}
		if ok, err := s.Confirm(ctx, id, "o1"); err != nil || !ok {
			t.Fatalf("Confirm(%d) = %v, %v", id, ok, err)
		}
		p, err := s.Reservations(ctx, id, 0, 10)
		if err != nil || len(p.Reservations) != 1 || p.Reservations[0].OrderID != "o1" {
			t.Fatalf("Reservations(%d) = %+v, %v", id, p, err)
		}
		if d, err := s.MarkRedrive(ctx, id, "o1", t0.Add(time.Second), t0.Add(time.Hour), time.Minute, 3); err != nil || d != RedriveNow {
			t.Fatalf("MarkRedrive(%d) = %v, %v", id, d, err)
		}
		if n, ok, err := s.LowerRemaining(ctx, id); err != nil || !ok || n != 0 {
			t.Fatalf("LowerRemaining(%d) = %d, %v, %v", id, n, ok, err)
		}
		if err := rdb.Del(ctx, s.keys(id).meta).Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := s.RepairMeta(ctx, a, 3); err != nil || r != (MetaRepair{Outcome: MetaRebuilt, Remaining: 2}) {
			t.Fatalf("RepairMeta(%d) = %+v, %v", id, r, err)
		}
	}
}

func TestScanCallsWithRedisDown(t *testing.T) {
	rdb, err := NewClient("redis://" + testkit.FreeAddr(t) + "/0?dial_timeout=500ms&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, Options{})
	ctx := context.Background()
	a := Activity{ID: 7, Stock: 1, StartsAt: t0, EndsAt: t0.Add(window)}
	for op, call := range map[string]func() error{
		"scan reservations of activity 7":    func() error { _, err := s.Reservations(ctx, 7, 0, 10); return err },
		"look up reservations of activity 7": func() error { _, err := s.Held(ctx, 7, []string{"o"}); return err },
		"repair meta of activity 7":          func() error { _, err := s.RepairMeta(ctx, a, 1); return err },
		"lower remaining of activity 7":      func() error { _, _, err := s.LowerRemaining(ctx, 7); return err },
		"mark re-drive of activity 7":        func() error { _, err := s.MarkRedrive(ctx, 7, "o", t0, t0, time.Minute, 3); return err },
		"unmark re-drive of activity 7":      func() error { return s.UnmarkRedrive(ctx, 7, "o") },
	} {
		err := call()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), op) {
			t.Errorf("%s: error = %v; want ErrUnavailable naming the operation", op, err)
		}
	}
}
