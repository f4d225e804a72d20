package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/order"
)

func metricNumber(t *testing.T, f *fixture, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(metricValue(t, f, name), 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// expiredBuyToken is a token the fixture's secret signed for user and
// activity, issued long enough ago to have expired.
func expiredBuyToken(t *testing.T, activity, user string) string {
	t.Helper()
	id, err := strconv.ParseInt(activity, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	bt := auth.NewBuyTokens([]byte(secret), time.Nanosecond)
	tok, _, err := bt.Issue(user, id)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func requireBuyToken(o *options) { o.RequireBuyToken = true }

// buyToken fetches a buy token as user; it fails the test unless 200.
func (f *fixture) buyToken(activity, user string) string {
	f.t.Helper()
	r := f.call("GET", "/api/v1/activities/"+activity+"/buy-token", f.token(user), nil)
	if r.status != http.StatusOK {
		f.t.Fatalf("buy-token for %s: %d %s", user, r.status, r.raw)
	}
	tok, _ := r.body["token"].(string)
	if tok == "" {
		f.t.Fatalf("buy-token: no token in %s", r.raw)
	}
	return tok
}

func (f *fixture) buyWithToken(activity, user, requestID, buyToken string) response {
	return f.call("POST", "/api/v1/activities/"+activity+"/orders", f.token(user),
		jsonBody(map[string]string{"request_id": requestID, "buy_token": buyToken}))
}

func TestBuyTokenRoute(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: requireBuyToken})
	open := openActivity(f, 5)
	upcoming := f.createActivity(5, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	ended := f.createActivity(5, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))

	r := f.call("GET", "/api/v1/activities/"+open+"/buy-token", f.token("alice"), nil)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("buy-token of an open sale: %d %s (Cache-Control %q), want 200 no-store", r.status, r.raw, r.header.Get("Cache-Control"))
	}
	exp, err := time.Parse(time.RFC3339, r.body["expires_at"].(string))
	if err != nil || exp.Before(time.Now()) || exp.After(time.Now().Add(auth.DefaultBuyTokenTTL+time.Second)) {
		t.Fatalf("expires_at %v (%v): want within the token TTL from now", r.body["expires_at"], err)
	}
	for _, tc := range []struct {
		name, path, bearer string
		status             int
		code               string
	}{
		{"before the start", "/api/v1/activities/" + upcoming + "/buy-token", f.token("alice"), http.StatusForbidden, "NOT_STARTED"},
		{"after the end", "/api/v1/activities/" + ended + "/buy-token", f.token("alice"), http.StatusForbidden, "ENDED"},
		{"unknown activity", "/api/v1/activities/999999/buy-token", f.token("alice"), http.StatusNotFound, "NOT_FOUND"},
		{"malformed activity id", "/api/v1/activities/x/buy-token", f.token("alice"), http.StatusNotFound, "NOT_FOUND"},
		{"no user", "/api/v1/activities/" + open + "/buy-token", "", http.StatusUnauthorized, "UNAUTHORIZED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call("GET", tc.path, tc.bearer, nil)
			if r.status != tc.status || r.body["code"] != tc.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}
}

// The route is limited per user in buckets of its own.
func TestBuyTokenRouteIsRateLimitedPerUser(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.Limits.BuyTokenPerUser = ratelimit.NewKeyed(ratelimit.Config{Rate: 0.001, Burst: 2})
		o.Limits.PerUser = ratelimit.NewKeyed(ratelimit.Config{Rate: 0.001, Burst: 1})
	}})
	act := openActivity(f, 5)
	var last response
	for range 3 {
		last = f.call("GET", "/api/v1/activities/"+act+"/buy-token", f.token("alice"), nil)
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("third token within the burst of 2: %d %s, want 429 with Retry-After", last.status, last.raw)
	}
	if r := f.call("GET", "/api/v1/activities/"+act+"/buy-token", f.token("bob"), nil); r.status != http.StatusOK {
		t.Fatalf("another user: %d %s, want 200", r.status, r.raw)
	}
	// The tokens did not spend alice's buys (a burst of 1 of their own).
	if r := f.buy(act, "alice", "r1"); r.status != http.StatusAccepted {
		t.Fatalf("alice's buy after her token requests: %d %s, want 202", r.status, r.raw)
	}
}

