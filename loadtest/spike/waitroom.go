package spike

import (
	"net/http"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
)

// The crowd in front of a waiting room (admission queue). A person joins
// when they arrive: during the countdown (their page is open) they join
// the pre-queue, later they queue behind it. They ask for their place when
// told to (poll_after_ms), buy with the pass the moment they are admitted
// (the page buys by itself), and stop at a final answer. Bots join at
// their operator's instant, just before the start, with every account;
// they ask as fast as their rate allows, ignoring poll_after_ms, and buy
// the instant they are admitted.

// Endpoints of the waiting room as the recorder names them.
const (
	epJoin  = "queue-join"
	epQueue = "queue"
)

// Bounds that end a person's patience (the answer is then gave_up, which
// the audit reports): no page polls for ever. maxQueueWait outlasts the
// sale's tail: a returned unit goes to the next person in the queue, and
// when that one does not pay either it comes back a pay timeout later;
// at the default 100,000 users the last unit was still going round at
// +288 s, and a 5-minute patience turned the people still rightly told
// "waiting" into people without an answer.
const (
	maxQueueWait  = 15 * time.Minute
	maxJoinTries  = 20
	maxBotBuys    = 20
	minQueuePause = 20 * time.Millisecond
)

// queuer is one person in front of the waiting room.
type queuer struct {
	c     *crowd
	u     *scenario.User
	bot   bool
	start time.Time // the first join
	buys  int       // buys sent with a pass
}

// scheduleQueue puts every person's join (and page views) on the executor.
func (c *crowd) scheduleQueue(plan scenario.Plan) {
	for i := range plan.Users {
		u := &plan.Users[i]
		for _, v := range u.PageViews {
			c.r.exec.at(c.t0.Add(v), func(intended time.Time) { c.page(intended) })
		}
		q := &queuer{c: c, u: u, bot: u.Kind == scenario.Bot}
		at := arrival(u)
		if q.bot {
			at = u.Arrive
		}
		c.r.exec.at(c.t0.Add(at), func(intended time.Time) { q.join(0, intended) })
	}
}

// botPause is a bot's pause between requests: its rate, whatever the
// gateway says.
func (q *queuer) botPause() time.Duration {
	if q.c.cfg.BotRate <= 0 {
		return minQueuePause
	}
	return max(time.Duration(float64(time.Second)/q.c.cfg.BotRate), time.Millisecond)
}

func (q *queuer) join(attempt int, intended time.Time) {
	c := q.c
	if q.start.IsZero() {
		q.start = intended
	}
	sent := time.Now()
	pl, a := c.r.client.JoinQueue(c.r.ctx, c.activity, c.tokens[q.u.ID])
	now := time.Now()
	c.r.rec.Record(epJoin, a.Outcome(), a.Status, intended, sent, now)
	switch {
	case a.Status == http.StatusOK && a.Err == nil:
		c.r.ppl.joined(q.u.ID, now, pl.State == "prequeue")
		q.onPlace(pl, now)
	case retryableQueue(a) && attempt < maxJoinTries && now.Sub(q.start) < maxQueueWait:
		wait := backoff(c.cfg.RetryBackoff, min(attempt, 4), a.RetryAfter)
		if q.bot {
			wait = max(q.botPause(), a.RetryAfter)
		}
		c.r.exec.at(now.Add(wait), func(next time.Time) { q.join(attempt+1, next) })
	case retryableQueue(a):
		c.r.ppl.final(q.u.ID, report.FinalGaveUp, now, "")
	default:
		c.r.ppl.final(q.u.ID, report.FinalOther, now, "")
		c.r.log.Warn("waiting room: join refused", "user", q.u.ID, "answer", a.Outcome())
	}
}

func retryableQueue(a api.Answer) bool {
	return a.InFlightFailure() || a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable
}

// onPlace acts on a place: ask again later, buy, or stop.
func (q *queuer) onPlace(pl api.Place, at time.Time) {
	c := q.c
	switch pl.State {
	case "prequeue", "waiting":
		wait := pl.PollAfter()
		if q.bot {
			wait = q.botPause()
		}
		q.pollAt(at.Add(max(wait, time.Millisecond)))
	case "admitted":
		if pl.ExpiresAt != nil {
			c.r.ppl.admitted(q.u.ID, *pl.ExpiresAt, at)
		}
		c.r.ledger.gotBuyToken(q.u.ID) // the pass is the buy token
		q.buy(pl.BuyToken, 0, at)
	case "bought":
		c.r.ppl.final(q.u.ID, report.FinalWon, at, "")
	case "sold_out":
		// Not final while units can come back (an unpaid order times
		// out): the page keeps asking at poll_after_ms, as the gateway
		// says, and the next people in the queue, still there, are
		// admitted. It stops once the sale is over.
		c.r.ppl.final(q.u.ID, report.FinalSoldOut, at, "")
		if !c.r.saleOver.Load() {
			q.pollAt(at.Add(max(pl.PollAfter(), minQueuePause)))
		}
	case "expired":
		c.r.ppl.final(q.u.ID, report.FinalExpired, at, "")
	default:
		c.r.ppl.final(q.u.ID, report.FinalOther, at, "")
		c.r.log.Warn("waiting room: unknown state", "user", q.u.ID, "state", pl.State)
	}
}

