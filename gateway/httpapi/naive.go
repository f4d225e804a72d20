package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/platform/metrics"

	"github.com/flashsale/seckill/order"
)

// NaiveStore is the database side of the naive buy mode (order.Store).
type NaiveStore interface {
	BuyNaive(ctx context.Context, b order.NaiveBuy) (*order.Order, bool, error)
}

// naiveTimeout bounds one naive buy. Under a spike the requests queue for
// the database's connections and then for the activity row's lock; past
// this bound the buyer gets 503 BUSY and the transaction rolls back, so
// nothing is kept.
const naiveTimeout = 10 * time.Second

// Outcomes of seckill_naive_buy_total.
const (
	naiveCreated          = "created"
	naiveExisting         = "existing"
	naiveAlreadyPurchased = "already_purchased"
	naiveSoldOut          = "sold_out"
	naiveNotStarted       = "not_started"
	naiveEnded            = "ended"
	naiveNotFound         = "not_found"
	naiveError            = "error"
)

// buyHandler returns the handler of the buy route: the pipeline (buy), or,
// when Config.Naive is set (SECKILL_BUY_MODE=naive), the naive synchronous
// buy that the load tester compares it with.
func (s *Server) buyHandler() gin.HandlerFunc {
	if s.cfg.Naive == nil {
		return s.buy
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seckill_naive_buy_total",
		Help: "Buys handled by the naive synchronous mode (one database transaction inside the request), by outcome; created is the database write rate of that mode.",
	}, []string{"outcome"})
	for _, o := range []string{naiveCreated, naiveExisting, naiveAlreadyPurchased, naiveSoldOut, naiveNotStarted, naiveEnded, naiveNotFound, naiveError} {
		outcomes.WithLabelValues(o)
	}
	metrics.MustRegister(s.cfg.Registry, outcomes)
	s.log.Warn("buy mode naive: every buy runs a locking database transaction inside the request (the teaching anti-pattern; never in production)")
	return func(c *gin.Context) { s.buyNaive(c, outcomes) }
}

// buyNaive is the anti-pattern on purpose: no local sold-out flag, no Redis,
// no queue. Every buy, including every buy after the sell-out, is a
// transaction on the activity row (order.Store.BuyNaive), so the database
// takes the whole spike and each buyer waits for all the buyers before it.
// The rate limits still apply (they are middleware), as in the pipeline,
// so the two modes see the same traffic. A created order is answered 202
// with state "created": it is already in the database.
func (s *Server) buyNaive(c *gin.Context, outcomes *prometheus.CounterVec) {
	p, err := s.decodePurchase(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	o, outcome, err := s.placeOrderNaive(c.Request.Context(), p)
	if outcome != "" {
		outcomes.WithLabelValues(outcome).Inc()
	}
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"order_id": o.ID, "state": o.State})
}

// placeOrderNaive runs the buy as one database transaction and says which
// outcome of seckill_naive_buy_total it was ("" for a malformed activity
// id, which never reached the database). The errors of BuyNaive are
// order's sentinels, which respond maps to the pipeline's answers.
func (s *Server) placeOrderNaive(ctx context.Context, p purchase) (*order.Order, string, error) {
	id, err := strconv.ParseInt(p.activity, 10, 64)
	if err != nil || id <= 0 {
		return nil, "", errNotFound("activity %q not found", p.activity)
	}
	ctx, cancel := context.WithTimeout(ctx, naiveTimeout)
	defer cancel()
	o, existing, err := s.cfg.Naive.BuyNaive(ctx, order.NaiveBuy{
		ActivityID: id, UserID: p.user, RequestID: p.requestID,
		OrderID: s.cfg.IDs.Next(id), TraceID: p.traceID, Now: s.now(),
	})
	switch {
	case err == nil && existing:
		return o, naiveExisting, nil
	case err == nil:
		return o, naiveCreated, nil
	case errors.Is(err, order.ErrUserHasOrder):
		return nil, naiveAlreadyPurchased, err
	case errors.Is(err, order.ErrSoldOut):
		return nil, naiveSoldOut, err
	case errors.Is(err, order.ErrNotStarted):
		return nil, naiveNotStarted, err
	case errors.Is(err, order.ErrEnded):
		return nil, naiveEnded, err
	case errors.Is(err, order.ErrNotFound):
		return nil, naiveNotFound, errNotFound("activity %d not found", id)
	}
	return nil, naiveError, errBusy("database busy or unavailable; nothing was kept, try again", fmt.Errorf("naive buy of activity %d: %w", id, err))
}
