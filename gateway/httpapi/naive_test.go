package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
)

func naiveFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, fixtureOpts{tweak: func(o *options) { o.Naive = o.Store.(*order.Store) }})
}

func metricsText(t *testing.T, f *fixture) string {
	t.Helper()
	resp, err := f.ts.Client().Get(f.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestNaiveBuyWritesTheOrderInsideTheRequest(t *testing.T) {
	f := naiveFixture(t)
	act := openActivity(f, 3)

	r := f.buy(act, "alice", "click-1")
	if r.status != http.StatusAccepted || r.body["state"] != order.StateCreated {
		t.Fatalf("naive buy: %d %s; want 202 with state created", r.status, r.raw)
	}
	id, _ := r.body["order_id"].(string)
	// Already in the database when the 202 arrives: no queue, no worker.
	if got := f.call("GET", "/api/v1/orders/"+id, f.token("alice"), nil); got.status != http.StatusOK || got.body["state"] != order.StateCreated {
		t.Errorf("GET the order: %d %s; want 200 created", got.status, got.raw)
	}
	if d := f.broker.Depth(ordermsg.TopicOrders); d != 0 {
		t.Errorf("queue depth %d, want 0: naive mode publishes nothing", d)
	}
	s := f.stats(act)
	if num(s, "db_available") != 2 || num(s, "orders_created") != 1 || num(s, "reserved") != 0 || num(s, "remaining") != 3 {
		t.Errorf("stats %v; want the unit taken in the database only (db_available 2, created 1) and Redis untouched (reserved 0, remaining 3)", s)
	}

	for _, tc := range []struct {
		name, user, requestID string
		status                int
		code, orderID         string
	}{
		{"double click returns the same order", "alice", "click-1", http.StatusAccepted, "", id},
		{"another request of the same user", "alice", "click-2", http.StatusConflict, "ALREADY_PURCHASED", ""},
		{"without request_id", "alice", "", http.StatusConflict, "ALREADY_PURCHASED", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.buy(act, tc.user, tc.requestID)
			if r.status != tc.status || (tc.code != "" && r.body["code"] != tc.code) || (tc.orderID != "" && r.body["order_id"] != tc.orderID) {
				t.Errorf("%d %s; want %d %s %s", r.status, r.raw, tc.status, tc.code, tc.orderID)
			}
		})
	}
	if s := f.stats(act); num(s, "db_available") != 2 || num(s, "orders_created") != 1 {
		t.Errorf("repeats changed the stock: %v", s)
	}
}

func TestNaiveBuySellsOutWithoutTheLocalFlag(t *testing.T) {
	f := naiveFixture(t)
	act := openActivity(f, 10)
	const users = 60
	statuses := make([]int, users)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() { statuses[i] = f.buy(act, fmt.Sprintf("u%02d", i), fmt.Sprintf("r%02d", i)).status })
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[http.StatusAccepted] != 10 || counts[http.StatusGone] != users-10 {
		t.Fatalf("answers %v; want exactly 10 x 202 and %d x 410", counts, users-10)
	}
	// After the sell-out every buy still reaches the database: that is the
	// anti-pattern the pipeline's local sold-out flag avoids.
	for i := range 3 {
		if r := f.buy(act, fmt.Sprintf("late-%d", i), ""); r.status != http.StatusGone || r.body["code"] != "SOLD_OUT" {
			t.Errorf("late buy: %d %s; want 410 SOLD_OUT", r.status, r.raw)
		}
	}
	m := metricsText(t, f)
	for _, want := range []string{
		`seckill_naive_buy_total{outcome="created"} 10`,
		fmt.Sprintf(`seckill_naive_buy_total{outcome="sold_out"} %d`, users-10+3),
		`seckill_soldout_local_total 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, `seckill_reserve_total{`) {
		t.Error("naive mode ran the Redis reserve script")
	}
	if s := f.stats(act); num(s, "db_available") != 0 || num(s, "orders_created") != 10 {
		t.Errorf("stats %v; want db_available 0 and 10 created", s)
	}
}

func TestNaiveBuyRefusals(t *testing.T) {
	f := naiveFixture(t)
	upcoming := f.createActivity(5, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	open := openActivity(f, 5)
	for _, tc := range []struct {
		name, path string
		body       io.Reader
		status     int
		code       string
	}{
		{"not started", "/api/v1/activities/" + upcoming + "/orders", nil, http.StatusForbidden, "NOT_STARTED"},
		{"unknown activity", "/api/v1/activities/999999/orders", nil, http.StatusNotFound, "NOT_FOUND"},
		{"not an id", "/api/v1/activities/abc/orders", nil, http.StatusNotFound, "NOT_FOUND"},
		{"bad request_id", "/api/v1/activities/" + open + "/orders", strings.NewReader(`{"request_id":"a b"}`), http.StatusBadRequest, "VALIDATION"},
		{"unknown field", "/api/v1/activities/" + open + "/orders", strings.NewReader(`{"requestid":"x"}`), http.StatusBadRequest, "BAD_JSON"},
		{"no token", "/api/v1/activities/" + open + "/orders", nil, http.StatusUnauthorized, "UNAUTHORIZED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bearer := f.token("bob")
			if tc.name == "no token" {
				bearer = ""
			}
			r := f.call("POST", tc.path, bearer, tc.body)
			if r.status != tc.status || r.body["code"] != tc.code {
				t.Errorf("%d %s; want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}
	for _, act := range []string{upcoming, open} {
		if s := f.stats(act); num(s, "db_available") != 5 || num(s, "orders_created") != 0 {
			t.Errorf("activity %s changed by refused buys: %v", act, s)
		}
	}
}
