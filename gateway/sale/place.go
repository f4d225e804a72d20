package sale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
)

// Purchase is one buy: who buys a unit of which activity.
type Purchase struct {
	ActivityID int64
	UserID     string
	// RequestID is the client's idempotency key; may be empty. The same
	// request_id again answers with the same order.
	RequestID string
	// BuyToken is the pass from IssueBuyToken; may be empty unless
	// Config.RequireBuyToken.
	BuyToken string
	// TraceID is the request's X-Request-ID, which follows the order
	// through the queue.
	TraceID string
}

// Placed is an accepted buy: the order and the state it is in.
type Placed struct {
	OrderID string
	State   string // order.StateQueued in the pipeline, order.StateCreated in the naive mode
}

// Placer places orders: the pipeline (Service) or the naive synchronous
// mode (Naive).
type Placer interface {
	Place(ctx context.Context, p Purchase) (Placed, error)
}

var _ Placer = (*Service)(nil)

// Place is the hot path: everything before the reserve is in memory (the
// buy token, the cached activity and its window, the sold-out flag), so a
// sold-out or not-started spike never reaches Redis. It answers with the
// order in the queue: a new one, or the one p.RequestID already placed.
func (s *Service) Place(ctx context.Context, p Purchase) (Placed, error) {
	a, err := s.activity(ctx, p.ActivityID)
	if err != nil {
		return Placed{}, err
	}
	if err := s.checkPass(a, p); err != nil {
		return Placed{}, err
	}
	now := s.now()
	switch {
	case now.Before(a.StartsAt):
		return Placed{}, &Error{Kind: KindNotStarted, Message: "the sale starts at " + a.StartsAt.UTC().Format(time.RFC3339)}
	case !now.Before(a.EndsAt):
		return Placed{}, &Error{Kind: KindEnded, Message: "the sale ended at " + a.EndsAt.UTC().Format(time.RFC3339)}
	}
	// A request_id may belong to an order this user already won (a retry
	// after a lost 202): only Redis can answer it with that order. Once
	// sold out, the flag's holder snapshot says who may hold one; anyone
	// else is answered from memory, a holder goes to Redis (soldout.go).
	// Until the snapshot is loaded every request_id buy goes to Redis.
	if p.RequestID == "" && s.soldOut.shouldReject(a.ID, now) ||
		p.RequestID != "" && s.soldOut.shouldRejectNonHolder(a.ID, p.UserID, now) {
		if p.RequestID != "" && s.soldOut.holdersAging(a.ID, now) {
			s.snapshotHolders(a, s.soldOut.generation(a.ID), false) // the next snapshot, read while this one answers
		}
		s.metrics.soldOutLocal.Inc()
		return Placed{}, ErrSoldOut
	}
	if err := s.inFlight.acquire(); err != nil {
		return Placed{}, err
	}
	defer s.inFlight.release()
	orderID, err := s.reserveAndPublish(ctx, a, p, now)
	if a.Admission == order.AdmissionQueue {
		// The place is resolved: bought (this buy, or an earlier one), or
		// sold out. A busy answer leaves it admitted: the pass is retried.
		switch {
		case err == nil || errors.Is(err, ErrAlreadyPurchased):
			s.resolveQueue(ctx, a, p.UserID, true)
		case errors.Is(err, ErrSoldOut):
			s.resolveQueue(ctx, a, p.UserID, false)
		}
	}
	if err != nil {
		return Placed{}, err
	}
	return Placed{OrderID: orderID, State: order.StateQueued}, nil
}

