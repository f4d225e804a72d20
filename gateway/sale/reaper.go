package sale

import (
	"context"
	"errors"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
)

// Reservations left behind. A buy reserves in Redis, publishes, then
// confirms; a gateway that dies between the reserve and the confirm leaves
// a pending reservation that holds a unit (and its buyer's one-per-user
// mark) for nobody. Two nets catch it:
//
//   - Orphans: each gateway keeps a liveness mark under its order-id node
//     (inventory node leases). A pending reservation whose node's mark is
//     gone belongs to a dead gateway, so any live gateway settles it at
//     once: it publishes the order message (the buyer clicked buy; the
//     worker's idempotence by order id makes a second copy harmless, had
//     the dead gateway's publish gone through) and confirms it, or, when
//     the queue refuses, releases it. A crash leaves a unit off sale for
//     about NodeTTL plus one pass, not the reservation timeout.
//   - The reaper: a pending reservation older than the reservation
//     timeout is released, whoever holds it (a reply lost to a live
//     gateway, a release that failed): the worker's claim then fails and
//     the order is written cancelled, so a unit is never sold twice.
//
// A gateway that only looked dead (paused past NodeTTL) and wakes up
// publishes and confirms too: the copies are one order. If its publish
// fails it releases, and the worker writes the settled order cancelled:
// the unit is counted once either way.

// Nodes is what the reaper needs of the inventory (inventory.Store).
type Nodes interface {
	RenewNode(ctx context.Context, node int64, ttl time.Duration) error
	DropNode(ctx context.Context, node int64) error
	NodesAlive(ctx context.Context, nodes []int64) (map[int64]bool, error)
	PendingReservations(ctx context.Context, activityID int64, limit int) ([]inventory.Reservation, error)
	ReapPending(ctx context.Context, activityID int64, olderThan time.Time, limit int) ([]string, error)
}

// Defaults of ReaperConfig.
const (
	DefaultNodeTTL        = 3 * time.Second
	DefaultSettleInterval = time.Second
	DefaultReservationTTL = 30 * time.Second
)

// ReaperConfig tunes RunReaper; zero fields take their defaults.
type ReaperConfig struct {
	// Node is this gateway's order-id node, leased at start
	// (inventory.Store.LeaseNode with NodeTTL).
	Node int64
	// NodeTTL is how long the liveness mark lasts unrenewed: how long
	// after a crash its orphans are settled.
	NodeTTL time.Duration
	// SettleInterval is how often the mark is renewed and orphans are
	// looked for (at most NodeTTL/2).
	SettleInterval time.Duration
	// ReservationTTL releases pending reservations older than this
	// (SECKILL_RESERVATION_TIMEOUT), every third of it.
	ReservationTTL time.Duration
}

func (c ReaperConfig) withDefaults() ReaperConfig {
	if c.NodeTTL <= 0 {
		c.NodeTTL = DefaultNodeTTL
	}
	if c.SettleInterval <= 0 {
		c.SettleInterval = DefaultSettleInterval
	}
	c.SettleInterval = min(c.SettleInterval, c.NodeTTL/2)
	if c.ReservationTTL <= 0 {
		c.ReservationTTL = DefaultReservationTTL
	}
	return c
}

// orphanBatch bounds the pending reservations read per activity and pass.
const orphanBatch = 500

