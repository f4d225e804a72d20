package httpapi_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// clock is the sale's clock: real time moved by an offset the test sets,
// so the passes (checked against real time) stay valid.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time    { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) jump(to time.Time) { c.offset.Store(int64(time.Until(to))) }
func (f *fixture) queue(act, user string) response {
	return f.call("GET", "/api/v1/activities/"+act+"/queue", f.token(user), nil)
}
func (f *fixture) join(act, user string) response {
	return f.call("POST", "/api/v1/activities/"+act+"/queue", f.token(user), nil)
}

func (f *fixture) createQueueActivity(stock int64, starts time.Time) string {
	f.t.Helper()
	r := f.call("POST", "/api/v1/admin/activities", adminToken, jsonBody(map[string]any{
		"name": "console", "stock": stock, "price_cents": 49900, "admission": "queue",
		"starts_at": starts.UTC().Format(time.RFC3339), "ends_at": starts.Add(time.Hour).UTC().Format(time.RFC3339),
	}))
	if r.status != http.StatusCreated || r.body["admission"] != "queue" {
		f.t.Fatalf("create queue activity: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string)
}

// The waiting room end to end through the routes: people join the
// pre-queue, the order is drawn at the start, the first ones (as many as
// units) are admitted with a pass and buy with it, the others wait, a buy
// without a pass or with a plain buy token is refused, and once every unit
// is sold everyone still waiting hears sold out.
func TestWaitingRoomJoinAdmitBuySoldOut(t *testing.T) {
	var c clock
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.Now = c.now; o.SoldOutTTL = time.Hour }})
	start := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	act := f.createQueueActivity(2, start)

	if r := f.join(act, "too-early"); r.status != http.StatusForbidden || r.body["code"] != "NOT_STARTED" {
		t.Fatalf("join before the pre-queue opens: %d %s", r.status, r.raw)
	}
	c.jump(start.Add(-30 * time.Second))
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	for i, u := range users {
		r := f.join(act, u)
		if r.status != http.StatusOK || r.body["state"] != "prequeue" || num(r.body, "waiting") != int64(i+1) || num(r.body, "poll_after_ms") < 30000 {
			t.Fatalf("pre-queue join of %s: %d %s", u, r.status, r.raw)
		}
	}
	if r := f.join(act, "u0"); r.status != http.StatusOK || num(r.body, "waiting") != 5 {
		t.Fatalf("joining twice: %d %s, want the same place", r.status, r.raw)
	}
	if r := f.call("GET", "/api/v1/activities/"+act+"/buy-token", f.token("u0"), nil); r.status != http.StatusForbidden || r.body["code"] != "QUEUE_ADMISSION" {
		t.Fatalf("a buy token for a queue activity: %d %s", r.status, r.raw)
	}

	c.jump(start.Add(time.Second))
	admitted, waiting := map[string]string{}, []string{}
	for _, u := range users {
		r := f.queue(act, u)
		switch r.body["state"] {
		case "admitted":
			if tok, _ := r.body["buy_token"].(string); tok == "" {
				t.Fatalf("admitted without a pass: %s", r.raw)
			}
			admitted[u] = r.body["buy_token"].(string)
		case "waiting":
			waiting = append(waiting, u)
		default:
			t.Fatalf("%s after the start: %d %s", u, r.status, r.raw)
		}
	}
	if len(admitted) != 2 || len(waiting) != 3 {
		t.Fatalf("admitted %v, waiting %v: want as many admitted as units", admitted, waiting)
	}
	w := waiting[0]
	if r := f.buy(act, w, "w-1"); r.status != http.StatusForbidden || r.body["code"] != "BUY_TOKEN_MISSING" {
		t.Fatalf("a buy without a pass: %d %s", r.status, r.raw)
	}
	for u, pass := range admitted {
		r := f.call("POST", "/api/v1/activities/"+act+"/orders", f.token(u), jsonBody(map[string]string{"request_id": "r-" + u, "buy_token": pass}))
		if r.status != http.StatusAccepted {
			t.Fatalf("%s buys with its pass: %d %s", u, r.status, r.raw)
		}
	}
	for _, u := range waiting {
		// Asked again after its poll_after: the inlet moved, sold out.
		c.jump(c.now().Add(6 * time.Second))
		if r := f.queue(act, u); r.status != http.StatusOK || r.body["state"] != "sold_out" {
			t.Fatalf("%s once every unit is sold: %d %s", u, r.status, r.raw)
		}
	}
	audit := f.call("GET", "/api/v1/admin/activities/"+act+"/queue", adminToken, nil)
	if audit.status != http.StatusOK || audit.body["secret"] == "" || len(audit.body["members"].([]any)) != 5 {
		t.Fatalf("audit: %d %s", audit.status, audit.raw)
	}
}

// The waiting room's routes answer 409 for an activity with open
// admission, and 404 for someone who never joined.
func TestWaitingRoomRefusals(t *testing.T) {
	var c clock
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.Now = c.now }})
	open := openActivity(f, 5)
	if r := f.join(open, "u"); r.status != http.StatusConflict || r.body["code"] != "OPEN_ADMISSION" {
		t.Fatalf("join an open activity: %d %s", r.status, r.raw)
	}
	q := f.createQueueActivity(5, time.Now().Add(10*time.Second))
	if r := f.queue(q, "stranger"); r.status != http.StatusNotFound {
		t.Fatalf("the place of someone who never joined: %d %s", r.status, r.raw)
	}
	bad := f.call("POST", "/api/v1/admin/activities", adminToken, jsonBody(map[string]any{
		"name": "x", "stock": 1, "price_cents": 1, "admission": "lottery",
		"starts_at": time.Now().UTC().Format(time.RFC3339), "ends_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}))
	if bad.status != http.StatusBadRequest || !contains(bad.body["message"], "admission") {
		t.Fatalf("a bad admission: %d %s", bad.status, bad.raw)
	}
}

func contains(v any, sub string) bool {
	s, _ := v.(string)
	return strings.Contains(s, sub)
}

// The live dashboard shows a queue activity's waiting room: how many wait,
// how many were admitted and hold a pass.
func TestDashboardShowsTheWaitingRoom(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { fastDashboard(o) }})
	t.Cleanup(f.srv.CloseStreams)
	act := f.createQueueActivity(1, time.Now().Add(-time.Second))
	for _, u := range []string{"first", "second", "third"} {
		if r := f.join(act, u); r.status != http.StatusOK {
			t.Fatalf("join %s: %d %s", u, r.status, r.raw)
		}
	}
	_, events := openStream(t, f.ts.URL, act, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, ok := nextSample(t, events, 5*time.Second)
		if !ok {
			t.Fatal("stream ended")
		}
		if wr := s.WaitingRoom; wr != nil && wr.Waiting == 2 && wr.Admitted == 1 && wr.Active == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sample %+v (waiting room %+v), want 2 waiting, 1 admitted holding a pass", s, s.WaitingRoom)
		}
	}
	open := openActivity(f, 1)
	_, events = openStream(t, f.ts.URL, open, "")
	if s, ok := nextSample(t, events, 5*time.Second); !ok || s.WaitingRoom != nil {
		t.Fatalf("an open activity's sample carries a waiting room: %+v", s)
	}
}
