package spike

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
)

// Endpoints as the recorder names them.
const (
	epBuy   = "buy"
	epPage  = "page"
	epPay   = "pay"
	epOrder = "order"
)

// ledger is what the generator learned from the answers: the audit's
// client-side evidence. Safe for concurrent use.
type ledger struct {
	mu            sync.Mutex
	accepted      map[string]string   // order id -> user
	requestOrders map[string][]string // user/request_id -> distinct order ids
	firstOrder    map[string]string   // user -> first order id won
	tried         map[string]bool     // users whose buy got past the rate limits and the buy-token check
	pays          map[string]audit.PayAnswer
	buyTokens     map[string]bool             // users that got a buy token
	byKind        map[string]map[string]int64 // kind of user -> buy outcome -> answers
	// inFlight are the buys that failed on their way: no promise either
	// way (api.Answer.InFlightFailure).
	inFlight []audit.InFlight
	// acceptedAt is when each 202 arrived: "202s flow again" after a fault.
	acceptedAt []time.Time
	// answers are each user's first buy outcomes, to explain an order
	// that no answer promised; nil unless kept (chaos runs: a million
	// users' answers would be the generator's largest table).
	answers map[string][]string
}

// maxUserAnswers is how many outcomes the ledger keeps per user: enough to
// explain one user's order, bounded for a million users.
const maxUserAnswers = 6

func newLedger() *ledger {
	return &ledger{
		accepted: map[string]string{}, requestOrders: map[string][]string{},
		firstOrder: map[string]string{}, tried: map[string]bool{}, pays: map[string]audit.PayAnswer{},
		buyTokens: map[string]bool{}, byKind: map[string]map[string]int64{},
	}
}

// keepAnswers has the ledger keep each user's first answers.
func (l *ledger) keepAnswers() {
	l.mu.Lock()
	l.answers = map[string][]string{}
	l.mu.Unlock()
}

// buyAnswer notes a buy answer; it reports whether this is the user's
// first won order (then the user goes on to its pay plan).
func (l *ledger) buyAnswer(user, requestID string, a api.Answer) (first bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.answers != nil && len(l.answers[user]) < maxUserAnswers {
		l.answers[user] = append(l.answers[user], a.Outcome())
	}
	if a.InFlightFailure() {
		// No answer from the system: whether it reserved is unknown, so
		// it neither counts as a try nor promises anything.
		l.inFlight = append(l.inFlight, audit.InFlight{User: user, RequestID: requestID, Outcome: a.Outcome()})
		return false
	}
	// A user refused at the buy-token door never reached the stock: a
	// bot does not count towards "enough users tried" (invariant 2).
	if a.Status != http.StatusTooManyRequests && !a.IsBuyTokenRefusal() {
		l.tried[user] = true
	}
	if a.Status != http.StatusAccepted || a.OrderID == "" {
		return false
	}
	l.acceptedAt = append(l.acceptedAt, now)
	l.accepted[a.OrderID] = user
	if requestID != "" {
		key := user + "/" + requestID
		ids := l.requestOrders[key]
		known := false
		for _, id := range ids {
			known = known || id == a.OrderID
		}
		if !known {
			l.requestOrders[key] = append(ids, a.OrderID)
		}
	}
	if _, ok := l.firstOrder[user]; ok {
		return false
	}
	l.firstOrder[user] = a.OrderID
	return true
}

// gotBuyToken notes that user holds a buy token.
func (l *ledger) gotBuyToken(user string) {
	l.mu.Lock()
	l.buyTokens[user] = true
	l.mu.Unlock()
}

// kindAnswer tallies a spike buy's outcome by the kind of its user.
func (l *ledger) kindAnswer(kind scenario.Kind, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.byKind[kind.String()]
	if m == nil {
		m = map[string]int64{}
		l.byKind[kind.String()] = m
	}
	m[outcome]++
}

// door is what the buy-token door did as the generator saw it: users
// holding a token, and orders accepted for users that held none.
func (l *ledger) door() (withToken, acceptedWithout int, byKind map[string]map[string]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, user := range l.accepted {
		if !l.buyTokens[user] {
			acceptedWithout++
		}
	}
	byKind = make(map[string]map[string]int64, len(l.byKind))
	for k, m := range l.byKind {
		byKind[k] = make(map[string]int64, len(m))
		for o, n := range m {
			byKind[k][o] = n
		}
	}
	return len(l.buyTokens), acceptedWithout, byKind
}

func (l *ledger) payAnswer(orderID string, p audit.PayAnswer) {
	l.mu.Lock()
	l.pays[orderID] = p
	l.mu.Unlock()
}

// failures returns the in-flight failures, the 202s' arrival times (in
// order) and each user's first answers.
func (l *ledger) failures() ([]audit.InFlight, []time.Time, map[string][]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := slices.Clone(l.acceptedAt)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	answers := make(map[string][]string, len(l.answers))
	for u, a := range l.answers {
		answers[u] = slices.Clone(a)
	}
	return slices.Clone(l.inFlight), at, answers
}