// reserveAndPublish runs the reserve script (through the coalescer) and,
// for a new reservation, the publish.
func (s *Service) reserveAndPublish(ctx context.Context, a *order.Activity, p Purchase, now time.Time) (string, error) {
	orderID := s.deps.IDs.Next(a.ID)
	deadline := time.Now().Add(s.cfg.PublishTimeout) // the wait below is real time, whatever clock the sale reads
	loadedOnce := false
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		// The flag's generation before Redis answers: a SoldOut answer
		// handled after a release was announced must not set the flag
		// again (setSince).
		gen := s.soldOut.generation(a.ID)
		// A hung Redis must give a fast 503, not hold the buyer.
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
		rctx, span := s.startReserve(rctx, a.ID)
		res, err := s.deps.Inventory.Reserve(rctx, a.ID, p.UserID, p.RequestID, orderID, now)
		endReserve(span, orderID, res, err)
		cancel()
		if err != nil {
			s.metrics.reserve.WithLabelValues("error").Inc()
			return "", reserveFailed(err)
		}
		s.metrics.reserve.WithLabelValues(res.Outcome.String()).Inc()
		switch res.Outcome {
		case inventory.Reserved:
			s.soldOut.clear(a.ID)
			if err := s.publish(ctx, a, p, orderID, s.now()); err != nil {
				return "", err
			}
			return orderID, nil
		case inventory.Existing:
			return res.OrderID, nil
		case inventory.Pending:
			// The same request is being published by a concurrent call
			// (a double click). Answer with its outcome, not a guess.
			if time.Now().Add(wait).After(deadline) {
				return "", busy("the same request_id is still being processed; try again", nil)
			}
			time.Sleep(wait)
			now = s.now()
		case inventory.AlreadyPurchased:
			return "", ErrAlreadyPurchased
		case inventory.SoldOut:
			if s.soldOut.setSince(a.ID, now, gen) {
				s.snapshotHolders(a, gen, p.RequestID != "")
			}
			return "", ErrSoldOut
		case inventory.NotStarted:
			return "", ErrNotStarted
		case inventory.Ended:
			return "", ErrEnded
		case inventory.UnknownActivity:
			if loadedOnce {
				return "", busy("activity stock is not loaded in redis; try again", nil)
			}
			loadedOnce = true
			if err := s.restore(ctx, a, "nothing was reserved, try again"); err != nil {
				return "", err
			}
		default:
			return "", internal(fmt.Errorf("reserve activity %d: unexpected outcome %v", a.ID, res.Outcome))
		}
	}
}

// reserveFailed is the answer to a reserve that failed: "nothing was
// reserved" only when the inventory knows it (it released whatever the
// lost call may have taken), otherwise what the buyer can do about it.
func reserveFailed(err error) error {
	if errors.Is(err, inventory.ErrMaybeReserved) {
		return busy("inventory unavailable: a unit may be held for this request until the reservation timeout; "+
			"retry with the same request_id to get its order, or try again later", err)
	}
	return busy("inventory unavailable; nothing was reserved, try again", err)
}

// snapshotHolders refreshes, in the background, the holder snapshot of a
// sold-out activity, so the request_id buys that follow are answered
// from memory unless their user holds a unit. It is called after Redis
// answered SoldOut to a call made at flag generation gen, and while the
// flag holds that answer once the snapshot is half its ttl old: whoever
// reserved before is in the snapshot, and nobody can reserve after without
// a release, which clears it. Only buys with a request_id use a snapshot,
// so one is first read for such a buy (withRequestID) and then refreshed
// by any SoldOut answer, such as the flag's TTL probe, or by an aging
// snapshot; a sale without request_ids never reads one. An Inventory that
// cannot list holders, or an activity too large for a snapshot, keeps
// sending request_id buys to Redis.
func (s *Service) snapshotHolders(a *order.Activity, gen uint64, withRequestID bool) {
	hl, ok := s.deps.Inventory.(HolderLister)
	if !ok || a.Stock > maxHolderSnapshot {
		return
	}
	s.soldOut.refreshHolders(a.ID, gen, s.now(), !withRequestID, hl, 5*s.cfg.RedisTimeout, s.now, func(err error) {
		s.log.Warn("read the holders of a sold-out activity (buys with a request_id go to Redis meanwhile)",
			"activity_id", a.ID, "err", err)
	})
}

