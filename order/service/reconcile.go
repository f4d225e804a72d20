package service

import (
	"context"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// reconcileInventory adapts inventory.Store to order.ReconcileInventory.
type reconcileInventory struct{ s *inventory.Store }

func (v reconcileInventory) Stats(ctx context.Context, activityID int64) (order.InventoryStats, bool, error) {
	st, ok, err := v.s.Stats(ctx, activityID)
	return order.InventoryStats{Stock: st.Stock, Remaining: st.Remaining, Reserved: st.Reserved}, ok, err
}

func (v reconcileInventory) Reservations(ctx context.Context, activityID int64, cursor uint64, count int64) (order.ReservationPage, error) {
	p, err := v.s.Reservations(ctx, activityID, cursor, count)
	if err != nil {
		return order.ReservationPage{}, err
	}
	out := order.ReservationPage{Reservations: make([]order.Reservation, len(p.Reservations)), Malformed: p.Malformed, Next: p.Next}
	for i, r := range p.Reservations {
		out.Reservations[i] = order.Reservation{
			OrderID: r.OrderID, UserID: r.UserID, RequestID: r.RequestID, ReservedAt: r.ReservedAt,
			Status: reservationStatus(r.Status),
		}
	}
	return out, nil
}

// reservationStatus maps a Redis status; an unknown byte counts as
// pending, which the reconciler never re-drives.
func reservationStatus(s inventory.Status) order.ReservationStatus {
	switch s {
	case inventory.StatusQueued:
		return order.ReservationQueued
	case inventory.StatusClaimed:
		return order.ReservationClaimed
	}
	return order.ReservationPending
}

func (v reconcileInventory) Held(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error) {
	return v.s.Held(ctx, activityID, orderIDs)
}

func (v reconcileInventory) RepairMeta(ctx context.Context, a *order.Activity, maxRemaining int64) (order.MetaRepairResult, int64, error) {
	r, err := v.s.RepairMeta(ctx, inventory.Activity{ID: a.ID, Stock: a.Stock, StartsAt: a.StartsAt, EndsAt: a.EndsAt}, maxRemaining)
	if err != nil {
		return 0, 0, err
	}
	switch r.Outcome {
	case inventory.MetaRebuilt:
		return order.MetaRebuilt, r.Remaining, nil
	case inventory.ActivityAbsent:
		return order.ActivityMissing, 0, nil
	}
	return order.MetaFound, 0, nil
}

func (v reconcileInventory) LowerRemaining(ctx context.Context, activityID int64) (int64, error) {
	n, _, err := v.s.LowerRemaining(ctx, activityID)
	return n, err
}

func (v reconcileInventory) MarkRedrive(ctx context.Context, activityID int64, orderID string, reservedBefore, now time.Time, gap time.Duration, maxTimes int) (order.RedriveDecision, error) {
	d, err := v.s.MarkRedrive(ctx, activityID, orderID, reservedBefore, now, gap, maxTimes)
	switch {
	case err != nil:
		return 0, err
	case d == inventory.RedriveNow:
		return order.RedriveNow, nil
	case d == inventory.RedriveExhausted:
		return order.RedriveExhausted, nil
	}
	return order.RedriveSkip, nil
}

func (v reconcileInventory) UnmarkRedrive(ctx context.Context, activityID int64, orderID string) error {
	return v.s.UnmarkRedrive(ctx, activityID, orderID)
}

func (v reconcileInventory) ReleaseCancelled(ctx context.Context, activityID int64, orderID string) (bool, error) {
	return v.s.ReleaseCancelled(ctx, activityID, orderID)
}
