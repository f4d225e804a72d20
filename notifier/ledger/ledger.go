// Package ledger is the notifications table: one row per (event id,
// channel). The row is at once
//
//   - the dedupe key: a UNIQUE (event_id, channel) index, so a redelivered
//     event, a second notifier replica or a restart never claims the same
//     notification twice;
//   - the work item: it carries the event and the recipient, so any replica
//     can retry it without the queue, and a transient failure parks it here
//     (status pending, due_at_ms in the future) instead of holding a queue
//     message;
//   - the dead-letter record: status dead_lettered with the reason.
//
// Ownership is a lease: whoever inserted or claimed a row owns it until
// due_at_ms, and every claim and outcome is a compare-and-swap on version,
// so two replicas never both act on one row. A process that dies while
// owning a row leaves it pending; once the lease passes, any replica's
// retrier claims it again.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Statuses of a notification.
const (
	StatusPending      = "pending"
	StatusSent         = "sent"
	StatusDeadLettered = "dead_lettered"
)

// maxErrorLen is the width of last_error.
const maxErrorLen = 1000

// Entry is a row of notifications.
type Entry struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	EventID   string `gorm:"size:64;not null"`
	Channel   string `gorm:"size:16;not null"`
	EventType string `gorm:"size:32;not null"`
	OrderID   string `gorm:"size:64;not null"`
	UserID    string `gorm:"size:64;not null"`
	Recipient string `gorm:"size:254;not null"`
	// Payload is the order event as JSON, rendered again at each attempt.
	Payload   []byte `gorm:"type:text;not null"`
	Status    string `gorm:"size:16;not null"`
	Attempts  int    `gorm:"not null"`
	Version   int64  `gorm:"not null"`
	DueAtMS   int64  `gorm:"column:due_at_ms;not null"`
	LastError string `gorm:"size:1000;not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
	SentAt    *time.Time
}

// TableName is the table of Entry.
func (Entry) TableName() string { return "notifications" }

// DueAt is DueAtMS as a time.
func (e *Entry) DueAt() time.Time { return time.UnixMilli(e.DueAtMS) }

// Ledger reads and writes the notifications table.
type Ledger struct {
	db  *gorm.DB
	now func() time.Time
}

// New wraps db (the notifier's migrations applied). now is the clock;
// nil is time.Now.
func New(db *gorm.DB, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, now: now}
}

func (l *Ledger) stamp() time.Time { return l.now().UTC().Truncate(time.Microsecond) }

// Insert claims a new notification: e is written as pending, version 1,
// owned by the caller until now+lease. It reports false, and the existing
// row, when (e.EventID, e.Channel) is already there: a duplicate.
func (l *Ledger) Insert(ctx context.Context, e *Entry, lease time.Duration) (bool, *Entry, error) {
	now := l.stamp()
	e.Status, e.Version, e.Attempts = StatusPending, 1, 0
	e.DueAtMS = now.Add(lease).UnixMilli()
	e.CreatedAt, e.UpdatedAt, e.SentAt = now, now, nil
	e.ID = 0
	// A plain INSERT: the unique key refuses a duplicate on every backend
	// alike (ON CONFLICT DO NOTHING reports affected rows differently on
	// MySQL and MariaDB). A refused insert is a duplicate exactly when the
	// row is there afterwards.
	err := l.db.WithContext(ctx).Create(e).Error
	if err == nil {
		return true, nil, nil
	}
	existing, found, gerr := l.Get(ctx, e.EventID, e.Channel)
	if gerr != nil || !found {
		return false, nil, fmt.Errorf("ledger: insert %s/%s: %w", e.EventID, e.Channel, err)
	}
	return false, existing, nil
}

// Get reads the notification of (eventID, channel).
func (l *Ledger) Get(ctx context.Context, eventID, channel string) (*Entry, bool, error) {
	var e Entry
	err := l.db.WithContext(ctx).Where("event_id = ? AND channel = ?", eventID, channel).Take(&e).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("ledger: read %s/%s: %w", eventID, channel, err)
	}
	return &e, true, nil
}

// Due lists up to limit pending notifications whose lease or backoff has
// passed, the longest-waiting first.
func (l *Ledger) Due(ctx context.Context, limit int) ([]Entry, error) {
	var out []Entry
	err := l.db.WithContext(ctx).
		Where("status = ? AND due_at_ms <= ?", StatusPending, l.now().UnixMilli()).
		Order("due_at_ms").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("ledger: list due notifications: %w", err)
	}
	return out, nil
}

// Claim takes a due notification for an attempt: it bumps the version and
// leases the row until now+lease, provided nobody else claimed or settled
// it since e was read. On success e holds the new version.
func (l *Ledger) Claim(ctx context.Context, e *Entry, lease time.Duration) (bool, error) {
	now := l.stamp()
	due := now.Add(lease).UnixMilli()
	res := l.db.WithContext(ctx).Model(&Entry{}).
		Where("id = ? AND version = ? AND status = ? AND due_at_ms <= ?", e.ID, e.Version, StatusPending, now.UnixMilli()).
		Updates(map[string]any{"version": e.Version + 1, "due_at_ms": due, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("ledger: claim %s/%s: %w", e.EventID, e.Channel, res.Error)
	}
	if res.RowsAffected != 1 {
		return false, nil
	}
	e.Version++
	e.DueAtMS = due
	return true, nil
}

// MarkSent records a delivered notification. It reports false when the
// caller no longer owned the row (its lease passed and another replica
// claimed it).
func (l *Ledger) MarkSent(ctx context.Context, e *Entry) (bool, error) {
	now := l.stamp()
	return l.settle(ctx, e, "mark sent", map[string]any{
		"status": StatusSent, "attempts": e.Attempts + 1, "sent_at": now, "last_error": "",
	})
}

// MarkDeadLettered records a notification given up on, with the reason.
func (l *Ledger) MarkDeadLettered(ctx context.Context, e *Entry, reason string) (bool, error) {
	return l.settle(ctx, e, "dead-letter", map[string]any{
		"status": StatusDeadLettered, "attempts": e.Attempts + 1, "last_error": truncate(reason),
	})
}

// Reschedule records a failed attempt and parks the notification until due.
func (l *Ledger) Reschedule(ctx context.Context, e *Entry, due time.Time, lastErr string) (bool, error) {
	return l.settle(ctx, e, "reschedule", map[string]any{
		"attempts": e.Attempts + 1, "due_at_ms": due.UnixMilli(), "last_error": truncate(lastErr),
	})
}

// Release gives a claimed notification back without counting an attempt
// (the process stops, or the rate limit kept it waiting too long): it is due
// again at due.
func (l *Ledger) Release(ctx context.Context, e *Entry, due time.Time) (bool, error) {
	return l.settle(ctx, e, "release", map[string]any{"due_at_ms": due.UnixMilli(), "attempts": e.Attempts})
}

func (l *Ledger) settle(ctx context.Context, e *Entry, what string, set map[string]any) (bool, error) {
	set["version"] = e.Version + 1
	set["updated_at"] = l.stamp()
	res := l.db.WithContext(ctx).Model(&Entry{}).
		Where("id = ? AND version = ? AND status = ?", e.ID, e.Version, StatusPending).
		Updates(set)
	if res.Error != nil {
		return false, fmt.Errorf("ledger: %s %s/%s: %w", what, e.EventID, e.Channel, res.Error)
	}
	if res.RowsAffected != 1 {
		return false, nil
	}
	e.Version++
	if a, ok := set["attempts"].(int); ok {
		e.Attempts = a
	}
	if s, ok := set["status"].(string); ok {
		e.Status = s
	}
	if d, ok := set["due_at_ms"].(int64); ok {
		e.DueAtMS = d
	}
	return true, nil
}

// Backlog counts pending notifications per channel (parked for a retry or
// in flight).
func (l *Ledger) Backlog(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Channel string
		N       int64
	}
	err := l.db.WithContext(ctx).Model(&Entry{}).Select("channel, COUNT(*) AS n").
		Where("status = ?", StatusPending).Group("channel").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("ledger: count pending: %w", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Channel] = r.N
	}
	return out, nil
}

// Purge deletes sent notifications last touched before cutoff, at most limit
// rows, and reports how many it deleted. Dead-lettered rows are kept for the
// operator. Purging shortens the dedupe memory to the retention, which must
// stay longer than any redelivery (the outbox relay redelivers within
// minutes).
func (l *Ledger) Purge(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	var ids []int64
	err := l.db.WithContext(ctx).Model(&Entry{}).
		Where("status = ? AND updated_at < ?", StatusSent, cutoff.UTC()).
		Limit(limit).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		if err != nil {
			return 0, fmt.Errorf("ledger: purge: %w", err)
		}
		return 0, nil
	}
	res := l.db.WithContext(ctx).Where("id IN ? AND status = ?", ids, StatusSent).Delete(&Entry{})
	if res.Error != nil {
		return 0, fmt.Errorf("ledger: purge: %w", res.Error)
	}
	return res.RowsAffected, nil
}

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen - 3
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "..."
}
