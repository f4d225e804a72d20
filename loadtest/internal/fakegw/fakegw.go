// Package fakegw is a small in-memory gateway speaking the parts of the v1
// contract the load tester uses, without the order lifecycle (no pay
// route). Tests use it to make the tester meet a gateway that breaks an
// invariant on purpose (Oversell), which the real one never does.
package fakegw

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
)

// Gateway is the fake. Its zero value is not usable: call New.
type Gateway struct {
	// Oversell sells this many units beyond the stock.
	Oversell int64
	// RefuseFirst refuses each user's first RefuseFirst buys with
	// RefuseStatus (503 BUSY by default, or 429 RATE_LIMITED) and
	// Retry-After: RetryAfter seconds (default 1), as a saturated gateway
	// does; nothing is sold for them.
	RefuseFirst  int
	RefuseStatus int
	RetryAfter   int
	// RequireBuyToken refuses a buy without a valid buy token (403
	// BUY_TOKEN_*), as SECKILL_BUY_TOKEN=required does. Tokens are issued
	// from the start either way.
	RequireBuyToken bool
	// ExpireFirstToken answers every buy carrying a valid token 403
	// BUY_TOKEN_EXPIRED until its user fetched a second one, as if the
	// first had expired (with RequireBuyToken). A token is a function of
	// user, activity and expiry second, so the first cannot be told from
	// a second one fetched within the same second: the count decides.
	ExpireFirstToken bool
	// LimitTokenFetches answers each user's first LimitTokenFetches
	// buy-token requests 429 with Retry-After: RetryAfter seconds.
	LimitTokenFetches int

	// down: buys are answered as a load balancer answers for a gateway
	// that died with them (SetDown).
	down        bool
	reserveDown bool

	admin     string
	tokens    *auth.Tokens
	buyTokens *auth.BuyTokens
	mux       *http.ServeMux

	mu       sync.Mutex
	acts     map[string]*activity
	buys     map[string][]Buy // user -> buys in arrival order
	nextID   int
	seq      int
	issued   int
	refused  map[string]int         // reason -> buys refused for their token
	fetches  map[string][]time.Time // user -> buy-token requests
	issuedTo map[string]int         // user -> buy tokens issued
}

type activity struct {
	stock    int64
	sold     int64
	starts   time.Time
	byUser   map[string]string // user -> order id
	orders   map[string]string // order id -> user
	requests int
}

// New returns a fake that accepts admin and the user tokens of secret.
func New(admin string, secret []byte) *Gateway {
	g := &Gateway{admin: admin, tokens: auth.NewTokens(secret), buyTokens: auth.NewBuyTokens(secret, 0),
		acts: map[string]*activity{}, buys: map[string][]Buy{}, refused: map[string]int{},
		fetches: map[string][]time.Time{}, issuedTo: map[string]int{}, mux: http.NewServeMux()}
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	g.mux.HandleFunc("GET /metrics", g.metrics)
	g.mux.HandleFunc("POST /api/v1/admin/activities", g.create)
	g.mux.HandleFunc("GET /api/v1/admin/activities/{id}/stats", g.stats)
	g.mux.HandleFunc("GET /api/v1/activities/{id}", g.activity)
	g.mux.HandleFunc("GET /api/v1/activities/{id}/buy-token", g.buyToken)
	g.mux.HandleFunc("POST /api/v1/activities/{id}/orders", g.buy)
	g.mux.HandleFunc("GET /api/v1/orders/{id}", g.order)
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "NOT_FOUND", "no route "+r.Method+" "+r.URL.Path)
	})
	return g
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// SetDown makes every buy fail in flight, as behind a load balancer whose
// gateway was killed: a 502 page that is not the gateway's JSON. With
// reserve, the buy is taken first (a unit sold, an order made) and the
// answer lost, as when the gateway dies after reserving.
func (g *Gateway) SetDown(down, reserve bool) {
	g.mu.Lock()
	g.down, g.reserveDown = down, reserve
	g.mu.Unlock()
}