// pollAt asks for the place at t, unless patience ran out.
func (q *queuer) pollAt(t time.Time) {
	if q.c.r.ppl.settled(q.u.ID) && q.c.r.saleOver.Load() {
		return // heard sold out, and nothing can come back
	}
	if t.Sub(q.start) > maxQueueWait {
		q.c.r.ppl.final(q.u.ID, report.FinalGaveUp, t, "")
		return
	}
	q.c.r.exec.at(t, q.poll)
}

func (q *queuer) poll(intended time.Time) {
	c := q.c
	sent := time.Now()
	c.r.ppl.poll(sent)
	pl, a := c.r.client.QueuePlace(c.r.ctx, c.activity, c.tokens[q.u.ID])
	now := time.Now()
	c.r.rec.Record(epQueue, a.Outcome(), a.Status, intended, sent, now)
	switch {
	case a.Status == http.StatusOK && a.Err == nil:
		q.onPlace(pl, now)
	case a.Status == http.StatusNotFound:
		// Not in the waiting room (it was lost with Redis): join again.
		q.join(0, now)
	case retryableQueue(a):
		wait := max(a.RetryAfter, 500*time.Millisecond)
		if q.bot {
			wait = q.botPause()
		}
		q.pollAt(now.Add(wait))
	default:
		c.r.ppl.final(q.u.ID, report.FinalOther, now, "")
		c.r.log.Warn("waiting room: poll refused", "user", q.u.ID, "answer", a.Outcome())
	}
}

// buy buys with the pass: a 202 or a 410 ends it; a busy gateway is
// retried (with backoff by a human, at its rate by a bot); a refused pass
// sends the person back to asking for their place.
func (q *queuer) buy(pass string, attempt int, intended time.Time) {
	c := q.c
	q.buys++
	reqID := "click-" + q.u.ID
	sent := time.Now()
	a := c.r.client.Buy(c.r.ctx, c.activity, c.tokens[q.u.ID], reqID, pass)
	now := time.Now()
	c.r.rec.Record(epBuy, a.Outcome(), a.Status, intended, sent, now)
	c.r.ledger.kindAnswer(q.u.Kind, a.Outcome())
	if c.r.ledger.buyAnswer(q.u.ID, reqID, a) {
		c.afterWin(q.u, a.OrderID)
	}
	switch {
	case a.Status == http.StatusAccepted:
		c.r.ppl.final(q.u.ID, report.FinalWon, now, a.OrderID)
	case a.Status == http.StatusGone:
		c.r.ppl.final(q.u.ID, report.FinalSoldOut, now, "")
	case a.IsBuyTokenRefusal():
		q.pollAt(now.Add(minQueuePause)) // the pass lapsed, or was spent: where do I stand?
	case retryableQueue(a) && q.buys < maxBotBuys:
		wait := backoff(c.cfg.RetryBackoff, min(attempt, 4), a.RetryAfter)
		if q.bot {
			wait = q.botPause()
		}
		if !q.bot && attempt >= c.cfg.Retries {
			// The page gives up on this pass's buy and asks where it stands.
			q.pollAt(now.Add(wait))
			return
		}
		c.r.exec.at(now.Add(wait), func(next time.Time) { q.buy(pass, attempt+1, next) })
	case retryableQueue(a):
		c.r.ppl.final(q.u.ID, report.FinalGaveUp, now, "")
	default:
		c.r.ppl.final(q.u.ID, report.FinalOther, now, "")
	}
}

// watchSaleOver sets saleOver once the crowd has arrived (after end) and
// the activity can sell nothing more: nothing left in Redis, nothing
// queued, and (with the lifecycle) no unpaid order that could time out and
// return its unit; or, at the latest, maxQueueWait after end. Not sooner:
// the people who heard sold out stop listening then, and a unit that comes
// back after it goes to places nobody watches, each holding a pass until
// it lapses (with SettleTimeout, 70 s, the last unit of a 100,000-user
// crowd was still being offered to departed places at +516 s).
func (r *runner) watchSaleOver(activity string, end time.Time, lifecycle bool, done <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	stable := 0
	for {
		select {
		case <-done:
			return
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			if now.Before(end) {
				continue
			}
			st, err := r.monitor.Stats(r.ctx, activity)
			// The database's available units too: a cancelled order
			// returns its unit to the database with the cancel, and to
			// Redis a moment later; between the two the rest reads over.
			over := err == nil && st.Remaining <= 0 && st.Queued <= 0 && st.DBAvailable <= 0 && (!lifecycle || st.OrdersCreated == 0)
			if over {
				stable++
			} else {
				stable = 0
			}
			// Over for a whole second (four reads in a row), or bounded.
			if stable >= 4 || now.After(end.Add(maxQueueWait)) {
				r.saleOver.Store(true)
				return
			}
		}
	}
}
