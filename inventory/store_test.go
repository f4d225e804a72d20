package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory/inventorytest"
	"github.com/flashsale/seckill/testkit"
)

func TestReserveOutcomes(t *testing.T) {
	now := t0.Add(time.Minute)
	tests := []struct {
		name  string
		stock int64
		// before runs on the loaded activity; the case then reserves for
		// user "u" with request and order "new".
		before  func(t *testing.T, e env, id int64)
		request string
		now     time.Time
		unknown bool // reserve on an activity that was never loaded
		want    ReserveResult
	}{
		{
			name: "new reservation", stock: 3, request: "r1", now: now,
			want: ReserveResult{Outcome: Reserved, OrderID: "new", Remaining: 2},
		},
		{
			name: "new reservation without request id", stock: 3, now: now,
			want: ReserveResult{Outcome: Reserved, OrderID: "new", Remaining: 2},
		},
		{
			name: "at the start instant", stock: 3, request: "r1", now: t0,
			want: ReserveResult{Outcome: Reserved, OrderID: "new", Remaining: 2},
		},
		{
			name: "last unit", stock: 1, request: "r1", now: now,
			want: ReserveResult{Outcome: Reserved, OrderID: "new", Remaining: 0},
		},
		{
			name: "unknown activity", stock: 3, request: "r1", now: now, unknown: true,
			want: ReserveResult{Outcome: UnknownActivity},
		},
		{
			name: "not started", stock: 3, request: "r1", now: t0.Add(-time.Millisecond),
			want: ReserveResult{Outcome: NotStarted, Remaining: 3},
		},
		{
			name: "ended at the end instant", stock: 3, request: "r1", now: t0.Add(window),
			want: ReserveResult{Outcome: Ended, Remaining: 3},
		},
		{
			name: "ended after the end", stock: 3, request: "r1", now: t0.Add(window + time.Hour),
			want: ReserveResult{Outcome: Ended, Remaining: 3},
		},
		{
			name: "sold out", stock: 1, request: "r1", now: now,
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "other", "rx", "o1", now) },
			want:   ReserveResult{Outcome: SoldOut, Remaining: 0},
		},
		{
			name: "already purchased with another request id", stock: 3, request: "r2", now: now,
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "u", "r1", "o1", now) },
			want:   ReserveResult{Outcome: AlreadyPurchased, Remaining: 2},
		},
		{
			name: "already purchased, empty request id now", stock: 3, request: "", now: now,
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "u", "r1", "o1", now) },
			want:   ReserveResult{Outcome: AlreadyPurchased, Remaining: 2},
		},
		{
			name: "already purchased, empty request id both times", stock: 3, request: "", now: now,
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "u", "", "o1", now) },
			want:   ReserveResult{Outcome: AlreadyPurchased, Remaining: 2},
		},
		{
			name: "already purchased beats sold out", stock: 1, request: "r2", now: now,
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "u", "r1", "o1", now) },
			want:   ReserveResult{Outcome: AlreadyPurchased, Remaining: 0},
		},
		{
			name: "same request id before confirm is pending", stock: 3, request: "r1", now: now,
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "u", "r1", "o1", now) },
			want:   ReserveResult{Outcome: Pending, OrderID: "o1", Remaining: 2},
		},
		{
			name: "same request id after confirm is existing", stock: 3, request: "r1", now: now,
			before: func(t *testing.T, e env, id int64) {
				e.mustReserve(t, id, "u", "r1", "o1", now)
				if ok, err := e.s.Confirm(context.Background(), id, "o1"); err != nil || !ok {
					t.Fatalf("Confirm = %v, %v", ok, err)
				}
			},
			want: ReserveResult{Outcome: Existing, OrderID: "o1", Remaining: 2},
		},
		{
			name: "same request id after claim is existing", stock: 1, request: "r1", now: now,
			before: func(t *testing.T, e env, id int64) {
				e.mustReserve(t, id, "u", "r1", "o1", now)
				if ok, err := e.s.Claim(context.Background(), id, []string{"o1"}); err != nil || !ok[0] {
					t.Fatalf("Claim = %v, %v", ok, err)
				}
			},
			want: ReserveResult{Outcome: Existing, OrderID: "o1", Remaining: 0},
		},
		{
			name: "same request id after the window still finds nothing new", stock: 3, request: "r1",
			now:    t0.Add(window),
			before: func(t *testing.T, e env, id int64) { e.mustReserve(t, id, "u", "r1", "o1", now) },
			want:   ReserveResult{Outcome: Ended, Remaining: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e env) {
				id := randomID()
				if !tt.unknown {
					id = e.load(t, tt.stock)
				}
				if tt.before != nil {
					tt.before(t, e, id)
				}
				got := e.reserve(t, id, "u", tt.request, "new", tt.now)
				if got != tt.want {
					t.Fatalf("Reserve = %+v (%v); want %+v (%v)", got, got.Outcome, tt.want, tt.want.Outcome)
				}
				if tt.unknown {
					return
				}
				st := e.stats(t, id)
				if st.Remaining != tt.want.Remaining {
					t.Errorf("Stats.Remaining = %d; want %d as Reserve said", st.Remaining, tt.want.Remaining)
				}
				_, held := e.lookup(t, id, "new")
				if held != (tt.want.Outcome == Reserved) {
					t.Errorf("reservation %q held = %v after %v", "new", held, got.Outcome)
				}
			})
		})
	}
}

