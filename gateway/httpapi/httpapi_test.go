package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/service"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/platform/tracing"
	"github.com/flashsale/seckill/testkit"
)

const (
	secret     = "httpapi-test-secret-0123456789ab"
	adminToken = "httpapi-test-admin-token-012345"
)

// fixture is a gateway on real embedded parts: miniredis running the real
// scripts, SQLite through gorm, and the in-memory queue with no consumer
// unless a test adds one, so orders stay queued.
type fixture struct {
	t      testing.TB
	ts     *httptest.Server
	srv    *httpapi.Server
	sale   *sale.Service
	redis  *miniredis.Miniredis
	inv    *inventory.Store
	store  *order.Store
	broker *memory.Broker
	tokens *auth.Tokens
}

type fixtureOpts struct {
	queueCapacity int
	rdb           redis.UniversalClient // a real Redis instead of miniredis
	publisher     mq.Publisher          // overrides the broker for publishing
	tweak         func(*options)
}

// options are a gateway's backends and settings in one flat struct, as the
// tests tweak them; build splits them into the sale's and the door's.
type options struct {
	// the sale's backends
	Inventory    sale.Inventory
	Store        sale.Store
	Publisher    mq.Publisher
	Payer        sale.Payer
	Restorer     sale.Restorer
	IDs          sale.IDGenerator
	Tokens       *auth.Tokens
	BuyTokens    *auth.BuyTokens
	DemoContacts sale.DemoContacts
	Queue        sale.Queue
	Passes       *auth.BuyTokens
	Naive        sale.NaiveStore // set: the buy route runs the naive mode
	// the sale's settings
	SoldOutTTL, PublishTimeout, RedisTimeout time.Duration
	MaxBuysInFlight                          int
	RequireBuyToken                          bool
	// the door's
	Limits                httpapi.Limits
	DeadLetters           httpapi.DeadLetters
	Ready                 func(ctx context.Context) error
	QueueDepth            func() (int, bool)
	Static                http.FileSystem
	Tracing               *tracing.Tracing
	AdminToken            auth.AdminToken
	Demo                  bool
	TrustedProxies        []string
	MaxBodyBytes          int64
	BuyBodyTimeout        time.Duration
	DashboardInterval     time.Duration
	DashboardStreamsPerIP int
	MetricsElsewhere      bool
	// both
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Now      func() time.Time
}

// build makes the sale and the server o describes.
func (o options) build() (*httpapi.Server, *sale.Service, error) {
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	var tracer trace.Tracer
	if o.Tracing.Enabled() {
		tracer = o.Tracing.TracerProvider().Tracer(sale.ScopeName)
	}
	sl, err := sale.New(sale.Deps{
		Inventory: o.Inventory, Store: o.Store, Publisher: o.Publisher, Payer: o.Payer, Restorer: o.Restorer,
		IDs: o.IDs, Tokens: o.Tokens, BuyTokens: o.BuyTokens, DemoContacts: o.DemoContacts, Queue: o.Queue, Passes: o.Passes,
		Tracer: tracer, Registerer: o.Registry, Logger: o.Logger, Now: o.Now,
	}, sale.Config{
		SoldOutTTL: o.SoldOutTTL, PublishTimeout: o.PublishTimeout, RedisTimeout: o.RedisTimeout,
		MaxBuysInFlight: o.MaxBuysInFlight, RequireBuyToken: o.RequireBuyToken,
	})
	if err != nil {
		return nil, nil, err
	}
	var buy sale.Placer = sl
	if o.Naive != nil {
		buy = sale.NewNaive(sl, o.Naive, o.Registry, o.Logger)
	}
	srv, err := httpapi.New(httpapi.Deps{
		Sale: sl, Buy: buy, Tokens: o.Tokens, Limits: o.Limits, DeadLetters: o.DeadLetters, Ready: o.Ready,
		QueueDepth: o.QueueDepth, Static: o.Static, Tracing: o.Tracing, Logger: o.Logger, Registry: o.Registry, Now: o.Now,
	}, httpapi.Config{
		AdminToken: o.AdminToken, Demo: o.Demo, TrustedProxies: o.TrustedProxies, MaxBodyBytes: o.MaxBodyBytes,
		BuyBodyTimeout: o.BuyBodyTimeout, DashboardInterval: o.DashboardInterval,
		DashboardStreamsPerIP: o.DashboardStreamsPerIP, MetricsElsewhere: o.MetricsElsewhere,
	})
	return srv, sl, err
}

