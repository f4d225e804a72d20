package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/flashsale/seckill/order/ordermsg"
)

// Errors of BuyNaive (besides ErrNotFound and ErrUserHasOrder).
var (
	// ErrSoldOut: the activity has no unit available in the database.
	ErrSoldOut = errors.New("order: sold out")
	// ErrNotStarted: the activity's window has not opened yet.
	ErrNotStarted = errors.New("order: sale not started")
	// ErrEnded: the activity's window has closed.
	ErrEnded = errors.New("order: sale ended")
)

// NaiveBuy is one buy of the naive synchronous mode.
type NaiveBuy struct {
	ActivityID int64
	UserID     string
	RequestID  string // optional idempotency key: the same one again returns the same order
	OrderID    string // a new id from the gateway's generator, used when an order is created
	TraceID    string
	Now        time.Time
}

// BuyNaive is the naive synchronous buy, kept as the teaching anti-pattern
// that the load tester compares with the pipeline (SECKILL_BUY_MODE=naive):
// everything happens inside the buyer's HTTP request, in one database
// transaction that holds the activity row's lock while it checks the
// window, the stock and the user's orders, inserts the order as created and
// takes the unit. Every buyer of an activity therefore queues on one row
// lock (on SQLite, on the database's single writer), so throughput is one
// transaction at a time and latency grows with the crowd: exactly what the
// pipeline's Redis reserve and queue avoid. It is correct, only slow.
//
// The same user with the same non-empty RequestID gets the order it already
// holds back (existing reports true); another live order of the user is
// ErrUserHasOrder. Redis is not involved, so in naive mode the database is
// the only stock. The order's outbox rows (its created event and its
// pay-deadline message) commit with it, as in the worker's batches.
func (s *Store) BuyNaive(ctx context.Context, b NaiveBuy) (_ *Order, existing bool, err error) {
	if b.OrderID == "" || b.UserID == "" || b.ActivityID <= 0 {
		return nil, false, fmt.Errorf("naive buy: order id, user id and activity id are required (got %q, %q, %d)", b.OrderID, b.UserID, b.ActivityID)
	}
	now := b.Now.UTC().Truncate(time.Microsecond)
	var out Order
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var a Activity
		q := tx.Where("id = ?", b.ActivityID)
		// MySQL/MariaDB: lock the row until commit. SQLite has no FOR
		// UPDATE; its transactions begin IMMEDIATE (see sqldb.Open), so
		// holding the write lock already serialises every buyer.
		if tx.Dialector.Name() == "mysql" {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Take(&a).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return fmt.Errorf("activity %d: %w", b.ActivityID, ErrNotFound)
			}
			return fmt.Errorf("lock activity %d: %w", b.ActivityID, err)
		}
		switch {
		case now.Before(a.StartsAt):
			return fmt.Errorf("activity %d starts at %s: %w", a.ID, a.StartsAt.Format(time.RFC3339), ErrNotStarted)
		case !now.Before(a.EndsAt):
			return fmt.Errorf("activity %d ended at %s: %w", a.ID, a.EndsAt.Format(time.RFC3339), ErrEnded)
		}
		var live []Order
		if err := tx.Where("activity_id = ? AND user_id = ? AND state IN ?", a.ID, b.UserID, []string{StateCreated, StatePaid}).
			Limit(1).Find(&live).Error; err != nil {
			return fmt.Errorf("look up orders of user %s: %w", b.UserID, err)
		}
		if len(live) > 0 {
			if b.RequestID != "" && live[0].RequestID == b.RequestID {
				out, existing = live[0], true
				return nil
			}
			return fmt.Errorf("user %s of activity %d holds order %s: %w", b.UserID, a.ID, live[0].ID, ErrUserHasOrder)
		}
		if a.Available <= 0 {
			return fmt.Errorf("activity %d: %w", a.ID, ErrSoldOut)
		}
		res := tx.Model(&Activity{}).Where("id = ? AND available > 0", a.ID).Updates(map[string]any{
			"available":  gorm.Expr("available - 1"),
			"version":    gorm.Expr("version + 1"),
			"updated_at": now,
		})
		if res.Error != nil {
			return fmt.Errorf("take a unit of activity %d: %w", a.ID, res.Error)
		}
		if res.RowsAffected == 0 { // cannot happen under the lock; never sell what is not there
			return fmt.Errorf("activity %d: %w", a.ID, ErrSoldOut)
		}
		out = Order{
			ID: b.OrderID, ActivityID: a.ID, UserID: b.UserID, RequestID: b.RequestID, TraceID: b.TraceID,
			State: StateCreated, PriceCents: a.PriceCents,
			PayDeadline: now.Add(time.Duration(a.PayTimeoutSeconds) * time.Second),
			CreatedAt:   now, UpdatedAt: now,
		}
		if err := tx.Create(&out).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return fmt.Errorf("order %s of user %s: %w", b.OrderID, b.UserID, ErrUserHasOrder)
			}
			return fmt.Errorf("insert order %s: %w", b.OrderID, err)
		}
		// The same outbox rows the worker writes for a created order: its
		// order.created event and its pay-deadline message, so a naive
		// order is notified and times out like any other.
		// They continue the buy request's trace, when it has one.
		rows := []outboxRow{newEvent(&out, ordermsg.EventCreated, "", a.Name, now), newTimeout(&out, now)}
		tracedRows(rows, trace.SpanContextFromContext(ctx))
		return insertOutbox(tx, rows)
	})
	if err != nil {
		return nil, false, err
	}
	return &out, existing, nil
}
