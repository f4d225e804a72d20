// Package ordermsg is the contract of the order topics: their names, the
// payloads carried on them and how a consumer decodes them. The gateway
// publishes Message, the order side publishes Event and Timeout (through its
// outbox), and the workers, the cancellers and the notifier consume them.
//
// It is a package of its own, with nothing but the standard library below
// it, so that a consumer (the notifier) reads the contract without pulling
// in the order worker, its database models or the inventory.
package ordermsg

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Topics.
const (
	// TopicOrders carries one Message per reservation from the gateway to
	// the order workers.
	TopicOrders = "orders"
	// TopicOrderEvents carries an Event for every order state change. The
	// outbox relay publishes them at least once: consumers dedupe by
	// Event.ID.
	TopicOrderEvents = "order-events"
	// TopicOrderTimeouts carries one Timeout per created order, delivered
	// at its pay deadline; the canceller consumes it.
	TopicOrderTimeouts = "order-timeouts"
)

// ErrMalformed is wrapped by DecodeMessage and DecodeEvent when a payload
// is not a valid message of its topic. Redelivery cannot fix it, so the
// order worker counts it as a permanent error.
var ErrMalformed = errors.New("order: malformed order message")

// Message is the payload of TopicOrders (JSON). The gateway publishes it
// after the Redis reservation; workers may see it more than once.
type Message struct {
	OrderID    string    `json:"order_id"`
	ActivityID int64     `json:"activity_id"`
	UserID     string    `json:"user_id"`
	RequestID  string    `json:"request_id,omitempty"`
	PriceCents int64     `json:"price_cents"`
	ReservedAt time.Time `json:"reserved_at"`
	TraceID    string    `json:"trace_id,omitempty"`
}

// maxIDLen is the width of the database's id columns; a longer id could
// never be stored, so it is rejected as malformed rather than retried.
const (
	maxIDLen          = 64
	messageFieldLimit = "at most 64 bytes"
)

// DecodeMessage parses a TopicOrders payload and checks that it can be
// stored; a problem is ErrMalformed naming the field.
func DecodeMessage(payload []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return m, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var problem string
	switch {
	case m.OrderID == "":
		problem = "order_id is empty"
	case len(m.OrderID) > maxIDLen:
		problem = "order_id is longer than " + messageFieldLimit
	case m.ActivityID <= 0:
		problem = fmt.Sprintf("activity_id %d is not positive", m.ActivityID)
	case m.UserID == "":
		problem = "user_id is empty"
	case len(m.UserID) > maxIDLen:
		problem = "user_id is longer than " + messageFieldLimit
	case len(m.RequestID) > maxIDLen:
		problem = "request_id is longer than " + messageFieldLimit
	case len(m.TraceID) > maxIDLen:
		problem = "trace_id is longer than " + messageFieldLimit
	case m.PriceCents < 0:
		problem = fmt.Sprintf("price_cents %d is negative", m.PriceCents)
	}
	if problem != "" {
		return m, fmt.Errorf("%w: %s", ErrMalformed, problem)
	}
	return m, nil
}

// Event types.
const (
	EventCreated   = "order.created"
	EventPaid      = "order.paid"
	EventCancelled = "order.cancelled"
)

// Cancellation reasons (Event.Reason of EventCancelled).
const (
	// ReasonPayTimeout: the pay deadline passed with the order unpaid.
	ReasonPayTimeout = "pay_timeout"
	// ReasonReservationLost: the order message arrived after its Redis
	// reservation had been released (the gateway answered 202, but the
	// unit went back on sale), so the order was stored as cancelled.
	ReasonReservationLost = "reservation_released"
)

// Event is the payload of TopicOrderEvents (JSON), written to the outbox in
// the transaction that changes the order, so an event exists exactly when
// its change does. The message key is the user id, so one user's events
// stay in order on a partitioned queue.
type Event struct {
	// ID is unique per event (EventID): consumers dedupe by it.
	ID           string    `json:"event_id"`
	Type         string    `json:"type"`
	OrderID      string    `json:"order_id"`
	ActivityID   int64     `json:"activity_id"`
	ActivityName string    `json:"activity_name"`
	UserID       string    `json:"user_id"`
	PriceCents   int64     `json:"price_cents"`
	PayDeadline  time.Time `json:"pay_deadline"`
	// Reason says why an order was cancelled (Reason* constants).
	Reason     string    `json:"reason,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	TraceID    string    `json:"trace_id,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
}

// EventID of an order's event of type typ. Each order has at most one event
// of each type, so the id is derived, not random: the outbox's unique key
// then also refuses a second event for the same change.
func EventID(orderID, typ string) string { return orderID + "/" + typ }

// DecodeEvent parses a TopicOrderEvents payload; a problem is ErrMalformed.
func DecodeEvent(payload []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, fmt.Errorf("%w: order event: %w", ErrMalformed, err)
	}
	switch {
	case e.ID == "":
		return e, fmt.Errorf("%w: order event without event_id", ErrMalformed)
	case e.Type != EventCreated && e.Type != EventPaid && e.Type != EventCancelled:
		return e, fmt.Errorf("%w: order event %s has unknown type %q", ErrMalformed, e.ID, e.Type)
	case e.OrderID == "" || e.UserID == "":
		return e, fmt.Errorf("%w: order event %s lacks order_id or user_id", ErrMalformed, e.ID)
	}
	return e, nil
}

// Timeout is the payload of TopicOrderTimeouts (JSON).
type Timeout struct {
	OrderID     string    `json:"order_id"`
	ActivityID  int64     `json:"activity_id"`
	PayDeadline time.Time `json:"pay_deadline"`
}