func TestReserveRecordsReservation(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		id := e.load(t, 5)
		at := t0.Add(90 * time.Second).Add(123 * time.Millisecond)
		// ids with the separator and non-ASCII bytes must survive the encoding.
		e.mustReserve(t, id, "user:7:ü", "req:1:", "ord-1", at)
		got, ok := e.lookup(t, id, "ord-1")
		want := Reservation{OrderID: "ord-1", UserID: "user:7:ü", RequestID: "req:1:", ReservedAt: at, Status: StatusPending}
		if !ok || got != want {
			t.Fatalf("Lookup = %+v, %v; want %+v", got, ok, want)
		}
		if _, ok := e.lookup(t, id, "missing"); ok {
			t.Errorf("Lookup of an unknown order found it")
		}
		if st := e.stats(t, id); st != (Stats{Stock: 5, Remaining: 4, Reserved: 1, Pending: 1}) {
			t.Errorf("Stats = %+v", st)
		}
		if rem, ok, err := e.s.Remaining(context.Background(), id); err != nil || !ok || rem != 4 {
			t.Errorf("Remaining = %d, %v, %v; want 4, true", rem, ok, err)
		}
	})
}

func TestReserveRejectsBadArguments(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 2)
		now := t0.Add(time.Minute)
		for _, c := range []struct{ user, order string }{{"", "o1"}, {"u", ""}} {
			if _, err := e.s.Reserve(ctx, id, c.user, "", c.order, now); !errors.Is(err, ErrInvalid) {
				t.Errorf("Reserve(user %q, order %q) error = %v; want ErrInvalid", c.user, c.order, err)
			}
		}
		e.mustReserve(t, id, "u1", "", "o1", now)
		if _, err := e.s.Reserve(ctx, id, "u2", "", "o1", now); !errors.Is(err, ErrInvalid) {
			t.Errorf("Reserve reusing order id o1: error = %v; want ErrInvalid", err)
		}
		if st := e.stats(t, id); st.Remaining != 1 || st.Reserved != 1 {
			t.Errorf("after rejected calls Stats = %+v; want remaining 1, reserved 1", st)
		}
		if r, _ := e.lookup(t, id, "o1"); r.UserID != "u1" {
			t.Errorf("order o1 belongs to %q; want u1 untouched", r.UserID)
		}
	})
}

func TestRelease(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 2)
		now := t0.Add(time.Minute)
		e.mustReserve(t, id, "u1", "r1", "o1", now)

		for i, want := range []ReleaseResult{Released, NotReleasedAbsent} {
			r, err := e.s.Release(ctx, id, "o1")
			if err != nil || r != want {
				t.Fatalf("Release call %d = %v, %v; want %v", i+1, r, err, want)
			}
		}
		if st := e.stats(t, id); st != (Stats{Stock: 2, Remaining: 2, Reserved: 0, Pending: 0}) {
			t.Fatalf("after double release Stats = %+v; want one unit back, nothing held", st)
		}
		if _, ok := e.lookup(t, id, "o1"); ok {
			t.Errorf("released reservation still found")
		}
		if r, err := e.s.Release(ctx, id, "never"); err != nil || r != NotReleasedAbsent {
			t.Errorf("Release of unknown order = %v, %v; want %v", r, err, NotReleasedAbsent)
		}
		// The user may buy again, even with the same request id.
		e.mustReserve(t, id, "u1", "r1", "o2", now)
		if got := e.reserve(t, id, "u1", "r9", "o3", now); got.Outcome != AlreadyPurchased {
			t.Errorf("after re-reserving, Reserve = %v; want AlreadyPurchased", got.Outcome)
		}
		// A late release of the old order does not free the new one.
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != NotReleasedAbsent {
			t.Errorf("late Release(o1) = %v, %v; want %v", r, err, NotReleasedAbsent)
		}
		if got := e.reserve(t, id, "u1", "", "o4", now); got.Outcome != AlreadyPurchased {
			t.Errorf("late release freed the user: Reserve = %v", got.Outcome)
		}
		if st := e.stats(t, id); st.Remaining != 1 || st.Reserved != 1 {
			t.Errorf("Stats = %+v; want remaining 1, reserved 1", st)
		}
	})
}

