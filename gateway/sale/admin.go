package sale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// Limits on what an admin may create.
const (
	maxStock      = 10_000_000
	maxPayTimeout = 7 * 24 * 3600
	defPayTimeout = 900
)

// NewActivity is the admin's create command, with the field names of the
// JSON body that carries it (its problems are reported under those names).
// Pointers tell a missing number from zero.
type NewActivity struct {
	Name              string `json:"name"`
	Stock             *int64 `json:"stock"`
	PriceCents        *int64 `json:"price_cents"`
	StartsAt          string `json:"starts_at"`
	EndsAt            string `json:"ends_at"`
	PayTimeoutSeconds *int64 `json:"pay_timeout_seconds"`
	// Admission is "open" (the default: a race) or "queue" (a waiting
	// room in front of the sale).
	Admission string `json:"admission"`
}

// activity checks the command and returns the activity it describes. The
// error names every field that is wrong, so one round trip fixes them all.
func (req *NewActivity) activity() (*order.Activity, error) {
	var problems []string
	bad := func(field, msg string) { problems = append(problems, field+": "+msg) }
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 200 {
		bad("name", "required, at most 200 characters")
	}
	switch {
	case req.Stock == nil:
		bad("stock", "required")
	case *req.Stock <= 0 || *req.Stock > maxStock:
		bad("stock", fmt.Sprintf("must be between 1 and %d, got %d", maxStock, *req.Stock))
	}
	switch {
	case req.PriceCents == nil:
		bad("price_cents", "required")
	case *req.PriceCents < 0:
		bad("price_cents", fmt.Sprintf("must not be negative, got %d", *req.PriceCents))
	}
	starts, errS := time.Parse(time.RFC3339, req.StartsAt)
	if errS != nil {
		bad("starts_at", fmt.Sprintf("must be an RFC 3339 time such as 2026-11-11T00:00:00Z, got %q", req.StartsAt))
	}
	ends, errE := time.Parse(time.RFC3339, req.EndsAt)
	if errE != nil {
		bad("ends_at", fmt.Sprintf("must be an RFC 3339 time such as 2026-11-11T01:00:00Z, got %q", req.EndsAt))
	}
	// Compare the times as the database stores them: a window that only
	// sub-microsecond digits keep open would be stored empty.
	starts, ends = order.StoredTime(starts), order.StoredTime(ends)
	if errS == nil && errE == nil && !ends.After(starts) {
		bad("ends_at", fmt.Sprintf("must be after starts_at, to the microsecond the database keeps (got %s and %s)",
			ends.Format(time.RFC3339Nano), starts.Format(time.RFC3339Nano)))
	}
	payTimeout := int64(defPayTimeout)
	if req.PayTimeoutSeconds != nil {
		payTimeout = *req.PayTimeoutSeconds
		if payTimeout <= 0 || payTimeout > maxPayTimeout {
			bad("pay_timeout_seconds", fmt.Sprintf("must be between 1 and %d, got %d", maxPayTimeout, payTimeout))
		}
	}
	admission := req.Admission
	switch admission {
	case "":
		admission = order.AdmissionOpen
	case order.AdmissionOpen, order.AdmissionQueue:
	default:
		bad("admission", fmt.Sprintf("must be %q or %q, got %q", order.AdmissionOpen, order.AdmissionQueue, req.Admission))
	}
	if len(problems) > 0 {
		return nil, invalidf("%s", strings.Join(problems, "; "))
	}
	return &order.Activity{
		Name: name, Stock: *req.Stock, Available: *req.Stock, PriceCents: *req.PriceCents,
		StartsAt: starts, EndsAt: ends, PayTimeoutSeconds: payTimeout, Admission: admission,
	}, nil
}

// CreateActivity stores the activity req describes and loads its stock
// into Redis.
func (s *Service) CreateActivity(ctx context.Context, req NewActivity) (ActivityView, error) {
	a, err := req.activity()
	if err != nil {
		return ActivityView{}, err
	}
	if err := s.deps.Store.CreateActivity(ctx, a); err != nil {
		if errors.Is(err, order.ErrInvalidActivity) {
			// Checked already; the store's own checks have the last
			// word, and name the field (its sentinel's text is noise).
			return ActivityView{}, invalidf("%s", strings.TrimPrefix(err.Error(), order.ErrInvalidActivity.Error()+": "))
		}
		return ActivityView{}, busy("database unavailable: the activity was not created", err)
	}
	// Preload now so the first buyer does not pay for it; if Redis is
	// down the first buy or read loads it instead.
	if err := s.deps.Restorer.Restore(ctx, a); err != nil {
		s.log.Warn("preload activity stock", "activity_id", a.ID, "err", err)
	}
	if a.Admission == order.AdmissionQueue && s.deps.Queue != nil {
		if err := s.setupQueue(ctx, a); err != nil {
			s.log.Warn("set up the waiting room (the first join does it instead)", "activity_id", a.ID, "err", err)
		}
	}
	s.log.Info("activity created", "activity_id", a.ID, "stock", a.Stock, "admission", a.Admission, "starts_at", a.StartsAt, "ends_at", a.EndsAt)
	return View(a, a.Stock, s.now()), nil
}

// Stats are both sides of an activity's conservation identity.
type Stats struct {
	Stock           int64
	Remaining       int64
	Reserved        int64
	Queued          int64
	OrdersCreated   int64
	OrdersPaid      int64
	OrdersCancelled int64
	DBAvailable     int64
}

// Stats reads both sides of an activity's conservation identity, for
// audits: the row itself, not the cached copy, with its order counts in
// one statement, so the database side of the identity holds in the answer.
func (s *Service) Stats(ctx context.Context, id int64) (Stats, error) {
	cached, err := s.activity(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	snap, err := s.deps.Store.Snapshot(ctx, cached.ID)
	if err != nil {
		return Stats{}, busy("database unavailable: could not read the activity and its orders", err)
	}
	a := &snap.Activity
	inv, found, err := s.deps.Inventory.Stats(ctx, a.ID)
	if err == nil && !found {
		if err = s.deps.Restorer.Restore(ctx, a); err == nil {
			inv, _, err = s.deps.Inventory.Stats(ctx, a.ID)
		}
	}
	if err != nil {
		return Stats{}, busy("inventory unavailable: could not read the activity's stock", err)
	}
	return Stats{
		Stock: a.Stock, Remaining: inv.Remaining, Reserved: inv.Reserved,
		Queued:        inv.Reserved - snap.Created - snap.Paid,
		OrdersCreated: snap.Created, OrdersPaid: snap.Paid, OrdersCancelled: snap.Cancelled,
		DBAvailable: a.Available,
	}, nil
}

// Snapshot reads an activity and its order counts in one statement (the
// dashboard's sampler), and Inventory its Redis side.
func (s *Service) Snapshot(ctx context.Context, id int64) (*order.Snapshot, error) {
	return s.deps.Store.Snapshot(ctx, id)
}

// StockStats reads an activity's Redis side as it is (the dashboard's
// sampler): found is false when Redis does not hold it.
func (s *Service) StockStats(ctx context.Context, id int64) (inventory.Stats, bool, error) {
	return s.deps.Inventory.Stats(ctx, id)
}
