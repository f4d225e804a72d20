package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/seckill/inventory"
)

// reserveThen runs the real reserve, then, for user's reserve, calls after
// before the answer is handled: an event that lands between Redis's answer
// and the gateway's reading of it.
type reserveThen struct {
	*inventory.Store
	user  string
	after func()
}

func (r reserveThen) Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (inventory.ReserveResult, error) {
	res, err := r.Store.Reserve(ctx, activityID, userID, requestID, orderID, now)
	if userID == r.user {
		r.after()
	}
	return res, err
}

// A SoldOut answer handled after a release was announced (a cancel on
// another gateway put the unit back and cleared the flag) is stale: it
// must not set the flag again, or this gateway answers the freed unit's
// buyers 410 from memory for the flag's whole TTL.
func TestStaleSoldOutAnswerDoesNotSetTheFlag(t *testing.T) {
	var after func()
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.SoldOutTTL = time.Hour
		o.Inventory = reserveThen{Store: o.Inventory.(*inventory.Store), user: "loser", after: func() { after() }}
	}})
	act := openActivity(f, 1)
	actID := mustID(t, act)
	won := f.buy(act, "winner", "w-1")
	if won.status != http.StatusAccepted {
		t.Fatalf("winner: %d %s", won.status, won.raw)
	}
	after = func() {
		// The winner's order is cancelled elsewhere: its unit comes
		// back, and the release is announced (followReleases in the app).
		if r, err := f.inv.Release(context.Background(), actID, won.body["order_id"].(string)); err != nil || r != inventory.Released {
			t.Errorf("release: %v %v", r, err)
		}
		f.sale.ClearSoldOut(actID)
	}
	if r := f.buy(act, "loser", "l-1"); r.status != http.StatusGone {
		t.Fatalf("loser (Redis said sold out before the release): %d %s, want 410", r.status, r.raw)
	}
	if r := f.buy(act, "late", ""); r.status != http.StatusAccepted {
		t.Fatalf("a buy after the release: %d %s, want 202 (the freed unit is on sale; a stale sold-out answer set the flag)", r.status, r.raw)
	}
}