// publish hands the reserved order to the queue and returns nil only once
// the queue accepted it. If it refuses, the reservation is released so the
// unit goes back on sale, and the client gets busy with nothing kept. A
// publish can report an error although the message went through (Kafka's
// "some records may have been written"): if a worker already claimed the
// reservation, Release leaves it (the order stands, the user keeps one
// unit and cannot buy a second) and the client still gets busy; a retry
// with the same request_id finds the order.
func (s *Service) publish(ctx context.Context, a *order.Activity, p Purchase, orderID string, reservedAt time.Time) error {
	payload, err := json.Marshal(ordermsg.Message{
		OrderID: orderID, ActivityID: a.ID, UserID: p.UserID, RequestID: p.RequestID,
		PriceCents: a.PriceCents, ReservedAt: reservedAt.UTC(), TraceID: p.TraceID,
	})
	if err != nil {
		panic(fmt.Sprintf("marshal order message: %v", err)) // plain struct: cannot fail
	}
	// A client that hangs up must not turn an accepted publish into an
	// ambiguous one: the publish runs to its own deadline.
	detached := context.WithoutCancel(ctx)
	pctx, cancel := context.WithTimeout(detached, s.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	err = s.deps.Publisher.Publish(pctx, ordermsg.TopicOrders, &mq.Message{
		ID: orderID, Key: p.UserID, Payload: payload,
		Headers: map[string]string{"request_id": p.TraceID},
	})
	s.metrics.publishLatency.Observe(time.Since(start).Seconds())
	// Release and Confirm get their own deadline: after a publish that
	// timed out, its context is already spent, and a release that fails
	// would keep the unit and the user's mark until the reaper.
	rctx, rcancel := context.WithTimeout(detached, s.cfg.RedisTimeout)
	defer rcancel()
	if err != nil {
		return s.unpublished(rctx, a, p, orderID, err)
	}
	// The order is in the queue: mark the reservation so the reaper leaves
	// it alone. If this fails the worker's claim still wins the race.
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = s.deps.Inventory.Confirm(rctx, a.ID, orderID); err == nil {
			break
		}
	}
	if err != nil {
		s.log.Warn("confirm reservation", "order_id", orderID, "err", err)
	}
	return nil
}

// unpublished releases the reservation of an order the queue refused
// (pubErr) and returns the buy's answer.
func (s *Service) unpublished(ctx context.Context, a *order.Activity, p Purchase, orderID string, pubErr error) error {
	full := errors.Is(pubErr, mq.ErrQueueFull)
	reason := "error"
	if full {
		reason = "full"
	}
	s.metrics.publishFailed.WithLabelValues(reason).Inc()
	cause := fmt.Errorf("publish order %s of activity %d: %w", orderID, a.ID, pubErr)
	res, err := s.deps.Inventory.Release(ctx, a.ID, orderID)
	switch {
	case err != nil:
		// The reaper releases the pending reservation later: the buyer
		// must not be told nothing is held.
		s.log.Error("release after failed publish", "order_id", orderID, "activity_id", a.ID, "err", err)
		return busy("order queue unavailable; the order was not accepted, and its unit stays held until the reservation timeout: try again later",
			errors.Join(cause, fmt.Errorf("release: %w", err)))
	case res == inventory.Released:
		s.soldOut.clear(a.ID)
	case res == inventory.NotReleasedClaimed:
		// The message reached the queue after all and a worker took
		// it: the order went through. Releasing would sell the unit
		// twice; the 202 is what this client misses.
		s.log.Warn("publish reported an error but the order went through: a worker claimed its reservation, which is kept",
			"order_id", orderID, "activity_id", a.ID, "user_id", p.UserID, "request_id", p.TraceID)
		return busy("the order queue reported an error, yet the order reached it; retry with the same request_id to get its order_id", cause)
	default:
		s.log.Warn("release after failed publish: reservation already gone", "order_id", orderID, "activity_id", a.ID, "result", res.String())
	}
	if full {
		return busy("order queue is full; nothing was reserved, try again", cause)
	}
	return busy("order queue unavailable; nothing was reserved, try again", cause)
}
