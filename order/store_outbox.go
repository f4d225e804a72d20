package order

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/flashsale/seckill/order/sqldb"
)

// The outbox table's statements: rows are added inside the transactions
// that change orders (insertOutbox), then read, marked published and
// purged by the Relay.

// insertOutbox adds rows to the outbox inside tx.
func insertOutbox(tx *gorm.DB, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.CreateInBatches(rows, sqldb.InsertBatchSize).Error; err != nil {
		return fmt.Errorf("write %d outbox messages: %w", len(rows), err)
	}
	return nil
}

// markFunc marks outbox rows published, in the transaction that read them;
// ctx carries the trace the statement belongs to.
type markFunc func(ctx context.Context, ids []int64) error

// relayOutbox runs one round of the relay in one transaction: it reads up
// to limit unpublished rows, oldest first, and hands them to round with a
// mark function that records rows published in the same transaction. On
// MySQL the rows are locked with SKIP LOCKED, so relays of several
// processes share the rows instead of publishing the same ones. round is
// not called when no row waits. The transaction commits when round returns
// no error, and runs again from the start after a deadlock
// (sqldb.Transaction); it returns what the committed round returned.
func (s *Store) relayOutbox(ctx context.Context, limit int, round func(rows []outboxRow, mark markFunc) (int, error)) (int, error) {
	var n int
	err := sqldb.Transaction(ctx, s.db, func(tx *gorm.DB) (err error) {
		n = 0 // a deadlock victim runs again from the start
		q := tx.Where("published_at IS NULL").Order("id").Limit(limit)
		if tx.Dialector.Name() == "mysql" {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var rows []outboxRow
		if err := q.Find(&rows).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		n, err = round(rows, func(ctx context.Context, ids []int64) error {
			now := time.Now().UTC()
			if err := tx.WithContext(ctx).Model(&outboxRow{}).Where("id IN ?", ids).Update("published_at", now).Error; err != nil {
				return fmt.Errorf("mark %d outbox messages published: %w", len(ids), err)
			}
			return nil
		})
		return err
	})
	return n, err
}

// purgeOutbox deletes published rows older than before, a bounded chunk
// per call.
func (s *Store) purgeOutbox(ctx context.Context, before time.Time) error {
	// The derived table lets MySQL delete from the table it selects from.
	return s.db.WithContext(ctx).Exec(`DELETE FROM outbox WHERE id IN (
		SELECT id FROM (SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < ? ORDER BY id LIMIT 1000) old)`,
		before.UTC()).Error
}

// OutboxBacklog returns how many outbox rows wait to be relayed and when the
// oldest of them was written (zero when none wait).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	db := s.db.WithContext(ctx).Model(&outboxRow{}).Where("published_at IS NULL")
	var n int64
	if err := db.Count(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("count outbox backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	// The oldest row's own column, not MIN(): SQLite loses the column's
	// declared type in an aggregate and would hand back text.
	var oldest []outboxRow
	err := s.db.WithContext(ctx).Select("id", "created_at").Where("published_at IS NULL").Order("id").Limit(1).Find(&oldest).Error
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read outbox backlog: %w", err)
	}
	if len(oldest) == 0 {
		return n, time.Time{}, nil
	}
	return n, oldest[0].CreatedAt, nil
}
