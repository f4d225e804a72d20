package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order/ordermsg"
)

// The Reconciler's repairs: the scan of an activity's reservations against
// the database, the re-drive of lost order messages, and what it does for
// an activity whose meta (or everything) Redis lost.

// scanResult is what the scan of one activity's reservations found.
type scanResult struct {
	seen      int
	unwritten int64                   // reservations whose order is not in the database
	cancelled []string                // reservations whose order is cancelled
	redrive   []inventory.Reservation // queued or claimed, reserved before the cutoff, not in the database
	malformed []string
}

// scan reads every reservation of activity aid and classifies it by its
// order's state in the database.
func (r *Reconciler) scan(ctx context.Context, aid int64, cutoff time.Time) (scanResult, error) {
	var out scanResult
	seen := make(map[string]bool)
	var cursor uint64
	for {
		page, err := r.inv.Reservations(ctx, aid, cursor, int64(r.cfg.PageSize))
		if err != nil {
			return out, err
		}
		out.malformed = append(out.malformed, page.Malformed...)
		fresh := make([]inventory.Reservation, 0, len(page.Reservations))
		for _, res := range page.Reservations {
			if !seen[res.OrderID] {
				seen[res.OrderID] = true
				fresh = append(fresh, res)
			}
		}
		for start := 0; start < len(fresh); start += r.cfg.PageSize {
			chunk := fresh[start:min(start+r.cfg.PageSize, len(fresh))]
			ids := make([]string, len(chunk))
			for i, res := range chunk {
				ids[i] = res.OrderID
			}
			states, err := r.store.orderStates(ctx, ids)
			if err != nil {
				return out, err
			}
			for _, res := range chunk {
				switch state, ok := states[res.OrderID]; {
				case !ok:
					out.unwritten++
					if redrivable(res.Status) && res.ReservedAt.Before(cutoff) {
						out.redrive = append(out.redrive, res)
					}
				case state == StateCancelled:
					out.cancelled = append(out.cancelled, res.OrderID)
				}
			}
		}
		out.seen = len(seen)
		if page.Next == 0 {
			return out, nil
		}
		cursor = page.Next
	}
}

// repairMissing handles an activity whose meta is missing. It reports
// whether the activity is in Redis now (measure it) or not (wait).
func (r *Reconciler) repairMissing(ctx context.Context, a *Activity, now time.Time, sc scanResult, rep *ReconcileReport) (bool, error) {
	if sc.seen == 0 {
		// Nothing of the activity's reservations survived: the database
		// and the queue are the truth, restored as at start.
		return r.restore(ctx, a, rep)
	}
	if first := r.setMetaMissing(a.ID, now); now.Sub(first) < r.cfg.MetaSettle {
		rep.MetaPending = true
		r.log.Info("reconciler: activity meta missing while reservations exist; rebuilt next pass unless a restore completes it",
			"activity_id", a.ID, "reservations", sc.seen)
		return false, nil
	}
	// The database bounds what may be on sale: its available units less
	// the reservations not written yet. Read after the scan, so a unit
	// written meanwhile is counted twice (off sale), never not at all.
	snap, err := r.store.Snapshot(ctx, a.ID)
	if err != nil {
		return false, err
	}
	bound := snap.Activity.Available - sc.unwritten
	res, err := r.inv.RepairMeta(ctx, inventoryActivity(a), bound)
	if err != nil {
		return false, err
	}
	switch res.Outcome {
	case inventory.MetaRebuilt:
		r.setMetaMissing(a.ID, time.Time{})
		rep.MetaRebuilt = true
		r.metrics.repaired(RepairMetaRebuilt)
		r.log.Warn("reconciler rebuilt the lost meta of an activity from its surviving reservations",
			"activity_id", a.ID, "stock", a.Stock, "remaining", res.Remaining, "reservations", sc.seen,
			"db_available", snap.Activity.Available, "unwritten", sc.unwritten, "bound", bound)
		return true, nil
	case inventory.ActivityAbsent:
		return r.restore(ctx, a, rep)
	}
	r.setMetaMissing(a.ID, time.Time{})
	return true, nil // someone else restored it
}