func TestReleaseNeverAboveStock(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 2)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		// Simulate drift (an operator reset remaining by hand).
		if err := e.rdb.HSet(ctx, e.s.keys(id).meta, "remaining", 2).Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != Released {
			t.Fatalf("Release = %v, %v; want %v", r, err, Released)
		}
		if rem, _, _ := e.s.Remaining(ctx, id); rem != 2 {
			t.Errorf("remaining = %d after release at full stock; want 2 (never above stock)", rem)
		}
	})
}

func TestReleaseKeepsUserMarkOfAnotherOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 3)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		// The user's mark points at another order (as after a restore from
		// a database that moved on); releasing o1 must leave it.
		if err := e.rdb.HSet(ctx, e.s.keys(id).users, "u1", "o-other").Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != Released {
			t.Fatalf("Release = %v, %v; want %v", r, err, Released)
		}
		mark, err := e.rdb.HGet(ctx, e.s.keys(id).users, "u1").Result()
		if err != nil || mark != "o-other" {
			t.Errorf("user mark = %q, %v; want o-other kept", mark, err)
		}
	})
}

func TestConfirm(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 3)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		e.mustReserve(t, id, "u2", "", "o2", t0)

		for i := range 2 {
			if ok, err := e.s.Confirm(ctx, id, "o1"); err != nil || !ok {
				t.Fatalf("Confirm call %d = %v, %v; want true", i+1, ok, err)
			}
		}
		if r, _ := e.lookup(t, id, "o1"); r.Status != StatusQueued {
			t.Errorf("status after Confirm = %q; want %q", r.Status, StatusQueued)
		}
		if _, err := e.s.Claim(ctx, id, []string{"o2"}); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.s.Confirm(ctx, id, "o2"); err != nil || !ok {
			t.Errorf("Confirm of a claimed reservation = %v, %v; want true", ok, err)
		}
		if r, _ := e.lookup(t, id, "o2"); r.Status != StatusClaimed {
			t.Errorf("Confirm changed a claimed reservation to %q", r.Status)
		}
		if st := e.stats(t, id); st.Pending != 0 || st.Reserved != 2 {
			t.Errorf("Stats = %+v; want 2 reserved, none pending", st)
		}

		if _, err := e.s.Release(ctx, id, "o1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.s.Confirm(ctx, id, "o1"); err != nil || ok {
			t.Errorf("Confirm of a released reservation = %v, %v; want false", ok, err)
		}
		if _, ok := e.lookup(t, id, "o1"); ok {
			t.Errorf("Confirm recreated a released reservation")
		}
		if ok, err := e.s.Confirm(ctx, randomID(), "o1"); err != nil || ok {
			t.Errorf("Confirm on an unknown activity = %v, %v; want false", ok, err)
		}
	})
}

func TestClaim(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 5)
		for i, u := range []string{"u1", "u2", "u3", "u4"} {
			e.mustReserve(t, id, u, "", orderID(i+1), t0)
		}
		if ok, err := e.s.Confirm(ctx, id, "o2"); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if r, err := e.s.Release(ctx, id, "o3"); err != nil || r != Released {
			t.Fatal(r, err)
		}
		ids := []string{"o1", "o2", "o3", "o-never", "o1"}
		got, err := e.s.Claim(ctx, id, ids)
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{true, true, false, false, true}; !slices.Equal(got, want) {
			t.Fatalf("Claim(%v) = %v; want %v", ids, got, want)
		}
		for _, o := range []string{"o1", "o2"} {
			if r, _ := e.lookup(t, id, o); r.Status != StatusClaimed {
				t.Errorf("%s status = %q; want claimed", o, r.Status)
			}
		}
		if r, _ := e.lookup(t, id, "o4"); r.Status != StatusPending {
			t.Errorf("unclaimed o4 status = %q; want pending", r.Status)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 5, Remaining: 2, Reserved: 3, Pending: 1}) {
			t.Errorf("Stats = %+v", st)
		}
		if _, ok := e.lookup(t, id, "o3"); ok {
			t.Errorf("Claim recreated released o3")
		}
		if got, err := e.s.Claim(ctx, id, nil); err != nil || len(got) != 0 {
			t.Errorf("Claim(nil) = %v, %v; want empty", got, err)
		}
	})
}