// badGateway is what nginx answers for a gateway that died with the
// request.
func badGateway(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprint(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>")
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func (g *Gateway) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	u, err := g.tokens.Verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if err != nil {
		fail(w, http.StatusUnauthorized, "UNAUTHORIZED", err.Error())
		return "", false
	}
	return u, true
}

func (g *Gateway) create(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+g.admin {
		fail(w, http.StatusUnauthorized, "UNAUTHORIZED", "admin token")
		return
	}
	var in struct {
		Stock    int64  `json:"stock"`
		StartsAt string `json:"starts_at"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	starts, err := time.Parse(time.RFC3339, in.StartsAt)
	if err != nil {
		fail(w, http.StatusBadRequest, "VALIDATION", "starts_at")
		return
	}
	g.mu.Lock()
	g.nextID++
	id := strconv.Itoa(g.nextID)
	g.acts[id] = &activity{stock: in.Stock, starts: starts, byUser: map[string]string{}, orders: map[string]string{}}
	g.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"id": id})
}

func (g *Gateway) get(w http.ResponseWriter, r *http.Request) (*activity, bool) {
	g.mu.Lock()
	a := g.acts[r.PathValue("id")]
	g.mu.Unlock()
	if a == nil {
		fail(w, http.StatusNotFound, "NOT_FOUND", "activity")
	}
	return a, a != nil
}

func (g *Gateway) activity(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.get(w, r); ok {
		w.Write([]byte(`{"state":"active"}`))
	}
}

// buyToken issues a buy token from the activity's start.
func (g *Gateway) buyToken(w http.ResponseWriter, r *http.Request) {
	user, ok := g.user(w, r)
	if !ok {
		return
	}
	a, ok := g.get(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fetches[user] = append(g.fetches[user], time.Now())
	if len(g.fetches[user]) <= g.LimitTokenFetches {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, g.RetryAfter)))
		fail(w, http.StatusTooManyRequests, "RATE_LIMITED", "too many requests (per-user buy-token); retry later")
		return
	}
	if time.Now().Before(a.starts) {
		fail(w, http.StatusForbidden, "NOT_STARTED", "buy tokens are issued from the start")
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	tok, exp, err := g.buyTokens.Issue(user, id)
	if err != nil {
		fail(w, http.StatusInternalServerError, "INTERNAL", err.Error())
		return
	}
	g.issued++
	g.issuedTo[user]++
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_at": exp.UTC()})
}

// buyTokenRefusals are the refusals of a buy's token, as the gateway
// answers and counts them.
var buyTokenRefusals = []struct {
	err          error
	code, reason string
}{
	{auth.ErrBuyTokenMissing, "BUY_TOKEN_MISSING", "missing"},
	{auth.ErrBuyTokenInvalid, "BUY_TOKEN_INVALID", "invalid"},
	{auth.ErrBuyTokenExpired, "BUY_TOKEN_EXPIRED", "expired"},
	{auth.ErrBuyTokenUser, "BUY_TOKEN_WRONG_USER", "wrong_user"},
	{auth.ErrBuyTokenActivity, "BUY_TOKEN_WRONG_ACTIVITY", "wrong_activity"},
}

// buy sells to every new user while stock (plus Oversell) lasts and
// writes the order at once (state created).
func (g *Gateway) buy(w http.ResponseWriter, r *http.Request) {
	user, ok := g.user(w, r)
	if !ok {
		return
	}
	a, ok := g.get(w, r)
	if !ok {
		return
	}
	var in struct {
		RequestID string `json:"request_id"`
		BuyToken  string `json:"buy_token"`
	}
	json.NewDecoder(r.Body).Decode(&in) // an empty body is a buy without a token
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	tokenErr := g.buyTokens.Verify(in.BuyToken, user, id)
	g.mu.Lock()
	defer g.mu.Unlock()
	if tokenErr == nil && g.ExpireFirstToken && g.issuedTo[user] < 2 {
		tokenErr = auth.ErrBuyTokenExpired
	}
	if g.down && !g.reserveDown {
		badGateway(w)
		return
	}
	a.requests++
	status := g.RefuseStatus
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	if len(g.buys[user]) < g.RefuseFirst {
		g.buys[user] = append(g.buys[user], Buy{At: time.Now(), Status: status})
		w.Header().Set("Retry-After", strconv.Itoa(max(1, g.RetryAfter)))
		if status == http.StatusTooManyRequests {
			fail(w, status, "RATE_LIMITED", "too many requests (per-user limit); retry later")
		} else {
			fail(w, status, "BUSY", "the gateway is saturated; nothing was reserved, try again")
		}
		return
	}
	if tokenErr != nil && g.RequireBuyToken {
		for _, rf := range buyTokenRefusals {
			if errors.Is(tokenErr, rf.err) {
				g.refused[rf.reason]++
				g.buys[user] = append(g.buys[user], Buy{At: time.Now(), Status: http.StatusForbidden, RequestID: in.RequestID})
				fail(w, http.StatusForbidden, rf.code, tokenErr.Error())
				return
			}
		}
	}
	g.buys[user] = append(g.buys[user], Buy{At: time.Now(), Status: http.StatusAccepted, RequestID: in.RequestID, Token: tokenErr == nil})
	switch {
	case g.down && a.byUser[user] != "":
		badGateway(w) // down with reserve: only a new order is taken
	case time.Now().Before(a.starts):
		fail(w, http.StatusForbidden, "NOT_STARTED", "not started")
	case a.byUser[user] != "":
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"order_id": a.byUser[user], "state": "created"})
	case a.sold >= a.stock+g.Oversell:
		fail(w, http.StatusGone, "SOLD_OUT", "sold out")
	default:
		g.seq++
		id := fmt.Sprintf("%019d-%s", g.seq, r.PathValue("id"))
		a.sold++
		a.byUser[user], a.orders[id] = id, user
		if g.down {
			badGateway(w) // reserved, and the answer lost
			return
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"order_id": id, "state": "created"})
	}
}

// Buy is one buy request as the fake saw it. Status is 202 for every buy
// it did not refuse (whatever it then answered), 403 for a buy refused
// for its token; Token says whether the buy carried a valid buy token.
type Buy struct {
	At        time.Time
	Status    int
	RequestID string
	Token     bool
}

// Buys returns every user's buys, in arrival order.
func (g *Gateway) Buys() map[string][]Buy {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]Buy, len(g.buys))
	for u, bs := range g.buys {
		out[u] = append([]Buy(nil), bs...)
	}
	return out
}

// Fetches returns when each user asked for a buy token, in order.
func (g *Gateway) Fetches() map[string][]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]time.Time, len(g.fetches))
	for u, ts := range g.fetches {
		out[u] = append([]time.Time(nil), ts...)
	}
	return out
}

func (g *Gateway) order(w http.ResponseWriter, r *http.Request) {
	user, ok := g.user(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	_, aid, _ := strings.Cut(id, "-")
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.acts[aid]; a != nil && a.orders[id] == user {
		json.NewEncoder(w).Encode(map[string]any{"order_id": id, "user_id": user, "state": "created"})
		return
	}
	fail(w, http.StatusNotFound, "NOT_FOUND", "order")
}

// stats reports the sold units honestly, however many that is.
func (g *Gateway) stats(w http.ResponseWriter, r *http.Request) {
	a, ok := g.get(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]int64{
		"stock": a.stock, "remaining": a.stock - a.sold, "reserved": a.sold, "queued": 0,
		"orders_created": a.sold, "orders_paid": 0, "orders_cancelled": 0, "db_available": a.stock - a.sold,
	})
}

func (g *Gateway) metrics(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sold, reqs int64
	for _, a := range g.acts {
		sold += a.sold
		reqs += int64(a.requests)
	}
	fmt.Fprintf(w, "seckill_reserve_total{outcome=\"reserved\"} %d\nseckill_orders_written_total{result=\"created\"} %d\nseckill_queue_depth 0\nseckill_queue_oldest_age_seconds 0\n", sold, sold)
	fmt.Fprintf(w, "seckill_buy_tokens_issued_total %d\n", g.issued)
	for _, rf := range buyTokenRefusals {
		fmt.Fprintf(w, "seckill_buy_token_refused_total{reason=%q} %d\n", rf.reason, g.refused[rf.reason])
	}
}
