package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ErrInvalidActivity is returned by CreateActivity for an activity that
// cannot be sold (the gateway answers 400 VALIDATION).
var ErrInvalidActivity = errors.New("order: invalid activity")

// Store reads and writes activities and orders. It is safe for concurrent
// use. It holds every statement of the package, by table: this file the
// activities, store_orders.go the orders (the worker's batch writes
// included), store_outbox.go the outbox, store_lifecycle.go payments,
// cancels and the sweep, store_naive.go the naive mode's buy.
type Store struct {
	db *gorm.DB
}

// NewStore returns a Store on db, which must be migrated (Migrate).
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// DB returns the underlying handle, for modules that add their own
// statements on the same tables (pay, cancel).
func (s *Store) DB() *gorm.DB { return s.db }

// Ping reports whether the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// StoredTimePrecision is what the activities table keeps of a time on every
// backend: DATETIME(6) on MySQL and MariaDB (MariaDB truncates finer
// digits, MySQL 8 rounds them); SQLite keeps the text the driver writes,
// which CreateActivity truncates to the same.
const StoredTimePrecision = time.Microsecond

// StoredTime returns t as the database stores and returns it: UTC,
// truncated to StoredTimePrecision. Validate times after this step, or a
// window that is not empty as sent can be empty as stored.
func StoredTime(t time.Time) time.Time { return t.UTC().Truncate(StoredTimePrecision) }

// CreateActivity stores a new activity with all its stock available and
// sets a.ID. The caller's Available and Version are ignored: a new activity
// has sold nothing. The window is checked as it will be stored (StoredTime),
// so a window that only sub-microsecond digits kept open is refused instead
// of stored empty, where it would fail every later load.
func (s *Store) CreateActivity(ctx context.Context, a *Activity) error {
	// Stored as UTC microseconds on every backend (MySQL 8 would round
	// the nanoseconds, MariaDB truncates them): the caller's struct then
	// equals what a later read returns.
	starts, ends := StoredTime(a.StartsAt), StoredTime(a.EndsAt)
	switch {
	case a.Name == "":
		return fmt.Errorf("%w: name is empty", ErrInvalidActivity)
	case a.Stock < 0:
		return fmt.Errorf("%w: stock %d is negative", ErrInvalidActivity, a.Stock)
	case a.PriceCents < 0:
		return fmt.Errorf("%w: price_cents %d is negative", ErrInvalidActivity, a.PriceCents)
	case a.PayTimeoutSeconds <= 0:
		return fmt.Errorf("%w: pay_timeout_seconds must be positive", ErrInvalidActivity)
	case !ends.After(starts):
		return fmt.Errorf("%w: ends_at must be after starts_at (as stored, to the microsecond: %s and %s)",
			ErrInvalidActivity, ends.Format(time.RFC3339Nano), starts.Format(time.RFC3339Nano))
	case a.Admission != "" && a.Admission != AdmissionOpen && a.Admission != AdmissionQueue:
		return fmt.Errorf("%w: admission must be %q or %q, got %q", ErrInvalidActivity, AdmissionOpen, AdmissionQueue, a.Admission)
	}
	if a.Admission == "" {
		a.Admission = AdmissionOpen
	}
	a.ID = 0
	a.Available = a.Stock
	a.Version = 0
	a.StartsAt, a.EndsAt = starts, ends
	if err := s.db.WithContext(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("create activity: %w", err)
	}
	return nil
}

// GetActivity returns activity id, or an error wrapping ErrNotFound.
func (s *Store) GetActivity(ctx context.Context, id int64) (*Activity, error) {
	var a Activity
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("activity %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get activity %d: %w", id, err)
	}
	return &a, nil
}

// ListActivities returns every activity, oldest first. Flash sales are few
// and short-lived, so no paging.
func (s *Store) ListActivities(ctx context.Context) ([]Activity, error) {
	var as []Activity
	if err := s.db.WithContext(ctx).Order("id").Find(&as).Error; err != nil {
		return nil, fmt.Errorf("list activities: %w", err)
	}
	return as, nil
}

// Snapshot is an activity row and its orders by state, read together.
type Snapshot struct {
	Activity  Activity `gorm:"embedded"`
	Created   int64
	Paid      int64
	Cancelled int64
}

// Snapshot reads activity id and counts its orders by state in one
// statement, so that the audit identity available = stock - (created + paid)
// holds in what it returns even while workers commit: two separate reads
// would see a batch land between them. It returns an error wrapping
// ErrNotFound when the activity does not exist.
func (s *Store) Snapshot(ctx context.Context, id int64) (*Snapshot, error) {
	var rows []Snapshot
	err := s.db.WithContext(ctx).Raw(`SELECT a.*,
		(SELECT COUNT(*) FROM orders o WHERE o.activity_id = a.id AND o.state = ?) AS created,
		(SELECT COUNT(*) FROM orders o WHERE o.activity_id = a.id AND o.state = ?) AS paid,
		(SELECT COUNT(*) FROM orders o WHERE o.activity_id = a.id AND o.state = ?) AS cancelled
		FROM activities a WHERE a.id = ?`, StateCreated, StatePaid, StateCancelled, id).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("snapshot activity %d: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("activity %d: %w", id, ErrNotFound)
	}
	return &rows[0], nil
}
