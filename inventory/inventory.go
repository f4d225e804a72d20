// Package inventory holds flash-sale stock in Redis and changes it only through
// Lua scripts, so that every decision (window, one unit per user, stock > 0,
// decrement, record) is one atomic step however many gateways run.
//
// All keys of one activity share the hash tag {a<ID>}, so a Redis Cluster
// places them in one slot and accepts every script:
//
//	<prefix>:{a<ID>}:meta     hash: stock, remaining, starts_ms, ends_ms
//	<prefix>:{a<ID>}:users    hash: user id -> order id (one unit per user)
//	<prefix>:{a<ID>}:res      hash: order id -> <status><reserved_ms>:<len(user)>:<user><request id>
//	<prefix>:{a<ID>}:pending  zset: order id -> reserved_ms, pending reservations only
//	<prefix>:{a<ID>}:redrive  hash: order id -> the reconciler's re-drives of it (scan.go)
//	<prefix>:{a<ID>}:loading  string: the token of a restore in progress (Store.Load)
//
// The waiting room's keys share the tag too (waitroom.go). Only the loading
// token has a TTL, so that one left by a restore that died half-way goes
// away (the next restore replaces it anyway). No other key has one: a
// reservation ends only through Release (pending or queued only),
// ReleaseCancelled (the cancel of a stored order), ReapPending, the
// reconciler (order.Reconciler, through these) or an operator, never
// silently, and the embedded miniredis would not expire keys on its own
// anyway. Times are Unix milliseconds.
//
// A reservation moves through three statuses: pending (reserved, the order
// message not yet acknowledged by the queue), queued (the gateway confirmed
// the publish) and claimed (an order worker took it to write the row). A
// pending reservation that is never confirmed (the gateway died between the
// script and the queue) is released by ReapPending; a worker that finds its
// reservation gone writes the order as cancelled instead of selling the unit
// twice.
package inventory

import (
	"errors"
	"time"
)

// Outcome is what Reserve decided.
type Outcome int

const (
	// Reserved: a unit was taken for this user; publish the order.
	Reserved Outcome = iota + 1
	// Existing: the user already holds a confirmed reservation made with
	// the same request id; OrderID is that order (answer 202 again).
	Existing
	// Pending: the same request id holds a reservation whose publish is
	// still in progress; retry shortly.
	Pending
	// AlreadyPurchased: the user holds a reservation made with another
	// (or no) request id.
	AlreadyPurchased
	// SoldOut: no unit left.
	SoldOut
	// NotStarted: now is before the activity's start.
	NotStarted
	// Ended: now is at or after the activity's end.
	Ended
	// UnknownActivity: the activity is not loaded in Redis (call Load).
	UnknownActivity
)

// Status of a reservation.
type Status string

const (
	StatusPending Status = "P"
	StatusQueued  Status = "Q"
	StatusClaimed Status = "W"
)

// ErrUnavailable wraps every Redis error, so callers can answer 503 with
// errors.Is(err, inventory.ErrUnavailable).
var ErrUnavailable = errors.New("inventory: redis unavailable")

// ErrMaybeReserved joins ErrUnavailable on a reserve whose answer was lost
// (Coalescer.Reserve) when the Coalescer could not make sure afterwards
// that nothing is held: the reserve may have taken a unit, and the user's
// one-per-user mark with it, that are still held. Nobody was told the order
// id, so no order is written for it: the reaper (ReapPending) releases the
// reservation once it is older than the reservation timeout. Until then the
// user's buy without a request id answers AlreadyPurchased. Without it, a
// Coalescer's reserve error means nothing is kept (see Coalescer for the
// two cases where that holds only once Redis has answered).
var ErrMaybeReserved = errors.New("inventory: the reserve may hold a unit until the reaper releases it")

// ErrNotLoaded is returned by Claim when the activity is not in Redis (its
// data was lost): the caller retries once the activity is loaded again
// rather than treating its reservations as released.
var ErrNotLoaded = errors.New("inventory: activity not loaded in redis")

// Activity is what Redis needs to know about an activity.
type Activity struct {
	ID       int64
	Stock    int64
	StartsAt time.Time
	EndsAt   time.Time
}

// Reservation is one user's hold on one unit.
type Reservation struct {
	OrderID    string
	UserID     string
	RequestID  string
	ReservedAt time.Time
	Status     Status
}

// ReserveResult is the answer of Reserve.
type ReserveResult struct {
	Outcome   Outcome
	OrderID   string // the new order (Reserved) or the existing one (Existing, Pending)
	Remaining int64  // units left after the call
}

// Stats is the Redis side of an activity.
type Stats struct {
	Stock     int64
	Remaining int64
	Reserved  int64 // reservations held (pending + queued + claimed)
	Pending   int64 // reservations not yet confirmed as published
}
