package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
)

// The gateway takes holder snapshots only from an Inventory that lists
// holders: inventory.Store does (and so does anything embedding it, such as
// its Coalescer).
var (
	_ sale.HolderLister = (*inventory.Store)(nil)
	_ sale.HolderLister = (*inventory.Coalescer)(nil) // what the app passes: the snapshot must not switch off silently
)

// followReleases wires the fixture's release announcements to the given
// gateways' ClearSoldOut, as gateway/app does.
func followReleases(t *testing.T, f *fixture, gateways ...*sale.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.inv.SubscribeReleases(ctx, func(id int64) {
		for _, g := range gateways {
			g.ClearSoldOut(id)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// waitHolderSnapshot buys as fresh non-holders with a request_id until one
// is answered 410 without any Redis command: the holder snapshot, read in
// the background after the first sold-out answer, is loaded.
func waitHolderSnapshot(t testing.TB, f *fixture, act string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		before := f.redis.CommandCount()
		r := f.buy(act, fmt.Sprint("probe-", i), "probe-req")
		if r.status != http.StatusGone || r.body["code"] != "SOLD_OUT" {
			t.Fatalf("non-holder with a request_id after sold out: %d %s, want 410 SOLD_OUT", r.status, r.raw)
		}
		if f.redis.CommandCount() == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder snapshot was never loaded: every request_id buy still goes to Redis")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSoldOutNonHolderWithRequestIDIsAnsweredWithoutRedis(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour }})
	act := openActivity(f, 2)
	for _, u := range []string{"w1", "w2"} {
		if r := f.buy(act, u, u+"-click"); r.status != http.StatusAccepted {
			t.Fatalf("buy %s: %d %s", u, r.status, r.raw)
		}
	}
	waitHolderSnapshot(t, f, act)
	localBefore := soldOutLocalTotal(t, f)
	before := f.redis.CommandCount()
	for i := range 50 {
		if r := f.buy(act, fmt.Sprint("loser-", i), fmt.Sprint("req-", i)); r.status != http.StatusGone || r.body["code"] != "SOLD_OUT" {
			t.Fatalf("buy %d: %d %s, want 410 SOLD_OUT", i, r.status, r.raw)
		}
	}
	if n := f.redis.CommandCount() - before; n != 0 {
		t.Fatalf("%d Redis commands for 50 non-holders' request_id buys after sold out, want 0", n)
	}
	if got := soldOutLocalTotal(t, f) - localBefore; got != 50 {
		t.Errorf("seckill_soldout_local_total grew by %v, want 50", got)
	}
}

func TestSoldOutHolderRetryStillGetsItsOrderFromRedis(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour }})
	act := openActivity(f, 2)
	won := f.buy(act, "winner", "click-1")
	if won.status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", won.status, won.raw)
	}
	if r := f.buy(act, "plain", ""); r.status != http.StatusAccepted { // a holder without a request_id
		t.Fatalf("buy: %d %s", r.status, r.raw)
	}
	waitHolderSnapshot(t, f, act)

	before := f.redis.CommandCount()
	r := f.buy(act, "winner", "click-1")
	if r.status != http.StatusAccepted || r.body["order_id"] != won.body["order_id"] {
		t.Fatalf("holder's retry with its request_id: %d %s, want 202 with %v", r.status, r.raw, won.body["order_id"])
	}
	if f.redis.CommandCount() == before {
		t.Error("a holder's retry was answered without Redis")
	}
	for _, c := range []struct{ user, req string }{{"winner", "click-2"}, {"plain", "some-req"}} {
		if r := f.buy(act, c.user, c.req); r.status != http.StatusConflict || r.body["code"] != "ALREADY_PURCHASED" {
			t.Fatalf("holder %s with another request_id: %d %s, want 409 ALREADY_PURCHASED", c.user, r.status, r.raw)
		}
	}
}