// restore hands an activity Redis lost entirely to the restorer.
func (r *Reconciler) restore(ctx context.Context, a *Activity, rep *ReconcileReport) (bool, error) {
	if r.cfg.Restorer == nil {
		r.log.Error("reconciler: activity missing from redis and no restorer configured", "activity_id", a.ID)
		return false, nil
	}
	if err := r.cfg.Restorer.Restore(ctx, a); err != nil {
		return false, fmt.Errorf("restore into redis: %w", err)
	}
	_, found, err := r.inv.Stats(ctx, a.ID)
	if err != nil || !found {
		return false, err
	}
	r.setMetaMissing(a.ID, time.Time{})
	rep.Restored = true
	r.metrics.repaired(RepairActivityRestored)
	r.log.Warn("reconciler restored an activity redis had lost, from the database and the queue", "activity_id", a.ID)
	return true, nil
}

// redrive publishes again the order messages of reservations that waited
// too long, each at most once per Age over all processes.
func (r *Reconciler) redrive(ctx context.Context, a *Activity, now, cutoff time.Time, list []inventory.Reservation, rep *ReconcileReport) error {
	var stuck []string
	for _, res := range list {
		if rep.Redriven >= r.cfg.RedriveLimit {
			r.log.Info("reconciler: re-drive limit of the pass reached; the rest next pass", "activity_id", a.ID, "limit", r.cfg.RedriveLimit)
			break
		}
		d, err := r.inv.MarkRedrive(ctx, a.ID, res.OrderID, cutoff, now, r.cfg.Age, r.cfg.MaxRedrives)
		if err != nil {
			return err
		}
		switch d {
		case inventory.RedriveExhausted:
			stuck = append(stuck, res.OrderID)
			continue
		case inventory.RedriveNow:
		default:
			continue
		}
		payload, err := json.Marshal(ordermsg.Message{
			OrderID: res.OrderID, ActivityID: a.ID, UserID: res.UserID, RequestID: res.RequestID,
			PriceCents: a.PriceCents, ReservedAt: res.ReservedAt.UTC(),
		})
		if err != nil {
			return fmt.Errorf("marshal order message: %w", err)
		}
		err = r.pub.Publish(ctx, ordermsg.TopicOrders, &mq.Message{
			ID: res.OrderID, Key: res.UserID, Payload: payload,
			Headers: map[string]string{HeaderRedriven: "reconciler"},
		})
		if err != nil {
			// The queue is likely down: take the mark back, so the order
			// keeps its re-drives, and leave the rest to the next pass.
			if uerr := r.inv.UnmarkRedrive(ctx, a.ID, res.OrderID); uerr != nil {
				err = errors.Join(err, uerr)
			}
			r.log.Warn("reconciler: re-drive of an unwritten order failed; the next pass tries again", "activity_id", a.ID, "order_id", res.OrderID, "err", err)
			break
		}
		rep.Redriven++
		r.metrics.repaired(RepairRedriven)
		r.log.Warn("reconciler re-drove an order the database never received", "activity_id", a.ID, "order_id", res.OrderID,
			"user_id", res.UserID, "status", string(res.Status), "reserved_at", res.ReservedAt.UTC())
	}
	rep.Stuck = len(stuck)
	if len(stuck) > 0 {
		r.log.Error("reconciler: orders re-driven the most times allowed and still not written; see the dead-letter topic of orders",
			"activity_id", a.ID, "count", len(stuck), "max_redrives", r.cfg.MaxRedrives, "order_ids", sample(stuck))
	}
	return nil
}

// redrivable reports whether a reservation of status s may have its order
// message published again: queued or claimed; pending ones are the
// reaper's, and a status this code does not know is left alone.
func redrivable(s inventory.Status) bool {
	return s == inventory.StatusQueued || s == inventory.StatusClaimed
}

// inventoryActivity is what Redis keeps of a.
func inventoryActivity(a *Activity) inventory.Activity {
	return inventory.Activity{ID: a.ID, Stock: a.Stock, StartsAt: a.StartsAt, EndsAt: a.EndsAt}
}
