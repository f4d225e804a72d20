// Package order owns the durable side of the pipeline: the activities and
// orders tables and their migrations, the worker that writes queued orders
// into the database in batches, the lifecycle (pay, cancel, sweep), the
// outbox relay of order events and the reconciler. The messages on the
// order topics are in ordermsg; the database plumbing is in sqldb.
//
// Every statement on the tables is the Store's (store*.go, one file per
// table or use). The Worker only batches (worker.go); what a batch does,
// claims, rows and outbox, is its writer's (write.go), and tracing wraps
// both as decorators (worker_tracing.go). The Reconciler speaks to Redis in
// inventory's own types.
package order

import (
	"errors"
	"time"
)

// Order states, as stored and as answered by the API.
// Admissions of an activity.
const (
	// AdmissionOpen: whoever's buy reaches Redis first wins (the default).
	AdmissionOpen = "open"
	// AdmissionQueue: buyers join a waiting room that admits them in a
	// drawn order, each with a pass to buy.
	AdmissionQueue = "queue"
)

const (
	StateQueued    = "queued" // never stored: only reported from a Redis reservation
	StateCreated   = "created"
	StatePaid      = "paid"
	StateCancelled = "cancelled"
)

// ErrNotFound is returned when an activity or order does not exist.
var ErrNotFound = errors.New("order: not found")

// Activity is a flash sale of Stock units. Available is what the database
// still has to sell; Version grows with every stock change.
type Activity struct {
	ID                int64     `gorm:"primaryKey;autoIncrement" json:"-"`
	Name              string    `gorm:"size:200;not null"`
	Stock             int64     `gorm:"not null"`
	Available         int64     `gorm:"not null"`
	PriceCents        int64     `gorm:"not null"`
	StartsAt          time.Time `gorm:"not null"`
	EndsAt            time.Time `gorm:"not null"`
	PayTimeoutSeconds int64     `gorm:"not null"`
	// Admission is AdmissionOpen or AdmissionQueue: how buyers reach the
	// sale (migration 0005).
	Admission string `gorm:"size:8;not null;default:open"`
	Version   int64  `gorm:"not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Order is one unit sold (or once sold, then cancelled) to one user.
type Order struct {
	ID          string    `gorm:"primaryKey;size:64"`
	ActivityID  int64     `gorm:"not null;uniqueIndex:uk_orders_activity_user,priority:1;index:idx_orders_activity_state,priority:1"`
	UserID      string    `gorm:"size:64;not null;uniqueIndex:uk_orders_activity_user,priority:2"`
	RequestID   string    `gorm:"size:64;not null"`
	State       string    `gorm:"size:16;not null;index:idx_orders_activity_state,priority:2;index:idx_orders_state_deadline,priority:1"`
	PriceCents  int64     `gorm:"not null"`
	Version     int64     `gorm:"not null"`
	PayDeadline time.Time `gorm:"not null;index:idx_orders_state_deadline,priority:2"`
	TraceID     string    `gorm:"size:64;not null"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}
