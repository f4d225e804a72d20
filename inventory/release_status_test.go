package inventory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestReleaseOnlyUnclaimed: Release gives back a pending or a queued
// reservation (the publish failed before any worker saw the message), and
// leaves a claimed one alone (the publish reported an error although the
// message went through, and a worker already took the unit): the unit stays
// sold and the user stays blocked, so one user never gets two units.
func TestReleaseOnlyUnclaimed(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := e.load(t, 3)
		now := t0.Add(time.Minute)

		// Pending: released, the unit is back, the user may buy again.
		e.mustReserve(t, id, "u1", "r1", "o1", now)
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != Released {
			t.Fatalf("Release(pending o1) = %v, %v; want %v", r, err, Released)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 3, Remaining: 3}) {
			t.Fatalf("after releasing pending o1 Stats = %+v; want the unit back, nothing held", st)
		}
		e.mustReserve(t, id, "u1", "r2", "o1b", now)

		// Queued: released as well.
		e.mustReserve(t, id, "u2", "r1", "o2", now)
		if ok, err := e.s.Confirm(ctx, id, "o2"); err != nil || !ok {
			t.Fatalf("Confirm(o2) = %v, %v", ok, err)
		}
		if r, err := e.s.Release(ctx, id, "o2"); err != nil || r != Released {
			t.Fatalf("Release(queued o2) = %v, %v; want %v", r, err, Released)
		}
		if _, ok := e.lookup(t, id, "o2"); ok {
			t.Fatal("released queued o2 still found")
		}
		if st := e.stats(t, id); st != (Stats{Stock: 3, Remaining: 2, Reserved: 1, Pending: 1}) {
			t.Fatalf("after releasing queued o2 Stats = %+v; want only o1b held", st)
		}

		// Claimed: not released, nothing changes.
		e.mustReserve(t, id, "u3", "r3", "o3", now)
		if got, err := e.s.Claim(ctx, id, []string{"o3"}); err != nil || !got[0] {
			t.Fatalf("Claim(o3) = %v, %v", got, err)
		}
		before := e.stats(t, id)
		for i := range 2 {
			if r, err := e.s.Release(ctx, id, "o3"); err != nil || r != NotReleasedClaimed {
				t.Fatalf("Release(claimed o3) call %d = %v, %v; want %v", i+1, r, err, NotReleasedClaimed)
			}
		}
		if st := e.stats(t, id); st != before || st.Remaining != 1 {
			t.Fatalf("Release of a claimed reservation changed Stats %+v -> %+v", before, st)
		}
		if r, ok := e.lookup(t, id, "o3"); !ok || r.Status != StatusClaimed || r.UserID != "u3" {
			t.Fatalf("claimed o3 after Release = %+v, %v; want kept, claimed by u3", r, ok)
		}
		// The user is still blocked: no second unit with another request id
		// or none, and a retry with the same request id finds its order.
		if got := e.reserve(t, id, "u3", "r9", "o3b", now); got.Outcome != AlreadyPurchased {
			t.Errorf("u3 reserving again = %v; want AlreadyPurchased", got.Outcome)
		}
		if got := e.reserve(t, id, "u3", "", "o3c", now); got.Outcome != AlreadyPurchased {
			t.Errorf("u3 reserving again without request id = %v; want AlreadyPurchased", got.Outcome)
		}
		if got := e.reserve(t, id, "u3", "r3", "o3d", now); got.Outcome != Existing || got.OrderID != "o3" {
			t.Errorf("u3 retrying with request r3 = %+v; want Existing o3", got)
		}
		if st := e.stats(t, id); st != before {
			t.Fatalf("refused reserves changed Stats %+v -> %+v", before, st)
		}
		// Nor does the reaper take it.
		if ids, err := e.s.ReapPending(ctx, id, now.Add(time.Hour), 10); err != nil || len(ids) != 1 || ids[0] != "o1b" {
			t.Fatalf("ReapPending = %v, %v; want only the pending o1b", ids, err)
		}

		// Only the order's cancellation returns a claimed unit, once.
		if ok, err := e.s.ReleaseCancelled(ctx, id, "o3"); err != nil || !ok {
			t.Fatalf("ReleaseCancelled(o3) = %v, %v; want true", ok, err)
		}
		if ok, err := e.s.ReleaseCancelled(ctx, id, "o3"); err != nil || ok {
			t.Fatalf("second ReleaseCancelled(o3) = %v, %v; want false", ok, err)
		}
		if r, err := e.s.Release(ctx, id, "o3"); err != nil || r != NotReleasedAbsent {
			t.Fatalf("Release(o3) after its cancel = %v, %v; want %v", r, err, NotReleasedAbsent)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 3, Remaining: 3}) {
			t.Fatalf("after the cancel Stats = %+v; want every unit back", st)
		}
		e.mustReserve(t, id, "u3", "r4", "o3e", now)
	})
}

