package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/order/sqldb"
)

// The orders table's statements: the reads the gateway, the restore and
// the reconciler make, and the worker's batch writes.

// GetOrder returns order id, or an error wrapping ErrNotFound (the order may
// still be queued: the caller then asks Redis).
func (s *Store) GetOrder(ctx context.Context, id string) (*Order, error) {
	var o Order
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&o).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("order %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", id, err)
	}
	return &o, nil
}

// liveStates are the states of an order that holds a unit.
var liveStates = []string{StateCreated, StatePaid}

// ActiveOrders returns the orders of an activity that hold a unit (created
// or paid), by id. After an in-memory Redis lost its data, they are what
// the reservations are rebuilt from.
func (s *Store) ActiveOrders(ctx context.Context, activityID int64) ([]Order, error) {
	os, err := activeOrders(s.db.WithContext(ctx), activityID)
	if err != nil {
		return nil, fmt.Errorf("active orders of activity %d: %w", activityID, err)
	}
	return os, nil
}

func activeOrders(db *gorm.DB, activityID int64) ([]Order, error) {
	var os []Order
	err := db.Where("activity_id = ? AND state IN ?", activityID, liveStates).Order("id").Find(&os).Error
	return os, err
}

// Holdings is what the database says holds an activity's units at one
// instant: the activity row (its Available is what is left to sell), its
// live (created or paid) orders, and the state of each of some orders asked
// about that is stored.
type Holdings struct {
	Activity Activity
	Live     []Order           // created or paid, by id
	States   map[string]string // order id -> state, for the stored ones of the ids asked
}

// Holdings reads activity id, its live orders and the states of orderIDs in
// one consistent snapshot, so that a worker committing meanwhile is either
// in all of them (its order live, its unit gone from Available) or in none:
// separate reads would see its unit twice or not at all. Restoring Redis
// from the database needs exactly that (an order in neither would leave
// Redis one unit more to sell than the database has). It is one read-only
// transaction, REPEATABLE READ on MySQL (every statement reads the same
// snapshot whatever the server's default isolation); a SQLite transaction
// is serializable. It returns an error wrapping ErrNotFound when the
// activity does not exist.
func (s *Store) Holdings(ctx context.Context, id int64, orderIDs []string) (*Holdings, error) {
	var opts *sql.TxOptions
	if s.db.Dialector.Name() == "mysql" {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	var h Holdings
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		h = Holdings{}
		err := tx.Where("id = ?", id).Take(&h.Activity).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("activity %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read activity %d: %w", id, err)
		}
		if h.Live, err = activeOrders(tx, id); err != nil {
			return fmt.Errorf("read live orders of activity %d: %w", id, err)
		}
		h.States, err = orderStates(tx, orderIDs)
		return err
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("holdings of activity %d: %w", id, err)
	}
	return &h, nil
}

// lookupChunk bounds one IN (...) list of order ids.
const lookupChunk = 1000

// orderStates returns the state of each of ids that is stored.
func (s *Store) orderStates(ctx context.Context, ids []string) (map[string]string, error) {
	return orderStates(s.db.WithContext(ctx), ids)
}

func orderStates(db *gorm.DB, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for chunk := range slices.Chunk(ids, lookupChunk) {
		var rows []struct {
			ID    string
			State string
		}
		if err := db.Model(&Order{}).Select("id", "state").Where("id IN ?", chunk).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("look up %d orders: %w", len(chunk), err)
		}
		for _, row := range rows {
			out[row.ID] = row.State
		}
	}
	return out, nil
}

// orderIDsAfter returns up to limit ids of the orders of activity aid in
// state, in id order after the id after: a page of a keyset scan.
func (s *Store) orderIDsAfter(ctx context.Context, aid int64, state, after string, limit int) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&Order{}).
		Where("activity_id = ? AND state = ? AND id > ?", aid, state, after).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("list %s orders of activity %d: %w", state, aid, err)
	}
	return ids, nil
}

// storedOrders returns the stored orders among ids (their id, activity and
// user only).
func (s *Store) storedOrders(ctx context.Context, ids []string) (map[string]Order, error) {
	var found []Order
	err := s.db.WithContext(ctx).
		Select("id", "activity_id", "user_id").
		Where("id IN ?", ids).
		Find(&found).Error
	if err != nil {
		return nil, fmt.Errorf("look up stored orders: %w", err)
	}
	m := make(map[string]Order, len(found))
	for _, o := range found {
		m[o.ID] = o
	}
	return m, nil
}