func TestReapPending(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 10)
		cutoff := t0.Add(10 * time.Minute)
		old := cutoff.Add(-time.Minute)
		e.mustReserve(t, id, "old-pending-1", "", "p1", old.Add(-2*time.Second))
		e.mustReserve(t, id, "old-pending-2", "", "p2", old.Add(-1*time.Second))
		e.mustReserve(t, id, "old-pending-3", "", "p3", old)
		e.mustReserve(t, id, "old-queued", "", "q1", old)
		e.mustReserve(t, id, "old-claimed", "", "c1", old)
		e.mustReserve(t, id, "at-cutoff", "", "y0", cutoff)
		e.mustReserve(t, id, "young", "", "y1", cutoff.Add(time.Second))
		if ok, err := e.s.Confirm(ctx, id, "q1"); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, err := e.s.Claim(ctx, id, []string{"c1"}); err != nil {
			t.Fatal(err)
		}

		got, err := e.s.ReapPending(ctx, id, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"p1", "p2"}; !slices.Equal(got, want) {
			t.Fatalf("first ReapPending(limit 2) = %v; want the two oldest %v", got, want)
		}
		got, err = e.s.ReapPending(ctx, id, cutoff, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"p3"}; !slices.Equal(got, want) {
			t.Fatalf("second ReapPending = %v; want %v (not queued, claimed, or young)", got, want)
		}
		if got, err := e.s.ReapPending(ctx, id, cutoff, 100); err != nil || len(got) != 0 {
			t.Fatalf("third ReapPending = %v, %v; want nothing", got, err)
		}
		for _, o := range []string{"q1", "c1", "y0", "y1"} {
			if _, ok := e.lookup(t, id, o); !ok {
				t.Errorf("%s was reaped", o)
			}
		}
		if st := e.stats(t, id); st != (Stats{Stock: 10, Remaining: 6, Reserved: 4, Pending: 2}) {
			t.Errorf("Stats = %+v; want 3 units back", st)
		}
		// A worker meeting a reaped order cancels it; the user may retry.
		if ok, _ := e.s.Claim(ctx, id, []string{"p1"}); ok[0] {
			t.Errorf("Claim of a reaped reservation succeeded")
		}
		e.mustReserve(t, id, "old-pending-1", "", "p1-again", cutoff)
		if got, err := e.s.ReapPending(ctx, id, cutoff, 0); err != nil || len(got) != 0 {
			t.Errorf("ReapPending(limit 0) = %v, %v; want nothing", got, err)
		}
	})
}

func TestLoadIsSetIfAbsent(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 4)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		again := Activity{ID: id, Stock: 99, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)}
		restored := []Reservation{{OrderID: "x", UserID: "ux", ReservedAt: t0, Status: StatusClaimed}}
		loaded, err := e.s.Load(ctx, again, 50, restored)
		if err != nil || loaded {
			t.Fatalf("second Load = %v, %v; want false, nil", loaded, err)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 4, Remaining: 3, Reserved: 1, Pending: 1}) {
			t.Errorf("Stats after second Load = %+v; want the live counters untouched", st)
		}
		if _, ok := e.lookup(t, id, "x"); ok {
			t.Errorf("second Load restored a reservation")
		}
		// The window of the first Load still applies.
		if r := e.reserve(t, id, "u2", "", "o2", t0); r.Outcome != Reserved {
			t.Errorf("Reserve at the first Load's start = %v; want Reserved", r.Outcome)
		}
	})
}

