package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
)

// OrderView is an order as its owner sees it: the database row, or, while
// it waits in the queue, its reservation (state queued, no pay deadline).
type OrderView struct {
	OrderID     string
	ActivityID  int64
	UserID      string
	State       string
	PriceCents  int64
	CreatedAt   time.Time
	PayDeadline *time.Time
}

// orderActivity returns the activity id that order id carries. A malformed
// id is not found, as an unknown one is.
func orderActivity(id string) (int64, error) {
	actID, _, err := orderid.Parse(id)
	if err != nil {
		return 0, errOrderNotFound(id)
	}
	return actID, nil
}

// errOrderNotFound is also the answer for another user's order: it does not
// exist for this caller.
func errOrderNotFound(id string) *Error { return notFoundf("order %q not found", id) }

// Order is user's order id: the database row, or, while the order waits in
// the queue, its reservation in Redis.
func (s *Service) Order(ctx context.Context, user, id string) (OrderView, error) {
	actID, err := orderActivity(id)
	if err != nil {
		return OrderView{}, err
	}
	o, err := s.deps.Store.GetOrder(ctx, id)
	switch {
	case err == nil:
		if o.UserID != user {
			return OrderView{}, errOrderNotFound(id)
		}
		deadline := o.PayDeadline.UTC()
		return OrderView{
			OrderID: o.ID, ActivityID: o.ActivityID, UserID: o.UserID, State: o.State,
			PriceCents: o.PriceCents, CreatedAt: o.CreatedAt.UTC(), PayDeadline: &deadline,
		}, nil
	case !errors.Is(err, order.ErrNotFound):
		return OrderView{}, busy("database unavailable: could not read the order", err)
	}
	// Not written yet: the reservation in Redis is the order while it waits
	// in the queue.
	res, found, err := s.deps.Inventory.Lookup(ctx, actID, id)
	if err != nil {
		return OrderView{}, busy("inventory unavailable: could not read the order", fmt.Errorf("look up order %s: %w", id, err))
	}
	if !found || res.UserID != user {
		return OrderView{}, errOrderNotFound(id)
	}
	a, err := s.acts.get(ctx, actID)
	switch {
	case errors.Is(err, order.ErrNotFound):
		return OrderView{}, errOrderNotFound(id)
	case err != nil:
		return OrderView{}, busy("database unavailable: could not read the order's activity", err)
	}
	return OrderView{
		OrderID: id, ActivityID: actID, UserID: user, State: order.StateQueued,
		PriceCents: a.PriceCents, CreatedAt: res.ReservedAt.UTC(),
	}, nil
}

// Pay records that user paid order id. It stands for the payment
// provider's notification that the owner paid, and is idempotent (paying a
// paid order answers the paid order again), so a provider's retried
// callback is harmless.
func (s *Service) Pay(ctx context.Context, user, id string) (*order.Order, error) {
	actID, err := orderActivity(id)
	if err != nil {
		return nil, err
	}
	o, err := s.deps.Payer.Pay(ctx, id, user)
	switch {
	case err == nil:
		return o, nil
	case errors.Is(err, order.ErrOrderCancelled):
		return nil, conflict(CodeOrderCancelled,
			fmt.Sprintf("order %s was cancelled: its pay deadline passed and the unit went back on sale", id))
	case !errors.Is(err, order.ErrNotFound):
		return nil, busy("database unavailable: the payment was not recorded, try again", err)
	}
	// Not stored: still queued if this user holds its reservation.
	res, found, err := s.deps.Inventory.Lookup(ctx, actID, id)
	switch {
	case err != nil:
		return nil, busy("inventory unavailable: could not read the order", fmt.Errorf("look up order %s: %w", id, err))
	case found && res.UserID == user:
		return nil, conflict(CodeNotPayable,
			fmt.Sprintf("order %s is still queued; pay once GET /api/v1/orders/%s says created", id, id))
	}
	return nil, errOrderNotFound(id)
}