// newOrders are order rows to insert and the outbox rows that commit with
// them, their events and pay-deadline messages: those of rows[i] are
// outbox[ends[i-1]:ends[i]] (from 0 for the first). One flat outbox slice
// rather than one per order: a batch costs a few allocations, not one per
// order.
type newOrders struct {
	rows   []Order
	outbox []outboxRow
	ends   []int
}

// outboxOf returns the outbox rows of rows[i].
func (n newOrders) outboxOf(i int) []outboxRow {
	start := 0
	if i > 0 {
		start = n.ends[i-1]
	}
	return n.outbox[start:n.ends[i]]
}

// writeOrders stores orders in one transaction: the units of the created
// ones taken from their activities, every row, and their outbox rows. It
// is all or nothing: any failure (a unique key clash of one order among
// them) writes none.
func (s *Store) writeOrders(ctx context.Context, orders newOrders, now time.Time) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return insertOrders(tx, orders, now) })
}

// writeOrder stores one order and its outbox rows in its own transaction,
// as writeOrders, and explains a unique key clash: the same order id of
// the same activity and user is a redelivery that raced with another
// worker (duplicate, no error); another activity or user is
// ErrOrderIDClash; another live order of the same user is ErrUserHasOrder,
// naming it. Its errors name the order.
func (s *Store) writeOrder(ctx context.Context, r Order, outbox []outboxRow, now time.Time) (duplicate bool, err error) {
	db := s.db.WithContext(ctx)
	one := newOrders{rows: []Order{r}, outbox: outbox, ends: []int{len(outbox)}}
	err = db.Transaction(func(tx *gorm.DB) error { return insertOrders(tx, one, now) })
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, gorm.ErrDuplicatedKey) {
		return false, fmt.Errorf("order %s: %w", r.ID, err)
	}
	var same Order
	switch lerr := db.Select("id", "activity_id", "user_id").Where("id = ?", r.ID).Take(&same).Error; {
	case lerr == nil && same.ActivityID == r.ActivityID && same.UserID == r.UserID:
		return true, nil
	case lerr == nil:
		return false, fmt.Errorf("order %s: %w: stored for activity %d user %s", r.ID, ErrOrderIDClash, same.ActivityID, same.UserID)
	case !errors.Is(lerr, gorm.ErrRecordNotFound):
		return false, fmt.Errorf("order %s: %w (looking up the clash: %w)", r.ID, err, lerr)
	}
	var other Order
	if lerr := db.Select("id").Where("activity_id = ? AND user_id = ? AND state IN ?", r.ActivityID, r.UserID, liveStates).Take(&other).Error; lerr == nil {
		return false, fmt.Errorf("order %s: %w: user %s of activity %d already has order %s",
			r.ID, ErrUserHasOrder, r.UserID, r.ActivityID, other.ID)
	}
	return false, fmt.Errorf("order %s: %w", r.ID, err)
}

// insertOrders takes the units of the created orders from their activities
// and inserts every row and its outbox messages. The stock update comes
// first so that the activity's row lock is taken before the foreign-key
// checks of the insert take shared locks on it (two workers would
// otherwise deadlock on MySQL upgrading them), and activities are locked in
// id order for the same reason.
func insertOrders(tx *gorm.DB, orders newOrders, now time.Time) error {
	need := make(map[int64]int64)
	for _, r := range orders.rows {
		if r.State == StateCreated {
			need[r.ActivityID]++
		}
	}
	aids := make([]int64, 0, len(need))
	for aid := range need {
		aids = append(aids, aid)
	}
	slices.Sort(aids)
	for _, aid := range aids {
		n := need[aid]
		res := tx.Model(&Activity{}).
			Where("id = ? AND available >= ?", aid, n).
			Updates(map[string]any{
				"available":  gorm.Expr("available - ?", n),
				"version":    gorm.Expr("version + 1"),
				"updated_at": now,
			})
		if res.Error != nil {
			return fmt.Errorf("take %d units of activity %d: %w", n, aid, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("take %d units of activity %d: %w", n, aid, ErrOutOfStock)
		}
	}
	if err := tx.CreateInBatches(orders.rows, sqldb.InsertBatchSize).Error; err != nil {
		return fmt.Errorf("insert %d orders: %w", len(orders.rows), err)
	}
	return insertOutbox(tx, orders.outbox)
}