// A unit that comes back (a cancelled order, a failed publish on another
// gateway, a reaped reservation) is announced; the announcement clears the
// flag and the holder snapshot, so the unit sells at once to a buyer with a
// request_id who was answered 410 from memory just before, although the
// flag's TTL is an hour.
func TestReleaseClearsSoldOutFlagAndSnapshotSoTheUnitSellsAtOnce(t *testing.T) {
	cases := []struct {
		name string
		// hold takes the last unit as the case needs it and returns its order id.
		hold    func(t *testing.T, f *fixture, act string) string
		release func(ctx context.Context, f *fixture, actID int64, orderID string) error
	}{
		{
			name: "cancel",
			hold: func(t *testing.T, f *fixture, act string) string {
				r := f.buy(act, "holder", "h-1")
				if r.status != http.StatusAccepted {
					t.Fatalf("buy: %d %s", r.status, r.raw)
				}
				return r.body["order_id"].(string)
			},
			release: func(ctx context.Context, f *fixture, actID int64, orderID string) error {
				ok, err := f.inv.ReleaseCancelled(ctx, actID, orderID)
				if err == nil && !ok {
					err = errors.New("nothing released")
				}
				return err
			},
		},
		{
			// Another gateway reserved and its publish is failing.
			name: "failed-publish",
			hold: holdPending,
			release: func(ctx context.Context, f *fixture, actID int64, orderID string) error {
				r, err := f.inv.Release(ctx, actID, orderID)
				if err == nil && r != inventory.Released {
					err = fmt.Errorf("release: %v", r)
				}
				return err
			},
		},
		{
			// A gateway died between the script and the publish.
			name: "reaper",
			hold: holdPending,
			release: func(ctx context.Context, f *fixture, actID int64, _ string) error {
				ids, err := f.inv.ReapPending(ctx, actID, time.Now().Add(time.Hour), 10)
				if err == nil && len(ids) != 1 {
					err = fmt.Errorf("reaped %v", ids)
				}
				return err
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour }})
			followReleases(t, f, f.sale)
			act := openActivity(f, 1)
			orderID := tc.hold(t, f, act)
			waitHolderSnapshot(t, f, act)
			if r := f.buy(act, "late", "late-1"); r.status != http.StatusGone {
				t.Fatalf("before the release: %d %s, want 410", r.status, r.raw)
			}
			if err := tc.release(context.Background(), f, mustID(t, act), orderID); err != nil {
				t.Fatal(err)
			}
			// The announcement travels through Redis pub/sub: allow it a moment.
			deadline := time.Now().Add(5 * time.Second)
			for {
				r := f.buy(act, "late", "late-1")
				if r.status == http.StatusAccepted {
					break
				}
				if r.status != http.StatusGone || time.Now().After(deadline) {
					t.Fatalf("the returned unit did not sell after the release: last %d %s", r.status, r.raw)
				}
				time.Sleep(time.Millisecond)
			}
			// Sold out again, and the new holder's retry finds its order.
			if r := f.buy(act, "later", "later-1"); r.status != http.StatusGone {
				t.Fatalf("after the unit sold again: %d %s, want 410", r.status, r.raw)
			}
			waitHolderSnapshot(t, f, act)
			if r := f.buy(act, "late", "late-1"); r.status != http.StatusAccepted {
				t.Fatalf("the new holder's retry: %d %s, want 202", r.status, r.raw)
			}
		})
	}
}

// holdPending takes the last unit straight through Redis, leaving it
// pending, as a gateway does between the script and the publish.
func holdPending(t *testing.T, f *fixture, act string) string {
	t.Helper()
	const id = "0000000000000000001-x"
	r, err := f.inv.Reserve(context.Background(), mustID(t, act), "ghost", "g-1", id, time.Now())
	if err != nil || r.Outcome != inventory.Reserved {
		t.Fatalf("reserve: %+v %v", r, err)
	}
	return id
}

// blockedPublisher fails every publish, once unblock is closed.
type blockedPublisher struct{ unblock chan struct{} }

func (p blockedPublisher) Publish(context.Context, string, ...*mq.Message) error {
	<-p.unblock
	return errors.New("queue down")
}

func (blockedPublisher) Close() error { return nil }

