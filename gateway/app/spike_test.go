package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/testkit"
)

const (
	testJWTSecret  = "spike-test-jwt-secret-0123456789"
	testAdminToken = "spike-test-admin-token-0123456789"
)

// startApp runs a whole all-in-one process on a loopback port.
func startApp(t *testing.T, extra map[string]string) (*App, *client) {
	t.Helper()
	return startRole(t, AllInOne, extra)
}

// startRole runs one process of the given role on a loopback port.
func startRole(t *testing.T, role Target, extra map[string]string) (*App, *client) {
	t.Helper()
	return startRoleWith(t, role, extra, Options{})
}

// startRoleWith is startRole with what an embedder provides.
func startRoleWith(t testing.TB, role Target, extra map[string]string, opts Options) (*App, *client) {
	t.Helper()
	env := map[string]string{
		"SECKILL_HTTP_ADDR":    "127.0.0.1:0",
		"SECKILL_DATA_DIR":     t.TempDir(),
		"SECKILL_JWT_SECRET":   testJWTSecret,
		"SECKILL_ADMIN_TOKEN":  testAdminToken,
		"SECKILL_DEMO":         "true",
		"SECKILL_REDIS_PREFIX": "sktest-" + testkit.RandomHex(4),
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := NewWithOptions(context.Background(), cfg, log, role, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a, newClient("http://" + a.Addr())
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// client speaks the v1 contract over real HTTP.
type client struct {
	base      string
	http      *http.Client
	tokens    *auth.Tokens
	buyTokens *auth.BuyTokens
}

func newClient(base string) *client {
	tr := &http.Transport{MaxIdleConns: 400, MaxIdleConnsPerHost: 400, IdleConnTimeout: time.Minute}
	return &client{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		tokens: auth.NewTokens([]byte(testJWTSecret)), buyTokens: auth.NewBuyTokens([]byte(testJWTSecret), time.Hour)}
}

func (c *client) do(t testing.TB, method, path, bearer string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Errorf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// buyBody is a buy's body as the sale page sends it: the request_id (none
// when empty) and a buy token, minted with the test secret as the gateway
// issues them from the start (SECKILL_BUY_TOKEN=required outside demo
// mode; the door itself is tested in httpapi and e2e).
func (c *client) buyBody(t testing.TB, activity, user, requestID string) map[string]string {
	tok, _, err := c.buyTokens.Issue(user, mustParseID(t, activity))
	if err != nil {
		t.Fatal(err)
	}
	b := map[string]string{"buy_token": tok}
	if requestID != "" {
		b["request_id"] = requestID
	}
	return b
}

func (c *client) token(t testing.TB, user string) string {
	tok, err := c.tokens.Issue(user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type activityResp struct {
	ID        string `json:"id"`
	Stock     int64  `json:"stock"`
	Remaining int64  `json:"remaining"`
	State     string `json:"state"`
}

type statsResp struct {
	Stock           int64 `json:"stock"`
	Remaining       int64 `json:"remaining"`
	Reserved        int64 `json:"reserved"`
	Queued          int64 `json:"queued"`
	OrdersCreated   int64 `json:"orders_created"`
	OrdersPaid      int64 `json:"orders_paid"`
	OrdersCancelled int64 `json:"orders_cancelled"`
	DBAvailable     int64 `json:"db_available"`
}

func (c *client) createActivity(t testing.TB, stock int64, starts, ends time.Time) string {
	t.Helper()
	var act activityResp
	code := c.do(t, "POST", "/api/v1/admin/activities", testAdminToken, map[string]any{
		"name": "spike", "stock": stock, "price_cents": 1999,
		"starts_at": starts.UTC().Format(time.RFC3339), "ends_at": ends.UTC().Format(time.RFC3339),
		"pay_timeout_seconds": 600,
	}, &act)
	if code != http.StatusCreated || act.ID == "" {
		t.Fatalf("create activity: status %d, %+v", code, act)
	}
	return act.ID
}

func (c *client) stats(t testing.TB, activityID string) statsResp {
	t.Helper()
	var s statsResp
	if code := c.do(t, "GET", "/api/v1/admin/activities/"+activityID+"/stats", testAdminToken, nil, &s); code != http.StatusOK {
		t.Fatalf("stats: status %d", code)
	}
	return s
}

// waitDrained polls the stats until the queue is empty and want orders are
// written, or fails after a generous deadline.
func (c *client) waitDrained(t testing.TB, activityID string, want int64) statsResp {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := c.stats(t, activityID)
		if s.Queued == 0 && s.OrdersCreated+s.OrdersPaid+s.OrdersCancelled >= want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained within 60s: %+v (want %d orders)", s, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type buyResult struct {
	user, requestID string
	status          int
	orderID         string
	code            string
}

// spike runs users x 3 buys (two sharing a request_id, one with another)
// from `clients` concurrent clients and checks the invariants of the brief.
func spike(t *testing.T, c *client, a *App, users int, stock int64, clients int) {
	activity := c.createActivity(t, stock, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	spikeOn(t, c, a, activity, users, stock, clients)
}

// spikeOn runs the spike against an activity that already exists.
func spikeOn(t *testing.T, c *client, a *App, activity string, users int, stock int64, clients int) {

	type attempt struct{ user, requestID, token string }
	attempts := make(chan attempt, users*3)
	perm := rand.Perm(users)
	for _, i := range perm {
		user := fmt.Sprintf("user-%05d", i)
		tok := c.token(t, user)
		// The double click: the same request_id twice in a row, so the
		// two usually race. Then a fresh request_id.
		attempts <- attempt{user, "click-" + user, tok}
		attempts <- attempt{user, "click-" + user, tok}
		attempts <- attempt{user, "again-" + user, tok}
	}
	close(attempts)

	results := make(chan buyResult, users*3)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for at := range attempts {
				var body struct {
					OrderID string `json:"order_id"`
					State   string `json:"state"`
					Code    string `json:"code"`
				}
				status := c.do(t, "POST", "/api/v1/activities/"+activity+"/orders", at.token, c.buyBody(t, activity, at.user, at.requestID), &body)
				if status == http.StatusAccepted && body.State != "queued" {
					t.Errorf("202 with state %q, want queued", body.State)
				}
				results <- buyResult{at.user, at.requestID, status, body.OrderID, body.Code}
			}
		})
	}
	wg.Wait()
	close(results)

	byStatus := map[int]int{}
	orderOfUser := map[string]string{}
	orderOfRequest := map[string]string{}
	ownerOfOrder := map[string]string{}
	clicks202 := map[string]int{}
	for r := range results {
		byStatus[r.status]++
		switch r.status {
		case http.StatusAccepted:
			if prev, ok := orderOfRequest[r.requestID]; ok && prev != r.orderID {
				t.Errorf("request_id %s answered two order ids: %s and %s", r.requestID, prev, r.orderID)
			}
			orderOfRequest[r.requestID] = r.orderID
			if prev, ok := orderOfUser[r.user]; ok && prev != r.orderID {
				t.Errorf("user %s got two orders: %s and %s", r.user, prev, r.orderID)
			}
			orderOfUser[r.user] = r.orderID
			if owner, ok := ownerOfOrder[r.orderID]; ok && owner != r.user {
				t.Errorf("order %s answered to %s and %s", r.orderID, owner, r.user)
			}
			ownerOfOrder[r.orderID] = r.user
			if r.requestID == "click-"+r.user {
				clicks202[r.user]++
			}
		case http.StatusConflict:
			if r.code != "ALREADY_PURCHASED" {
				t.Errorf("409 with code %s", r.code)
			}
		case http.StatusGone:
			if r.code != "SOLD_OUT" {
				t.Errorf("410 with code %s", r.code)
			}
		default:
			t.Errorf("unexpected status %d (%s) for %s", r.status, r.code, r.user)
		}
	}
	t.Logf("answers by status: %v", byStatus)
	if len(ownerOfOrder) != int(stock) || len(orderOfUser) != int(stock) {
		t.Fatalf("%d distinct orders for %d distinct users, want exactly %d of each", len(ownerOfOrder), len(orderOfUser), stock)
	}
	// Whichever of a user's concurrent attempts won, the double click is
	// one decision: both clicks carry the order, or neither does.
	for user, id := range orderOfUser {
		click, again := orderOfRequest["click-"+user], orderOfRequest["again-"+user]
		if (click == "") == (again == "") || (click != id && again != id) {
			t.Errorf("winner %s (order %s): click answered %q, second request_id answered %q; want exactly one", user, id, click, again)
		}
		if click != "" && clicks202[user] != 2 {
			t.Errorf("winner %s: %d of the 2 double-click requests got 202, want both", user, clicks202[user])
		}
	}
	s := c.waitDrained(t, activity, stock)
	if s.Remaining != 0 || s.OrdersCreated != stock || s.Reserved != stock || s.Queued != 0 || s.DBAvailable != 0 || s.OrdersCancelled != 0 {
		t.Fatalf("after drain: %+v; want remaining 0, reserved %d, created %d, db available 0", s, stock, stock)
	}
	// Invariant 3, conservation, both sides.
	if s.Remaining != s.Stock-(s.Queued+s.OrdersCreated+s.OrdersPaid) || s.DBAvailable != s.Stock-(s.OrdersCreated+s.OrdersPaid) {
		t.Fatalf("conservation broken: %+v", s)
	}
	// Invariant 5: every 202 order reached the database, for its user.
	for id, user := range ownerOfOrder {
		var o struct {
			State  string `json:"state"`
			UserID string `json:"user_id"`
		}
		if code := c.do(t, "GET", "/api/v1/orders/"+id, c.token(t, user), nil, &o); code != http.StatusOK || o.State != order.StateCreated || o.UserID != user {
			t.Errorf("order %s of %s: status %d, %+v; want 200 created", id, user, code, o)
		}
	}
	// And straight from the database: one row per winner, no extra rows.
	var rows []order.Order
	actID := mustParseID(t, activity)
	if err := a.Store().DB().Where("activity_id = ?", actID).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != int(stock) {
		t.Fatalf("database holds %d orders, want %d", len(rows), stock)
	}
	for _, o := range rows {
		if ownerOfOrder[o.ID] != o.UserID || o.State != order.StateCreated {
			t.Errorf("row %s (user %s, state %s) does not match a 202 answer", o.ID, o.UserID, o.State)
		}
	}
	dbAct, err := a.Store().GetActivity(context.Background(), actID)
	if err != nil {
		t.Fatal(err)
	}
	if dbAct.Available != 0 || dbAct.Version == 0 {
		t.Fatalf("database activity: available %d version %d; want 0 and > 0", dbAct.Available, dbAct.Version)
	}
}

func mustParseID(t testing.TB, s string) int64 {
	var id int64
	if _, err := fmt.Sscan(s, &id); err != nil {
		t.Fatalf("activity id %q: %v", s, err)
	}
	return id
}

func TestSpikeEmbedded(t *testing.T) {
	a, c := startApp(t, nil)
	spike(t, c, a, 2000, 100, 200)
}

func TestSpikeRealRedisAndMariaDB(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	dsn := testkit.MySQLDSN(t)
	a, c := startApp(t, map[string]string{"SECKILL_REDIS_URL": redisURL, "SECKILL_DB_DSN": dsn})
	spike(t, c, a, 2000, 100, 200)
}
