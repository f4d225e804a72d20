package spike

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/audit"
)

// resale sends fresh users after the returned units: invariant 6 says a
// returned unit can be sold again. Each retries a sold-out answer a few
// times (the local sold-out flag lives up to SECKILL_SOLDOUT_TTL) and pays
// what it wins, so the activity ends sold and paid.
func (r *runner) resale(activity string, before api.Stats, prefix string) (*audit.Resale, error) {
	n := int(before.DBAvailable) + max(5, int(before.DBAvailable)/10)
	res := &audit.Resale{Before: before, Users: n}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		user := fmt.Sprintf("%s-resale-%05d", prefix, i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tok, err := r.client.Token(r.ctx, user)
			if err != nil {
				r.log.Warn("resale token", "err", err)
				return
			}
			buyToken := ""
			if r.opts.BuyToken == BuyTokenRequired {
				if buyToken, err = r.fetchBuyToken(activity, user, tok); err != nil {
					r.log.Warn("resale buy token", "err", err)
					return
				}
			}
			reqID := "resale-" + user
			refreshed := false
			for attempt := 0; attempt < 20 && r.ctx.Err() == nil; attempt++ {
				a := r.client.Buy(r.ctx, activity, tok, reqID, buyToken)
				r.ledger.buyAnswer(user, reqID, a)
				if a.IsBuyTokenRefusal() && buyToken != "" && !refreshed {
					// One fresh token, then the same request_id again.
					refreshed = true
					if buyToken, err = r.fetchBuyToken(activity, user, tok); err != nil {
						r.log.Warn("resale buy token", "err", err)
						return
					}
					continue
				}
				if a.Status == http.StatusAccepted {
					mu.Lock()
					res.Accepted++
					mu.Unlock()
					r.payNow(user, a.OrderID, tok)
					return
				}
				if a.Status == http.StatusConflict || a.Status == http.StatusForbidden {
					return
				}
				time.Sleep(300 * time.Millisecond) // 410 (the flag), 429, 503: try again shortly
			}
		})
	}
	wg.Wait()
	return res, r.ctx.Err()
}

// payNow pays a resold order until a definite answer.
func (r *runner) payNow(user, orderID, tok string) {
	for attempt := 0; attempt < 100 && r.ctx.Err() == nil; attempt++ {
		a := r.client.Pay(r.ctx, orderID, tok)
		switch {
		case a.Status == http.StatusOK:
			r.ledger.payAnswer(orderID, audit.PayOK)
			return
		case a.Status == http.StatusConflict && a.Code == "ORDER_CANCELLED":
			r.ledger.payAnswer(orderID, audit.PayCancelled)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.ledger.payAnswer(orderID, audit.PayUnknown)
	r.log.Warn("resale pay: no definite answer", "user", user, "order_id", orderID)
}
