package order

import (
	"encoding/json"
	"fmt"
	"time"
)

// TopicOrderEvents carries an Event for every order state change. The
// outbox relay publishes them at least once: consumers dedupe by Event.ID.
const TopicOrderEvents = "order-events"

// TopicOrderTimeouts carries one Timeout per created order, delivered at its
// pay deadline; the canceller consumes it.
const TopicOrderTimeouts = "order-timeouts"

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
	// ID is unique per event (the outbox row's id): consumers dedupe by it.
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

// DecodeEvent parses a TopicOrderEvents payload.
func DecodeEvent(payload []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, fmt.Errorf("%w: order event: %w", ErrMalformedMessage, err)
	}
	switch {
	case e.ID == "":
		return e, fmt.Errorf("%w: order event without event_id", ErrMalformedMessage)
	case e.Type != EventCreated && e.Type != EventPaid && e.Type != EventCancelled:
		return e, fmt.Errorf("%w: order event %s has unknown type %q", ErrMalformedMessage, e.ID, e.Type)
	case e.OrderID == "" || e.UserID == "":
		return e, fmt.Errorf("%w: order event %s lacks order_id or user_id", ErrMalformedMessage, e.ID)
	}
	return e, nil
}

// Timeout is the payload of TopicOrderTimeouts (JSON).
type Timeout struct {
	OrderID     string    `json:"order_id"`
	ActivityID  int64     `json:"activity_id"`
	PayDeadline time.Time `json:"pay_deadline"`
}
