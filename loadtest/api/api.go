// Package api is the load tester's client of the gateway's v1 HTTP
// contract. It reports answers rather than failing on them: a 429 or a 410
// is a measurement, not an error. Only the setup calls (create an activity,
// read stats) return errors.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
)

// Options configure a Client.
type Options struct {
	// AdminToken is SECKILL_ADMIN_TOKEN (activities, stats).
	AdminToken string
	// JWTSecret, when set, mints user tokens locally (HS256, claim sub);
	// otherwise each user logs in through POST /api/v1/auth/demo-token.
	JWTSecret []byte
	// Conns caps the connections to the gateway (default 512). Requests
	// beyond it wait for a connection; the generator measures latency from
	// the intended send time, so that wait is counted, not hidden.
	Conns int
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// Client speaks the v1 contract to one gateway. Safe for concurrent use.
type Client struct {
	base   string
	http   *http.Client
	admin  string
	tokens *auth.Tokens

	mu   sync.Mutex
	demo map[string]string // user -> token from demo login
}

// New returns a client of the gateway at base (http://host:port).
func New(base string, o Options) *Client {
	if o.Conns <= 0 {
		o.Conns = 512
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy:               nil, // a load test talks to its target, never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     o.Conns,
		MaxIdleConns:        o.Conns,
		MaxIdleConnsPerHost: o.Conns,
		IdleConnTimeout:     time.Minute,
	}
	c := &Client{
		base: strings.TrimRight(base, "/"), admin: o.AdminToken,
		http: &http.Client{Transport: tr, Timeout: o.Timeout},
		demo: map[string]string{},
	}
	if len(o.JWTSecret) > 0 {
		c.tokens = auth.NewTokens(o.JWTSecret)
	}
	return c
}

// Base is the gateway's base URL.
func (c *Client) Base() string { return c.base }

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Answer is one HTTP exchange as the load tester sees it.
type Answer struct {
	Status     int    // 0 when no answer arrived (Err says why)
	Code       string // the error body's code, when there is one
	Message    string
	OrderID    string
	State      string
	RetryAfter time.Duration
	Err        error
	Body       []byte
}

// Outcome is a short label of the answer for histograms and counts:
// "202", "410 SOLD_OUT", "error".
func (a Answer) Outcome() string {
	if a.Status == 0 {
		return "error"
	}
	if a.Code != "" {
		return strconv.Itoa(a.Status) + " " + a.Code
	}
	return strconv.Itoa(a.Status)
}

// Token returns a bearer token for user: minted from the JWT secret, or
// from the demo login (cached per user).
func (c *Client) Token(ctx context.Context, user string) (string, error) {
	if c.tokens != nil {
		return c.tokens.Issue(user, 24*time.Hour)
	}
	c.mu.Lock()
	tok, ok := c.demo[user]
	c.mu.Unlock()
	if ok {
		return tok, nil
	}
	a := c.Do(ctx, http.MethodPost, "/api/v1/auth/demo-token", "", map[string]string{"user_id": user})
	if a.Status != http.StatusOK {
		return "", fmt.Errorf("demo login of %s: %s (without --jwt-secret the gateway must run in demo mode)", user, a.describe())
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("demo login of %s: no token in %q", user, a.Body)
	}
	c.mu.Lock()
	c.demo[user] = out.Token
	c.mu.Unlock()
	return out.Token, nil
}

// BuyToken is GET /api/v1/activities/{id}/buy-token as user (token is the
// user's bearer token): the buy token a buy must carry when the gateway
// runs SECKILL_BUY_TOKEN=required, and when it expires. The token is ""
// unless the answer is a 200 with one (a.Err then says what was wrong
// with the body).
func (c *Client) BuyToken(ctx context.Context, activityID, token string) (string, time.Time, Answer) {
	a := c.Do(ctx, http.MethodGet, "/api/v1/activities/"+activityID+"/buy-token", token, nil)
	if a.Status != http.StatusOK {
		return "", time.Time{}, a
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil {
		a.Err = fmt.Errorf("buy token of activity %s: decode %q: %w", activityID, a.Body, err)
		return "", time.Time{}, a
	}
	if out.Token == "" {
		a.Err = fmt.Errorf("buy token of activity %s: no token in %q", activityID, a.Body)
		return "", time.Time{}, a
	}
	return out.Token, out.ExpiresAt, a
}

// Buy is POST /api/v1/activities/{id}/orders. requestID and buyToken are
// sent when not empty; with neither the body is empty, as an old client's.
func (c *Client) Buy(ctx context.Context, activityID, token, requestID, buyToken string) Answer {
	var body any
	if requestID != "" || buyToken != "" {
		body = buyBody(requestID, buyToken)
	}
	return c.Do(ctx, http.MethodPost, "/api/v1/activities/"+activityID+"/orders", token, body)
}

// buyBody is {"request_id","buy_token"} (each only when set), built by
// hand: the generator sends a buy per simulated click, and encoding a map
// through reflection would be the generator's cost, not the system's.
func buyBody(requestID, buyToken string) json.RawMessage {
	b := make([]byte, 0, 32+len(requestID)+len(buyToken))
	b = append(b, '{')
	if requestID != "" {
		b = append(b, `"request_id":`...)
		b = appendJSONString(b, requestID)
	}
	if buyToken != "" {
		if requestID != "" {
			b = append(b, ',')
		}
		b = append(b, `"buy_token":`...)
		b = appendJSONString(b, buyToken)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// InFlightFailure reports whether the request failed on its way, with no
// answer from the gateway: no HTTP answer at all (a connection refused or
// reset, a timeout), or a 502, 503 or 504 that is not the gateway's own
// JSON error but the load balancer's page (its gateway died or hung with
// the request). Whether the buy was reserved is unknown: unlike a received
// 202 it promises nothing, and unlike a gateway's refusal (410, 429, a 503
// BUSY with its code) it does not say that nothing happened.
func (a Answer) InFlightFailure() bool {
	switch a.Status {
	case 0:
		return true
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return a.Code == ""
	}
	return false
}

// IsBuyTokenRefusal reports whether a is the gateway refusing a buy for
// its buy token (403 BUY_TOKEN_MISSING, _INVALID, _EXPIRED, _WRONG_USER,
// _WRONG_ACTIVITY): nothing was reserved, and a fresh token may help.
func (a Answer) IsBuyTokenRefusal() bool {
	return a.Status == http.StatusForbidden && strings.HasPrefix(a.Code, "BUY_TOKEN_")
}

// Pay is POST /api/v1/orders/{id}/pay.
func (c *Client) Pay(ctx context.Context, orderID, token string) Answer {
	return c.Do(ctx, http.MethodPost, "/api/v1/orders/"+orderID+"/pay", token, nil)
}

// Order is GET /api/v1/orders/{id} as its owner.
type Order struct {
	OrderID     string     `json:"order_id"`
	UserID      string     `json:"user_id"`
	State       string     `json:"state"`
	PayDeadline *time.Time `json:"pay_deadline"`
}

// GetOrder reads an order as its owner.
func (c *Client) GetOrder(ctx context.Context, orderID, token string) (Order, Answer) {
	a := c.Do(ctx, http.MethodGet, "/api/v1/orders/"+orderID, token, nil)
	var o Order
	if a.Status == http.StatusOK {
		if err := json.Unmarshal(a.Body, &o); err != nil {
			a.Err = fmt.Errorf("decode order %s: %w", orderID, err)
		}
	}
	return o, a
}

// Activity is GET /api/v1/activities/{id} (the page's poll).
func (c *Client) Activity(ctx context.Context, activityID string) Answer {
	return c.Do(ctx, http.MethodGet, "/api/v1/activities/"+activityID, "", nil)
}

// Healthz is GET /healthz: the cheapest route, the generator's ceiling.
func (c *Client) Healthz(ctx context.Context) Answer {
	return c.Do(ctx, http.MethodGet, "/healthz", "", nil)
}

// ActivitySpec is what CreateActivity sends.
type ActivitySpec struct {
	Name              string
	Stock             int64
	PriceCents        int64
	StartsAt, EndsAt  time.Time
	PayTimeoutSeconds int64
	// Admission is "open" or "queue" (a waiting room); empty leaves the
	// gateway's default (open).
	Admission string
}

// CreateActivity is POST /api/v1/admin/activities; it returns the id.
func (c *Client) CreateActivity(ctx context.Context, s ActivitySpec) (string, error) {
	body := map[string]any{
		"name": s.Name, "stock": s.Stock, "price_cents": s.PriceCents,
		"starts_at": s.StartsAt.UTC().Format(time.RFC3339), "ends_at": s.EndsAt.UTC().Format(time.RFC3339),
		"pay_timeout_seconds": s.PayTimeoutSeconds,
	}
	if s.Admission != "" {
		body["admission"] = s.Admission
	}
	a := c.Do(ctx, http.MethodPost, "/api/v1/admin/activities", c.admin, body)
	if a.Status != http.StatusCreated {
		return "", fmt.Errorf("create activity %q: %s", s.Name, a.describe())
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("create activity %q: no id in %q", s.Name, a.Body)
	}
	return out.ID, nil
}

// Stats is GET /api/v1/admin/activities/{id}/stats.
type Stats struct {
	Stock           int64 `json:"stock"`
	Remaining       int64 `json:"remaining"`
	Reserved        int64 `json:"reserved"`
	Queued          int64 `json:"queued"`
	OrdersCreated   int64 `json:"orders_created"`
	OrdersPaid      int64 `json:"orders_paid"`
	OrdersCancelled int64 `json:"orders_cancelled"`
	DBAvailable     int64 `json:"db_available"`
}

// Live is the orders holding a unit.
func (s Stats) Live() int64 { return s.OrdersCreated + s.OrdersPaid }

// Stats reads the admin stats of an activity.
func (c *Client) Stats(ctx context.Context, activityID string) (Stats, error) {
	a := c.Do(ctx, http.MethodGet, "/api/v1/admin/activities/"+activityID+"/stats", c.admin, nil)
	var s Stats
	if a.Status != http.StatusOK {
		return s, fmt.Errorf("stats of activity %s: %s", activityID, a.describe())
	}
	if err := json.Unmarshal(a.Body, &s); err != nil {
		return s, fmt.Errorf("stats of activity %s: decode %q: %w", activityID, a.Body, err)
	}
	return s, nil
}

// Metrics reads the gateway's /metrics (an all-in-one process serves it
// on its API; a production gateway on a listener of its own: MetricsFrom).
func (c *Client) Metrics(ctx context.Context) (Metrics, error) {
	return c.MetricsFrom(ctx, c.base+"/metrics")
}

// MetricsFrom reads the Prometheus text at url: a process's own metrics
// listener (SECKILL_METRICS_ADDR), such as a worker's behind a load
// balancer that serves none.
func (c *Client) MetricsFrom(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: status %d", url, resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// DeadLetter is one message a consumer gave up on (GET
// /api/v1/admin/dead-letters/{topic}).
type DeadLetter struct {
	Seq      uint64    `json:"seq"`
	ID       string    `json:"id"`
	Key      string    `json:"key,omitempty"`
	Reason   string    `json:"reason"`
	Attempts string    `json:"attempts"`
	StoredAt time.Time `json:"stored_at"`
	Payload  string    `json:"payload"`
}

// DeadLetterTopic is a topic's dead letters: how many its dead-letter
// topic holds, and the oldest of them.
type DeadLetterTopic struct {
	Topic    string       `json:"topic"`
	Count    int          `json:"count"`
	Messages []DeadLetter `json:"messages"`
}

// ErrNoDeadLetters: the gateway keeps no dead letters it can list (its
// queue is not NATS: 501, or an older gateway without the route: 404).
var ErrNoDeadLetters = errors.New("the gateway lists no dead letters")

// DeadLetters lists up to limit dead letters of topic, oldest first (an
// admin route).
func (c *Client) DeadLetters(ctx context.Context, topic string, limit int) (DeadLetterTopic, error) {
	a := c.Do(ctx, http.MethodGet, "/api/v1/admin/dead-letters/"+topic+"?limit="+strconv.Itoa(limit), c.admin, nil)
	var d DeadLetterTopic
	switch {
	case a.Status == http.StatusNotImplemented, a.Status == http.StatusNotFound && a.Code == "":
		return d, fmt.Errorf("dead letters of %s: %w (%s)", topic, ErrNoDeadLetters, a.describe())
	case a.Status != http.StatusOK:
		return d, fmt.Errorf("dead letters of %s: %s", topic, a.describe())
	}
	if err := json.Unmarshal(a.Body, &d); err != nil {
		return d, fmt.Errorf("dead letters of %s: decode %q: %w", topic, a.Body, err)
	}
	return d, nil
}

// Do sends one request and reads the whole answer. body, when not nil, is
// sent as JSON.
func (c *Client) Do(ctx context.Context, method, path, bearer string, body any) Answer {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case json.RawMessage: // already encoded
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(body)
		if err != nil {
			return Answer{Err: fmt.Errorf("%s %s: encode body: %w", method, path, err)}
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return Answer{Err: fmt.Errorf("%s %s: %w", method, path, err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Answer{Err: fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Body: data}
	if err != nil {
		a.Err = fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			a.RetryAfter = time.Duration(n) * time.Second
		}
	}
	var fields struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		OrderID string `json:"order_id"`
		State   string `json:"state"`
	}
	if len(data) > 0 && data[0] == '{' && json.Unmarshal(data, &fields) == nil {
		a.Code, a.Message, a.OrderID, a.State = fields.Code, fields.Message, fields.OrderID, fields.State
	}
	return a
}

func (a Answer) describe() string {
	if a.Err != nil {
		return a.Err.Error()
	}
	msg := strings.TrimSpace(string(a.Body))
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return fmt.Sprintf("status %d: %s", a.Status, msg)
}

// HasPayRoute reports whether the gateway serves the pay endpoint: a pay
// of an order that cannot exist answers 404 "order not found" when it
// does, and the router's "no route" 404 when it does not.
func (c *Client) HasPayRoute(ctx context.Context, token string) (bool, error) {
	a := c.Pay(ctx, "0000000000000000000-0", token)
	if a.Err != nil {
		return false, a.Err
	}
	if a.Status == http.StatusNotFound && strings.HasPrefix(a.Message, "no route") {
		return false, nil
	}
	return a.Status != http.StatusMethodNotAllowed, nil
}