func (l *ledger) snapshot() (accepted map[string]string, requestOrders map[string][]string, pays map[string]audit.PayAnswer, tried int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	accepted = make(map[string]string, len(l.accepted))
	for k, v := range l.accepted {
		accepted[k] = v
	}
	requestOrders = make(map[string][]string, len(l.requestOrders))
	for k, v := range l.requestOrders {
		requestOrders[k] = append([]string(nil), v...)
	}
	pays = make(map[string]audit.PayAnswer, len(l.pays))
	for k, v := range l.pays {
		pays[k] = v
	}
	return accepted, requestOrders, pays, len(l.tried)
}

// crowd plays a plan against one activity.
type crowd struct {
	r         *runner
	activity  string
	t0        time.Time
	tokens    map[string]string
	lifecycle bool
	cfg       scenario.Config
	// door fetches and holds the users' buy tokens; nil when the gateway
	// does not require them (--buy-token off).
	door *tokenDoor
}

// schedule puts every user's first actions on the executor.
func (c *crowd) schedule(plan scenario.Plan) {
	for i := range plan.Users {
		u := &plan.Users[i]
		for _, v := range u.PageViews {
			c.r.exec.at(c.t0.Add(v), func(intended time.Time) { c.page(intended) })
		}
		switch u.Kind {
		case scenario.Bot:
			n := int(c.cfg.BotRate * c.cfg.BotDuration.Seconds())
			for k := range n {
				at := c.t0.Add(u.Arrive + time.Duration(float64(k)/c.cfg.BotRate*float64(time.Second)))
				// Bots skip the token: they fire at the buy route
				// directly, as scripts do, and meet the door.
				if c.cfg.BotOperators > 0 {
					c.r.exec.at(at, func(intended time.Time) { c.operatedBot(u, intended) })
					continue
				}
				c.r.exec.at(at, func(intended time.Time) { c.buy(u, "", "", 0, intended, false) })
			}
		default:
			// Humans and late users send a request_id (as the buyer page
			// does): a retry or a double click must get the same order back.
			reqID := "click-" + u.ID
			if u.NoRequestID {
				reqID = ""
			}
			// The page open during the countdown asks for the buy token
			// at its first clock tick after the start (4 a second), before
			// its user clicks; a page opened later asks with the click.
			if c.door != nil && len(u.PageViews) > 0 && u.PageViews[0] < 0 {
				if at := time.Duration(rand.Int64N(int64(250 * time.Millisecond))); at < u.Arrive {
					c.r.exec.at(c.t0.Add(at), func(intended time.Time) { c.door.prefetch(u.ID, intended) })
				}
			}
			c.r.exec.at(c.t0.Add(u.Arrive), func(intended time.Time) { c.click(u, reqID, 0, intended) })
			if u.DoubleClick > 0 {
				c.r.exec.at(c.t0.Add(u.Arrive+u.DoubleClick), func(intended time.Time) { c.click(u, reqID, 0, intended) })
			}
		}
	}
}

func (c *crowd) page(intended time.Time) {
	sent := time.Now()
	a := c.r.client.Activity(c.r.ctx, c.activity)
	c.r.rec.Record(epPage, a.Outcome(), a.Status, intended, sent, time.Now())
}

// click is a human's or late user's buy (a first click, a double click or
// a retry): with buy tokens required it carries the user's token, fetched
// on the first click.
func (c *crowd) click(u *scenario.User, reqID string, attempt int, intended time.Time) {
	if c.door == nil {
		c.buy(u, reqID, "", attempt, intended, true)
		return
	}
	c.door.with(u.ID, intended, func(tok string, at time.Time) { c.buy(u, reqID, tok, attempt, at, true) })
}

// buy sends one buy; on 429 and 503 (and no answer) it retries with
// backoff when the user retries at all (humans do, bots do not). A buy
// refused for its token gets a fresh token, once, and is sent again with
// the same request_id.
func (c *crowd) buy(u *scenario.User, reqID, buyToken string, attempt int, intended time.Time, retries bool) {
	sent := time.Now()
	a := c.r.client.Buy(c.r.ctx, c.activity, c.tokens[u.ID], reqID, buyToken)
	c.r.rec.Record(epBuy, a.Outcome(), a.Status, intended, sent, time.Now())
	c.r.ledger.kindAnswer(u.Kind, a.Outcome())
	if c.r.ledger.buyAnswer(u.ID, reqID, a) {
		c.afterWin(u, a.OrderID)
	}
	c.noteFinal(u, a, retries && attempt >= c.cfg.Retries)
	if retries && c.door != nil && a.IsBuyTokenRefusal() {
		c.door.refresh(u.ID, buyToken, func(tok string, at time.Time) { c.buy(u, reqID, tok, attempt, at, true) })
		return
	}
	// A buy lost on its way (no answer, the load balancer's 502 or 504)
	// is retried as the buyer page retries it, with the same request_id.
	retryable := a.InFlightFailure() || a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable
	if retries && retryable && attempt < c.cfg.Retries {
		wait := backoff(c.cfg.RetryBackoff, attempt, a.RetryAfter)
		c.r.exec.at(time.Now().Add(wait), func(next time.Time) { c.click(u, reqID, attempt+1, next) })
	}
}