func newFixture(t testing.TB, fo fixtureOpts) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	var rdb redis.UniversalClient = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	prefix := "t"
	if fo.rdb != nil {
		rdb, prefix = fo.rdb, "bench-"+testkit.RandomHex(4)
	}
	gdb, err := sqldb.Open(context.Background(), sqldb.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := order.Migrate(context.Background(), gdb); err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := gdb.DB()
	t.Cleanup(func() { sqlDB.Close() })
	broker := memory.New(memory.Config{Capacity: fo.queueCapacity, DrainTimeout: 5 * time.Second, Logger: quiet()})
	t.Cleanup(func() { broker.Close() })
	ids, _ := orderid.New(1)
	f := &fixture{
		t: t, redis: mr, inv: inventory.New(rdb, inventory.Options{Prefix: prefix}),
		store: order.NewStore(gdb), broker: broker, tokens: auth.NewTokens([]byte(secret)),
	}
	opts := options{
		Inventory: f.inv, Store: f.store, Publisher: broker, IDs: ids, Tokens: f.tokens,
		BuyTokens: auth.NewBuyTokens([]byte(secret), 0),
		Queue:     f.inv, Passes: auth.NewQueuePasses([]byte(secret)),
		Payer:      order.NewLifecycle(f.store, f.inv, order.LifecycleConfig{Logger: quiet()}),
		Restorer:   service.NewRestorer(service.Deps{DB: f.store, Inventory: f.inv, Logger: quiet()}),
		AdminToken: auth.AdminToken(adminToken), Demo: true, Logger: quiet(),
		Limits: httpapi.Limits{
			Global:  ratelimit.NewGlobal(rate.Inf, 1),
			PerIP:   ratelimit.NewKeyed(ratelimit.Config{Rate: 1000, Burst: 1000}),
			PerUser: ratelimit.NewKeyed(ratelimit.Config{Rate: 100, Burst: 100}),
		},
	}
	if fo.publisher != nil {
		opts.Publisher = fo.publisher
	}
	if fo.tweak != nil {
		fo.tweak(&opts)
	}
	f.srv, f.sale, err = opts.build()
	if err != nil {
		t.Fatal(err)
	}
	f.ts = httptest.NewServer(f.srv)
	t.Cleanup(f.ts.Close)
	return f
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (f *fixture) token(user string) string {
	tok, err := f.tokens.Issue(user, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) call(method, path, bearer string, body io.Reader) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func (f *fixture) createActivity(stock int64, starts, ends time.Time) string {
	f.t.Helper()
	r := f.call("POST", "/api/v1/admin/activities", adminToken, jsonBody(map[string]any{
		"name": "phone", "stock": stock, "price_cents": 49900,
		"starts_at": starts.UTC().Format(time.RFC3339), "ends_at": ends.UTC().Format(time.RFC3339),
	}))
	if r.status != http.StatusCreated {
		f.t.Fatalf("create activity: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string)
}

func (f *fixture) buy(activity, user, requestID string) response {
	var body io.Reader
	if requestID != "" {
		body = jsonBody(map[string]string{"request_id": requestID})
	}
	return f.call("POST", "/api/v1/activities/"+activity+"/orders", f.token(user), body)
}

func (f *fixture) stats(activity string) map[string]any {
	r := f.call("GET", "/api/v1/admin/activities/"+activity+"/stats", adminToken, nil)
	if r.status != http.StatusOK {
		f.t.Fatalf("stats: %d %s", r.status, r.raw)
	}
	return r.body
}

func num(m map[string]any, k string) int64 { v, _ := m[k].(float64); return int64(v) }

func openActivity(f *fixture, stock int64) string {
	return f.createActivity(stock, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
}

func TestBuyAndReadQueuedOrder(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	act := openActivity(f, 5)
	r := f.buy(act, "alice", "req-1")
	if r.status != http.StatusAccepted || r.body["state"] != "queued" {
		t.Fatalf("buy: %d %s", r.status, r.raw)
	}
	id := r.body["order_id"].(string)
	again := f.buy(act, "alice", "req-1")
	if again.status != http.StatusAccepted || again.body["order_id"] != id {
		t.Fatalf("same request_id: %d %s, want 202 with %s", again.status, again.raw, id)
	}
	if other := f.buy(act, "alice", "req-2"); other.status != http.StatusConflict || other.body["code"] != "ALREADY_PURCHASED" {
		t.Fatalf("another request_id: %d %s, want 409 ALREADY_PURCHASED", other.status, other.raw)
	}
	// No consumer runs: the order exists only as a reservation.
	got := f.call("GET", "/api/v1/orders/"+id, f.token("alice"), nil)
	if got.status != http.StatusOK || got.body["state"] != "queued" || got.body["user_id"] != "alice" || got.body["activity_id"] != act || num(got.body, "price_cents") != 49900 {
		t.Fatalf("GET queued order: %d %s", got.status, got.raw)
	}
	if other := f.call("GET", "/api/v1/orders/"+id, f.token("bob"), nil); other.status != http.StatusNotFound {
		t.Fatalf("another user's order: %d, want 404", other.status)
	}
	s := f.stats(act)
	if num(s, "remaining") != 4 || num(s, "reserved") != 1 || num(s, "queued") != 1 || num(s, "orders_created") != 0 {
		t.Fatalf("stats: %v", s)
	}
	a := f.call("GET", "/api/v1/activities/"+act, "", nil)
	if a.status != http.StatusOK || num(a.body, "remaining") != 4 || a.body["state"] != "active" || a.body["server_time"] == nil {
		t.Fatalf("GET activity: %d %s", a.status, a.raw)
	}
}

func TestActivityStates(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	now := time.Now()
	upcoming := f.createActivity(1, now.Add(time.Hour), now.Add(2*time.Hour))
	ended := f.createActivity(1, now.Add(-2*time.Hour), now.Add(-time.Hour))
	soldOut := openActivity(f, 1)
	if r := f.buy(soldOut, "u1", ""); r.status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", r.status, r.raw)
	}
	cases := []struct {
		act, state, code string
		status           int
	}{
		{upcoming, "upcoming", "NOT_STARTED", http.StatusForbidden},
		{ended, "ended", "ENDED", http.StatusForbidden},
		{soldOut, "sold_out", "SOLD_OUT", http.StatusGone},
	}
	for _, tc := range cases {
		t.Run(tc.state, func(t *testing.T) {
			if r := f.call("GET", "/api/v1/activities/"+tc.act, "", nil); r.body["state"] != tc.state {
				t.Fatalf("state = %v, want %s", r.body["state"], tc.state)
			}
			r := f.buy(tc.act, "u2", "")
			if r.status != tc.status || r.body["code"] != tc.code {
				t.Fatalf("buy: %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}
}

func TestSoldOutFlagSkipsRedisAndClears(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour }})
	act := openActivity(f, 1)
	first := f.buy(act, "winner", "")
	if first.status != http.StatusAccepted {
		t.Fatalf("first buy: %d", first.status)
	}
	if r := f.buy(act, "loser-0", ""); r.status != http.StatusGone {
		t.Fatalf("sold out buy: %d %s", r.status, r.raw)
	}
	before := f.redis.CommandCount()
	for i := 1; i <= 20; i++ {
		if r := f.buy(act, fmt.Sprint("loser-", i), ""); r.status != http.StatusGone || r.body["code"] != "SOLD_OUT" {
			t.Fatalf("buy %d: %d %s", i, r.status, r.raw)
		}
	}
	if n := f.redis.CommandCount() - before; n != 0 {
		t.Fatalf("%d Redis commands while the local sold-out flag was set, want 0", n)
	}
	// The unit comes back (a cancelled order, a failed publish): once the
	// flag is cleared the unit sells again, through Redis.
	actID := mustID(t, act)
	if r, err := f.inv.Release(context.Background(), actID, first.body["order_id"].(string)); err != nil || r != inventory.Released {
		t.Fatalf("release: %v %v", r, err)
	}
	if r := f.buy(act, "late", ""); r.status != http.StatusGone {
		t.Fatalf("before clearing, the flag answers locally: got %d", r.status)
	}
	f.sale.ClearSoldOut(actID)
	if r := f.buy(act, "late", ""); r.status != http.StatusAccepted {
		t.Fatalf("after clearing: %d %s, want 202", r.status, r.raw)
	}
}

func TestSoldOutFlagExpiresAndTheUnitSellsAgain(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = 20 * time.Millisecond }})
	act := openActivity(f, 1)
	first := f.buy(act, "winner", "")
	if r := f.buy(act, "loser", ""); r.status != http.StatusGone {
		t.Fatalf("sold out buy: %d", r.status)
	}
	if r, err := f.inv.Release(context.Background(), mustID(t, act), first.body["order_id"].(string)); err != nil || r != inventory.Released {
		t.Fatalf("release: %v %v", r, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := f.buy(act, "late", "")
		if r.status == http.StatusAccepted {
			break
		}
		if r.status != http.StatusGone || time.Now().After(deadline) {
			t.Fatalf("returned unit never sold after the flag's TTL: last %d %s", r.status, r.raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRequestIDRetryBypassesSoldOutFlag(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.SoldOutTTL = time.Hour }})
	act := openActivity(f, 1)
	first := f.buy(act, "winner", "click-1")
	if r := f.buy(act, "loser", ""); r.status != http.StatusGone {
		t.Fatalf("sold out: %d", r.status)
	}
	// The winner lost the 202 and retries: the answer is the order, not 410.
	r := f.buy(act, "winner", "click-1")
	if r.status != http.StatusAccepted || r.body["order_id"] != first.body["order_id"] {
		t.Fatalf("retry with the winning request_id: %d %s", r.status, r.raw)
	}
}

func TestQueueFullAnswersBusyAndReturnsTheUnit(t *testing.T) {
	f := newFixture(t, fixtureOpts{queueCapacity: 1})
	act := openActivity(f, 10)
	if r := f.buy(act, "u1", ""); r.status != http.StatusAccepted {
		t.Fatalf("first buy: %d %s", r.status, r.raw)
	}
	r := f.buy(act, "u2", "")
	if r.status != http.StatusServiceUnavailable || r.body["code"] != "BUSY" || r.header.Get("Retry-After") == "" {
		t.Fatalf("buy with a full queue: %d %s (Retry-After %q), want 503 BUSY", r.status, r.raw, r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body["message"].(string), "queue is full") {
		t.Fatalf("message %q does not say the queue is full", r.body["message"])
	}
	s := f.stats(act)
	if num(s, "remaining") != 9 || num(s, "reserved") != 1 {
		t.Fatalf("after the refused publish: %v; want remaining 9, reserved 1 (nothing kept for u2)", s)
	}
	// Drain the queue into the database; u2 can buy the unit again.
	w := order.NewWorker(f.store, f.inv, order.WorkerConfig{BatchSize: 10, Logger: quiet()})
	t.Cleanup(func() { w.Close() })
	if err := f.broker.Subscribe(context.Background(), ordermsg.TopicOrders, mq.SubscribeOptions{Group: "w", Concurrency: 4}, w.Handle); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.broker.Depth(ordermsg.TopicOrders) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("queue did not drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := f.buy(act, "u2", ""); r.status != http.StatusAccepted {
		t.Fatalf("u2 after drain: %d %s", r.status, r.raw)
	}
}

// failingPublisher's broker refuses at once.
type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, string, ...*mq.Message) error {
	return errors.New("broker down")
}
func (failingPublisher) Close() error { return nil }

// stuckPublisher never gets an answer from its broker: Publish returns only
// when its context ends, as a publish timeout does.
type stuckPublisher struct{}

func (stuckPublisher) Publish(ctx context.Context, _ string, _ ...*mq.Message) error {
	<-ctx.Done()
	return ctx.Err()
}
func (stuckPublisher) Close() error { return nil }

// TestPublishFailureReleasesReservation: whether the queue refuses or never
// answers, the buyer gets 503 BUSY and nothing stays reserved. After a
// timeout the release must not reuse the publish's spent context: the unit
// and the user's mark are back at once, not after the reaper.
func TestPublishFailureReleasesReservation(t *testing.T) {
	for _, tc := range []struct {
		name string
		pub  mq.Publisher
	}{
		{"queue refuses", failingPublisher{}},
		{"queue never answers", stuckPublisher{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{publisher: tc.pub, tweak: func(o *options) {
				o.PublishTimeout = 50 * time.Millisecond
			}})
			act := openActivity(f, 3)
			r := f.buy(act, "u1", "req-1")
			if r.status != http.StatusServiceUnavailable || r.body["code"] != "BUSY" {
				t.Fatalf("buy: %d %s, want 503 BUSY", r.status, r.raw)
			}
			s := f.stats(act)
			if num(s, "remaining") != 3 || num(s, "reserved") != 0 {
				t.Fatalf("after the failed publish: %v; want remaining 3, reserved 0", s)
			}
			res, err := f.inv.Reserve(context.Background(), mustID(t, act), "u1", "req-2", "0000000000000000001-"+act, time.Now())
			if err != nil || res.Outcome != inventory.Reserved {
				t.Fatalf("u1 reserving again: %+v, %v; want Reserved (the mark must be gone)", res, err)
			}
		})
	}
}

func TestRedisDownAnswersBusyFast(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	act := openActivity(f, 3)
	f.redis.Close()
	r := f.buy(act, "u1", "")
	if r.status != http.StatusServiceUnavailable || r.body["code"] != "BUSY" {
		t.Fatalf("buy with Redis down: %d %s", r.status, r.raw)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.MaxBodyBytes = 1 << 20 }})
	act := openActivity(f, 5)
	alice := f.token("alice")
	// An order of alice's, for the "another user's order" case.
	owned := f.buy(act, "alice", "").body["order_id"].(string)

	hs256 := func(claims jwt.Claims, key []byte) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := hs256(jwt.RegisteredClaims{Subject: "eve", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}, []byte(secret))
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"eve","exp":%d}`, time.Now().Add(time.Hour).Unix()))) + "."
	validActivity := func(mut func(m map[string]any)) io.Reader {
		m := map[string]any{"name": "x", "stock": 10, "price_cents": 100, "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}
		mut(m)
		return jsonBody(m)
	}
	buyPath := "/api/v1/activities/" + act + "/orders"
	cases := []struct {
		name, method, path, bearer string
		body                       io.Reader
		status                     int
		code, mentions             string
	}{
		{"no token", "POST", buyPath, "", nil, 401, "UNAUTHORIZED", "bearer"},
		{"garbage token", "POST", buyPath, "garbage", nil, 401, "UNAUTHORIZED", "token"},
		{"alg none", "POST", buyPath, none, nil, 401, "UNAUTHORIZED", "token"},
		{"expired token", "POST", buyPath, expired, nil, 401, "UNAUTHORIZED", "expired"},
		{"wrong secret", "POST", buyPath, hs256(jwt.RegisteredClaims{Subject: "eve", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, []byte("another-secret-another-secret!!!")), nil, 401, "UNAUTHORIZED", "signature"},
		{"user token on admin create", "POST", "/api/v1/admin/activities", alice, validActivity(func(map[string]any) {}), 401, "UNAUTHORIZED", "admin"},
		{"user token on admin stats", "GET", "/api/v1/admin/activities/" + act + "/stats", alice, nil, 401, "UNAUTHORIZED", "admin"},
		{"malformed JSON buy", "POST", buyPath, f.token("bob"), strings.NewReader(`{"request_id":`), 400, "BAD_JSON", "JSON"},
		{"unknown field", "POST", buyPath, f.token("bob"), strings.NewReader(`{"qty":2}`), 400, "BAD_JSON", "qty"},
		{"bad request_id", "POST", buyPath, f.token("bob"), jsonBody(map[string]string{"request_id": "has spaces"}), 400, "VALIDATION", "request_id"},
		{"4 MiB body", "POST", buyPath, f.token("bob"), bytes.NewReader(bytes.Repeat([]byte("x"), 4<<20)), 413, "BODY_TOO_LARGE", "bytes"},
		{"unknown activity buy", "POST", "/api/v1/activities/999999/orders", f.token("bob"), nil, 404, "NOT_FOUND", "999999"},
		{"non-numeric activity", "GET", "/api/v1/activities/abc", "", nil, 404, "NOT_FOUND", "abc"},
		{"unknown activity stats", "GET", "/api/v1/admin/activities/424242/stats", adminToken, nil, 404, "NOT_FOUND", "424242"},
		{"negative stock", "POST", "/api/v1/admin/activities", adminToken, validActivity(func(m map[string]any) { m["stock"] = -1 }), 400, "VALIDATION", "stock"},
		{"end before start", "POST", "/api/v1/admin/activities", adminToken, validActivity(func(m map[string]any) { m["ends_at"] = "2029-01-01T00:00:00Z" }), 400, "VALIDATION", "ends_at"},
		{"unparseable time", "POST", "/api/v1/admin/activities", adminToken, validActivity(func(m map[string]any) { m["starts_at"] = "tomorrow" }), 400, "VALIDATION", "starts_at"},
		{"missing price", "POST", "/api/v1/admin/activities", adminToken, validActivity(func(m map[string]any) { delete(m, "price_cents") }), 400, "VALIDATION", "price_cents"},
		{"bad pay timeout", "POST", "/api/v1/admin/activities", adminToken, validActivity(func(m map[string]any) { m["pay_timeout_seconds"] = 0 }), 400, "VALIDATION", "pay_timeout_seconds"},
		{"another user's order", "GET", "/api/v1/orders/" + owned, f.token("mallory"), nil, 404, "NOT_FOUND", owned},
		{"malformed order id", "GET", "/api/v1/orders/nope", alice, nil, 404, "NOT_FOUND", "nope"},
		{"bad demo user id", "POST", "/api/v1/auth/demo-token", "", jsonBody(map[string]string{"user_id": "a b"}), 400, "VALIDATION", "user_id"},
		{"unknown route", "DELETE", "/api/v1/activities/" + act, "", nil, 404, "NOT_FOUND", "DELETE"},
	}
	before := f.stats(act)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(tc.method, tc.path, tc.bearer, tc.body)
			if r.status != tc.status || r.body["code"] != tc.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if msg, _ := r.body["message"].(string); !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.mentions)) {
				t.Fatalf("message %q does not name %q", msg, tc.mentions)
			}
		})
	}
	after := f.stats(act)
	for _, k := range []string{"remaining", "reserved", "queued", "orders_created"} {
		if num(before, k) != num(after, k) {
			t.Errorf("%s changed from %d to %d by refused requests", k, num(before, k), num(after, k))
		}
	}
	acts, err := f.store.ListActivities(context.Background())
	if err != nil || len(acts) != 1 {
		t.Fatalf("refused creates wrote activities: %d, %v", len(acts), err)
	}
}

func TestDemoTokenOnlyInDemoMode(t *testing.T) {
	on := newFixture(t, fixtureOpts{})
	r := on.call("POST", "/api/v1/auth/demo-token", "", jsonBody(map[string]string{"user_id": "carol"}))
	if r.status != http.StatusOK {
		t.Fatalf("demo token: %d %s", r.status, r.raw)
	}
	if user, err := on.tokens.Verify(r.body["token"].(string)); err != nil || user != "carol" {
		t.Fatalf("demo token verifies as %q, %v", user, err)
	}
	off := newFixture(t, fixtureOpts{tweak: func(o *options) { o.Demo = false }})
	if r := off.call("POST", "/api/v1/auth/demo-token", "", jsonBody(map[string]string{"user_id": "carol"})); r.status != http.StatusNotFound {
		t.Fatalf("demo token outside demo mode: %d, want 404", r.status)
	}
}

func TestRateLimitsAnswer429WithRetryAfter(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.Limits.PerUser = ratelimit.NewKeyed(ratelimit.Config{Rate: 0.1, Burst: 2})
		o.Limits.PerIP = ratelimit.NewKeyed(ratelimit.Config{Rate: 0.1, Burst: 6})
	}})
	act := openActivity(f, 100)
	var codes []int
	for range 3 {
		codes = append(codes, f.buy(act, "bot", "").status)
	}
	r := f.buy(act, "bot", "")
	if r.status != http.StatusTooManyRequests || r.body["code"] != "RATE_LIMITED" || r.header.Get("Retry-After") == "" || !strings.Contains(r.body["message"].(string), "per-user") {
		t.Fatalf("4th buy by one user: %d %s (first three %v)", r.status, r.raw, codes)
	}
	// Another user from the same address still passes until the IP bucket empties.
	if r := f.buy(act, "human", ""); r.status != http.StatusAccepted {
		t.Fatalf("another user: %d %s", r.status, r.raw)
	}
	for range 3 {
		f.call("GET", "/api/v1/activities/"+act, "", nil)
	}
	if r := f.call("GET", "/api/v1/activities/"+act, "", nil); r.status != http.StatusTooManyRequests || !strings.Contains(r.body["message"].(string), "per-IP") {
		t.Fatalf("past the per-IP burst: %d %s", r.status, r.raw)
	}
}

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want429 bool
	}{
		{"untrusted: spoofed header ignored, one bucket", nil, true},
		{"trusted loopback proxy: one bucket per client", []string{"127.0.0.1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{tweak: func(o *options) {
				o.TrustedProxies = tc.trusted
				o.Limits.PerIP = ratelimit.NewKeyed(ratelimit.Config{Rate: 0.1, Burst: 1})
			}})
			got429 := false
			for i := range 3 {
				req, _ := http.NewRequest("POST", f.ts.URL+"/api/v1/auth/demo-token", jsonBody(map[string]string{"user_id": "x"}))
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
				resp, err := f.ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got429 = got429 || resp.StatusCode == http.StatusTooManyRequests
			}
			if got429 != tc.want429 {
				t.Fatalf("got a 429: %v, want %v", got429, tc.want429)
			}
		})
	}
}

func TestHealthAndMetrics(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.Ready = process.Readiness(process.Check{Name: "redis", Ping: func(context.Context) error {
			return errors.New("dial tcp 10.1.2.3:6379: connection refused")
		}})
	}})
	if r := f.call("GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("healthz: %d", r.status)
	}
	if r := f.call("GET", "/readyz", "", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(r.raw, "redis") || strings.Contains(r.raw, "10.1.2.3") {
		t.Fatalf("readyz with a failing backend: %d %s, want 503 naming redis and not its address", r.status, r.raw)
	}
	act := openActivity(f, 1)
	f.buy(act, "u", "")
	r := f.call("GET", "/metrics", "", nil)
	for _, want := range []string{
		`seckill_http_requests_total{code="202",method="POST",route="/api/v1/activities/:id/orders"} 1`,
		`seckill_reserve_total{outcome="reserved"} 1`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func mustID(t *testing.T, s string) int64 {
	var id int64
	if _, err := fmt.Sscan(s, &id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestServesStaticPages(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		o.Static = http.FS(fstest.MapFS{"index.html": {Data: []byte("<h1>sale</h1>")}})
	}})
	if r := f.call("GET", "/", "", nil); r.status != http.StatusOK || !strings.Contains(r.raw, "<h1>sale</h1>") {
		t.Fatalf("GET /: %d %q", r.status, r.raw)
	}
	if r := f.call("POST", "/", "", nil); r.status != http.StatusNotFound || r.body["code"] != "NOT_FOUND" {
		t.Fatalf("POST /: %d %s, want a JSON 404", r.status, r.raw)
	}
}