func TestLoadRestoresReservations(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		a := Activity{ID: randomID(), Stock: 10, StartsAt: t0, EndsAt: t0.Add(window)}
		existing := []Reservation{
			{OrderID: "o1", UserID: "u1", RequestID: "r1", ReservedAt: t0.Add(time.Second), Status: StatusClaimed},
			{OrderID: "o2", UserID: "u2", RequestID: "r2", ReservedAt: t0.Add(2 * time.Second), Status: StatusQueued},
			{OrderID: "o3", UserID: "u3", RequestID: "", ReservedAt: t0.Add(3 * time.Second), Status: StatusPending},
		}
		loaded, err := e.s.Load(ctx, a, 7, existing)
		if err != nil || !loaded {
			t.Fatalf("Load = %v, %v; want true", loaded, err)
		}
		for _, want := range existing {
			if got, ok := e.lookup(t, a.ID, want.OrderID); !ok || got != want {
				t.Errorf("Lookup(%s) = %+v, %v; want %+v", want.OrderID, got, ok, want)
			}
		}
		if st := e.stats(t, a.ID); st != (Stats{Stock: 10, Remaining: 7, Reserved: 3, Pending: 1}) {
			t.Errorf("Stats = %+v", st)
		}
		now := t0.Add(time.Minute)
		if r := e.reserve(t, a.ID, "u1", "other", "n1", now); r.Outcome != AlreadyPurchased {
			t.Errorf("restored user u1: Reserve = %v; want AlreadyPurchased", r.Outcome)
		}
		if r := e.reserve(t, a.ID, "u1", "r1", "n2", now); r.Outcome != Existing || r.OrderID != "o1" {
			t.Errorf("restored user u1 retrying r1: Reserve = %+v; want Existing o1", r)
		}
		if r := e.reserve(t, a.ID, "u3", "", "n3", now); r.Outcome != AlreadyPurchased {
			t.Errorf("restored pending user u3: Reserve = %v; want AlreadyPurchased", r.Outcome)
		}
		// The restored pending reservation is in reach of the reaper.
		got, err := e.s.ReapPending(ctx, a.ID, now, 10)
		if err != nil || !slices.Equal(got, []string{"o3"}) {
			t.Errorf("ReapPending = %v, %v; want [o3]", got, err)
		}
	})
}

func TestLoadRestoresManyInChunks(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		const n = 2*restoreChunk + 17
		a := Activity{ID: randomID(), Stock: n + 5, StartsAt: t0, EndsAt: t0.Add(window)}
		existing := make([]Reservation, n)
		for i := range existing {
			existing[i] = Reservation{OrderID: orderID(i), UserID: "u" + strconv.Itoa(i), ReservedAt: t0, Status: StatusClaimed}
		}
		if loaded, err := e.s.Load(ctx, a, 5, existing); err != nil || !loaded {
			t.Fatalf("Load = %v, %v", loaded, err)
		}
		if st := e.stats(t, a.ID); st != (Stats{Stock: n + 5, Remaining: 5, Reserved: n, Pending: 0}) {
			t.Errorf("Stats = %+v", st)
		}
		for _, i := range []int{0, restoreChunk, n - 1} {
			if r := e.reserve(t, a.ID, "u"+strconv.Itoa(i), "", "new"+strconv.Itoa(i), t0); r.Outcome != AlreadyPurchased {
				t.Errorf("restored user u%d: Reserve = %v; want AlreadyPurchased", i, r.Outcome)
			}
		}
	})
}

// Redis restarts empty while a Load runs: the reservations written before
// the restart are gone, and the meta written after it would count their
// units as held, losing them to the sale. Load must fail instead, leave no
// meta behind, and a second Load must restore the activity whole.
func TestLoadAcrossARedisRestart(t *testing.T) {
	n := restoreChunk + 2 // two restore calls
	for _, tc := range []struct {
		name   string
		script func(s *Store) string
		call   int
	}{
		{"between two chunks", func(s *Store) string { return s.sc.restore.Hash() }, 2},
		{"before the meta", func(s *Store) string { return s.sc.load.Hash() }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e env) {
				ctx := context.Background()
				a := Activity{ID: randomID(), Stock: int64(n) + 5, StartsAt: t0, EndsAt: t0.Add(window)}
				existing := make([]Reservation, n)
				for i := range existing {
					existing[i] = Reservation{OrderID: orderID(i), UserID: "u" + strconv.Itoa(i), ReservedAt: t0, Status: StatusClaimed}
				}
				e.rdb.AddHook(&beforeScript{sha: tc.script(e.s), call: tc.call, fn: func() {
					inventorytest.DeletePrefix(t, e.rdb, e.prefix) // the restart: every key gone
				}})
				loaded, err := e.s.Load(ctx, a, 5, existing)
				if loaded || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Load across a restart = %v, %v; want false, ErrUnavailable", loaded, err)
				}
				if _, found, err := e.s.Remaining(ctx, a.ID); err != nil || found {
					t.Fatalf("after the failed Load: meta found = %v, %v; want none, so the next call restores again", found, err)
				}
				if loaded, err := e.s.Load(ctx, a, 5, existing); err != nil || !loaded {
					t.Fatalf("Load again = %v, %v; want loaded", loaded, err)
				}
				if st := e.stats(t, a.ID); st != (Stats{Stock: int64(n) + 5, Remaining: 5, Reserved: int64(n)}) {
					t.Errorf("after the second Load: %+v; want every reservation restored and 5 remaining", st)
				}
			})
		})
	}
}