// Two gateways on one Redis: gateway A has its flag and holder snapshot
// while gateway B's publish of the last unit is failing; B's release clears
// A's flag and snapshot (through the announcement), and the unit is sold
// once, on A. Each gateway only ever answers 410 on its own; Redis alone
// hands out units.
func TestSecondGatewayFailedPublishClearsTheOtherGatewaysSnapshot(t *testing.T) {
	var opts options
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour; opts = *o }})
	pub := blockedPublisher{unblock: make(chan struct{})}
	opts.Publisher = pub
	gwB, saleB, err := opts.build()
	if err != nil {
		t.Fatal(err)
	}
	followReleases(t, f, f.sale, saleB)
	act := openActivity(f, 1)
	actID := mustID(t, act)

	bDone := make(chan int, 1)
	go func() {
		req := httptest.NewRequest("POST", "/api/v1/activities/"+act+"/orders", strings.NewReader(`{"request_id":"b-1"}`))
		req.Header.Set("Authorization", "Bearer "+f.token("via-b"))
		w := httptest.NewRecorder()
		gwB.ServeHTTP(w, req)
		bDone <- w.Code
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, _, err := f.inv.Remaining(context.Background(), actID)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway B never reserved the unit")
		}
		time.Sleep(time.Millisecond)
	}
	waitHolderSnapshot(t, f, act) // on gateway A; B's buyer holds the unit meanwhile
	close(pub.unblock)
	if code := <-bDone; code != http.StatusServiceUnavailable {
		t.Fatalf("gateway B's buy with a failing publish: %d, want 503", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := f.buy(act, "via-a", "a-1")
		if r.status == http.StatusAccepted {
			break
		}
		if r.status != http.StatusGone || time.Now().After(deadline) {
			t.Fatalf("gateway A never sold the unit B gave back: last %d %s", r.status, r.raw)
		}
		time.Sleep(time.Millisecond)
	}
	if st := f.stats(act); num(st, "remaining") != 0 || num(st, "reserved") != 1 {
		t.Fatalf("stats: %v, want the one unit reserved once", st)
	}
}

