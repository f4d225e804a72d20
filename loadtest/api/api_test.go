package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP seckill_reserve_total Redis reserve script outcomes.
# TYPE seckill_reserve_total counter
seckill_reserve_total{outcome="reserved"} 100
seckill_reserve_total{outcome="sold_out"} 2.5e+03
seckill_http_requests_total{route="/api/v1/activities/:id/orders",method="POST",code="202"} 7
seckill_http_requests_total{code="429",method="POST",route="/api/v1/activities/:id/orders"} 3
seckill_queue_depth 42
weird{msg="a \"quoted\", value",x="1"} 1 1700000000000
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"seckill_reserve_total", nil, 2600},
		{"seckill_reserve_total", []string{`outcome="reserved"`}, 100},
		{"seckill_http_requests_total", []string{`route="/api/v1/activities/:id/orders"`}, 10},
		{"seckill_http_requests_total", []string{`code="429"`, `method="POST"`}, 3},
		{"seckill_queue_depth", nil, 42},
		{"weird", []string{`x="1"`}, 1},
		{"absent_total", nil, 0},
	} {
		if got := m.Sum(tc.name, tc.match...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
	if got := m.LabelValues("seckill_http_requests_total", "code"); !reflect.DeepEqual(got, []string{"202", "429"}) {
		t.Errorf("LabelValues(seckill_http_requests_total, code) = %q, want 202 and 429", got)
	}
	if got := m.LabelValues("seckill_queue_depth", "code"); len(got) != 0 {
		t.Errorf("LabelValues of a metric without labels = %q, want none", got)
	}
	if !m.Has("seckill_queue_depth") || m.Has("seckill_queue") {
		t.Error("Has matches by prefix or misses a metric")
	}
	for _, bad := range []string{"x{a=1} 2\n", "x{a=\"1} 2\n", "x{a=\"1\"}\n", "x{a=\"1\"} notanumber\n"} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMetrics(%q) accepted a malformed line", bad)
		}
	}
}