func TestRestoreRefusesOnceLoaded(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 3)
		// A slow loader's chunk arriving after meta was written must not
		// bring back reservations the live activity has moved past.
		r, err := e.s.run(ctx, e.s.sc.restore, scriptCall{op: "restore", activity: id}, "token", 60000, "1", "late", "ulate", "W0:5:ulate", "")
		if wrote, ok := r.flag(); err != nil || !ok || wrote {
			t.Fatalf("restore after meta = %+v, %v; want status 0 (nothing written)", r, err)
		}
		if _, ok := e.lookup(t, id, "late"); ok {
			t.Errorf("late restore chunk wrote a reservation")
		}
	})
}

func TestLoadValidates(t *testing.T) {
	ok := Reservation{OrderID: "o1", UserID: "u1", ReservedAt: t0, Status: StatusClaimed}
	with := func(f func(r *Reservation)) []Reservation {
		r := ok
		f(&r)
		return []Reservation{r}
	}
	tests := []struct {
		name      string
		stock     int64
		remaining int64
		ends      time.Time
		existing  []Reservation
	}{
		{name: "zero stock", stock: 0, remaining: 0, ends: t0.Add(window)},
		{name: "negative stock", stock: -1, remaining: 0, ends: t0.Add(window)},
		{name: "negative remaining", stock: 5, remaining: -1, ends: t0.Add(window)},
		{name: "remaining above stock", stock: 5, remaining: 6, ends: t0.Add(window)},
		{name: "ends at start", stock: 5, remaining: 5, ends: t0},
		{name: "ends before start", stock: 5, remaining: 5, ends: t0.Add(-time.Second)},
		{name: "more reservations than sold", stock: 5, remaining: 5, ends: t0.Add(window), existing: []Reservation{ok}},
		{name: "empty order id", stock: 5, remaining: 4, ends: t0.Add(window), existing: with(func(r *Reservation) { r.OrderID = "" })},
		{name: "empty user id", stock: 5, remaining: 4, ends: t0.Add(window), existing: with(func(r *Reservation) { r.UserID = "" })},
		{name: "unknown status", stock: 5, remaining: 4, ends: t0.Add(window), existing: with(func(r *Reservation) { r.Status = "X" })},
		{name: "user twice", stock: 5, remaining: 3, ends: t0.Add(window), existing: []Reservation{ok, {OrderID: "o2", UserID: "u1", Status: StatusQueued}}},
		{name: "order twice", stock: 5, remaining: 3, ends: t0.Add(window), existing: []Reservation{ok, {OrderID: "o1", UserID: "u2", Status: StatusQueued}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e env) {
				ctx := context.Background()
				a := Activity{ID: randomID(), Stock: tt.stock, StartsAt: t0, EndsAt: tt.ends}
				loaded, err := e.s.Load(ctx, a, tt.remaining, tt.existing)
				if !errors.Is(err, ErrInvalid) || loaded {
					t.Fatalf("Load = %v, %v; want false, ErrInvalid", loaded, err)
				}
				if keys, err := scanKeys(ctx, e.rdb, e.prefix); err != nil || len(keys) != 0 {
					t.Errorf("rejected Load wrote keys %v (%v)", keys, err)
				}
			})
		})
	}
}

