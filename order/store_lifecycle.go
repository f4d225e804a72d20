package order

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/order/sqldb"
)

// The statements of an order's life after it is written (Lifecycle): the
// version-checked transitions out of created, the unit a cancel returns,
// and the sweep's search for orders past their deadline.

// Activity row locks a transition takes first, on MySQL.
const (
	lockShare  = " LOCK IN SHARE MODE" // MariaDB knows no FOR SHARE
	lockUpdate = " FOR UPDATE"
)

// transition moves o from created to state (StatePaid or StateCancelled)
// if nobody changed it since it was read (its version), and reports whether
// it won; false means another transition got there first. In the same
// transaction a cancel returns the order's unit to its activity, and the
// outbox receives the rows events builds from the activity's name.
//
// On MySQL it first locks the order's activity row: updating an order
// re-checks its foreign key, which takes a shared lock on the activity, and
// a cancel then needs that row exclusively to return the unit. Two cancels
// that both took the shared lock first would deadlock on the upgrade;
// taking the activity lock before the order's makes every transition lock
// in the same order (a cancel exclusively, a payment shared).
func (s *Store) transition(ctx context.Context, o *Order, state string, now time.Time, events func(activityName string) []outboxRow) (bool, error) {
	a, err := s.GetActivity(ctx, o.ActivityID)
	if err != nil {
		return false, err
	}
	lock := lockShare
	if state == StateCancelled {
		lock = lockUpdate
	}
	won := false
	err = sqldb.Transaction(ctx, s.db, func(tx *gorm.DB) error {
		won = false // a deadlock victim runs again from the start
		if tx.Dialector.Name() == "mysql" {
			var id int64
			if err := tx.Raw("SELECT id FROM activities WHERE id = ?"+lock, o.ActivityID).Scan(&id).Error; err != nil {
				return fmt.Errorf("order %s: lock activity %d: %w", o.ID, o.ActivityID, err)
			}
		}
		res := tx.Model(&Order{}).
			Where("id = ? AND version = ? AND state = ?", o.ID, o.Version, StateCreated).
			Updates(map[string]any{"state": state, "version": gorm.Expr("version + 1"), "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("order %s: %s: %w", o.ID, state, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		won = true
		if state == StateCancelled {
			if err := returnUnit(tx, o, now); err != nil {
				return err
			}
		}
		return insertOutbox(tx, events(a.Name))
	})
	if err != nil {
		return false, err
	}
	return won, nil
}

// returnUnit gives the unit of cancelled order o back to its activity's
// available stock, never above the stock (ErrStockInconsistent).
func returnUnit(tx *gorm.DB, o *Order, now time.Time) error {
	res := tx.Model(&Activity{}).
		Where("id = ? AND available < stock", o.ActivityID).
		Updates(map[string]any{
			"available":  gorm.Expr("available + 1"),
			"version":    gorm.Expr("version + 1"),
			"updated_at": now,
		})
	if res.Error != nil {
		return fmt.Errorf("return the unit of order %s to activity %d: %w", o.ID, o.ActivityID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("return the unit of order %s to activity %d: %w", o.ID, o.ActivityID, ErrStockInconsistent)
	}
	return nil
}

// dueOrders returns up to limit orders still created whose pay deadline is
// at or before now, oldest deadline first, on the (state, pay_deadline)
// index.
func (s *Store) dueOrders(ctx context.Context, now time.Time, limit int) ([]string, error) {
	var due []string
	err := s.db.WithContext(ctx).Model(&Order{}).
		Where("state = ? AND pay_deadline <= ?", StateCreated, now).
		Order("pay_deadline").Limit(limit).Pluck("id", &due).Error
	if err != nil {
		return nil, fmt.Errorf("find expired orders: %w", err)
	}
	return due, nil
}