// gateway is a fake of the contract's routes the client uses.
func gateway(t *testing.T, demo bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	tokens := auth.NewTokens([]byte("api-test-secret-0123456789"))
	mux.HandleFunc("POST /api/v1/auth/demo-token", func(w http.ResponseWriter, r *http.Request) {
		if !demo {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"code":"NOT_FOUND","message":"demo login is only available in demo mode"}`))
			return
		}
		var in struct {
			UserID string `json:"user_id"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		tok, _ := tokens.Issue(in.UserID, time.Hour)
		json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.HandleFunc("POST /api/v1/activities/{id}/orders", func(w http.ResponseWriter, r *http.Request) {
		if _, err := tokens.Verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.PathValue("id") {
		case "1":
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"order_id":"0001-1","state":"queued"}`))
		default:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"code":"RATE_LIMITED","message":"slow down"}`))
		}
	})
	mux.HandleFunc("POST /api/v1/admin/activities", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin-token" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":"UNAUTHORIZED","message":"admin routes need a token"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"7"}`))
	})
	mux.HandleFunc("GET /api/v1/admin/activities/{id}/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"stock":10,"remaining":2,"reserved":8,"queued":1,"orders_created":4,"orders_paid":3,"orders_cancelled":1,"db_available":3}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"code":"NOT_FOUND","message":"no route ` + r.Method + ` ` + r.URL.Path + `"}`))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestClientAnswers(t *testing.T) {
	ctx := context.Background()
	ts := gateway(t, true)
	c := New(ts.URL, Options{AdminToken: "admin-token"})
	t.Cleanup(c.Close)

	tok, err := c.Token(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Token(ctx, "alice"); again != tok {
		t.Error("demo tokens are not cached per user")
	}
	a := c.Buy(ctx, "1", tok, "r1", "")
	if a.Status != 202 || a.OrderID != "0001-1" || a.State != "queued" || a.Outcome() != "202" {
		t.Errorf("buy = %+v", a)
	}
	a = c.Buy(ctx, "2", tok, "", "")
	if a.Status != 429 || a.Code != "RATE_LIMITED" || a.RetryAfter != 2*time.Second || a.Outcome() != "429 RATE_LIMITED" {
		t.Errorf("limited buy = %+v", a)
	}
	if has, err := c.HasPayRoute(ctx, tok); err != nil || has {
		t.Errorf("HasPayRoute = %v, %v; the fake has no pay route", has, err)
	}
	id, err := c.CreateActivity(ctx, ActivitySpec{Name: "x", Stock: 1, StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), PayTimeoutSeconds: 1})
	if err != nil || id != "7" {
		t.Errorf("CreateActivity = %q, %v", id, err)
	}
	s, err := c.Stats(ctx, "7")
	if err != nil || s.Live() != 7 || s.DBAvailable != 3 {
		t.Errorf("Stats = %+v, %v", s, err)
	}

	bad := New(ts.URL, Options{AdminToken: "wrong"})
	if _, err := bad.CreateActivity(ctx, ActivitySpec{Name: "x"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("CreateActivity with a wrong admin token: %v, want an error with the status", err)
	}
	dead := New("http://127.0.0.1:1", Options{Timeout: time.Second})
	if a := dead.Healthz(ctx); a.Status != 0 || a.Err == nil || a.Outcome() != "error" {
		t.Errorf("unreachable gateway: %+v", a)
	}
}

func TestTokensMintedOrRefused(t *testing.T) {
	ctx := context.Background()
	secret := []byte("api-test-secret-0123456789")
	minted, err := New("http://unused", Options{JWTSecret: secret}).Token(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if user, err := auth.NewTokens(secret).Verify(minted); err != nil || user != "bob" {
		t.Errorf("minted token verifies as %q, %v", user, err)
	}
	ts := gateway(t, false)
	if _, err := New(ts.URL, Options{}).Token(ctx, "bob"); err == nil || !strings.Contains(err.Error(), "demo mode") {
		t.Errorf("demo login on a non-demo gateway: %v, want an error saying why", err)
	}
}

// tokenGateway is a fake of the buy-token route and of a buy route that
// answers with the body it received.
func tokenGateway(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/activities/{id}/buy-token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer user-token" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":"UNAUTHORIZED","message":"user token"}`))
			return
		}
		switch r.PathValue("id") {
		case "1":
			w.Write([]byte(`{"token":"1.alice.1700000120.mac","expires_at":"2023-11-14T22:15:20Z"}`))
		case "2":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"code":"RATE_LIMITED","message":"per-user buy-token"}`))
		case "3":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"code":"NOT_STARTED","message":"buy tokens are issued from the start"}`))
		case "4":
			w.Write([]byte(`{"expires_at":"2023-11-14T22:15:20Z"}`))
		default:
			w.Write([]byte(`not json`))
		}
	})
	mux.HandleFunc("POST /api/v1/activities/{id}/orders", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in map[string]string
		if len(body) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		if in["buy_token"] == "" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"code":"BUY_TOKEN_MISSING","message":"buy_token is required"}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"order_id": in["buy_token"] + "|" + in["request_id"], "state": "queued"})
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestBuyToken(t *testing.T) {
	ctx := context.Background()
	c := New(tokenGateway(t).URL, Options{})
	t.Cleanup(c.Close)

	tok, exp, a := c.BuyToken(ctx, "1", "user-token")
	if tok != "1.alice.1700000120.mac" || !exp.Equal(time.Unix(1700000120, 0)) || a.Status != 200 || a.Err != nil {
		t.Errorf("BuyToken = %q, %s, %+v; want the token and its expiry", tok, exp, a)
	}
	for _, tc := range []struct {
		name, activity, bearer string
		status                 int
		outcome                string
		retryAfter             time.Duration
		decodeErr              bool
	}{
		{"rate limited", "2", "user-token", 429, "429 RATE_LIMITED", 3 * time.Second, false},
		{"before the start", "3", "user-token", 403, "403 NOT_STARTED", 0, false},
		{"no user token", "1", "", 401, "401 UNAUTHORIZED", 0, false},
		{"200 without a token", "4", "user-token", 200, "200", 0, true},
		{"200 that is not JSON", "5", "user-token", 200, "200", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, exp, a := c.BuyToken(ctx, tc.activity, tc.bearer)
			if tok != "" || !exp.IsZero() {
				t.Errorf("token %q expiring %s from a %d; want none", tok, exp, a.Status)
			}
			if a.Status != tc.status || a.Outcome() != tc.outcome || a.RetryAfter != tc.retryAfter || (a.Err != nil) != tc.decodeErr {
				t.Errorf("answer %+v; want %s, Retry-After %s, decode error %v", a, tc.outcome, tc.retryAfter, tc.decodeErr)
			}
		})
	}
}

func TestBuyCarriesItsBuyToken(t *testing.T) {
	ctx := context.Background()
	c := New(tokenGateway(t).URL, Options{})
	t.Cleanup(c.Close)
	for _, tc := range []struct {
		requestID, buyToken string
		wantOrder           string
		wantRefusal         bool
	}{
		{"r1", "bt", "bt|r1", false},
		{"", "bt", "bt|", false},
		{"r1", "", "", true},
		{"", "", "", true},
	} {
		a := c.Buy(ctx, "1", "user-token", tc.requestID, tc.buyToken)
		if a.OrderID != tc.wantOrder || a.IsBuyTokenRefusal() != tc.wantRefusal {
			t.Errorf("Buy(request_id %q, buy_token %q) = %+v; want order %q, refused for its token %v",
				tc.requestID, tc.buyToken, a, tc.wantOrder, tc.wantRefusal)
		}
	}
	for _, tc := range []struct {
		a    Answer
		want bool
	}{
		{Answer{Status: 403, Code: "BUY_TOKEN_EXPIRED"}, true},
		{Answer{Status: 403, Code: "BUY_TOKEN_WRONG_USER"}, true},
		{Answer{Status: 403, Code: "NOT_STARTED"}, false},
		{Answer{Status: 400, Code: "BUY_TOKEN_MISSING"}, false},
	} {
		if got := tc.a.IsBuyTokenRefusal(); got != tc.want {
			t.Errorf("%s.IsBuyTokenRefusal() = %v, want %v", tc.a.Outcome(), got, tc.want)
		}
	}
}

// The hand-built buy body decodes to what encoding/json would have sent.
func TestBuyBodyIsJSON(t *testing.T) {
	for _, tc := range [][2]string{
		{"click-1", ""}, {"", "7.alice.1800000000.abc_-"}, {"r", "t"},
		{`quote"back\slash`, "tab\tnew\nline\x01"}, {"café", "ü"},
	} {
		var got map[string]string
		if err := json.Unmarshal(buyBody(tc[0], tc[1]), &got); err != nil {
			t.Fatalf("buyBody(%q, %q) = %s: %v", tc[0], tc[1], buyBody(tc[0], tc[1]), err)
		}
		want := map[string]string{}
		if tc[0] != "" {
			want["request_id"] = tc[0]
		}
		if tc[1] != "" {
			want["buy_token"] = tc[1]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("buyBody(%q, %q) decodes to %v, want %v", tc[0], tc[1], got, want)
		}
	}
}

