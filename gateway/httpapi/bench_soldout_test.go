package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/sale"
)

// plainInventory hides inventory.Store's Holders: the gateway then takes no
// holder snapshot, as before snapshots existed.
type plainInventory struct{ sale.Inventory }

// The sold-out phase of a spike in which every buy carries a request_id,
// and (no-body) one in which none does, so the local flag alone answers,
// against /healthz in the same run: with the holder snapshot a non-holder
// is answered from memory; without it (no-snapshot) every such buy runs the
// reserve script on miniredis.
func BenchmarkSoldOutWithRequestID(b *testing.B) {
	b.Run("healthz", func(b *testing.B) {
		f := newBenchFixture(b, nil)
		serve(b, f, func(int64) *http.Request { return httptest.NewRequest("GET", "/healthz", nil) })
	})
	soldOut := func(b *testing.B, f benchFixture, snapshot bool, body string) {
		act := openActivity(f.fixture, 1)
		f.buy(act, "winner", "w-1")
		f.buy(act, "loser", "l-1") // sets the flag and starts the holder snapshot
		if snapshot {
			waitHolderSnapshot(b, f.fixture, act)
		}
		tok := f.token("late")
		serve(b, f, func(int64) *http.Request {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			r := httptest.NewRequest("POST", "/api/v1/activities/"+act+"/orders", rd)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		})
	}
	b.Run("buy-sold-out-no-body", func(b *testing.B) {
		f := newBenchFixture(b, nil)
		soldOut(b, f, false, "")
	})
	b.Run("buy-sold-out-request-id", func(b *testing.B) {
		f := newBenchFixture(b, nil)
		soldOut(b, f, true, `{"request_id":"late-1"}`)
	})
	b.Run("buy-sold-out-request-id-no-snapshot", func(b *testing.B) {
		f := benchFixture{newFixture(b, fixtureOpts{queueCapacity: 1 << 30, tweak: func(o *options) {
			o.Limits = httpapi.Limits{}
			o.Inventory = plainInventory{o.Inventory}
		}})}
		soldOut(b, f, false, `{"request_id":"late-1"}`)
	})
}