func TestUnloadedActivity(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := randomID()
		if n, ok, err := e.s.Remaining(ctx, id); err != nil || ok || n != 0 {
			t.Errorf("Remaining = %d, %v, %v; want 0, false, nil", n, ok, err)
		}
		if st, ok, err := e.s.Stats(ctx, id); err != nil || ok || st != (Stats{}) {
			t.Errorf("Stats = %+v, %v, %v; want zero, false, nil", st, ok, err)
		}
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != NotReleasedAbsent {
			t.Errorf("Release = %v, %v; want %v, nil", r, err, NotReleasedAbsent)
		}
		if got, err := e.s.ReapPending(ctx, id, t0, 10); err != nil || len(got) != 0 {
			t.Errorf("ReapPending = %v, %v; want nothing", got, err)
		}
		// Not "released": Redis lost the activity, and the caller must
		// retry after a reload rather than cancel accepted orders.
		if got, err := e.s.Claim(ctx, id, []string{"o1"}); !errors.Is(err, ErrNotLoaded) || got != nil {
			t.Errorf("Claim = %v, %v; want ErrNotLoaded", got, err)
		}
		if keys, err := scanKeys(ctx, e.rdb, e.prefix); err != nil || len(keys) != 0 {
			t.Errorf("calls on an unloaded activity wrote keys %v (%v)", keys, err)
		}
	})
}

func TestKeysShareOneHashTag(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 3)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		keys, err := scanKeys(ctx, e.rdb, e.prefix)
		if err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("{a%d}", id)
		want := []string{e.prefix + ":" + tag + ":meta", e.prefix + ":" + tag + ":pending", e.prefix + ":" + tag + ":res", e.prefix + ":" + tag + ":users"}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("keys = %v; want %v", keys, want)
		}
		for _, k := range keys {
			if ttl, err := e.rdb.TTL(ctx, k).Result(); err != nil || ttl != -1 {
				t.Errorf("TTL(%s) = %v, %v; want none (-1)", k, ttl, err)
			}
		}
	})
}

func TestConcurrentReserveDistinctUsers(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		const stock, users = 100, 400
		id := e.load(t, stock)
		reserveDistinctUsers(t, e.s, id, users, stock)
	})
}

func TestConcurrentReserveSameUser(t *testing.T) {
	for _, sameRequest := range []bool{false, true} {
		t.Run("same request id "+strconv.FormatBool(sameRequest), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e env) {
				const n = 50
				id := e.load(t, 10)
				results := make([]ReserveResult, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						req := "r" + strconv.Itoa(i)
						if sameRequest {
							req = "r"
						}
						results[i], errs[i] = e.s.Reserve(context.Background(), id, "u", req, orderID(i), t0)
					})
				}
				wg.Wait()
				counts := map[Outcome]int{}
				winner := ""
				for i, r := range results {
					if errs[i] != nil {
						t.Fatalf("Reserve %d: %v", i, errs[i])
					}
					counts[r.Outcome]++
					if r.Outcome == Reserved {
						winner = r.OrderID
					}
				}
				others := AlreadyPurchased
				if sameRequest {
					others = Pending
				}
				if counts[Reserved] != 1 || counts[others] != n-1 {
					t.Fatalf("outcomes = %v; want 1 Reserved, %d %v", counts, n-1, others)
				}
				if sameRequest {
					for _, r := range results {
						if r.OrderID != winner {
							t.Errorf("Pending answer names %q; want the winner %q", r.OrderID, winner)
						}
					}
				}
				if st := e.stats(t, id); st.Remaining != 9 || st.Reserved != 1 {
					t.Errorf("Stats = %+v; want one unit taken", st)
				}
			})
		})
	}
}

