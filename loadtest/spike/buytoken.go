package spike

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
)

// BuyTokenSetting is the gateway's SECKILL_BUY_TOKEN: whether a buy must
// carry a buy token from GET /activities/{id}/buy-token.
type BuyTokenSetting string

const (
	// BuyTokenRequired is the production default: the buy path does not
	// exist before the start, and a buy without a valid token is refused
	// 403 at the door.
	BuyTokenRequired BuyTokenSetting = "required"
	// BuyTokenOff lets buys in without a token (the demo's setting).
	BuyTokenOff BuyTokenSetting = "off"
)

// envBuyToken is the gateway setting --buy-token stands for.
const envBuyToken = "SECKILL_BUY_TOKEN"

// epBuyToken is the token fetch as the recorder names it: a request of
// the spike like any other, so the physical limit counts it.
const epBuyToken = "buy-token"

// tokenDoor is the crowd's side of the buy-token door, as the sale page
// plays it: a user whose page was open during the countdown fetches the
// token at the start instant (the page's next clock tick, within 250 ms);
// anyone else fetches it with their first click. Both reuse it for retries
// and double clicks. Safe for concurrent use.
type tokenDoor struct {
	c *crowd

	mu    sync.Mutex
	users map[string]*userToken
}

// userToken is one user's buy token and the buys waiting for it.
type userToken struct {
	token    string // "" until fetched, and while a fresh one is fetched
	fetching bool
	gaveUp   bool // the fetch failed for good: the page shows an error, no buy
	// fetches is how many fetches began: the first, and at most one more
	// after the gateway refused the token.
	fetches int
	waiters []func(token string, intended time.Time)
}

func newTokenDoor(c *crowd) *tokenDoor {
	return &tokenDoor{c: c, users: map[string]*userToken{}}
}

func (d *tokenDoor) user(id string) *userToken {
	t := d.users[id]
	if t == nil {
		t = &userToken{}
		d.users[id] = t
	}
	return t
}

// with calls buy with user's token: at once (with intended) when the user
// has one, otherwise once it arrived (intended is then its arrival, when
// the page sends the buy). The first call fetches it. buy is never called
// when the user gave up on the token.
func (d *tokenDoor) with(user string, intended time.Time, buy func(token string, intended time.Time)) {
	d.mu.Lock()
	t := d.user(user)
	switch {
	case t.token != "":
		tok := t.token
		d.mu.Unlock()
		buy(tok, intended)
		return
	case t.gaveUp:
		d.mu.Unlock()
		return
	case t.fetching:
		t.waiters = append(t.waiters, buy)
		d.mu.Unlock()
		return
	}
	t.fetching = true
	t.fetches++
	t.waiters = append(t.waiters, buy)
	d.mu.Unlock()
	d.fetch(user, 0, intended)
}

// prefetch starts fetching user's token without a buy waiting for it: the
// sale page open at the start instant asks for its token then, before
// its user clicks.
func (d *tokenDoor) prefetch(user string, intended time.Time) {
	d.mu.Lock()
	t := d.user(user)
	if t.token != "" || t.fetching || t.gaveUp {
		d.mu.Unlock()
		return
	}
	t.fetching = true
	t.fetches++
	d.mu.Unlock()
	d.fetch(user, 0, intended)
}

// refresh answers a buy refused for its token (stale): the user fetches a
// fresh one, once, and buy retries with it. A refusal of a token another
// click already replaced just takes the new one.
func (d *tokenDoor) refresh(user, stale string, buy func(token string, intended time.Time)) {
	d.mu.Lock()
	t := d.user(user)
	switch {
	case t.token != "" && t.token != stale:
		tok := t.token
		d.mu.Unlock()
		buy(tok, time.Now())
		return
	case t.fetching:
		t.waiters = append(t.waiters, buy)
		d.mu.Unlock()
		return
	case t.gaveUp || t.fetches >= 2:
		d.mu.Unlock()
		return
	}
	t.token = ""
	t.fetching = true
	t.fetches++
	t.waiters = append(t.waiters, buy)
	d.mu.Unlock()
	d.fetch(user, 0, time.Now())
}

// fetch asks for user's token; a 429 (with its Retry-After), a 503, no
// answer or a NOT_STARTED (the page's clock ran early) is retried like a
// buy is. On success the waiting buys leave at once.
func (d *tokenDoor) fetch(user string, attempt int, intended time.Time) {
	c := d.c
	sent := time.Now()
	tok, _, a := c.r.client.BuyToken(c.r.ctx, c.activity, c.tokens[user])
	c.r.rec.Record(epBuyToken, a.Outcome(), a.Status, intended, sent, time.Now())
	if tok != "" {
		c.r.ledger.gotBuyToken(user)
		d.mu.Lock()
		t := d.users[user]
		t.token, t.fetching = tok, false
		waiters := t.waiters
		t.waiters = nil
		d.mu.Unlock()
		now := time.Now()
		for _, buy := range waiters {
			c.r.exec.at(now, func(at time.Time) { buy(tok, at) })
		}
		return
	}
	if retryableToken(a) && attempt < c.cfg.Retries {
		c.r.exec.at(time.Now().Add(backoff(c.cfg.RetryBackoff, attempt, a.RetryAfter)), func(next time.Time) {
			d.fetch(user, attempt+1, next)
		})
		return
	}
	d.mu.Lock()
	t := d.users[user]
	t.fetching, t.gaveUp, t.waiters = false, true, nil
	d.mu.Unlock()
	c.r.log.Debug("no buy token: the user gives up", "user", user, "last", a.Outcome(), "err", a.Err)
}

// retryableToken reports whether a failed token fetch is worth another
// try: the answers a buy is retried on, and NOT_STARTED.
func retryableToken(a api.Answer) bool {
	switch a.Status {
	case 0, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusForbidden:
		return a.Code == "NOT_STARTED"
	}
	return false
}

// fetchBuyToken gets user's token for the resale (fresh users after the
// spike): retried a few times on the answers worth retrying.
func (r *runner) fetchBuyToken(activity, user, userToken string) (string, error) {
	var last api.Answer
	for attempt := 0; attempt < 20 && r.ctx.Err() == nil; attempt++ {
		tok, _, a := r.client.BuyToken(r.ctx, activity, userToken)
		if tok != "" {
			r.ledger.gotBuyToken(user)
			return tok, nil
		}
		last = a
		if !retryableToken(a) {
			break
		}
		time.Sleep(max(a.RetryAfter, 300*time.Millisecond))
	}
	if err := r.ctx.Err(); err != nil {
		return "", fmt.Errorf("buy token of %s: %w", user, err)
	}
	if last.Err != nil {
		return "", fmt.Errorf("buy token of %s: %w", user, last.Err)
	}
	return "", fmt.Errorf("buy token of %s: %s", user, last.Outcome())
}