// RunReaper keeps this gateway's node alive and settles what dead gateways
// and lost replies left, until ctx is done; then it drops the node's mark,
// so its own leftovers (none, after a clean stop) are settled at once.
func (s *Service) RunReaper(ctx context.Context, nodes Nodes, cfg ReaperConfig) {
	cfg = cfg.withDefaults()
	settle := time.NewTicker(cfg.SettleInterval)
	defer settle.Stop()
	reap := time.NewTicker(max(cfg.ReservationTTL/3, time.Second))
	defer reap.Stop()
	var acts []order.Activity
	var listed time.Time
	for {
		if err := nodes.RenewNode(ctx, cfg.Node, cfg.NodeTTL); err != nil && ctx.Err() == nil {
			s.log.Warn("renew this gateway's node lease (its reservations may be settled by others meanwhile)", "node", cfg.Node, "err", err)
		}
		// The activities, read again every few seconds: a database
		// outage keeps the last list (Redis holds what is settled).
		if time.Since(listed) > 5*time.Second {
			if l, err := s.deps.Store.ListActivities(ctx); err == nil {
				acts, listed = l, time.Now()
			} else if ctx.Err() == nil {
				s.log.Warn("reaper: list activities", "err", err)
			}
		}
		if _, err := s.SettleOrphans(ctx, nodes, cfg.Node, recent(acts, cfg.ReservationTTL)); err != nil && ctx.Err() == nil {
			s.log.Warn("settle the reservations of dead gateways", "err", err)
		}
		s.rooms.sweep(s.now())
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = nodes.DropNode(dctx, cfg.Node)
			cancel()
			return
		case <-settle.C:
		case <-reap.C:
			s.reapPending(ctx, nodes, recent(acts, cfg.ReservationTTL), time.Now().Add(-cfg.ReservationTTL))
		}
	}
}

// recent are the activities whose reservations may still be pending: not
// ended more than an hour and a reservation timeout ago.
func recent(acts []order.Activity, reservationTTL time.Duration) []order.Activity {
	cutoff := time.Now().Add(-reservationTTL - time.Hour)
	out := make([]order.Activity, 0, len(acts))
	for _, a := range acts {
		if !a.EndsAt.Before(cutoff) {
			out = append(out, a)
		}
	}
	return out
}

// SettleOrphans settles the pending reservations of acts that belong to
// dead nodes (never self): published and confirmed, or released when the
// queue refuses. It returns how many it settled.
func (s *Service) SettleOrphans(ctx context.Context, nodes Nodes, self int64, acts []order.Activity) (int, error) {
	settled := 0
	var errs []error
	for i := range acts {
		a := &acts[i]
		pend, err := nodes.PendingReservations(ctx, a.ID, orphanBatch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byNode := map[int64][]inventory.Reservation{}
		for _, r := range pend {
			n, err := orderid.Node(r.OrderID)
			if err != nil || n == self {
				continue // malformed ones are the reaper's; our own are live
			}
			byNode[n] = append(byNode[n], r)
		}
		if len(byNode) == 0 {
			continue
		}
		ids := make([]int64, 0, len(byNode))
		for n := range byNode {
			ids = append(ids, n)
		}
		alive, err := nodes.NodesAlive(ctx, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for n, rs := range byNode {
			if alive[n] {
				continue
			}
			for _, r := range rs {
				err := s.publish(ctx, a, Purchase{ActivityID: a.ID, UserID: r.UserID, RequestID: r.RequestID}, r.OrderID, r.ReservedAt)
				how := "published"
				if err != nil {
					how = "released" // publish released it (or left it to the reaper, logged)
				}
				s.metrics.orphans.WithLabelValues(how).Inc()
				s.log.Warn("settled the reservation of a dead gateway", "order_id", r.OrderID, "activity_id", a.ID, "node", n, "how", how)
				settled++
			}
		}
	}
	return settled, errors.Join(errs...)
}

// reapPending releases pending reservations older than cutoff.
func (s *Service) reapPending(ctx context.Context, nodes Nodes, acts []order.Activity, cutoff time.Time) {
	for i := range acts {
		a := &acts[i]
		ids, err := nodes.ReapPending(ctx, a.ID, cutoff, orphanBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reaper", "activity_id", a.ID, "err", err)
			}
			continue
		}
		if len(ids) > 0 {
			s.metrics.reaped.Add(float64(len(ids)))
			s.soldOut.clear(a.ID)
			s.log.Warn("reaper released unpublished reservations", "activity_id", a.ID, "count", len(ids))
		}
	}
}
