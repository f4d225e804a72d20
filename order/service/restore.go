package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq/batch"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/ordermsg"
)

// Restorer puts activities that Redis lost back from the database and the
// queue. It needs no running worker: a gateway-only process uses one when
// it finds an activity missing. One Restorer runs one restore of an
// activity at a time, however many callers ask for it (see Restore), so
// share it within a process: every caller of the process then shares it.
type Restorer struct {
	db    *order.Store
	inv   *inventory.Store
	queue QueueReader // nil: nothing waiting in the queue can be read
	log   *slog.Logger

	flight singleflight.Group // by activity id
}

// restoreTimeout bounds one restore, which runs for every caller that
// waits on it and so on none of their contexts.
const restoreTimeout = time.Minute

// NewRestorer builds a Restorer on deps.DB, deps.Inventory and the optional
// deps.QueueReader.
func NewRestorer(deps Deps) *Restorer {
	deps = deps.withDefaults()
	return &Restorer{db: deps.DB, inv: deps.Inventory, queue: deps.QueueReader, log: deps.Logger}
}

// RestoreAll makes sure every recent activity has its stock in Redis: after
// Redis lost its data (an embedded Redis restarts empty), the database is
// the truth. Workers need it too: their claims wait for the activity to be
// there. One activity that cannot be loaded is logged and skipped; only a
// failed list or a done ctx is an error.
func (r *Restorer) RestoreAll(ctx context.Context) error {
	acts, err := r.db.ListActivities(ctx)
	if err != nil {
		return fmt.Errorf("list activities: %w", err)
	}
	for i := range acts {
		if acts[i].EndsAt.Before(time.Now().Add(-24 * time.Hour)) {
			continue
		}
		if err := r.Restore(ctx, &acts[i]); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("load activity %d into redis: %w", acts[i].ID, err)
			}
			// One activity that cannot be loaded (a bad row, a failed
			// read) must not stop every role from starting: log it and
			// go on; the periodic restore tries it again.
			r.log.Error("activity not loaded into redis at start; skipped", "activity_id", acts[i].ID, "err", err)
		}
	}
	return nil
}

// Restore loads one activity into Redis if it is missing there (the
// embedded Redis starts empty; a real one may have lost its data). Only
// act.ID is used: the activity's stock and what is left of it are read
// again, with its orders, rather than taken from a row the caller may have
// cached.
//
// The database's live orders hold their units as claimed reservations. An
// order answered 202 whose message still waits in the queue (the process
// died before a worker wrote it) holds a unit the database does not know
// about yet: counting that unit as free would let the gateway sell it
// twice, so it is restored as a queued reservation and the worker claims it
// as usual.
//
// A worker that claimed its reservations before Redis lost them may still
// commit while Restore runs, so the reads come in this order: the queue
// first, then the activity's available units, its live orders and which of
// the queued orders are stored, in one database snapshot (Store.Holdings).
// An order committed before the snapshot is live in it and its unit gone
// from available; one committed after it is still in the queue read before
// and is restored as queued, its unit off sale. Either way Redis never
// sells more than the database holds: remaining = available - queued.
//
// Reservations that survived the loss of the activity's meta (an eviction
// or a manual delete of that one key, or a restore interrupted half-way)
// keep their units too: those the database and the queue do not know
// about are taken off sale, and remaining + reservations never exceeds the
// stock afterwards (inventory's RepairMeta and LowerRemaining).
//
// After Redis lost an activity, every buy and page view of it asks for a
// restore at once. Callers that ask while a restore of the activity runs
// wait for it and share its result, so the database and the queue are read
// once, not once per caller. The restore runs on none of their contexts:
// a caller whose context ends stops waiting and gets its error, and the
// restore goes on for the others (bounded by restoreTimeout).
func (r *Restorer) Restore(ctx context.Context, act *order.Activity) error {
	if _, found, err := r.inv.Remaining(ctx, act.ID); err != nil || found {
		return err
	}
	done := r.flight.DoChan(strconv.FormatInt(act.ID, 10), func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
		defer cancel()
		return nil, r.restore(rctx, act.ID)
	})
	select {
	case res := <-done:
		return res.Err
	case <-ctx.Done():
		return fmt.Errorf("restore activity %d: %w", act.ID, ctx.Err())
	}
}