// Many users with request_ids buy and retry at once while units are
// cancelled and announced, so flags and snapshots are set, read, fetched
// and cleared concurrently (run with -race). Afterwards every holder's
// retry finds its order and everybody else gets 410; no more units were
// handed out than stock plus the returned ones.
func TestSoldOutSnapshotUnderConcurrentBuysAndReleases(t *testing.T) {
	const stock, users, rounds, cancels = 10, 120, 4, 5
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour }})
	followReleases(t, f, f.sale)
	act := openActivity(f, stock)
	actID := mustID(t, act)
	ctx := context.Background()

	var mu sync.Mutex
	sold := map[string]bool{} // every order id answered 202
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			user, req := fmt.Sprint("u", u), fmt.Sprint("r", u)
			for range rounds {
				r := f.buy(act, user, req)
				switch r.status {
				case http.StatusAccepted:
					mu.Lock()
					sold[r.body["order_id"].(string)] = true
					mu.Unlock()
				case http.StatusGone:
				default:
					t.Errorf("%s: %d %s", user, r.status, r.raw)
				}
			}
		})
	}
	released := 0
	wg.Go(func() {
		for released < cancels {
			h, _, err := f.inv.Holders(ctx, actID, 0)
			if err != nil {
				t.Error(err)
				return
			}
			for _, oid := range h {
				if ok, err := f.inv.ReleaseCancelled(ctx, actID, oid); err == nil && ok {
					released++
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	if released != cancels {
		t.Fatalf("released %d, want %d", released, cancels)
	}
	if len(sold) > stock+cancels {
		t.Fatalf("%d distinct orders answered 202 for %d units and %d returned", len(sold), stock, cancels)
	}
	holders, _, err := f.inv.Holders(ctx, actID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := f.stats(act); num(st, "remaining")+num(st, "reserved") != stock || num(st, "reserved") != int64(len(holders)) {
		t.Fatalf("stats %v with %d holders: units not conserved", st, len(holders))
	}
	// Settle: sell any unit still left (its announcement may still be on
	// its way, so a filler may get 410 meanwhile), then every answer is exact.
	for i, deadline := 0, time.Now().Add(5*time.Second); ; i++ {
		n, _, err := f.inv.Remaining(ctx, actID)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d units left unsold", n)
		}
		f.buy(act, fmt.Sprint("filler-", i), "f")
		time.Sleep(time.Millisecond)
	}
	holders, _, _ = f.inv.Holders(ctx, actID, 0)
	waitHolderSnapshot(t, f, act)
	for u := range users {
		user, req := fmt.Sprint("u", u), fmt.Sprint("r", u)
		r := f.buy(act, user, req)
		if oid, holds := holders[user]; holds {
			// Redis's own answer: the order, or "still being processed"
			// while its reservation is pending (a Confirm that timed out on
			// a loaded machine leaves it so until the reaper); never 410.
			res, _, err := f.inv.Lookup(ctx, actID, oid)
			pending := err == nil && res.Status == inventory.StatusPending
			if !(r.status == http.StatusAccepted && r.body["order_id"] == oid) &&
				!(pending && r.status == http.StatusServiceUnavailable) {
				t.Errorf("holder %s's retry: %d %s, want 202 with %s", user, r.status, r.raw, oid)
			}
		} else if r.status != http.StatusGone {
			t.Errorf("non-holder %s: %d %s, want 410", user, r.status, r.raw)
		}
	}
}

// soldOutLocalTotal reads seckill_soldout_local_total from /metrics.
func soldOutLocalTotal(t *testing.T, f *fixture) float64 {
	t.Helper()
	const name = "seckill_soldout_local_total"
	r := f.call("GET", "/metrics", "", nil)
	for _, line := range strings.Split(r.raw, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var x float64
			if _, err := fmt.Sscan(v, &x); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return x
		}
	}
	t.Fatalf("/metrics lacks %s", name)
	return 0
}

// A unit released and sold again behind this gateway's back (its
// announcement lost) leaves the new holder outside the snapshot: their
// retry is answered 410 from memory, the documented cost. Once the snapshot
// is half its TTL old, a request_id buy starts the next read while the old
// snapshot still answers, so the holder's retry finds its order well within
// the TTL, with no buy sent to Redis for want of a snapshot meanwhile.
func TestSoldOutSnapshotIsReadAgainAtHalfItsTTL(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = 10 * time.Second; o.Now = now }})
	act := openActivity(f, 1)
	actID := mustID(t, act)
	won := f.buy(act, "winner", "w-1")
	if won.status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", won.status, won.raw)
	}
	waitHolderSnapshot(t, f, act)

	ctx := context.Background()
	if r, err := f.inv.Release(ctx, actID, won.body["order_id"].(string)); err != nil || r != inventory.Released {
		t.Fatalf("release behind the gateway's back: %v %v", r, err)
	}
	sneaky := "0000000000000000077-" + act
	if res, err := f.inv.Reserve(ctx, actID, "sneaky", "s-1", sneaky, now()); err != nil || res.Outcome != inventory.Reserved {
		t.Fatalf("reserve behind the gateway's back: %+v %v", res, err)
	}
	if ok, err := f.inv.Confirm(ctx, actID, sneaky); err != nil || !ok {
		t.Fatalf("confirm behind the gateway's back (its order is in the queue): %v %v", ok, err)
	}
	if r := f.buy(act, "sneaky", "s-1"); r.status != http.StatusGone {
		t.Fatalf("the new holder's retry before the next read: %d %s, want 410 from the snapshot", r.status, r.raw)
	}

	clock.Add(int64(6 * time.Second)) // past half the TTL, within the flag's and the snapshot's
	localBefore := soldOutLocalTotal(t, f)
	for i, deadline := 0, time.Now().Add(5*time.Second); ; i++ {
		r := f.buy(act, "sneaky", "s-1")
		if r.status == http.StatusAccepted {
			if r.body["order_id"] != sneaky {
				t.Fatalf("the holder's retry: %s, want its order %s", r.raw, sneaky)
			}
			// Every retry before the new snapshot was answered from
			// memory, and the one after it went to Redis.
			if got := soldOutLocalTotal(t, f) - localBefore; got != float64(i) {
				t.Errorf("%v of the %d retries before the new snapshot were answered from memory, want all", got, i)
			}
			break
		}
		if r.status != http.StatusGone || time.Now().After(deadline) {
			t.Fatalf("the holder's retry past half the TTL: %d %s; the snapshot was never read again", r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond) // within the per-user limit
	}
}