// Every refusal is a 403 with its own code, counted by reason, and
// reserves nothing.
func TestBuyTokenRefusals(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: requireBuyToken})
	act := openActivity(f, 5)
	other := openActivity(f, 5)
	alices := f.buyToken(act, "alice")
	forOther := f.buyToken(other, "alice")
	expired := expiredBuyToken(t, act, "alice")
	cases := []struct {
		name, user, token, code, reason string
	}{
		{"missing", "alice", "", "BUY_TOKEN_MISSING", "missing"},
		{"forged", "alice", "1.alice.9999999999.AAAAAAAAAAAAAAAAAAAAAA", "BUY_TOKEN_INVALID", "invalid"},
		{"a user JWT", "alice", f.token("alice"), "BUY_TOKEN_INVALID", "invalid"},
		{"expired", "alice", expired, "BUY_TOKEN_EXPIRED", "expired"},
		{"another user's", "mallory", alices, "BUY_TOKEN_WRONG_USER", "wrong_user"},
		{"another activity's", "alice", forOther, "BUY_TOKEN_WRONG_ACTIVITY", "wrong_activity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := metricNumber(t, f, `seckill_buy_token_refused_total{reason="`+tc.reason+`"}`)
			r := f.buyWithToken(act, tc.user, "r-"+tc.reason, tc.token)
			if r.status != http.StatusForbidden || r.body["code"] != tc.code {
				t.Fatalf("%d %s, want 403 %s", r.status, r.raw, tc.code)
			}
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, "buy_token") {
				t.Fatalf("message %q does not name buy_token", msg)
			}
			if got := metricNumber(t, f, `seckill_buy_token_refused_total{reason="`+tc.reason+`"}`); got != before+1 {
				t.Fatalf("refusals counted %v -> %v, want one more", before, got)
			}
		})
	}
	if st := f.stats(act); num(st, "remaining") != 5 || num(st, "reserved") != 0 {
		t.Fatalf("after refused buys: %v, want nothing reserved", st)
	}
	// The same user with the right token buys, and a retry with it gets
	// the same order back.
	r := f.buyWithToken(act, "alice", "r-ok", alices)
	if r.status != http.StatusAccepted {
		t.Fatalf("buy with a valid token: %d %s", r.status, r.raw)
	}
	again := f.buyWithToken(act, "alice", "r-ok", alices)
	if again.status != http.StatusAccepted || again.body["order_id"] != r.body["order_id"] {
		t.Fatalf("retry with the token: %d %s, want the same order %v", again.status, again.raw, r.body["order_id"])
	}
	if st := f.stats(act); num(st, "remaining") != 4 {
		t.Fatalf("after one buy: %v, want remaining 4", st)
	}
}

// With SECKILL_BUY_TOKEN=off a buy without a token goes through, and the
// route still issues tokens so the page works the same either way.
func TestBuyTokenOff(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	act := openActivity(f, 5)
	if r := f.buy(act, "alice", "r1"); r.status != http.StatusAccepted {
		t.Fatalf("buy without a token, tokens off: %d %s", r.status, r.raw)
	}
	tok := f.buyToken(act, "bob")
	if r := f.buyWithToken(act, "bob", "r2", tok); r.status != http.StatusAccepted {
		t.Fatalf("buy with a token, tokens off: %d %s", r.status, r.raw)
	}
}

// The naive mode sits behind the same door.
func TestBuyTokenNaiveMode(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.RequireBuyToken = true
		o.Naive = o.Store.(*order.Store)
	}})
	act := openActivity(f, 5)
	if r := f.buy(act, "alice", "r1"); r.status != http.StatusForbidden || r.body["code"] != "BUY_TOKEN_MISSING" {
		t.Fatalf("naive buy without a token: %d %s, want 403 BUY_TOKEN_MISSING", r.status, r.raw)
	}
	if r := f.buyWithToken(act, "alice", "r1", f.buyToken(act, "alice")); r.status != http.StatusAccepted {
		t.Fatalf("naive buy with a token: %d %s, want 202", r.status, r.raw)
	}
}