func (r *Restorer) restore(ctx context.Context, id int64) error {
	// A restore that ended just before this one started loaded it.
	if _, found, err := r.inv.Remaining(ctx, id); err != nil || found {
		return err
	}
	waiting, err := r.waitingOrders(ctx, id)
	if err != nil {
		return err
	}
	ids := make([]string, len(waiting))
	for i, m := range waiting {
		ids[i] = m.OrderID
	}
	h, err := r.db.Holdings(ctx, id, ids)
	if err != nil {
		return err
	}
	act := &h.Activity
	existing := make([]inventory.Reservation, 0, len(h.Live))
	holders := make(map[string]bool, len(h.Live))
	known := make(map[string]bool, len(h.Live))
	for _, o := range h.Live {
		existing = append(existing, inventory.Reservation{OrderID: o.ID, UserID: o.UserID, RequestID: o.RequestID, ReservedAt: o.CreatedAt, Status: inventory.StatusClaimed})
		holders[o.UserID] = true
		known[o.ID] = true
	}
	var queued []inventory.Reservation
	for _, m := range waiting {
		if _, stored := h.States[m.OrderID]; stored || holders[m.UserID] {
			continue // written (a redelivery whose ack was lost), or its user holds a unit already
		}
		holders[m.UserID] = true
		known[m.OrderID] = true
		queued = append(queued, inventory.Reservation{OrderID: m.OrderID, UserID: m.UserID, RequestID: m.RequestID, ReservedAt: m.ReservedAt, Status: inventory.StatusQueued})
	}
	existing = append(existing, queued...)
	surviving, unknown, err := r.surviving(ctx, act.ID, known)
	if err != nil {
		return err
	}
	remaining := act.Available - int64(len(queued)) - unknown
	if remaining < 0 {
		// More accepted orders wait than the database has units: only a
		// bug or a manual edit gets here. Load what fits; the workers
		// will find the rest unreserved and cancel them.
		r.log.Error("queued orders exceed the database's available units", "activity_id", act.ID,
			"available", act.Available, "queued", len(queued), "surviving_unknown", unknown)
		existing = existing[:len(existing)-min(int(-remaining), len(queued))]
		remaining = 0
	}
	ia := inventory.Activity{ID: act.ID, Stock: act.Stock, StartsAt: act.StartsAt, EndsAt: act.EndsAt}
	if surviving >= max(len(existing), 1) && allSurvive(ctx, r.inv, act.ID, existing) {
		// Only meta was lost: rebuild it from the surviving reservations
		// in one step, bounded by what the database leaves on sale.
		res, err := r.inv.RepairMeta(ctx, ia, remaining)
		if err != nil {
			return err
		}
		if res.Outcome == inventory.MetaRebuilt {
			r.log.Warn("rebuilt the lost meta of an activity from its surviving reservations", "activity_id", act.ID,
				"remaining", res.Remaining, "reservations", surviving, "db_available", act.Available)
			return nil
		}
		if res.Outcome == inventory.MetaPresent {
			return nil // restored meanwhile by another process
		}
		// Everything is gone now (released meanwhile): load as usual.
	}
	loaded, err := r.inv.Load(ctx, ia, remaining, existing)
	if err != nil {
		return err
	}
	if loaded {
		r.log.Info("loaded activity stock into redis", "activity_id", act.ID, "remaining", remaining,
			"claimed", len(h.Live), "queued", len(queued), "surviving", surviving)
	}
	if surviving > 0 || loaded {
		// The bound above is read before Load: a reservation written
		// meanwhile by a concurrent restore of another process is held
		// too, so remaining never exceeds stock - reservations.
		lowered, _, err := r.inv.LowerRemaining(ctx, act.ID)
		if err != nil {
			return err
		}
		if lowered > 0 {
			r.log.Warn("took units off sale after restoring an activity: surviving reservations hold them",
				"activity_id", act.ID, "units", lowered)
		}
	}
	return nil
}

// surviving counts the reservations of activity aid still in Redis although
// its meta is gone, and how many of them hold an order that neither the
// database's live orders nor the queue know (known): a pending buy whose
// publish is in flight, a queued one on Kafka, whose unit must stay off sale.
func (r *Restorer) surviving(ctx context.Context, aid int64, known map[string]bool) (int, int64, error) {
	seen := map[string]bool{}
	var unknown int64
	var cursor uint64
	for {
		p, err := r.inv.Reservations(ctx, aid, cursor, 500)
		if err != nil {
			return 0, 0, fmt.Errorf("read surviving reservations of activity %d: %w", aid, err)
		}
		for _, res := range p.Reservations {
			if seen[res.OrderID] {
				continue // HSCAN may answer one twice
			}
			seen[res.OrderID] = true
			if !known[res.OrderID] {
				unknown++
			}
		}
		for _, id := range p.Malformed {
			if !seen[id] {
				seen[id] = true
				unknown++ // it holds a unit all the same
			}
		}
		if cursor = p.Next; cursor == 0 {
			return len(seen), unknown, nil
		}
	}
}

// allSurvive reports whether every one of existing still holds its
// reservation in Redis (only meta was lost).
func allSurvive(ctx context.Context, inv *inventory.Store, aid int64, existing []inventory.Reservation) bool {
	if len(existing) == 0 {
		return true
	}
	ids := make([]string, len(existing))
	for i, e := range existing {
		ids[i] = e.OrderID
	}
	held, err := inv.Held(ctx, aid, ids)
	if err != nil {
		return false // Load writes them again
	}
	for _, h := range held {
		if !h {
			return false
		}
	}
	return true
}

// waitingOrders reads the order messages of activity aid that wait in the
// queue, whether or not a worker wrote them meanwhile (the caller asks the
// database). Only the NATS backend can be read without consuming; Kafka
// deployments run on a real Redis, which keeps its reservations. The
// gateway group-commits its orders (package batch), so a stored message is
// either one order or an envelope of many: each order inside counts.
func (r *Restorer) waitingOrders(ctx context.Context, aid int64) ([]ordermsg.Message, error) {
	if r.queue == nil {
		return nil, nil
	}
	stored, err := r.queue.Stored(ctx, ordermsg.TopicOrders, 0)
	if err != nil {
		return nil, fmt.Errorf("read queued orders of activity %d: %w", aid, err)
	}
	var out []ordermsg.Message
	add := func(payload []byte) {
		var m ordermsg.Message
		if err := json.Unmarshal(payload, &m); err != nil || m.ActivityID != aid || m.OrderID == "" {
			return // the worker dead-letters what is malformed
		}
		out = append(out, m)
	}
	for _, sm := range stored {
		if _, ok := sm.Headers[batch.HeaderBatch]; !ok {
			add(sm.Payload)
			continue
		}
		inner, err := batch.Decode(sm.Payload)
		if err != nil {
			// The worker dead-letters it whole; its orders cannot be
			// read here either, so say which message hides them.
			r.log.Error("restore: an order envelope in the queue does not decode; its orders are not restored",
				"activity_id", aid, "seq", sm.Seq, "message_id", sm.ID, "err", err)
			continue
		}
		for _, m := range inner {
			add(m.Payload)
		}
	}
	return out, nil
}
