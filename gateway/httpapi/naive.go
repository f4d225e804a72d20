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
// when Options.Naive is set (SECKILL_BUY_MODE=naive), the naive synchronous
// buy that the load tester compares it with.
func (s *Server) buyHandler() gin.HandlerFunc {
	if s.opts.Naive == nil {
		return s.buy
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seckill_naive_buy_total",
		Help: "Buys handled by the naive synchronous mode (one database transaction inside the request), by outcome; created is the database write rate of that mode.",
	}, []string{"outcome"})
	for _, o := range []string{naiveCreated, naiveExisting, naiveAlreadyPurchased, naiveSoldOut, naiveNotStarted, naiveEnded, naiveNotFound, naiveError} {
		outcomes.WithLabelValues(o)
	}
	s.opts.Registry.MustRegister(outcomes)
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
	var req struct {
		RequestID string `json:"request_id"`
	}
	if !decodeJSON(c, &req, true) {
		return
	}
	if req.RequestID != "" && !requestIDPattern.MatchString(req.RequestID) {
		abort(c, http.StatusBadRequest, codeValidation, "request_id: want 1-64 characters of letters, digits and _.:-")
		return
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		abort(c, http.StatusNotFound, codeNotFound, fmt.Sprintf("activity %q not found", c.Param("id")))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), naiveTimeout)
	defer cancel()
	o, existing, err := s.opts.Naive.BuyNaive(ctx, order.NaiveBuy{
		ActivityID: id, UserID: c.GetString(keyUser), RequestID: req.RequestID,
		OrderID: s.opts.IDs.Next(id), TraceID: c.GetString(keyRequestID), Now: s.now(),
	})
	outcome := naiveCreated
	switch {
	case err == nil && existing:
		outcome = naiveExisting
		c.JSON(http.StatusAccepted, gin.H{"order_id": o.ID, "state": o.State})
	case err == nil:
		c.JSON(http.StatusAccepted, gin.H{"order_id": o.ID, "state": o.State})
	case errors.Is(err, order.ErrUserHasOrder):
		outcome = naiveAlreadyPurchased
		abort(c, http.StatusConflict, codeAlreadyPurchased, "this user already holds an order for this activity")
	case errors.Is(err, order.ErrSoldOut):
		outcome = naiveSoldOut
		abort(c, http.StatusGone, codeSoldOut, "sold out")
	case errors.Is(err, order.ErrNotStarted):
		outcome = naiveNotStarted
		abort(c, http.StatusForbidden, codeNotStarted, "the sale has not started")
	case errors.Is(err, order.ErrEnded):
		outcome = naiveEnded
		abort(c, http.StatusForbidden, codeEnded, "the sale has ended")
	case errors.Is(err, order.ErrNotFound):
		outcome = naiveNotFound
		abort(c, http.StatusNotFound, codeNotFound, fmt.Sprintf("activity %d not found", id))
	default:
		outcome = naiveError
		s.log.Warn("naive buy", "activity_id", id, "err", err)
		busy(c, "database busy or unavailable; nothing was kept, try again")
	}
	outcomes.WithLabelValues(outcome).Inc()
}