// noteFinal records what a buy answer means for its person: a 202 or a
// 410 is final; so is a refusal that no retry mends; a busy answer is the
// last word only once the person stops retrying (last).
func (c *crowd) noteFinal(u *scenario.User, a api.Answer, last bool) {
	now := time.Now()
	switch {
	case a.Status == http.StatusAccepted:
		c.r.ppl.final(u.ID, report.FinalWon, now, a.OrderID)
	case a.Status == http.StatusGone:
		c.r.ppl.final(u.ID, report.FinalSoldOut, now, "")
	case a.InFlightFailure() || a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable:
		if last || u.Kind == scenario.Bot {
			c.r.ppl.final(u.ID, report.FinalGaveUp, now, "")
		}
	case a.IsBuyTokenRefusal() && u.Kind != scenario.Bot:
		// The page fetches a fresh token and buys again.
	default:
		c.r.ppl.final(u.ID, report.FinalOther, now, "")
	}
}

// operatedBot is one shot of a bot account held by an operator: with the
// buy token its account can fetch (as the front door asks), until the
// account has a definite answer.
func (c *crowd) operatedBot(u *scenario.User, intended time.Time) {
	if c.r.ppl.settled(u.ID) {
		return
	}
	if c.door == nil {
		c.buy(u, "", "", 0, intended, false)
		return
	}
	c.door.with(u.ID, intended, func(tok string, at time.Time) { c.buy(u, "", tok, 0, at, false) })
}

// backoff is exponential with full jitter, but never shorter than the
// server's Retry-After: when that is longer it wins, plus up to a quarter
// of it (at most 1s) of jitter, as the buyer page does, so a crowd told
// "1" does not come back in one instant.
func backoff(base time.Duration, attempt int, retryAfter time.Duration) time.Duration {
	d := base << attempt
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	if retryAfter > d {
		return retryAfter + time.Duration(rand.Int64N(int64(min(retryAfter/4, time.Second))+1))
	}
	return d
}

// afterWin runs the user's pay plan for its order.
func (c *crowd) afterWin(u *scenario.User, orderID string) {
	if !c.lifecycle {
		return
	}
	switch u.Pay {
	case scenario.PayPrompt:
		c.r.exec.atFree(time.Now().Add(u.PayAfter), func(intended time.Time) { c.pay(u.ID, orderID, 0, intended) })
	case scenario.PayAtDeadline:
		c.r.exec.atFree(time.Now().Add(300*time.Millisecond), func(intended time.Time) { c.awaitDeadline(u, orderID, 0, intended) })
	}
}

// awaitDeadline reads the order until it has a pay deadline (it leaves
// the queue), then pays within a few hundred milliseconds of it.
func (c *crowd) awaitDeadline(u *scenario.User, orderID string, attempt int, intended time.Time) {
	sent := time.Now()
	o, a := c.r.winners.GetOrder(c.r.ctx, orderID, c.tokens[u.ID])
	c.r.rec.Record(epOrder, a.Outcome(), a.Status, intended, sent, time.Now())
	if a.Status == http.StatusOK && o.PayDeadline != nil {
		c.r.exec.atFree(o.PayDeadline.Add(u.Jitter), func(next time.Time) { c.pay(u.ID, orderID, 0, next) })
		return
	}
	if attempt < 100 {
		c.r.exec.atFree(time.Now().Add(300*time.Millisecond), func(next time.Time) { c.awaitDeadline(u, orderID, attempt+1, next) })
	}
}

// pay pays an order until a definite answer: 200 paid or 409
// ORDER_CANCELLED. NOT_PAYABLE (still queued) and transient failures are
// retried; paying twice is fine by contract.
func (c *crowd) pay(user, orderID string, attempt int, intended time.Time) {
	sent := time.Now()
	a := c.r.winners.Pay(c.r.ctx, orderID, c.tokens[user])
	c.r.rec.Record(epPay, a.Outcome(), a.Status, intended, sent, time.Now())
	switch {
	case a.Status == http.StatusOK:
		c.r.ledger.payAnswer(orderID, audit.PayOK)
		return
	case a.Status == http.StatusConflict && a.Code == "ORDER_CANCELLED":
		c.r.ledger.payAnswer(orderID, audit.PayCancelled)
		return
	}
	if attempt >= 60 || c.r.ctx.Err() != nil {
		c.r.ledger.payAnswer(orderID, audit.PayUnknown)
		c.r.log.Warn("pay: no definite answer", "order_id", orderID, "last", a.Outcome())
		return
	}
	c.r.exec.atFree(time.Now().Add(backoff(300*time.Millisecond, min(attempt, 2), a.RetryAfter)), func(next time.Time) {
		c.pay(user, orderID, attempt+1, next)
	})
}
