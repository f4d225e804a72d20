package sale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/platform/metrics"
)

// NaiveStore is the database side of the naive buy mode (order.Store).
type NaiveStore interface {
	BuyNaive(ctx context.Context, b order.NaiveBuy) (*order.Order, bool, error)
}

// naiveTimeout bounds one naive buy. Under a spike the requests queue for
// the database's connections and then for the activity row's lock; past
// this bound the buyer gets busy and the transaction rolls back, so
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

// Naive is the anti-pattern on purpose (SECKILL_BUY_MODE=naive), the
// second Placer the load tester compares the pipeline with: no local
// sold-out flag, no Redis, no queue, no bound on buys in flight. Every
// buy, including every buy after the sell-out, is a transaction on the
// activity row (order.Store.BuyNaive), so the database takes the whole
// spike and each buyer waits for all the buyers before it. The buy token
// is checked as in the pipeline (the sale's checkBuyToken), and the rate
// limits still apply at the door, so the two modes see the same traffic.
// A created order is answered with state created: it is already in the
// database.
type Naive struct {
	sale     *Service
	store    NaiveStore
	outcomes *prometheus.CounterVec
}

// NewNaive builds the naive mode beside the sale s (its buy tokens, ids
// and clock), registering seckill_naive_buy_total on reg (nil: unexported).
func NewNaive(s *Service, store NaiveStore, reg prometheus.Registerer, log *slog.Logger) *Naive {
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seckill_naive_buy_total",
		Help: "Buys handled by the naive synchronous mode (one database transaction inside the request), by outcome; created is the database write rate of that mode.",
	}, []string{"outcome"})
	for _, o := range []string{naiveCreated, naiveExisting, naiveAlreadyPurchased, naiveSoldOut, naiveNotStarted, naiveEnded, naiveNotFound, naiveError} {
		outcomes.WithLabelValues(o)
	}
	if reg != nil {
		metrics.MustRegister(reg, outcomes)
	}
	if log == nil {
		log = slog.Default()
	}
	log.Warn("buy mode naive: every buy runs a locking database transaction inside the request (the teaching anti-pattern; never in production)")
	return &Naive{sale: s, store: store, outcomes: outcomes}
}

var _ Placer = (*Naive)(nil)

// Place runs the buy as one database transaction.
func (n *Naive) Place(ctx context.Context, p Purchase) (Placed, error) {
	// The door is the pipeline's: the buy token, or the waiting room's
	// pass. An unknown activity is the database's to answer.
	if a, err := n.sale.activity(ctx, p.ActivityID); err == nil {
		if err := n.sale.checkPass(a, p); err != nil {
			return Placed{}, err
		}
	} else if err := n.sale.checkBuyToken(p); err != nil {
		return Placed{}, err
	}
	o, outcome, err := n.buy(ctx, p)
	n.outcomes.WithLabelValues(outcome).Inc()
	if err != nil {
		return Placed{}, err
	}
	return Placed{OrderID: o.ID, State: o.State}, nil
}

// buy says which outcome of seckill_naive_buy_total the buy was. The
// errors of BuyNaive are order's sentinels, which Classify maps to the
// pipeline's answers.
func (n *Naive) buy(ctx context.Context, p Purchase) (*order.Order, string, error) {
	ctx, cancel := context.WithTimeout(ctx, naiveTimeout)
	defer cancel()
	o, existing, err := n.store.BuyNaive(ctx, order.NaiveBuy{
		ActivityID: p.ActivityID, UserID: p.UserID, RequestID: p.RequestID,
		OrderID: n.sale.deps.IDs.Next(p.ActivityID), TraceID: p.TraceID, Now: n.sale.now(),
	})
	switch {
	case err == nil && existing:
		return o, naiveExisting, nil
	case err == nil:
		return o, naiveCreated, nil
	case errors.Is(err, order.ErrUserHasOrder):
		return nil, naiveAlreadyPurchased, ErrAlreadyPurchased
	case errors.Is(err, order.ErrSoldOut):
		return nil, naiveSoldOut, ErrSoldOut
	case errors.Is(err, order.ErrNotStarted):
		return nil, naiveNotStarted, ErrNotStarted
	case errors.Is(err, order.ErrEnded):
		return nil, naiveEnded, ErrEnded
	case errors.Is(err, order.ErrNotFound):
		return nil, naiveNotFound, notFoundf("activity %d not found", p.ActivityID)
	}
	return nil, naiveError, busy("database busy or unavailable; nothing was kept, try again", fmt.Errorf("naive buy of activity %d: %w", p.ActivityID, err))
}
