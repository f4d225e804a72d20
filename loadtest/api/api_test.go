package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	a := c.Buy(ctx, "1", tok, "r1")
	if a.Status != 202 || a.OrderID != "0001-1" || a.State != "queued" || a.Outcome() != "202" {
		t.Errorf("buy = %+v", a)
	}
	a = c.Buy(ctx, "2", tok, "")
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