// TestReleaseOfClaimedIsNotAnnounced: a release that gave nothing back does
// not tell gateways that units came back.
func TestReleaseOfClaimedIsNotAnnounced(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		got := make(chan int64, 10)
		if err := e.s.SubscribeReleases(ctx, func(id int64) { got <- id }); err != nil {
			t.Fatal(err)
		}
		id := e.load(t, 1)
		e.mustReserve(t, id, "u1", "", "o1", t0)
		if _, err := e.s.Claim(ctx, id, []string{"o1"}); err != nil {
			t.Fatal(err)
		}
		if r, err := e.s.Release(ctx, id, "o1"); err != nil || r != NotReleasedClaimed {
			t.Fatalf("Release = %v, %v; want %v", r, err, NotReleasedClaimed)
		}
		select {
		case extra := <-got:
			t.Errorf("announcement %d for a release that returned nothing", extra)
		case <-time.After(100 * time.Millisecond):
		}
		if ok, err := e.s.ReleaseCancelled(ctx, id, "o1"); err != nil || !ok {
			t.Fatalf("ReleaseCancelled = %v, %v", ok, err)
		}
		expectRelease(t, got, id)
	})
}

// beforeScript is a go-redis hook that runs fn once, just before the call
// number call (from 1) of the script with hash sha: what another process,
// or a Redis restart, does between two steps of this one.
type beforeScript struct {
	sha   string
	call  int
	calls int
	fn    func()
}

func (h *beforeScript) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *beforeScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *beforeScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// EVALSHA, or the EVAL it falls back to, names the script by hash
		// or body; only EVALSHA is matched, so a fallback is not counted twice.
		if args := cmd.Args(); len(args) > 1 && args[0] == "evalsha" && args[1] == h.sha {
			if h.calls++; h.calls == h.call {
				h.fn()
			}
		}
		return next(ctx, cmd)
	}
}

// A restore writes an activity's reservations first and its meta last,
// with remaining computed from the database while the orders were live. A
// cancel whose release lands in between (the order was cancelled after the
// restore read the database) must not take the reservation away: the meta
// that follows counts its unit as held, so the unit would be neither
// remaining nor reserved, lost to the sale for good. The release answers
// ErrNotLoaded and changes nothing; retried once the meta is there, it
// returns the unit.
func TestReleaseWhileARestoreIsHalfWay(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		ctx := context.Background()
		id := randomID()
		a := Activity{ID: id, Stock: 3, StartsAt: t0, EndsAt: t0.Add(window)}
		existing := []Reservation{{OrderID: "o1", UserID: "u1", RequestID: "r1", ReservedAt: t0, Status: StatusClaimed}}
		var released bool
		var relErr error
		e.rdb.AddHook(&beforeScript{sha: e.s.sc.load.Hash(), call: 1, fn: func() {
			released, relErr = e.s.ReleaseCancelled(ctx, id, "o1")
		}})
		if loaded, err := e.s.Load(ctx, a, 2, existing); err != nil || !loaded {
			t.Fatalf("Load = %v, %v; want loaded", loaded, err)
		}
		if released || !errors.Is(relErr, ErrNotLoaded) {
			t.Errorf("release between the restore's reservations and its meta = %v, %v; want false, ErrNotLoaded", released, relErr)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 3, Remaining: 2, Reserved: 1}) {
			t.Fatalf("after the restore: %+v; want the cancelled order's reservation kept (2 remaining, 1 reserved)", st)
		}
		if ok, err := e.s.ReleaseCancelled(ctx, id, "o1"); err != nil || !ok {
			t.Fatalf("the release retried after the restore = %v, %v; want released", ok, err)
		}
		if st := e.stats(t, id); st != (Stats{Stock: 3, Remaining: 3}) {
			t.Errorf("after the retried release: %+v; want every unit remaining", st)
		}
	})
}