// Only a failure on the way is an in-flight failure: the gateway's own
// refusals (a 503 BUSY carries its code) say that nothing was reserved.
func TestInFlightFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Answer
		want bool
	}{
		{"no answer (connection reset)", Answer{Err: io.ErrUnexpectedEOF}, true},
		{"nginx 502: the gateway died with the request", Answer{Status: 502, Body: []byte("<html>502 Bad Gateway</html>")}, true},
		{"nginx 504: the gateway hung", Answer{Status: 504}, true},
		{"a 503 without the gateway's code", Answer{Status: 503}, true},
		{"the gateway's 503 BUSY", Answer{Status: 503, Code: "BUSY"}, false},
		{"the gateway's 503 UNAVAILABLE", Answer{Status: 503, Code: "UNAVAILABLE"}, false},
		{"202", Answer{Status: 202, OrderID: "1"}, false},
		{"410", Answer{Status: 410, Code: "SOLD_OUT"}, false},
		{"500 from the gateway", Answer{Status: 500, Code: "INTERNAL"}, false},
	} {
		if got := tc.a.InFlightFailure(); got != tc.want {
			t.Errorf("%s: InFlightFailure() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDeadLetters(t *testing.T) {
	stored := time.Date(2026, 11, 11, 0, 0, 3, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/v1/admin/dead-letters/orders":
			if r.URL.Query().Get("limit") != "50" {
				t.Errorf("limit %q, want 50", r.URL.Query().Get("limit"))
			}
			fmt.Fprintf(w, `{"topic":"orders","count":3,"messages":[{"seq":7,"id":"m1","key":"42","reason":"write failed: duplicate","attempts":"10","stored_at":%q,"payload":"{}"}]}`, stored.Format(time.RFC3339))
		case "/api/v1/admin/dead-letters/kafka":
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `{"code":"NOT_IMPLEMENTED","message":"the queue keeps no dead letters"}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"VALIDATION","message":"unknown topic"}`)
		}
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, Options{AdminToken: "admin"})
	d, err := c.DeadLetters(context.Background(), "orders", 50)
	if err != nil {
		t.Fatal(err)
	}
	want := DeadLetterTopic{Topic: "orders", Count: 3, Messages: []DeadLetter{{Seq: 7, ID: "m1", Key: "42", Reason: "write failed: duplicate", Attempts: "10", StoredAt: stored, Payload: "{}"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("DeadLetters = %+v, want %+v", d, want)
	}
	if _, err := c.DeadLetters(context.Background(), "kafka", 50); !errors.Is(err, ErrNoDeadLetters) {
		t.Errorf("a gateway without dead letters: %v, want ErrNoDeadLetters", err)
	}
	if _, err := c.DeadLetters(context.Background(), "nope", 50); err == nil || errors.Is(err, ErrNoDeadLetters) || !strings.Contains(err.Error(), "unknown topic") {
		t.Errorf("an unknown topic: %v, want the gateway's error", err)
	}
}