func TestConcurrentReleaseReturnsOneUnit(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		id := e.load(t, 5)
		e.mustReserve(t, id, "u", "", "o1", t0)
		const n = 20
		released := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, err := e.s.Release(context.Background(), id, "o1")
				if err != nil {
					t.Error(err)
				}
				released[i] = r == Released
			})
		}
		wg.Wait()
		if c := countTrue(released); c != 1 {
			t.Errorf("%d of %d concurrent releases reported releasing; want 1", c, n)
		}
		if st := e.stats(t, id); st.Remaining != 5 || st.Reserved != 0 {
			t.Errorf("Stats = %+v; want all 5 back, nothing held", st)
		}
	})
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestRedisDown(t *testing.T) {
	// A port that was just listening and is now closed: connections are
	// refused at once. NewClient dials once per attempt; no command
	// retries and a short dial timeout keep it fast on hosts that drop
	// rather than refuse.
	rdb, err := NewClient("redis://" + testkit.FreeAddr(t) + "/0?dial_timeout=500ms&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, Options{})
	ctx := context.Background()
	a := Activity{ID: 7, Stock: 1, StartsAt: t0, EndsAt: t0.Add(window)}
	ops := []struct {
		op   string
		call func() error
	}{
		{"load activity 7", func() error { _, err := s.Load(ctx, a, 1, nil); return err }},
		{"reserve activity 7", func() error { _, err := s.Reserve(ctx, 7, "u", "r", "o", t0); return err }},
		{"confirm activity 7", func() error { _, err := s.Confirm(ctx, 7, "o"); return err }},
		{"release activity 7", func() error { _, err := s.Release(ctx, 7, "o"); return err }},
		{"release cancelled order of activity 7", func() error { _, err := s.ReleaseCancelled(ctx, 7, "o"); return err }},
		{"claim activity 7", func() error { _, err := s.Claim(ctx, 7, []string{"o"}); return err }},
		{"reap pending activity 7", func() error { _, err := s.ReapPending(ctx, 7, t0, 10); return err }},
		{"lookup activity 7", func() error { _, _, err := s.Lookup(ctx, 7, "o"); return err }},
		{"remaining activity 7", func() error { _, _, err := s.Remaining(ctx, 7); return err }},
		{"stats activity 7", func() error { _, _, err := s.Stats(ctx, 7); return err }},
		{"ping", func() error { return s.Ping(ctx) }},
	}
	for _, o := range ops {
		t.Run(o.op, func(t *testing.T) {
			err := o.call()
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error = %v; want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), o.op) {
				t.Errorf("error %q does not name the operation %q", err, o.op)
			}
		})
	}
}

func TestCanceledContextIsUnavailable(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		id := e.load(t, 1)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := e.s.Reserve(ctx, id, "u", "", "o1", t0)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Reserve with a canceled context: %v; want ErrUnavailable and context.Canceled", err)
		}
		if st := e.stats(t, id); st.Remaining != 1 {
			t.Errorf("canceled Reserve took a unit: %+v", st)
		}
	})
}

func TestNewRejectsBracePrefix(t *testing.T) {
	for _, p := range []string{"a{b", "x}", "{a1}"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with prefix %q did not panic", p)
				}
			}()
			New(nil, Options{Prefix: p})
		}()
	}
	if got := New(nil, Options{}).keys(42).meta; got != "seckill:{a42}:meta" {
		t.Errorf("default meta key = %q; want seckill:{a42}:meta", got)
	}
}

func TestReservationCodec(t *testing.T) {
	for _, r := range []Reservation{
		{UserID: "u", RequestID: "", ReservedAt: t0, Status: StatusPending},
		{UserID: "a:b:", RequestID: ":1:2", ReservedAt: t0.Add(123 * time.Millisecond), Status: StatusQueued},
		{UserID: "用户", RequestID: "请求", ReservedAt: time.UnixMilli(0).UTC(), Status: StatusClaimed},
	} {
		got, err := decodeReservation(encodeReservation(r))
		if err != nil || got != r {
			t.Errorf("decode(encode(%+v)) = %+v, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "P", "P12", "P12:x:u", "P12:9:u", "Px:1:u"} {
		if _, err := decodeReservation(bad); err == nil {
			t.Errorf("decodeReservation(%q) accepted", bad)
		}
	}
}

// TestReserveRetriedByTheClient: go-redis retries a script whose reply was
// lost. The second run finds the reservation the first one made and must
// answer as the first did, or the buyer gets 409 and the unit stays held.
func TestReserveRetriedByTheClient(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		id := e.load(t, 3)
		for _, request := range []string{"", "click-1"} {
			user := "u-" + request
			first := e.reserve(t, id, user, request, "o-"+request, t0)
			again := e.reserve(t, id, user, request, "o-"+request, t0)
			if first.Outcome != Reserved || again.Outcome != Reserved || again.OrderID != first.OrderID || again.Remaining != first.Remaining {
				t.Fatalf("request %q: first %+v, retry %+v; want the same Reserved answer", request, first, again)
			}
		}
		if st, _, _ := e.s.Stats(context.Background(), id); st.Remaining != 1 || st.Reserved != 2 {
			t.Fatalf("after retried reserves: %+v; want remaining 1, reserved 2", st)
		}
	})
}
